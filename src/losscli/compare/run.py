"""``losscli compare``'s run: TARGETS and every model's predictions streamed once, in step.

Each model is planned as the ordinary evaluation ``metric PREDS_i TARGETS`` (its own columns,
checks and header), but only the baseline's plan reads the targets, weights and group keys: the
runner aligns one chunk of every input, hands each model's evaluator its predictions with the
same targets (scored by the metric's own scorer), and adds the per-example losses of the rows
every model scored to the paired tallies. The serial and threaded runners of ``engine.runners``
drive it, so chunking, threads and row numbering are those of a plain run.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..engine.evaluator import GROUP_KEY, GROUPS, IDS, WEIGHTS, Evaluator
from ..engine.pairing import PRED_INDEX
from ..engine.runners import Role, Streams, _range_openers, column_namer, run_serial, run_threaded
from ..errors import InputError
from ..metrics.base import MetricChunk, Scorer
from ..metrics.checks import PREDS, TARGETS
from ..options import Evaluation
from ..sequences import SequenceMap
from ..state.evalstate import EvalState
from ..state.parts import LossState
from .alike import blamed, model_path, skip_alike
from .clusters import by_sequence, cluster_pairs
from .fused import Fused, fused_for, ready
from .group_clusters import GroupClusterSums, group_cluster_pairs
from .tallies import PairTallies


@dataclass
class Capture:
    """What one model's evaluator scored in the last chunk.

    Under --nan skip a model may drop rows another keeps, so the evaluator's sink gives the
    counted rows (global) and their losses; otherwise every model scores every row of the chunk
    and the scorer's own ``MetricChunk`` (per-row losses, and the rows --ignore-index keeps, the
    same for every model since they come from the targets) is taken as it leaves ``compute``,
    which costs nothing per row.
    """

    rows: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    losses: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    chunk: MetricChunk | None = None

    def write(self, rows: Any, losses: Any, extra: Any = None, ids: Any = None) -> None:
        self.rows, self.losses = rows, losses

    def clear(self) -> None:
        self.rows, self.losses, self.chunk = self.rows[:0], self.losses[:0], None

    def watch(self, scorer: Scorer) -> None:
        """Keep each ``MetricChunk`` ``scorer.compute`` returns (its class's method, bound to this
        scorer: a clone for another thread is watched by its own capture)."""
        inner = type(scorer).compute.__get__(scorer)

        def compute(preds: Any, targets: Any, overwrite: bool = False) -> MetricChunk:
            self.chunk = inner(preds, targets, overwrite)
            return self.chunk

        setattr(scorer, "compute", compute)  # noqa: B010 (an instance's method, replaced on purpose)


@dataclass
class Tallies:
    """Every model's tallies and the paired ones: what worker threads merge."""

    models: list[LossState]
    pairs: PairTallies
    group_pairs: PairTallies | None
    unpaired: int = 0  # --nan skip: rows some model could score and another not
    group_sums: GroupClusterSums | None = None  # compare perplexity --group-by, by sequence

    def merge(self, other: Tallies) -> Tallies:
        merged = [a.merge(b) for a, b in zip(self.models, other.models, strict=True)]
        groups = None
        if self.group_pairs is not None and other.group_pairs is not None:
            groups = self.group_pairs.merge(other.group_pairs)
        sums = None
        if self.group_sums is not None and other.group_sums is not None:
            sums = self.group_sums.merge(other.group_sums)
        pairs = self.pairs.merge(other.pairs)
        return Tallies(merged, pairs, groups, self.unpaired + other.unpaired, sums)


