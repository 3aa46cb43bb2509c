"""Per-chunk loss math: arrays in, per-example losses out. No I/O, no state, no file names.

Every function writes into caller-owned buffers (``out=``, ``work=``) so the streaming loop can
reuse the same memory for every chunk: on these machines fresh pages cost far more than the math.

Definitions follow the lesson (shared/seed/loss-functions-lesson.txt), in natural-log units:

* squared error  (p - y)^2           absolute error  |p - y|
* binary CE      -[y log p + (1 - y) log(1 - p)]
* categorical CE -sum_c y_c log p_c  (with class ids: -log p[target])

Inputs are widened before any arithmetic: every ufunc that reads an input array runs its float64
loop (``dtype=np.float64``, a buffered cast, no temporary), so float16 or float32 predictions
give the float64 result on the stored values; the logits path keeps its documented float32 work.

Probabilities are never clipped silently. As in ``torch.nn.functional.binary_cross_entropy``,
each log term is clamped at ``LOG_CLAMP`` (-100) so that p = 0 scores a large finite loss
instead of inf or NaN; callers count the clamped entries and report them.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numpy.typing import NDArray

LOG_CLAMP = -100.0

FloatArray = NDArray[np.floating]
IntArray = NDArray[np.integer]


def _clamp(out: FloatArray) -> bool:
    """Clamp logs in ``out`` at LOG_CLAMP; returns whether any entry needed it."""
    if float(out.min(initial=0.0)) < LOG_CLAMP:
        np.maximum(out, LOG_CLAMP, out=out)
        return True
    return False


def _log_clamped(x: FloatArray, out: FloatArray) -> bool:
    """log(x) clamped at LOG_CLAMP into float64 ``out``; returns whether any entry needed the clamp.

    The log runs in float64 whatever x's dtype: with ``out=`` alone numpy would pick x's loop
    (float16 or float32) and only widen the rounded result.
    """
    with np.errstate(divide="ignore"):
        np.log(x, out=out, dtype=np.float64)
    return _clamp(out)


def regression_errors(
    pred: FloatArray, target: FloatArray, diff: FloatArray, sq_out: FloatArray, abs_out: FloatArray
) -> None:
    """Squared and absolute errors from a single subtraction, in float64 whatever the inputs.

    ``dtype=np.float64`` makes numpy cast each operand as it goes (no temporary) and subtract in
    float64: with ``out=`` alone, float16 inputs would be subtracted in float16 and integers
    could wrap around before the result is widened.
    """
    np.subtract(pred, target, out=diff, dtype=np.float64)
    np.multiply(diff, diff, out=sq_out)
    np.abs(diff, out=abs_out)


def bce_from_probs(
    p: FloatArray,
    y: FloatArray,
    out: FloatArray,
    work: FloatArray,
    bounds: tuple[float, float] = (0.0, 1.0),
    counted: NDArray[np.bool_] | None = None,
) -> int:
    """-[y log p + (1 - y) log(1 - p)] into ``out``; returns how many examples were clamped.

    An example counts as clamped only when a clamped log term carries weight (y > 0 for
    log p, y < 1 for log(1 - p)): p = 1 with y = 1 is a perfect prediction, not a clamp.
    Written as (log(1-p) - log p) y - log(1-p) (the same bits as -(log(1-p) + y (log p -
    log(1-p)))) so no 0 * -inf is ever formed. ``bounds``: the smallest and largest p, from the
    caller's range check: a log that cannot reach LOG_CLAMP is not searched for one.
    ``counted``: only these examples' clamps are counted (the others are scored elsewhere).
    """
    clamped = 0
    with np.errstate(divide="ignore"):
        np.log(p, out=out, dtype=np.float64)  # out = log p
    if bounds[0] <= SMALLEST_UNCLAMPED and _clamp(out):
        hit = (out <= LOG_CLAMP) & (y > 0)
        clamped += int(np.count_nonzero(hit if counted is None else hit & counted))
    np.negative(p, out=work, dtype=np.float64)
    with np.errstate(divide="ignore"):
        np.log1p(work, out=work)  # work = log(1 - p): >= log(2**-53) > LOG_CLAMP when p < 1
    if bounds[1] >= 1.0 and _clamp(work):
        hit = (work <= LOG_CLAMP) & (y < 1)
        clamped += int(np.count_nonzero(hit if counted is None else hit & counted))
    np.subtract(work, out, out=out)
    np.multiply(out, y, out=out)
    np.subtract(out, work, out=out)
    return clamped


#: log(p) > LOG_CLAMP for every p above this (exp(-100) = 3.72e-44)
SMALLEST_UNCLAMPED = 4e-44
#: float32 (and float16) values >= 2**-30 are multiples of 2**-53: 1 - p is exact in float64
EXACT_FROM_FLOAT32 = 2.0**-30


def label_kinds(y: NDArray[Any], ones: NDArray[np.bool_], zeros: NDArray[np.bool_]) -> int:
    """How many labels are exactly 0 or 1; ``ones`` and ``zeros`` receive y == 1 and y == 0.
    Integer and bool labels are all 0 or 1 once the caller's range check has passed."""
    np.equal(y, 1, out=ones)
    if y.dtype.kind in "biu":
        np.logical_not(ones, out=zeros)
        return int(y.size)
    np.equal(y, 0, out=zeros)
    return int(np.count_nonzero(ones)) + int(np.count_nonzero(zeros))


