"""Which file, and which row of it, a row of a merged evaluation came from.

A state made of parts (the shards of a directory or glob, or states merged with ``losscli
merge``) keeps each part's provenance: its input files, its row offset and how many rows it
read. So the file and the file's own row of a global row follow from the state alone, and a
worst example of a 1,000-shard run says ``part-00412.parquet`` row 17 beside its row.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from ..state.evalstate import EvalState
from ..state.merge import leaves_of
from ..state.overlaps import summary

#: the role whose file names a row: the predictions (logits), else the log-probabilities
_NAMING_ROLES = ("preds", "logprobs")


def files_root(state: EvalState) -> str | None:
    """The folder that every part's file is under (the shards' common folder), so the table
    can tell ``split=test/part-0.parquet`` from ``split=train/part-0.parquet`` even when the
    examples shown all come from one of them."""
    import os

    paths = {
        i.path
        for leaf in leaves_of(state)
        for i in leaf.inputs
        if i.role in _NAMING_ROLES and os.path.isabs(i.path)
    }
    if not paths:
        return None
    return os.path.commonpath(sorted(paths)) if len(paths) > 1 else os.path.dirname(paths.pop())


def row_files(state: EvalState, rows: Sequence[int]) -> list[tuple[str, int]] | None:
    """(file, row in that file) of each global row, for a state of several parts; None for a
    single run's state (its rows are its file's rows) or when a part names no file."""
    if not state.header.provenance.parts:
        return None
    spans: list[tuple[int, int, str, int | None]] = []
    first_row: dict[str, int] = {}  # a file read in parts that did not record their ranges
    for leaf in leaves_of(state):
        named = next((i for r in _NAMING_ROLES for i in leaf.inputs if i.role == r), None)
        if named is None:
            return None
        path = named.path
        # the global row of the file's row 0: known from the range the part read, if it says
        base = None if named.span is None else leaf.row_offset - named.span[0]
        spans.append((leaf.row_offset, summary(leaf).rows, path, base))
        first_row[path] = min(first_row.get(path, leaf.row_offset), leaf.row_offset)
    spans.sort()
    starts = [s[0] for s in spans]
    out = []
    for row in rows:
        at = bisect.bisect_right(starts, row) - 1
        if at < 0 or row >= spans[at][0] + spans[at][1]:
            out.append(("", -1))  # in no part: a state merged by hand; said as unknown
            continue
        path, base = spans[at][2], spans[at][3]
        out.append((path, row - (first_row[path] if base is None else base)))
    return out
