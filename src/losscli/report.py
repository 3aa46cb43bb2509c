"""Plain results: what was computed, named so it cannot be mistaken, and its JSON form.

Figures are derived from the final ``LossState`` only, never from per-chunk values, so every
figure inherits the accumulator's chunk-size independence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .state.parts import Example, LossState

LN2 = math.log(2.0)
EXP_LIMIT = math.log(1.7976931348623157e308)  # 709.78...: exp() of more overflows float64


@dataclass(frozen=True)
class Figure:
    """One number in the summary: a stable JSON key, a label for people, and what it means."""

    key: str
    label: str
    value: float | int | None
    meaning: str = ""
    in_table: bool = True  # some keys exist for scripts only (the k of top-k accuracy)


@dataclass
class Report:
    metric: str
    value: float
    n: int
    figures: list[Figure]
    per_output: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    breakdown: str = "worst"  # "all" when every example is listed, in row order
    detail_columns: tuple[str, ...] = ()
    input_kind: str | None = None
    input_detected: bool = False
    weighted: bool = False
    ignored: int = 0
    skipped: int = 0
    clamped: int = 0
    files: dict[str, str] = field(default_factory=dict)
    chunk_rows: int = 0
    warnings: list[str] = field(default_factory=list)
    sequences: list[dict[str, Any]] = field(default_factory=list)  # per-sequence breakdown
    sequence_breakdown: str = "all"  # or "worst": the highest-perplexity sequences
    columns: dict[str, Any] = field(default_factory=dict)  # per role: columns used, chosen how
    notes: list[str] = field(default_factory=list)  # what a rule chose (stderr notes, not warnings)
    id_column: str | None = None  # the id column examples carry (Example.id), if any

    @property
    def status(self) -> str:
        return "ok" if math.isfinite(self.value) else "overflow"

    def figure(self, key: str) -> float | int | None:
        for f in self.figures:
            if f.key == key:
                return f.value
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: non-finite numbers become null and ``status`` says why."""
        out: dict[str, Any] = {"metric": self.metric, "value": _json_number(self.value), "n": self.n}
        for f in self.figures:
            if f.key not in out:
                out[f.key] = _json_number(f.value)
        out["status"] = self.status
        if self.input_kind is not None:
            out["input"] = self.input_kind
            out["input_detected"] = self.input_detected
        out["weighted"] = self.weighted
        out["ignored"] = self.ignored
        out["skipped"] = self.skipped
        out["clamped"] = self.clamped
        if self.per_output:
            out["outputs"] = [
                {"output": name, **{k: _json_number(v) for k, v in vals.items()}}
                for name, vals in self.per_output
            ]
        out["breakdown"] = self.breakdown
        out["examples"] = [
            {
                "row": e.row,
                **({"id": _json_value(e.id)} if self.id_column is not None else {}),
                "loss": _json_number(e.loss),
                **{col: _json_value(v) for col, v in zip(self.detail_columns, e.detail, strict=False)},
            }
            for e in self.examples
        ]
        if self.sequences:
            out["sequence_breakdown"] = self.sequence_breakdown
            out["sequence_rows"] = [
                {k: (_json_number(v) if isinstance(v, float) else v) for k, v in row.items()}
                for row in self.sequences
            ]
        out["files"] = self.files
        out["columns"] = self.columns
        if self.warnings:
            out["warnings"] = self.warnings
        return out


def _json_number(v: float | int | None) -> float | int | None:
    if v is None:
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _json_value(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_json_number(x) for x in v]
    if isinstance(v, float):
        return _json_number(v)
    return v


def _sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0 else math.nan


def safe_exp(x: float) -> float:
    """exp that says inf instead of raising OverflowError."""
    return math.exp(x) if x <= EXP_LIMIT else math.inf


HEADLINE = {
    "mse": ("mse", "MSE", "mean of (prediction - target)^2"),
    "mae": ("mae", "MAE", "mean of |prediction - target|"),
    "bce": ("bce", "BCE", "binary cross-entropy, nats per example"),
    "ce": ("cross_entropy", "cross-entropy", "-log p(target), nats per example"),
    "perplexity": (
        "perplexity",
        "perplexity",
        "exp(cross-entropy): effective number of equally likely choices",
    ),
}


