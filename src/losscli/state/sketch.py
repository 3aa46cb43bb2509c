"""``LossSketch``: a mergeable quantile sketch of per-example losses, with a stated error bound.

Log-spaced buckets in the manner of DDSketch, with its fast "linearly interpolated" mapping:
a float64's bucket is its top ``1 + 11 + SUB_BITS`` bits (sign, exponent, the first SUB_BITS
bits of the mantissa), so every power of two is cut into 2**SUB_BITS buckets and a bucket's
upper edge is at most (1 + 2**-SUB_BITS) times its lower edge. A bucket is reported by the
value whose relative distance to both edges is equal (their harmonic mean), so any value in
the bucket, in particular the exact quantile, is within ``RELATIVE_ERROR`` = 1/(2**(SUB_BITS+1)+1)
(0.39%) of it. The mapping costs one shift of the float's bits per loss: no logarithm.

Counts are exact int64 per bucket, so merging (adding counts over the union of the buckets) is
exact, associative and commutative, and the quantiles do not depend on chunking, shards or
threads. A weighted run also keeps each bucket's weight sum (float64): its quantiles are
numpy's weighted ``inverted_cdf`` to within the bound, a cumulative weight that ties the
quantile exactly being decided at float64 precision. The exact maximum is kept beside.

Bucket 0 (and the other buckets of subnormal floats, below 2.2e-308) holds 0: losses that
small are reported as 0 or within 2.2e-308 absolute. Negative losses (a regression metric
never makes them; a user's --per-example-like input might) get mirrored buckets below zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .plain import Arrays, Meta, StateFileError, decode_float, encode_float, fields, take, want_bool, want_int

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

SUB_BITS = 7
SHIFT = 52 - SUB_BITS
#: the largest relative distance of a reported quantile from the exact one
RELATIVE_ERROR = 1.0 / (2 ** (SUB_BITS + 1) + 1)
#: the number of bucket keys of non-negative floats (and of negative ones, mirrored)
SIDE = 1 << (63 - SHIFT)
#: the quantiles every report shows, as numpy percentiles
PERCENTILES = (50, 90, 99)


def order_keys(values: F64, out: I64 | None = None) -> I64:
    """Bucket keys that sort as the values do: >= 0 for +0.0 and up, < 0 for negatives
    (-0.0 counts as 0). ``out``: a reused buffer of the same length."""
    return _order_keys(values, out)[0]


def _order_keys(values: F64, out: I64 | None = None) -> tuple[I64, int]:
    """``order_keys`` and the smallest key (0 for no values)."""
    bits = values.view(np.int64)
    keys = np.right_shift(bits, SHIFT, out=out)
    lowest = int(keys.min()) if len(keys) else 0
    if lowest < 0:  # negatives or -0.0 (-log(1.0) is -0.0): the slow path
        keys = np.right_shift((values + 0.0).view(np.int64), SHIFT, out=out)  # -0.0 + 0.0 is +0.0
        neg = keys < 0
        keys[neg] = -1 - (keys[neg] + SIDE)  # |x|'s key, mirrored below zero
        lowest = int(keys.min())
    return keys, lowest


def bucket_values(keys: I64) -> F64:
    """The value each bucket reports: the harmonic mean of its edges (0 for bucket 0)."""
    mags = np.where(keys < 0, -1 - keys, keys).astype(np.int64)
    lo = np.left_shift(mags, SHIFT).view(np.float64)
    hi = np.left_shift(mags + 1, SHIFT).view(np.float64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        rep = lo * (2.0 / (1.0 + lo / hi))
    rep = np.where(lo == 0.0, 0.0, rep)
    rep = np.where(np.isinf(lo), lo, rep)
    return np.where(keys < 0, -rep, rep)


@dataclass
class LossSketch:
    """Counts (and weight sums) of losses per bucket over keys ``offset .. offset + len - 1``."""

    weighted: bool = False
    offset: int = 0
    counts: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    weights: F64 | None = None  # per bucket, when weighted
    max: float = -math.inf  # the largest loss counted (-inf: none yet)

    def __post_init__(self) -> None:
        if self.weighted and self.weights is None:
            self.weights = np.zeros(len(self.counts))

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def _cover(self, lo: int, hi: int) -> None:
        """Grow the bucket range to hold keys lo..hi."""
        if len(self.counts) == 0:
            self.offset, size = lo, hi - lo + 1
            self.counts = np.zeros(size, dtype=np.int64)
            self.weights = np.zeros(size) if self.weighted else None
            return
        start, stop = min(lo, self.offset), max(hi + 1, self.offset + len(self.counts))
        if start == self.offset and stop == self.offset + len(self.counts):
            return
        at = self.offset - start
        counts = np.zeros(stop - start, dtype=np.int64)
        counts[at : at + len(self.counts)] = self.counts
        if self.weights is not None:
            weights = np.zeros(stop - start)
            weights[at : at + len(self.weights)] = self.weights
            self.weights = weights
        self.counts, self.offset = counts, start

    def add_buckets(self, lo: int, counts: I64, weights: F64 | None, top: float) -> None:
        """Add per-bucket counts (and weights) for keys lo, lo + 1, ...; ``top`` the largest loss."""
        if not len(counts):
            return
        self._cover(lo, lo + len(counts) - 1)
        at = lo - self.offset
        self.counts[at : at + len(counts)] += counts
        if self.weights is not None and weights is not None:
            self.weights[at : at + len(weights)] += weights
        if top > self.max or math.isnan(top):
            self.max = top

    def add(self, losses: F64, w: NDArray[Any] | None, buf: I64 | None = None) -> None:
        """One chunk's counted losses (``w`` their weights when the run is weighted)."""
        if not len(losses):
            return
        if w is not None and not self.weighted and not len(self.counts):  # the first chunk says
            self.weighted, self.weights = True, np.zeros(0)
        keys, lo = _order_keys(losses, buf)
        keys -= lo
        counts: I64 = np.bincount(keys).astype(np.int64, copy=False)
        weights: F64 | None = None
        if self.weighted and w is not None:
            weights = np.bincount(keys, np.asarray(w, dtype=np.float64), len(counts)).astype(
                np.float64, copy=False
            )
        top = float(losses.max())
        if weights is not None and not np.all(np.asarray(w) != 0):  # weight 0: not in any quantile
            kept = np.asarray(w) != 0
            top = float(losses[kept].max()) if kept.any() else -math.inf
        self.add_buckets(lo, counts, weights, top)

    def merge(self, other: LossSketch) -> LossSketch:
        # parts of one evaluation are weighted alike; only an empty part (no chunk seen) differs
        out = LossSketch(self.weighted or other.weighted)
        for part in (self, other):
            out.add_buckets(part.offset, part.counts, part.weights, part.max)
        return out

    def quantiles(self, percentiles: tuple[int, ...] = PERCENTILES) -> list[float]:
        """numpy's ``percentile(losses, p, method="inverted_cdf", weights=...)`` to within
        ``RELATIVE_ERROR`` (NaN when nothing was counted or every weight is 0)."""
        nonzero = np.flatnonzero(self.counts)
        if not len(nonzero):
            return [math.nan] * len(percentiles)
        keys = nonzero + self.offset
        values = np.minimum(bucket_values(keys), self.max)
        out = []
        if self.weights is not None:
            cum = np.cumsum(self.weights[nonzero])
            total = cum[-1]
            if not total > 0:
                return [math.nan] * len(percentiles)
            cdf = cum / total
            for p in percentiles:
                i = int(np.searchsorted(cdf, p / 100, side="left"))
                out.append(float(values[min(i, len(values) - 1)]))
            return out
        cum_n = np.cumsum(self.counts[nonzero])
        n = int(cum_n[-1])
        for p in percentiles:
            index = n * (p / 100) - 1  # numpy's inverted_cdf: the order statistic it takes
            rank = max(0, int(index) if index == math.floor(index) else math.floor(index) + 1)
            i = int(np.searchsorted(cum_n, rank, side="right"))
            out.append(float(values[i]))
        return out

    def histogram(self) -> tuple[F64, I64, F64 | None]:
        """(bucket values, counts, weights) of the non-empty buckets, in value order."""
        nonzero = np.flatnonzero(self.counts)
        weights = None if self.weights is None else self.weights[nonzero]
        return bucket_values(nonzero + self.offset), self.counts[nonzero], weights

    def to_plain(self) -> tuple[Meta, Arrays]:
        """``{weighted, offset, max}`` and ``counts`` (int64), ``weights`` (float64, weighted only)."""
        meta: Meta = {"weighted": self.weighted, "offset": self.offset, "max": encode_float(self.max)}
        arrays: Arrays = {"counts": self.counts}
        if self.weights is not None:
            arrays["weights"] = self.weights
        return meta, arrays

    @classmethod
    def from_plain(cls, meta: Any, arrays: Arrays, where: str = "sketch") -> LossSketch:
        fields(meta, where, {"weighted", "offset", "max"})
        weighted = want_bool(meta["weighted"], f"{where}.weighted")
        offset = want_int(meta["offset"], f"{where}.offset", -SIDE - 1)
        expected = {"counts", "weights"} if weighted else {"counts"}
        if set(arrays) != expected:
            raise StateFileError(f"not a valid losscli state: {where} should hold arrays {sorted(expected)}")
        size = arrays["counts"].shape[0] if arrays["counts"].ndim == 1 else -1
        counts = take(arrays, "counts", np.int64, (max(size, 0),), where)
        if offset + len(counts) > SIDE or (len(counts) and int(counts.min()) < 0):
            raise StateFileError(f"not a valid losscli state: {where} has buckets out of range or negative")
        weights = take(arrays, "weights", np.float64, (len(counts),), where) if weighted else None
        top = decode_float(meta["max"], f"{where}.max")
        return cls(weighted, offset, counts, weights, top)


def merge_sketches(a: LossSketch | None, b: LossSketch | None) -> LossSketch | None:
    """Both parts' sketch; None when either part has none (saved by a losscli without sketches),
    since a sketch of only some of the rows would misstate every quantile."""
    return None if a is None or b is None else a.merge(b)
