"""``IntervalTallies``: what ``--ci`` adds to a state, mergeable like every other part.

Per-example losses (and each companion mean: MAE beside MSE, ...) are kept as streamed weighted
moments (``losscli.stats.Moments``); with ``--bootstrap B`` also as Poisson-bootstrap replicate
sums whose weights are a pure function of (seed, example identity, replicate), so every
chunking, thread count, shard layout and engine gives the same replicates. Token figures need
no tally here: perplexity's per-sequence NLL sums and token counts (``SequenceStats``) are the
clusters, and the report computes their ratio interval (and replicates) from them.

With ``--group-by``, ``groups`` (``GroupIntervals``) holds the same per group. With
``--cluster-col`` (and per group for perplexity, whose groups are clustered by sequence),
``clusters`` holds per cluster key (``(*group key, cluster value)``) the sums of w*x per column
and of w: a ``GroupTallies`` with one output, merged by key, so a cluster may span chunks,
shards and parts; the report computes the cluster-robust ratio interval (or a bootstrap with
one Poisson weight per cluster) from them.

Plain form: meta ``{"bootstrap": B, "seed": s, "columns": [names]}``, arrays
``moments`` (one row of 9 numbers per column: n, then the (hi, lo) pairs of sum w, sum w^2,
sum w*x and the centred second moment) and, with B > 0, ``replicates`` (B x (2 + companions));
optional meta ``groups: {"keys": [...]}`` with arrays ``group_n``, ``group_hi``, ``group_lo``
(, ``group_boot``), and meta ``clusters`` (``GroupTallies``' meta) with arrays ``cluster_hi``,
``cluster_lo``, ``cluster_counts``, ``cluster_overflow``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..stats.moments import Moments
from ..stats.poisson import BootstrapSums
from .group_intervals import GroupIntervals
from .groups import GroupTallies, _decode_key, _encode_value, sort_key, typed
from .plain import (
    Arrays,
    Meta,
    StateFileError,
    expect_members,
    fields,
    malformed,
    take,
    want_int,
    want_strs,
)

F64 = NDArray[np.float64]
LOSS = "value"  # the column of the per-example loss (the headline's mean)


@dataclass
class IntervalTallies:
    """Moments of the per-example loss and of each companion; optional bootstrap sums.

    ``names`` is ("value", *companions). Bootstrap columns: sum v*w*x for each name, then
    sum v*w (the replicate's weight), so replicate b's mean of name j is sums[b, j] / sums[b, -1].
    """

    names: tuple[str, ...]
    bootstrap: int = 0
    seed: int = 0
    moments: dict[str, Moments] = field(default_factory=dict)
    boot: BootstrapSums | None = None
    groups: GroupIntervals | None = None  # --group-by: per group (state.group_intervals)
    clusters: GroupTallies | None = None  # --cluster-col (perplexity: per group, sequences)
    _cols: F64 = field(default_factory=lambda: np.empty((0, 0)), repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in self.names:
            self.moments.setdefault(name, Moments())
        if self.bootstrap and self.boot is None:
            self.boot = BootstrapSums(self.seed, self.bootstrap, len(self.names) + 1)

    def update(self, losses: F64, weights: F64 | None, companions: dict[str, F64],
               rows: NDArray[np.uint64] | None) -> None:
        """Add counted examples; ``rows`` (their identities, ``stats.row_identities``) are
        needed with a bootstrap."""
        self.moments[LOSS].update(losses, weights)
        for name in self.names[1:]:
            self.moments[name].update(companions[name], weights)
        if self.boot is None or rows is None:
            return
        n, k = losses.shape[0], len(self.names)
        if self._cols.shape[0] < n:
            self._cols = np.empty((n, k + 1))
        cols = self._cols[:n]
        for j, name in enumerate(self.names):
            np.copyto(cols[:, j], losses if j == 0 else companions[name])
            if weights is not None:
                cols[:, j] *= weights
        cols[:, k] = 1.0 if weights is None else weights
        self.boot.update(rows, cols)

    def merge(self, other: IntervalTallies) -> IntervalTallies:
        if (self.names, self.bootstrap, self.seed) != (other.names, other.bootstrap, other.seed):
            raise ValueError("interval tallies with different figures, --bootstrap or --seed")
        out = IntervalTallies(self.names, self.bootstrap, self.seed,
                              {k: self.moments[k].merge(other.moments[k]) for k in self.names})
        out.boot = None  # clustered: the bootstrap is over the clusters' sums
        if self.boot is not None and other.boot is not None:
            out.boot = self.boot.merge(other.boot)
        out.groups = _merge_opt(self.groups, other.groups)
        out.clusters = _merge_opt(self.clusters, other.clusters)
        return out

    def to_plain(self) -> tuple[Meta, Arrays]:
        rows = [_moment_row(self.moments[k]) for k in self.names]
        arrays: Arrays = {"moments": np.array(rows, dtype=np.float64).reshape(len(rows), 9)}
        if self.boot is not None:
            arrays["replicates"] = self.boot.sums
        meta: Meta = {"bootstrap": self.bootstrap, "seed": self.seed, "columns": list(self.names)}
        if self.groups is not None:  # sorted by key: one state always gives the same bytes
            g = self.groups
            order = np.asarray(sorted(range(len(g)), key=lambda i: sort_key(g.keys[i])), dtype=np.intp)
            meta["groups"] = {"keys": [[_encode_value(v) for v in g.keys[i]] for i in order.tolist()]}
            arrays.update(group_n=g.n[order], group_hi=g.hi[order], group_lo=g.lo[order])
            if g.boot is not None:
                arrays["group_boot"] = g.boot[order]
        if self.clusters is not None:
            cmeta, carrays = self.clusters.to_plain()
            meta["clusters"] = cmeta
            arrays.update({f"cluster_{k}": v for k, v in carrays.items()})
        return meta, arrays

    @classmethod
    def from_plain(cls, meta: Any, arrays: Arrays, where: str = "ci") -> IntervalTallies:
        optional = {k for k in ("groups", "clusters") if isinstance(meta, dict) and k in meta}
        raw = fields(meta, where, {"bootstrap", "seed", "columns"} | optional)
        names = tuple(want_strs(raw["columns"], f"{where}.columns"))
        if not names or names[0] != LOSS:
            raise StateFileError(f"not a valid losscli state: {where}.columns must start with {LOSS}")
        bootstrap = want_int(raw["bootstrap"], f"{where}.bootstrap")
        seed = want_int(raw["seed"], f"{where}.seed")
        per_example = bootstrap and "clusters" not in optional  # clustered: none per example
        members = {"moments", "replicates"} if per_example else {"moments"}
        if "groups" in optional:
            members |= {"group_n", "group_hi", "group_lo"} | ({"group_boot"} if bootstrap else set())
        if "clusters" in optional:
            members |= {f"cluster_{k}" for k in ("hi", "lo", "counts", "overflow")}
        expect_members(arrays, members, where)
        table = take(arrays, "moments", np.float64, (len(names), 9), where)
        moments = {k: _moment_of(table[i]) for i, k in enumerate(names)}
        out = cls(names, bootstrap, seed, moments)
        out.boot = None
        if per_example:
            sums = take(arrays, "replicates", np.float64, (bootstrap, len(names) + 1), where)
            out.boot = BootstrapSums(seed, bootstrap, len(names) + 1, sums.copy())
        if "groups" in optional:
            out.groups = _groups_from_plain(raw["groups"], arrays, len(names), bootstrap, where)
        if "clusters" in optional:
            carrays = {k[len("cluster_"):]: v for k, v in arrays.items() if k.startswith("cluster_")}
            out.clusters = GroupTallies.from_plain(raw["clusters"], carrays, f"{where}.clusters")
        return out


def _groups_from_plain(meta: Any, arrays: Arrays, columns: int, bootstrap: int,
                       where: str) -> GroupIntervals:
    fields(meta, f"{where}.groups", {"keys"})
    raw = meta["keys"]
    if not isinstance(raw, list):
        raise malformed(f"{where}.groups.keys", "a list of keys", raw)
    width = len(raw[0]) if raw and isinstance(raw[0], list) else 0
    keys = [_decode_key(k, width, f"{where}.groups.keys[{i}]") for i, k in enumerate(raw)]
    if len({typed(k) for k in keys}) != len(keys):
        raise StateFileError(f"not a valid losscli state: {where}.groups.keys holds a key twice")
    g = len(keys)
    out = GroupIntervals.empty(columns, bootstrap)
    out.keys = keys
    out.n = take(arrays, "group_n", np.int64, (g,), where)
    out.hi = take(arrays, "group_hi", np.float64, (g, columns, 4), where)
    out.lo = take(arrays, "group_lo", np.float64, (g, columns, 4), where)
    if bootstrap:
        out.boot = take(arrays, "group_boot", np.float64, (g, bootstrap, columns + 1), where).copy()
    return out


def _merge_opt(a: Any, b: Any) -> Any:
    """Both parts' optional tallies (a part that saw no chunk has none)."""
    if a is None or b is None:
        return a if b is None else b
    return a.merge(b)


def _moment_row(m: Moments) -> list[float]:
    return [float(m.n), *m.sw, *m.sw2, *m.swx, *m.m2]


def _moment_of(row: F64) -> Moments:
    v = [float(x) for x in row]
    return Moments(int(v[0]), (v[1], v[2]), (v[3], v[4]), (v[5], v[6]), (v[7], v[8]))


def merge_intervals(a: IntervalTallies | None, b: IntervalTallies | None) -> IntervalTallies | None:
    """Both parts' interval tallies; a part without any (saw no chunk) adds none."""
    if a is None or b is None:
        return a if b is None else b
    return a.merge(b)
