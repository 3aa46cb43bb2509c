"""Evaluating a sharded input: one ``Evaluation`` per shard, each to an ``EvalState``, merged.

A sharded run is a list of ordinary evaluations, one per shard (its files, with ``--row-offset``
the rows before it and, for perplexity, ``--sequence-offset`` the sequences before it), whose
states merge exactly (``state.merge``: a tree of pairwise merges). So a shard is evaluated by the
same engine as a single file, and ``evaluate_shard(evaluation) -> EvalState`` takes and returns
plain, picklable values that another engine (a Dask task) can run as they are.

What depends on the files' contents is decided once, from the first shard, and forced on the
others (``forced_options``): a CSV's header, separator and decimal mark, the kind ``--input auto``
read; every later shard must have the first one's columns (else exit 3 naming it). So every shard
is read alike and the states always merge.

Row offsets: when every sharded input tells its row count from its metadata (Parquet, .npy) and
the metric reads a row per example, the offsets are known before reading and the shards are
evaluated concurrently (``--engine local``: threads, one shard each; Parquet decoding and numpy
release the GIL). Otherwise (CSV, JSON, perplexity's tokens) each shard's offsets are the rows and
sequences its predecessors read, so shards are evaluated in order; a CSV is already parsed by
pyarrow's threads. Counting first would read every CSV twice; shifting states read at offset 0
would need every row-bearing part of a state (worst rows, per-sequence positions, the
--per-example file, error messages) rebased after the fact.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine_options import DASK_OPTIONS
from ..errors import InputError, LossCliError, UsageError
from ..metrics.base import DETECTED_IN, MetricDef
from ..options import Evaluation, Source, build_evaluation
from ..shards import ShardPlan
from ..state.evalstate import EvalState
from .ci import check_max_clusters
from .ci_identity import shard_identity, with_identity
from .shard_counts import row_range, shard_counts
from .shard_results import ShardOutput, ShardSink, check_max_groups, shard_notes, shard_output
from .shard_split import SPLIT_ROWS, split_shards

if TYPE_CHECKING:
    from ..api import Progress
    from .plan import Plan

ENGINES = ("local", "dask")
#: the roles whose files a shard's evaluation names as keywords (preds, targets are positional)
_KEYWORD_ROLES = ("weights", "logprobs", "mask", "groups")
_OUTPUTS = ("per_example", "save_state")
#: perplexity's text size: of the whole text, so counted once for the merged state, not per shard
_TEXT = ("text", "n_bytes", "n_words")


@dataclass(frozen=True)
class ShardCheck:
    """What every shard after the first must look like: its roles' column names, as the first
    shard's. Plain data, so a task on another machine can check its own shard."""

    columns: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: every column was named by the user (--pred-col pred --target-col target): a shard may hold
    #: them in another order, as Polars, DuckDB (union_by_name) and dask.dataframe read them
    by_name: bool = False

    def __call__(self, plan: Plan) -> None:
        for role, names in self.columns:
            found = plan.roles.get(role)
            if found is None:
                continue
            have = tuple(str(c) for c in found.reader.column_names)
            if self.by_name and sorted(have) == sorted(names):
                continue
            if have != names:
                raise InputError(
                    f"its columns {list(have)[:12]} differ from the first shard's {list(names)[:12]}: "
                    "every shard of an input must have the same columns (in another order, they are "
                    "read by name when --pred-col and --target-col name them)",
                    path=found.reader.display,
                )


@dataclass(frozen=True)
class ShardTask:
    """One shard's evaluation and the check of its columns: what a worker needs, picklable."""

    evaluation: Evaluation
    check: ShardCheck = field(default_factory=ShardCheck)


def evaluate_shard(
    task: ShardTask | Evaluation, output: ShardOutput | None = None, shard: int = 0
) -> EvalState:
    """The state of one shard (no output files: the caller saves the merged state; ``output``:
    the run's --per-example writer, which this shard's rows join in order)."""

    if isinstance(task, Evaluation):
        task = ShardTask(task)
    try:
        return _evaluate_shard(task, output, shard)
    except LossCliError as exc:
        from .shard_headers import explain_headerless

        clearer = explain_headerless(exc, task.evaluation)  # a CSV shard without its header
        if clearer is exc:
            raise
        raise clearer from None


