"""What each metric needs from an aligned chunk: validation, the loss call, and row details.

A metric object turns (preds, targets) of one chunk into per-example losses with the pure
functions in ``losses``. It owns the metric's rules (what shapes fit, what values are legal,
how ``--input auto`` decides) and reports problems as ``DataProblem`` with chunk-local rows;
the engine adds file names and global row numbers. Scratch buffers live on the metric and are
reused for every chunk.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from . import losses as L
from .errors import DataProblem, UsageError
from .sequences import SHIFT_DROP

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


@dataclass
class MetricChunk:
    """Per-example losses of one chunk, before weights and masks are applied by the engine."""

    losses: NDArray[np.float64]
    elements: NDArray[np.float64] | None = None  # (rows, k) per-output losses when k > 1
    companions: dict[str, NDArray[np.float64]] | None = None  # other per-example means, by name
    keep: NDArray[np.bool_] | None = None  # False for ignored rows (ignore_index)
    clamped: int = 0
    correct: NDArray[np.bool_] | None = None  # per-row top-1 hit, when the metric has one
    correct_k: NDArray[np.bool_] | None = None  # per-row top-k hit, with --topk
    ignored: int | None = None  # rows not kept because of --ignore-index (None: all not kept)
    ids: NDArray[np.intp] | None = None  # per-row target class, for the per-sequence breakdown
    # probabilities: the row (chunk-local) whose sum is furthest from 1, and that sum
    row_sum: tuple[int, float] | None = None


class Scratch:
    """Named buffers that grow to the largest chunk seen and are then reused as views."""

    def __init__(self) -> None:
        self._buffers: dict[str, NDArray[Any]] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any) -> NDArray[Any]:
        buf = self._buffers.get(name)
        rows = shape[0]
        if buf is not None and buf.shape[0] >= rows and buf.shape[1:] == shape[1:] and buf.dtype == dtype:
            return buf[:rows]
        buf = np.empty((max(rows, 1), *shape[1:]), dtype=dtype)
        self._buffers[name] = buf
        return buf[:rows]


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
) -> None:
    """Raise at the first value outside [low, high] (NaN included: it is not in range).

    ``ambiguous``: the meaning was guessed (--input auto), so the fix is an option: exit 2.
    """
    if arr.size == 0:
        return
    lo = arr.min()
    hi = arr.max()
    if lo >= low and hi <= high:  # False for NaN, which then gets its own message below
        return
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


def _need(targets: NDArray[Any] | None) -> NDArray[Any]:
    if targets is None:
        raise UsageError("this metric needs targets")
    return targets


def squeeze_single(arr: NDArray[Any]) -> NDArray[Any]:
    """(n, 1) and (n,) mean the same thing for per-example values."""
    return arr[:, 0] if arr.ndim == 2 and arr.shape[1] == 1 else arr


class Metric(ABC):
    """Base class: one instance per evaluation, bound to the shapes of the first chunk."""

    name: ClassVar[str]
    detail_columns: ClassVar[tuple[str, ...]] = ("prediction", "target")

    def __init__(self) -> None:
        self.scratch = Scratch()
        self.input_kind: str | None = None
        self.input_detected = False
        self.outputs = 1

    @abstractmethod
    def bind(self, preds: NDArray[Any], targets: NDArray[Any] | None) -> None:
        """Check shapes on the first chunk and settle anything auto-detected."""

    @abstractmethod
    def compute(
        self, preds: NDArray[Any], targets: NDArray[Any] | None, overwrite: bool = False
    ) -> MetricChunk:
        """Validate one chunk and return its per-example losses.

        ``overwrite`` says the preds buffer is scratch (a reader's own buffer) that the math
        may reuse in place; arrays a caller passed in are never modified.
        """

    @abstractmethod
    def describe(
        self,
        preds: NDArray[Any],
        targets: NDArray[Any] | None,
        rows: NDArray[np.intp],
        losses: NDArray[np.float64],
    ) -> list[tuple[Any, ...]]:
        """Breakdown cells (``detail_columns``) for a few chunk-local rows."""

    def clone(self) -> Metric:
        """The same bound metric with its own scratch buffers, for another worker thread."""
        twin = copy.copy(self)
        twin.scratch = Scratch()
        return twin

    def locate_nonfinite(self, preds: NDArray[Any], targets: NDArray[Any] | None) -> None:
        """Called when a chunk's loss sum is not finite: raise if an input is the cause."""
        check_finite(preds, PREDS)
        if targets is not None:
            check_finite(targets, TARGETS)


class ElementwiseMetric(Metric):
    """A loss per (prediction, target) element, over 1-D values or (N, k) multi-output arrays."""

    def bind(self, preds: NDArray[Any], targets: NDArray[Any] | None) -> None:
        p, t = squeeze_single(preds), squeeze_single(_need(targets))
        if p.ndim != t.ndim or (p.ndim == 2 and p.shape[1] != t.shape[1]):
            raise DataProblem(
                TARGETS,
                None,
                f"targets have {_width(t)} value(s) per row but predictions have {_width(p)}; "
                "pick matching columns with --pred-col/--target-col",
            )
        if p.ndim > 2:
            raise DataProblem(PREDS, None, f"{self.name} takes 1-D values or (N, k) arrays, not {p.ndim}-D")
        if p.ndim == 2 and p.shape[1] == 0:
            raise DataProblem(PREDS, None, "has rows with no values in them")
        self.outputs = 1 if p.ndim == 1 else p.shape[1]

    def describe(
        self,
        preds: NDArray[Any],
        targets: NDArray[Any] | None,
        rows: NDArray[np.intp],
        losses: NDArray[np.float64],
    ) -> list[tuple[Any, ...]]:
        p, t = squeeze_single(preds), squeeze_single(_need(targets))
        return [(_cell(p[r]), _cell(t[r])) for r in rows]


class RegressionMetric(ElementwiseMetric):
    """MSE and MAE."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name  # type: ignore[misc]
        self.companion = "mae" if name == "mse" else "mse"

    def compute(
        self, preds: NDArray[Any], targets: NDArray[Any] | None, overwrite: bool = False
    ) -> MetricChunk:
        p, t = squeeze_single(preds), squeeze_single(_need(targets))
        shape = p.shape
        # One subtraction serves both MSE and MAE: the other is reported beside the headline.
        diff = self.scratch.get("diff", shape, np.float64)
        sq = self.scratch.get("sq", shape, np.float64)
        ab = self.scratch.get("abs", shape, np.float64)
        L.regression_errors(p, t, diff, sq, ab)
        head, other = (sq, ab) if self.name == "mse" else (ab, sq)
        if self.outputs == 1:
            return MetricChunk(head, companions={self.companion: other})
        out = self.scratch.get("loss", (shape[0],), np.float64)
        comp = self.scratch.get("companion", (shape[0],), np.float64)
        np.mean(head, axis=1, out=out)
        np.mean(other, axis=1, out=comp)
        return MetricChunk(out, elements=head, companions={self.companion: comp})


class BCEMetric(ElementwiseMetric):
    """Binary cross-entropy from probabilities or logits, with hard or soft labels."""

    name = "bce"

    def __init__(self, input_kind: str = "auto") -> None:
        super().__init__()
        if input_kind not in ("auto", "probs", "logits"):
            raise UsageError(f"bce takes --input probs, logits or auto, not {input_kind}")
        self.requested = input_kind

    def bind(self, preds: NDArray[Any], targets: NDArray[Any] | None) -> None:
        super().bind(preds, targets)
        p = squeeze_single(preds)
        if self.requested == "auto":
            self.input_kind = _detect_binary(p)
            self.input_detected = True
        else:
            self.input_kind = self.requested

    def compute(
        self, preds: NDArray[Any], targets: NDArray[Any] | None, overwrite: bool = False
    ) -> MetricChunk:
        p, t = squeeze_single(preds), squeeze_single(_need(targets))
        check_range(t, TARGETS, "target")
        shape = p.shape
        elements = self.scratch.get("elements", shape, np.float64)
        work = self.scratch.get("work", shape, np.float64)
        clamped = 0
        if self.input_kind == "probs":
            hint = ""
            if self.input_detected:
                hint = (
                    ", but --input auto read the predictions as probabilities from the first chunk: "
                    "pass --input logits if they really are logits, or fix the value"
                )
            check_range(p, PREDS, "value" if hint else "probability", hint=hint, ambiguous=bool(hint))
            clamped = L.bce_from_probs(p, t, elements, work)
        else:
            L.bce_from_logits(p, t, elements, work)
        if self.outputs == 1:
            return MetricChunk(elements, clamped=clamped)
        out = self.scratch.get("loss", (shape[0],), np.float64)
        np.mean(elements, axis=1, out=out)
        return MetricChunk(out, elements=elements, clamped=clamped)


class CEMetric(Metric):
    """Categorical cross-entropy over (N, C) scores; perplexity is the same math on logits."""

    name = "ce"
    detail_columns = ("predicted", "p(target)", "target")

    def __init__(
        self,
        input_kind: str = "auto",
        ignore_index: int = -100,
        topk: int | None = None,
        labels: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if input_kind not in INPUT_KINDS:
            raise UsageError(f"--input must be one of {', '.join(INPUT_KINDS)}, not {input_kind}")
        if topk is not None and topk < 1:
            raise UsageError("--topk must be at least 1")
        self.requested = input_kind
        self.ignore_index = ignore_index
        self.topk = topk
        self.classes = 0
        self.soft = False
        # the class label of each score column, when the columns are named by labels that are
        # not their positions (scikit-learn's classes_ [1, 2, 3]); labels are mapped by name
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self._label_order = None if self.labels is None else np.argsort(self.labels, kind="stable")

    def bind(self, preds: NDArray[Any], targets: NDArray[Any] | None) -> None:
        z = preds
        if z.ndim != 2:
            raise DataProblem(
                PREDS, None, f"{self.name} needs scores of shape (N, C), one column per class; got {z.ndim}-D"
            )
        self.classes = z.shape[1]
        if self.classes < 2:
            raise DataProblem(
                PREDS, None, f"{self.name} needs at least 2 classes; the scores have {self.classes} column(s)"
            )
        t = squeeze_single(_need(targets))
        if t.ndim == 2:
            if t.shape[1] != self.classes:
                raise DataProblem(
                    TARGETS,
                    None,
                    f"targets have {t.shape[1]} columns but the scores have {self.classes} classes; "
                    "targets must be class ids (one column) or one row of C probabilities",
                )
            self.soft = True
        elif t.ndim != 1:
            raise DataProblem(TARGETS, None, "targets must be class ids (N,) or soft/one-hot rows (N, C)")
        if self.requested == "auto":
            scored = None if self.soft else np.asarray(t) != self.ignore_index
            self.input_kind = _detect_scores(z, scored)
            self.input_detected = True
        else:
            self.input_kind = self.requested

    def _work_dtype(self, z: NDArray[Any]) -> Any:
        return np.float32 if z.dtype in (np.float16, np.float32) else np.float64

    def _ids(self, t: NDArray[Any]) -> tuple[NDArray[np.intp], NDArray[np.bool_] | None, int]:
        """Class ids as intp, with ignored (and --shift dropped) rows mapped to class 0, a keep
        mask, and how many rows the ignore index removed.

        The ignore index masks whether or not it is a valid class id (GPT-2 pads with 50256, a
        real token): one (rows,) compare per chunk, so the result never depends on chunking.
        """
        rows = t.shape[0]
        ids = self.scratch.get("ids", (rows,), np.intp)
        if t.dtype.kind == "f":
            check_finite(t, TARGETS)
            integral = np.equal(np.floor(t), t)
            if not integral.all():
                r = first_bad_row(integral)
                raise DataProblem(TARGETS, r, f"class id {t[r]} is not a whole number")
        elif t.dtype.kind not in "iub":
            raise DataProblem(TARGETS, None, f"class ids must be integers, not {t.dtype}")
        np.copyto(ids, t, casting="unsafe")
        ignored = np.equal(ids, self.ignore_index, out=self.scratch.get("ignored", (rows,), np.bool_))
        if self.labels is not None:
            self._columns_of_labels(ids, ignored)
        n_ignored = int(np.count_nonzero(ignored))
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= self.classes:
            dropped = ids == SHIFT_DROP
            if dropped.any():
                n_ignored = int(np.count_nonzero(ignored & ~dropped))
                ignored |= dropped
            valid = ((ids >= 0) & (ids < self.classes)) | ignored
            if not valid.all():
                r = first_bad_row(valid)
                raise DataProblem(
                    TARGETS,
                    r,
                    f"class id {int(ids[r])} is out of range: the scores have {self.classes} classes "
                    f"(0..{self.classes - 1}; {self.ignore_index} is ignored)",
                )
        elif n_ignored == 0:
            return ids, None, 0
        ids[ignored] = 0
        keep = np.logical_not(ignored, out=self.scratch.get("keep", (rows,), np.bool_))
        return ids, keep, n_ignored

    def _columns_of_labels(self, ids: NDArray[np.intp], ignored: NDArray[np.bool_]) -> None:
        """Class labels -> the positions of the score columns named by them, in place."""
        assert self.labels is not None and self._label_order is not None
        ordered = self.labels[self._label_order]
        pos = np.searchsorted(ordered, ids)
        np.minimum(pos, len(ordered) - 1, out=pos)
        found = (ordered[pos] == ids) | ignored
        if not found.all():
            r = first_bad_row(found)
            known = ", ".join(str(v) for v in self.labels[:8].tolist()) + (
                ", ..." if len(self.labels) > 8 else ""
            )
            raise DataProblem(
                TARGETS,
                r,
                f"label {int(ids[r])} names no score column: the columns are named by the classes {known}",
            )
        np.take(self._label_order, pos, out=ids)  # ignored rows get a valid position; masked later

    def compute(
        self, preds: NDArray[Any], targets: NDArray[Any] | None, overwrite: bool = False
    ) -> MetricChunk:
        z = preds
        t = squeeze_single(_need(targets))
        rows = z.shape[0]
        out = self.scratch.get("loss", (rows,), np.float64)
        argmax = self.scratch.get("argmax", (rows,), np.intp)
        keep: NDArray[np.bool_] | None = None
        n_ignored = 0
        if self.soft:
            check_range(t, TARGETS, "target probability")
            target_class = np.argmax(t, axis=1)
        else:
            target_class, keep, n_ignored = self._ids(t)
        correct_k = None
        if self.topk is not None:
            # rank of the target = how many scores beat it; before the scores are overwritten
            target_score = np.take_along_axis(z, target_class[:, None], axis=1)
            correct_k = np.count_nonzero(z > target_score, axis=1) < self.topk
        clamped = 0
        row_sum = None
        if self.input_kind == "logits":
            self._logits_loss(z, t, target_class, argmax, out, overwrite)
        else:
            row_sum = self._check_scores(z, keep)
            np.argmax(z, axis=1, out=argmax)
            clamped = self._normalised_loss(z, t, target_class, out)
        correct = argmax == target_class
        return MetricChunk(
            out,
            keep=keep,
            clamped=clamped,
            correct=correct,
            correct_k=correct_k,
            ignored=n_ignored,
            ids=None if self.soft else target_class,
            row_sum=row_sum,
        )

    def _normalised_loss(
        self, z: NDArray[Any], t: NDArray[Any], target_class: NDArray[np.intp], out: NDArray[np.float64]
    ) -> int:
        """-log p[target] (or the soft form) from probabilities or log-probabilities, in float64."""
        work = self.scratch.get("work", z.shape, np.float64) if self.soft else None
        if self.input_kind == "probs":
            if work is not None:
                return L.ce_from_probs_soft(z, t, out, work)
            return L.ce_from_probs_ids(z, target_class, out)
        if work is not None:
            L.ce_from_logprobs_soft(z, t, out, work)
        else:
            L.ce_from_logprobs_ids(z, target_class, out)
        return 0

    def _check_scores(self, z: NDArray[Any], keep: NDArray[np.bool_] | None) -> tuple[int, float] | None:
        """Refuse probabilities outside [0, 1] and log-probabilities above 0 (exit 3, or exit 2
        when --input auto guessed the kind); returns the scored row whose sum is furthest from 1.

        Rows are summed in float64 (log-probabilities through exp). Under --input auto every chunk
        must still look like what the first chunk was taken for: a row whose sum is outside
        PROB_SUM_TOLERANCE is refused with exit 2, never scored as a silent wrong number. Rows the
        ignore index removes (``keep`` False) are range-checked but their sums do not matter.
        """
        kind = "probabilities" if self.input_kind == "probs" else "log-probabilities"
        guessed = ""
        if self.input_detected:
            guessed = f", but --input auto read the scores as {kind} from the first chunk"
        rows = z.shape[0]
        sums = self.scratch.get("row_sums", (rows,), np.float64)
        if self.input_kind == "probs":
            what = "value" if guessed else "probability"
            fix = ": pass --input logits (or --input probs)" if guessed else ""
            check_range(z, PREDS, what, hint=guessed + fix, ambiguous=bool(guessed))
            np.sum(z, axis=1, out=sums, dtype=np.float64)
        else:
            fix = ": pass --input logits (or --input logprobs)" if guessed else ""
            check_logprobs(z, PREDS, hint=guessed + fix, ambiguous=bool(guessed))
            exp = self.scratch.get("exp", z.shape, np.float64)
            np.exp(z, out=exp, dtype=np.float64)
            np.sum(exp, axis=1, out=sums)
        dev = self.scratch.get("row_dev", (rows,), np.float64)
        np.subtract(sums, 1.0, out=dev)
        np.abs(dev, out=dev)
        if keep is not None:
            np.multiply(dev, keep, out=dev)
        worst = int(np.argmax(dev))
        if guessed and dev[worst] > PROB_SUM_TOLERANCE:
            total = "sum" if self.input_kind == "probs" else "exp-sum"
            raise DataProblem(
                PREDS,
                worst,
                f"this row's {kind} {total} to {sums[worst]:.6g}, not 1 (within {PROB_SUM_TOLERANCE:g})"
                f"{guessed}: pass --input logits, or --input {self.input_kind} to score them as given",
                ambiguous=True,
            )
        if keep is not None and not keep[worst]:  # every row of the chunk was ignored
            return None
        return worst, float(sums[worst])

    def _logits_loss(
        self,
        z: NDArray[Any],
        t: NDArray[Any],
        target_class: NDArray[np.intp],
        argmax: NDArray[np.intp],
        out: NDArray[np.float64],
        overwrite: bool,
    ) -> None:
        """lse(z) - z[target] (or the soft-target form), in float32 for float16/32 logits.

        When the chunk buffer is scratch (``overwrite``), the exp runs in place:
        one (rows, V) buffer instead of two, which keeps a chunk of a 50k-vocabulary in cache.
        """
        rows = z.shape[0]
        wdt = self._work_dtype(z)
        row_max = self.scratch.get("row_max", (rows,), wdt)
        row_sum = self.scratch.get("row_sum", (rows,), wdt)
        lse = self.scratch.get("lse", (rows,), np.float64)
        L.row_max_and_argmax(z, argmax, row_max)
        max_range = (float(row_max.min()), float(row_max.max()))  # NaN in any row max shows in both
        if not (math.isfinite(max_range[0]) and math.isfinite(max_range[1])):
            r = first_bad_row(np.isfinite(row_max))
            raise DataProblem(PREDS, r, "holds NaN or +inf logits (use --nan skip to drop such rows)")
        if self.soft:
            work = self.scratch.get("work", z.shape, wdt)
            L.lse_above_max(z, row_max, argmax, work, row_sum, lse, max_range)
            np.add(lse, row_max, out=lse)
            ysum = self.scratch.get("ysum", (rows,), np.float64)
            L.ce_from_logits_soft(z, squeeze_single(t), lse, out, work, ysum)
            return
        L.gather(z, target_class, out)  # before z may be overwritten
        in_place = overwrite and z.dtype == wdt and z.flags.writeable and z.flags.c_contiguous
        work = z if in_place else self.scratch.get("work", z.shape, wdt)
        L.lse_above_max(z, row_max, argmax, work, row_sum, lse, max_range)
        # loss = (lse - max) + (max - z[target]): the difference of two nearby logits is exact,
        # so logits far from zero (a 1e7 offset) lose nothing to cancellation
        np.subtract(row_max, out, out=out)
        np.add(out, lse, out=out)

    def locate_nonfinite(self, preds: NDArray[Any], targets: NDArray[Any] | None) -> None:
        """-inf scores are legitimate (a masked class, probability 0); NaN never is."""
        if targets is not None:
            check_finite(targets, TARGETS)
        if preds.dtype.kind == "f" and self.input_kind != "logits":
            nan = np.isnan(preds)
            if nan.any():
                row, col = first_bad_cell(~nan)
                raise DataProblem(PREDS, row, "nan is not a number (use --nan skip to drop such rows)", col)

    def describe(
        self,
        preds: NDArray[Any],
        targets: NDArray[Any] | None,
        rows: NDArray[np.intp],
        losses: NDArray[np.float64],
    ) -> list[tuple[Any, ...]]:
        t = squeeze_single(_need(targets))
        argmax = self.scratch.get("argmax", (preds.shape[0],), np.intp)  # from compute, same chunk
        cells: list[tuple[Any, ...]] = []
        for r, loss in zip(rows, losses, strict=True):
            predicted = int(argmax[r]) if self.labels is None else int(self.labels[argmax[r]])
            if self.soft:
                target: Any = int(np.argmax(t[r]))
                p_target = math.nan
            else:
                target = int(t[r])
                p_target = math.exp(-float(loss))
            cells.append((predicted, p_target, target))
        return cells


class LogprobMetric(Metric):
    """Perplexity from log-probabilities of the target tokens, already gathered: loss = -lp.

    This is what inference servers return, so nobody has to store logits. There are no
    targets: the preds column is the natural-log probability of each scored token.
    """

    name = "perplexity"
    detail_columns = ("log-prob",)

    def __init__(self) -> None:
        super().__init__()
        self.input_kind = "logprobs"

    def bind(self, preds: NDArray[Any], targets: NDArray[Any] | None) -> None:
        if squeeze_single(preds).ndim != 1:
            raise DataProblem(PREDS, None, "log-probabilities must be one value per token")

    def compute(
        self, preds: NDArray[Any], targets: NDArray[Any] | None, overwrite: bool = False
    ) -> MetricChunk:
        lp = squeeze_single(preds)
        check_logprobs(lp, PREDS)  # the same rule and tolerance as ce --input logprobs
        out = self.scratch.get("loss", (len(lp),), np.float64)
        np.negative(lp, out=out)
        return MetricChunk(out)

    def locate_nonfinite(self, preds: NDArray[Any], targets: NDArray[Any] | None) -> None:
        """-inf (probability 0) is a legitimate infinite loss; NaN is never a log-probability."""
        lp = squeeze_single(preds)
        nan = np.isnan(lp)
        if nan.any():
            raise DataProblem(PREDS, int(np.argmax(nan)), "nan is not a log-probability (use --nan skip)")

    def describe(
        self,
        preds: NDArray[Any],
        targets: NDArray[Any] | None,
        rows: NDArray[np.intp],
        losses: NDArray[np.float64],
    ) -> list[tuple[Any, ...]]:
        lp = squeeze_single(preds)
        return [(float(lp[r]),) for r in rows]


def _detect_scores(z: NDArray[Any], scored: NDArray[np.bool_] | None = None) -> str:
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


def _detect_binary(p: NDArray[Any]) -> str:
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


def _width(a: NDArray[Any]) -> int:
    return 1 if a.ndim == 1 else int(np.prod(a.shape[1:]))


def _cell(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return tuple(float(x) for x in v.ravel())
    if isinstance(v, np.integer):
        return int(v)
    return float(v)


def make_metric(
    name: str,
    input_kind: str = "auto",
    ignore_index: int = -100,
    topk: int | None = None,
    labels: Sequence[int] | None = None,
) -> Metric:
    """The metric object for a command name; ``labels``: ce's class label of each score column."""
    if name in ("mse", "mae"):
        return RegressionMetric(name)
    if name == "bce":
        return BCEMetric(input_kind)
    if name == "ce":
        return CEMetric(input_kind, ignore_index, topk, labels)
    if name == "perplexity":
        m = CEMetric("logits" if input_kind == "auto" else input_kind, ignore_index, topk)
        m.name = "perplexity"  # type: ignore[misc]
        return m
    raise UsageError(f"unknown metric {name!r}")
