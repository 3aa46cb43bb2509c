"""Column specs: what ``--pred-col``, ``--target-col``, ``--weight-col`` and ``--exclude-col``
accept, resolved against one reader's columns. A 1000-class file should need ``'p_*'`` or
``1-1000``, not a thousand names.

A spec is read in this order, so that every column stays reachable whatever its name holds:

1. The whole spec, when it is exactly a column's name, is that column (a name with a comma, a
   ``*`` or a ``-`` in it).
2. Otherwise the spec is split at commas, and each part is, first match wins:
   a column's exact name; a 0-based position (``3``); a range of positions with an inclusive end
   (``1-10`` is the ten columns 1 to 10, ``3-`` runs to the last), counted as the columns stand
   in the file, index columns included; a glob (``p_*``, ``prob_[0-9]*``: ``fnmatch``, case
   sensitive) over the column names. A run of parts that together spell a name with commas is
   that name (``x,a,b`` finds ``x`` and ``a,b``).

A name or position is taken as given, even a pandas index or an id column. A range or a glob
never takes one of those, nor a column in ``skip`` (another role's columns in the same file). A
range or glob that takes nothing is a usage error naming it and listing the columns. The result
keeps the spec's order, the file's order within a range or glob, and each column once.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import UsageError
from .base import is_id_name

if TYPE_CHECKING:
    from .base import Reader

_RANGE = re.compile(r"(\d+)-(\d*)")
_GLOB_CHARS = frozenset("*?[")
#: how many columns an error message lists
SHOWN = 8


@dataclass(frozen=True)
class _Columns:
    """One reader's columns as a spec sees them."""

    reader: Reader
    count: int
    has_names: bool  # a header or a format's field names, not positions written as names
    excluded: frozenset[int]  # never taken by a range or glob: index, ids, skip
    positions: dict[str, int] | None  # name -> first column of that name (None: numbered)

    def by_name(self, name: str) -> int | None:
        if self.positions is not None:
            return self.positions.get(name)
        names = self.reader.column_names  # an array's numbered columns look themselves up
        return names.index(name) if name in names else None


def is_pattern(part: str) -> bool:
    """A part that may stand for several columns (a range or a glob), unless it is a name."""
    return bool(_RANGE.fullmatch(part)) or not _GLOB_CHARS.isdisjoint(part)


def uses_patterns(reader: Reader, spec: str) -> bool:
    """Whether resolving ``spec`` expanded a range or a glob (worth saying what it took)."""
    if spec in reader.column_names:
        return False
    return any(is_pattern(p.strip()) and p.strip() not in reader.column_names for p in spec.split(","))


def resolve_spec(reader: Reader, spec: str, skip: Collection[int] = ()) -> list[int]:
    """The column positions ``spec`` names in ``reader`` (see the module's rules)."""
    if spec in reader.column_names:
        return [reader.column_names.index(spec)]
    cols = _columns(reader, skip)
    parts = [p.strip() for p in spec.split(",")]
    comma_names = _comma_names(reader)
    out: dict[int, None] = {}  # ordered, each column once
    i = 0
    while i < len(parts):
        joined, width = _joined_name(parts, i, comma_names)
        if joined is not None:
            out.setdefault(joined)
            i += width
            continue
        part = parts[i]
        i += 1
        if part:
            out.update(dict.fromkeys(_resolve_part(cols, part)))
    return list(out)


def _columns(reader: Reader, skip: Collection[int]) -> _Columns:
    names = reader.column_names
    named = reader.named() and (reader.header_row or not reader.delimited)
    excluded = set(reader.index_columns) | set(skip)
    if named:
        excluded |= {j for j, name in enumerate(names) if is_id_name(name)}
    positions: dict[str, int] | None = None
    if reader.named():  # one pass, not one per part (a list of 1000 names)
        positions = {}
        for j, name in enumerate(names):
            positions.setdefault(name, j)
    return _Columns(reader, len(names), named, frozenset(excluded), positions)


def _comma_names(reader: Reader) -> dict[str, int]:
    """Column names holding a comma (rare: usually none, and nothing to join)."""
    if not reader.named():
        return {}
    return {name: j for j, name in enumerate(reader.column_names) if "," in name}


def _joined_name(parts: Sequence[str], i: int, comma_names: dict[str, int]) -> tuple[int | None, int]:
    """The longest run of parts from ``i`` that spells a name with commas: (its column, parts)."""
    if not comma_names:
        return None, 0
    most = max(name.count(",") for name in comma_names) + 1
    for width in range(min(most, len(parts) - i), 1, -1):
        name = ",".join(parts[i : i + width])
        for candidate in (name, name.strip()):
            if candidate in comma_names:
                return comma_names[candidate], width
    return None, 0


def _resolve_part(cols: _Columns, part: str) -> list[int]:
    """One comma-separated part: a name, a position, a range or a glob."""
    j = cols.by_name(part)
    if j is not None:
        return [j]
    ranged = _RANGE.fullmatch(part)
    if ranged:
        return _range(cols, part, int(ranged[1]), int(ranged[2]) if ranged[2] else None)
    if not _GLOB_CHARS.isdisjoint(part):
        return _glob(cols, part)
    return [cols.reader.resolve(part)]  # a position, or the reader's own "no column" error


def _range(cols: _Columns, part: str, start: int, stop: int | None) -> list[int]:
    last = cols.count - 1
    end = last if stop is None else stop
    where = f"{cols.reader.display}: column range {part!r}"
    if end < start:
        raise UsageError(f"{where} ends before it starts; write START-END with START <= END (0-based)")
    if end > last or start > last:
        raise UsageError(
            f"{where} runs past the last column: there are {cols.count} columns, numbered 0 to {last}; "
            f"write {start}- for every column from {start} on"
        )
    taken = [j for j in range(start, end + 1) if j not in cols.excluded]
    if not taken:
        raise UsageError(f"{where} {_only_excluded(cols, range(start, end + 1))}")
    return taken


def _glob(cols: _Columns, part: str) -> list[int]:
    where = f"{cols.reader.display}: column pattern {part!r}"
    if not cols.has_names:
        what = "the file has no header" if cols.reader.delimited else "an array's columns have no names"
        raise UsageError(
            f"{where} needs column names, but {what}: its columns are positions 0 to {cols.count - 1}; "
            "select them with positions or ranges such as 1-10 or 3-"
            + (", or give --header if the first row names them" if cols.reader.delimited else "")
        )
    from fnmatch import fnmatchcase  # only when a glob is given

    names = cols.reader.column_names
    matched = [j for j in range(cols.count) if fnmatchcase(names[j], part)]
    taken = [j for j in matched if j not in cols.excluded]
    if taken:
        return taken
    if matched:
        raise UsageError(f"{where} {_only_excluded(cols, matched)}")
    raise UsageError(
        f"{where} matches no column (patterns are case-sensitive); columns are "
        f"{_shown(cols, range(cols.count))}"
    )


def _only_excluded(cols: _Columns, within: Sequence[int]) -> str:
    """Why a range or glob took nothing although columns were there."""
    return (
        f"takes only {_shown(cols, within)}: a pandas index, id columns and the columns of another "
        "role are never taken by a range or pattern; name such a column to read it"
    )


def _shown(cols: _Columns, within: Sequence[int]) -> str:
    return shown_columns(cols.reader, within)


def shown_columns(reader: Reader, within: Sequence[int]) -> str:
    """Up to a handful of columns, by name, and how many there are."""
    js = list(within)
    shown = ", ".join(repr(reader.header_text(j)) for j in js[:SHOWN])
    return shown + (f", ... ({len(js)} in all)" if len(js) > SHOWN else "")
