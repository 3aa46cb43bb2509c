"""``ClassTally``: ce --per-class, per class its support, loss, hits and predicted probability,
and the C x C confusion counts (exact up to ``MAX_CLASSES``).

Counts are exact int64; the weighted sums are compensated (two-sum) per class, so merging is
associative to far below 1e-12 and a report is a function of the tally alone. A weighted run
also keeps the C x C confusion *weights* (compensated too): its loss and accuracy are weighted,
so its confused pairs are ranked, and their share of the target taken, by weight as well; the
row counts stay beside them, exact. An unweighted run keeps no such matrix (its weights would
be the counts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..stats.moments import array_two_sum as two_sum
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
    #: weighted runs: the (target, predicted) weight sums as hi, lo; None until a weighted chunk
    confusion_weight: tuple[NDArray[np.float64], NDArray[np.float64]] | None = field(init=False)

    def __post_init__(self) -> None:
        c = self.classes
        self.support = np.zeros(c, dtype=np.int64)
        self.hi, self.lo = np.zeros((c, len(SUMS))), np.zeros((c, len(SUMS)))
        self.confusion = np.zeros((c, c), dtype=np.int64)
        self.confusion_weight = None

    def add(
        self,
        support: NDArray[np.int64],
        sums: NDArray[np.float64],
        confusion: NDArray[np.int64],
        confusion_weight: NDArray[np.float64] | None = None,
    ) -> None:
        """One chunk's counts and sums; ``confusion_weight`` (C x C) when the rows are weighted."""
        if confusion_weight is not None:  # before the counts grow: they stand for earlier rows
            hi, lo = self.weights()
            w, err = two_sum(hi, confusion_weight)
            self.confusion_weight = (w, lo + err)
        self.support += support
        s, err = two_sum(self.hi, sums)
        self.hi, self.lo = s, self.lo + err
        self.confusion += confusion

    def weights(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The confusion weights as (hi, lo); a part without any (unweighted, or no weighted
        chunk yet) weighs each row 1, so its weights are its counts."""
        if self.confusion_weight is not None:
            return self.confusion_weight
        return self.confusion.astype(np.float64), np.zeros(self.confusion.shape)

    def confusion_weights(self) -> NDArray[np.float64]:
        hi, lo = self.weights()
        return hi + lo

    def merge(self, other: ClassTally) -> ClassTally:
        if other.classes != self.classes:
            raise ValueError("cannot merge per-class tallies of different class counts")
        out = ClassTally(self.classes)
        out.support = self.support + other.support
        s, err = two_sum(self.hi, other.hi)
        out.hi, out.lo = s, self.lo + other.lo + err
        out.confusion = self.confusion + other.confusion
        if self.confusion_weight is not None or other.confusion_weight is not None:
            (a, a_lo), (b, b_lo) = self.weights(), other.weights()
            s, err = two_sum(a, b)
            out.confusion_weight = (s, a_lo + b_lo + err)
        return out

    def rows(self, total_weight: float, weighted: bool = False) -> list[dict[str, Any]]:
        """Per class: support (rows), with ``weighted`` its weight, mean loss, accuracy (weighted
        as the loss), mean p(class) over all rows."""
        sums = self.hi + self.lo
        out = []
        for c in range(self.classes):
            w = float(sums[c, 0])
            row: dict[str, Any] = {"class": c, "support": int(self.support[c])}
            if weighted:
                row["weight"] = w
            row.update(
                loss=float(sums[c, 1]) / w if w > 0 else math.nan,
                accuracy=float(sums[c, 2]) / w if w > 0 else math.nan,
                mean_probability=float(sums[c, 3]) / total_weight if total_weight > 0 else math.nan,
            )
            out.append(row)
        return out

    def confusions(self, k: int, weighted: bool = False) -> list[dict[str, Any]]:
        """The k largest off-diagonal pairs (ties: lower target, then lower predicted class):
        by count, each its share of the target's rows; ``weighted``: by weight, each its weight
        and its share of the target's weight (the same weighting as the loss and accuracy)."""
        m = self.confusion.copy()
        np.fill_diagonal(m, 0)
        size = m.astype(np.float64)
        if weighted:
            size = self.confusion_weights()
            np.fill_diagonal(size, 0.0)
        flat = np.flatnonzero(size)
        order = flat[np.lexsort((flat, -size.reshape(-1)[flat]))][:k]
        class_weight = (self.hi + self.lo)[:, 0]
        out = []
        for i in order.tolist():
            t, p = divmod(i, self.classes)
            pair: dict[str, Any] = {"target": t, "predicted": p, "count": int(m[t, p])}
            if weighted:
                w = float(size[t, p])
                pair.update(weight=w, share=w / float(class_weight[t]))
            else:
                pair["share"] = int(m[t, p]) / int(self.support[t])
            out.append(pair)
        return out

    def to_plain(self) -> tuple[Meta, Arrays]:
        """``{classes}``; ``support``, ``hi``, ``lo``, ``confusion`` and, weighted, the confusion
        weights as ``confusion_hi``, ``confusion_lo`` (C x C float64)."""
        arrays: Arrays = {"support": self.support, "hi": self.hi, "lo": self.lo, "confusion": self.confusion}
        if self.confusion_weight is not None:
            arrays["confusion_hi"], arrays["confusion_lo"] = self.confusion_weight
        return {"classes": self.classes}, arrays

    @classmethod
    def from_plain(cls, meta: Any, arrays: Arrays, where: str = "per_class") -> ClassTally:
        fields(meta, where, {"classes"})
        c = want_int(meta["classes"], f"{where}.classes", 2)
        plain, weighted = {"support", "hi", "lo", "confusion"}, {"confusion_hi", "confusion_lo"}
        if c > MAX_CLASSES or set(arrays) not in (plain, plain | weighted):
            raise StateFileError(f"not a valid losscli state: {where} is malformed")
        out = cls(c)
        out.support = take(arrays, "support", np.int64, (c,), where)
        out.hi = take(arrays, "hi", np.float64, (c, len(SUMS)), where)
        out.lo = take(arrays, "lo", np.float64, (c, len(SUMS)), where)
        out.confusion = take(arrays, "confusion", np.int64, (c, c), where)
        if "confusion_hi" in arrays:
            out.confusion_weight = (
                take(arrays, "confusion_hi", np.float64, (c, c), where),
                take(arrays, "confusion_lo", np.float64, (c, c), where),
            )
            if not (np.isfinite(out.confusion_weights()).all() and out.confusion_weights().min() >= 0):
                raise StateFileError(
                    f"not a valid losscli state: {where}.confusion_hi holds a negative or non-finite weight"
                )
        if int(out.confusion.min()) < 0 or not np.array_equal(out.confusion.sum(axis=1), out.support):
            raise StateFileError(
                f"not a valid losscli state: {where}.confusion does not add up to the support"
            )
        return out
