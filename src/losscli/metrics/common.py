"""Figures several metrics share, each a function of the state alone.

RMSE beside MSE, accuracy beside cross-entropy, per-sequence perplexities, the uniform-guess
baseline: a metric's ``figures`` picks the ones that apply.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .base import Figure

if TYPE_CHECKING:
    from ..state.evalstate import EvalState
    from ..state.parts import LossState

LN2 = math.log(2.0)
EXP_LIMIT = math.log(1.7976931348623157e308)  # 709.78...: exp() of more overflows float64


def safe_exp(x: float) -> float:
    """exp that says inf instead of raising OverflowError."""
    return math.exp(x) if x <= EXP_LIMIT else math.inf


def sqrt_or_nan(x: float) -> float:
    return math.sqrt(x) if x >= 0 else math.nan


def companion_mean(tallies: LossState, name: str) -> float | None:
    """The weighted mean of a companion (MAE beside MSE), None when the run did not keep it."""
    if name not in tallies.companion_sums:
        return None
    return tallies.companion_mean(name)


def error_figures(state: EvalState, shown: tuple[str, ...]) -> list[Figure]:
    """MSE, RMSE and MAE beside a regression headline, from the companions' sums."""
    mse = companion_mean(state.tallies, "mse")
    mae = companion_mean(state.tallies, "mae")
    figs = []
    if "mse" in shown and mse is not None:
        figs.append(Figure("mse", "MSE", mse, "mean squared error: punishes large errors"))
    if "rmse" in shown and mse is not None:
        figs.append(Figure("rmse", "RMSE", sqrt_or_nan(mse), "sqrt(MSE), in the targets' units"))
    if "mae" in shown and mae is not None:
        figs.append(Figure("mae", "MAE", mae, "mean |error|: less swayed by outliers"))
    return figs


def accuracy_figures(state: EvalState, top1_key: str, topk: int | None) -> list[Figure]:
    """Top-1 (and top-k) accuracy, weighted like the loss, when the scorer counted hits."""
    t = state.tallies
    if not t.counts_correct or not t.n:
        return []
    figs = [Figure(top1_key, "top-1 accuracy", t.accuracy(0), "argmax of the scores equals the target")]
    if topk is not None:
        figs.append(
            Figure(
                "topk_accuracy",
                f"top-{topk} accuracy",
                t.accuracy(1),
                f"the target is among the {topk} highest scores",
            )
        )
        figs.append(Figure("topk", "k", topk, "for top-k accuracy", in_table=False))
    return figs


def sequence_figures(state: EvalState) -> list[Figure]:
    """How many sequences were scored, and the mean and median of their perplexities."""
    seq = state.tallies.sequences
    if seq is None:
        return []
    ppl = seq.perplexities()
    count = len(ppl)
    figs = [Figure("sequences", "sequences", count, "with at least one scored token")]
    if count:
        figs.append(
            Figure(
                "mean_sequence_perplexity",
                "mean of per-sequence perplexities",
                float(np.mean(ppl)),
                "NOT the corpus perplexity: each sequence counts once (HF evaluate's mean_perplexity)",
            )
        )
        figs.append(
            Figure("median_sequence_perplexity", "median of per-sequence perplexities", _median(ppl), "")
        )
    return figs


def _median(values: np.ndarray) -> float:
    """np.median without its first-call import of numpy.ma (14 ms of a small job's start-up)."""
    s = np.sort(values)
    mid = len(s) // 2
    return float(s[mid]) if len(s) % 2 else float((s[mid - 1] + s[mid]) / 2)


SAME_TOKENIZER = "Perplexities compare only between models with the same tokenizer, scored on the same text."


def interpret_perplexity(ppl: float, unit: str = "tokens", choices: int | None = None) -> str:
    """One line relating the figure to what it can be compared with.

    A perplexity P is as uncertain as a uniform choice among P options. Uniform guessing over all
    ``choices`` (the vocabulary or the classes, when known) scores exactly ``choices``, so that is
    the baseline; figures from other tokenizers or other text are not comparable, and token
    perplexities carry that caveat. Without ``choices`` (gathered log-probabilities) there is no
    baseline to name.
    """
    if not math.isfinite(ppl):
        return "Perplexity overflowed: the model puts almost no probability on the targets."
    text = f"As uncertain as a uniform choice among {_count_text(ppl)} {unit}"
    if choices:
        text += f", {_against_uniform(ppl, choices, unit)}"
    text += "."
    return f"{text} {SAME_TOKENIZER}" if unit == "tokens" else text


def _count_text(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 else f"{x:.2g}"


def _against_uniform(ppl: float, choices: int, unit: str) -> str:
    """``ppl`` beside uniform guessing over ``choices``, which has perplexity ``choices``."""
    what = f"uniform guessing over all {choices:,} {unit} (perplexity {choices:,})"
    ratio = choices / ppl
    if abs(ratio - 1.0) < 0.005:
        return f"no better than {what}"
    if ratio > 1:
        return f"{_ratio_text(ratio)} times lower than {what}"
    return f"{_ratio_text(1 / ratio)} times higher than {what}: worse than guessing"


def _ratio_text(r: float) -> str:
    return f"{r:,.0f}" if r >= 100 else f"{r:.3g}"
