"""The streaming loop: read -> align -> compute -> accumulate. It never prints.

``Evaluator`` is the stateful, torchmetrics-style object: ``update`` takes one aligned chunk,
``state`` is a mergeable ``LossState``. ``run`` drives it over readers. Errors from the pure
math (``DataProblem``, chunk-local) become ``InputError`` here, with the file and global row.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from .state.parts import LossState, SequenceStats
from .align import LengthMismatch, align, length_mismatch
from .errors import AmbiguousInput, DataProblem, InputError, UsageError
from .metrics import PREDS, TARGETS, Metric, Scratch, check_finite, first_bad_row
from .readers.base import Chunk, Group, RangeReader, Reader
from .sequences import SequenceMap, shift_ids, shifted_stream

WEIGHTS = "weights"
IDS = "ids"  # the id column whose values the breakdown and --per-example carry
TARGET_IDS = "target_ids"  # the targets' own id column, checked row by row against IDS
WEIGHT_IDS = "weight_ids"  # a weights file's own id column, checked likewise
CHECKED_IDS = (TARGET_IDS, WEIGHT_IDS)
# 5 MB: 26 rows of a 50k-vocabulary float32 logits file. Smaller chunks keep a chunk's passes
# closer to L2 but pay the per-chunk Python (~0.1 ms, holding the GIL) more often: 2.5 MB was
# ~7% slower on W5 with two workers; 8 MB measured the same as 5 (see BENCHMARKS.md).
DEFAULT_CHUNK_BYTES = 5 << 20
MAX_CHUNK_ROWS = 1 << 16
NAN_POLICIES = ("error", "skip")


class ExampleSink(Protocol):
    """Receives every counted example's loss, in input order (see ``per_example``)."""

    def write(
        self,
        rows: NDArray[np.int64],
        losses: NDArray[np.float64],
        extra: dict[str, NDArray[Any]] | None = None,
        ids: NDArray[Any] | None = None,
    ) -> None: ...


@dataclass
class Role:
    """Where one role's values come from: a reader, a group of its columns, a label."""

    reader: Reader
    group: Group
    label: str


