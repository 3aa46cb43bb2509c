"""Huber loss (PyTorch's ``HuberLoss``, reduction mean), with MSE, RMSE and MAE beside it.

Per element, with e = prediction - target:

    0.5 e^2                   where |e| < delta
    delta (|e| - 0.5 delta)   elsewhere

quadratic near zero, linear beyond ``delta``: less swayed by outliers than MSE, smooth at zero
unlike MAE. The two branches meet at |e| = delta (both give 0.5 delta^2), so which one takes the
boundary does not change the value; PyTorch's ``|e| < delta`` is followed to the bit anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UsageError
from .base import Figure, MetricDef, MetricOption, Scorer
from .common import error_figures
from .elementwise import F64, RegressionScorer
from .shortcuts import Source, pair_shortcut

if TYPE_CHECKING:
    from ..state.evalstate import EvalState

DELTA_DEFAULT = 1.0


@dataclass(frozen=True)
class _PositiveOption(MetricOption):
    """A float option that must be strictly positive.

    ``MetricOption.minimum`` is an inclusive bound, and delta = 0 is no Huber loss (every error
    would take the linear branch with slope 0). This refuses 0 and below in ``check``, which the
    options layer runs before any file is opened, with one message for every such value.
    """

    def check(self, value: Any) -> None:
        super().check(value)  # type, finiteness
        if value is not None and value <= 0:
            raise UsageError(f"{self.flag} must be greater than 0, not {value!r}")


DELTA = _PositiveOption(
    "delta",
    "--delta",
    "float",
    DELTA_DEFAULT,
    "Where the loss turns from quadratic to linear; must be greater than 0 (torch's HuberLoss delta).",
    metavar="D",
    merge_key=True,  # states scored with different deltas hold different sums
)


class HuberScorer(RegressionScorer):
    """Huber losses from the shared (e, e^2, |e|), written into this scorer's own buffers."""

    def __init__(self, name: str, delta: float) -> None:
        super().__init__(name, ("mse", "mae"))
        self.delta = delta

    def headline(self, diff: F64, sq: F64, ab: F64) -> F64:
        """The linear branch everywhere, then the quadratic one where |e| < delta.

        Same operations as torch (``delta * (|e| - 0.5 delta)``, ``0.5 e^2``), in float64, with
        no temporary: the mask and the losses live in scratch buffers reused by every chunk.
        A NaN error fails ``|e| < delta`` and stays NaN through the linear branch.
        """
        out = self.scratch.get("huber", diff.shape, np.float64)
        small = self.scratch.get("huber_small", diff.shape, np.bool_)
        np.less(ab, self.delta, out=small)
        np.subtract(ab, 0.5 * self.delta, out=out)
        np.multiply(out, self.delta, out=out)
        np.multiply(sq, 0.5, out=out, where=small)
        return out


class Huber(MetricDef):
    name = "huber"
    title = "Huber loss"
    summary = "Huber loss (torch's HuberLoss), quadratic below --delta and linear above, with MSE and MAE."
    description = """\b
    Example:
      $ losscli huber sample_data/exercise1_preds.csv sample_data/exercise1_targets.csv --delta 0.5
      Huber loss 0.125 over 3 examples

    Per element, with e = prediction - target: 0.5 e^2 where |e| < delta, else
    delta (|e| - 0.5 delta); the mean of those, as torch.nn.HuberLoss(delta=D) gives.
    Same inputs as mse: 1-D values or (N, k) multi-output, two files or one file with
    --pred-col/--target-col."""
    shortcut = "huber"
    headline_key = "huber"
    headline_label = "Huber loss"
    headline_meaning = "mean of 0.5 e^2 where |e| < delta, else delta (|e| - 0.5 delta)"
    options = (DELTA,)

    def scorer(self, options: Mapping[str, Any]) -> Scorer:
        delta = options.get("delta", DELTA_DEFAULT)
        DELTA.check(delta)  # make_metric() reaches here without the options layer
        return HuberScorer(self.name, float(delta))

    def figures(self, state: EvalState) -> list[Figure]:
        delta = float(state.header.metric_options.get("delta", DELTA_DEFAULT))
        meaning = f"mean of 0.5 e^2 where |e| < {delta:g}, else {delta:g} (|e| - {0.5 * delta:g})"
        return [
            Figure("value", self.headline_label, self.value(state), meaning),
            Figure("n", "examples", state.tallies.n, "rows scored"),
            Figure("delta", "delta", delta, "errors beyond it count linearly"),
            *error_figures(state, ("mse", "rmse", "mae")),
        ]


def huber(
    preds: Source | None = None,
    targets: Source | None = None,
    sample_weight: Source | None = None,
    *,
    delta: float = DELTA_DEFAULT,
    y_pred: Source | None = None,
    y_true: Source | None = None,
    nan: str = "error",
) -> float:
    """Huber loss of ``preds`` against ``targets``, as ``torch.nn.HuberLoss(delta=delta)`` gives
    (uniform average over outputs; ``sample_weight`` gives sum(w l) / sum(w)). Predictions come
    first, as in torch's losses; ``y_pred=``/``y_true=`` are accepted too."""
    return pair_shortcut("huber", preds, targets, sample_weight, y_pred, y_true, nan=nan, delta=delta)
