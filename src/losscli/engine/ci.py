"""``--ci``: the interval tallies an evaluator keeps, and how a chunk's counted examples feed them.

Overall: moments (and Poisson-bootstrap sums) of the per-example loss and companions. Per group
(``--group-by``): the same per group code, summed blockwise with ``np.bincount`` as the group
sums are (``grouping.group_sum``). Per cluster (``--cluster-col``, and per group for perplexity,
whose groups are clustered by sequence): sums of w*x and w per (group key, cluster) key, into a
``GroupTallies`` whose codes ``ClusterCodes`` hands out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from ..readers.keys import KeyTable
from ..state.group_intervals import GroupIntervals
from ..state.groups import GroupTallies, Key, typed
from ..state.intervals import LOSS, IntervalTallies
from ..stats.poisson import BootstrapSums
from .grouping import add_chunk, group_sum

F64 = NDArray[np.float64]
U64 = NDArray[np.uint64]
Codes = NDArray[np.intp]
#: a combined cluster value is group code * 2^40 + cluster code (2^23 groups, 2^40 clusters)
_CLUSTER_BITS = 40
BRIER = "brier"  # --calibration with --ci: the per-example Brier score, an interval column
SEQUENCE = "sequence"  # the cluster column's name when perplexity's groups cluster by sequence
CLUSTERS = "clusters"  # --cluster-col: each row's cluster code (Parquet and tables code as they read)
CLUSTER_KEY = "cluster_key."  # --cluster-col: the column's raw values (CSV, arrays), coded per chunk


class TooManyClusters(InputError):
    """More distinct --cluster-col values than --max-clusters allows (exit 3)."""


def too_many(
    column: str, limit: int, display: str | None = None, across: str = "", shown: str | None = None
) -> TooManyClusters:
    """Past --max-clusters (exit 3); ``shown``: the column as the user gave it, when its name in
    the report is not (a .npy's column 0 is keyed by the file's stem)."""
    return TooManyClusters(
        f"--cluster-col {shown or repr(column)} has more than {limit:,} distinct values{across} "
        "(--max-clusters): "
        "cluster by a coarser column, or raise --max-clusters (each cluster keeps its sums in memory)",
        path=display or None,
    )


class ClusterTable(KeyTable):
    """The cluster column's values, coded like group keys; past --max-clusters, exit 3."""

    def _refuse(self, columns: Sequence[str]) -> None:
        raise too_many(self.columns[0], self.max_groups, self.display, shown=self.shown[0])


class ClusterCodes:
    """Dense codes of (group, cluster) pairs in first-seen order, and each one's key
    ``(*group key, cluster value)``; shared by a run's threads (a lock guards new codes)."""

    def __init__(self, key_of: Callable[[int, int], Key], limit: int, column: str) -> None:
        self.key_of, self.limit, self.column = key_of, limit, column
        self.codes: dict[int, int] = {}
        self.keys: list[Key] = []
        self._lock = threading.Lock()

    def __call__(self, groups: Codes | None, clusters: NDArray[np.int64]) -> Codes:
        combined = clusters.astype(np.int64, copy=False)
        if groups is not None:
            combined = (groups.astype(np.int64) << _CLUSTER_BITS) + combined
        present, inverse = np.unique(combined, return_inverse=True)
        lut = np.empty(len(present), dtype=np.intp)
        with self._lock:
            for j, u in enumerate(present.tolist()):
                code = self.codes.get(u)
                if code is None:
                    code = len(self.keys)
                    if code >= self.limit:
                        raise too_many(self.column, self.limit)
                    self.codes[u] = code
                    self.keys.append(self.key_of(u >> _CLUSTER_BITS, u & ((1 << _CLUSTER_BITS) - 1)))
                lut[j] = code
        out: Codes = lut[inverse.reshape(-1)]
        return out


def new_interval_tallies(
    options: Mapping[str, Any],
    companions: Sequence[str],
    group_columns: Sequence[str] | None,
    cluster_column: str | None,
) -> IntervalTallies:
    """Empty tallies for the headline loss and each companion mean (MAE beside MSE, ...)."""
    names = (LOSS, *companions)
    clustered = cluster_column is not None  # --cluster-col, or perplexity's groups (SEQUENCE)
    boot = 0 if clustered else int(options.get("bootstrap") or 0)  # clusters: from their sums
    out = IntervalTallies(names, boot, int(options.get("seed") or 0))
    out.bootstrap = int(options.get("bootstrap") or 0)
    if group_columns is not None and not clustered:
        out.groups = GroupIntervals.empty(len(names), out.bootstrap)
    if clustered:
        assert cluster_column is not None
        out.clusters = GroupTallies.empty((*(group_columns or ()), cluster_column), 1, tuple(companions))
    return out