@dataclass
class Evaluator:
    """Accumulates one metric over chunks; ``update`` may be called with any chunking."""

    metric: Metric
    nan: str = "error"
    worst_capacity: int = 20
    sink: ExampleSink | None = None
    labels: dict[str, str] = field(default_factory=dict)
    columns: dict[str, Callable[[int | None], str | None]] = field(default_factory=dict)
    state: LossState | None = None
    offset: int = 0
    overflow: bool = False
    scratch: Scratch = field(default_factory=Scratch)
    seqmap: SequenceMap | None = None
    #: roles whose ids are text in the file but may arrive as int64 (see readers.ids): shown as text
    text_ids: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.nan not in NAN_POLICIES:
            raise UsageError(f"--nan must be one of {', '.join(NAN_POLICIES)}, not {self.nan}")

    def update(
        self,
        preds: NDArray[Any],
        targets: NDArray[Any] | None,
        weights: NDArray[Any] | None = None,
        overwrite: bool = False,
        ids: NDArray[Any] | None = None,
        other_ids: dict[str, NDArray[Any]] | None = None,
    ) -> None:
        """Score one aligned chunk. ``overwrite``: preds is scratch the math may reuse.

        ``ids``: the chunk's row ids, carried into the breakdown and --per-example;
        ``other_ids``: other files' ids by role (the targets', the weights'), which must equal
        ``ids`` row by row.
        """
        rows = len(preds)
        if rows == 0:
            return
        for role, other in (other_ids or {}).items():
            if ids is not None:
                self._check_ids(ids, other, role)
        row_map: NDArray[np.intp] | None = None
        try:
            if self.state is None:
                self.metric.bind(preds, targets)
                self.state = self._new_state()
            if weights is not None:
                weights = self._check_weights(weights)
            if self.nan == "skip":
                preds, targets, weights, row_map = self._drop_nonfinite(preds, targets, weights)
                if len(preds) == 0:
                    self.offset += rows
                    return
            self._score(preds, targets, weights, row_map, overwrite, ids)
        except DataProblem as problem:
            raise self._located(problem, row_map) from None
        self.offset += rows

    def _check_ids(self, ids: NDArray[Any], other: NDArray[Any], role: str) -> None:
        """Both files hold the same id column: row i must hold the same id in each, or the
        rows are not the same examples. Numbers compare as numbers, anything else as text."""
        differ = np.asarray(ids != other, dtype=bool)
        if differ.any():  # 7 in a Parquet file and "7" in a CSV are the same id
            differ = np.asarray(_id_text(ids) != _id_text(other), dtype=bool)
        if not differ.any():
            return
        r = int(np.argmax(differ))
        a, b = self._shown(IDS, ids[r : r + 1])[0], self._shown(role, other[r : r + 1])[0]
        raise InputError(
            f"row {self.offset + r}: {self.labels.get(IDS)} has id {a!r} but "
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
        if ok.all():
            return p, t, w, None
        assert self.state is not None
        self.state.skipped += int(len(ok) - np.count_nonzero(ok))
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
    ) -> None:
        state = self.state
        assert state is not None
        with np.errstate(all="ignore"):  # overflow to inf is detected and reported below, once
            mc = self.metric.compute(p, t, overwrite or row_map is not None)
        losses, elements, correct = mc.losses, mc.elements, mc.correct
        companions = mc.companions or {}
        correct_k, ids = mc.correct_k, mc.ids
        if mc.row_sum is not None:
            state.note_row_sum(int(self._global_rows(np.array([mc.row_sum[0]]), row_map)[0]), mc.row_sum[1])
        local = None  # positions in p/t of the counted examples, when not all are counted
        if mc.keep is not None:
            local = np.flatnonzero(mc.keep)
            state.ignored += len(p) - len(local) if mc.ignored is None else mc.ignored
            losses = losses[local]
            elements = elements[local] if elements is not None else None
            correct = correct[local] if correct is not None else None
            correct_k = correct_k[local] if correct_k is not None else None
            ids = ids[local] if ids is not None else None
            companions = {k: v[local] for k, v in companions.items()}
            w = w[local] if w is not None else None
        n = len(losses)
        if n == 0:
            return
        total = self._weighted_sum(losses, w)
        weight_total = float(n) if w is None else float(np.sum(w, dtype=np.float64))
        for name, values in companions.items():
            state.companion(name).add1(self._weighted_sum(values, w))
        if not math.isfinite(total):
            self.metric.locate_nonfinite(p, t)  # raises when an input is NaN/inf
            self.overflow = True
        if elements is None:
            state.output_sums.add1(total)
        else:
            state.output_sums.add(_column_sums(elements, w))
        state.weight_sum.add1(weight_total)
        state.n += n
        state.clamped += mc.clamped
        if correct is not None:
            state.counts_correct = True
            state.hits.add((_hit_weight(correct, w), _hit_weight(correct_k, w)))
        counted_rows: NDArray[np.int64] | None = None  # input rows of every counted example
        extra: dict[str, NDArray[Any]] | None = None
        if self.seqmap is not None and state.sequences is not None:
            counted_rows = self._global_rows(np.arange(n) if local is None else local, row_map)
            seq, pos = self.seqmap.locate(counted_rows)
            state.sequences.update(seq, pos, losses, ids)
            extra = {"sequence": seq, "position": pos}
        picked = state.worst.candidates(losses)
        if len(picked):
            src = picked if local is None else local[picked]
            details = self.metric.describe(p, t, src, losses[picked])
            if row_ids is not None:  # the id leads the detail tuple; the report takes it out
                picked_ids = self._shown(IDS, row_ids[src if row_map is None else row_map[src]])
                details = [(i, *d) for i, d in zip(picked_ids, details, strict=True)]
            state.worst.offer(self._global_rows(src, row_map), losses[picked], details)
        if self.sink is not None:
            if counted_rows is None:
                counted_rows = self._global_rows(np.arange(n) if local is None else local, row_map)
            sink_ids = None
            if row_ids is not None:
                sink_ids = row_ids[counted_rows - self.offset]
                if IDS in self.text_ids and sink_ids.dtype != object:
                    sink_ids = sink_ids.astype(str)
            self.sink.write(counted_rows, losses, extra, sink_ids)

    def _weighted_sum(self, values: NDArray[np.float64], w: NDArray[Any] | None) -> float:
        """sum(values) or sum(w * values): numpy's pairwise sum, within log2(n) ulps.

        A row of weight 0 adds exactly 0 whatever its loss (scikit-learn's sample_weight), but
        0 * inf is NaN: when the sum is not finite it is taken again without those rows. Only
        then, so the normal path keeps its one scratch buffer. Overflow is reported by the caller
        (the sum stays inf), so numpy's RuntimeWarnings are silenced here.
        """
        if w is None:
            return float(np.sum(values, dtype=np.float64))
        weighted = self.scratch.get("weighted", (len(values),), np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            np.multiply(values, w, out=weighted)
            total = float(np.sum(weighted))
            if not math.isfinite(total):
                keep = w != 0
                total = float(np.sum(values[keep] * w[keep]))
        return total

    def _global_rows(self, positions: NDArray[Any], row_map: NDArray[np.intp] | None) -> NDArray[np.int64]:
        """Input row numbers of chunk positions (through --nan skip's compaction, if any)."""
        idx = positions if row_map is None else row_map[positions]
        return np.asarray(idx, dtype=np.int64) + self.offset

    def fork(self) -> Evaluator:
        """A fresh evaluator for another thread: same bound metric, its own buffers and state."""
        assert self.state is not None, "bind on the first chunk before forking"
        twin = Evaluator(self.metric.clone(), self.nan, self.worst_capacity, None, self.labels, self.columns)
        twin.seqmap = self.seqmap
        twin.text_ids = self.text_ids
        twin.state = twin._new_state()
        return twin

    def _new_state(self) -> LossState:
        state = LossState(self.metric.outputs, self.worst_capacity)
        if self.seqmap is not None:
            state.sequences = SequenceStats(self.seqmap.sequences)
        return state

    def _located(self, problem: DataProblem, row_map: NDArray[np.intp] | None) -> InputError:
        row = None
        if problem.local_row is not None:
            local = problem.local_row if row_map is None else int(row_map[problem.local_row])
            row = self.offset + local
        column = None
        if problem.role in self.columns:
            column = self.columns[problem.role](problem.column)
        elif problem.column is not None:
            column = str(problem.column)
        kind = AmbiguousInput if problem.ambiguous else InputError
        return kind(problem.detail, path=self.labels.get(problem.role), row=row, column=column)


def _id_text(ids: NDArray[Any]) -> NDArray[Any]:
    """Ids as text, to compare a CSV's ids (text) with a Parquet file's (often integers)."""
    return np.array([x if isinstance(x, str) else str(x) for x in ids.tolist()], dtype=object)


def _hit_weight(hits: NDArray[np.bool_] | None, w: NDArray[Any] | None) -> float:
    """How many rows hit (top-1 or top-k), each counted with its weight (accuracy_score's
    sample_weight): the count itself when unweighted."""
    if hits is None:
        return 0.0
    if w is None:
        return float(np.count_nonzero(hits))
    return float(np.sum(w[hits], dtype=np.float64))


def _column_sums(elements: NDArray[np.float64], w: NDArray[Any] | None) -> NDArray[np.float64]:
    """Per-output (weighted) sums; pairwise per column, as accurate as the 1-D path.

    As in ``Evaluator._weighted_sum``: a row of weight 0 adds exactly 0, even when its loss is
    inf (taken again without those rows only when some column's sum is not finite).
    """
    if w is None:
        return _per_column(elements)
    with np.errstate(over="ignore", invalid="ignore"):
        sums = _per_column(elements * w[:, None])
        if not np.isfinite(sums).all():
            keep = w != 0
            sums = _per_column(elements[keep] * w[keep, None])
    return sums


def _per_column(data: NDArray[np.float64]) -> NDArray[np.float64]:
    """Column sums, each numpy's pairwise sum of a 1-D column (axis=0 would sum row by row)."""
    return np.array([np.sum(data[:, j]) for j in range(data.shape[1])])


def column_namer(reader: Reader, group: Group) -> Callable[[int | None], str | None]:
    """Map a column position inside a role's array back to the file's column name."""

    def name(col: int | None) -> str | None:
        if group is not None and len(group) == 1:
            return repr(reader.column_names[group[0]])
        if group is None and len(reader.column_names) == 1 and reader.named():
            return repr(reader.column_names[0])  # a file of one named column, read whole
        if col is None:
            return None
        if group is None:
            names = reader.column_names
            return repr(names[col]) if col < len(names) and len(names) > 1 else str(col)
        return repr(reader.column_names[group[col]]) if col < len(group) else str(col)

    return name


def choose_chunk_rows(readers: Sequence[Reader], requested: int | None) -> int:
    """--chunk-size when given; else as many rows as fit DEFAULT_CHUNK_BYTES of the widest input."""
    if requested is not None:
        if requested < 1:
            raise UsageError("--chunk-size must be at least 1 row")
        return requested
    widest = 8
    for r in readers:
        if r.row_shape is not None:
            width = int(np.prod(r.row_shape, dtype=np.int64)) if r.row_shape else 1
            widest = max(widest, width * r.itemsize)
    return int(max(1, min(MAX_CHUNK_ROWS, DEFAULT_CHUNK_BYTES // widest)))


def default_threads() -> int:
    """Two workers where there are two cores: reading (pread) and numpy both release the GIL."""
    return max(1, min(2, os.cpu_count() or 1))


def run(
    evaluator: Evaluator,
    roles: dict[str, Role],
    chunk_rows: int,
    progress: Callable[[int], None] | None = None,
    threads: int = 1,
    shift: bool = False,
) -> LossState:
    """Stream every role's reader through ``evaluator``; returns the final state.

    With ``threads`` > 1, inputs that can seek to a row (.npy, arrays) and no --per-example
    sink (which needs input order), chunks are scored by worker threads whose states merge.
    """
    readers: list[Reader] = []
    groups: list[list[Group]] = []
    where: dict[str, tuple[int, int]] = {}
    for name, role in roles.items():
        if role.reader not in readers:
            readers.append(role.reader)
            groups.append([])
        ri = readers.index(role.reader)
        groups[ri].append(role.group)
        where[name] = (ri, len(groups[ri]) - 1)
        evaluator.labels[name] = role.label
        evaluator.columns[name] = column_namer(role.reader, role.group)
    labels = [r.display for r in readers]
    known = [r.n_rows for r in readers]
    if all(k is not None for k in known) and len(set(known)) > 1:
        raise length_mismatch(labels, [int(k or 0) for k in known])

    # A reader's own reused buffer may be overwritten by the math, unless another role reads it.
    preds_reader = roles[PREDS].reader
    scratch_preds = preds_reader.scratch_chunks and all(
        r.reader is not preds_reader for name, r in roles.items() if name != PREDS
    )

    def feed(ev: Evaluator, pieces: list[list[NDArray[Any]]]) -> int:
        p = pieces[where[PREDS][0]][where[PREDS][1]]
        t = pieces[where[TARGETS][0]][where[TARGETS][1]] if TARGETS in where else None
        w = pieces[where[WEIGHTS][0]][where[WEIGHTS][1]] if WEIGHTS in where else None
        if IDS not in where:
            ev.update(p, t, w, overwrite=scratch_preds)
            return len(p)
        i = pieces[where[IDS][0]][where[IDS][1]]
        others = {role: pieces[where[role][0]][where[role][1]] for role in CHECKED_IDS if role in where}
        ev.update(p, t, w, overwrite=scratch_preds, ids=i, other_ids=others)
        return len(p)

    total = known[0] if known and all(k is not None for k in known) else None
    seqmap = evaluator.seqmap
    if shift and seqmap is None:
        raise UsageError("--shift needs to know where sequences end")
    t_reader, t_index = where.get(TARGETS, (0, 0))
    if threads > 1 and evaluator.sink is None and total is not None and total > chunk_rows:
        ranges = [r.range_reader() for r in readers]
        if all(rr is not None for rr in ranges):
            opener: list[Callable[[], RangeReader]] = [_range_opener(r) for r in readers]
            if shift:
                assert seqmap is not None
                opener[t_reader] = _shifted_opener(readers[t_reader], t_index, int(total), seqmap)
            return _run_parallel(evaluator, opener, groups, feed, int(total), chunk_rows, threads, progress)
    streams = [r.chunks(g, chunk_rows) for r, g in zip(readers, groups, strict=True)]
    if shift:
        assert seqmap is not None
        streams[t_reader] = shifted_stream(streams[t_reader], t_index, seqmap)
    try:
        for pieces in align(streams, labels):
            rows = feed(evaluator, pieces)
            if progress is not None:
                progress(rows)
    except LengthMismatch as exc:
        raise LengthMismatch(exc.detail + _mismatch_hint(readers)) from None
    if evaluator.state is None:
        raise InputError("no rows to score", path=" and ".join(dict.fromkeys(labels)))
    return evaluator.state


def _mismatch_hint(readers: Sequence[Reader]) -> str:
    """What may explain a CSV a row off: Polars writes a null in the last row of a one-column
    file as an empty last line, which cannot be told from the blank line many files end with;
    a first row that could be a header was read as data (or the other way round)."""
    for r in readers:
        tail = getattr(r, "blank_tail", 0)
        if tail:
            return (
                f". {r.display} ends with {tail} empty line(s), which hold no row: if its last "
                "value is missing (Polars writes a null in a one-column CSV as an empty line), "
                "write missing values as NaN (Polars: write_csv(null_value='NaN')) or use Parquet"
            )
    for r in readers:
        if getattr(r, "header_guessed", False):
            header = getattr(r, "has_header", False)
            now, other = ("a header", "--no-header") if header else ("data", "--header")
            return (
                f". {r.display}'s first row could be a header or data and was read as {now}: "
                f"give {other} if it is not"
            )
    return ""


def _range_opener(reader: Reader) -> Callable[[], RangeReader]:
    def open_range() -> RangeReader:
        rr = reader.range_reader()
        assert rr is not None
        return rr

    return open_range


class _ShiftedRanges(RangeReader):
    """Row ranges of the targets with --shift: each range reads one row past its end."""

    def __init__(self, inner: RangeReader, index: int, total: int, seqmap: SequenceMap) -> None:
        self.inner, self.index, self.total, self.seqmap = inner, index, total, seqmap

    def read(self, groups: Sequence[Group], start: int, stop: int) -> Chunk:
        chunk = self.inner.read(groups, start, min(stop + 1, self.total))
        rows = np.arange(start, stop, dtype=np.int64)
        out = [a[: stop - start] for a in chunk]
        ids = chunk[self.index]
        out[self.index] = shift_ids(ids[: stop - start], rows, ids[stop - start :], self.seqmap)
        return out


def _shifted_opener(reader: Reader, index: int, total: int, seqmap: SequenceMap) -> Callable[[], RangeReader]:
    def open_range() -> RangeReader:
        rr = reader.range_reader()
        assert rr is not None
        return _ShiftedRanges(rr, index, total, seqmap)

    return open_range


def _run_parallel(
    evaluator: Evaluator,
    openers: list[Callable[[], RangeReader]],
    groups: list[list[Group]],
    feed: Callable[[Evaluator, list[list[NDArray[Any]]]], int],
    total: int,
    chunk_rows: int,
    threads: int,
    progress: Callable[[int], None] | None,
) -> LossState:
    """Chunk 0 binds the metric on this thread; then workers take chunks in order.

    Each worker has its own evaluator and buffers; their states merge at the end (the merge
    is associative, so the result does not depend on which worker took which chunk). On an
    error, chunks already handed out finish and the error of the earliest chunk is raised,
    so the message names the first bad row in file order.
    """
    n_chunks = -(-total // chunk_rows)

    def score(ev: Evaluator, rrs: list[RangeReader], index: int) -> int:
        start = index * chunk_rows
        stop = min(total, start + chunk_rows)
        ev.offset = start
        return feed(ev, [rr.read(g, start, stop) for rr, g in zip(rrs, groups, strict=True)])

    first_ranges = [open_range() for open_range in openers]
    done = score(evaluator, first_ranges, 0)
    if progress is not None:
        progress(done)
    workers = [evaluator.fork() for _ in range(threads)]
    counter = itertools.count(1)
    failures: list[tuple[int, BaseException]] = []
    stop = threading.Event()

    def work(ev: Evaluator) -> None:
        rrs = [open_range() for open_range in openers]
        while not stop.is_set():
            index = next(counter)
            if index >= n_chunks:
                return
            try:
                rows = score(ev, rrs, index)
            except BaseException as exc:
                failures.append((index, exc))
                stop.set()
                return
            if progress is not None:
                progress(rows)

    pool = [threading.Thread(target=work, args=(ev,), daemon=True) for ev in workers]
    for t in pool:
        t.start()
    try:
        for t in pool:
            while t.is_alive():
                t.join(0.05)
    except BaseException:
        stop.set()
        for t in pool:
            t.join()
        raise
    if failures:
        raise min(failures, key=lambda f: f[0])[1]
    state = evaluator.state
    assert state is not None
    for ev in workers:
        assert ev.state is not None
        state = state.merge(ev.state)
        evaluator.overflow |= ev.overflow
    evaluator.state = state
    return state
