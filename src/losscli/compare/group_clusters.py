"""``compare perplexity --group-by``: paired tests per group, clustered by (group, sequence).

A group's tokens are not independent either: those of one sequence that fall in the group go
wrong together. The unit of a group's test is therefore the cluster (group, sequence): the
tokens of one sequence in that group (with a key per sequence, the whole sequence; with a key
per token, a sequence may give a cluster to several groups). For each cluster the comparison
keeps every model's NLL sum over its paired tokens and their count, in a sparse table keyed
``group code << 40 | global sequence``: memory grows with the clusters (at most groups x
sequences of a part, about one per sequence with a key per sequence), never with tokens.

Within a group the figures are those of ``clusters.py`` over that group's clusters: delta =
sum d / sum n, the cluster-robust ratio variance for the t test, one Poisson weight per
(cluster, replicate) and one sign per cluster. A cluster's identity in a group's test is its
global sequence index (unique within a group), so the weights and signs are a function of (seed,
cluster, replicate) alone: the same for any chunking, thread count, shard or ``--save-state``
part, and the same a run on that group's sequences alone (at their sequence offsets) gives.

The table is built while streaming (``add``, a chunk's paired tokens), merged across threads by
addition and across parts by group key (``merged``); the per-group paired tallies are computed
from it once the run (or merge) is over (``group_cluster_pairs``), as the overall ones are from
the per-sequence statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..state.groups import Key, union_keys
from ..state.plain import StateFileError
from ..stats.moments import RatioMoments
from .clusters import BLOCK, add_clusters
from .tallies import PairTallies

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
#: a cluster's key is group code << SHIFT | global sequence index (2^40 sequences, 2^23 groups)
SHIFT = 40
LOW = (1 << SHIFT) - 1
#: pending chunk rows beyond which they are folded into the sorted table (and at least as many
#: as the table holds, so folding costs O(log) per cluster over a run)
FOLD_ROWS = 1 << 16


@dataclass
class GroupClusterSums:
    """Per (group, sequence) cluster: each model's NLL sum and the paired token count.

    ``keys`` ascending (so a group's clusters are contiguous, in sequence order), ``y`` (C, K),
    ``n`` (C,). Chunks are buffered and folded in now and then (``fold``); every reader of the
    table folds first.
    """

    models: int
    keys: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    y: F64 = field(init=False)
    n: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    _pending: list[tuple[I64, F64, I64]] = field(default_factory=list, repr=False)
    _pending_rows: int = 0

    def __post_init__(self) -> None:
        self.y = np.empty((len(self.keys), self.models))

    def add(self, codes: NDArray[np.intp], seq: I64, losses: list[F64]) -> None:
        """One chunk's paired tokens: their group codes, global sequences and each model's NLL."""
        if len(seq) == 0:
            return
        combined = (np.asarray(codes, dtype=np.int64) << SHIFT) | seq.astype(np.int64, copy=False)
        present, inverse = np.unique(combined, return_inverse=True)
        inverse = inverse.reshape(-1)
        y = np.empty((len(present), self.models))
        for k, column in enumerate(losses):
            y[:, k] = np.bincount(inverse, weights=column, minlength=len(present))
        n = np.bincount(inverse, minlength=len(present)).astype(np.int64)
        self._pending.append((present, y, n))
        self._pending_rows += len(present)
        if self._pending_rows > max(FOLD_ROWS, len(self.keys)):
            self.fold()

    def fold(self) -> None:
        """The buffered chunks into the sorted table (sums of a cluster seen twice added)."""
        if not self._pending:
            return
        parts = [(self.keys, self.y, self.n), *self._pending]
        self._pending, self._pending_rows = [], 0
        self.keys, self.y, self.n = _reduce(parts)

    def merge(self, other: GroupClusterSums) -> GroupClusterSums:
        """Both tables (the same group numbering: a run's threads)."""
        self.fold()
        other.fold()
        out = GroupClusterSums(self.models)
        out.keys, out.y, out.n = _reduce([(self.keys, self.y, self.n), (other.keys, other.y, other.n)])
        return out

    def renumbered(self, where: NDArray[np.intp]) -> GroupClusterSums:
        """Group code g becomes ``where[g]`` (a merge by key); sorted again."""
        self.fold()
        out = GroupClusterSums(self.models)
        if len(self.keys) == 0:
            return out
        groups = np.asarray(where, dtype=np.int64)[self.keys >> SHIFT]
        out.keys, out.y, out.n = _reduce([((groups << SHIFT) | (self.keys & LOW), self.y, self.n)])
        return out

    def to_plain(self) -> dict[str, NDArray[Any]]:
        self.fold()
        return {"keys": self.keys, "y": self.y, "n": self.n}

    @classmethod
    def from_plain(cls, arrays: dict[str, NDArray[Any]], models: int, groups: int) -> GroupClusterSums:
        """A saved table, checked: shapes, counts > 0, group codes of known keys, sorted keys."""
        try:
            keys = np.asarray(arrays["keys"]).astype(np.int64)
            y = np.asarray(arrays["y"]).astype(np.float64)
            n = np.asarray(arrays["n"]).astype(np.int64)
        except KeyError as e:
            raise StateFileError(f"not a valid comparison state: no array gclusters.{e.args[0]}") from None
        c = len(keys)
        if keys.ndim != 1 or y.shape != (c, models) or n.shape != (c,):
            raise StateFileError("not a valid comparison state: per-group cluster arrays of the wrong shape")
        if c and (
            (n <= 0).any()
            or (keys < 0).any()
            or int(keys.max() >> SHIFT) >= groups
            or (np.diff(keys) <= 0).any()
            or not np.isfinite(y).all()
        ):
            raise StateFileError("not a valid comparison state: implausible per-group cluster sums")
        out = cls(models)
        out.keys, out.y, out.n = keys, y, n
        return out


def _reduce(parts: Sequence[tuple[I64, F64, I64]]) -> tuple[I64, F64, I64]:
    """Tables concatenated, sorted by key, rows of one key summed."""
    keys = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    n = np.concatenate([p[2] for p in parts])
    if len(keys) == 0:
        return keys, y, n
    order = np.argsort(keys, kind="stable")
    keys, y, n = keys[order], y[order], n[order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    if len(starts) == len(keys):
        return keys, y, n
    return keys[starts], np.add.reduceat(y, starts, axis=0), np.add.reduceat(n, starts)


def merged_sums(
    ka: list[Key], a: GroupClusterSums, kb: list[Key], b: GroupClusterSums
) -> tuple[list[Key], GroupClusterSums]:
    """Two parts' tables merged by group key: ``ka`` then the new keys of ``kb``."""
    keys, where = union_keys(ka, kb)
    return keys, a.merge(b.renumbered(where))


def group_cluster_pairs(
    sums: GroupClusterSums, groups: int, test: str, resamples: int, seed: int
) -> PairTallies:
    """Each group's paired tallies from its clusters (``clusters.add_clusters`` per group)."""
    sums.fold()
    pairs = PairTallies(sums.models, test, resamples, seed, max(groups, 1))
    pairs.ratios = [[RatioMoments() for _ in range(pairs.columns)] for _ in range(pairs.groups)]
    codes = sums.keys >> SHIFT
    cuts = np.flatnonzero(np.diff(codes)) + 1
    starts = np.concatenate(([0], cuts)) if len(codes) else np.empty(0, np.int64)
    stops = np.concatenate((cuts, [len(codes)])) if len(codes) else np.empty(0, np.int64)
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        g = int(codes[a])
        for lo in range(a, b, BLOCK):
            at = slice(lo, min(lo + BLOCK, b))
            y = [np.ascontiguousarray(sums.y[at, k]) for k in range(sums.models)]
            add_clusters(pairs, y, sums.n[at].astype(np.float64), sums.keys[at] & LOW, g)
    return pairs
