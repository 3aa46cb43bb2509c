"""The paired part of a comparison's state: mergeable sums over examples scored by every model.

Per group (one row, the whole input, without ``--group-by``), for K columns of per-example
values (each model's loss, then each candidate's difference from the baseline) sharing one
weight per example:

* weighted moments: count n, W = sum w, W2 = sum w^2, the weighted mean and M2 = sum w (x -
  mean)^2 of each column, merged with Chan's formula (exact in exact arithmetic, stable in
  float64, independent of how the rows were cut into chunks);
* ``--test bootstrap``: for each replicate r, sum_i P_ir w_i x_ik and sum_i P_ir w_i, with Poisson(1)
  weights P_ir that are a function of (seed, example, replicate) alone;
* ``--test permutation``: for each resample r, sum_i s_ir w_i d_ic for each difference column c
  and sum_i s_ir w_i, with signs s_ir = +-1 a function of (seed, example, resample) alone.

Resample sums merge by addition; the moments by Chan's formula; groups merge by key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..stats.moments import RatioMoments

F64 = NDArray[np.float64]


@dataclass
class Moments:
    """Weighted moments of K columns in G groups (shared weights, per-group counts)."""

    n: NDArray[np.int64]  # (G,)
    w: F64  # (G,) sum of weights
    w2: F64  # (G,) sum of squared weights
    mean: F64  # (G, K) weighted means (0 where w == 0)
    m2: F64  # (G, K) sum w (x - mean)^2

    @classmethod
    def zeros(cls, groups: int, k: int) -> Moments:
        return cls(
            np.zeros(groups, np.int64),
            np.zeros(groups),
            np.zeros(groups),
            np.zeros((groups, k)),
            np.zeros((groups, k)),
        )

    @classmethod
    def of_chunk(cls, x: F64, w: F64 | None, codes: NDArray[np.intp] | None, groups: int) -> Moments:
        """The moments of one chunk: x (n, K), w (n,) or None, codes (n,) or None (one group)."""
        if codes is None:
            return cls._whole(x, w)
        n, k = x.shape
        ones = np.ones(n) if w is None else w
        count = np.bincount(codes, minlength=groups).astype(np.int64)
        wsum = np.asarray(np.bincount(codes, weights=ones, minlength=groups), dtype=np.float64)
        w2 = np.asarray(np.bincount(codes, weights=ones * ones, minlength=groups), dtype=np.float64)
        mean = np.zeros((groups, k))
        m2 = np.zeros((groups, k))
        safe = np.where(wsum > 0, wsum, 1.0)
        for j in range(k):
            mean[:, j] = np.bincount(codes, weights=ones * x[:, j], minlength=groups) / safe
            dev = x[:, j] - mean[codes, j]
            m2[:, j] = np.bincount(codes, weights=ones * dev * dev, minlength=groups)
        return cls(count, wsum, w2, mean, m2)

    @classmethod
    def _whole(cls, x: F64, w: F64 | None) -> Moments:
        """One group: sums by BLAS (dot products), deviations from the chunk's own mean."""
        n, k = x.shape
        total = float(n) if w is None else float(np.sum(w))
        square = float(n) if w is None else float(np.dot(w, w))
        if total > 0:
            mean = (x.sum(axis=0) if w is None else w @ x) / total
            dev = x - mean
            m2 = np.einsum("ik,ik->k", dev, dev) if w is None else w @ (dev * dev)
        else:
            mean, m2 = np.zeros(k), np.zeros(k)
        return cls(np.array([n]), np.array([total]), np.array([square]), mean[None, :], m2[None, :])

    def grown(self, groups: int) -> Moments:
        """The same moments with room for ``groups`` groups (new ones empty)."""
        extra = groups - len(self.n)
        if extra <= 0:
            return self
        k = self.mean.shape[1]
        z = Moments.zeros(extra, k)
        return Moments(
            np.concatenate((self.n, z.n)),
            np.concatenate((self.w, z.w)),
            np.concatenate((self.w2, z.w2)),
            np.concatenate((self.mean, z.mean)),
            np.concatenate((self.m2, z.m2)),
        )

    def merge(self, other: Moments) -> Moments:
        """Chan's parallel formula, group by group (the same group index in both)."""
        w = self.w + other.w
        safe = np.where(w > 0, w, 1.0)[:, None]
        delta = other.mean - self.mean
        mean = np.where(w[:, None] > 0, self.mean + delta * (other.w[:, None] / safe), 0.0)
        m2 = self.m2 + other.m2 + delta * delta * (self.w[:, None] * other.w[:, None] / safe)
        return Moments(self.n + other.n, w, self.w2 + other.w2, mean, m2)

    def take(self, order: NDArray[np.intp], groups: int) -> Moments:
        """Groups renumbered: group g of the result is group order[g] of self (-1: empty)."""
        out = Moments.zeros(groups, self.mean.shape[1])
        have = order >= 0
        src = order[have]
        out.n[have], out.w[have], out.w2[have] = self.n[src], self.w[src], self.w2[src]
        out.mean[have], out.m2[have] = self.mean[src], self.m2[src]
        return out

    def to_plain(self) -> dict[str, NDArray[Any]]:
        return {"n": self.n, "w": self.w, "w2": self.w2, "mean": self.mean, "m2": self.m2}