def interval_columns(companions: Sequence[str], metric_options: Mapping[str, Any]) -> tuple[str, ...]:
    """The means --ci gives intervals of beside the loss: the companions, and with
    --calibration the Brier score (a per-example mean like them: bce's (p - y)^2, averaged over
    outputs; ce's sum over classes of (p_c - onehot_c)^2), so it takes the same moments,
    bootstrap sums, groups and clusters. ECE and MCE are not means of examples: none for them."""
    return (*companions, BRIER) if metric_options.get("calibration") else tuple(companions)


def with_brier(
    ci: IntervalTallies, companions: dict[str, F64], mc: Any, local: NDArray[np.intp] | None
) -> dict[str, F64]:
    """``companions`` and, when ``ci`` keeps the Brier column, each counted row's Brier score,
    computed as the calibration tally sums it (so the interval is around the same figure)."""
    if BRIER not in ci.names:
        return companions
    return {**companions, BRIER: row_brier(mc, local)}


def row_brier(mc: Any, local: NDArray[np.intp] | None) -> F64:
    """Each counted row's Brier score (ce: sum_c (p_c - onehot_c)^2; bce: (p - y)^2, a row's
    mean over its outputs): the per-example term whose weighted mean is the Brier score, kept
    for its interval (--ci) and per group (--group-by)."""
    probs, targets = mc.probs, mc.prob_targets
    if probs is None or targets is None:  # nothing to score: a zero-row chunk
        return np.zeros(0 if local is None else len(local))
    if local is not None:
        probs, targets = probs[local], targets[local]
    if probs.ndim == 2 and targets.ndim == 1:  # ce: top-1 classes
        p_t = probs[np.arange(len(probs)), targets]
        brier: F64 = np.einsum("ij,ij->i", probs, probs) - 2.0 * p_t + 1.0
        return brier
    # bce (and soft targets): the squared difference, each row's mean over its outputs
    diff = mc.prob_diff if local is None and mc.prob_diff is not None else probs - targets
    sq = np.square(diff, dtype=np.float64)
    out: F64 = sq if sq.ndim == 1 else sq.mean(axis=1)
    return out


def add_groups(
    tallies: GroupIntervals,
    keys: Sequence[Key],
    codes: Codes,
    columns: Sequence[F64],
    w: F64 | None,
    ids: U64 | None,
    seed: int,
) -> None:
    """One chunk's counted examples (``codes`` their groups) into per-group moments and sums."""
    tallies.grow(keys)
    g = int(codes.max()) + 1 if len(codes) else 0
    if g == 0:
        return
    ww = None if w is None else np.asarray(w, dtype=np.float64)
    sw = group_sum(codes, ww, g)
    sw2 = sw if ww is None else group_sum(codes, ww * ww, g)
    hi = np.zeros((g, len(columns), 4))
    for j, x in enumerate(columns):
        swx = group_sum(codes, x if ww is None else x * ww, g)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(sw > 0, swx / sw, 0.0)
        d = x - mean[codes]
        d *= d
        hi[:, j] = np.stack([sw, sw2, swx, group_sum(codes, d if ww is None else d * ww, g)], axis=1)
    tallies.absorb(np.arange(g), np.bincount(codes, minlength=g).astype(np.int64), hi, np.zeros_like(hi))
    if tallies.boot is None or ids is None:
        return
    order = np.argsort(codes, kind="stable")
    cuts = np.flatnonzero(np.diff(codes[order])) + 1
    cols = np.empty((len(codes), len(columns) + 1))
    for j, x in enumerate(columns):
        cols[:, j] = x if ww is None else x * ww
    cols[:, -1] = 1.0 if ww is None else ww
    sums = BootstrapSums(seed, tallies.bootstrap, len(columns) + 1)
    for part in np.split(order, cuts):
        sums.sums = tallies.boot[int(codes[part[0]])]  # a view: update adds in place
        sums.update(ids[part], cols[part])


