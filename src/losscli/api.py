"""What a Python user calls: paths or arrays in, a ``Report`` (or a float) out.

    >>> import losscli
    >>> losscli.mse([2.5, 3.0, 4.5], [2.0, 3.5, 4.0])
    0.25
    >>> report = losscli.evaluate("ce", "scores.npy", "labels.npy")   # doctest: +SKIP
    >>> report.value, report.figure("perplexity")                     # doctest: +SKIP

The CLI is a thin layer over ``evaluate``; both run the same streaming engine.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from .engine import WEIGHTS, Evaluator, Role, choose_chunk_rows, default_threads, run
from .errors import InputError, UsageError
from .metrics import PREDS, TARGETS, make_metric
from .readers.base import Group, Reader
from .report import Report, figures_for, safe_exp, sequence_rows

METRICS = ("mse", "mae", "bce", "ce", "perplexity")
BREAKDOWN_ALL_AT_MOST = 20

PRED_NAMES = (
    "pred",
    "preds",
    "prediction",
    "predictions",
    "y_pred",
    "yhat",
    "y_hat",
    "output",
    "score",
    "scores",
    "prob",
    "probs",
    "probability",
    "logit",
    "logits",
)
TARGET_NAMES = ("target", "targets", "y", "y_true", "label", "labels", "truth", "actual", "class", "ids")

Source = Any  # a path (str or os.PathLike) or an array-like


@dataclass
class Progress:
    """Hooks the CLI passes to show a progress bar; the library itself never prints."""

    start: Callable[[int | None], None]
    advance: Callable[[int], None]
    stop: Callable[[], None]


def _open(
    source: Source, name: str, fmt: str | None, header: bool | None = None, nan: str = "error"
) -> Reader:
    if isinstance(source, (str, os.PathLike)):
        from .readers.open import open_reader

        return open_reader(os.fspath(source), fmt, header=header, nan=nan)
    from .readers.memory import ArrayReader

    return ArrayReader(source, name)


def _pick(reader: Reader, spec: str | None) -> Group:
    return None if spec is None else reader.resolve_many(spec)


def resolve_roles(
    metric: str,
    preds: Reader,
    targets: Reader | None,
    pred_col: str | None,
    target_col: str | None,
    exclude: tuple[int, ...] = (),
) -> tuple[Role, Role]:
    """Which columns are predictions and which are targets.

    Two files: each takes the named column, or everything it holds. One file: the named
    columns; a target column alone means "every other column is a prediction" (a wide CSV of
    class scores plus a label); with neither, well-known names (pred/target, y_pred/y_true,
    ...) are recognised.
    """
    if targets is not None:
        return (
            Role(preds, _pick(preds, pred_col), preds.display),
            Role(targets, _pick(targets, target_col), targets.display),
        )
    t_idx = preds.resolve_many(target_col) if target_col else None
    p_idx = preds.resolve_many(pred_col) if pred_col else None
    if t_idx is None:
        guess = preds.guess(TARGET_NAMES)
        t_idx = [guess] if guess is not None else None
    if p_idx is None and t_idx is not None:
        taken = set(t_idx) | set(exclude)
        others = [j for j in range(len(preds.column_names)) if j not in taken]
        guess = None if metric in ("ce", "perplexity") else preds.guess(PRED_NAMES)
        p_idx = [guess] if guess is not None and guess not in taken else others
    if t_idx is None or not p_idx:
        raise UsageError(
            f"{preds.display}: one file was given, so say which columns hold what with "
            f"--pred-col and --target-col (columns: {', '.join(preds.column_names[:20])}), "
            "or pass the targets as a second file"
        )
    return Role(preds, p_idx, preds.display), Role(preds, t_idx, preds.display)


def evaluate(
    metric: str,
    preds: Source,
    targets: Source | None = None,
    *,
    weights: Source | None = None,
    pred_col: str | None = None,
    target_col: str | None = None,
    weight_col: str | None = None,
    input: str = "auto",
    ignore_index: int = -100,
    chunk_size: int | None = None,
    nan: str = "error",
    top: int = 10,
    per_example: str | None = None,
    fmt: str | None = None,
    progress: Progress | None = None,
    threads: int | None = None,
    logprobs: Source | None = None,
    shift: bool = False,
    topk: int | None = None,
    seq_col: str | None = None,
    text: str | None = None,
    n_bytes: int | None = None,
    n_words: int | None = None,
    header: bool | None = None,
) -> Report:
    """Stream ``preds`` (and ``targets``, ``weights``) through ``metric``; return a Report.

    Sources are paths (CSV/TSV, Parquet, .npy, .npz, JSON Lines; ``-`` for stdin) or
    arrays. ``per_example`` names a .csv/.parquet/.npy file that receives every example's loss.

    Perplexity also takes: ``logprobs`` (gathered log-probabilities instead of logits and
    targets), ``shift`` (causal-LM labels), ``topk``, ``seq_col``, and ``text`` / ``n_bytes`` /
    ``n_words`` for bits per byte and word perplexity.

    ``header``: whether each CSV input's first row is a header; None detects it (pandas'
    default header ``0,1,...`` included) and adds a warning where the file cannot tell.
    """
    if metric not in METRICS:
        raise UsageError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if top < 0:
        raise UsageError("--top must be 0 or more")
    lm_only = {
        "logprobs": logprobs,
        "shift": shift,
        "topk": topk if metric != "ce" else None,
        "seq_col": seq_col,
        "text": text,
        "bytes": n_bytes,
        "words": n_words,
    }
    if metric != "perplexity" and any(v not in (None, False) for v in lm_only.values()):
        used = ", ".join(k for k, v in lm_only.items() if v not in (None, False))
        raise UsageError(f"{used}: only for perplexity")
    size = None
    plan = None
    from .readers.open import settle_headers

    def opened(source: Source, name: str) -> Reader:
        return stack.enter_context(_open(source, name, fmt, header, nan))

    with ExitStack() as stack:
        if metric == "perplexity":
            from .lm import plan_logits, plan_logprobs, text_size

            size = text_size(text, n_bytes, n_words)
            if (logprobs is None) == (preds is None):
                raise UsageError("give either logits (with targets) or --logprobs, not both")
            if logprobs is not None:
                if shift or topk is not None:
                    raise UsageError("--shift and --topk need logits; log-probabilities are already gathered")
                lp_reader = opened(logprobs, "logprobs")
                notes = settle_headers([lp_reader])
                plan = plan_logprobs(lp_reader, pred_col, seq_col)
            else:
                logits_reader = opened(preds, "logits")
                ids_reader = opened(targets, "targets") if targets is not None else logits_reader
                notes = settle_headers([logits_reader, ids_reader])
                plan = plan_logits(
                    logits_reader, ids_reader, pred_col, target_col, seq_col, ignore_index, topk
                )
            roles = dict(plan.roles)
            m = plan.metric
        else:
            p_reader = opened(preds, "preds")
            t_reader = opened(targets, "targets") if targets is not None else None
            notes = settle_headers([p_reader] + ([t_reader] if t_reader is not None else []))
            exclude = tuple(p_reader.resolve_many(weight_col)) if (weight_col and weights is None) else ()
            p_role, t_role = resolve_roles(metric, p_reader, t_reader, pred_col, target_col, exclude)
            roles = {PREDS: p_role, TARGETS: t_role}
            m = make_metric(metric, input, ignore_index, topk)
        p_role = roles[PREDS]
        if weights is not None or weight_col is not None:
            w_reader = p_role.reader if weights is None else opened(weights, "weights")
            notes += settle_headers([w_reader, *(r.reader for r in roles.values())])
            roles[WEIGHTS] = Role(w_reader, _pick(w_reader, weight_col), w_reader.display)
        readers = list(dict.fromkeys(r.reader for r in roles.values()))
        chunk_rows = choose_chunk_rows(readers, chunk_size)
        sink = None
        if per_example is not None:
            from .per_example import open_writer

            sink = open_writer(per_example, ("sequence", "position") if plan is not None else ())
            stack.callback(sink.abort)  # no-op after commit
        evaluator = Evaluator(m, nan=nan, worst_capacity=max(top, BREAKDOWN_ALL_AT_MOST), sink=sink)
        if plan is not None:
            evaluator.seqmap = plan.seqmap
        total = next((r.n_rows for r in readers if r.n_rows is not None), None)
        if progress is not None:
            progress.start(total)
            stack.callback(progress.stop)
        if threads is not None and threads < 1:
            raise UsageError("--threads must be at least 1")
        state = run(
            evaluator,
            roles,
            chunk_rows,
            progress.advance if progress else None,
            threads=default_threads() if threads is None else threads,
            shift=shift,
        )
        if plan is not None:
            state.ignored += plan.nulls
        if state.n == 0:
            why = (
                f"all {state.ignored} rows have the ignore index {ignore_index}"
                if state.ignored
                else (
                    f"all {state.skipped} rows held NaN or inf and were skipped"
                    if state.skipped
                    else "no rows"
                )
            )
            raise InputError(f"nothing was scored: {why}", path=p_role.label)
        if sink is not None:
            sink.commit()
    mean = state.mean()
    value = safe_exp(mean) if metric == "perplexity" else mean
    per_output: list[tuple[str, dict[str, float]]] = []
    if state.outputs > 1:
        for name, v in zip(m.output_names(), state.per_output(), strict=True):
            vals = {"value": float(v)}
            if metric == "mse":
                vals["rmse"] = float(v) ** 0.5
            per_output.append((name, vals))
    examples = state.worst.examples()
    breakdown = "worst"
    if state.n <= BREAKDOWN_ALL_AT_MOST:
        examples.sort(key=lambda e: e.row)
        breakdown = "all"
    else:
        examples = examples[:top]
    warnings: list[str] = list(dict.fromkeys(notes))
    if evaluator.overflow:
        warnings.append("some losses overflowed float64 to inf; the mean is inf")
    if state.clamped:
        warnings.append(
            f"{state.clamped} example(s) had a probability of 0 (or 1) where the target needs "
            "the opposite; their log was clamped at -100, as torch does"
        )
    seq_rows, seq_kind = sequence_rows(state, top, BREAKDOWN_ALL_AT_MOST)
    return Report(
        sequences=seq_rows,
        sequence_breakdown=seq_kind,
        metric=metric,
        value=value,
        n=state.n,
        figures=figures_for(metric, state, mean, size, m),
        per_output=per_output,
        examples=examples,
        breakdown=breakdown,
        detail_columns=m.detail_columns,
        input_kind=m.input_kind,
        input_detected=m.input_detected,
        weighted=WEIGHTS in roles,
        ignored=state.ignored,
        skipped=state.skipped,
        clamped=state.clamped,
        files={name: role.label for name, role in roles.items()},
        chunk_rows=chunk_rows,
        warnings=warnings,
    )


def _value(metric: str, y_pred: Any, y_true: Any, sample_weight: Any = None, **kw: Any) -> float:
    return evaluate(metric, y_pred, y_true, weights=sample_weight, top=0, **kw).value


def mse(y_pred: Any, y_true: Any, sample_weight: Any = None) -> float:
    """Mean squared error (uniform average over outputs, like scikit-learn)."""
    return _value("mse", y_pred, y_true, sample_weight)


def mae(y_pred: Any, y_true: Any, sample_weight: Any = None) -> float:
    """Mean absolute error."""
    return _value("mae", y_pred, y_true, sample_weight)


def bce(y_pred: Any, y_true: Any, sample_weight: Any = None, input: str = "auto") -> float:
    """Binary cross-entropy in nats; ``input`` is probs, logits or auto."""
    return _value("bce", y_pred, y_true, sample_weight, input=input)


def cross_entropy(
    scores: Any,
    targets: Any,
    sample_weight: Any = None,
    input: str = "auto",
    ignore_index: int = -100,
) -> float:
    """Categorical cross-entropy in nats over (N, C) scores."""
    return _value("ce", scores, targets, sample_weight, input=input, ignore_index=ignore_index)


def perplexity(logits: Any, targets: Any, ignore_index: int = -100) -> float:
    """exp(mean token cross-entropy) from (N, V) logits and token ids."""
    return _value("perplexity", logits, targets, None, ignore_index=ignore_index)
