"""A chunk's share of the calibration bins and the per-class breakdown (bce and ce with
--calibration / --per-class): per-row confidence, outcome and Brier score from the
probabilities the scorer kept (``MetricChunk.probs``), summed per bin with at most 8191 ulps
per float64 accumulator (bce: ``bincount`` over (lane, bin, label); ce: ``grouping.group_sum``
by blocks) and added with two-sum by the state."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..metrics.base import Scratch
from ..state.calibration import CalibrationTally
from ..state.classes import ClassTally
from .calibration_edges import floor_is_exact, lookup_edges
from .grouping import BLOCK, group_sum

F64 = NDArray[np.float64]


def bin_of(
    confidence: F64, bins: int, scratch: Scratch | None = None, dtype: Any = np.intp, float32: bool = False
) -> NDArray[Any]:
    """torchmetrics' slot (calibration_edges): ``bucketize(conf, torch edges, right=True) - 1``,
    1.0 in a slot of its own (``bins``). ``floor(conf * bins)`` where that is provably the same,
    else moved by one where it differs from the edges' verdict. ``float32``: float32 edges (the
    confidences are float32 values). ``dtype``: of the slot numbers (int32 converts from
    float64 in a third of int64's time)."""
    if scratch is None:
        scratch = Scratch()
    product = np.multiply(confidence, bins, out=scratch.get("cal_product", confidence.shape, np.float64))
    codes = scratch.get("cal_codes32" if dtype == np.int32 else "cal_codes", confidence.shape, dtype)
    np.copyto(codes, product, casting="unsafe")  # truncation: floor, for x >= 0
    if not floor_is_exact(bins, float32):
        _fix_near_edges(confidence, product, codes, bins, float32, scratch)
    return codes


def _fix_near_edges(
    confidence: F64, product: F64, codes: NDArray[Any], bins: int, float32: bool, scratch: Scratch
) -> None:
    """Where ``floor(conf * bins)`` may differ from the edges' verdict: only where the product is
    within ``slack`` of an integer (an edge is within two ulps of k/bins in its dtype, so the
    product of a value between the edge and k/bins is within a few ulps of k). Four cheap passes
    find those rows (none, for most data); only they are compared with the edges."""
    slack = bins * (2.0**-20 if float32 else 2.0**-48)
    near = scratch.get("cal_near", product.shape, np.float64)
    np.rint(product, out=near)
    np.subtract(product, near, out=near)
    np.abs(near, out=near)
    rows = np.flatnonzero(np.less(near, slack, out=scratch.get("cal_mask", product.shape, np.bool_)))
    if not len(rows):
        return
    edges = lookup_edges(bins, float32)
    x, c = confidence[rows], np.clip(codes[rows], 0, bins).astype(np.intp)
    c -= x < edges[c]
    c += x >= edges[c + 1]
    codes[rows] = c


def row_parts(probs: F64, targets: NDArray[Any]) -> tuple[F64, NDArray[Any], F64]:
    """ce's (confidence, observed, Brier) per row: the top-1 probability, top-1 correct,
    sum_c (p_c - onehot_c)^2 (bce's come from ``add_binary``)."""
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
    known: tuple[NDArray[np.bool_] | None, F64 | None] = (None, None),
    float32: bool = False,
) -> None:
    """One chunk's counted rows into the reliability bins. ``known``: what bce computed
    already (label == 1 when every label is 0 or 1; p - y), each None when it did not.
    ``float32``: bce's probabilities were float32 in the file (BinaryCalibrationError's edges
    are then float32 too)."""
    scratch = scratch if scratch is not None else Scratch()
    if not multiclass:
        add_binary(tally, probs, targets, w, scratch, known, float32)
        return
    conf, obs, brier = row_parts(probs, targets)
    # MulticlassCalibrationError bins the top-1 confidence cast to float32 (the sums stay float64)
    codes = bin_of(conf.astype(np.float32).astype(np.float64), tally.bins, scratch, float32=True)
    weights = None if w is None else np.asarray(w, dtype=np.float64)
    width = tally.bins + 1  # a confidence of exactly 1.0 has a slot of its own (torchmetrics')
    counts = np.bincount(codes, minlength=width).astype(np.int64)
    sums = np.empty((width, 3))
    sums[:, 0] = counts if weights is None else group_sum(codes, weights, width)
    sums[:, 1] = group_sum(codes, conf if weights is None else weights * conf, width)
    sums[:, 2] = group_sum(codes, obs if weights is None else weights * obs, width)
    tally.add(counts, sums, float(np.sum(brier) if weights is None else np.dot(weights, brier)))


_LANES: dict[tuple[int, int, Any], NDArray[Any]] = {}


def _lane_offsets(n: int, lanes: int, stride: int, dtype: Any) -> NDArray[Any]:
    """(i % lanes) * stride for i < n: row i's sums go to lane i % lanes, so that no float64
    accumulator of one ``bincount`` adds more than BLOCK values (at most 8191 ulps)."""
    cached = _LANES.get((lanes, stride, dtype))
    if cached is None or len(cached) < n:
        cached = ((np.arange(max(n, 1 << 16)) % lanes) * stride).astype(dtype)
        cached.setflags(write=False)
        _LANES[(lanes, stride, dtype)] = cached  # read only, shared by the worker threads
    return cached[:n]


