"""Runners: each turns a plan's roles into an evaluator's state, serially or on threads.

The serial runner streams every reader through ``align``; the threaded one hands row ranges of
seekable inputs (.npy, arrays) to workers whose tallies merge at the end (the merge is
associative, so the result does not depend on which worker took which chunk). Either way the
global row of each chunk is passed to ``Evaluator.update``, never set on it.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..align import LengthMismatch, align, length_mismatch
from ..errors import UsageError
from ..metrics.checks import PREDS, TARGETS
from ..readers.base import Chunk, Group, RangeReader, Reader
from ..sequences import MASK, SequenceMap, apply_mask, check_mask, mask_logprobs, shift_ids, shifted_stream
from .ci import CLUSTER_KEY, CLUSTERS
from .evaluator import CHECKED_IDS, GROUP_KEY, GROUPS, IDS, WEIGHTS, Evaluator
from .pairing import PRED_INDEX, TARGET_INDEX

# 5 MB: 26 rows of a 50k-vocabulary float32 logits file. Smaller chunks keep a chunk's passes
# closer to L2 but pay the per-chunk Python (~0.1 ms, holding the GIL) more often: 2.5 MB was
# ~7% slower on W5 with two workers; 8 MB measured the same as 5 (see BENCHMARKS.md).
DEFAULT_CHUNK_BYTES = 5 << 20
MAX_CHUNK_ROWS = 1 << 16


@dataclass
class Role:
    """Where one role's values come from: a reader, a group of its columns, a label."""

    reader: Reader
    group: Group
    label: str


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


@dataclass
class Streams:
    """The distinct readers of a run, the column groups each reads, and where each role's
    array sits in a chunk (reader index, group index)."""

    readers: list[Reader]
    groups: list[list[Group]]
    where: dict[str, tuple[int, int]]
    scratch_preds: bool  # the preds buffer is the reader's own scratch, safe to overwrite

    @classmethod
    def of(cls, roles: dict[str, Role]) -> Streams:
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
        preds_reader = roles[PREDS].reader
        # a reader's own reused buffer may be overwritten by the math, unless another role reads it
        scratch = preds_reader.scratch_chunks and all(
            r.reader is not preds_reader for name, r in roles.items() if name != PREDS
        )
        return cls(readers, groups, where, scratch)

    def shifted(self) -> dict[int, list[int]]:
        """Per reader, the arrays --shift moves: the ids, and the attention mask if any."""
        out: dict[int, list[int]] = {}
        for role in (TARGETS, MASK):
            if role in self.where:
                ri, gi = self.where[role]
                out.setdefault(ri, []).append(gi)
        return out

    @property
    def labels(self) -> list[str]:
        return [r.display for r in self.readers]

    def total(self) -> int | None:
        """Rows in every input, when each knows its length; a mismatch is refused here."""
        known = [r.n_rows for r in self.readers]
        if not known or any(k is None for k in known):
            return None
        if len(set(known)) > 1:
            raise length_mismatch(self.labels, [int(k or 0) for k in known])
        return known[0]

    def feed(self, ev: Evaluator, pieces: list[list[NDArray[Any]]], first_row: int | None = None) -> int:
        """Hand one aligned chunk to ``ev``; returns its row count."""

        def part(role: str) -> NDArray[Any] | None:
            if role not in self.where:
                return None
            ri, gi = self.where[role]
            return pieces[ri][gi]

        p = part(PREDS)
        assert p is not None
        others = {role: a for role in CHECKED_IDS if (a := part(role)) is not None}
        ids = part(IDS)
        pairs: list[tuple[NDArray[Any], NDArray[Any]]] = []  # each level of both files' pandas index
        while (mine := part(f"{PRED_INDEX}{len(pairs)}")) is not None:
            theirs = part(f"{TARGET_INDEX}{len(pairs)}")
            assert theirs is not None
            pairs.append((mine, theirs))
        targets, mask = part(TARGETS), part(MASK)
        if targets is not None and mask is not None:
            targets = apply_mask(targets, mask, getattr(ev.scorer, "ignore_index", -100))
        elif mask is not None:  # gathered log-probs: padding marked as a null log-prob, ignored
            p = mask_logprobs(p, mask)
        groups = part(GROUPS)
        if groups is None and ev.keys is not None:  # raw key columns: encoded here, per chunk
            groups = ev.keys.codes([part(f"{GROUP_KEY}{i}") for i in range(len(ev.keys.columns))])
        clusters = part(CLUSTERS)
        feed = ev.interval_feed
        if clusters is None and feed is not None and feed.table is not None:  # raw: coded here
            clusters = feed.table.codes([part(f"{CLUSTER_KEY}0")])
        ev.update(
            p,
            targets,
            part(WEIGHTS),
            first_row=first_row,
            overwrite=self.scratch_preds,
            ids=ids,
            other_ids=others if ids is not None else None,
            index_pairs=pairs or None,
            groups=groups,
            clusters=clusters,
        )
        return len(p)