def _evaluate_shard(task: ShardTask, output: ShardOutput | None, shard: int) -> EvalState:
    from ..api import evaluate_state

    if output is None:
        return evaluate_state(task.evaluation, on_plan=task.check)
    check = task.check

    def on_plan(plan: Plan) -> None:
        check(plan)
        output.open(plan)

    sink = ShardSink(output, shard, task.evaluation.run.row_offset)
    return evaluate_state(task.evaluation, on_plan=on_plan, sink=sink)


def _shard_kwargs(
    shards: ShardPlan, i: int, options: Mapping[str, Any], singles_range: tuple[int, int, int] | None
) -> tuple[Any, Any, dict[str, Any]]:
    """preds, targets and the keywords of shard ``i``'s evaluation."""
    files = {**shards.singles, **shards.inputs[i]}
    kwargs = {k: v for k, v in options.items() if k not in _OUTPUTS}
    for role in _KEYWORD_ROLES:
        if role in files:
            kwargs[role] = files[role]
    kwargs["partitions"] = shards.partitions[i]
    if "groups" in shards.lists:  # numbered keys (.npy shards) are named alike in every shard
        kwargs["names"] = {"groups": _stem(shards.lists["groups"].paths[0])}
    ranges = {}
    if singles_range is not None:
        ranges.update({role: singles_range[:2] for role in shards.singles})
        kwargs["row_totals"] = {role: singles_range[2] for role in shards.singles}
    span = shards.span(i)
    if span is not None:  # a part of a large shard: the same rows of each of its files
        ranges.update({role: span for role in shards.inputs[i]})
    if ranges:
        kwargs["row_ranges"] = ranges
    return files.get("preds"), files.get("targets"), kwargs


def _sources(evaluation: Evaluation, kwargs: Mapping[str, Any]) -> Evaluation:
    """The evaluation with each Source carrying its shard's partition values and row range."""
    parts, ranges = kwargs.get("partitions", {}), kwargs.get("row_ranges", {})
    names, totals = kwargs.get("names", {}), kwargs.get("row_totals", {})
    inputs = evaluation.inputs
    changed: dict[str, Any] = {}
    for name in ("preds", "targets", "weights", "logprobs", "groups"):
        src: Source | None = getattr(inputs, name)
        if src is None:
            continue
        role = "preds" if name == "logprobs" and "logprobs" not in parts else name
        partition = parts.get(name, parts.get(role, ()))
        rows = ranges.get(name)
        if partition or rows or name in names:
            changed[name] = dataclasses.replace(
                src, partition=tuple(partition), rows=rows, name=names.get(name), rows_total=totals.get(name)
            )
    return (
        dataclasses.replace(evaluation, inputs=dataclasses.replace(inputs, **changed))
        if changed
        else evaluation
    )


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def build_shard(
    metric: MetricDef,
    shards: ShardPlan,
    i: int,
    options: Mapping[str, Any],
    offsets: tuple[int, int | None],
    singles_range: tuple[int, int, int] | None = None,
) -> Evaluation:
    """Shard ``i``'s evaluation: its files, ``options`` and its row (and sequence) offset."""
    preds, targets, kwargs = _shard_kwargs(shards, i, options, singles_range)
    row_offset, seq_offset = offsets
    kwargs["row_offset"] = row_offset
    if seq_offset is not None:
        kwargs["sequence_offset"] = seq_offset
    shard_only = ("partitions", "row_ranges", "names", "row_totals")
    extra: dict[str, Any] = {k: kwargs.pop(k) for k in shard_only if k in kwargs}
    detected = kwargs.pop(DETECTED_IN, None)
    evaluation = _sources(build_evaluation(metric, preds, targets, kwargs), extra)
    if detected is not None:
        options = {**evaluation.metric_options, DETECTED_IN: detected}
        evaluation = dataclasses.replace(evaluation, metric_options=options)
    span = None if singles_range is None else (singles_range[0], singles_range[1])
    return with_identity(evaluation, shard_identity(shards, i, row_offset, span))


def forced_options(plan: Plan, state: EvalState, options: Mapping[str, Any]) -> dict[str, Any]:
    """What the first shard decided from its contents, as options for the others."""
    forced: dict[str, Any] = {}
    delimited = [r for r in plan.readers if r.delimited]
    if delimited:
        for name, value in (
            ("header", {r.header_row for r in delimited}),
            ("delimiter", {getattr(r, "delimiter", None) for r in delimited}),
            ("decimal", {getattr(r, "decimal", None) for r in delimited}),
        ):
            if options.get(name) is None and len(value) == 1 and None not in value:
                forced[name] = value.pop()
    binding = state.header.binding
    if binding is not None and binding.input_detected and binding.input_kind is not None:
        forced["input"] = binding.input_kind  # still a guess: a contradiction is exit 2, naming both
        forced[DETECTED_IN] = state.header.files.get("preds") or "the first shard"
    return forced


