"""Class labels that are not column positions: names (``cat``), integers that are not positions
(scikit-learn's ``classes_`` ``[1, 2, 3]`` or ``[-1, 1]``), and bce's text labels.

A classifier's ``predict_proba`` columns follow ``clf.classes_``; its labels are those classes,
not 0..C-1. ``ClassMap`` turns a chunk of labels into the positions of the score columns they
name; ``parse_classes`` reads ``--classes``; ``binary_targets`` turns bce's text labels into 1/0.
Nothing here reads files: text labels arrive as object (or str) arrays from the readers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataProblem, UsageError
from .base import Scratch
from .checks import TARGETS, first_bad_row

Label = int | str
KNOWN_SHOWN = 6  # classes listed in an error message
_INTEGER = re.compile(r"[+-]?\d+(\.0*)?")  # "2", and "2.0" as float class labels are written
#: how pandas (True/False), Polars and JSON (true/false) write a bool: bce's 1 and 0
BOOL_TEXT = {"True": 1.0, "False": 0.0, "true": 1.0, "false": 0.0, "TRUE": 1.0, "FALSE": 0.0}


def parse_classes(value: Any) -> tuple[Label, ...] | None:
    """``--classes cat,dog,bird`` (or a list, or ``clf.classes_``) as a tuple: integers when
    every class is an integer (``1,2,3``, ``[-1, 1]``), else text. Refuses empty names,
    duplicates and fewer than two classes (exit 2)."""
    if value is None:
        return None
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    else:
        try:
            items = list(value)
        except TypeError:
            raise UsageError(f"--classes takes class names separated by commas, not {value!r}") from None
    texts = [_class_text(v) for v in items]
    if any(t == "" for t in texts):
        raise UsageError(f"--classes has an empty class name in {','.join(texts)!r}")
    if len(texts) < 2:
        raise UsageError(f"--classes names {len(texts)} class; give every class, in score-column order")
    classes: tuple[Label, ...] = tuple(texts)
    if all(_INTEGER.fullmatch(t) for t in texts):
        integers = [int(t.split(".")[0]) for t in texts]  # exact, also beyond 2**53
        if any(not -(2**63) <= c < 2**63 for c in integers):
            raise UsageError("--classes has an integer class outside the 64-bit range")
        classes = tuple(integers)
    seen: set[Label] = set()
    for c in classes:
        if c in seen:
            raise UsageError(f"--classes names class {c!r} twice")
        seen.add(c)
    return classes


def _class_text(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value.item() if isinstance(value, np.generic) else value).strip()


def shown_classes(labels: Sequence[Label]) -> str:
    """The first few classes, for a message: ``'cat', 'dog', 'bird'`` or ``1, 2, 3, ... (40 in all)``."""
    head = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in labels[:KNOWN_SHOWN])
    return head + (f", ... ({len(labels)} in all)" if len(labels) > KNOWN_SHOWN else "")


class ClassMap:
    """The class label of each score column, and labels -> column positions.

    ``named_by``: where the labels come from, for messages ("--classes", "the score columns'
    names"). Integer labels are looked up with a sorted search (vectorised); text labels with a
    dict, once per distinct value in a chunk.
    """

    def __init__(self, labels: Sequence[Label], named_by: str) -> None:
        self.labels = tuple(labels)
        self.named_by = named_by
        self.integers = all(isinstance(v, int) for v in self.labels)
        self._text = {str(v): j for j, v in enumerate(self.labels)}
        #: classes that spell numbers, by value: a label ``2.0`` (a float column) is class ``2``
        self._numbers = {n: j for j, v in enumerate(self.labels) if (n := as_number(str(v))) is not None}
        if self.integers:
            array = np.asarray(self.labels, dtype=np.int64)
            self._order = np.argsort(array, kind="stable")
            self._sorted = array[self._order]

    def unknown(self, label: Any) -> str:
        """The message for a label that names no class."""
        if label is None:
            what = "the label is missing (null)"
        elif isinstance(label, str) and not label.strip():
            what = "the label is empty"
        else:
            shown = repr(label) if isinstance(label, str) else str(label)
            what = f"label {shown} is none of the classes"
        hint = "; pass --classes to name them otherwise" if self.named_by != "--classes" else ""
        return f"{what}: the classes are {shown_classes(self.labels)} (from {self.named_by}{hint})"

    def columns_of_numbers(self, ids: NDArray[np.intp], ignored: NDArray[np.bool_]) -> None:
        """Integer labels -> the positions of their score columns, in place (ignored rows get a
        valid position; the caller masks them)."""
        if not self.integers:
            if self.named_by == "--classes":  # classes named on purpose: a label must be one
                self._numbers_by_text(ids, ignored)
            return  # numbers against column names (cat, dog): they are column positions
        pos = np.searchsorted(self._sorted, ids)
        np.minimum(pos, len(self._sorted) - 1, out=pos)
        found = (self._sorted[pos] == ids) | ignored
        if not found.all():
            r = first_bad_row(found)
            raise DataProblem(TARGETS, r, self.unknown(int(ids[r])))
        np.take(self._order, pos, out=ids)

    def _numbers_by_text(self, ids: NDArray[np.intp], ignored: NDArray[np.bool_]) -> None:
        """Integer labels matched to --classes by text (``3`` to ``3``, never to a position)
        when some class is not an integer (``--classes 1,2,3.5``), in place."""
        values, inverse = np.unique(ids, return_inverse=True)
        at = np.zeros(len(values), dtype=np.intp)
        for k, v in enumerate(values.tolist()):
            j = self._numbers.get(float(v))
            if j is None:
                rows = (inverse == k) & ~ignored
                if rows.any():
                    raise DataProblem(TARGETS, int(np.argmax(rows)), self.unknown(v))
                j = 0  # ignored rows only: any valid position, masked by the caller
            at[k] = j
        np.take(at, inverse, out=ids)

    def columns_of_text(
        self, t: NDArray[Any], ignore_index: int, scratch: Scratch
    ) -> tuple[NDArray[np.intp], NDArray[np.bool_] | None, int]:
        """Text labels -> (positions, keep mask or None, rows ignored), as ``CEScorer._ids``
        returns them. The text of the ignore index (``-100``) is ignored unless it is a class.
        One dict lookup per distinct label of the chunk, then a vectorised take."""
        rows = t.shape[0]
        if t.dtype.kind != "O":
            t = t.astype(str)  # a block of a text column that held only integers came as int64
        values, inverse = _distinct(t)
        skip = str(ignore_index)
        at = np.empty(len(values), dtype=np.intp)
        for k, v in enumerate(values):
            j = self._text.get(v) if isinstance(v, str) else None
            if j is None and isinstance(v, str) and (n := as_number(v)) is not None:
                j = self._numbers.get(n)  # 2.0 in a float column, 3.50 by hand: the class's number
            if j is None and v == skip:
                j = -1
            if j is None:
                raise DataProblem(TARGETS, int(np.argmax(inverse == k)), self.unknown(v))
            at[k] = j
        ids = scratch.get("ids", (rows,), np.intp)
        np.take(at, inverse, out=ids)
        ignored = np.less(ids, 0, out=scratch.get("ignored", (rows,), np.bool_))
        n_ignored = int(np.count_nonzero(ignored))
        if n_ignored == 0:
            return ids, None, 0
        ids[ignored] = 0
        return ids, np.logical_not(ignored, out=scratch.get("keep", (rows,), np.bool_)), n_ignored


def check_binding(classmap: ClassMap | None, columns: int, text: NDArray[Any] | None) -> None:
    """On the first chunk: the classes name every score column, and text labels (``text``)
    have classes to be matched to (exit 2: the fix is --classes)."""
    if classmap is not None and len(classmap.labels) != columns:
        raise UsageError(
            f"{classmap.named_by} names {len(classmap.labels)} classes but the scores have {columns} "
            "columns; give the class of every score column, in order"
        )
    if text is not None and classmap is None:
        first = next(iter(text.tolist()), None)
        raise DataProblem(
            TARGETS,
            0,
            f"the labels are text ({first!r}) but the score columns have no names: pass --classes "
            "with the class of each score column, in order (clf.classes_)",
            ambiguous=True,
        )


def _distinct(t: NDArray[Any]) -> tuple[list[Any], NDArray[np.intp]]:
    """The distinct values of a 1-D array (in order of first appearance) and each row's index
    among them: a dict pass, as fast as np.unique on text and fine with None (a null)."""
    index: dict[Any, int] = {}
    setdefault = index.setdefault
    codes = np.fromiter((setdefault(v, len(index)) for v in t.tolist()), dtype=np.intp, count=len(t))
    return list(index), codes


def binary_targets(t: NDArray[Any], positive: str | None, seen: list[str]) -> NDArray[np.float64]:
    """bce's text labels as 1/0: True/False (and true/false) always, numbers written as text as
    numbers; other text needs ``positive`` (the class whose probability the predictions are),
    and at most one other class.

    ``seen``: the other class met so far, and POSITIVE_SEEN once the positive class was (kept by
    the scorer across chunks), so a third class in
    a later chunk is refused too. Two classes without ``positive``: exit 2 naming both (the fix
    is the option); a third class, or text among numbers: exit 3.
    """
    if t.dtype.kind != "O":
        t = t.astype(str)
    values, inverse = _distinct(t)
    at = np.empty(len(values), dtype=np.float64)
    texts = [x for x in dict.fromkeys("" if v is None else str(v).strip() for v in values) if x]
    classes = [s for s in texts if s and s not in BOOL_TEXT and as_number(s) is None]
    if positive is not None and positive in texts and POSITIVE_SEEN not in seen:
        seen.append(POSITIVE_SEEN)  # before the loop: its order is not the file's
    for k, v in enumerate(values):
        row = int(np.argmax(inverse == k))
        if v is None or not str(v).strip():
            raise DataProblem(TARGETS, row, f"the label is {'missing (null)' if v is None else 'empty'}")
        text = str(v).strip()
        if positive is not None:
            at[k] = _positive_value(text, positive, seen, row)
        elif text in classes:
            _refuse_classes(text, classes, len(classes) < len(texts), row)
        else:
            at[k] = BOOL_TEXT[text] if text in BOOL_TEXT else float(text)
    return at[inverse]


POSITIVE_SEEN = "\x00"  # kept in ``seen`` once the --positive class has been met


def _positive_value(text: str, positive: str, seen: list[str], row: int) -> float:
    if text == positive:
        if POSITIVE_SEEN not in seen:
            seen.append(POSITIVE_SEEN)
        return 1.0
    others = [c for c in seen if c != POSITIVE_SEEN]
    if not others:
        seen.insert(0, text)
        return 0.0
    if text == others[0]:
        return 0.0
    if POSITIVE_SEEN in seen:
        detail = f"label {text!r} is a third class besides {positive!r} (--positive) and {others[0]!r}"
    else:  # two labels so far, neither of them the positive class: a misspelled --positive?
        detail = (
            f"labels {others[0]!r} and {text!r} are both not --positive {positive!r} (is it "
            "spelled as in the file?)"
        )
    raise DataProblem(TARGETS, row, f"{detail}; bce needs two classes")


def _refuse_classes(text: str, classes: list[str], among_numbers: bool, row: int) -> None:
    """Text labels without --positive: say which option fixes it, or why none does."""
    if among_numbers:
        raise DataProblem(TARGETS, row, f"label {text!r} is neither a number nor True/False")
    if len(classes) > 2:
        raise DataProblem(
            TARGETS, row, f"the labels are more than two classes ({shown_classes(classes)}); bce needs two"
        )
    which = f"the classes {classes[0]!r} and {classes[1]!r}" if len(classes) == 2 else f"the class {text!r}"
    raise DataProblem(
        TARGETS,
        row,
        f"the labels are text ({which}), not 0/1 or True/False: pass --positive with the class whose "
        "probability the predictions are",
        ambiguous=True,
    )


def as_number(text: str) -> float | None:
    """The number a text label spells (``"3"``, ``"-1.0"``), or None for a class name."""
    try:
        return float(text)
    except ValueError:
        return None


def check_classes(classes: Sequence[Label] | None, names: Sequence[str] | None) -> None:
    """--classes beside score columns whose names are those same classes in another order: the
    columns would be relabelled against their names, which is never meant (exit 2)."""
    if classes is None or names is None:
        return
    texts = [str(c) for c in classes]
    if sorted(texts) == sorted(names) and texts != list(names):
        raise UsageError(
            f"--classes {','.join(texts)} names the score columns' own classes in another order "
            f"({','.join(names)}); the columns are matched by their names: drop --classes"
        )
