"""``Evaluator``: one metric accumulated over aligned chunks, torchmetrics-style.

``update`` takes one chunk and the global row of its first row (an argument, so any runner
can hand out chunks in any order); ``state`` is the self-contained ``EvalState`` it has built
so far. Errors from the pure math (``DataProblem``, chunk-local) become ``InputError`` here,
with the file and the global row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ..errors import AmbiguousInput, DataProblem, InputError, LossCliError, UsageError
from ..metrics import registry
from ..metrics.base import MetricChunk, MetricDef, Scorer, Scratch
from ..metrics.checks import check_finite, first_bad_row
from ..options import BREAKDOWN_ALL_AT_MOST, NAN_POLICIES
from ..sequences import SHIFT_DROP, SequenceMap
from ..state.evalstate import Binding, EvalState, Header, Provenance
from ..state.group_sketch import GroupSketches
from ..state.groups import GroupTallies
from ..state.parts import LossState, SequenceStats
from .ci import BRIER, SEQUENCE, feed_chunk, interval_columns, new_interval_tallies, row_brier, with_brier
from .grouping import add_chunk, add_left_out
from .pairing import IndexCheck, id_text
from .sketching import add_probabilities, add_to_sketches, new_parts
from .sums import column_sums, hit_weight, weighted_sum

WEIGHTS = "weights"
IDS = "ids"  # the id column whose values the breakdown and --per-example carry
TARGET_IDS = "target_ids"  # the targets' own id column, checked row by row against IDS
WEIGHT_IDS = "weight_ids"  # a weights file's own id column, checked likewise
CHECKED_IDS = (TARGET_IDS, WEIGHT_IDS)
GROUPS = "groups"  # --group-by: each row's group code (Parquet and tables encode as they read)
GROUP_KEY = "group_key."  # --group-by: a key column's values, encoded per chunk (CSV, arrays)


class ExampleSink(Protocol):
    """Receives every counted example's loss, in input order (see ``per_example``)."""

    def write(
        self,
        rows: NDArray[np.int64],
        losses: NDArray[np.float64],
        extra: dict[str, NDArray[Any]] | None = None,
        ids: NDArray[Any] | None = None,
    ) -> None: ...


#: roles as a message names them
ROLE_WORDS = {"preds": "predictions", "targets": "targets", "weights": "weights"}


