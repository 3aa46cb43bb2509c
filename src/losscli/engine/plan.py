"""From a checked ``Evaluation`` to a ``Plan``: readers opened, roles and columns chosen, the
language-model layout laid out, the state's header written. Nothing is scored here.

The plan is the one place that knows both the request and the files; the evaluator and the
runners take it from there, and the state they build carries the plan's header, so a report
never needs the plan (or the files) again.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import __version__
from ..columns import RULE_EVERY, RULE_OTHERS, Choice, class_labels, has_names, pair_by_name
from ..errors import LossCliError, UsageError
from ..metrics import registry
from ..metrics.base import DETECTED_IN, MetricDef, Scorer
from ..metrics.checks import PREDS, TARGETS
from ..metrics.labels import as_number, check_classes
from ..options import Evaluation, Source
from ..readers.base import Reader
from ..readers.ids import open_ids
from ..readers.keys import KeyTable
from ..readers.partitioned import partition_numbers
from ..sequences import MASK, PeriodicSequences, SequenceMap, SingleSequence
from ..state.evalstate import Binding, Header, InputFile, Provenance
from .evaluator import CHECKED_IDS, GROUP_KEY, GROUPS, IDS, WEIGHTS
from .group_plan import plan_clusters, plan_groups
from .pairing import PRED_INDEX, TARGET_INDEX
from .roles import (
    IdPlan,
    columns_report,
    engine_roles,
    exclude_columns,
    index_warnings,
    output_names_of,
    plan_choice,
    resolve_roles,
    weight_choice,
    weight_column,
)
from .runners import Role, choose_chunk_rows

INDEX_ROLES = (PRED_INDEX, TARGET_INDEX)


@dataclass
class Plan:
    """Everything a runner needs, and the header of the state it will build."""

    metric: MetricDef
    scorer: Scorer
    roles: dict[str, Role]
    choices: dict[str, Choice]
    chunk_rows: int
    header: Header
    ids: IdPlan
    seqmap: SequenceMap | None = None  # the input's own sequences (rows counted from 0)
    shift: bool = False
    nulls: int = 0  # null log-probabilities: rows the scorer ignores, counted by the reader
    text_ids: frozenset[str] = frozenset()
    total_rows: int | None = None
    readers: list[Reader] = field(default_factory=list)  # every input opened (for add_hints)
    warnings_after: list[Callable[[Binding], str | None]] = field(default_factory=list)
    keys: KeyTable | None = None  # --group-by: the run's group keys
    clusters: KeyTable | None = None  # --cluster-col: the run's cluster values

    def output_names(self, count: int) -> tuple[str, ...]:
        return tuple(safe_text(output_names_of(self.choices, count))) if count > 1 else ()


def open_source(source: Source, stack: ExitStack, nan: str, text: bool = False) -> Reader:
    """A reader for one input, closed with ``stack``; ``text``: an array of strings is
    accepted (text labels for a metric that takes them)."""
    if source.is_path:
        from ..readers.open import open_reader

        reader = open_reader(
            source.path or "",
            source.format,
            header=source.header,
            nan=nan,
            delimiter=source.delimiter,
            decimal=source.decimal,
        )
        if reader.sequence_records and source.role != "logprobs":
            reader.close()
            raise UsageError(
                f"{reader.display}: JSON holds per-token log-probabilities, read by "
                "`losscli perplexity --logprobs FILE`; give predictions, targets and weights as "
                ".csv, .tsv, .parquet, .npy or .npz"
            )
    else:
        from ..readers.frames import open_memory

        reader = open_memory(source.data, source.role, nan, text=text)
    if source.partition or source.rows is not None:  # a shard (see engine.sharded)
        from ..readers.partitioned import PartitionedReader, RowRangeReader

        stack.enter_context(reader)
        rows, partition = source.rows, source.partition
        reader = (
            RowRangeReader(reader, *rows, partition, source.rows_total)
            if rows
            else PartitionedReader(reader, partition)
        )
    return stack.enter_context(reader)


def make_plan(evaluation: Evaluation, stack: ExitStack) -> Plan:
    """Open the inputs and decide everything a run needs before its first chunk. An error
    carries the warnings on how a CSV was read (a file read as comma-separated that may have
    decimal commas): they are its likely cause, and a failed run prints no warnings."""
    from ..readers.csv_dialect import add_hints

    every: list[Reader] = []
    try:
        return _make_plan(evaluation, stack, every)
    except LossCliError as exc:
        add_hints(exc, every)
        raise


def _make_plan(evaluation: Evaluation, stack: ExitStack, every: list[Reader]) -> Plan:
    from ..readers.csv_dialect import describe as describe_dialects
    from ..readers.csv_dialect import refuse_one_number_lines
    from ..readers.open import settle_headers

    metric = registry.get(evaluation.metric)
    nan = evaluation.run.nan

    def opened(source: Source) -> Reader:
        text = (metric.text_targets and source.role == TARGETS) or source.role == "groups"  # keys may be text
        every.append(open_source(source, stack, nan, text))
        return every[-1]

    layout: _Layout
    if metric.inputs == "tokens":
        layout = _token_layout(evaluation, opened)
    else:
        layout = _pair_layout(evaluation, metric, opened)
    inputs, choices = evaluation.inputs, layout.choices
    if inputs.weights is not None or inputs.weight_col is not None:
        w_reader = None if inputs.weights is None else opened(inputs.weights)
        if w_reader is not None:
            layout.warnings += settle_headers([w_reader, *(c.reader for c in choices.values())])
        choices[WEIGHTS] = weight_choice(choices[PREDS].reader, w_reader, inputs.weight_col)
    roles, ids = engine_roles(choices, layout.roles)
    if layout.text_targets is not None:
        roles[TARGETS] = layout.text_targets
    # index pairs (a shard's hive keys on both sides, too) are compared as ids, never as numbers
    numbers = [
        r
        for k, r in roles.items()
        if k not in (IDS, *CHECKED_IDS) and not k.startswith(INDEX_ROLES) and r is not layout.text_targets
    ]
    partition_numbers(numbers, evaluation.run.nan == "skip")
    groups = plan_groups(evaluation, choices[PREDS].reader, opened, roles, layout.seqmap)
    clusters = plan_clusters(evaluation, choices[PREDS].reader, roles, layout.seqmap)
    columns, notes = columns_report(choices, ids)
    notes += layout.notes
    if groups is not None:
        roles.update(groups.roles)
        columns["groups"] = groups.json
        notes += [groups.note] if groups.note else []
    if clusters is not None:
        roles.update(clusters.roles)
        columns["clusters"] = clusters.json
        notes += [clusters.note] if clusters.note else []
    layout.warnings += index_warnings(choices)
    refuse_one_number_lines(every)
    dialect_notes, dialect_warnings = describe_dialects(every)
    notes[:0] = dialect_notes  # how a file was read comes before what was taken from it
    layout.warnings += dialect_warnings
    readers = list(dict.fromkeys(r.reader for r in roles.values()))
    per_example = evaluation.run.per_example
    if per_example is not None and IDS in roles and per_example.lower().endswith(".npy"):
        notes.append(f"{per_example}: .npy files have no id column; write .csv or .parquet to get ids")
    warnings = list(dict.fromkeys(layout.warnings))
    if ids.warning:
        warnings.append(ids.warning)
    options = {**evaluation.metric_options, "labels": layout.labels}
    if layout.text_targets is not None:
        options["text_targets"] = True
    if layout.logprobs:
        options["logprobs"] = True
    if layout.nulls or (layout.logprobs and MASK in roles):  # masked log-probs are marked null
        options["null_logprobs"] = True
    header = _header(evaluation, metric, roles, columns, notes, warnings, ids, layout)
    scorer = metric.scorer(options)
    scorer.detected_in = evaluation.metric_options.get(DETECTED_IN)
    if groups is not None:  # states of different groupings must not merge
        header.metric_options["group_by"] = list(safe_text(groups.table.columns))
    if evaluation.run.ci is not None:  # states of different interval settings must not merge
        header.metric_options["ci"] = evaluation.run.ci.plain()
    plan = Plan(
        metric,
        scorer,
        roles,
        choices,
        choose_chunk_rows(readers, evaluation.run.chunk_size),
        header,
        ids,
        layout.seqmap,
        bool(evaluation.lm and evaluation.lm.shift),
        layout.nulls,
        frozenset(k for k in (IDS, *CHECKED_IDS) if k in roles and roles[k].reader.ids_as_text),
        next((r.n_rows for r in readers if r.n_rows is not None), None),
        every,
    )
    plan.keys = groups.table if groups is not None else None
    plan.clusters = clusters.table if clusters is not None else None
    if metric.wide_scores:
        plan.warnings_after.append(_rule_logits_warning(choices[PREDS]))
    return plan


@dataclass
class _Layout:
    """What the metric's kind of input decided: roles' columns, sequences, class labels."""

    choices: dict[str, Choice]
    warnings: list[str]
    roles: dict[str, Role] | None = None  # a token layout's own roles for preds and targets
    seqmap: SequenceMap | None = None
    nulls: int = 0
    labels: list[int] | list[str] | None = None
    text_targets: Role | None = None  # the targets' label column, read as text
    notes: list[str] = field(default_factory=list)
    logprobs: bool = False
    text_bytes: int | None = None
    text_words: int | None = None


def _pair_layout(evaluation: Evaluation, metric: MetricDef, opened: Callable[[Source], Reader]) -> _Layout:
    """PREDS [TARGETS]: the columns each role reads, paired by name across two files."""
    from ..readers.open import settle_headers

    inputs = evaluation.inputs
    assert inputs.preds is not None
    p_reader = opened(inputs.preds)
    t_reader = opened(inputs.targets) if inputs.targets is not None else None
    warnings = settle_headers([p_reader] + ([t_reader] if t_reader is not None else []))
    if t_reader is not None and inputs.target_col is None and metric.text_targets:
        options = evaluation.metric_options
        classes = [*(options.get("classes") or p_reader.column_names), options.get("positive")]
        warnings += _label_as_header(t_reader, {str(c) for c in classes if c is not None})
    weight_col = inputs.weight_col
    exclude = tuple(weight_column(p_reader, weight_col)) if (weight_col and inputs.weights is None) else ()
    if evaluation.run.group_by is not None and inputs.groups is None:  # keys are never data by a rule
        exclude = tuple(sorted({*exclude, *p_reader.resolve_many(evaluation.run.group_by)}))
    pred_col = inputs.preds.columns
    target_col = inputs.target_col
    p_choice, t_choice = resolve_roles(
        not metric.wide_scores, p_reader, t_reader, pred_col, target_col, exclude
    )
    p_choice = exclude_columns(p_choice, inputs.exclude_col)
    if t_reader is not None:
        p_choice, t_choice, pairing = pair_by_name(p_choice, t_choice)
        warnings += [pairing] if pairing else []
    given = evaluation.metric_options.get("classes") or ()
    text = _text_targets(metric, t_choice, any(not isinstance(c, int) for c in given))
    labels: list[int] | list[str] | None = None
    labels, label_note = class_labels(p_choice) if metric.wide_scores else (None, None)
    if metric.wide_scores:
        names = [p_choice.reader.column_names[j].strip() for j in p_choice.positions()]
        named = has_names(p_choice.reader)
        check_classes(evaluation.metric_options.get("classes"), names if named else None)
        if text is not None:  # text labels meet the columns by name, whatever the names are
            labels, label_note = (names if named else None), None
    return _Layout(
        {PREDS: p_choice, TARGETS: t_choice},
        warnings,
        labels=labels,
        text_targets=text,
        notes=[label_note] if label_note else [],
    )


def _label_as_header(reader: Reader, classes: set[str]) -> list[str]:
    """A headerless file of text labels (``np.savetxt(f, y, fmt="%s")``): its first label is
    not a number, so it was taken for a column name. When it is one of the classes, it is a
    label: read the file without a header, and say so."""
    use_header = getattr(reader, "use_header", None)
    if use_header is None or getattr(reader, "header_forced", True) or not reader.header_row:
        return []
    first = reader.header_text(0).strip() if len(reader.column_names) == 1 else None
    if first not in classes or as_number(first) is not None or not reader.text_column(0):
        return []  # a file of numbers keeps the header rules of readers.open.settle_headers
    use_header(False)
    return [
        f"{reader.display}: its first row {first!r} is one of the classes, so it "
        "was read as a label, not as a column name; give --header if it is a name"
    ]


def _text_targets(metric: MetricDef, targets: Choice, text_classes: bool) -> Role | None:
    """A label column whose cells are not numbers (``dog``, ``spam``), for a metric that takes
    text labels: read as text, as id columns are (``ids.open_ids``), not refused as "not a
    number". ``text_classes``: --classes names a class that is not an integer (``3.5``), so
    labels are matched to it as text even when they look like numbers."""
    cols = targets.positions()
    if not metric.text_targets or len(cols) != 1:
        return None
    if not (text_classes or targets.reader.text_column(cols[0])):
        return None
    return Role(*open_ids(targets.reader, cols[0]), targets.reader.display)


def _token_layout(evaluation: Evaluation, opened: Callable[[Source], Reader]) -> _Layout:
    """Perplexity: logits and ids, or gathered log-probabilities, one token per row."""
    from ..lm import add_mask, found_mask, plan_logits, plan_logprobs, text_size
    from ..readers.open import settle_headers

    inputs, lm = evaluation.inputs, evaluation.lm
    assert lm is not None
    size = text_size(lm.text, lm.n_bytes, lm.n_words)
    mask_notes: list[str] = []
    pred_col, target_col = inputs.pred_col, inputs.target_col
    given = inputs.logprobs if inputs.logprobs is not None else inputs.targets
    header = given.header if given is not None else None  # --header/--no-header
    mask_reader = opened(Source(lm.mask, "mask", header=header)) if lm.mask is not None else None
    if mask_reader is not None:
        _mask_header(mask_reader)
    if inputs.logprobs is not None:
        lp_reader = opened(inputs.logprobs)
        warnings = settle_headers([lp_reader])
        tokens = plan_logprobs(lp_reader, pred_col, lm.seq_col, lm.pad_value)
        beside = lp_reader  # the log-probs' own file: an attention_mask array or column in it
    else:
        assert inputs.preds is not None
        logits_reader = opened(inputs.preds)
        beside = opened(inputs.targets) if inputs.targets is not None else logits_reader
        warnings = settle_headers([logits_reader, beside])
        tokens = plan_logits(logits_reader, beside, pred_col, target_col, lm.seq_col)
    if mask_reader is not None or lm.mask_col is not None:
        add_mask(tokens, mask_reader or beside, lm.mask_col)
    elif not lm.no_mask and tokens.ids is not None:
        found = found_mask(tokens, beside)  # the tokenizer's attention_mask beside the tokens
        if found is not None:
            said = add_mask(tokens, beside, found, auto=True)
            if said is None:
                mask_notes.append(f"the padding {found!r} marks is not scored (--no-mask scores it)")
            else:
                warnings.append(said)
    warnings += tokens.warnings
    specs = {PREDS: pred_col, TARGETS: target_col, MASK: lm.mask_col}
    choices = {name: plan_choice(role, specs[name]) for name, role in tokens.roles.items()}
    return _Layout(
        choices,
        warnings,
        roles=tokens.roles,
        seqmap=tokens.seqmap,
        nulls=tokens.nulls,
        logprobs=inputs.logprobs is not None,
        notes=mask_notes,
        text_bytes=size.bytes,
        text_words=size.words,
    )


def _mask_header(reader: Reader) -> None:
    """A CSV attention mask written by pandas (``pd.DataFrame(mask).to_csv(index=False)``):
    its first row 0, 1, 2, ... holds values a mask cannot (only 0 and 1), so it is the header
    pandas writes for unnamed columns, not a row of the mask."""
    if not reader.delimited or getattr(reader, "header_forced", True) or reader.header_row:
        return
    if getattr(reader, "pandas_default", False) and len(reader.column_names) > 2:
        reader.use_header(True)  # type: ignore[attr-defined]


def _header(
    evaluation: Evaluation,
    metric: MetricDef,
    roles: dict[str, Role],
    columns: dict[str, Any],
    notes: list[str],
    warnings: list[str],
    ids: IdPlan,
    layout: _Layout,
) -> Header:
    files = {name: role.label for name, role in roles.items() if name not in (IDS, *CHECKED_IDS)}
    files = {k: v for k, v in files.items() if k != GROUPS and not k.startswith(GROUP_KEY)}
    if evaluation.inputs.groups is not None and GROUPS in roles:
        files["groups"] = roles[GROUPS].label
    elif evaluation.inputs.groups is not None:
        files["groups"] = next(r.label for k, r in roles.items() if k.startswith(GROUP_KEY))
    provenance = Provenance(
        __version__,
        metric.name,
        safe_text(evaluation.recorded_options()),
        _input_files(evaluation),
        evaluation.run.row_offset,
    )
    return Header(
        metric.name,
        evaluation.merge_options(metric),
        provenance,
        binding=Binding(id_column=safe_text(ids.column), weighted=WEIGHTS in roles),
        row_offset=evaluation.run.row_offset,
        sequence_offset=_sequence_offset(evaluation, layout.seqmap),
        files=safe_text(files),
        columns=safe_text(columns),
        notes=safe_text(notes),
        warnings=safe_text(warnings),
        text_bytes=layout.text_bytes,
        text_words=layout.text_words,
    )


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def safe_text(value: Any) -> Any:
    """Texts a state can hold (valid UTF-8, one line): a file name that is not UTF-8, or a column
    name with a tab or newline, is kept with backslash escapes, as ``repr`` would show it."""
    if isinstance(value, str):
        text = value.encode("utf-8", "backslashreplace").decode("utf-8")
        return _CONTROL.sub(lambda m: repr(m[0])[1:-1], text)
    if isinstance(value, list):
        return [safe_text(v) for v in value]
    if isinstance(value, tuple):
        return tuple(safe_text(v) for v in value)
    if isinstance(value, dict):
        return {safe_text(k): safe_text(v) for k, v in value.items()}
    return value


def _input_files(evaluation: Evaluation) -> tuple[InputFile, ...]:
    """Each input as it was when read: absolute path, size and modification time."""
    out = []
    lm = evaluation.lm
    named: list[tuple[str, str | None]] = [(s.role, s.path) for s in evaluation.inputs.sources()]
    spans: dict[str, tuple[int, int] | None] = {s.role: s.rows for s in evaluation.inputs.sources()}
    if lm is not None and lm.text is not None:
        named.append(("text", lm.text))
    if lm is not None and lm.mask is not None:
        named.append(("mask", Source(lm.mask, "mask").path))  # None for an array from Python
    for role, path in named:
        if path is None:
            out.append(InputFile(role, "<array>"))
            continue
        try:
            st = os.stat(path)
        except OSError:
            out.append(InputFile(role, safe_text(path)))
            continue
        regular = os.path.isfile(path)
        shown = safe_text(os.path.abspath(path) if path != "-" else "-")
        size, mtime = (st.st_size, st.st_mtime) if regular else (None, None)
        out.append(InputFile(role, shown, size, mtime, spans.get(role)))
    return tuple(out)


def _sequence_offset(evaluation: Evaluation, seqmap: SequenceMap | None) -> int:
    """The global index of this part's first sequence: given, or implied by --row-offset where
    every sequence has one length (flat logits are one sequence; (B, T) rows are T long)."""
    lm, row_offset = evaluation.lm, evaluation.run.row_offset
    if lm is None or seqmap is None:
        return 0
    if lm.sequence_offset is not None:
        length = seqmap.length if isinstance(seqmap, PeriodicSequences) else 0
        if length and row_offset % length == 0 and row_offset // length != lm.sequence_offset:
            raise UsageError(
                f"--sequence-offset {lm.sequence_offset} contradicts --row-offset {row_offset}: "
                f"sequences here are {length} tokens long, so {row_offset // length} come before this part"
            )
        return lm.sequence_offset
    if row_offset == 0 or isinstance(seqmap, SingleSequence):
        return 0
    if isinstance(seqmap, PeriodicSequences):
        if row_offset % seqmap.length:
            raise UsageError(
                f"--row-offset {row_offset} is not a whole number of sequences of {seqmap.length} tokens; "
                "give --sequence-offset too"
            )
        return row_offset // seqmap.length
    raise UsageError(
        "--row-offset with sequences of different lengths needs --sequence-offset (how many "
        "sequences come before this part), so sequences are numbered as in the whole data"
    )


class GlobalSequences(SequenceMap):
    """A part's sequence map seen from the whole data: global rows in, global sequences out."""

    def __init__(self, inner: SequenceMap, row_offset: int, sequence_offset: int) -> None:
        self.inner, self.row_offset, self.sequence_offset = inner, row_offset, sequence_offset
        self.sequences = inner.sequences

    def locate(self, rows: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        seq, pos = self.inner.locate(rows - self.row_offset)
        if isinstance(self.inner, SingleSequence):  # one stream of tokens: positions run on
            return seq + self.sequence_offset, pos + self.row_offset
        return seq + self.sequence_offset, pos


def _rule_logits_warning(ruled: Choice) -> Callable[[Binding], str | None]:
    """ce: columns a rule took as class scores, read as logits by --input auto, may hold a
    column that is no score at all (a fold, a count): say so once the kind is known."""

    def warning(binding: Binding) -> str | None:
        by_rule = ruled.chosen_by in (RULE_OTHERS, RULE_EVERY) and has_names(ruled.reader)
        by_pattern = ruled.expanded()  # a range or glob the user typed ('1-', 'p_*') took them
        if not (binding.input_detected and binding.input_kind == "logits" and (by_rule or by_pattern)):
            return None
        rule = ruled.chosen_by.removeprefix("rule: ")
        how = f"--pred-col {ruled.spec!r}" if by_pattern else f"a rule ({rule})"
        return (
            f"{ruled.reader.display}: the {len(ruled.positions())} columns {how} took as class "
            "scores were read as logits; if one of them is not a class score (a fold, a count), "
            "name the score columns with --pred-col, else pass --input logits"
        )

    return warning
