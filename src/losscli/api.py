"""What a Python user calls: paths or arrays in, a ``Report`` (or a float) out.

    >>> import losscli
    >>> losscli.mse([2.5, 3.0, 4.5], [2.0, 3.5, 4.0])
    0.25
    >>> report = losscli.evaluate("ce", "scores.npy", "labels.npy")   # doctest: +SKIP
    >>> report.value, report.figure("perplexity")                     # doctest: +SKIP

The CLI is a thin layer over ``run_evaluation``; both run the same streaming engine:
options -> plan -> runner -> state -> ``build_report``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec

from .errors import InputError, LossCliError, UsageError
from .metrics import registry
from .metrics.shortcuts import LossCliWarning, Source
from .options import Evaluation, build_evaluation
from .results.report import Report, build_report
from .state.evalstate import EvalState

if TYPE_CHECKING:
    from .engine.evaluator import ExampleSink
    from .engine.plan import Plan

P = ParamSpec("P")
__all__ = ["LossCliWarning", "Progress", "evaluate", "evaluate_state", "merge", "run_evaluation"]


@dataclass
class Progress:
    """Hooks the CLI passes to show a progress bar; the library itself never prints."""

    start: Callable[[int | None], None]
    advance: Callable[[int], None]
    stop: Callable[[], None]


def run_evaluation(
    metric: str,
    preds: Source | None = None,
    targets: Source | None = None,
    *,
    progress: Progress | None = None,
    **options: Any,
) -> Report:
    """Stream ``preds`` (and ``targets``, ``weights``) through ``metric``; return a Report.

    Every input is a path (CSV/TSV, Parquet, .npy, .npz, JSON Lines; ``-`` for stdin), an
    array (numpy, a list, a torch tensor: detached, on the CPU, bf16 widened to float32), or a
    table read by column name as the same Parquet file would be (a pandas or Polars DataFrame,
    a pyarrow Table or RecordBatch, a dict of column name -> 1-D array, any object with
    ``__arrow_c_stream__`` or ``__dataframe__``). ``y_pred=``/``y_true=`` name preds/targets.

    Options, as the command line's (``losscli <metric> --help``):
    inputs ``weights``, ``logprobs`` (perplexity's gathered log-probabilities), ``pred_col``,
    ``target_col``, ``weight_col``, ``exclude_col`` (column specs: names, positions, ranges
    ``"1-10"``/``"3-"`` and globs ``"p_*"``, comma-separated; arrays have positions only);
    reading ``fmt`` (the format of paths: csv, tsv, parquet, npy, npz, jsonl), ``header``,
    ``delimiter`` and ``decimal`` (a CSV's separator and decimal mark: ``delimiter=";",
    decimal=","``),
    ``nan`` ("error" or "skip"), ``chunk_size``, ``threads``, ``row_offset``; outputs ``top``,
    ``per_example`` (a .csv/.parquet/.npy file receiving every example's loss), ``save_state``
    (a path: the run's state, for ``merge``), ``progress`` (hooks for a progress bar);
    per-group figures ``group_by`` (key columns of preds: a name or a list), ``groups`` (keys in
    a file, array or table of their own, row-aligned) and ``max_groups`` (``Report.groups``);
    intervals ``ci`` (True), ``ci_level``, ``bootstrap`` (replicates), ``seed``, ``cluster_col``
    and ``max_clusters`` (``Report.ci`` and each ``GroupRow.ci``); the
    metric's own ``input`` (bce, ce), ``ignore_index`` (ce, perplexity), ``classes`` (ce: the
    class of each score column, a list or "cat,dog,bird"), ``positive`` (bce: the label whose
    probability the predictions are), ``calibration`` and ``bins`` (bce, ce: reliability bins,
    ECE, MCE, Brier), ``per_class`` (ce: per-class rows, confused pairs), ``delta`` (huber), and
    perplexity's ``shift``, ``topk``, ``seq_col``, ``text``, ``n_bytes``, ``n_words``,
    ``sequence_offset``, ``pad_value`` (padding of (B, T) log-probs), ``mask`` (an attention
    mask: a file, an array or a tensor), ``mask_col`` and ``no_mask``.
    """
    definition = registry.get(metric)
    engine = options.pop("engine", None)
    from .engine_options import DASK_OPTIONS, check_engine_options
    from .shards import plan_shards

    on_engine = {k: options.pop(k) for k in DASK_OPTIONS if k in options}  # --scheduler, --workers, ...
    split_rows = options.pop("split_rows", None)
    keywords = {k: options.get(k) for k in ("weights", "logprobs", "mask", "groups")}
    roles = {"preds": preds, "targets": targets, **keywords}
    shards = plan_shards(roles, options.get("fmt"))
    check_engine_options(engine, on_engine, shards is not None)
    if split_rows is not None and shards is None:
        raise UsageError(
            "--split-rows cuts the large shards of a directory or glob input; every input here is "
            "one file: drop --split-rows"
        )
    if shards is not None:  # a directory or a glob: one evaluation per shard, merged
        from .engine.sharded import evaluate_sharded

        every = {**options, **on_engine, "engine": engine, "split_rows": split_rows}
        state = evaluate_sharded(definition, shards, every, progress)
        top, saved = options.get("top", 10), options.get("save_state") is not None
        return build_report(state, 10 if top is None else top, allow_empty=saved)
    if engine not in (None, "local"):
        from .engine.sharded import refuse_unsupported

        refuse_unsupported({"engine": engine})
    evaluation = build_evaluation(definition, preds, targets, options)
    state = evaluate_state(evaluation, progress)
    return build_report(state, evaluation.run.top, allow_empty=evaluation.run.save_state is not None)


def span_starts(evaluation: Evaluation) -> dict[str, int]:
    """By role, the first file row of the row range a run reads (``Source.rows``), if any."""
    return {s.role: s.rows[0] for s in evaluation.inputs.sources() if s.rows is not None}


def _with_whole_row(exc: LossCliError, evaluation: Evaluation) -> LossCliError:
    """A reader's error names the file's own row; a part of a larger input (a shard, a
    --row-offset part, a row range of a file) adds the row of the whole input, as the engine's
    own errors do."""
    from .errors import InputError

    row_offset = evaluation.run.row_offset
    if not row_offset or not isinstance(exc, InputError) or exc.row is None or "whole input" in exc.detail:
        return exc
    start = next(
        (s.rows[0] for s in evaluation.inputs.sources() if s.rows is not None and s.path == exc.path), 0
    )
    import copy

    more = copy.copy(exc)  # the same class and fields, whatever its __init__ takes
    more.detail = f"{exc.detail} (row {exc.row - start + row_offset} of the whole input)"
    more.args = (more._format(),)
    return more


def evaluate_state(
    evaluation: Evaluation,
    progress: Progress | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    sink: ExampleSink | None = None,
) -> EvalState:
    """Run a checked evaluation to its state (saved with --save-state before it is judged).
    ``on_plan``: called with the plan before any chunk is read (a shard's checks); ``sink``:
    where a shard's --per-example rows go (the sharded run's one writer, committed by it)."""
    from .engine.evaluator import Evaluator
    from .engine.plan import GlobalSequences, make_plan
    from .engine.runners import default_threads, run

    with ExitStack() as stack:
        plan = make_plan(evaluation, stack)
        if on_plan is not None:
            on_plan(plan)
        writer = None  # this run's own --per-example file (a shard's rows go to ``sink``)
        if sink is None and evaluation.run.per_example is not None:
            from .engine.evaluator import IDS
            from .per_example import open_writer

            per_example = evaluation.run.per_example
            carry = IDS in plan.roles and not per_example.lower().endswith(".npy")
            writer = open_writer(
                per_example,
                ("sequence", "position", "token_position") if plan.seqmap is not None else (),
                carry,
            )
            stack.callback(writer.abort)  # no-op after commit
        top = evaluation.run.top
        evaluator = Evaluator(
            plan.metric, nan=evaluation.run.nan, worst=max(top, 20), header=plan.header, scorer=plan.scorer
        )
        evaluator.sink = sink if sink is not None else writer
        evaluator.span_starts = span_starts(evaluation)
        evaluator.text_ids = plan.text_ids
        evaluator.output_namer = plan.output_names
        evaluator.keys = plan.keys
        if evaluation.run.ci is not None:  # the shard's example identity, the cluster codes
            from .engine.ci import make_feed

            sequences = plan.seqmap is not None
            evaluator.interval_feed = make_feed(evaluation.run.ci, plan.keys, plan.clusters, sequences)
        if plan.seqmap is not None:
            h = plan.header
            evaluator.seqmap = GlobalSequences(plan.seqmap, h.row_offset, h.sequence_offset)
        if progress is not None:
            progress.start(plan.total_rows)
            stack.callback(progress.stop)
        threads = evaluation.run.threads
        try:
            run(
                evaluator,
                plan.roles,
                plan.chunk_rows,
                progress.advance if progress else None,
                threads=default_threads() if threads is None else threads,
                shift=plan.seqmap if plan.shift else None,
            )
        except LossCliError as exc:  # how a CSV was read may be why (see add_hints)
            from .readers.csv_dialect import add_hints

            add_hints(exc, plan.readers)
            raise _with_whole_row(exc, evaluation) from None
        state = evaluator.finish(plan.nulls, plan.warnings_after)
        if plan.seqmap is not None and "preds" in plan.roles:  # JSON log-probs: the tokens' text
            from .lm import worst_token_text

            state.token_text = worst_token_text(state, plan.roles["preds"].reader)
        if evaluation.run.save_state is not None:
            state.save(evaluation.run.save_state)
        if writer is not None:
            build_report(state, top, allow_empty=evaluation.run.save_state is not None)  # judged first
            writer.commit()
    return state


StatePaths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def merge_states(paths: StatePaths) -> tuple[EvalState, list[str]]:
    """Load and merge saved states; warnings for states named twice.

    Every state is checked against the first before any merging, so a refusal names the file
    that does not fit (among hundreds of parts); then they merge pairwise, as a balanced tree.
    """
    named = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not named:
        raise UsageError("merge needs at least one state file")
    warnings = []
    seen: dict[str, str] = {}
    states: list[EvalState] = []
    for path in [str(os.fspath(p)) for p in named]:
        key = os.path.realpath(path)
        if key in seen:
            warnings.append(f"{path} is named more than once (as {seen[key]}): its rows count each time")
        seen.setdefault(key, path)
        states.append(_load_checked(path, states[0] if states else None, named[0]))
    while len(states) > 1:  # pairwise, as a balanced tree: each merge copies both sides' parts
        paired = [a.merge(b) for a, b in zip(states[::2], states[1::2], strict=False)]
        states = paired + states[len(paired) * 2 :]
    if len(named) > 1:
        warnings += _gap_warnings(states[0])
    return states[0], warnings


def _gap_warnings(state: EvalState) -> list[str]:
    """Rows that no part covers, between parts or before the first: a part left out of the
    merge (or a wrong --row-offset). Shown five times, then counted."""
    from .state.merge import leaves_of
    from .state.overlaps import summary

    gaps = []
    end: int | None = None
    for leaf in sorted(leaves_of(state), key=lambda p: p.row_offset):
        start = leaf.row_offset
        if start > (end or 0) and (end is not None or start > 0):
            gaps.append(f"rows {end or 0}..{start - 1}")
        end = max(end or 0, start + summary(leaf).rows)
    if not gaps:
        return []
    shown = ", ".join(gaps[:5]) + (f" and {len(gaps) - 5} more gaps" if len(gaps) > 5 else "")
    return [f"{shown} are in none of the parts merged: is a part missing, or a --row-offset wrong?"]


def _load_checked(path: str, first: EvalState | None, first_path: str | os.PathLike[str]) -> EvalState:
    """A state file, its metric known to this losscli, mergeable with the first one named."""
    from .state.merge import StateMismatch, check_mergeable

    if path == "-" or (os.path.exists(path) and not os.path.isfile(path)):
        raise InputError(
            "merge reads state files, not stdin or pipes (a state is a ZIP archive, read by "
            "seeking): save the state to a file first",
            path=path,
        )
    state = EvalState.load(path)
    try:
        registry.get(state.header.metric)
    except UsageError:
        raise InputError(
            f"a state of metric {state.header.metric!r}, which this losscli does not have "
            f"({', '.join(registry.names())}): upgrade losscli",
            path=path,
        ) from None
    if first is not None:
        try:
            check_mergeable(first.header, state.header)
        except StateMismatch as exc:
            raise InputError(f"{exc} against {os.fspath(first_path)}", path=path) from None
    return state


def merge(paths: StatePaths, top: int = 10) -> Report:
    """The report of several saved states merged: as if one run had read all their inputs."""
    state, warnings = merge_states(paths)
    report = build_report(state, top)
    report.warnings = [*warnings, *report.warnings]
    return report


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
        from .wording import in_api_words  # only Python callers need it (the CLI calls run)

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
