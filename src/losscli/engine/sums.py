"""Per-chunk sums, each numpy's pairwise sum in float64: the numbers the compensated
accumulators add once per chunk. A row of weight 0 adds exactly 0, whatever its loss."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..metrics.base import Scratch


def weighted_sum(values: NDArray[np.float64], w: NDArray[Any] | None, scratch: Scratch) -> float:
    """sum(values) or sum(w * values): numpy's pairwise sum, within log2(n) ulps.

    A row of weight 0 adds exactly 0 whatever its loss (scikit-learn's sample_weight), but
    0 * inf is NaN: when the sum is not finite it is taken again without those rows. Only
    then, so the normal path keeps its one scratch buffer. Overflow is reported by the caller
    (the sum stays inf), so numpy's RuntimeWarnings are silenced here.
    """
    if w is None:
        return float(np.sum(values, dtype=np.float64))
    weighted = scratch.get("weighted", (len(values),), np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        np.multiply(values, w, out=weighted)
        total = float(np.sum(weighted))
        if not math.isfinite(total):
            keep = w != 0
            total = float(np.sum(values[keep] * w[keep]))
    return total


def hit_weight(hits: NDArray[np.bool_] | None, w: NDArray[Any] | None) -> float:
    """How many rows hit (top-1 or top-k), each counted with its weight (accuracy_score's
    sample_weight): the count itself when unweighted."""
    if hits is None:
        return 0.0
    if w is None:
        return float(np.count_nonzero(hits))
    return float(np.sum(w[hits], dtype=np.float64))


def column_sums(elements: NDArray[np.float64], w: NDArray[Any] | None) -> NDArray[np.float64]:
    """Per-output (weighted) sums; pairwise per column, as accurate as the 1-D path.

    As in ``weighted_sum``: a row of weight 0 adds exactly 0, even when its loss is
    inf (taken again without those rows only when some column's sum is not finite).
    """
    if w is None:
        return per_column(elements)
    with np.errstate(over="ignore", invalid="ignore"):
        sums = per_column(elements * w[:, None])
        if not np.isfinite(sums).all():
            keep = w != 0
            sums = per_column(elements[keep] * w[keep, None])
    return sums


def per_column(data: NDArray[np.float64]) -> NDArray[np.float64]:
    """Column sums, each numpy's pairwise sum of a 1-D column (axis=0 would sum row by row)."""
    return np.array([np.sum(data[:, j]) for j in range(data.shape[1])])
