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

from .state.parts import Example, LossState
from .columns import (
    RULE_EVERY,
    RULE_ID_NAME,
    RULE_NAME,
    RULE_OTHERS,
    RULE_WHOLE,
    USER,
    Choice,
    class_labels,
    find_id,
    has_names,
    others,
    pair_by_name,
    whole_file,
)
from .engine import (
    CHECKED_IDS,
    IDS,
    TARGET_IDS,
    WEIGHT_IDS,
    WEIGHTS,
    Evaluator,
    Role,
    choose_chunk_rows,
    default_threads,
    run,
)
from .errors import InputError, LossCliError, UsageError
from .metrics import PREDS, PROB_SUM_WARN, TARGETS, make_metric
from .readers.base import Group, Reader
from .readers.ids import open_ids
from .report import Report, figures_for, safe_exp, sequence_rows
from .wording import in_api_words

METRICS = ("mse", "mae", "bce", "ce", "perplexity")
BREAKDOWN_ALL_AT_MOST = 20
# an output with no error on this many rows or more is more likely a row number or id than a prediction
SUSPICIOUS_ROWS = 10

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


def _open(
    source: Source, name: str, fmt: str | None, header: bool | None = None, nan: str = "error"
) -> Reader:
    if isinstance(source, (str, os.PathLike)):
        from .readers.open import open_reader

        return open_reader(os.fspath(source), fmt, header=header, nan=nan)
    from .readers.memory import ArrayReader

    _refuse_named_table(source, name)
    return ArrayReader(source, name)


def _refuse_named_table(source: Source, name: str) -> None:
    """A DataFrame (pandas, Polars) or Arrow table of several columns: its names would be lost
    in an array, and with them the rules that read a file's columns (index and id columns,
    pairing by name), so a frame with an ``id`` column would score the ids. Refused with the fix
    until frames are read by name; imports nothing (the caller's library is not ours)."""
    names = getattr(source, "column_names", None)  # Arrow tables (their .columns are arrays)
    if names is None:
        names = getattr(source, "columns", None)  # pandas and Polars DataFrames
    if names is None:
        return
    names = [str(n) for n in names]
    if len(names) > 1 and names != [str(j) for j in range(len(names))]:  # 0..k-1: nothing to lose
        raise UsageError(
            f"{name}: a table of {len(names)} named columns ({', '.join(names[:6])}); its column "
            "names are not read from Python yet, so pass arrays: df.to_numpy() for every column in "
            "its order (class scores in class order, outputs in the targets' order), or one column "
            "by its name"
        )


def _pick(reader: Reader, spec: str | None) -> Group:
    return None if spec is None else reader.resolve_many(spec)


def _file_choice(reader: Reader, spec: str | None, taken: tuple[int, ...] = ()) -> Choice:
    """A file's columns for one role: the named ones, else every data column."""
    if spec is not None:
        return Choice(reader, reader.resolve_many(spec), USER)
    return whole_file(reader, taken)


def resolve_roles(
    metric: str,
    preds: Reader,
    targets: Reader | None,
    pred_col: str | None,
    target_col: str | None,
    exclude: tuple[int, ...] = (),
) -> tuple[Choice, Choice]:
    """Which columns are predictions and which are targets, and how each was chosen.

    Two files: each takes the named column, or every data column it holds. One file: the
    named columns; a target column alone means "every other data column is a prediction" (a
    wide CSV of class scores plus a label); with neither, well-known names (pred/target,
    y_pred/y_true, ...) are recognised. Data columns never include a pandas index, nor an
    id-like column unless nothing else is left (see ``columns``). ``exclude``: the weight column.
    """
    if targets is not None:
        return _file_choice(preds, pred_col, exclude), _file_choice(targets, target_col)
    t_idx = preds.resolve_many(target_col) if target_col else None
    t_how = USER
    if t_idx is None:
        guess = preds.guess(TARGET_NAMES)
        t_idx, t_how = ([guess] if guess is not None else None), RULE_NAME
    p_choice = Choice(preds, preds.resolve_many(pred_col), USER) if pred_col else None
    if p_choice is None and t_idx is not None:
        taken = tuple(sorted(set(t_idx) | set(exclude)))
        guess = None if metric in ("ce", "perplexity") else preds.guess(PRED_NAMES)
        p_choice = Choice(preds, [guess], RULE_NAME) if guess is not None and guess not in taken else None
        p_choice = p_choice or others(preds, taken)
    if t_idx is None or p_choice is None or not p_choice.group:
        raise UsageError(
            f"{preds.display}: one file was given, so say which columns hold what with "
            f"--pred-col and --target-col (columns: {', '.join(preds.column_names[:20])}), "
            "or pass the targets as a second file"
        )
    return p_choice, Choice(preds, t_idx, t_how)


