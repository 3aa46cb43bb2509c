"""Binary cross-entropy, -[y log p + (1 - y) log(1 - p)], from probabilities or logits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from . import kernels as K
from .base import Figure, MetricChunk, MetricDef, MetricOption, Scorer
from .checks import PREDS, TARGETS, check_range, detect_binary, need_targets, squeeze_single
from .common import LN2
from .elementwise import ElementwiseScorer
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


class BCEScorer(ElementwiseScorer):
    """Binary cross-entropy from probabilities or logits, with hard or soft labels."""

    def __init__(self, name: str, input_kind: str) -> None:
        super().__init__(name)
        self.requested = input_kind

    def bind(self, preds: NDArray[Any], targets: NDArray[Any] | None) -> None:
        super().bind(preds, targets)
        p = squeeze_single(preds)
        if self.requested == "auto":
            self.input_kind = detect_binary(p)
            self.input_detected = True
        else:
            self.input_kind = self.requested

    def compute(
        self, preds: NDArray[Any], targets: NDArray[Any] | None, overwrite: bool = False
    ) -> MetricChunk:
        p, t = squeeze_single(preds), squeeze_single(need_targets(targets))
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
            clamped = K.bce_from_probs(p, t, elements, work)
        else:
            K.bce_from_logits(p, t, elements, work)
        if self.outputs == 1:
            return MetricChunk(elements, clamped=clamped)
        out = self.scratch.get("loss", (shape[0],), np.float64)
        np.mean(elements, axis=1, out=out)
        return MetricChunk(out, elements=elements, clamped=clamped)


class BCE(MetricDef):
    name = "bce"
    shortcut = "bce"
    title = "Binary cross-entropy"
    summary = "Binary cross-entropy, -[y log p + (1 - y) log(1 - p)], in nats."
    description = """\b
    Example:
      $ losscli bce sample_data/spam_probs.parquet --pred-col prob --target-col label
      BCE in nats, bits per example, the worst examples

    Targets are in [0, 1] (hard 0/1 labels or soft labels). From logits the stable form
    max(x, 0) - x y + log1p(exp(-|x|)) is used; from probabilities each log is clamped at
    -100 as in torch, and clamped examples are counted."""
    headline_key = "bce"
    headline_label = "BCE"
    headline_meaning = "binary cross-entropy, nats per example"
    options = (INPUT,)

    def scorer(self, options: Mapping[str, Any]) -> Scorer:
        return BCEScorer(self.name, options.get("input", "auto"))

    def figures(self, state: EvalState) -> list[Figure]:
        value = self.value(state)
        return [
            Figure("value", self.headline_label, value, self.headline_meaning),
            Figure("n", "examples", state.tallies.n, "rows scored"),
            Figure("bits", "bits per example", value / LN2, "BCE / ln 2"),
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
) -> float:
    """Binary cross-entropy in nats of ``preds`` (probabilities or logits: ``input`` is probs,
    logits or auto) against ``targets`` in [0, 1]. Predictions come first, as in
    ``torch.nn.functional.binary_cross_entropy(input, target)``; note that scikit-learn's
    ``log_loss(y_true, y_pred)`` takes the labels first: pass ``y_true=``/``y_pred=`` by keyword
    to be safe. Clamped logs and an auto-detected input kind are raised as ``LossCliWarning``."""
    return pair_shortcut("bce", preds, targets, sample_weight, y_pred, y_true, input=input, nan=nan)