def run(
    evaluator: Evaluator,
    roles: dict[str, Role],
    chunk_rows: int,
    progress: Callable[[int], None] | None = None,
    threads: int = 1,
    shift: SequenceMap | None = None,
) -> None:
    """Stream every role's reader through ``evaluator``; its tallies hold the result.

    With ``threads`` > 1, inputs that can seek to a row (.npy, arrays) and no --per-example
    sink (which needs input order), chunks are scored by worker threads whose states merge.
    ``shift``: the causal-LM shift, by the input's own (part-local) sequence map.
    """
    streams = Streams.of(roles)
    for name, role in roles.items():
        evaluator.labels[name] = role.label
        evaluator.columns[name] = column_namer(role.reader, role.group)
        evaluator.places[name] = role.reader.row_place
    total = streams.total()
    if threads > 1 and evaluator.sink is None and total is not None and total > chunk_rows:
        openers = _range_openers(streams, total, shift)
        if openers is not None:
            run_threaded(evaluator, streams, openers, total, chunk_rows, threads, progress)
            return
    run_serial(evaluator, streams, chunk_rows, progress, shift)


def run_serial(
    evaluator: Evaluator,
    streams: Streams,
    chunk_rows: int,
    progress: Callable[[int], None] | None,
    shift: SequenceMap | None,
) -> None:
    """One chunk after another, every reader streamed and aligned into equal chunks."""
    chunks = [r.chunks(g, chunk_rows) for r, g in zip(streams.readers, streams.groups, strict=True)]
    if MASK in streams.where:
        ri, gi = streams.where[MASK]
        chunks[ri] = _checked_stream(chunks[ri], gi, streams.readers[ri].display)
    if shift is not None:
        for ri, indices in streams.shifted().items():
            chunks[ri] = shifted_stream(chunks[ri], indices, shift)
    try:
        for pieces in align(chunks, streams.labels):
            rows = streams.feed(evaluator, pieces)
            if progress is not None:
                progress(rows)
    except LengthMismatch as exc:
        hint = _mismatch_hint(streams.readers)
        if not hint:
            raise
        hinted = LengthMismatch(exc.detail + hint)
        hinted.labels, hinted.totals = exc.labels, exc.totals
        raise hinted from None


def _range_openers(
    streams: Streams, total: int, shift: SequenceMap | None
) -> list[Callable[[], RangeReader]] | None:
    """Per reader, a way to open an independent row-range reader; None if one cannot seek."""
    if any(r.range_reader() is None for r in streams.readers):
        return None
    checked = streams.where.get(MASK)
    openers: list[Callable[[], RangeReader]] = [
        _range_opener(r, checked[1] if checked and checked[0] == ri else None)
        for ri, r in enumerate(streams.readers)
    ]
    if shift is not None:
        for ri, indices in streams.shifted().items():
            openers[ri] = _shifted_opener(openers[ri], indices, total, shift)
    return openers


def _checked_stream(
    chunks: Iterator[list[NDArray[Any]]], index: int, label: str
) -> Iterator[list[NDArray[Any]]]:
    """A chunk stream whose array ``index`` (an attention mask) is checked to hold 0 and 1."""
    row = 0
    for chunk in chunks:
        check_mask(chunk[index], label, row)
        row += len(chunk[index])
        yield chunk