class Models:
    """The evaluators of every model, fed the same chunk; ``engine.runners`` drives it as it
    drives one ``Evaluator`` (``fork``, ``tallies``, ``header``)."""

    def __init__(self, evaluators: list[Evaluator], pairs: PairTallies, clustered: bool = False) -> None:
        self.evaluators = evaluators
        self.pairs = pairs
        #: perplexity by sequence: the paired figures come from each model's per-sequence sums
        #: (its state) once the run is over, so no per-token pairing is done while streaming
        self.clustered = clustered
        #: compare mse|mae's fused pass (``fused.py``), or None for the ordinary path
        self.fused: Fused | None = None
        self.keys = evaluators[0].keys
        grouped = self.keys is not None
        self.group_pairs = pairs.copy() if grouped and not clustered else None
        #: perplexity by sequence with --group-by: each (group, sequence) cluster's paired sums,
        #: kept while streaming (a sequence's tokens may fall in several groups), from which the
        #: per-group tallies are computed once the run is over (``group_clusters``)
        self.group_sums = GroupClusterSums(len(evaluators)) if grouped and clustered else None
        self.captures = [Capture() for _ in evaluators]
        self.skip = evaluators[0].nan == "skip"
        for ev, cap in zip(evaluators, self.captures, strict=True):
            if self.skip:
                ev.sink = cap
            else:
                cap.watch(ev.scorer)
        self.unpaired = 0  # rows some model scored and another did not (--nan skip)
        self.header = evaluators[0].header

    @property
    def tallies(self) -> Tallies | None:
        if any(ev.tallies is None for ev in self.evaluators):
            return None
        if self.fused is not None:
            self.fused.flush(self.pairs)
        return Tallies(
            [ev.tallies for ev in self.evaluators if ev.tallies is not None],
            self.pairs,
            self.group_pairs,
            self.unpaired,
            self.group_sums,
        )

    @tallies.setter
    def tallies(self, value: Tallies) -> None:
        for ev, t in zip(self.evaluators, value.models, strict=True):
            ev.tallies = t
        self.pairs, self.group_pairs, self.unpaired = value.pairs, value.group_pairs, value.unpaired
        self.group_sums = value.group_sums

    def fork(self) -> Models:
        p = self.pairs
        twin = Models(
            [ev.fork() for ev in self.evaluators],
            PairTallies(p.models, p.test, p.resamples, p.seed),
            self.clustered,
        )
        if self.fused is not None:  # its own buffers
            twin.fused = Fused(self.fused.k, self.fused.headline)
        return twin


class CompareStreams(Streams):
    """The run's readers once; per model, a view whose PREDS (and pred-side ids) are that
    model's; ``feed`` scores every model on the chunk, then adds the paired losses."""

    views: list[Streams]

    def feed(self, ev: Any, pieces: list[list[NDArray[Any]]], first_row: int | None = None) -> int:
        models: Models = ev
        first = models.evaluators[0].next_row if first_row is None else first_row
        if models.fused is not None and ready(models):
            if first_row is not None:
                for model in models.evaluators:
                    model.next_row = first_row
            targets = self.part(pieces, TARGETS)
            preds = [part_of(view.where, pieces, PREDS) for view in self.views]
            if targets is not None and models.fused.score(models, targets, preds):
                return len(targets)
        rows = 0
        if models.skip:
            preds = [part_of(view.where, pieces, PREDS) for view in self.views]
            skip_alike(models, preds, [self.part(pieces, TARGETS), self.part(pieces, WEIGHTS)])
        every = zip(self.views, models.evaluators, models.captures, strict=True)
        for i, (view, model, cap) in enumerate(every):
            cap.clear()
            try:
                rows = view.feed(model, pieces, first)
            except InputError as exc:  # a shape only a later model's predictions break: its file
                if i == 0 or exc.row is not None or type(exc) is not InputError:
                    raise
                raise blamed(exc, model.labels.get(PREDS), models.evaluators[0].labels.get(PREDS)) from None
        if not models.clustered or models.group_sums is not None:
            _pair(models, self, pieces, first)
        return rows

    def part(self, pieces: list[list[NDArray[Any]]], role: str) -> NDArray[Any] | None:
        return part_of(self.where, pieces, role)


def part_of(
    where: dict[str, tuple[int, int]], pieces: list[list[NDArray[Any]]], role: str
) -> NDArray[Any] | None:
    """A role's array in an aligned chunk (None when the run has no such role)."""
    if role not in where:
        return None
    ri, gi = where[role]
    return pieces[ri][gi]


def _pair(models: Models, streams: CompareStreams, pieces: list[list[NDArray[Any]]], first: int) -> None:
    """The chunk's losses of the rows every model scored, into the paired tallies."""
    if not models.skip:
        _pair_chunks(models, streams, pieces, first)
        return
    caps = models.captures
    rows = caps[0].rows
    same = all(len(c.rows) == len(rows) and np.array_equal(c.rows, rows) for c in caps[1:])
    if same:
        losses = [c.losses for c in caps]
    else:
        common = rows
        for c in caps[1:]:
            common = np.intersect1d(common, c.rows, assume_unique=True)
        scored = rows
        for c in caps[1:]:
            scored = np.union1d(scored, c.rows)
        models.unpaired += len(scored) - len(common)  # rows some model scored, not every one
        losses = [c.losses[np.searchsorted(c.rows, common)] for c in caps]
        rows = common
    if len(rows) == 0:
        return
    _add(models, streams, pieces, first, losses, rows - first)


