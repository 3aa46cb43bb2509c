"""Mean absolute error: mean of |prediction - target|, with MSE and RMSE beside it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .base import Figure, MetricDef, Scorer
from .common import error_figures
from .elementwise import F64, RegressionScorer
from .shortcuts import Source, pair_shortcut

if TYPE_CHECKING:
    from ..state.evalstate import EvalState


class MAEScorer(RegressionScorer):
    def headline(self, diff: F64, sq: F64, ab: F64) -> F64:
        return ab


class MAE(MetricDef):
    name = "mae"
    title = "Mean absolute error"
    summary = "Mean absolute error, mean of |prediction - target|."
    description = """\b
    Example:
      $ losscli mae sample_data/exercise1_preds.csv sample_data/exercise1_targets.csv
      MAE 0.5 over 3 examples

    Same inputs as mse: 1-D values or (N, k) multi-output, two files or one file with
    --pred-col/--target-col."""
    shortcut = "mae"
    headline_key = "mae"
    headline_label = "MAE"
    headline_meaning = "mean of |prediction - target|"

    def scorer(self, options: Mapping[str, Any]) -> Scorer:
        return MAEScorer(self.name, ("mse",))

    def figures(self, state: EvalState) -> list[Figure]:
        return [
            Figure("value", self.headline_label, self.value(state), self.headline_meaning),
            Figure("n", "examples", state.tallies.n, "rows scored"),
            *error_figures(state, ("mse", "rmse")),
        ]


def mae(
    preds: Source | None = None,
    targets: Source | None = None,
    sample_weight: Source | None = None,
    *,
    y_pred: Source | None = None,
    y_true: Source | None = None,
    nan: str = "error",
) -> float:
    """Mean absolute error of ``preds`` against ``targets`` (predictions first; ``y_pred=``/
    ``y_true=`` accepted)."""
    return pair_shortcut("mae", preds, targets, sample_weight, y_pred, y_true, nan=nan)