def single_log_applies(p: NDArray[Any]) -> bool:
    """Whether ``bce_from_hard_labels`` scores these predictions: float32 or float16, whose
    values are exact in the float64 math (the choice is by dtype, fixed for a run, so no
    loss depends on the chunk it came in)."""
    return p.dtype.kind == "f" and p.dtype.itemsize <= 4


def bce_from_hard_labels(
    p: FloatArray,
    y: FloatArray,
    diff: FloatArray,
    out: FloatArray,
    bounds: tuple[float, float],
    counted: NDArray[np.bool_] | None = None,
) -> int:
    """BCE of float32 (or float16) probabilities against labels exactly 0 or 1, with one log
    per example instead of two: -log q where q = 1 - |p - y| is p (y = 1) or 1 - p (y = 0),
    both exact in float64 for p >= 2**-30 or p = 0. The few others (0 < p < 2**-30) are
    scored by ``bce_from_probs``. Returns the clamped count (only where ``counted``, when
    given); ``diff`` keeps p - y (the Brier score's term). ``bounds``: p's smallest and
    largest value, from the caller's range check.
    """
    np.subtract(p, y, out=diff, dtype=np.float64)
    np.abs(diff, out=out)
    np.subtract(1.0, out, out=out)
    with np.errstate(divide="ignore"):
        np.log(out, out=out)
    np.subtract(0.0, out, out=out)  # not negative: -log 1 would be -0.0
    if bounds[0] < EXACT_FROM_FLOAT32:
        _rescore_tiny(p, y, out)
    if bounds[0] > SMALLEST_UNCLAMPED and bounds[1] < 1.0:
        return 0  # q > 0 and p > exp(-100): no loss above -LOG_CLAMP
    if float(out.max(initial=0.0)) <= -LOG_CLAMP:
        return 0
    over = out > -LOG_CLAMP
    clamped = int(np.count_nonzero(over if counted is None else over & counted))
    np.minimum(out, -LOG_CLAMP, out=out)
    return clamped


def _rescore_tiny(p: FloatArray, y: FloatArray, out: FloatArray) -> None:
    """Predictions in (0, 2**-30), whose 1 - p rounds in float64: both logs, as soft labels
    are scored (clamped there, so the caller's clamp finds and counts them)."""
    tiny = np.nonzero((p > 0) & (p < EXACT_FROM_FLOAT32))
    if not len(tiny[0]):
        return
    pt, yt = p[tiny], y[tiny]
    scored, work = np.empty(len(pt)), np.empty(len(pt))
    bce_from_probs(pt, yt, scored, work)
    out[tiny] = np.where(scored >= -LOG_CLAMP, np.inf, scored)  # clamped: counted by the caller