def _pair_chunks(
    models: Models, streams: CompareStreams, pieces: list[list[NDArray[Any]]], first: int
) -> None:
    """Every model scored every row: the rows --ignore-index keeps (the same for all, from the
    targets; the rows all keep, should they differ) and each model's losses of them."""
    chunks = [c.chunk for c in models.captures]
    if any(ch is None for ch in chunks):
        return  # an empty chunk: nothing was scored
    keeps = [ch.keep for ch in chunks if ch is not None]
    local: NDArray[np.intp] | None = None
    if keeps[0] is not None or any(k is not None for k in keeps):
        both = np.logical_and.reduce([k for k in keeps if k is not None])
        local = np.flatnonzero(both)
        models.unpaired += max(int(np.count_nonzero(k)) for k in keeps if k is not None) - len(local)
    losses = [ch.losses if local is None else ch.losses[local] for ch in chunks if ch is not None]
    _add(models, streams, pieces, first, losses, local)


def _add(
    models: Models,
    streams: CompareStreams,
    pieces: list[list[NDArray[Any]]],
    first: int,
    losses: list[NDArray[np.float64]],
    local: NDArray[Any] | None,
) -> None:
    """Paired losses of the chunk's rows ``local`` (None: all) into the tallies."""
    n = len(losses[0])
    if n == 0:
        return
    if models.group_sums is not None:  # perplexity by sequence: only the (group, sequence) sums
        rows = np.arange(first, first + n, dtype=np.int64) if local is None else local + first
        seqmap = models.evaluators[0].seqmap
        assert seqmap is not None
        codes = np.asarray(_codes(models, streams, pieces), dtype=np.intp)
        models.group_sums.add(codes if local is None else codes[local], seqmap.locate(rows)[0], losses)
        return
    w = streams.part(pieces, WEIGHTS)
    weights = None
    if w is not None:
        flat = np.asarray(w, dtype=np.float64).reshape(len(w), -1)[:, 0]
        weights = flat if local is None else flat[local]
    codes = _codes(models, streams, pieces)
    none = np.empty(0, dtype=np.int64)
    if models.pairs.test == "t" and codes is None:
        ids = none  # the t test needs no identities: no per-row array
    elif local is None:
        ids = np.arange(first, first + n, dtype=np.int64)
    else:
        ids = (local + first).astype(np.int64)
    models.pairs.add(losses, weights, ids, None)
    if codes is not None and models.group_pairs is not None:
        models.group_pairs.grow(len(models.keys))
        codes = np.asarray(codes, dtype=np.intp)
        models.group_pairs.add(losses, weights, ids, codes if local is None else codes[local])


def _codes(models: Models, streams: CompareStreams, pieces: list[list[NDArray[Any]]]) -> Any:
    """The chunk's group codes (as ``Streams.feed`` finds them), None without --group-by."""
    if models.keys is None:
        return None
    codes = streams.part(pieces, GROUPS)
    if codes is None:
        keys = models.keys
        codes = keys.codes([streams.part(pieces, f"{GROUP_KEY}{i}") for i in range(len(keys.columns))])
    return codes


def combined_streams(roles: list[dict[str, Role]]) -> CompareStreams:
    """The baseline's roles plus each other model's prediction-side roles, read once."""
    preds_side = (PREDS, IDS)
    every: dict[str, Role] = dict(roles[0])
    for i, model_roles in enumerate(roles[1:], start=1):
        reader = model_roles[PREDS].reader
        for name, role in model_roles.items():
            if role.reader is reader and (name in preds_side or name.startswith(PRED_INDEX)):
                every[f"{name}@{i}"] = role
    base = Streams.of(every)
    out = CompareStreams(base.readers, base.groups, base.where, base.scratch_preds)
    out.views = []
    for i in range(len(roles)):
        where = dict(base.where)
        for name in list(where):
            if "@" in name:
                del where[name]
        own = {k.split("@")[0]: v for k, v in base.where.items() if k.endswith(f"@{i}")}
        where.update(own)
        preds_reader = base.readers[where[PREDS][0]]
        scratch = (
            preds_reader.scratch_chunks
            and sum(1 for r, _ in base.where.values() if r == where[PREDS][0]) == 1
        )
        out.views.append(replace(base, where=where, scratch_preds=scratch))
    return out


def drive(
    models: Models,
    roles: list[dict[str, Role]],
    chunk_rows: int,
    threads: int,
    progress: Any,
    shift: SequenceMap | None = None,
) -> None:
    """Stream every input once through every model (``engine.runners.run`` for many models);
    ``shift``: perplexity's causal-LM shift of the (baseline's) token ids."""
    from ..align import LengthMismatch

    try:
        _drive(models, roles, chunk_rows, threads, progress, shift)
    except LengthMismatch as exc:
        if models.header.metric != "perplexity" or not hasattr(exc, "totals"):
            raise
        raise token_mismatch(exc) from None


