"""Which columns each role reads, why, and what was left out: the JSON ``columns`` object.

A column is chosen either by the user (``--pred-col`` and friends) or by a rule: a conventional
name (``y_pred``, ``label``), "every other column", "every column". Rules never take a pandas
index column (row labels, see ``Reader.index_columns``), and take an id-like column (``id``,
``*_id``, ``index``, ``row``) only when nothing else would be left to score. Whenever a rule
chose, the run gets one note saying what was scored and what was skipped, so no guess is silent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError
from .readers.base import Group, Reader, is_id_name, is_row_label

USER = "user"


@dataclass
class Choice:
    """One role's columns: where from, which, chosen how, and what a rule skipped."""

    reader: Reader
    group: Group  # column positions; None for every column of the file (or the whole array)
    chosen_by: str  # "user" or "rule: ..."
    skipped_index: list[int] = field(default_factory=list)
    skipped_ids: list[int] = field(default_factory=list)

    def names(self) -> list[str] | None:
        """The columns' names; None for an unnamed array (or a CSV without a header) read whole."""
        if self.group is None:
            return list(self.reader.column_names) if self.reader.named() else None
        if not self.reader.named():
            return [str(j) for j in self.group]
        return [self.reader.column_names[j] for j in self.group]

    def to_json(self) -> dict[str, Any]:
        skipped = [
            {"column": self.reader.header_text(j), "reason": "pandas index"} for j in self.skipped_index
        ]
        skipped += [{"column": self.reader.column_names[j], "reason": "id column"} for j in self.skipped_ids]
        return {
            "file": self.reader.display,
            "columns": self.names(),
            "chosen_by": self.chosen_by,
            "skipped": skipped,
        }

    def note(self, role: str) -> list[str]:
        """What a rule did, for people (["preds column 'y_pred' (rule: every column)",
        "skipped pandas index column ''"]); nothing when the user named the columns or the
        rule had nothing to decide."""
        quiet = self.chosen_by in (USER, RULE_EVERY, RULE_WHOLE)
        if quiet and not self.skipped_index and not self.skipped_ids:
            return []
        cols = self.group if self.group is not None else range(len(self.reader.column_names))
        parts = [f"{role} {_listed(self.reader, cols, 'column')} ({self.chosen_by})"]
        if self.skipped_index:
            parts.append(f"skipped pandas index {_listed(self.reader, self.skipped_index, 'column')}")
        if self.skipped_ids:
            parts.append(f"skipped id {_listed(self.reader, self.skipped_ids, 'column')}")
        return parts


RULE_EVERY = "rule: every column"
RULE_WHOLE = "rule: the whole array"
RULE_OTHERS = "rule: every other column"
RULE_NAME = "rule: conventional name"
RULE_ID_NAME = "rule: id-like name"


def _listed(reader: Reader, cols: Sequence[int], what: str) -> str:
    cols = list(cols)
    shown = ", ".join(repr(reader.header_text(j)) for j in cols[:8])
    more = f", ... ({len(cols)} in all)" if len(cols) > 8 else ""
    return f"{what}{'s' if len(cols) != 1 else ''} {shown}{more}"


def data_columns(reader: Reader, taken: Sequence[int] = ()) -> tuple[list[int], list[int], list[int]]:
    """(data, index, ids) among the columns not ``taken``: a pandas index is never data, an
    id-like column is data only when nothing else would be left."""
    index = [j for j in reader.index_columns if j not in taken]
    rest = [j for j in range(len(reader.column_names)) if j not in taken and j not in index]
    ids = [j for j in rest if is_id_name(reader.column_names[j])]
    data = [j for j in rest if j not in ids]
    if not data:  # only id-like names: `row` and `id` label rows, `token_id` holds values
        ids = [j for j in rest if is_row_label(reader.column_names[j])]
        data = [j for j in rest if j not in ids]
    if not data:
        data, ids = rest, []
    return data, index, ids


def whole_file(reader: Reader, taken: Sequence[int] = ()) -> Choice:
    """A file given for one role with no column named: every data column of it (but the
    columns ``taken`` by another role, such as --weight-col)."""
    if not reader.named() and not taken:
        return Choice(reader, None, RULE_WHOLE if _is_array(reader) else RULE_EVERY)
    data, index, ids = (
        data_columns(reader, taken)
        if reader.named()
        else ([j for j in range(len(reader.column_names)) if j not in taken], [], [])
    )
    if not data:
        raise _nothing_left(reader, index)
    if not index and not ids and not taken:
        return Choice(reader, None, RULE_EVERY)  # the plain fast path: nothing to leave out
    return Choice(reader, data, RULE_EVERY, index, ids)


def others(reader: Reader, taken: Sequence[int]) -> Choice:
    """One file, targets known: every other column holds predictions (a wide scores CSV)."""
    data, index, ids = data_columns(reader, taken)
    return Choice(reader, data, RULE_OTHERS, index, ids)  # empty: the caller says what to name


def _nothing_left(reader: Reader, index: Sequence[int]) -> UsageError:
    what = f"besides the pandas index {_listed(reader, index, 'column')} " if index else ""
    return UsageError(
        f"{reader.display}: there is no column {what}left to score; "
        "name the data columns with --pred-col/--target-col"
    )


def _is_array(reader: Reader) -> bool:
    """Arrays (.npy, in-memory) have numbered columns; a CSV without a header has columns."""
    return not hasattr(reader, "has_header")


def find_id(reader: Reader, used: Sequence[int]) -> int | None:
    """The first id-like column not read as data (a named pandas index counts), if any."""
    if not reader.named():
        return None
    return next(
        (j for j, name in enumerate(reader.column_names) if j not in used and is_id_name(name)),
        None,
    )
