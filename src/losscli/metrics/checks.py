"""Validation shared by the metrics: legal values, first bad cell, and how --input auto decides.

Every check raises ``DataProblem`` with chunk-local rows; the engine adds file names and global rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataProblem, UsageError

if TYPE_CHECKING:
    from .base import Scratch

PREDS = "preds"
TARGETS = "targets"

INPUT_KINDS = ("auto", "probs", "logits", "logprobs")

# A row of probabilities (or of exp(log-probabilities)) "sums to 1" within this. It accepts what
# real tools write: bf16 softmax outputs (rows off by ~2.5e-3), fp16 ones (~5e-4), and
# probabilities rounded to 2 decimals for up to 20 classes (20 x 0.005 = 0.1 in the worst case,
# ~0.013 typically); it rejects rows summing to 0.8 or less, or 1.2 or more. Used by --input auto
# to recognise probabilities; the rows are never renormalised.
PROB_SUM_TOLERANCE = 0.1
# bce --input auto: a first chunk with values outside [0, 1] is logits only when fewer than this
# share of its finite values lie in [0, 1]; at or above it, the out-of-range values are strays in
# a probability file and are refused (exit 2). Real logits straddle 0 with most outside [0, 1].
BCE_PROB_SHARE = 0.9
# Row-sum deviations above this are reported as a warning for probabilities (auto or given).
PROB_SUM_WARN = 1e-6
# Log-probabilities above 0 are refused, except up to this much, which is float rounding of a
# log-probability of 0: float32 `logits - logsumexp(logits)` rounds by up to ~4e-6 for logits
# near 60. The values are scored as given (a loss of at most -1e-5 nats per token).
LOGPROB_TOLERANCE = 1e-5


def first_bad_row(mask_ok: NDArray[np.bool_]) -> int:
    """Index of the first row where ``mask_ok`` (rows, or rows x cols) is False."""
    ok = mask_ok if mask_ok.ndim == 1 else mask_ok.all(axis=1)
    return int(np.argmin(ok))


def first_bad_cell(mask_ok: NDArray[np.bool_]) -> tuple[int, int | None]:
    row = first_bad_row(mask_ok)
    if mask_ok.ndim == 1:
        return row, None
    return row, int(np.argmin(mask_ok[row]))


def check_finite(arr: NDArray[Any], role: str) -> None:
    """Raise a DataProblem at the first NaN or inf in ``arr``."""
    if arr.dtype.kind not in "fc":
        return
    ok = np.isfinite(arr)
    if not ok.all():
        row, col = first_bad_cell(ok)
        value = arr[row] if col is None else arr[row, col]
        raise DataProblem(
            role, row, f"{value} is not a finite number (use --nan skip to drop such rows)", col
        )


def check_range(
    arr: NDArray[Any],
    role: str,
    what: str,
    low: float = 0.0,
    high: float = 1.0,
    hint: str = "",
    ambiguous: bool = False,
) -> tuple[float, float]:
    """Raise at the first value outside [low, high] (NaN included: it is not in range); else
    return the smallest and largest value (the math skips checks they rule out).

    ``ambiguous``: the meaning was guessed (--input auto), so the fix is an option: exit 2.
    """
    if arr.size == 0:
        return low, high
    lo = arr.min()
    hi = arr.max()
    if lo >= low and hi <= high:  # False for NaN, which then gets its own message below
        return float(lo), float(hi)
    check_finite(arr, role)
    ok = (arr >= low) & (arr <= high)
    row, col = first_bad_cell(ok)
    value = arr[row] if col is None else arr[row, col]
    raise DataProblem(
        role, row, f"{what} {value} is outside [{low:g}, {high:g}]{hint}", col, ambiguous=ambiguous
    )


def check_logprobs(arr: NDArray[Any], role: str, hint: str = "", ambiguous: bool = False) -> None:
    """Raise at the first log-probability above LOGPROB_TOLERANCE, or at the first NaN.

    -inf is legitimate (probability 0). One rule for ce --input logprobs and perplexity
    --logprobs, as check_range is for probabilities. ``ambiguous``: the kind was guessed, so the
    fix is an option (exit 2), not the data.
    """
    if arr.size == 0 or arr.dtype.kind not in "fiub":  # other kinds fail on their own later
        return
    hi = arr.max()
    if hi <= LOGPROB_TOLERANCE:  # False for NaN, which is looked for below
        return
    bad = arr > LOGPROB_TOLERANCE
    if arr.dtype.kind == "f":
        bad |= np.isnan(arr)
    row, col = first_bad_cell(~bad)
    value = arr[row] if col is None else arr[row, col]
    if np.isnan(value):
        raise DataProblem(role, row, "nan is not a log-probability (use --nan skip to drop such rows)", col)
    raise DataProblem(
        role,
        row,
        f"log-probability {value} is above 0 (more than the {LOGPROB_TOLERANCE:g} allowed for rounding)"
        + (hint or ": pass natural-log probabilities (<= 0)"),
        col,
        ambiguous=ambiguous,
    )


def need_targets(targets: NDArray[Any] | None) -> NDArray[Any]:
    if targets is None:
        raise UsageError("this metric needs targets")
    return targets


def squeeze_single(arr: NDArray[Any]) -> NDArray[Any]:
    """(n, 1) and (n,) mean the same thing for per-example values."""
    return arr[:, 0] if arr.ndim == 2 and arr.shape[1] == 1 else arr


def detect_scores(z: NDArray[Any], scored: NDArray[np.bool_] | None = None) -> str:
    """Decide probs / logprobs / logits from the first chunk, the way a person would eyeball it.

    Scores all in [0, 1] are probabilities when every row sums to 1 within PROB_SUM_TOLERANCE;
    when some row does not, they are refused (exit 2): unnormalised probabilities and small
    logits cannot be told apart, so the user must say. Scores all <= 0 (within
    LOGPROB_TOLERANCE) whose rows' exp sums to 1 within the same tolerance are
    log-probabilities; when no row's exp-sum is above 1 + tolerance but some is below 1 - tolerance,
    they are refused the same way (see ``_logprobs_or_logits``); anything else is logits.
    Rows holding NaN or +inf are left out: --nan decides about them when the chunk is scored.
    So are rows the ignore index removes (``scored`` False), unless no other row is left.
    Later chunks are checked against the choice.
    """
    zf = z.astype(np.float64)
    usable = ~(np.isnan(zf) | (zf == np.inf)).any(axis=1)
    if scored is not None and (usable & scored).any():
        usable &= scored
    rows = np.flatnonzero(usable)
    zf = zf[rows]
    if zf.size == 0:
        return "logits"
    lo, hi = float(zf.min()), float(zf.max())
    if lo >= 0 and hi <= 1:
        sums = zf.sum(axis=1)
        dev = np.abs(sums - 1.0)
        worst = int(np.argmax(dev))
        if dev[worst] <= PROB_SUM_TOLERANCE:
            return "probs"
        raise DataProblem(
            PREDS,
            int(rows[worst]),
            f"the scores are all in [0, 1] but this row sums to {sums[worst]:.6g}, the furthest from 1 "
            f"(probabilities sum to 1 within {PROB_SUM_TOLERANCE:g}): say what they are with "
            "--input probs (scored as given) or --input logits",
            ambiguous=True,
        )
    if hi > LOGPROB_TOLERANCE:
        return "logits"
    return _logprobs_or_logits(zf, rows)


def _logprobs_or_logits(zf: NDArray[np.float64], rows: NDArray[np.intp]) -> str:
    """Scores all <= 0: log-probabilities when every row's exp-sum is 1 within PROB_SUM_TOLERANCE,
    logits when some row's exceeds 1 + PROB_SUM_TOLERANCE (max-shifted logits: every row's max
    is 0, so its exp-sum is at least 1).

    Otherwise some row's exp-sum is below 1 - PROB_SUM_TOLERANCE and none above: top-k truncated
    log-probabilities look like that, and so do logits that happen to be all negative. Reading
    them as logits would renormalise them silently, so refuse (exit 2), as for probabilities.
    """
    sums = np.exp(zf).sum(axis=1)
    dev = np.abs(sums - 1.0)
    worst = int(np.argmax(dev))
    if dev[worst] <= PROB_SUM_TOLERANCE:
        return "logprobs"
    if sums.max() > 1.0 + PROB_SUM_TOLERANCE:
        return "logits"
    raise DataProblem(
        PREDS,
        int(rows[worst]),
        f"the scores are all <= 0 but this row's exp-sum is {sums[worst]:.6g}, the furthest from 1 "
        f"(log-probabilities' exp-sums are 1 within {PROB_SUM_TOLERANCE:g}; logits are not normalised): "
        "say what they are with --input logprobs (scored as given) or --input logits",
        ambiguous=True,
    )


def detect_binary(p: NDArray[Any]) -> str:
    """bce's --input auto: "probs" when the first chunk's finite values all lie in [0, 1],
    "logits" when fewer than BCE_PROB_SHARE of them do.

    In between the file is probabilities with stray values (a 1.7, a rounding 1.0000001): reading
    it all as logits would score every row wrong, so refuse at the first stray value (exit 2).
    Without this, one value decided the whole file's meaning, and whether it fell in the first
    chunk (so --chunk-size) decided the outcome.
    """
    finite = p[np.isfinite(p)] if p.dtype.kind == "f" else p
    if finite.size == 0 or (finite.min() >= 0 and finite.max() <= 1):
        return "probs"
    in_unit = int(np.count_nonzero((finite >= 0) & (finite <= 1)))
    if in_unit < BCE_PROB_SHARE * finite.size:
        return "logits"
    stray = (p < 0) | (p > 1)  # False for NaN; inf is not among the finite values counted above
    if p.dtype.kind == "f":
        stray &= np.isfinite(p)
    row, col = first_bad_cell(~stray)
    value = p[row] if col is None else p[row, col]
    raise DataProblem(
        PREDS,
        row,
        f"value {value} is outside [0, 1], but {in_unit:,} of the first chunk's {finite.size:,} "
        "values are in [0, 1], so --input auto cannot tell probabilities from logits: pass "
        "--input logits if they really are logits, or fix the value",
        col,
        ambiguous=True,
    )


def width(a: NDArray[Any]) -> int:
    return 1 if a.ndim == 1 else int(np.prod(a.shape[1:]))


def cell(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return tuple(float(x) for x in v.ravel())
    if isinstance(v, np.integer):
        return int(v)
    return float(v)


def check_score_rows(
    z: NDArray[Any],
    keep: NDArray[np.bool_] | None,
    input_kind: str | None,
    detected: bool,
    scratch: Scratch,
    where: str = "the first chunk",
) -> tuple[int, float] | None:
    """Refuse probabilities outside [0, 1] and log-probabilities above 0 (exit 3, or exit 2
    when --input auto guessed the kind); returns the scored row whose sum is furthest from 1.

    Rows are summed in float64 (log-probabilities through exp). Under --input auto every chunk
    must still look like what the first chunk was taken for: a row whose sum is outside
    PROB_SUM_TOLERANCE is refused with exit 2, never scored as a silent wrong number. Rows the
    ignore index removes (``keep`` False) are range-checked but their sums do not matter.
    """
    kind = "probabilities" if input_kind == "probs" else "log-probabilities"
    guessed = ""
    if detected:
        guessed = f", but --input auto read the scores as {kind} from {where}"
    rows = z.shape[0]
    sums = scratch.get("row_sums", (rows,), np.float64)
    if input_kind == "probs":
        what = "value" if guessed else "probability"
        fix = ": pass --input logits (or --input probs)" if guessed else ""
        check_range(z, PREDS, what, hint=guessed + fix, ambiguous=bool(guessed))
        np.sum(z, axis=1, out=sums, dtype=np.float64)
    else:
        fix = ": pass --input logits (or --input logprobs)" if guessed else ""
        check_logprobs(z, PREDS, hint=guessed + fix, ambiguous=bool(guessed))
        exp = scratch.get("exp", z.shape, np.float64)
        np.exp(z, out=exp, dtype=np.float64)
        np.sum(exp, axis=1, out=sums)
    dev = scratch.get("row_dev", (rows,), np.float64)
    np.subtract(sums, 1.0, out=dev)
    np.abs(dev, out=dev)
    if keep is not None:
        np.multiply(dev, keep, out=dev)
    worst = int(np.argmax(dev))
    if guessed and dev[worst] > PROB_SUM_TOLERANCE:
        total = "sum" if input_kind == "probs" else "exp-sum"
        raise DataProblem(
            PREDS,
            worst,
            f"this row's {kind} {total} to {sums[worst]:.6g}, not 1 (within {PROB_SUM_TOLERANCE:g})"
            f"{guessed}: pass --input logits, or --input {input_kind} to score them as given",
            ambiguous=True,
        )
    if keep is not None and not keep[worst]:  # every row of the chunk was ignored
        return None
    return worst, float(sums[worst])
