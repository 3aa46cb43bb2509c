"""Categorical cross-entropy over (N, C) scores: class ids or soft targets, with perplexity,
bits and accuracy beside it. Perplexity scores logits with the same ``CEScorer``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataProblem
from ..options import IGNORE_INDEX_DEFAULT
from ..sequences import SHIFT_DROP
from . import kernels as K
from .base import Figure, MetricChunk, MetricDef, MetricOption, Scorer
from .calibration import OPTIONS as CALIBRATION_OPTIONS
from .calibration import PER_CLASS, calibration_figures, check_calibration_options, check_per_class
from .checks import (
    PREDS,
    TARGETS,
    check_finite,
    check_range,
    check_score_rows,
    detect_scores,
    first_bad_cell,
    first_bad_row,
    need_targets,
    squeeze_single,
)
from .common import LN2, accuracy_figures, interpret_perplexity, safe_exp
from .labels import ClassMap, Label, check_binding, parse_classes
from .shortcuts import Source, pair_shortcut

if TYPE_CHECKING:
    from ..results.report import Report
    from ..state.evalstate import EvalState

INPUT = MetricOption(
    "input",
    "--input",
    "choice",
    "auto",
    "Scores are probabilities, logits or log-probabilities; auto decides from the first chunk.",
    choices=("auto", "probs", "logits", "logprobs"),
)
IGNORE_INDEX = MetricOption(
    "ignore_index",
    "--ignore-index",
    "int",
    IGNORE_INDEX_DEFAULT,
    "Target value that marks rows to skip (as in torch).",
    merge_key=True,
)
CLASSES = MetricOption(
    "classes",
    "--classes",
    "str",
    None,
    "The class of each score column, in order, separated by commas (clf.classes_: cat,dog,bird or "
    "1,2,3): labels are matched to these, not taken as column positions. Needed for text labels "
    "when the scores have no column names (.npy); a wide file's column names are its classes.",
    metavar="C1,C2,...",
    merge_key=True,
    parse=parse_classes,
)


class CEScorer(Scorer):
    """Categorical cross-entropy over (N, C) scores; perplexity is the same math on logits."""

    detail_columns = ("predicted", "p(target)", "target")

    def __init__(
        self,
        name: str,
        input_kind: str = "auto",
        ignore_index: int = IGNORE_INDEX_DEFAULT,
        topk: int | None = None,
        labels: Sequence[Label] | None = None,
        classes: Sequence[Label] | str | None = None,
        text_targets: bool = False,
    ) -> None:
        """``labels``: the score columns' names when they are class labels (integers that are
        not positions; any names when the targets are text); ``classes``: --classes, which
        wins; ``text_targets``: the plan reads the targets as text (also found from the dtype)."""
        super().__init__(name)
        self.requested = input_kind
        self.ignore_index = ignore_index
        self.topk = topk
        self.soft = False
        self.keep_probs = False  # --calibration/--per-class: the chunk's probabilities go to the state
        self.per_class = False
        self.text_targets = text_targets
        given = parse_classes(classes)
        self.classmap: ClassMap | None = None
        if given is not None:
            self.classmap = ClassMap(given, "--classes")
        elif labels is not None:
            self.classmap = ClassMap(tuple(labels), "the score columns' names")
        # the class label of each score column; labels are matched to them, not positions
        self.labels = None if self.classmap is None else self.classmap.labels

    def bind(self, preds: NDArray[Any], targets: NDArray[Any] | None) -> None:
        z = preds
        if z.ndim != 2:
            raise DataProblem(
                PREDS, None, f"{self.name} needs scores of shape (N, C), one column per class; got {z.ndim}-D"
            )
        self.classes = z.shape[1]
        if self.per_class:
            check_per_class(self.classes)
        if self.classes < 2:
            raise DataProblem(
                PREDS, None, f"{self.name} needs at least 2 classes; the scores have {self.classes} column(s)"
            )
        t = squeeze_single(need_targets(targets))
        if t.ndim == 2:
            if t.shape[1] != self.classes:
                raise DataProblem(
                    TARGETS,
                    None,
                    f"targets have {t.shape[1]} columns but the scores have {self.classes} classes; "
                    "targets must be class ids (one column) or one row of C probabilities",
                )
            self.soft = True  # with --calibration/--per-class, only one-hot rows (checked per chunk)
        elif t.ndim != 1:
            raise DataProblem(TARGETS, None, "targets must be class ids (N,) or soft/one-hot rows (N, C)")
        self.text_targets = self.text_targets or t.dtype.kind in "OUS"
        check_binding(self.classmap, self.classes, t if self.text_targets else None)
        if self.requested == "auto":
            scored = None if (self.soft or self.text_targets) else np.asarray(t) != self.ignore_index
            self.input_kind = detect_scores(z, scored)
            self.input_detected = True
        else:
            self.forced_kind(self.requested)

    def _work_dtype(self, z: NDArray[Any]) -> Any:
        return np.float32 if z.dtype in (np.float16, np.float32) else np.float64

    def _ids(self, t: NDArray[Any]) -> tuple[NDArray[np.intp], NDArray[np.bool_] | None, int]:
        """Class ids as intp, with ignored (and --shift dropped) rows mapped to class 0, a keep
        mask, and how many rows the ignore index removed.

        The ignore index masks whether or not it is a valid class id (GPT-2 pads with 50256, a
        real token): one (rows,) compare per chunk, so the result never depends on chunking.
        """
        rows = t.shape[0]
        if self.text_targets:
            assert self.classmap is not None
            return self.classmap.columns_of_text(t, self.ignore_index, self.scratch)
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
        if self.classmap is not None:
            self.classmap.columns_of_numbers(ids, ignored)
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
                    f"(0..{self.classes - 1}; {self.ignore_index} is ignored); class ids are column "
                    "positions: for labels such as scikit-learn's classes_ 1,2,3 pass --classes",
                )
        elif n_ignored == 0:
            return ids, None, 0
        ids[ignored] = 0
        keep = np.logical_not(ignored, out=self.scratch.get("keep", (rows,), np.bool_))
        return ids, keep, n_ignored

    def compute(
        self, preds: NDArray[Any], targets: NDArray[Any] | None, overwrite: bool = False
    ) -> MetricChunk:
        z = preds
        t = squeeze_single(need_targets(targets))
        rows = z.shape[0]
        out = self.scratch.get("loss", (rows,), np.float64)
        argmax = self.scratch.get("argmax", (rows,), np.intp)
        keep: NDArray[np.bool_] | None = None
        n_ignored = 0
        if self.soft:
            check_range(t, TARGETS, "target probability")
            target_class = np.argmax(t, axis=1)
            if self.keep_probs:  # one-hot rows (Keras' to_categorical) are class ids; soft ones are not
                _refuse_soft(t)
        else:
            target_class, keep, n_ignored = self._ids(t)
        correct_k = None
        if self.topk is not None:
            # rank of the target = how many scores beat it; before the scores are overwritten
            target_score = np.take_along_axis(z, target_class[:, None], axis=1)
            correct_k = np.count_nonzero(z > target_score, axis=1) < self.topk
        clamped = 0
        row_sum = None
        probs = None  # --calibration/--per-class: before the logits' exp may overwrite z
        if self.keep_probs:
            probs = K.softmax64(z) if self.input_kind == "logits" else K.probabilities_of(z, self.input_kind)
        if self.input_kind == "logits":
            self._logits_loss(z, t, target_class, argmax, out, overwrite)
        else:
            row_sum = check_score_rows(
                z, keep, self.input_kind, self.input_detected, self.scratch, self.detected_where
            )
            np.argmax(z, axis=1, out=argmax)
            clamped = self._normalised_loss(z, t, target_class, out)
        correct = argmax == target_class
        return MetricChunk(
            out,
            probs=probs,
            prob_targets=None if probs is None else target_class,
            keep=keep,
            clamped=clamped,
            correct=correct,
            correct_k=correct_k,
            ignored=n_ignored,
            ids=None if self.soft else target_class,
            predicted=argmax,
            row_sum=row_sum,
        )

    def _normalised_loss(
        self, z: NDArray[Any], t: NDArray[Any], target_class: NDArray[np.intp], out: NDArray[np.float64]
    ) -> int:
        """-log p[target] (or the soft form) from probabilities or log-probabilities, in float64."""
        work = self.scratch.get("work", z.shape, np.float64) if self.soft else None
        if self.input_kind == "probs":
            if work is not None:
                return K.ce_from_probs_soft(z, t, out, work)
            return K.ce_from_probs_ids(z, target_class, out)
        if work is not None:
            K.ce_from_logprobs_soft(z, t, out, work)
        else:
            K.ce_from_logprobs_ids(z, target_class, out)
        return 0

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
        K.row_max_and_argmax(z, argmax, row_max)
        max_range = (float(row_max.min()), float(row_max.max()))  # NaN in any row max shows in both
        if not (math.isfinite(max_range[0]) and math.isfinite(max_range[1])):
            r = first_bad_row(np.isfinite(row_max))
            raise DataProblem(PREDS, r, "holds NaN or +inf logits (use --nan skip to drop such rows)")
        if self.soft:
            work = self.scratch.get("work", z.shape, wdt)
            K.lse_above_max(z, row_max, argmax, work, row_sum, lse, max_range)
            np.add(lse, row_max, out=lse)
            ysum = self.scratch.get("ysum", (rows,), np.float64)
            K.ce_from_logits_soft(z, squeeze_single(t), lse, out, work, ysum)
            return
        K.gather(z, target_class, out)  # before z may be overwritten
        in_place = overwrite and z.dtype == wdt and z.flags.writeable and z.flags.c_contiguous
        work = z if in_place else self.scratch.get("work", z.shape, wdt)
        K.lse_above_max(z, row_max, argmax, work, row_sum, lse, max_range)
        # loss = (lse - max) + (max - z[target]): the difference of two nearby logits is exact,
        # so logits far from zero (a 1e7 offset) lose nothing to cancellation
        np.subtract(row_max, out, out=out)
        np.add(out, lse, out=out)

    def locate_nonfinite(self, preds: NDArray[Any], targets: NDArray[Any] | None) -> None:
        """-inf scores are legitimate (a masked class, probability 0); NaN never is."""
        if targets is not None and not self.text_targets:
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
        chunk: MetricChunk,
    ) -> list[tuple[Any, ...]]:
        t = squeeze_single(need_targets(targets))
        argmax = chunk.predicted
        assert argmax is not None
        cells: list[tuple[Any, ...]] = []
        for r in rows:
            loss = chunk.losses[r]
            predicted = int(argmax[r]) if self.labels is None else self.labels[argmax[r]]
            if self.soft:
                target: Any = int(np.argmax(t[r]))
                p_target = math.nan
            else:
                target = int(t[r]) if chunk.ids is None or self.labels is None else self.labels[chunk.ids[r]]
                p_target = math.exp(-float(loss))
                if self.input_kind == "probs":  # the file's own value: a clamped 0 shows as 0, not e^-100
                    column = int(chunk.ids[r]) if chunk.ids is not None else int(t[r])
                    p_target = float(preds[r, column]) if preds.ndim == 2 else p_target
            cells.append((predicted, p_target, target))
        return cells


def _refuse_soft(t: NDArray[Any]) -> None:
    """--calibration and --per-class need one class per row: a row that is not one-hot is refused."""
    onehot = ((t == 0) | (t == 1)).all(axis=1) & (np.count_nonzero(t, axis=1) == 1)
    if not onehot.all():
        row = int(np.flatnonzero(~onehot)[0])
        raise DataProblem(
            TARGETS,
            row,
            "--calibration and --per-class need one class per row: class ids, or one-hot rows; "
            "this row of target probabilities is not one-hot",
        )


class CE(MetricDef):
    name = "ce"
    shortcut = "cross_entropy"
    title = "Categorical cross-entropy"
    summary = "Categorical cross-entropy, -sum y_c log p_c, with perplexity and bits beside it."
    description = """\b
    Example (sample_data's exercise 2: p = 0.7 and p = 0.1 for the correct class):
      $ losscli ce sample_data/exercise2_probs.csv sample_data/exercise2_targets.csv
      row 0: 0.3567 nats, row 1: 2.303 nats

    PREDS holds (N, C) scores: a 2-D .npy, a wide CSV/Parquet whose columns are the classes,
    or a Parquet list column. TARGETS are class ids (N,) or one-hot/soft rows (N, C).

    \b
    Class labels (scikit-learn's predict_proba with clf.classes_):
      $ losscli ce proba.csv --target-col species     # columns cat,dog,bird; labels 'dog'
      $ losscli ce proba.npy labels.csv --classes cat,dog,bird
      $ losscli ce proba.npy y.npy --classes -1,1     # integer labels that are not positions

    Numbers are column positions (0..C-1) unless the classes are integers: named by --classes,
    or by the score columns' names (1,2,3, as pandas writes clf.classes_). Text labels are
    matched to the class of that name; an unknown label is an error naming it."""
    headline_key = "cross_entropy"
    headline_label = "cross-entropy"
    headline_meaning = "-log p(target), nats per example"
    options = (INPUT, IGNORE_INDEX, CLASSES, *CALIBRATION_OPTIONS, PER_CLASS)
    wide_scores = True
    text_targets = True

    def scorer(self, options: Mapping[str, Any]) -> Scorer:
        scorer = CEScorer(
            self.name,
            options.get("input", "auto"),
            options.get("ignore_index", IGNORE_INDEX_DEFAULT),
            None,
            options.get("labels"),
            options.get("classes"),
            bool(options.get("text_targets")),
        )
        check_calibration_options(options)
        scorer.keep_probs = bool(options.get("calibration") or options.get("per_class"))
        scorer.per_class = bool(options.get("per_class"))
        return scorer

    def figures(self, state: EvalState) -> list[Figure]:
        value = self.value(state)
        figs = [
            Figure("value", self.headline_label, value, self.headline_meaning),
            Figure("n", "examples", state.tallies.n, "rows scored"),
            Figure("perplexity", "perplexity", safe_exp(value), "exp(cross-entropy)"),
            Figure("bits", "bits per example", value / LN2, "cross-entropy / ln 2"),
            *accuracy_figures(state, "accuracy", None),
        ]
        classes = state.header.binding.classes if state.header.binding is not None else 0
        if classes >= 2:
            figs.append(Figure("classes", "classes", classes, "a uniform guess has this perplexity"))
        return [*figs, *calibration_figures(state)]

    def interpretation(self, report: Report) -> str | None:
        ppl = report.figure("perplexity")
        if not isinstance(ppl, float):
            return None
        classes = report.figure_or_none("classes")
        return interpret_perplexity(
            ppl, unit="classes", choices=classes if isinstance(classes, int) else None
        )


def cross_entropy(
    preds: Source | None = None,
    targets: Source | None = None,
    sample_weight: Source | None = None,
    input: str = "auto",
    ignore_index: int = IGNORE_INDEX_DEFAULT,
    *,
    y_pred: Source | None = None,
    y_true: Source | None = None,
    nan: str = "error",
    classes: Sequence[Label] | str | None = None,
) -> float:
    """Categorical cross-entropy in nats of (N, C) scores ``preds`` (probs, logits or logprobs:
    ``input``) against class ids or (N, C) soft targets. Predictions first, as in
    ``torch.nn.functional.cross_entropy(input, target)``; ``y_pred=``/``y_true=`` accepted.
    ``classes``: the class of each score column (``clf.classes_``, a list or "cat,dog,bird"):
    labels, text or integers, are matched to them instead of being column positions."""
    options = {"input": input, "ignore_index": ignore_index, "nan": nan, "classes": classes}
    return pair_shortcut("ce", preds, targets, sample_weight, y_pred, y_true, **options)
