"""``ClassTally``: ce --per-class, per class its support, loss, hits and predicted probability,
and the C x C confusion counts (exact up to ``MAX_CLASSES``).

Counts are exact int64; the weighted sums are compensated (two-sum) per class, so merging is
associative to far below 1e-12 and a report is a function of the tally alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .calibration import two_sum
from .plain import Arrays, Meta, StateFileError, fields, take, want_int

#: the largest class count --per-class keeps a C x C matrix for (8 MB of int64)
MAX_CLASSES = 1000
#: the sums kept per class: weight, weight x loss, weight x hit, weight x p(class) over all rows
SUMS = ("weight", "loss", "hits", "prob")


@dataclass
class ClassTally:
    classes: int
    support: NDArray[np.int64] = field(init=False)
    hi: NDArray[np.float64] = field(init=False)  # (classes, 4)
    lo: NDArray[np.float64] = field(init=False)
    confusion: NDArray[np.int64] = field(init=False)  # (target, predicted) counts

    def __post_init__(self) -> None:
        c = self.classes
        self.support = np.zeros(c, dtype=np.int64)
        self.hi, self.lo = np.zeros((c, len(SUMS))), np.zeros((c, len(SUMS)))
        self.confusion = np.zeros((c, c), dtype=np.int64)

    def add(
        self, support: NDArray[np.int64], sums: NDArray[np.float64], confusion: NDArray[np.int64]
    ) -> None:
        self.support += support
        s, err = two_sum(self.hi, sums)
        self.hi, self.lo = s, self.lo + err
        self.confusion += confusion

    def merge(self, other: ClassTally) -> ClassTally:
        if other.classes != self.classes:
            raise ValueError("cannot merge per-class tallies of different class counts")
        out = ClassTally(self.classes)
        out.support = self.support + other.support
        s, err = two_sum(self.hi, other.hi)
        out.hi, out.lo = s, self.lo + other.lo + err
        out.confusion = self.confusion + other.confusion
        return out

    def rows(self, total_weight: float) -> list[dict[str, Any]]:
        """Per class: support, mean loss, accuracy (weighted as the loss), mean p(class) over all rows."""
        sums = self.hi + self.lo
        out = []
        for c in range(self.classes):
            w = float(sums[c, 0])
            out.append(
                {
                    "class": c,
                    "support": int(self.support[c]),
                    "loss": float(sums[c, 1]) / w if w > 0 else math.nan,
                    "accuracy": float(sums[c, 2]) / w if w > 0 else math.nan,
                    "mean_probability": float(sums[c, 3]) / total_weight if total_weight > 0 else math.nan,
                }
            )
        return out

    def confusions(self, k: int) -> list[dict[str, Any]]:
        """The k largest off-diagonal counts (ties: lower target, then lower predicted class)."""
        m = self.confusion.copy()
        np.fill_diagonal(m, 0)
        flat = np.flatnonzero(m)
        order = flat[np.lexsort((flat, -m.reshape(-1)[flat]))][:k]
        out = []
        for i in order.tolist():
            t, p = divmod(i, self.classes)
            n = int(m[t, p])
            out.append({"target": t, "predicted": p, "count": n, "share": n / int(self.support[t])})
        return out

    def to_plain(self) -> tuple[Meta, Arrays]:
        arrays: Arrays = {"support": self.support, "hi": self.hi, "lo": self.lo, "confusion": self.confusion}
        return {"classes": self.classes}, arrays

    @classmethod
    def from_plain(cls, meta: Any, arrays: Arrays, where: str = "per_class") -> ClassTally:
        fields(meta, where, {"classes"})
        c = want_int(meta["classes"], f"{where}.classes", 2)
        if c > MAX_CLASSES or set(arrays) != {"support", "hi", "lo", "confusion"}:
            raise StateFileError(f"not a valid losscli state: {where} is malformed")
        out = cls(c)
        out.support = take(arrays, "support", np.int64, (c,), where)
        out.hi = take(arrays, "hi", np.float64, (c, len(SUMS)), where)
        out.lo = take(arrays, "lo", np.float64, (c, len(SUMS)), where)
        out.confusion = take(arrays, "confusion", np.int64, (c, c), where)
        if int(out.confusion.min()) < 0 or not np.array_equal(out.confusion.sum(axis=1), out.support):
            raise StateFileError(
                f"not a valid losscli state: {where}.confusion does not add up to the support"
            )
        return out
