"""What a merge finds wrong with its parts, and the caps that keep a merge of many parts readable.

A merge adds its parts' tallies whatever they are, so it must say when the sum is not what the
user meant: the same input file read by two parts (its rows count twice), two parts of different
data claiming the same rows (worst rows numbered as if they were one) or the same sequences
(their per-sequence rows added together). Everything here is computed from the sorted list of
parts a merged state keeps (``merge.leaves_of`` sorted by ``merge.PartOrder``), never from the
intermediate states of a merge tree, so the result does not depend on the order or grouping of
merges. A merge of hundreds of CSV shards must not print hundreds of lines: ``capped`` lists a
few and counts the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from .evalstate import PartSummary, Provenance

#: notes, warnings, and each kind of overlap: at most this many lines, then one "... and N more"
LIST_AT_MOST = 5
#: labels of one role in a merged state's ``files``, then " + N more"
FILES_AT_MOST = 3
#: inputs that name no file: two parts reading them may or may not have read the same data
ANONYMOUS = ("<array>", "-")

FileKey = tuple[str, int | None, float | None]
T = TypeVar("T")
#: two parts (by index in part order) and the first and one-past-last shared row or sequence
Overlap = tuple[int, int, int, int]


def summary(leaf: Provenance) -> PartSummary:
    return leaf.summary if leaf.summary is not None else PartSummary()


def capped(items: Iterable[str], more: str, limit: int = LIST_AT_MOST) -> list[str]:
    """The distinct items, in order: at most ``limit``, then "... and N more <more>" where N
    counts the distinct items not shown."""
    shown: dict[str, None] = {}
    hidden: dict[str, None] = {}
    for item in items:
        if item in shown:
            continue
        if len(shown) < limit:
            shown[item] = None
        else:
            hidden[item] = None
    tail = [f"... and {len(hidden)} more {more}"] if hidden else []
    return [*shown, *tail]


def said_once(notes: Iterable[str], paths: Iterable[str], unit: str) -> list[str]:
    """Notes that several parts repeat with their own path (the same rule chose the same
    columns in every shard) said once, for the first, with how many others said the same
    ("(the same in 2 more shards)"): not 1,000 lines. A note naming no part's path is kept as
    it is (``capped`` says each distinct one once)."""
    import re

    names = sorted({p for p in paths if p not in ANONYMOUS and len(p) > 1}, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(p) for p in names)) if names else None
    first: dict[str, int] = {}
    kept: list[list[Any]] = []
    for note in dict.fromkeys(notes):  # the parts of one file cut into ranges: one shard
        key = note if pattern is None else pattern.sub("\0", note)
        if key != note and key in first:
            kept[first[key]][1] += 1
            continue
        first[key] = len(kept)
        kept.append([note, 0])
    return [n if more == 0 else f"{n} (the same in {more} more {unit}{_s(more)})" for n, more in kept]


def _s(count: int) -> str:
    return "s" if count > 1 else ""


def capped_pairs(pairs: Iterator[T], text: Callable[[T], str], more: str) -> list[str]:
    """Like ``capped``, for warnings about pairs of parts: the first pairs are put in words,
    the rest only counted, so a pairwise check of 1000 parts builds five texts, not 500,000."""
    shown: dict[str, None] = {}
    for pair in pairs:
        shown[text(pair)] = None
        if len(shown) == LIST_AT_MOST:
            break
    left = sum(1 for _ in pairs)
    return [*shown, *([f"... and {left} more {more}"] if left else [])]


def files_label(labels: Sequence[str]) -> str:
    """ "a.csv + b.csv + c.csv + 297 more": a merged state's name for one role's files."""
    head = " + ".join(labels[:FILES_AT_MOST])
    more = len(labels) - FILES_AT_MOST
    return f"{head} + {more} more" if more > 0 else head


def file_keys(leaf: Provenance) -> frozenset[FileKey]:
    """The regular files a part read, as (absolute path, size, modification time). Arrays,
    stdin and pipes (no size: ``<(zcat x.gz)`` is /dev/fd/63 in every run, with other rows each
    time) identify no data. A file read in two roles (preds and targets of one CSV) is one file."""
    return frozenset(
        (i.path, i.size, i.mtime)
        for i in leaf.inputs
        if i.path not in ANONYMOUS and i.size is not None and i.mtime is not None
    )


def overlap_warnings(leaves: Sequence[Provenance]) -> list[str]:
    """Every warning a merge finds in its parts (sorted by ``merge.PartOrder``): files read by
    more than one part, then overlapping rows, then overlapping sequences, each kind capped."""
    keys = [file_keys(leaf) for leaf in leaves]
    out = capped(same_file_warnings(leaves, keys), "files read by more than one part")

    runs = contiguous_runs(leaves)

    def rows_text(o: Overlap) -> str:
        x, y = runs[o[0]], runs[o[1]]
        later = "the later part" if len(y) == 1 else "the later parts"
        return (
            f"rows {o[2]}..{o[3] - 1} of parts {_run_names(leaves, x, y)} overlap: worst rows are "
            f"numbered as if they were the same rows; evaluate {later} with --row-offset "
            f"{_end(leaves, x)} to number rows as in the concatenation"
        )

    def sequences_text(o: Overlap) -> str:
        return (
            f"sequences {o[2]}..{o[3] - 1} of parts {_names(leaves[o[0]], leaves[o[1]])} overlap: "
            "their per-sequence rows are added together (a sequence cut between parts, or a wrong "
            "--sequence-offset): worst-token positions of the later part count from its own start; "
            "give --sequence-offset N (N = the sequences before the later part) or cut parts at "
            "sequence boundaries"
        )

    out += capped_pairs(run_overlaps(leaves, keys, runs), rows_text, "pairs of parts whose rows overlap")
    seqs = sequence_overlaps(leaves, keys)
    out += capped_pairs(seqs, sequences_text, "pairs of parts whose sequences overlap")
    return out


def same_file_warnings(leaves: Sequence[Provenance], keys: Sequence[frozenset[FileKey]]) -> Iterator[str]:
    """One warning per file that more than one part read: a state merged with itself, or one
    shard evaluated twice (at any row offsets). Its rows are in the tallies once per part.

    Parts that each read a range of the file (``InputFile.span``: a file cut at its row groups,
    a single file beside shards) read it once between them when their ranges do not overlap."""
    readers: dict[FileKey, list[int]] = {}
    for i, part_keys in enumerate(keys):
        for key in sorted(part_keys, key=repr):
            readers.setdefault(key, []).append(i)
    for key, parts in readers.items():
        depth = _read_depth(leaves, parts, key[0]) if len(parts) > 1 else 1
        if depth < 2:
            continue
        starts = [f"{leaves[i].row_offset}.." for i in parts]
        shown = starts if len(starts) <= 3 else [*starts[:3], f"{len(starts) - 3} more"]
        listed = " and ".join([", ".join(shown[:-1]), shown[-1]])
        times = "twice" if depth == 2 else f"{depth} times"
        count = "two" if len(parts) == 2 else str(len(parts))
        yield f"{key[0]} was read by {count} parts (rows {listed}): its rows count {times}"


def _read_depth(leaves: Sequence[Provenance], parts: Sequence[int], path: str) -> int:
    """How many times the most-read row of ``path`` was read by ``parts``: each part read its
    range of it (``InputFile.span``), or the whole file (no span; two ranges in one part's roles
    are taken as the whole file too)."""
    events: list[tuple[float, int]] = []
    for i in parts:
        mine = {f.span for f in leaves[i].inputs if f.path == path}
        span = mine.pop() if len(mine) == 1 else None
        start, stop = (0.0, math.inf) if span is None else span
        events += [(start, 1), (stop, -1)]
    events.sort(key=lambda e: (e[0], e[1]))  # a range ending where another starts: no overlap
    depth = deepest = 0
    for _, step in events:
        depth += step
        deepest = max(deepest, depth)
    return deepest


def row_overlaps(leaves: Sequence[Provenance], keys: Sequence[frozenset[FileKey]]) -> Iterator[Overlap]:
    """Pairs of parts (sharing no file) whose row ranges overlap: their worst rows are numbered
    as if they were the same rows. ``leaves`` are sorted by row offset."""
    for i, x in enumerate(leaves):
        x_end = x.row_offset + summary(x).rows
        for j in range(i + 1, len(leaves)):
            y = leaves[j]
            if y.row_offset >= x_end:  # sorted by row offset: no later part overlaps x either
                break
            stop = min(x_end, y.row_offset + summary(y).rows)
            if y.row_offset < stop and not keys[i] & keys[j]:
                yield i, j, y.row_offset, stop


def contiguous_runs(leaves: Sequence[Provenance]) -> list[list[int]]:
    """The parts (sorted by row offset) as runs of back-to-back row ranges, each run what one
    job most likely saved (its shards' offsets follow one another); a part starting where no
    run ends starts a run of its own. A forgotten --row-offset is advised per run, from the
    whole earlier run's end, not from the end of the one part that happens to overlap."""
    runs: list[list[int]] = []
    ends: list[int] = []
    for i, leaf in enumerate(leaves):
        start, end = leaf.row_offset, leaf.row_offset + summary(leaf).rows
        k = next((k for k, e in enumerate(ends) if e == start), None)
        if k is None:
            runs.append([i])
            ends.append(end)
        else:
            runs[k].append(i)
            ends[k] = end
    return runs


def run_overlaps(
    leaves: Sequence[Provenance], keys: Sequence[frozenset[FileKey]], runs: Sequence[list[int]]
) -> Iterator[Overlap]:
    """Pairs of runs (by index into ``runs``, the earlier first) whose parts' rows overlap, with
    the first and one-past-last row they share, in the order their first overlap is found."""
    run_of = {i: k for k, run in enumerate(runs) for i in run}
    found: dict[tuple[int, int], tuple[int, int]] = {}
    for i, j, start, stop in row_overlaps(leaves, keys):
        a, b = sorted((run_of[i], run_of[j]))
        lo, hi = found.get((a, b), (start, stop))
        found[(a, b)] = (min(lo, start), max(hi, stop))
    for (a, b), (start, stop) in found.items():
        yield a, b, start, stop


def _end(leaves: Sequence[Provenance], run: Sequence[int]) -> int:
    return max(leaves[i].row_offset + summary(leaves[i]).rows for i in run)


def _run_names(leaves: Sequence[Provenance], x: Sequence[int], y: Sequence[int]) -> str:
    """Two runs as "a.csv and b.csv" (one part each), a longer run by its first and last part
    and the rows it holds."""
    if len(x) == 1 and len(y) == 1:
        return _names(leaves[x[0]], leaves[y[0]])

    def named(run: Sequence[int]) -> str:
        if len(run) == 1:
            return name(leaves[run[0]])
        first, last = leaves[run[0]], leaves[run[-1]]
        rows = f"rows {first.row_offset}..{_end(leaves, run) - 1}"
        return f"{name(first)} .. {name(last)} ({len(run)} parts, {rows})"

    return f"{named(x)} and {named(y)}"


def sequence_overlaps(leaves: Sequence[Provenance], keys: Sequence[frozenset[FileKey]]) -> Iterator[Overlap]:
    """Pairs of parts (sharing no file) whose per-sequence statistics cover a common sequence id,
    in part order: a sequence cut between parts, or a wrong --sequence-offset (or a forgotten
    --row-offset on (B, T) parts). Their rows for those sequences are summed, and the later
    part's token positions start again at 0.

    Not warned: two parts that are each sequence 0 alone, the layout of flat logits (one stream
    of tokens, cut anywhere, whose positions run on across parts). A (B, T) part of one sequence
    after the first is sequence >= 1, so this only misses parts of one sequence each that were
    all given --sequence-offset 0 by mistake.
    """
    ranges = [summary(leaf).sequences for leaf in leaves]
    spans = sorted((r[0], r[0] + r[1], i) for i, r in enumerate(ranges) if r is not None and r[1] > 0)
    pairs = []
    for a, (_, end, i) in enumerate(spans):
        for first, other_end, j in spans[a + 1 :]:
            if first >= end:  # sorted by first sequence: no later span overlaps this one
                break
            if not keys[i] & keys[j] and not ranges[i] == ranges[j] == (0, 1):
                pairs.append((min(i, j), max(i, j), first, min(end, other_end)))
    yield from sorted(pairs)


def name(leaf: Provenance) -> str:
    """A part as a user knows it: its first file's name."""
    files = summary(leaf).files
    if files:
        return next(iter(files.values()))
    return leaf.inputs[0].path if leaf.inputs else f"at row {leaf.row_offset}"


def _names(x: Provenance, y: Provenance) -> str:
    """ "a.csv and b.csv"; parts of the same name (arrays) are told apart by their first row."""
    a, b = name(x), name(y)
    if a == b:
        a, b = f"{a} (from row {x.row_offset})", f"{b} (from row {y.row_offset})"
    return f"{a} and {b}"
