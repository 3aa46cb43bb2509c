"""Mean squared error: mean of (prediction - target)^2, with RMSE and MAE beside it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .base import Figure, MetricDef, PerOutputColumn, Scorer
from .common import error_figures, sqrt_or_nan
from .elementwise import F64, RegressionScorer
from .shortcuts import Source, pair_shortcut

if TYPE_CHECKING:
    from ..state.evalstate import EvalState


class MSEScorer(RegressionScorer):
    def headline(self, diff: F64, sq: F64, ab: F64) -> F64:
        return sq


class MSE(MetricDef):
    name = "mse"
    title = "Mean squared error"
    summary = "Mean squared error, mean of (prediction - target)^2, with RMSE beside it."
    description = """\b
    Example (sample_data's exercise 1):
      $ losscli mse sample_data/exercise1_preds.csv sample_data/exercise1_targets.csv
      MSE 0.25, RMSE 0.5 over 3 examples

    PREDS and TARGETS hold one value per row, or k values per row for multi-output
    regression (the mean over every element; the table adds a row per output). One file with
    both columns works too: losscli mse results.parquet --pred-col yhat --target-col y"""
    shortcut = "mse"
    headline_key = "mse"
    headline_label = "MSE"
    headline_meaning = "mean of (prediction - target)^2"
    per_output = (PerOutputColumn("rmse", "RMSE", sqrt_or_nan),)

    def scorer(self, options: Mapping[str, Any]) -> Scorer:
        return MSEScorer(self.name, ("mae",))

    def figures(self, state: EvalState) -> list[Figure]:
        value = self.value(state)
        return [
            Figure("value", self.headline_label, value, self.headline_meaning),
            Figure("n", "examples", state.tallies.n, "rows scored"),
            Figure("rmse", "RMSE", sqrt_or_nan(value), "sqrt(MSE), in the targets' units"),
            *error_figures(state, ("mae",)),
        ]


def mse(
    preds: Source | None = None,
    targets: Source | None = None,
    sample_weight: Source | None = None,
    *,
    y_pred: Source | None = None,
    y_true: Source | None = None,
    nan: str = "error",
) -> float:
    """Mean squared error of ``preds`` against ``targets`` (uniform average over outputs, like
    scikit-learn). Predictions come first, as in torch's losses; scikit-learn's keywords
    ``y_pred=``/``y_true=`` are accepted too."""
    return pair_shortcut("mse", preds, targets, sample_weight, y_pred, y_true, nan=nan)