def _used(choices: dict[str, Choice], reader: Reader) -> list[int]:
    """Every column of ``reader`` some role reads as data."""
    used: set[int] = set()
    for c in choices.values():
        if c.reader is reader:
            used |= set(range(len(reader.column_names))) if c.group is None else set(c.group)
    return sorted(used)


@dataclass
class IdPlan:
    """The id column(s) found, the roles that stream them, and how to describe them."""

    roles: dict[str, Role]
    column: str | None = None
    json: dict[str, Any] | None = None
    note: str | None = None
    warning: str | None = None  # files whose id column could not be matched, so were not checked


def plan_ids(choices: dict[str, Choice]) -> IdPlan:
    """Find an id column in the predictions', targets' and weights' files. Its values go with
    each example into the breakdown and --per-example; every other file holding the same id
    column (same name, any case) must agree row by row, which the engine checks as it streams."""
    checked = {TARGETS: TARGET_IDS, WEIGHTS: WEIGHT_IDS}
    found: list[tuple[str, Reader, int]] = []
    for role in (PREDS, TARGETS, WEIGHTS):
        reader = choices[role].reader if role in choices else None
        if reader is None or any(reader is r for _, r, _ in found):
            continue
        j = find_id(reader, _used(choices, reader))
        if j is not None:
            found.append((role, reader, j))
    if not found:
        return IdPlan({})
    _, main, j = found[0]
    name = main.column_names[j]
    roles = {IDS: Role(*open_ids(main, j), main.display)}
    against: list[dict[str, Any]] = []
    unmatched: list[str] = []
    for role, other, k in found[1:]:
        if other.column_names[k].lower() != name.lower():
            unmatched.append(other.display)
            continue
        roles[checked[role]] = Role(*open_ids(other, k), other.display)
        against.append({"file": other.display, "columns": [other.column_names[k]]})
    info = {"file": main.display, "columns": [name], "chosen_by": RULE_ID_NAME, "checked_against": against}
    note = f"rows carry ids from {main.display} column {main.header_text(j)!r}"
    if against:
        note += f", checked row by row against {' and '.join(str(a['file']) for a in against)}"
    warning = None
    if unmatched:
        warning = (
            f"the rows of {' and '.join(unmatched)} were not checked against the ids of {main.display}: "
            f"its id column has another name than {name!r}; rename it to check that the files are in "
            "the same order"
        )
    return IdPlan(roles, name, info, note, warning)


def _weight_choice(preds: Reader, weights: Reader | None, weight_col: str | None) -> Choice:
    """--weight-col in the predictions' file, or a --weights file (its column, or all of it)."""
    if weights is None:
        return Choice(preds, _pick(preds, weight_col), USER)
    return _file_choice(weights, weight_col)


def _roles(choices: dict[str, Choice], planned: dict[str, Role] | None) -> tuple[dict[str, Role], IdPlan]:
    """The engine's roles: the chosen columns (a language-model plan's own for preds and
    targets), plus the id streams when a file has an id column (not for token data)."""
    roles = {name: Role(c.reader, c.group, c.reader.display) for name, c in choices.items()}
    if planned is not None:
        return {**planned, **{k: v for k, v in roles.items() if k == WEIGHTS}}, IdPlan({})
    ids = plan_ids(choices)
    return {**roles, **ids.roles}, ids


def _columns_report(choices: dict[str, Choice], ids: IdPlan) -> tuple[dict[str, Any], list[str]]:
    """The JSON ``columns`` object, and the one note line when a rule chose anything."""
    columns: dict[str, Any] = {role: c.to_json() for role, c in choices.items()}
    columns["ids"] = ids.json
    by_file: dict[str, list[str]] = {}
    for role, c in choices.items():
        said = by_file.setdefault(c.reader.display, [])
        said.extend(p for p in c.note(role) if p not in said)
    parts = [f"{file}: {', '.join(said)}" for file, said in by_file.items() if said]
    if ids.note is not None:
        parts.append(ids.note)
    return columns, (["; ".join(parts)] if parts else [])


def _plan_choice(role: Role, spec: str | None) -> Choice:
    """A language-model role as the JSON ``columns`` object describes it."""
    reader, group = role.reader, role.group
    if spec is not None:
        return Choice(reader, group, USER)
    if group is None:
        return Choice(reader, None, RULE_EVERY if hasattr(reader, "has_header") else RULE_WHOLE)
    index = list(reader.index_columns)
    if index and sorted(group) == [j for j in range(len(reader.column_names)) if j not in index]:
        return Choice(reader, group, RULE_EVERY, index)  # the whole file but its pandas index
    return Choice(reader, group, RULE_NAME)


