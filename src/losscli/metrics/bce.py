"""Binary cross-entropy, -[y log p + (1 - y) log(1 - p)], from probabilities or logits."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataProblem
from . import kernels as K
from .base import Figure, MetricChunk, MetricDef, MetricOption, Scorer
from .calibration import OPTIONS as CALIBRATION_OPTIONS
from .calibration import calibration_figures, check_calibration_options
from .checks import (
    PREDS,
    TARGETS,
    cell,
    check_finite,
    check_range,
    detect_binary,
    need_targets,
    squeeze_single,
)
from .common import LN2
from .elementwise import ElementwiseScorer
from .labels import BOOL_TEXT, POSITIVE_SEEN, binary_targets
from .shortcuts import Source, pair_shortcut

if TYPE_CHECKING:
    from ..state.evalstate import EvalState

INPUT = MetricOption(
    "input",
    "--input",
    "choice",
    "auto",
    "Predictions are probabilities or logits; auto decides from the first chunk and says which: "
    "all in [0, 1] is probabilities, under 90% in [0, 1] is logits, and in between (probabilities "
    "with stray values) is refused.",
    choices=("auto", "probs", "logits"),
)
POSITIVE = MetricOption(
    "positive",
    "--positive",
    "str",
    None,
    "For text labels (spam/ham): the class whose probability the predictions are; it is 1, the "
    "other class 0. True/False and true/false labels are 1/0 without it.",
    metavar="LABEL",
    merge_key=True,
    parse=lambda v: str(v).strip(),
)


def _flip_numbers(positive: str | None) -> bool | None:
    """Numeric (and bool) labels with --positive: 1/True keeps them, 0/False makes 0 the
    positive class (1 - y); None for any other value, which numbers cannot name."""
    if positive is None or BOOL_TEXT.get(positive, _as_number(positive)) == 1.0:
        return False
    if BOOL_TEXT.get(positive, _as_number(positive)) == 0.0:
        return True
    return None


def _as_number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


class BCEScorer(ElementwiseScorer):
    """Binary cross-entropy from probabilities or logits, with hard or soft labels."""

    def __init__(self, name: str, input_kind: str, positive: str | None = None) -> None:
        super().__init__(name)
        self.requested = input_kind
        self.positive = positive
        self.text_targets = False  # labels read as text (spam/ham, True/False): mapped to 1/0
        self.flip = False  # --positive 0/False with numeric labels: the target is 1 - y
        self._other: list[str] = []  # the class that is not --positive, once seen
        self.keep_probs = False  # --calibration: the chunk's probabilities go to the state

    def bind(self, preds: NDArray[Any], targets: NDArray[Any] | None) -> None:
        t = need_targets(targets)
        self.text_targets = t.dtype.kind in "OUS"
        if self.text_targets and squeeze_single(t).ndim != 1:
            raise DataProblem(TARGETS, None, "text labels must be one column")
        if not self.text_targets:
            flip = _flip_numbers(self.positive)
            if flip is None:
                raise DataProblem(
                    TARGETS,
                    None,
                    f"--positive {self.positive!r} is not a class of these labels, which are numbers "
                    "(0/1, True/False): drop --positive, or pass 1 or 0",
                    ambiguous=True,
                )
            self.flip = flip
        super().bind(preds, self._numeric(t) if self.text_targets else t)
        p = squeeze_single(preds)
        if self.requested == "auto":
            self.input_kind = detect_binary(p)
            self.input_detected = True
        else:
            self.forced_kind(self.requested)

    def compute(
        self, preds: NDArray[Any], targets: NDArray[Any] | None, overwrite: bool = False
    ) -> MetricChunk:
        p, t = squeeze_single(preds), squeeze_single(self._numeric(need_targets(targets)))
        shape = p.shape
        labels = None  # probabilities: (label == 1, label == 0, how many are either)
        if self.input_kind == "probs":
            ones, zeros = (
                self.scratch.get("positives", shape, np.bool_),
                self.scratch.get("negatives", shape, np.bool_),
            )
            labels = (ones, zeros, K.label_kinds(t, ones, zeros))
        if labels is None or labels[2] != t.size:  # labels all 0 or 1 are in range
            check_range(t, TARGETS, "target")
        if self.flip:
            t = np.subtract(1.0, t, out=self.scratch.get("flipped", t.shape, np.float64))
            labels = None if labels is None else (labels[1], labels[0], labels[2])
        elements = self.scratch.get("elements", shape, np.float64)
        clamped, probs, positives, diff = 0, None, None, None
        if labels is not None:
            clamped, probs, positives, diff = self._from_probs(p, t, elements, labels)
        else:
            K.bce_from_logits(p, t, elements, self.scratch.get("work", shape, np.float64))
            if self.keep_probs:
                probs = K.probabilities_of(p, self.input_kind, self.scratch.get("probs", shape, np.float64))
        losses, per_output = elements, None
        if self.outputs > 1:
            losses = np.mean(elements, axis=1, out=self.scratch.get("loss", (shape[0],), np.float64))
            per_output = elements
        return MetricChunk(
            losses,
            elements=per_output,
            clamped=clamped,
            probs=probs,
            prob_targets=t,
            positives=positives,
            prob_diff=diff,
            probs_float32=labels is not None and p.dtype == np.float32,
        )

    def _from_probs(
        self,
        p: NDArray[Any],
        t: NDArray[Any],
        elements: NDArray[np.float64],
        labels: tuple[NDArray[np.bool_], NDArray[np.bool_], int],
    ) -> tuple[int, NDArray[np.float64] | None, NDArray[np.bool_] | None, NDArray[np.float64] | None]:
        """(clamped, float64 probabilities for --calibration, label == 1 when every label is 0 or 1,
        p - y when computed). float32 predictions against labels of exactly 0 or 1 (most
        models' output) take one log per example (``bce_from_hard_labels``), the rest both; a
        chunk of both kinds computes both and keeps each example's own, so no loss depends on
        the chunk it came in."""
        hint = ""
        if self.input_detected:
            hint = (
                f", but --input auto read the predictions as probabilities from {self.detected_where}: "
                "pass --input logits if they really are logits, or fix the value"
            )
        bounds = check_range(p, PREDS, "value" if hint else "probability", hint=hint, ambiguous=bool(hint))
        shape, src, probs = p.shape, p, None
        if self.keep_probs:  # the float64 copy --calibration keeps also serves the math
            src = probs = K.probabilities_of(p, "probs", self.scratch.get("probs", shape, np.float64))
        ones, zeros, hard = labels
        work = self.scratch.get("work", shape, np.float64)
        positives = ones if hard == t.size else None
        if hard == 0 or not K.single_log_applies(p):
            return K.bce_from_probs(src, t, elements, work, bounds), probs, positives, None
        diff = self.scratch.get("diff", shape, np.float64)
        if positives is not None:
            return K.bce_from_hard_labels(src, t, diff, elements, bounds), probs, positives, diff
        np.logical_or(ones, zeros, out=zeros)  # the labels that are 0 or 1; the rest are soft
        clamped = K.bce_from_probs(src, t, elements, work, bounds, counted=np.logical_not(zeros))
        single = self.scratch.get("single", shape, np.float64)
        clamped += K.bce_from_hard_labels(src, t, diff, single, bounds, counted=zeros)
        np.copyto(elements, single, where=zeros)
        return clamped, probs, None, diff

    def _numeric(self, t: NDArray[Any]) -> NDArray[Any]:
        """Text labels as 1/0 (see ``labels.binary_targets``); numbers as they are."""
        if not self.text_targets:
            return t
        return binary_targets(squeeze_single(t), self.positive, self._other)

    def describe(
        self,
        preds: NDArray[Any],
        targets: NDArray[Any] | None,
        rows: NDArray[np.intp],
        chunk: MetricChunk,
    ) -> list[tuple[Any, ...]]:
        if not self.text_targets:
            return super().describe(preds, targets, rows, chunk)
        p, t = squeeze_single(preds), squeeze_single(need_targets(targets))
        return [(cell(p[r]), str(t[r])) for r in rows]  # the label as the file wrote it

    def forks_alike(self) -> bool:
        return not self.text_targets  # the classes met so far live in one list the workers share

    def closing_warnings(self) -> list[str]:
        """--positive matched no label (``Spam`` against ``spam``): every row was a negative."""
        if not self.text_targets or self.positive is None or POSITIVE_SEEN in self._other:
            return []
        others = [c for c in self._other if c != POSITIVE_SEEN]
        seen = f" (the only class seen: {others[0]!r})" if others else ""
        return [
            f"--positive {self.positive!r} never occurs among the labels{seen}: every row was scored "
            "as the negative class; --positive is matched exactly, case included"
        ]

    def locate_nonfinite(self, preds: NDArray[Any], targets: NDArray[Any] | None) -> None:
        check_finite(preds, PREDS)
        if targets is not None and not self.text_targets:
            check_finite(targets, TARGETS)


class BCE(MetricDef):
    name = "bce"
    shortcut = "bce"
    title = "Binary cross-entropy"
    summary = "Binary cross-entropy, -[y log p + (1 - y) log(1 - p)], in nats."
    description = """\b
    Example:
      $ losscli bce sample_data/spam_probs.parquet --pred-col prob --target-col label
      BCE in nats, bits per example, the worst examples

    Targets are in [0, 1] (hard 0/1 labels or soft labels), or True/False (a pandas bool
    column), or two text classes with --positive naming the one the predictions are the
    probability of (--positive spam: spam is 1, ham 0). From logits the stable form
    max(x, 0) - x y + log1p(exp(-|x|)) is used; from probabilities each log is clamped at
    -100 as in torch, and clamped examples are counted."""
    headline_key = "bce"
    headline_label = "BCE"
    headline_meaning = "binary cross-entropy, nats per example"
    options = (INPUT, POSITIVE, *CALIBRATION_OPTIONS)
    text_targets = True

    def scorer(self, options: Mapping[str, Any]) -> Scorer:
        positive = options.get("positive")
        scorer = BCEScorer(
            self.name, options.get("input", "auto"), None if positive is None else str(positive)
        )
        check_calibration_options(options)
        scorer.keep_probs = bool(options.get("calibration"))
        return scorer

    def figures(self, state: EvalState) -> list[Figure]:
        value = self.value(state)
        return [
            Figure("value", self.headline_label, value, self.headline_meaning),
            Figure("n", "examples", state.tallies.n, "rows scored"),
            Figure("bits", "bits per example", value / LN2, "BCE / ln 2"),
            *calibration_figures(state),
        ]


def bce(
    preds: Source | None = None,
    targets: Source | None = None,
    sample_weight: Source | None = None,
    input: str = "auto",
    *,
    y_pred: Source | None = None,
    y_true: Source | None = None,
    nan: str = "error",
    positive: str | None = None,
) -> float:
    """Binary cross-entropy in nats of ``preds`` (probabilities or logits: ``input`` is probs,
    logits or auto) against ``targets`` in [0, 1]. Predictions come first, as in
    ``torch.nn.functional.binary_cross_entropy(input, target)``; note that scikit-learn's
    ``log_loss(y_true, y_pred)`` takes the labels first: pass ``y_true=``/``y_pred=`` by keyword
    to be safe. Clamped logs and an auto-detected input kind are raised as ``LossCliWarning``.
    ``positive``: for text labels ("spam"/"ham"), the class whose probability ``preds`` are;
    True/False labels need none."""
    options = {"input": input, "nan": nan, "positive": positive}
    return pair_shortcut("bce", preds, targets, sample_weight, y_pred, y_true, **options)