def bin_indices(
    probs: F64, bins: int, positives: NDArray[np.bool_] | None, scratch: Scratch, float32: bool = False
) -> tuple[NDArray[np.intp], int, int]:
    """(index, lanes, stride) for ``bincount``: lane * stride + bin, or + 2 * bin + label
    (label = 1 for the positives) when every label is 0 or 1. Built in int32 (each pass
    moves half the bytes of intp) and widened once; int64 when the index could not fit."""
    n, width = len(probs), bins + 1  # a confidence of exactly 1.0 has a slot of its own
    lanes = max(1, -(-n // BLOCK))
    stride = width if positives is None else 2 * width
    dtype = np.int32 if lanes * stride < 2**31 else np.intp
    codes = bin_of(probs, bins, scratch, dtype, float32)
    if positives is not None:
        np.left_shift(codes, 1, out=codes)
        np.add(codes, positives.view(np.int8), out=codes)
    codes += _lane_offsets(n, lanes, stride, dtype)
    if dtype == np.intp:
        return codes, lanes, stride
    index = scratch.get("cal_index", (n,), np.intp)
    np.copyto(index, codes)
    return index, lanes, stride


def add_binary(
    tally: CalibrationTally,
    probs: F64,
    targets: NDArray[Any],
    w: NDArray[Any] | None,
    scratch: Scratch,
    known: tuple[NDArray[np.bool_] | None, F64 | None] = (None, None),
    float32: bool = False,
) -> None:
    """bce: counts and sums per bin from one index and two or three ``bincount`` calls. With
    labels all 0 or 1 (``known[0]``: label == 1) the label is part of the index: one count
    gives the rows and the positives per bin, one weighted count the confidence sums. Rows
    of several outputs count every element with its row's weight."""
    positives, diff = known
    if probs.ndim == 2:
        k = probs.shape[1]
        w = None if w is None else np.repeat(np.asarray(w, dtype=np.float64), k)
        probs, targets = probs.reshape(-1), np.asarray(targets).reshape(-1)
        positives = None if positives is None else positives.reshape(-1)
        diff = None if diff is None else diff.reshape(-1)
    n, width = len(probs), tally.bins + 1
    if diff is None:
        diff = np.subtract(probs, targets, out=scratch.get("cal_d", (n,), np.float64), dtype=np.float64)
    index, lanes, stride = bin_indices(probs, tally.bins, positives, scratch, float32)
    weights = None if w is None else np.asarray(w, dtype=np.float64)
    values: list[F64] = [probs]  # summed per (bin[, label]) after the row counts
    if weights is not None:
        values = [np.multiply(weights, probs, out=scratch.get("cal_wp", (n,), np.float64)), weights]
    if positives is None:  # soft labels: their own sum (else label 1 is the outcome)
        obs = targets
        if obs.dtype != np.float64:  # float32 or integer labels: widened into a reused buffer
            obs = scratch.get("cal_obs", (n,), np.float64)
            np.copyto(obs, targets, casting="unsafe")
        values.append(
            obs if weights is None else np.multiply(weights, obs, out=scratch.get("cal_wo", (n,), np.float64))
        )
    size = lanes * stride
    raw = np.empty((1 + len(values), size))
    raw[0] = np.bincount(index, minlength=size)
    for row, v in enumerate(values, 1):
        raw[row] = np.bincount(index, v, size)
    per = raw.reshape(len(raw), lanes, stride).sum(axis=1)  # lanes added: (1 + len(values), stride)
    weight_row = 0 if weights is None else 2
    sums = np.empty((width, 3))
    if positives is not None:  # (bin, label) pairs: label 0 at even, label 1 at odd positions
        pairs = per.reshape(len(per), width, 2)
        both = pairs.sum(axis=2)
        counts, sums[:, 0], sums[:, 1] = both[0], both[weight_row], both[1]
        sums[:, 2] = pairs[weight_row, :, 1]  # the outcome is exactly 1 for the positives, else 0
    else:
        counts, sums[:, 0], sums[:, 1], sums[:, 2] = per[0], per[weight_row], per[1], per[-1]
    tally.add(counts.astype(np.int64), sums, _brier_sum(diff, weights, scratch))


def _brier_sum(diff: F64, weights: F64 | None, scratch: Scratch) -> float:
    """sum(d^2) (or sum(w d . d)) as BLAS dot products of BLOCK rows: one pass, and at most
    8191 ulps per block whatever the BLAS's order of accumulation."""
    left = (
        diff
        if weights is None
        else np.multiply(diff, weights, out=scratch.get("cal_wd", diff.shape, np.float64))
    )
    total = 0.0
    for start in range(0, len(diff), BLOCK):
        stop = start + BLOCK
        total += float(np.dot(left[start:stop], diff[start:stop]))
    return total


def add_per_class(
    tally: ClassTally,
    probs: F64,
    targets: NDArray[np.intp],
    predicted: NDArray[np.intp],
    losses: F64,
    w: NDArray[Any] | None,
) -> None:
    """One chunk's counted rows into the per-class sums and the confusion counts (and, weighted,
    the confusion weights)."""
    c = tally.classes
    weights = None if w is None else np.asarray(w, dtype=np.float64)
    if weights is not None and not weights.all():  # a row of weight 0 is a row dropped
        kept = weights != 0
        probs, targets, predicted, losses, weights = (
            probs[kept],
            targets[kept],
            predicted[kept],
            losses[kept],
            weights[kept],
        )
    support = np.bincount(targets, minlength=c).astype(np.int64)
    sums = np.empty((c, 4))
    sums[:, 0] = support if weights is None else group_sum(targets, weights, c)
    sums[:, 1] = group_sum(targets, losses if weights is None else weights * losses, c)
    hit = predicted == targets
    sums[:, 2] = group_sum(targets[hit], None if weights is None else weights[hit], c)
    sums[:, 3] = probs.sum(axis=0) if weights is None else weights @ probs
    pairs = targets * c + predicted
    confusion = np.bincount(pairs, minlength=c * c).reshape(c, c).astype(np.int64)
    weight = None if weights is None else group_sum(pairs, weights, c * c).reshape(c, c)
    tally.add(support, sums, confusion, weight)
