"""What a Python user calls: paths or arrays in, a ``Report`` (or a float) out.

    >>> import losscli
    >>> losscli.mse([2.5, 3.0, 4.5], [2.0, 3.5, 4.0])
    0.25
    >>> report = losscli.evaluate("ce", "scores.npy", "labels.npy")   # doctest: +SKIP
    >>> report.value, report.figure("perplexity")                     # doctest: +SKIP

The CLI is a thin layer over ``evaluate``; both run the same streaming engine.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, ParamSpec

from .accumulate import LossState
from .engine import WEIGHTS, Evaluator, Role, choose_chunk_rows, default_threads, run
from .errors import InputError, LossCliError, UsageError
from .metrics import PREDS, PROB_SUM_WARN, TARGETS, make_metric
from .readers.base import Group, Reader
from .report import Report, figures_for, safe_exp, sequence_rows
from .wording import in_api_words

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
P = ParamSpec("P")


@dataclass
class Progress:
    """Hooks the CLI passes to show a progress bar; the library itself never prints."""

    start: Callable[[int | None], None]
    advance: Callable[[int], None]
    stop: Callable[[], None]


def _open(source: Source, name: str, fmt: str | None) -> Reader:
    if isinstance(source, (str, os.PathLike)):
        from .readers.open import open_reader

        return open_reader(os.fspath(source), fmt)
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


def run_evaluation(
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
) -> Report:
    """Stream ``preds`` (and ``targets``, ``weights``) through ``metric``; return a Report.

    Sources are paths (CSV/TSV, Parquet, .npy, .npz, JSON Lines; ``-`` for CSV on stdin) or
    arrays. ``per_example`` names a .csv/.parquet/.npy file that receives every example's loss.

    Perplexity also takes: ``logprobs`` (gathered log-probabilities instead of logits and
    targets), ``shift`` (causal-LM labels), ``topk``, ``seq_col``, and ``text`` / ``n_bytes`` /
    ``n_words`` for bits per byte and word perplexity.
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
    with ExitStack() as stack:
        if metric == "perplexity":
            from .lm import plan_logits, plan_logprobs, text_size

            size = text_size(text, n_bytes, n_words)
            if (logprobs is None) == (preds is None):
                raise UsageError("give either logits (with targets) or --logprobs, not both")
            if logprobs is not None:
                if shift or topk is not None:
                    raise UsageError("--shift and --topk need logits; log-probabilities are already gathered")
                plan = plan_logprobs(stack.enter_context(_open(logprobs, "logprobs", fmt)), pred_col, seq_col)
            else:
                logits_reader = stack.enter_context(_open(preds, "logits", fmt))
                ids_reader = (
                    stack.enter_context(_open(targets, "targets", fmt))
                    if targets is not None
                    else logits_reader
                )
                plan = plan_logits(
                    logits_reader, ids_reader, pred_col, target_col, seq_col, ignore_index, topk
                )
            roles = dict(plan.roles)
            m = plan.metric
        else:
            p_reader = stack.enter_context(_open(preds, "preds", fmt))
            t_reader = stack.enter_context(_open(targets, "targets", fmt)) if targets is not None else None
            exclude = tuple(p_reader.resolve_many(weight_col)) if (weight_col and weights is None) else ()
            p_role, t_role = resolve_roles(metric, p_reader, t_reader, pred_col, target_col, exclude)
            roles = {PREDS: p_role, TARGETS: t_role}
            m = make_metric(metric, input, ignore_index, topk)
        p_role = roles[PREDS]
        if weights is not None or weight_col is not None:
            w_reader = (
                p_role.reader if weights is None else stack.enter_context(_open(weights, "weights", fmt))
            )
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
        nulls = plan.nulls if plan is not None else 0
        state.ignored += nulls
        if state.n == 0:
            raise InputError(_nothing_scored(state, ignore_index, nulls), path=p_role.label)
        if state.weights_sum_to_zero():
            # 0/0 is not an overflow: the data gives no weighted mean at all
            w_role = roles[WEIGHTS]
            raise InputError(
                f"the weights sum to zero over the {state.n} scored rows, so there is no weighted mean",
                path=w_role.label,
                column=_weight_column(w_role, weight_col),
            )
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
    warnings: list[str] = []
    if evaluator.overflow:
        warnings.append("some losses overflowed float64 to inf; the mean is inf")
    if state.clamped:
        warnings.append(
            f"{state.clamped} example(s) had a probability of 0 (or 1) where the target needs "
            "the opposite; their log was clamped at -100, as torch does"
        )
    if state.row_sum_row >= 0 and abs(state.row_sum - 1.0) > PROB_SUM_WARN:
        what = "probabilities" if m.input_kind == "probs" else "probabilities (exp of the log-probabilities)"
        warnings.append(
            f"the {what} in a row do not sum to 1: row {state.row_sum_row} sums to "
            f"{state.row_sum:.6g} (off by {abs(state.row_sum - 1.0):.2g}, the most of any row); "
            "scored as given, not renormalised"
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


def _nothing_scored(state: LossState, ignore_index: int, nulls: int) -> str:
    """Why no row was counted, naming every reason that removed rows."""
    reasons = []
    by_index = state.ignored - nulls
    if by_index:
        reasons.append(f"{by_index} row(s) have the ignore index {ignore_index}")
    if nulls:
        reasons.append(f"{nulls} log-probabilities are null")
    if state.skipped:
        reasons.append(f"{state.skipped} row(s) held NaN or inf and were skipped")
    if not reasons:
        return "nothing was scored: no rows"
    return "nothing was scored: every row was left out (" + "; ".join(reasons) + ")"


def _weight_column(role: Role, weight_col: str | None) -> str | None:
    """The weights column's name for a message, when the weights are one column of a table."""
    if weight_col is None or role.group is None or len(role.group) != 1:
        return None
    return repr(role.reader.column_names[role.group[0]])


class LossCliWarning(UserWarning):
    """What ``evaluate`` records in ``Report.warnings``, raised as a Python warning by the
    shortcuts (``mse``, ``bce``, ...), which return a bare float and have nowhere else to say it."""


def in_python_terms(run: Callable[P, Report]) -> Callable[P, Report]:
    """The public face of ``run``: errors and warnings name ``evaluate``'s parameters
    (``nan="skip"``, ``input="logits"``), not the command-line options the library writes."""

    @functools.wraps(run)
    def evaluate(*args: P.args, **kwargs: P.kwargs) -> Report:
        try:
            report = run(*args, **kwargs)
        except LossCliError as exc:
            exc.args = (in_api_words(str(exc)),)
            raise
        report.warnings = [in_api_words(w) for w in report.warnings]
        return report

    return evaluate


evaluate = in_python_terms(run_evaluation)


def _value(
    metric: str,
    preds: Source | None,
    targets: Source | None,
    sample_weight: Source | None,
    aliases: dict[str, Source | None],
    **options: Any,
) -> float:
    """Run a shortcut: predictions first (as torch's losses take them), warnings raised."""
    y_pred, y_true = aliases["y_pred"], aliases["y_true"]
    for name, given, alias in (("preds", preds, y_pred), ("targets", targets, y_true)):
        if given is not None and alias is not None:
            raise UsageError(
                f"give {name} or its alias {'y_pred' if name == 'preds' else 'y_true'}, not both"
            )
    preds = preds if y_pred is None else y_pred
    targets = targets if y_true is None else y_true
    if preds is None or targets is None:
        raise UsageError(f"{metric} needs both preds and targets (y_pred= and y_true= are accepted too)")
    report = evaluate(metric, preds, targets, weights=sample_weight, top=0, **options)
    for text in report.warnings:
        warnings.warn(text, LossCliWarning, stacklevel=3)
    if report.input_detected:
        warnings.warn(
            f'input="auto" read the predictions as {report.input_kind}; '
            f'pass input="{report.input_kind}" to say so and silence this warning',
            LossCliWarning,
            stacklevel=3,
        )
    return report.value


def mse(
    preds: Source | None = None,
    targets: Source | None = None,
    sample_weight: Source | None = None,
    *,
    y_pred: Source | None = None,
    y_true: Source | None = None,
) -> float:
    """Mean squared error of ``preds`` against ``targets`` (uniform average over outputs, like
    scikit-learn). Predictions come first, as in torch's losses; scikit-learn's keywords
    ``y_pred=``/``y_true=`` are accepted too."""
    return _value("mse", preds, targets, sample_weight, {"y_pred": y_pred, "y_true": y_true})


def mae(
    preds: Source | None = None,
    targets: Source | None = None,
    sample_weight: Source | None = None,
    *,
    y_pred: Source | None = None,
    y_true: Source | None = None,
) -> float:
    """Mean absolute error of ``preds`` against ``targets`` (predictions first; ``y_pred=``/
    ``y_true=`` accepted)."""
    return _value("mae", preds, targets, sample_weight, {"y_pred": y_pred, "y_true": y_true})


def bce(
    preds: Source | None = None,
    targets: Source | None = None,
    sample_weight: Source | None = None,
    input: str = "auto",
    *,
    y_pred: Source | None = None,
    y_true: Source | None = None,
) -> float:
    """Binary cross-entropy in nats of ``preds`` (probabilities or logits: ``input`` is probs,
    logits or auto) against ``targets`` in [0, 1]. Predictions come first, as in
    ``torch.nn.functional.binary_cross_entropy(input, target)``; note that scikit-learn's
    ``log_loss(y_true, y_pred)`` takes the labels first: pass ``y_true=``/``y_pred=`` by keyword
    to be safe. Clamped logs and an auto-detected input kind are raised as ``LossCliWarning``."""
    return _value("bce", preds, targets, sample_weight, {"y_pred": y_pred, "y_true": y_true}, input=input)


def cross_entropy(
    preds: Source | None = None,
    targets: Source | None = None,
    sample_weight: Source | None = None,
    input: str = "auto",
    ignore_index: int = -100,
    *,
    y_pred: Source | None = None,
    y_true: Source | None = None,
) -> float:
    """Categorical cross-entropy in nats of (N, C) scores ``preds`` (probs, logits or logprobs:
    ``input``) against class ids or (N, C) soft targets. Predictions first, as in
    ``torch.nn.functional.cross_entropy(input, target)``; ``y_pred=``/``y_true=`` accepted."""
    aliases = {"y_pred": y_pred, "y_true": y_true}
    return _value("ce", preds, targets, sample_weight, aliases, input=input, ignore_index=ignore_index)


def perplexity(
    logits: Source | None = None,
    targets: Source | None = None,
    ignore_index: int = -100,
    *,
    y_pred: Source | None = None,
    y_true: Source | None = None,
) -> float:
    """exp(mean token cross-entropy) from (N, V) or (B, T, V) ``logits`` and token ids
    ``targets`` (logits first; ``y_pred=``/``y_true=`` accepted)."""
    aliases = {"y_pred": y_pred, "y_true": y_true}
    return _value("perplexity", logits, targets, None, aliases, ignore_index=ignore_index)