def bce_from_logits(x: FloatArray, y: FloatArray, out: FloatArray, work: FloatArray) -> FloatArray:
    """max(x, 0) - x y + log1p(exp(-|x|)): finite for any finite logit, exact in the tails."""
    np.abs(x, out=work)
    np.negative(work, out=work)
    np.exp(work, out=work)
    np.log1p(work, out=work)
    np.maximum(x, 0.0, out=out, dtype=np.float64)
    np.add(out, work, out=out)
    np.multiply(x, y, out=work, dtype=np.float64)  # float16 x * y would round in float16
    np.subtract(out, work, out=out)
    return out


def row_max_and_argmax(z: FloatArray, argmax_out: IntArray, max_out: FloatArray) -> None:
    """Row-wise argmax and the max it points at, in one pass over the scores."""
    np.argmax(z, axis=1, out=argmax_out)
    max_out[...] = z[np.arange(len(z)), argmax_out]


@functools.lru_cache(maxsize=16)
def _unshifted_exp_ceiling(width: int, dtype: np.dtype[Any]) -> float:
    return float(np.log(np.finfo(dtype).max)) - float(np.log(max(width, 1))) - 2.0


def exp_is_safe_unshifted(lo: float, hi: float, width: int, dtype: Any) -> bool:
    """Whether sum(exp(z)) over each row is finite and well above underflow without the shift,
    for row maxima in [lo, hi].

    With every row max in [-60, log(max) - log(width) - 2], no term overflows, no row sum
    exceeds the float range, and the largest term stays a normal number, so the unshifted sum
    is as accurate as the shifted one (floating point is scale-invariant) and one pass cheaper.
    """
    return lo >= -60.0 and hi <= _unshifted_exp_ceiling(width, np.dtype(dtype))


def lse_above_max(
    z: FloatArray,
    row_max: FloatArray,
    argmax: IntArray,
    work: FloatArray,
    row_sum: FloatArray,
    out: FloatArray,
    max_range: tuple[float, float],
) -> FloatArray:
    """lse(z) - max(z) per row, into float64 ``out``, as log1p of the non-maximal terms.

    The largest term (exactly 1 after the shift) is left out of the sum and added back by
    log1p, so a confident row (lse barely above its max) keeps full relative precision even
    when the terms are float32. ``work`` has z's shape (it may be z itself, to work in place).
    The max shift is skipped when ``exp_is_safe_unshifted``: one pass fewer over the chunk.
    ``max_range`` is (min, max) of ``row_max``, which the caller needs for its own checks.
    """
    shifted = not exp_is_safe_unshifted(*max_range, z.shape[1], work.dtype)
    if shifted:
        np.subtract(z, row_max[:, None], out=work)
        np.exp(work, out=work)
    else:
        np.exp(z, out=work, dtype=work.dtype)  # float16 logits: the exp runs in float32
    work[np.arange(len(work)), argmax] = 0.0
    row_sums(work, row_sum)
    np.copyto(out, row_sum)
    if not shifted:
        out *= np.exp(-row_max.astype(np.float64))
    np.log1p(out, out=out)
    return out


_ONES: dict[tuple[int, Any], FloatArray] = {}


def row_sums(work: FloatArray, out: FloatArray) -> None:
    """Row sums of positive terms: a matrix-vector product with ones.

    For float32 this is 2x faster than numpy's pairwise reduction along rows, and as accurate
    in practice (about 2e-7 relative for 50k positive terms, against 1.3e-7), because BLAS
    keeps many partial sums; the float64 reduction is used otherwise.
    """
    if work.dtype != np.float32 or not work.flags.c_contiguous:
        np.sum(work, axis=1, out=out)
        return
    key = (work.shape[1], work.dtype)
    ones = _ONES.get(key)
    if ones is None:
        ones = _ONES.setdefault(key, np.ones(work.shape[1], dtype=work.dtype))
    np.matmul(work, ones, out=out)


