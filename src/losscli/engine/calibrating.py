"""A chunk's share of the calibration bins and the per-class breakdown (bce and ce with
--calibration / --per-class): per-row confidence, outcome and Brier score from the
probabilities the scorer kept (``MetricChunk.probs``), summed per bin blockwise
(``grouping.group_sum``: at most 8191 ulps per block) and added with two-sum by the state."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..metrics.base import Scratch
from ..state.calibration import CalibrationTally
from ..state.classes import ClassTally
from .grouping import group_sum

F64 = NDArray[np.float64]


@functools.lru_cache(maxsize=64)
def _floor_is_exact(bins: int) -> bool:
    """Whether ``floor(x * bins)`` puts every x in [0, 1] in torchmetrics' bin: true when each
    ``linspace`` edge times ``bins`` floors to its own index and the float just below the next
    edge stays under it (rounded multiplication is monotone, so the whole bin follows)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    for k in range(bins):
        below_next = np.nextafter(edges[k + 1], 0.0)
        if math.floor(edges[k] * bins) != k or math.floor(below_next * bins) != k:
            return False
    return True


def bin_of(confidence: F64, bins: int, scratch: Scratch | None = None) -> NDArray[np.intp]:
    """torchmetrics' binning: ``bucketize(conf, linspace(0, 1, bins + 1), right=True) - 1``,
    1.0 in the last bin: ``floor(conf * bins)`` where that is provably the same
    (``_floor_is_exact``; 1.0 then lands at ``bins``, which the caller folds into the last bin),
    else moved by one where the product rounded across an edge."""
    if scratch is None:
        scratch = Scratch()
    product = np.multiply(confidence, bins, out=scratch.get("cal_product", confidence.shape, np.float64))
    codes = scratch.get("cal_codes", confidence.shape, np.intp)
    np.copyto(codes, product, casting="unsafe")  # truncation: floor, for x >= 0
    if not _floor_is_exact(bins):
        np.clip(codes, 0, bins - 1, out=codes)
        edges = np.linspace(0.0, 1.0, bins + 1)
        codes -= confidence < edges[codes]
        codes += (confidence >= edges[codes + 1]) & (codes < bins - 1)
    return codes


def row_parts(
    probs: F64, targets: NDArray[Any], multiclass: bool, scratch: Scratch | None = None
) -> tuple[F64, NDArray[Any], F64]:
    """(confidence, observed, Brier) per row. bce: the positive class's probability, the
    target, (p - y)^2 averaged over outputs (rows of several outputs are flattened by the
    caller). ce: the top-1 probability, top-1 correct, sum_c (p_c - onehot_c)^2."""
    if not multiclass:
        d = np.subtract(probs, targets, out=(scratch or Scratch()).get("cal_d", probs.shape, np.float64))
        return probs, targets, np.multiply(d, d, out=d)
    rows = np.arange(len(probs))
    top = np.argmax(probs, axis=1)
    conf = probs[rows, top]
    hit = (top == targets).astype(np.float64)
    p_t = probs[rows, targets]
    brier = np.einsum("ij,ij->i", probs, probs) - 2.0 * p_t + 1.0
    return conf, hit, brier


def add_calibration(
    tally: CalibrationTally,
    probs: F64,
    targets: NDArray[Any],
    w: NDArray[Any] | None,
    multiclass: bool,
    scratch: Scratch | None = None,
) -> None:
    """One chunk's counted rows into the reliability bins."""
    if not multiclass and probs.ndim == 2:  # bce of several outputs: every element, its row's weight
        k = probs.shape[1]
        w = None if w is None else np.repeat(np.asarray(w, dtype=np.float64), k)
        probs, targets = probs.reshape(-1), np.asarray(targets).reshape(-1)
    conf, obs, brier = row_parts(probs, targets, multiclass, scratch)
    codes = bin_of(conf, tally.bins, scratch)
    weights = None if w is None else np.asarray(w, dtype=np.float64)
    width = tally.bins + 1  # bin_of leaves a confidence of exactly 1.0 one past the last bin
    counts = np.bincount(codes, minlength=width).astype(np.int64)
    sums = np.empty((width, 3))
    sums[:, 0] = counts if weights is None else group_sum(codes, weights, width)
    sums[:, 1] = group_sum(codes, conf if weights is None else weights * conf, width)
    if obs.dtype != np.float64:  # float32 or integer labels: widened into a reused buffer
        buf = (scratch or Scratch()).get("cal_obs", obs.shape, np.float64)
        np.copyto(buf, obs, casting="unsafe")
        obs = buf
    sums[:, 2] = group_sum(codes, obs if weights is None else weights * obs, width)
    counts[-2] += counts[-1]  # ... and torchmetrics puts it in the last bin
    sums[-2] += sums[-1]
    counts, sums = counts[:-1], sums[:-1]
    brier_sum = float(np.sum(brier) if weights is None else np.dot(weights, brier))
    tally.add(counts, sums, brier_sum)


def add_per_class(
    tally: ClassTally,
    probs: F64,
    targets: NDArray[np.intp],
    predicted: NDArray[np.intp],
    losses: F64,
    w: NDArray[Any] | None,
) -> None:
    """One chunk's counted rows into the per-class sums and the confusion counts."""
    c = tally.classes
    weights = None if w is None else np.asarray(w, dtype=np.float64)
    support = np.bincount(targets, minlength=c).astype(np.int64)
    sums = np.empty((c, 4))
    sums[:, 0] = support if weights is None else group_sum(targets, weights, c)
    sums[:, 1] = group_sum(targets, losses if weights is None else weights * losses, c)
    hit = predicted == targets
    sums[:, 2] = group_sum(targets[hit], None if weights is None else weights[hit], c)
    sums[:, 3] = probs.sum(axis=0) if weights is None else weights @ probs
    confusion = np.bincount(targets * c + predicted, minlength=c * c).reshape(c, c).astype(np.int64)
    tally.add(support, sums, confusion)