def _output_names(choices: dict[str, Choice], count: int) -> list[str]:
    """Per-output labels: the predictions' column names (else the targets'), else 0, 1, ..."""
    for role in (PREDS, TARGETS):
        names = choices[role].names() if choices[role].reader.named() else None
        if names is not None and len(names) == count:
            return names
    return [str(j) for j in range(count)]


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
    from .readers.open import check_read_once

    check_read_once(
        [os.fspath(s) for s in (preds, targets, weights, logprobs, text) if isinstance(s, (str, os.PathLike))]
    )
    if top < 0:
        raise UsageError("--top must be 0 or more")
    if per_example is not None:  # a bad output name is a usage error, found before any reading
        from .per_example import output_kind

        output_kind(str(per_example))
    lm_only = {
        "logprobs": logprobs,
        "shift": shift,
        "topk": topk if metric != "ce" else None,
        "seq_col": seq_col,
        "text": text,
        "bytes": n_bytes,
        "words": n_words,
    }
    given = [k for k, v in lm_only.items() if v is not None and v is not False]  # 0 is given (0 == False)
    if metric != "perplexity" and given:
        used = ", ".join(given)
        raise UsageError(f"{used}: only for perplexity")
    size = None
    plan = None
    from .readers.open import settle_headers

    def opened(source: Source, name: str) -> Reader:
        return stack.enter_context(_open(source, name, fmt, header, nan))

    label_note: str | None = None
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
                read_warnings = settle_headers([lp_reader])
                plan = plan_logprobs(lp_reader, pred_col, seq_col)
            else:
                logits_reader = opened(preds, "logits")
                ids_reader = opened(targets, "targets") if targets is not None else logits_reader
                read_warnings = settle_headers([logits_reader, ids_reader])
                plan = plan_logits(
                    logits_reader, ids_reader, pred_col, target_col, seq_col, ignore_index, topk
                )
            choices = {
                name: _plan_choice(role, pred_col if name == PREDS else target_col)
                for name, role in plan.roles.items()
            }
            m = plan.metric
        else:
            p_reader = opened(preds, "preds")
            t_reader = opened(targets, "targets") if targets is not None else None
            read_warnings = settle_headers([p_reader] + ([t_reader] if t_reader is not None else []))
            exclude = tuple(p_reader.resolve_many(weight_col)) if (weight_col and weights is None) else ()
            p_choice, t_choice = resolve_roles(metric, p_reader, t_reader, pred_col, target_col, exclude)
            if t_reader is not None:
                p_choice, t_choice, pairing = pair_by_name(p_choice, t_choice)
                read_warnings += [pairing] if pairing else []
            choices = {PREDS: p_choice, TARGETS: t_choice}
            labels, label_note = class_labels(p_choice) if metric == "ce" else (None, None)
            m = make_metric(metric, input, ignore_index, topk, labels)
        if weights is not None or weight_col is not None:
            w_reader = None if weights is None else opened(weights, "weights")
            if w_reader is not None:
                read_warnings += settle_headers([w_reader, *(c.reader for c in choices.values())])
            choices[WEIGHTS] = _weight_choice(choices[PREDS].reader, w_reader, weight_col)
        roles, ids = _roles(choices, plan.roles if plan is not None else None)
        columns, notes = _columns_report(choices, ids)
        notes += [label_note] if label_note else []
        p_role = roles[PREDS]
        readers = list(dict.fromkeys(r.reader for r in roles.values()))
        chunk_rows = choose_chunk_rows(readers, chunk_size)
        sink = None
        if per_example is not None:
            from .per_example import open_writer

            carry = IDS in roles and not per_example.lower().endswith(".npy")
            if IDS in roles and not carry:
                notes.append(
                    f"{per_example}: .npy files have no id column; write .csv or .parquet to get ids"
                )
            sink = open_writer(per_example, ("sequence", "position") if plan is not None else (), carry)
            stack.callback(sink.abort)  # no-op after commit
        evaluator = Evaluator(m, nan=nan, worst_capacity=max(top, BREAKDOWN_ALL_AT_MOST), sink=sink)
        evaluator.text_ids = frozenset(
            k for k in (IDS, *CHECKED_IDS) if k in roles and getattr(roles[k].reader, "ids_as_text", False)
        )
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
    warnings: list[str] = list(dict.fromkeys(read_warnings))
    if ids.warning:
        warnings.append(ids.warning)
    mean = state.mean()
    value = safe_exp(mean) if metric == "perplexity" else mean
    per_output: list[tuple[str, dict[str, float]]] = []
    if state.outputs > 1:
        for name, v in zip(_output_names(choices, state.outputs), state.per_output(), strict=True):
            vals = {"value": float(v)}
            if metric == "mse":
                vals["rmse"] = float(v) ** 0.5
            per_output.append((name, vals))
        exact = [n for n, vals in per_output if vals["value"] == 0.0]
        if exact and len(exact) < len(per_output) and state.n >= SUSPICIOUS_ROWS:
            warnings.append(
                f"output {exact[0]!r} has no error on any row: if it is a row number or an id "
                "that both inputs hold, it is being scored as an output; name the data columns "
                "with --pred-col/--target-col"
            )
    examples = state.worst.examples()
    if IDS in roles:  # the engine put each example's id first in its detail tuple
        examples = [Example(e.row, e.loss, e.detail[1:], e.detail[0]) for e in examples]
    breakdown = "worst"
    if state.n <= BREAKDOWN_ALL_AT_MOST:
        examples.sort(key=lambda e: e.row)
        breakdown = "all"
    else:
        examples = examples[:top]
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
    ruled = choices[PREDS]
    by_rule = ruled.chosen_by in (RULE_OTHERS, RULE_EVERY) and has_names(ruled.reader)
    if metric == "ce" and m.input_detected and m.input_kind == "logits" and by_rule:
        warnings.append(
            f"{ruled.reader.display}: the {len(ruled.positions())} columns a rule took as class "
            f"scores ({ruled.chosen_by}) were read as logits; if one of them is not a class score "
            "(a fold, a count), name the score columns with --pred-col, else pass --input logits"
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
        files={name: role.label for name, role in roles.items() if name not in (IDS, *CHECKED_IDS)},
        columns=columns,
        notes=notes,
        id_column=ids.column,
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
        for alias, name, place in (("y_pred", "preds", 1), ("y_true", "targets", 2)):
            if alias in kwargs:  # scikit-learn's keywords, as the shortcuts take them
                if name in kwargs or len(args) > place:
                    raise UsageError(f"give {name} or its alias {alias}, not both")
                kwargs[name] = kwargs.pop(alias)
        try:
            report = run(*args, **kwargs)
        except LossCliError as exc:
            exc.args = (in_api_words(str(exc)),)
            raise
        report.warnings = [in_api_words(w) for w in report.warnings]
        report.notes = [in_api_words(n) for n in report.notes]
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
    """Run a shortcut: predictions first (as torch's losses take them), warnings raised.

    Every shortcut takes ``nan=`` ("error" or "skip"), as ``evaluate`` does: the NaN error's
    hint says ``use nan="skip"``, so the shortcut that raised it must accept it."""
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
    nan: str = "error",
) -> float:
    """Mean squared error of ``preds`` against ``targets`` (uniform average over outputs, like
    scikit-learn). Predictions come first, as in torch's losses; scikit-learn's keywords
    ``y_pred=``/``y_true=`` are accepted too."""
    return _value("mse", preds, targets, sample_weight, {"y_pred": y_pred, "y_true": y_true}, nan=nan)


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
    return _value("mae", preds, targets, sample_weight, {"y_pred": y_pred, "y_true": y_true}, nan=nan)


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
    aliases = {"y_pred": y_pred, "y_true": y_true}
    return _value("bce", preds, targets, sample_weight, aliases, input=input, nan=nan)