def _mismatch_hint(readers: Sequence[Reader]) -> str:
    """What may explain a CSV a row off: Polars writes a null in the last row of a one-column
    file as an empty last line, which cannot be told from the blank line many files end with;
    a first row that could be a header was read as data (or the other way round)."""
    for r in readers:
        tail = r.blank_tail
        if tail:
            return (
                f". {r.display} ends with {tail} empty line(s), which hold no row: if its last "
                "value is missing (Polars writes a null in a one-column CSV as an empty line), "
                "write missing values as NaN (Polars: write_csv(null_value='NaN')) or use Parquet"
            )
    for r in readers:
        if r.header_guessed:
            header = r.header_row
            now, other = ("a header", "--no-header") if header else ("data", "--header")
            return (
                f". {r.display}'s first row could be a header or data and was read as {now}: "
                f"give {other} if it is not"
            )
    return ""


def _range_opener(reader: Reader, mask_index: int | None = None) -> Callable[[], RangeReader]:
    """Row ranges of ``reader``; ``mask_index``: its array that is an attention mask, checked."""

    def open_range() -> RangeReader:
        rr = reader.range_reader()
        assert rr is not None
        return rr if mask_index is None else _CheckedRanges(rr, mask_index, reader.display)

    return open_range


class _CheckedRanges(RangeReader):
    """Row ranges whose attention mask is checked to hold 0 and 1 (before any shift)."""

    def __init__(self, inner: RangeReader, index: int, label: str) -> None:
        self.inner, self.index, self.label = inner, index, label

    def read(self, groups: Sequence[Group], start: int, stop: int) -> Chunk:
        chunk = self.inner.read(groups, start, stop)
        check_mask(chunk[self.index], self.label, start)
        return chunk


class _ShiftedRanges(RangeReader):
    """Row ranges of the targets (and mask) with --shift: each range reads one row past its end."""

    def __init__(self, inner: RangeReader, indices: list[int], total: int, seqmap: SequenceMap) -> None:
        self.inner, self.indices, self.total, self.seqmap = inner, indices, total, seqmap

    def read(self, groups: Sequence[Group], start: int, stop: int) -> Chunk:
        chunk = self.inner.read(groups, start, min(stop + 1, self.total))
        rows = np.arange(start, stop, dtype=np.int64)
        out = [a[: stop - start] for a in chunk]
        for i in self.indices:
            ids = chunk[i]
            out[i] = shift_ids(ids[: stop - start], rows, ids[stop - start :], self.seqmap)
        return out


def _shifted_opener(
    inner: Callable[[], RangeReader], indices: list[int], total: int, seqmap: SequenceMap
) -> Callable[[], RangeReader]:
    def open_range() -> RangeReader:
        return _ShiftedRanges(inner(), indices, total, seqmap)

    return open_range


def run_threaded(
    evaluator: Evaluator,
    streams: Streams,
    openers: list[Callable[[], RangeReader]],
    total: int,
    chunk_rows: int,
    threads: int,
    progress: Callable[[int], None] | None,
) -> None:
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
        pieces = [rr.read(g, start, stop) for rr, g in zip(rrs, streams.groups, strict=True)]
        return streams.feed(ev, pieces, evaluator.header.row_offset + start)

    done = score(evaluator, [open_range() for open_range in openers], 0)
    if progress is not None:
        progress(done)
    from .forked import can_fork, run_forked

    # processes where that is safe: threads hand the GIL over at every numpy call
    if can_fork(evaluator) and run_forked(evaluator, score, openers, range(1, n_chunks), threads, progress):
        return
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

    _join([threading.Thread(target=work, args=(ev,), daemon=True) for ev in workers], stop)
    if failures:
        raise min(failures, key=lambda f: f[0])[1]
    tallies = evaluator.tallies
    assert tallies is not None
    for ev in workers:
        assert ev.tallies is not None
        tallies = tallies.merge(ev.tallies)
    evaluator.tallies = tallies


def _join(pool: list[threading.Thread], stop: threading.Event) -> None:
    """Start the workers and wait for them; a Ctrl-C stops them at their next chunk."""
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