def figures_for(
    metric: str, state: LossState, value: float, size: Any = None, scorer: Any = None
) -> list[Figure]:
    """The headline and its companions, in the order the table shows them.

    ``size`` (bytes and words of the text) and ``scorer`` (the metric, for --topk) only matter
    for language-model figures.
    """
    n = state.n
    _, label, meaning = HEADLINE[metric]
    figs: list[Figure] = []
    if metric == "perplexity":
        ce = value
        figs.append(Figure("value", label, safe_exp(ce), meaning))
        figs.append(Figure("cross_entropy", "cross-entropy", ce, "nats per token"))
        figs.append(Figure("bits_per_token", "bits per token", ce / LN2, "cross-entropy / ln 2"))
        figs.append(Figure("n", "tokens scored", n, "ignored tokens are not counted"))
        figs.append(
            Figure(
                "ignored", "tokens ignored", state.ignored, "--ignore-index (padding, prompt), null log-probs"
            )
        )
        figs.extend(_sequence_figures(state))
        total_nll = ce * n
        if size is not None and size.bytes:
            figs.append(
                Figure(
                    "bits_per_byte",
                    "bits per byte",
                    total_nll / (size.bytes * LN2),
                    f"total NLL / ({size.bytes:,} bytes x ln 2)",
                )
            )
            figs.append(
                Figure(
                    "byte_perplexity",
                    "byte perplexity",
                    safe_exp(total_nll / size.bytes),
                    "exp(total NLL / bytes)",
                )
            )
        if size is not None and size.words:
            figs.append(
                Figure(
                    "word_perplexity",
                    "word perplexity",
                    safe_exp(total_nll / size.words),
                    f"exp(total NLL / {size.words:,} words)",
                )
            )
    else:
        figs.append(Figure("value", label, value, meaning))
        figs.append(Figure("n", "examples", n, "rows scored"))
    if metric == "mse":
        figs.append(Figure("rmse", "RMSE", _sqrt(value), "sqrt(MSE), in the targets' units"))
        if "mae" in state.companion_sums:
            figs.append(
                Figure("mae", "MAE", state.companion_mean("mae"), "mean |error|: less swayed by outliers")
            )
    if metric == "mae" and "mse" in state.companion_sums:
        mse = state.companion_mean("mse")
        figs.append(Figure("mse", "MSE", mse, "mean squared error: punishes large errors"))
        figs.append(Figure("rmse", "RMSE", _sqrt(mse), "sqrt(MSE), in the targets' units"))
    if metric == "bce":
        figs.append(Figure("bits", "bits per example", value / LN2, "BCE / ln 2"))
    if metric == "ce":
        figs.append(Figure("perplexity", "perplexity", safe_exp(value), "exp(cross-entropy)"))
        figs.append(Figure("bits", "bits per example", value / LN2, "cross-entropy / ln 2"))
    if state.counts_correct and n:
        key = "top1_accuracy" if metric == "perplexity" else "accuracy"
        figs.append(
            Figure(key, "top-1 accuracy", state.accuracy(0), "argmax of the scores equals the target")
        )
        k = getattr(scorer, "topk", None)
        if k is not None:
            figs.append(
                Figure(
                    "topk_accuracy",
                    f"top-{k} accuracy",
                    state.accuracy(1),
                    f"the target is among the {k} highest scores",
                )
            )
            figs.append(Figure("topk", "k", k, "for top-k accuracy", in_table=False))
    figs.extend(_choice_figures(metric, scorer))  # last: existing CSV columns keep their places
    return figs


def _choice_figures(metric: str, scorer: Any) -> list[Figure]:
    """How many choices the model had (classes, or the vocabulary from the logits' width).

    Uniform guessing over C choices has perplexity exactly C: the one baseline a perplexity can
    be compared with whatever the tokenizer. Unknown for gathered log-probabilities.
    """
    count = getattr(scorer, "classes", 0)
    if not isinstance(count, int) or count < 2 or metric not in ("ce", "perplexity"):
        return []
    if metric == "perplexity":
        meaning = "logit columns; a uniform guess has this perplexity"
        return [Figure("vocab_size", "vocabulary", count, meaning)]
    return [Figure("classes", "classes", count, "a uniform guess has this perplexity")]


def sequence_rows(state: LossState, top: int, show_all_at_most: int) -> tuple[list[dict[str, Any]], str]:
    """Every sequence when there are few, else the ``top`` with the highest perplexity."""
    seq = state.sequences
    if seq is None:
        return [], "all"
    scored = np.flatnonzero(seq.tokens > 0)
    kind = "all"
    if len(scored) > show_all_at_most:
        with np.errstate(over="ignore", invalid="ignore"):
            mean = seq.nll[scored] / seq.tokens[scored]
        order = np.lexsort((scored, -mean))[:top]
        scored, kind = scored[order], "worst"
    rows = []
    for s in scored.tolist():
        tokens = int(seq.tokens[s])
        mean_nll = float(seq.nll[s]) / tokens
        worst = [
            {"position": int(p), "target": int(t), "logprob": -float(loss)}
            for loss, p, t in zip(seq.worst_loss[s], seq.worst_pos[s], seq.worst_target[s], strict=True)
            if loss > -np.inf
        ]
        rows.append(
            {
                "sequence": s,
                "tokens": tokens,
                "nll": mean_nll,
                "perplexity": safe_exp(mean_nll),
                "worst_tokens": worst,
            }
        )
    return rows, kind


def _median(values: np.ndarray) -> float:
    """np.median without its first-call import of numpy.ma (14 ms of a small job's start-up)."""
    s = np.sort(values)
    mid = len(s) // 2
    return float(s[mid]) if len(s) % 2 else float((s[mid - 1] + s[mid]) / 2)


def _sequence_figures(state: LossState) -> list[Figure]:
    seq = state.sequences
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