def token_mismatch(exc: Any) -> Any:
    """compare perplexity: inputs whose token counts differ, said in tokens, with how to find
    the first sequence that differs (the counts per sequence are only known once both files
    have been read through)."""
    from ..align import length_mismatch

    return length_mismatch(
        exc.labels,
        exc.totals,
        "token",
        "every model must score the same tokens; to find the first sequence that differs, "
        "compare the `sequence` column of `losscli perplexity --logprobs FILE --per-example -` "
        "(or of --logits FILE) of each model",
    )


def _drive(
    models: Models,
    roles: list[dict[str, Role]],
    chunk_rows: int,
    threads: int,
    progress: Any,
    shift: SequenceMap | None = None,
) -> None:
    streams = combined_streams(roles)
    if not models.clustered:
        names = {name for model_roles in roles for name in model_roles}
        models.fused = fused_for(models.evaluators, names, models.pairs.test)
    for ev, model_roles in zip(models.evaluators, roles, strict=True):
        for name, role in model_roles.items():
            ev.labels[name] = role.label
            ev.columns[name] = column_namer(role.reader, role.group)
            ev.places[name] = role.reader.row_place
    total = streams.total()
    if threads > 1 and total is not None and total > chunk_rows:
        openers = _range_openers(streams, total, shift)
        if openers is not None:
            run_threaded(models, streams, openers, total, chunk_rows, threads, progress)  # type: ignore[arg-type]
            return
    run_serial(models, streams, chunk_rows, progress, shift)  # type: ignore[arg-type]


def plan_models(evaluations: Sequence[Evaluation], stack: ExitStack) -> list[Any]:
    """One plan per model; every model must read its predictions the same way."""
    from ..engine.plan import make_plan

    plans: list[Any] = []
    for e in evaluations:
        try:
            plans.append(make_plan(e, stack))
        except InputError as exc:
            if not plans:  # the baseline's: the plain metric command's (the targets may be odd)
                raise
            raise blamed(exc, model_path(e), model_path(evaluations[0])) from None
    return plans


@dataclass
class Outcome:
    """What a comparison run leaves: every model's state and the paired tallies."""

    states: list[EvalState]
    pairs: PairTallies
    group_pairs: PairTallies | None
    keys: list[tuple[Any, ...]] | None
    unpaired: int
    clustered: bool = False
    #: compare perplexity --group-by by sequence: the (group, sequence) sums behind group_pairs
    group_sums: GroupClusterSums | None = None


def run_models(
    evaluations: Sequence[Evaluation], test: str, resamples: int, seed: int, progress: Any = None
) -> Outcome:
    """Every model's state, the paired tallies, the group keys (or None) and the unpaired count."""
    from ..engine.runners import default_threads

    with ExitStack() as stack:
        plans = plan_models(evaluations, stack)
        run = evaluations[0].run
        evaluators = []
        for plan in plans:
            if hasattr(plan.scorer, "companions"):  # MAE beside MSE: not reported by a comparison
                plan.scorer.companions = ()
            ev = Evaluator(plan.metric, nan=run.nan, worst=0, header=plan.header, scorer=plan.scorer)
            ev.text_ids, ev.output_namer, ev.keys = plan.text_ids, plan.output_names, plans[0].keys
            evaluators.append(ev)
        clustered = by_sequence(plans, evaluators)
        models = Models(evaluators, PairTallies(len(plans), test, resamples, seed), clustered)
        if progress is not None:
            progress.start(plans[0].total_rows)
            stack.callback(progress.stop)
        threads = default_threads() if run.threads is None else run.threads
        chunk_rows = min(p.chunk_rows for p in plans)
        shift = plans[0].seqmap if plans[0].shift else None
        advance = progress.advance if progress else None
        drive(models, [p.roles for p in plans], chunk_rows, threads, advance, shift)
        if models.fused is not None:
            models.fused.flush(models.pairs)
        states = [
            ev.finish(p.nulls, p.warnings_after) for ev, p in zip(models.evaluators, plans, strict=True)
        ]
        keys = plans[0].keys
        found = None if keys is None else list(keys.keys)
        if found is not None and models.group_pairs is not None:
            models.group_pairs.grow(len(found))  # every key, even one whose rows were all skipped
        pairs = cluster_pairs(states, test, resamples, seed) if clustered else models.pairs
        group_pairs, sums = models.group_pairs, models.group_sums
        if sums is not None:
            group_pairs = group_cluster_pairs(sums, len(found or ()), test, resamples, seed)
        return Outcome(states, pairs, group_pairs, found, models.unpaired, clustered, sums)