def gather(z: FloatArray, ids: IntArray, out: FloatArray) -> FloatArray:
    """z[i, ids[i]] for every row, without a (rows, C) temporary."""
    out[...] = z[np.arange(len(z)), ids]
    return out


def soft_dot(y: FloatArray, s: FloatArray, work: FloatArray, out: FloatArray) -> FloatArray:
    """sum_c y_c s_c per row, treating y_c = 0 as contributing exactly 0 (never 0 * -inf)."""
    # in at least work's precision: float16 y and s would otherwise be multiplied in float16
    np.multiply(y, s, out=work, dtype=np.promote_types(np.result_type(y, s), work.dtype))
    work[y == 0] = 0.0
    np.sum(work, axis=1, out=out)
    return out


def ce_from_logits_soft(
    z: FloatArray, y: FloatArray, lse: FloatArray, out: FloatArray, work: FloatArray, ysum: FloatArray
) -> FloatArray:
    """-sum_c y_c (z_c - lse) = lse * sum(y) - y . z  for soft or one-hot targets."""
    soft_dot(y, z, work, out)
    np.sum(y, axis=1, out=ysum, dtype=np.float64)
    np.multiply(ysum, lse, out=ysum)
    np.subtract(ysum, out, out=out)
    return out


def ce_from_probs_ids(p: FloatArray, ids: IntArray, out: FloatArray) -> int:
    """-log p[id] with the log clamp; returns the number of clamped examples."""
    gather(p, ids, out)
    clamped = 0
    if _log_clamped(out, out):
        clamped = int(np.count_nonzero(out <= LOG_CLAMP))
    np.negative(out, out=out)
    return clamped


def ce_from_probs_soft(p: FloatArray, y: FloatArray, out: FloatArray, work: FloatArray) -> int:
    """-sum_c y_c log p_c with the log clamp; entries with y_c = 0 contribute exactly 0.

    Returns the number of examples with a clamped term that carries target mass.
    """
    clamped = 0
    if _log_clamped(p, work):
        hit = (work <= LOG_CLAMP) & (y > 0)
        clamped = int(np.count_nonzero(hit.any(axis=1)))
    soft_dot(y, work, work, out)
    np.negative(out, out=out)
    return clamped


def ce_from_logprobs_ids(lp: FloatArray, ids: IntArray, out: FloatArray) -> FloatArray:
    """-logprob[id]."""
    gather(lp, ids, out)
    np.negative(out, out=out)
    return out


def ce_from_logprobs_soft(lp: FloatArray, y: FloatArray, out: FloatArray, work: FloatArray) -> FloatArray:
    """-sum_c y_c logprob_c; entries with y_c = 0 contribute 0."""
    soft_dot(y, lp, work, out)
    np.negative(out, out=out)
    return out


def probabilities_of(
    scores: NDArray[Any], kind: str | None, out: NDArray[np.float64] | None = None
) -> NDArray[np.float64]:
    """Float64 probabilities from probabilities, logits or log-probabilities: bce's 1-D (or
    per-output) sigmoid, ce's (rows, C) softmax, for --calibration/--per-class. ``out``: a
    scratch buffer of the same shape (a fresh array per chunk costs its page faults)."""
    if kind == "probs" and out is not None:
        np.copyto(out, scores, casting="unsafe")
        return out
    z = np.asarray(scores, dtype=np.float64)
    if kind == "probs":
        return z.copy() if z is scores else z  # never the caller's (or reader's) own buffer
    if kind == "logprobs":
        probs: NDArray[np.float64] = np.exp(z)
        return probs
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(z))
    sig: NDArray[np.float64] = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return sig


def softmax64(z: NDArray[Any]) -> NDArray[np.float64]:
    """Rows of (rows, C) logits as float64 probabilities (max-shifted)."""
    x: NDArray[np.float64] = np.asarray(z, dtype=np.float64)
    x = x - x.max(axis=1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=1, keepdims=True)
    return x