def column_check(plan: Plan, named: bool = False) -> ShardCheck:
    """What later shards must look like: the first shard's columns, in its order unless every
    column the run reads was named (``named``)."""
    return ShardCheck(
        tuple((role, tuple(str(c) for c in r.reader.column_names)) for role, r in plan.roles.items()),
        named,
    )


def named_columns(options: Mapping[str, Any]) -> bool:
    """Predictions and targets both named by column names (no position, range or glob)."""
    from ..readers.colspec import is_pattern

    specs = [options.get("pred_col"), options.get("target_col")]
    return all(
        isinstance(v, str) and all(not p.strip().isdigit() and not is_pattern(p) for p in v.split(","))
        for v in specs
    )


def tree_merge(states: Sequence[EvalState]) -> EvalState:
    """Pairwise, as a balanced tree (each merge copies both sides' parts)."""
    level = list(states)
    while len(level) > 1:
        paired = [a.merge(b) for a, b in zip(level[::2], level[1::2], strict=False)]
        level = paired + level[len(paired) * 2 :]
    return level[0]


def run_local(tasks: Sequence[ShardTask], workers: int, done: Callable[[], None] | None) -> list[EvalState]:
    """Evaluate shards on ``workers`` threads; the first failing shard in order is raised."""
    if workers <= 1 or len(tasks) <= 1:
        out = []
        for task in tasks:
            out.append(evaluate_shard(task))
            if done is not None:
                done()
        return out
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="losscli-shard") as pool:
        futures = [pool.submit(evaluate_shard, t) for t in tasks]
        if done is not None:
            for f in futures:
                f.add_done_callback(lambda _f: done())
        return _results(futures)


def _results(futures: list[Future[EvalState]]) -> list[EvalState]:
    out: list[EvalState] = []
    try:
        for f in futures:
            out.append(f.result())
    except BaseException:
        for f in futures:
            f.cancel()
        raise
    return out


def iter_offsets(states: Iterator[EvalState], single: bool) -> Iterator[tuple[int, int | None]]:
    """Offsets of each next shard from the states of those before it."""
    rows, seqs = 0, 0
    for state in states:
        rows += state.tallies.rows
        if state.tallies.sequences is not None and not single:
            seqs += state.tallies.sequences.count
        yield rows, (None if single else seqs)