def add_clusters(
    tallies: GroupTallies,
    codes: Codes,
    keys: Sequence[Key],
    losses: F64,
    w: F64 | None,
    companions: dict[str, F64],
) -> None:
    """Per (group, cluster): sums of w*loss, w and w*companion (a one-output GroupTallies)."""
    add_chunk(tallies, keys, codes, losses, None, w, companions, (None, None))


class IntervalFeed:
    """What an evaluator needs to feed its interval tallies: the shard's example identity, the
    cluster column's table and the (group, cluster) codes; shared by the run's forks."""

    def __init__(
        self, identity: Any, table: KeyTable | None, codes: ClusterCodes | None, by_sequence: bool
    ) -> None:
        self.identity, self.table, self.codes, self.by_sequence = identity, table, codes, by_sequence

    def ids(self, rows: NDArray[np.int64]) -> U64:
        """The bootstrap identities of global rows: the row, or (file, row within file)."""
        from ..stats.poisson import row_identities

        if self.identity is None:
            return row_identities(rows)
        return row_identities(rows, self.identity.key, self.identity.shift)


def make_feed(ci: Any, group_keys: Any, cluster_table: KeyTable | None, sequences: bool) -> IntervalFeed:
    """The feed of a run: clusters by --cluster-col's table, or by sequence for perplexity's
    groups (``sequences``), keyed ``(*group key, cluster value)``."""
    codes = None
    if cluster_table is not None or (sequences and group_keys is not None):
        limit = int(getattr(ci, "max_clusters", 0) or 1 << 62)
        column = cluster_table.columns[0] if cluster_table is not None else SEQUENCE

        def key_of(g: int, c: int) -> Key:
            value = cluster_table.keys[c] if cluster_table is not None else (c,)
            return (*group_keys.keys[g], *value) if group_keys is not None else tuple(value)

        codes = ClusterCodes(key_of, limit, column)
    by_sequence = cluster_table is None and codes is not None
    return IntervalFeed(getattr(ci, "identity", None), cluster_table, codes, by_sequence)


def feed_chunk(
    ev: Any,
    ci: IntervalTallies,
    losses: F64,
    w: F64 | None,
    companions: dict[str, F64],
    local: NDArray[np.intp] | None,
    row_map: NDArray[np.intp] | None,
    groups: Codes | None,
    clusters: Codes | None,
) -> None:
    """One chunk's counted examples into ``ci`` (``local``: their places in the scored chunk,
    None for all; ``row_map``: --nan skip's compaction, as ``Evaluator._global_rows`` takes it)."""
    feed: IntervalFeed | None = ev.interval_feed
    boot = ci.boot is not None or (ci.groups is not None and ci.groups.boot is not None)
    rows = None
    if boot or (feed is not None and feed.by_sequence):
        rows = ev._global_rows(np.arange(len(losses)) if local is None else local, row_map)
    ids = feed.ids(rows) if boot and feed is not None and rows is not None else None
    if boot and ids is None and rows is not None:
        ids = rows.astype(np.uint64)
    ci.update(losses, w, companions, ids)
    if ci.groups is not None and groups is not None:
        columns = [losses, *(companions[n] for n in ci.names[1:])]
        add_groups(ci.groups, ev.keys.keys, groups, columns, w, ids, ci.seed)
    if ci.clusters is not None and feed is not None and feed.codes is not None:
        if feed.by_sequence:
            assert rows is not None
            cluster_values = ev.seqmap.locate(rows)[0]
        else:
            assert clusters is not None
            cluster_values = clusters
        codes = feed.codes(groups, cluster_values)
        add_clusters(ci.clusters, codes, feed.codes.keys, losses, w, companions)


def check_max_clusters(merged: Any, options: Mapping[str, Any]) -> None:
    """--max-clusters bounds the clusters of the whole input, not of each shard's."""
    ci = merged.tallies.ci
    column = options.get("cluster_col")
    if ci is None or ci.clusters is None or column is None:
        return
    from ..ci_options import DEFAULT_MAX_CLUSTERS

    limit = options.get("max_clusters") or DEFAULT_MAX_CLUSTERS
    width = len(ci.clusters.columns) - 1
    count = len({typed(k[width:]) for k in ci.clusters.keys})
    if count > limit:
        raise too_many(str(column), int(limit), across=f" across the shards ({count:,})")