class Evaluator:
    """Accumulates one metric over chunks; ``update`` may be called with any chunking.

    >>> a = Evaluator("mse"); a.update([1.0, 2.0], [1.5, 2.0])
    >>> b = Evaluator("mse"); b.update([3.0], [1.0], first_row=2)
    >>> a.state.merge(b.state).report().value   # doctest: +SKIP
    """

    def __init__(
        self,
        metric: str | MetricDef | Scorer,
        *,
        nan: str = "error",
        worst: int = BREAKDOWN_ALL_AT_MOST,
        header: Header | None = None,
        scorer: Scorer | None = None,
        **metric_options: Any,
    ) -> None:
        """``metric``: a name ("mse") or a registry entry; ``metric_options`` are its options
        (``input=``, ``ignore_index=``, ...). ``header`` and ``scorer`` come from a plan when
        the engine builds the evaluator; a Python user leaves them out."""
        if isinstance(metric, Scorer):  # make_metric("mse"): a scorer made beforehand
            scorer, metric = metric, metric.name
        self.metric = registry.get(metric) if isinstance(metric, str) else metric
        self.python = header is None  # made by a Python user, not from a plan of files
        with _python_words(self.python):
            if nan not in NAN_POLICIES:
                raise UsageError(f"--nan must be one of {', '.join(NAN_POLICIES)}, not {nan}")
            metric_options = {k: self.metric.normalize(k, v) for k, v in metric_options.items()}
            options = {**self.metric.defaults(), **metric_options}
            for name in metric_options:
                option = self.metric.option(name)
                if option is None and name != "labels":
                    raise UsageError(f"{self.metric.name} has no option {name!r}")
                if option is not None:
                    options[name] = option.value_of(metric_options[name])
            self.scorer = scorer if scorer is not None else self.metric.scorer(options)
        self.nan = nan
        self.worst_capacity = worst
        self.header = header if header is not None else _python_header(self.metric, options, nan)
        self.sink: ExampleSink | None = None
        self.labels: dict[str, str] = dict(self.header.files)
        #: by role, the first row of the file this run reads, when it reads a row range of it (a
        #: large shard's part, a file beside shards): errors name the file's own row
        self.span_starts: dict[str, int] = {}
        self.columns: dict[str, Callable[[int | None], str | None]] = {}
        #: a row's place in the file's own terms, by role, where row and column would not say it
        self.places: dict[str, Callable[[int], str | None]] = {}
        self.seqmap: SequenceMap | None = None
        self.text_ids: frozenset[str] = frozenset()  # roles whose ids are text shown as text
        #: each side's pandas index has been 0, 1, 2, ... (its file's rows) so far: a fresh index
        self.index_check = IndexCheck()  # both files' pandas indexes, compared row by row
        self.tallies: LossState | None = None
        #: --group-by: the run's key table (codes -> keys), shared with forks; None without groups
        self.keys: Any = None
        #: per-output labels for a given output count (the plan's column names)
        self.output_namer: Callable[[int], tuple[str, ...]] | None = None
        self.next_row = self.header.row_offset
        #: --ci: the shard's example identity and the cluster codes (engine.ci.make_feed)
        self.interval_feed: Any = None
        #: --nan skip in ``losscli compare``: the chunk's rows another model cannot score, skipped
        #: here too so every model's figures are on the same rows (None: no such rows)
        self.also_skip: NDArray[np.bool_] | None = None
        self.scratch = Scratch()
        self._offset = 0
        self._first_row: int | None = None  # the smallest first_row a Python user gave
        #: the first chunk's row shapes (preds, targets)
        self._shape: tuple[tuple[int, ...], tuple[int, ...] | None] | None = None
        self._weighted: bool | None = None

    @property
    def offset(self) -> int:
        """The global row the next chunk starts at (read only: pass ``first_row`` to ``update``)."""
        return self.next_row

    @offset.setter
    def offset(self, value: int) -> None:
        raise AttributeError(
            "Evaluator.offset cannot be set: pass first_row= to update() (or row_offset= to evaluate)"
        )

    @property
    def state(self) -> EvalState:
        """Everything a report needs, as a value: safe to keep, save, merge and ship."""
        tallies = self.tallies if self.tallies is not None else self._empty_tallies(1)
        header = replace(self.header, binding=self.binding())
        if self.python and self._first_row is not None:  # update(first_row=N): the part's offset
            offset = self._first_row
            header = replace(
                header, row_offset=offset, provenance=replace(header.provenance, row_offset=offset)
            )
        return EvalState(header, tallies)

    def binding(self) -> Binding | None:
        """What the scorer settled on its first chunk (None before any chunk)."""
        if self.tallies is None:
            return None
        s = self.scorer
        base = self.header.binding or Binding(weighted=bool(self._weighted))
        return replace(
            base,
            input_kind=s.input_kind,
            input_detected=s.input_detected,
            outputs=s.outputs,
            classes=s.classes,
            labels=s.labels,
            detail_columns=s.detail_columns,
            output_names=self.output_namer(s.outputs) if self.output_namer is not None else base.output_names,
        )

    def finish(self, nulls: int = 0, after: Sequence[Callable[[Binding], str | None]] = ()) -> EvalState:
        """The state at the end of a run: how many of its ignored tokens were null log-probabilities
        (the scorer ignored their rows; the reader counted them), and the warnings that needed the
        binding to be known."""
        state = self.state
        state.tallies.nulls += nulls
        binding = state.header.binding
        extra = [w for w in (check(binding) for check in after) if w] if binding is not None else []
        extra += self.scorer.closing_warnings() if self.tallies is not None else []
        state.header = replace(state.header, warnings=[*state.header.warnings, *extra])
        return state

    def report(self, top: int = 10) -> Any:
        """The ``Report`` of everything seen so far (``build_report(self.state)``)."""
        from ..results.report import build_report

        return build_report(self.state, top)

    def update(
        self,
        preds: Any,
        targets: Any = None,
        weights: Any = None,
        *,
        first_row: int | None = None,
        overwrite: bool = False,
        ids: NDArray[Any] | None = None,
        other_ids: dict[str, NDArray[Any]] | None = None,
        index_pairs: list[tuple[NDArray[Any], NDArray[Any]]] | None = None,
        groups: NDArray[np.intp] | None = None,
        clusters: NDArray[np.intp] | None = None,
    ) -> None:
        """Score one aligned chunk whose first row is global row ``first_row`` (default: the
        row after the previous chunk). ``overwrite``: preds is scratch the math may reuse.

        ``ids``: the chunk's row ids, carried into the breakdown and --per-example;
        ``other_ids``: other files' ids by role (the targets', the weights'), which must equal
        ``ids`` row by row. ``groups``: each row's group code in ``self.keys`` (--group-by).
        """
        preds = np.asarray(preds)
        targets = None if targets is None else np.asarray(targets)
        weights = None if weights is None else np.asarray(weights)
        rows = len(preds)
        self._offset = self.next_row if first_row is None else first_row
        self.next_row = self._offset + rows
        if self.python:
            self._first_row = self._offset if self._first_row is None else min(self._first_row, self._offset)
        if rows == 0:
            return
        with _python_words(self.python):
            self._check_like_first(preds, targets, weights)
        for role, other in (other_ids or {}).items():
            if ids is not None:
                self._check_ids(ids, other, role)
        if index_pairs is not None:
            start = self._offset - self.header.row_offset
            self.index_check.check(index_pairs, start, self._offset, self.labels)
        row_map: NDArray[np.intp] | None = None
        try:
            if self.tallies is None:
                self.scorer.bind(preds, targets)
                self.tallies = self._new_tallies()
            self.tallies.rows += rows
            if weights is not None:
                weights = self._check_weights(weights)
            if self.nan == "skip":
                preds, targets, weights, row_map = self._drop_nonfinite(preds, targets, weights)
                if row_map is not None and groups is not None:
                    self._group_skipped(groups, row_map)
                    groups = groups[row_map]
                if row_map is not None and clusters is not None:
                    clusters = clusters[row_map]
                if len(preds) == 0:
                    return
            self._score(preds, targets, weights, row_map, overwrite, ids, groups, clusters)
        except DataProblem as problem:
            error = self._located(problem, row_map)
            if self.python:
                from ..wording import in_api_words

                error.args = (in_api_words(str(error)),)
            raise error from None

    def _check_like_first(self, preds: NDArray[Any], targets: NDArray[Any] | None, weights: Any) -> None:
        """Every chunk has the first chunk's row shapes (outputs, classes, vocabulary) and is
        weighted or not as the first was: a Python caller's chunks are not checked by a reader."""
        shape = (preds.shape[1:], None if targets is None else targets.shape[1:])
        weighted = weights is not None
        if self._shape is None:
            self._shape, self._weighted = shape, weighted
            return
        if shape != self._shape:
            raise UsageError(
                f"this chunk's rows have shape {shape[0]} (targets {shape[1]}) but the first chunk's "
                f"had {self._shape[0]} (targets {self._shape[1]}): every chunk of an evaluation has "
                "the same outputs and classes"
            )
        if weighted != self._weighted:
            had = "weights" if self._weighted else "no weights"
            raise UsageError(f"the first chunk had {had}: weight every chunk of an evaluation, or none")

    def fork(self) -> Evaluator:
        """A fresh evaluator for another thread: same bound scorer, its own buffers and tallies."""
        assert self.tallies is not None, "bind on the first chunk before forking"
        twin = Evaluator(
            self.metric,
            nan=self.nan,
            worst=self.worst_capacity,
            header=self.header,
            scorer=self.scorer.clone(),
        )
        twin.labels, twin.columns, twin.places = self.labels, self.columns, self.places
        twin.span_starts = self.span_starts
        twin.index_check = self.index_check.copy()
        twin.seqmap, twin.text_ids, twin.keys = self.seqmap, self.text_ids, self.keys
        twin.interval_feed = self.interval_feed
        twin.tallies = twin._new_tallies()
        return twin

    def _empty_tallies(self, outputs: int) -> LossState:
        tallies = LossState(outputs, self.worst_capacity)
        new_parts(tallies, self.header.metric_options, self.scorer.classes)
        for name in self.scorer.companions:
            tallies.companion(name)
        return tallies

    def _new_tallies(self) -> LossState:
        tallies = self._empty_tallies(self.scorer.outputs)
        if self.seqmap is not None:
            tallies.sequences = SequenceStats(self.seqmap.sequences, first=self.header.sequence_offset)
        if self.keys is not None:
            # with --calibration each group keeps its Brier sum too (a mean of examples, as a
            # companion is); ECE and MCE are not, so they stay overall figures
            brier = (BRIER,) if self.header.metric_options.get("calibration") else ()
            tallies.groups = GroupTallies.empty(
                self.keys.columns, self.scorer.outputs, (*self.scorer.companions, *brier)
            )
            tallies.group_sketches = GroupSketches(tuple(self.keys.columns))
        options = self.header.metric_options.get("ci")
        if options is not None:
            columns = None if self.keys is None else self.keys.columns
            cluster = options.get("cluster_col")
            if cluster is None and columns is not None and self.seqmap is not None:
                cluster = SEQUENCE  # perplexity's groups: clustered by sequence
            means = interval_columns(self.scorer.companions, self.header.metric_options)
            tallies.ci = new_interval_tallies(options, means, columns, cluster)
        return tallies

    def _group_skipped(self, codes: NDArray[np.intp], kept: NDArray[np.intp]) -> None:
        """--nan skip: count the dropped rows in their groups."""
        assert self.tallies is not None and self.tallies.groups is not None
        dropped = np.ones(len(codes), dtype=bool)
        dropped[kept] = False
        add_left_out(self.tallies.groups, self.keys.keys, codes[dropped], "skipped")

    def _check_ids(self, ids: NDArray[Any], other: NDArray[Any], role: str) -> None:
        """Both files hold the same id column: row i must hold the same id in each, or the
        rows are not the same examples. Numbers compare as numbers, anything else as text."""
        differ = np.asarray(ids != other, dtype=bool)
        if differ.any():  # 7 in a Parquet file and "7" in a CSV are the same id
            differ = np.asarray(id_text(ids) != id_text(other), dtype=bool)
        if not differ.any():
            return
        r = int(np.argmax(differ))
        a, b = self._shown(IDS, ids[r : r + 1])[0], self._shown(role, other[r : r + 1])[0]
        raise InputError(
            f"row {self._offset + r}: {self.labels.get(IDS)} has id {a!r} but "
            f"{self.labels.get(role)} has id {b!r}: the files are in different orders "
            "(or hold different examples); sort both by their id column, or, if the rows do "
            "match and the ids mean different things, rename one file's id column"
        )

    def _shown(self, role: str, ids: NDArray[Any]) -> list[Any]:
        """Ids as the file holds them: text stays text even when it was compared as int64."""
        values = ids.tolist()
        return [str(v) for v in values] if role in self.text_ids else values

    def _check_weights(self, w: NDArray[Any]) -> NDArray[Any]:
        if w.ndim == 2 and w.shape[1] == 1:
            w = w[:, 0]
        if w.ndim != 1:
            # bad data, not a usage error: the file (or array) holds more than one number per row
            per_row = int(np.prod(w.shape[1:]))
            raise DataProblem(
                WEIGHTS,
                None,
                f"weights must be one number per example, but this holds {per_row} per row; "
                "pick one column with --weight-col",
            )
        if self.nan == "error":
            check_finite(w, WEIGHTS)
        if (w < 0).any():
            r = first_bad_row(~(w < 0))
            raise DataProblem(WEIGHTS, r, f"weight {w[r]} is negative; weights must be >= 0")
        return w

    def _drop_nonfinite(
        self, p: NDArray[Any], t: NDArray[Any] | None, w: NDArray[Any] | None
    ) -> tuple[NDArray[Any], NDArray[Any] | None, NDArray[Any] | None, NDArray[np.intp] | None]:
        ok = np.ones(len(p), dtype=bool)
        for arr in (p, t, w):
            if arr is not None and arr.dtype.kind == "f":
                fin = np.isfinite(arr)
                ok &= fin if fin.ndim == 1 else fin.reshape(len(arr), -1).all(axis=1)
        if self.also_skip is not None and len(self.also_skip) == len(ok):
            ok &= ~self.also_skip
        if ok.all():
            return p, t, w, None
        assert self.tallies is not None
        self.tallies.skipped += int(len(ok) - np.count_nonzero(ok))
        keep = np.flatnonzero(ok)
        return p[keep], (t[keep] if t is not None else None), (w[keep] if w is not None else None), keep

    def _score(
        self,
        p: NDArray[Any],
        t: NDArray[Any] | None,
        w: NDArray[Any] | None,
        row_map: NDArray[np.intp] | None,
        overwrite: bool,
        row_ids: NDArray[Any] | None = None,
        groups: NDArray[np.intp] | None = None,
        clusters: NDArray[np.intp] | None = None,
    ) -> None:
        state = self.tallies
        assert state is not None
        with np.errstate(all="ignore"):  # overflow to inf is detected and reported below, once
            mc = self.scorer.compute(p, t, overwrite or row_map is not None)
        losses, elements, correct = mc.losses, mc.elements, mc.correct
        companions = mc.companions or {}
        correct_k, ids = mc.correct_k, mc.ids
        if mc.row_sum is not None:
            state.note_row_sum(int(self._global_rows(np.array([mc.row_sum[0]]), row_map)[0]), mc.row_sum[1])
        local = None  # positions in p/t of the counted examples, when not all are counted
        if mc.keep is not None:
            local = np.flatnonzero(mc.keep)
            state.ignored += len(p) - len(local) if mc.ignored is None else mc.ignored
            if groups is not None:
                groups = self._group_ignored(groups, mc.keep, local, t)
            losses = losses[local]
            elements = elements[local] if elements is not None else None
            correct = correct[local] if correct is not None else None
            correct_k = correct_k[local] if correct_k is not None else None
            ids = ids[local] if ids is not None else None
            companions = {k: v[local] for k, v in companions.items()}
            w = w[local] if w is not None else None
            clusters = clusters[local] if clusters is not None else None
        n = len(losses)
        if n == 0:
            return
        total = weighted_sum(losses, w, self.scratch)
        weight_total = float(n) if w is None else float(np.sum(w, dtype=np.float64))
        finite = math.isfinite(total)
        for name, values in companions.items():
            companion = weighted_sum(values, w, self.scratch)
            finite = finite and math.isfinite(companion)
            state.companion(name).add1(companion)
        if not finite:
            self.scorer.locate_nonfinite(p, t)  # raises when an input is NaN/inf
            state.overflow = True
        if elements is None:
            state.output_sums.add1(total)
        else:
            state.output_sums.add(column_sums(elements, w))
        state.weight_sum.add1(weight_total)
        state.n += n
        grouped_brier = groups is not None and state.groups is not None and BRIER in state.groups.companions
        if grouped_brier:  # one Brier term per row, for the groups' sums and the intervals alike
            companions = {**companions, BRIER: row_brier(mc, local)}
        if state.ci is not None:
            means = companions if grouped_brier else with_brier(state.ci, companions, mc, local)
            feed_chunk(self, state.ci, losses, w, means, local, row_map, groups, clusters)
        state.clamped += mc.clamped
        if correct is not None:
            state.counts_correct = True
            state.hits.add((hit_weight(correct, w), hit_weight(correct_k, w)))
        add_to_sketches(state, losses, w, groups, self.keys, self.scratch)
        add_probabilities(state, mc, local, w, losses, self.scratch)
        if groups is not None and state.groups is not None:
            add_chunk(
                state.groups, self.keys.keys, groups, losses, elements, w, companions, (correct, correct_k)
            )
        self._record_rows(p, t, mc, losses, ids, local, row_map, row_ids)

    def _group_ignored(
        self,
        codes: NDArray[np.intp],
        keep: NDArray[np.bool_],
        local: NDArray[np.intp],
        targets: NDArray[Any] | None,
    ) -> NDArray[np.intp]:
        """Count the ignored rows in their groups (not --shift's dropped last tokens, which the
        overall count leaves out too); the codes of the counted rows."""
        assert self.tallies is not None and self.tallies.groups is not None
        left = ~keep
        if targets is not None and targets.dtype.kind == "i" and targets.size == len(keep):
            left &= targets.reshape(-1) != SHIFT_DROP
        add_left_out(self.tallies.groups, self.keys.keys, codes[left], "ignored")
        return codes[local]

    def _record_rows(
        self,
        p: NDArray[Any],
        t: NDArray[Any] | None,
        mc: MetricChunk,
        losses: NDArray[np.float64],
        ids: NDArray[np.intp] | None,
        local: NDArray[np.intp] | None,
        row_map: NDArray[np.intp] | None,
        row_ids: NDArray[Any] | None,
    ) -> None:
        """Row-level records of the counted examples (``local``: their chunk positions, None
        for all): per-sequence statistics, the worst rows with their cells, --per-example."""
        state = self.tallies
        assert state is not None
        n = len(losses)
        counted_rows: NDArray[np.int64] | None = None  # input rows of every counted example
        extra: dict[str, NDArray[Any]] | None = None
        if self.seqmap is not None and state.sequences is not None:
            counted_rows = self._global_rows(np.arange(n) if local is None else local, row_map)
            seq, pos = self.seqmap.locate(counted_rows)
            state.sequences.update(seq, pos, losses, ids)
            # token_position: the scored token in the original ids (t + 1 under --shift)
            shift = int(bool(self.header.metric_options.get("shift")))
            extra = {"sequence": seq, "position": pos, "token_position": pos + shift}
        picked = state.worst.candidates(losses)
        if len(picked):
            src = picked if local is None else local[picked]
            details = self.scorer.describe(p, t, src, mc)
            if row_ids is not None:  # the id leads the detail tuple; the report takes it out
                picked_ids = self._shown(IDS, row_ids[src if row_map is None else row_map[src]])
                details = [(i, *d) for i, d in zip(picked_ids, details, strict=True)]
            state.worst.offer(self._global_rows(src, row_map), losses[picked], details)
        if self.sink is not None:
            if counted_rows is None:
                counted_rows = self._global_rows(np.arange(n) if local is None else local, row_map)
            sink_ids = None
            if row_ids is not None:
                sink_ids = row_ids[counted_rows - self._offset]
                if IDS in self.text_ids and sink_ids.dtype != object:
                    sink_ids = sink_ids.astype(str)
            self.sink.write(counted_rows, losses, extra, sink_ids)

    def _global_rows(self, positions: NDArray[Any], row_map: NDArray[np.intp] | None) -> NDArray[np.int64]:
        """Input row numbers of chunk positions (through --nan skip's compaction, if any)."""
        idx = positions if row_map is None else row_map[positions]
        return np.asarray(idx, dtype=np.int64) + self._offset

    def _located(self, problem: DataProblem, row_map: NDArray[np.intp] | None) -> InputError:
        row = None
        detail = problem.detail
        against = problem.against
        other = self.labels.get(against) if against is not None else None
        if against is not None and other is not None and other != self.labels.get(problem.role):
            detail += f" (the {ROLE_WORDS.get(against, against)}: {other})"
        if problem.local_row is not None:
            local = problem.local_row if row_map is None else int(row_map[problem.local_row])
            # the file's own row, as readers say
            row = self._offset + local - self.header.row_offset + self.span_starts.get(problem.role, 0)
            if self.header.row_offset:
                detail += f" (row {self._offset + local} of the whole input)"
        column = None
        if problem.role in self.columns:
            column = self.columns[problem.role](problem.column)
        elif problem.column is not None:
            column = str(problem.column)
        kind = AmbiguousInput if problem.ambiguous else InputError
        place = self.places[problem.role](row) if row is not None and problem.role in self.places else None
        if place is not None:  # a JSON record's token: its line, not a made-up column
            return kind(f"{place} (row {row}): {detail}", path=self.labels.get(problem.role))
        return kind(detail, path=self.labels.get(problem.role), row=row, column=column)


@contextmanager
def _python_words(python: bool) -> Iterator[None]:
    """Errors in ``evaluate``'s words (``input="logits"``) for a Python user's evaluator."""
    try:
        yield
    except LossCliError as exc:
        if python:
            from ..wording import in_api_words

            exc.args = (in_api_words(str(exc)),)
        raise


def _python_header(metric: MetricDef, options: dict[str, Any], nan: str) -> Header:
    """The header of an evaluator made from Python, not from a plan of files."""
    from .. import __version__

    merge = {o.name: options.get(o.name, o.default) for o in metric.options if o.merge_key}
    recorded = {k: v for k, v in options.items() if k != "labels"}
    provenance = Provenance(__version__, metric.name, {**recorded, "nan": nan}, (), 0)
    return Header(metric.name, merge, provenance, files={"preds": "preds", "targets": "targets"})