def default_workers() -> int:
    """Shards evaluated at once: half the cores. A shard's reader already keeps about two busy
    (Parquet decodes a batch ahead on pyarrow's threads, CSV parses two blocks at once), so on 2
    cores one shard at a time was as fast as two (W6: 0.72 s either way) with 60 MB less RSS."""
    return max(1, (os.cpu_count() or 1) // 2)


def refuse_unsupported(options: Mapping[str, Any]) -> None:
    if (options.get("engine") or "local") not in ENGINES:
        raise UsageError(f"--engine must be one of {', '.join(ENGINES)}, not {options.get('engine')}")


def evaluate_sharded(
    metric: MetricDef, shards: ShardPlan, options: Mapping[str, Any], progress: Progress | None = None
) -> EvalState:
    """The merged state of every shard (saved with --save-state): the first shard alone, to
    decide what the others are forced to, then the rest, concurrently when their row offsets
    are known from metadata."""
    refuse_unsupported(options)
    text = {k: options.get(k) for k in _TEXT}
    dask = options.get("engine") == "dask"
    split_rows = options.get("split_rows")
    split_rows = SPLIT_ROWS if split_rows is None else split_rows
    options = {
        k: v
        for k, v in options.items()
        if k not in (*_TEXT, "split_rows") and (dask or k not in ("engine", *DASK_OPTIONS))
    }
    output = shard_output(shards, options.get("per_example"))
    if dask and output is not None:
        raise UsageError(
            "--per-example with --engine dask: the rows are written in input order by one process; "
            "use --engine local for --per-example"
        )
    try:
        if dask:
            from .dask_engine import evaluate_on_dask

            saving = {k: v for k, v in options.items() if k != "save_state"}  # saved below, once
            merged = evaluate_on_dask(metric, shards, saving, progress, split_rows)
        else:
            merged = _evaluate_sharded(metric, shards, options, progress, output, split_rows)
        check_max_groups(merged, options)
        check_max_clusters(merged, options)
        merged.header = dataclasses.replace(merged.header, notes=shard_notes(merged.header.notes, shards))
        if any(v is not None for v in text.values()):  # the text is the whole input's, counted once
            from ..lm import text_size

            size = text_size(text["text"], text["n_bytes"], text["n_words"])
            merged.header = dataclasses.replace(merged.header, text_bytes=size.bytes, text_words=size.words)
        if options.get("save_state") is not None:
            merged.save(options["save_state"])
        if output is not None and output.writer is not None:
            from ..results.report import build_report

            top, saved = options.get("top", 10), options.get("save_state") is not None
            build_report(merged, 10 if top is None else top, allow_empty=saved)  # judged first
            output.writer.commit()
        return merged
    finally:
        if output is not None:
            output.abort()  # nothing after a commit


def _evaluate_sharded(
    metric: MetricDef,
    shards: ShardPlan,
    options: Mapping[str, Any],
    progress: Progress | None,
    output: ShardOutput | None,
    split_rows: int = SPLIT_ROWS,
) -> EvalState:
    counts = shard_counts(metric, shards, options, read_csv=True)
    if output is None:  # --per-example writes whole shards in order
        shards, counts = split_shards(shards, counts, options, split_rows)
    n = len(shards)
    base_rows, base_seqs = options.get("row_offset") or 0, options.get("sequence_offset")
    if progress is not None:
        progress.start(n)
    try:
        first_plan: list[Plan] = []
        first = build_shard(
            metric, shards, 0, options, (base_rows, base_seqs), row_range(counts, 0, base_rows)
        )
        state0 = evaluate_state_with_plan(first, first_plan, output)
        if progress is not None:
            progress.advance(1)
        plan = first_plan[0]
        forced = {**options, **forced_options(plan, state0, options)}
        check = column_check(plan, named_columns(options))
        single = _single_sequence(plan)
        done = progress.advance if progress is not None else None
        if counts is not None and output is None:  # --per-example is written in order: serial
            workers = options.get("threads") or default_workers()
            forced["threads"] = 1 if workers > 1 else options.get("threads")
            tasks = [
                ShardTask(
                    build_shard(
                        metric,
                        shards,
                        i,
                        forced,
                        (base_rows + sum(counts[:i]), None),
                        row_range(counts, i, base_rows),
                    ),
                    check,
                )
                for i in range(1, n)
            ]
            states = [state0, *run_local(tasks, workers, (lambda: done(1)) if done else None)]
        else:
            base = (base_rows, base_seqs)
            states = _serial(metric, shards, forced, check, state0, base, single, done, output, counts)
    finally:
        if progress is not None:
            progress.stop()
    return tree_merge(states)


def evaluate_state_with_plan(
    evaluation: Evaluation, plans: list[Plan], output: ShardOutput | None = None
) -> EvalState:
    """The first shard's state, keeping its plan (what the other shards are forced to)."""
    from ..api import evaluate_state

    if output is None:
        return evaluate_state(evaluation, on_plan=plans.append)

    def on_plan(plan: Plan) -> None:
        plans.append(plan)
        output.open(plan)

    return evaluate_state(evaluation, on_plan=on_plan, sink=ShardSink(output, 0, evaluation.run.row_offset))


def _serial(
    metric: MetricDef,
    shards: ShardPlan,
    options: Mapping[str, Any],
    check: ShardCheck,
    state0: EvalState,
    base: tuple[int, int | None],
    single: bool,
    done: Callable[[int], None] | None,
    output: ShardOutput | None = None,
    counts: list[int] | None = None,
) -> list[EvalState]:
    """Shards in order, each numbered after the rows (and sequences) of those before it; a
    single file beside the shards is read by each shard's row range (``counts``)."""
    states = [state0]
    rows, seqs = base[0], (base[1] or 0)
    for i in range(1, len(shards)):
        last = states[-1].tallies
        rows += last.rows
        if last.sequences is not None:
            seqs += last.sequences.count
        seq_offset = None if single or last.sequences is None else seqs
        evaluation = build_shard(
            metric, shards, i, options, (rows, seq_offset), row_range(counts, i, base[0])
        )
        task = ShardTask(evaluation, check)
        states.append(evaluate_shard(task, output, i))
        if done is not None:
            done(1)
    return states


def _single_sequence(plan: Plan) -> bool:
    from ..sequences import SingleSequence

    return isinstance(plan.seqmap, SingleSequence)
