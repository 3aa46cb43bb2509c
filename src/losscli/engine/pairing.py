"""Rows paired by position, checked where the files say more: the pandas indexes of the
predictions' and the targets' files (``df.to_csv(path)`` writes one) compared row by row, so
frames written in different orders are refused instead of scored against the wrong rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError

#: the roles that stream each level of both files' pandas index (a suffix per level: 0, 1, ...)
PRED_INDEX = "pred_index"
TARGET_INDEX = "target_index"


def id_text(ids: NDArray[Any]) -> NDArray[Any]:
    """Ids as text, to compare a CSV's ids (text) with a Parquet file's (often integers)."""
    return np.array([x if isinstance(x, str) else str(x) for x in ids.tolist()], dtype=object)


class IndexCheck:
    """Both files were written with their pandas index: row i should carry the same labels in
    each (every level of a MultiIndex). A difference where one side has been 0, 1, 2, ... all
    along is a fresh index (``pd.DataFrame(model.predict(X_test))`` beside ``y_test``, whose
    index the split shuffled), which pairs by position as it should, and ends the check;
    otherwise the frames were written in different orders (one shuffled or sorted)."""

    def __init__(self) -> None:
        self.fresh = [True, True]  # each side's index has been its file's rows so far
        self.on = True  # off once a fresh index explains a difference

    def copy(self) -> IndexCheck:
        twin = IndexCheck()
        twin.fresh, twin.on = list(self.fresh), self.on
        return twin

    def check(
        self, pairs: list[tuple[NDArray[Any], NDArray[Any]]], start: int, offset: int, labels: dict[str, str]
    ) -> None:
        """``start``: the file's own row of the chunk's first; ``offset``: the whole input's."""
        if not self.on:
            return
        mine, theirs = pairs[0]
        rows = np.arange(start, start + len(mine))
        for side, values in enumerate((mine, theirs)):
            if self.fresh[side]:  # a MultiIndex is never a fresh index
                fresh = len(pairs) == 1 and values.dtype.kind in "iu"
                self.fresh[side] = fresh and bool(np.array_equal(values, rows))
        differ = np.zeros(len(mine), dtype=bool)
        for a, b in pairs:
            level = np.asarray(a != b, dtype=bool)
            if level.any() and a.dtype != b.dtype:
                level = np.asarray(id_text(a) != id_text(b), dtype=bool)
            differ |= level
        if not differ.any():
            return
        if any(self.fresh):
            self.on = False
            return
        r = int(np.argmax(differ))
        shown = [tuple(x[r : r + 1].tolist()[0] for x in side) for side in zip(*pairs, strict=True)]
        a_shown, b_shown = (v[0] if len(pairs) == 1 else v for v in shown)
        raise InputError(
            f"row {offset + r}: {labels.get(PRED_INDEX + '0')} has pandas index {a_shown!r} but "
            f"{labels.get(TARGET_INDEX + '0')} has {b_shown!r}: both carry row labels, in different "
            "orders (a shuffled or sorted frame kept its index); sort both by it (sort_index()), or "
            "if the rows do match by position, drop it (to_csv(index=False), reset_index(drop=True))"
        )
