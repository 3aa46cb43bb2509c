"""``CalibrationTally``: the reliability bins of bce and ce (``--calibration``, ``--bins``).

Per equal-width confidence bin over [0, 1]: the exact row count and compensated sums (two-sum,
as ``CompensatedVector``) of the weight, weight x confidence and weight x observed outcome;
beside them the compensated weighted sum of the per-row Brier score. Every figure (the
reliability table, ECE, MCE, Brier) is a function of these sums, and merging adds them, so it
is associative to far below 1e-12 and the counts are exact.

The slots are torchmetrics' (engine/calibration_edges.py): ``bins`` bins over its linspace
edges, a value on an edge in the upper bin (``bucketize(..., right=True) - 1``), and one more
slot (index ``bins``) for confidences of exactly 1.0, which ECE and MCE count as a bin of its
own; scikit-learn's ``calibration_curve`` puts an edge value in the lower bin and 1.0 in the
last, so the two agree on data with no value on an edge (1.0 included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..stats.moments import array_two_sum as two_sum
from .plain import Arrays, Meta, StateFileError, fields, take, want_int

F64 = NDArray[np.float64]


#: the sums kept per bin: weight, weight x confidence, weight x observed
SUMS = ("weight", "confidence", "observed")


@dataclass
class CalibrationTally:
    bins: int
    counts: NDArray[np.int64] = field(init=False)
    hi: F64 = field(init=False)  # (bins + 1, 3): the last slot holds the confidences of exactly 1.0
    lo: F64 = field(init=False)
    brier: F64 = field(init=False)  # (2,): hi, lo of the weighted Brier sum

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.bins + 1, dtype=np.int64)
        self.hi = np.zeros((self.bins + 1, len(SUMS)))
        self.lo = np.zeros((self.bins + 1, len(SUMS)))
        self.brier = np.zeros(2)

    def add(self, counts: NDArray[np.int64], sums: F64, brier: float) -> None:
        """One chunk's per-slot counts and sums (bins + 1, 3) and its weighted Brier sum, added with
        two-sum (without numpy's error-state switches: this runs once a chunk)."""
        self.counts += counts
        hi = self.hi
        s = hi + sums
        if math.isfinite(float(s.sum())):  # always, short of weights near the float range
            bp = s - hi
            self.hi, self.lo = s, self.lo + ((hi - (s - bp)) + (sums - bp))
        else:
            s, err = two_sum(hi, sums)
            self.hi, self.lo = s, self.lo + err
        old, low = float(self.brier[0]), float(self.brier[1])
        b = old + brier
        if math.isfinite(b):
            back = b - old
            low += (old - (b - back)) + (brier - back)
        self.brier = np.array([b, low])

    def merge(self, other: CalibrationTally) -> CalibrationTally:
        if other.bins != self.bins:
            raise ValueError("cannot merge calibration bins of different --bins")
        out = CalibrationTally(self.bins)
        out.counts = self.counts + other.counts
        s, err = two_sum(self.hi, other.hi)
        out.hi, out.lo = s, self.lo + other.lo + err
        b, e = two_sum(self.brier[:1], other.brier[:1])
        out.brier = np.array([b[0], self.brier[1] + other.brier[1] + e[0]])
        return out

    def figures(self) -> dict[str, Any]:
        """The reliability table, ECE (L1), MCE (max) and the Brier score, weighted alike. The
        table has a row per bin and, when any confidence is exactly 1.0, its own row (lower =
        upper = 1), as torchmetrics counts it."""
        from ..engine.calibration_edges import torch_edges

        sums = self.hi + self.lo
        weight = sums[:, 0]
        total = float(weight.sum())
        edges = np.append(torch_edges(self.bins), 1.0)
        rows, ece, mce = [], 0.0, 0.0
        for b in range(self.bins + 1):
            if b == self.bins and not self.counts[b]:
                break
            row: dict[str, Any] = {"bin": b, "lower": float(edges[b]), "upper": float(edges[b + 1])}
            row["count"] = int(self.counts[b])
            w = float(weight[b])
            conf = float(sums[b, 1]) / w if w > 0 else math.nan
            obs = float(sums[b, 2]) / w if w > 0 else math.nan
            row.update(weight=w, confidence=conf, observed=obs, gap=obs - conf)
            if w > 0:
                ece += w / total * abs(obs - conf)
                mce = max(mce, abs(obs - conf))
            rows.append(row)
        nan = not total > 0
        brier = float(self.brier[0] + self.brier[1]) / total if not nan else math.nan
        return {
            "bins": self.bins,
            "ece": math.nan if nan else ece,
            "mce": math.nan if nan else mce,
            "brier": brier,
            "reliability": rows,
        }

    def to_plain(self) -> tuple[Meta, Arrays]:
        """``{bins}`` and ``counts`` (bins + 1,) int64, ``hi``/``lo`` (bins + 1, 3), ``brier`` (2,)."""
        return {"bins": self.bins}, {"counts": self.counts, "hi": self.hi, "lo": self.lo, "brier": self.brier}

    @classmethod
    def from_plain(cls, meta: Any, arrays: Arrays, where: str = "calibration") -> CalibrationTally:
        fields(meta, where, {"bins"})
        bins = want_int(meta["bins"], f"{where}.bins", 1)
        if set(arrays) != {"counts", "hi", "lo", "brier"}:
            raise StateFileError(f"not a valid losscli state: {where} should hold counts, hi, lo, brier")
        out = cls(bins)
        out.counts = take(arrays, "counts", np.int64, (bins + 1,), where)
        out.hi = take(arrays, "hi", np.float64, (bins + 1, len(SUMS)), where)
        out.lo = take(arrays, "lo", np.float64, (bins + 1, len(SUMS)), where)
        out.brier = take(arrays, "brier", np.float64, (2,), where)
        if int(out.counts.min()) < 0:
            raise StateFileError(f"not a valid losscli state: {where}.counts holds a negative count")
        return out
