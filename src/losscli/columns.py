"""Which columns each role reads, why, and what was left out: the JSON ``columns`` object.

A column is chosen either by the user (``--pred-col`` and friends) or by a rule: a conventional
name (``y_pred``, ``label``), "every other column", "every column". Rules never take a pandas
index column (row labels, see ``Reader.index_columns``), and take an id-like column (``id``,
``*_id``, ``index``, ``row``) only when nothing else would be left to score. Whenever a rule
chose, the run gets one note saying what was scored and what was skipped, so no guess is silent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import UsageError
from .readers.base import Group, Reader, is_id_name, is_row_label
from .readers.colspec import uses_patterns

USER = "user"


@dataclass
class Choice:
    """One role's columns: where from, which, chosen how, and what a rule skipped."""

    reader: Reader
    group: Group  # column positions; None for every column of the file (or the whole array)
    chosen_by: str  # "user" or "rule: ..."
    skipped_index: list[int] = field(default_factory=list)
    skipped_ids: list[int] = field(default_factory=list)
    paired: str | None = None  # how this role's columns were matched to the other file's
    spec: str | None = None  # the user's column spec as given (--pred-col 'p_*')
    excluded: list[int] = field(default_factory=list)  # taken away by --exclude-col
    exclude_spec: str | None = None  # --exclude-col as given

    def positions(self) -> list[int]:
        """The column positions read, in order (every column when the group is None)."""
        return list(range(len(self.reader.column_names))) if self.group is None else list(self.group)

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
        out: dict[str, Any] = {
            "file": self.reader.display,
            "columns": self.names(),
            "chosen_by": self.chosen_by,
            "skipped": skipped,
        }
        if self.paired is not None:
            out["paired"] = self.paired
        if self.spec is not None:
            out["spec"] = self.spec
        if self.exclude_spec is not None:
            removed = [self.reader.header_text(j) for j in self.excluded]
            out["exclude"] = {"spec": self.exclude_spec, "columns": removed}
        return out

    def expanded(self) -> bool:
        """The user's spec held a range or a glob: what it took is worth a line."""
        return self.spec is not None and uses_patterns(self.reader, self.spec)

    def note(self, role: str) -> list[str]:
        """What a rule did, for people (["preds column 'y_pred' (rule: every column)",
        "skipped pandas index column ''"]); nothing when the user named the columns or the
        rule had nothing to decide."""
        cols = self.positions()
        # a whole file of one column, or an array, leaves nothing to decide; several named
        # columns taken by a rule are a choice worth a line (an unnamed index looks like data)
        quiet = (self.chosen_by == USER and not self.expanded()) or (
            self.chosen_by in (RULE_EVERY, RULE_WHOLE) and (len(cols) == 1 or not has_names(self.reader))
        )
        said = self.skipped_index or self.skipped_ids or self.excluded or self.paired is not None
        if quiet and not said:
            return []
        how = f"from {self.spec!r}" if self.chosen_by == USER and self.spec is not None else self.chosen_by
        parts = [f"{role} {_listed(self.reader, cols, 'column')} ({how})"]
        if self.paired is not None:
            parts.append(self.paired)
        if self.excluded:
            parts.append(f"excluded {_listed(self.reader, self.excluded, 'column')} (--exclude-col)")
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


def has_names(reader: Reader) -> bool:
    """Columns named by a person (a header, Parquet fields), not numbered by losscli."""
    return reader.named() and (reader.header_row or not reader.delimited)


def pair_by_name(preds: Choice, targets: Choice) -> tuple[Choice, Choice, str | None]:
    """Two files of several named columns each: row i's outputs must meet by name, not by the
    order a writer happened to use (``df[["qty", "price"]]`` against ``price,qty``).

    The same names in another order: the side a rule chose is reordered to the other's order,
    and the note says so. Different names: paired by position, with a warning (returned), since
    a shared column such as a named index would then be scored as an output. Columns the user
    named on both sides are paired as given.
    """
    if not (has_names(preds.reader) and has_names(targets.reader)):
        return preds, targets, None
    p_cols, t_cols = preds.positions(), targets.positions()
    if len(p_cols) < 2 or len(p_cols) != len(t_cols):
        return preds, targets, None
    p_names = [preds.reader.column_names[j] for j in p_cols]
    t_names = [targets.reader.column_names[j] for j in t_cols]
    if p_names == t_names or (preds.chosen_by == USER and targets.chosen_by == USER):
        return preds, targets, None
    if sorted(p_names) == sorted(t_names) and len(set(p_names)) == len(p_names):
        if targets.chosen_by != USER:
            order = [t_cols[t_names.index(n)] for n in p_names]
            targets = replace(targets, group=order, paired="targets' columns reordered to pair by name")
        else:
            order = [p_cols[p_names.index(n)] for n in t_names]
            preds = replace(preds, group=order, paired="predictions' columns reordered to pair by name")
        return preds, targets, None
    pairs = ", ".join(f"{a!r} with {b!r}" for a, b in list(zip(p_names, t_names, strict=True))[:6])
    shared = [n for n in p_names if n in t_names]
    why = f" (column {shared[0]!r} is in both files: if it labels rows, it is being scored)" if shared else ""
    warning = (
        f"{preds.reader.display} and {targets.reader.display} name their columns differently, so they "
        f"were paired by position: {pairs}{why}; name them with --pred-col/--target-col"
    )
    return preds, targets, warning


def class_labels(scores: Choice) -> tuple[list[int] | None, str | None]:
    """ce's score columns named by integer class labels that are not their positions (what
    ``pd.DataFrame(proba, columns=clf.classes_)`` writes for classes ``[1, 2, 3]``, or the
    columns in another order): the labels, and a note saying they are matched by name. pandas'
    default names ``0..C-1`` are labels and positions alike: None."""
    if not has_names(scores.reader):
        return None, None
    names = [scores.reader.column_names[j].strip() for j in scores.positions()]
    if not all(_INTEGER.fullmatch(n) for n in names):
        return None, None
    labels = [int(float(n)) for n in names]  # float labels name their columns "2.0"
    if labels == list(range(len(labels))) or len(set(labels)) != len(labels):
        return None, None
    shown = ", ".join(f"{v} -> column {n!r}" for v, n in list(zip(labels, names, strict=True))[:4])
    return (
        labels,
        f"class labels are matched to the score columns by name ({shown}{', ...' if len(names) > 4 else ''})",
    )


_INTEGER = re.compile(r"-?\d+(\.0+)?")  # "2", and "2.0" as float class labels are written


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
    return not reader.delimited


def find_id(reader: Reader, used: Sequence[int]) -> int | None:
    """The first id-like column not read as data (a named pandas index counts), if any."""
    if not reader.named():
        return None
    return next(
        (j for j, name in enumerate(reader.column_names) if j not in used and is_id_name(name)),
        None,
    )