def cross_entropy(
    preds: Source | None = None,
    targets: Source | None = None,
    sample_weight: Source | None = None,
    input: str = "auto",
    ignore_index: int = -100,
    *,
    y_pred: Source | None = None,
    y_true: Source | None = None,
    nan: str = "error",
) -> float:
    """Categorical cross-entropy in nats of (N, C) scores ``preds`` (probs, logits or logprobs:
    ``input``) against class ids or (N, C) soft targets. Predictions first, as in
    ``torch.nn.functional.cross_entropy(input, target)``; ``y_pred=``/``y_true=`` accepted."""
    aliases = {"y_pred": y_pred, "y_true": y_true}
    options = {"input": input, "ignore_index": ignore_index, "nan": nan}
    return _value("ce", preds, targets, sample_weight, aliases, **options)


def perplexity(
    logits: Source | None = None,
    targets: Source | None = None,
    ignore_index: int = -100,
    *,
    y_pred: Source | None = None,
    y_true: Source | None = None,
    nan: str = "error",
) -> float:
    """exp(mean token cross-entropy) from (N, V) or (B, T, V) ``logits`` and token ids
    ``targets`` (logits first; ``y_pred=``/``y_true=`` accepted)."""
    aliases = {"y_pred": y_pred, "y_true": y_true}
    return _value("perplexity", logits, targets, None, aliases, ignore_index=ignore_index, nan=nan)