@dataclass
class PairTallies:
    """Moments and resample sums of a comparison, per group (see the module docstring)."""

    models: int
    test: str
    resamples: int
    seed: int
    groups: int = 1
    moments: Moments = field(init=False)
    #: bootstrap: (G, B, K + 1): sum P w x_k, then sum P w; permutation: (G, R, C + 1)
    resampled: F64 = field(init=False)
    #: compare perplexity by sequence (``clusters.py``): per group, the cluster ratio moments of
    #: each column, whose cluster-robust variance the t test uses (None: examples are independent)
    ratios: list[list[RatioMoments]] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.moments = Moments.zeros(self.groups, self.columns)
        width = self.columns + 1 if self.test == "bootstrap" else self.models  # C + 1 = models
        reps = self.resamples if self.test in ("bootstrap", "permutation") else 0
        self.resampled = np.zeros((self.groups, reps, width))

    @property
    def columns(self) -> int:
        """Each model's loss, then each candidate's difference from the baseline."""
        return 2 * self.models - 1

    def grow(self, groups: int) -> None:
        if groups <= self.groups:
            return
        self.moments = self.moments.grown(groups)
        pad = np.zeros((groups - self.groups, *self.resampled.shape[1:]))
        self.resampled = np.concatenate((self.resampled, pad))
        self.groups = groups

    def add(
        self,
        losses: list[F64],
        w: F64 | None,
        ids: NDArray[np.int64],
        codes: NDArray[np.intp] | None,
    ) -> None:
        """Count one chunk: each model's losses of the examples every model scored."""
        if len(losses[0]) == 0:
            return
        if codes is None and self.test == "t":  # the common case, without an (n, K) matrix
            self.moments = self.moments.merge(_one_pass(losses, w))
            return
        x = np.empty((len(losses[0]), self.columns))
        for j, column in enumerate(losses):
            x[:, j] = column
            if j:
                np.subtract(column, losses[0], out=x[:, self.models + j - 1])
        self.moments = self.moments.merge(Moments.of_chunk(x, w, codes, self.groups))
        if self.test == "t":
            return
        wx = x if w is None else x * w[:, None]
        ones = np.ones(len(x)) if w is None else w
        if self.test == "bootstrap":
            values = np.concatenate((wx, ones[:, None]), axis=1)
            self._add_resampled(values, ids, codes, _bootstrap_sums)
        else:
            values = np.concatenate((wx[:, self.models :], ones[:, None]), axis=1)
            self._add_resampled(values, ids, codes, _flip_sums)

    def _add_resampled(
        self, values: F64, ids: NDArray[np.int64], codes: NDArray[np.intp] | None, sums: Any
    ) -> None:
        if codes is None:
            self.resampled[0] += sums(self.seed, ids, values, self.resamples)
            return
        for g in np.unique(codes).tolist():
            mine = codes == g
            self.resampled[g] += sums(self.seed, ids[mine], values[mine], self.resamples)

    def merge(self, other: PairTallies) -> PairTallies:
        """Both parts together (groups already in the same numbering)."""
        groups = max(self.groups, other.groups)
        a, b = self.copy(), other.copy()
        a.grow(groups)
        b.grow(groups)
        a.moments = a.moments.merge(b.moments)
        a.resampled = a.resampled + b.resampled
        return a

    def copy(self) -> PairTallies:
        out = PairTallies(self.models, self.test, self.resamples, self.seed, self.groups)
        m = self.moments
        out.moments = Moments(m.n.copy(), m.w.copy(), m.w2.copy(), m.mean.copy(), m.m2.copy())
        out.resampled = self.resampled.copy()
        return out

    def renumbered(self, order: NDArray[np.intp], groups: int) -> PairTallies:
        """Groups renumbered (see ``Moments.take``), for a merge by key."""
        out = PairTallies(self.models, self.test, self.resamples, self.seed, groups)
        out.moments = self.moments.take(order, groups)
        have = order >= 0
        out.resampled[have] = self.resampled[order[have]]
        return out


#: a chunk's one-pass M2 = sum w x^2 - W mean^2 is used when it keeps at least this fraction of
#: sum w x^2 (cancellation costs at most ~1e-12 relative); else deviations are summed (two passes)
ONE_PASS_KEEPS = 1e-4


def _one_pass(losses: list[F64], w: F64 | None) -> Moments:
    """A chunk's moments of each model's loss and each candidate's difference, by dot products
    (BLAS) with no (n, K) matrix: two passes over each column, three for a difference."""
    n = len(losses[0])
    total = float(n) if w is None else float(np.sum(w))
    square = float(n) if w is None else float(np.dot(w, w))
    k = 2 * len(losses) - 1
    mean, m2 = np.zeros(k), np.zeros(k)
    diff = np.empty(n)
    weighted = None if w is None else np.empty(n)
    for j in range(k):
        if j < len(losses):
            column = losses[j]
        else:
            column = np.subtract(losses[j - len(losses) + 1], losses[0], out=diff)
        if total <= 0:
            continue
        if weighted is not None and w is not None:
            np.multiply(column, w, out=weighted)
            s1, s2 = float(weighted.sum()), float(np.dot(weighted, column))
        else:
            s1, s2 = float(column.sum()), float(np.dot(column, column))
        mean[j] = s1 / total
        m2[j] = s2 - s1 * mean[j]
        if not m2[j] > ONE_PASS_KEEPS * s2:  # heavy cancellation (near-constant values): two passes
            dev = column - mean[j]
            m2[j] = float(np.dot(dev * dev, w)) if w is not None else float(np.dot(dev, dev))
    return Moments(np.array([n]), np.array([total]), np.array([square]), mean[None, :], m2[None, :])


def _bootstrap_sums(seed: int, ids: NDArray[np.int64], values: F64, replicates: int) -> F64:
    from .poisson import poisson_sums

    return poisson_sums(seed, ids, values, replicates)


def _flip_sums(seed: int, ids: NDArray[np.int64], values: F64, resamples: int) -> F64:
    from .signs import flip_sums

    return flip_sums(seed, ids, values, resamples)
