"""Per-group tallies (``--group-by``): per group key, the sums and counts its figures need.

A group's figures are the metric's own ``figures(state)`` applied to a ``LossState`` rebuilt
from the group's row here (``loss_state``), so every figure of a group is a function of this
part alone and has the same keys as the top level. What a group does not keep (the worst rows,
per-sequence statistics, clamped counts, the row whose probabilities sum furthest from 1) stays
an overall figure.

Layout: ``keys`` (one tuple of plain values per group: str, int, bool, float or None for a
null key), and per group a row of ``width`` compensated sums, each carried as hi + lo (the
outputs' loss sums, the weight sum, each companion's sum, top-1 and top-k hits) and three
exact int64 counts (n, ignored, skipped). ``merge`` matches groups by key value (a typed
match: ``True``, ``1`` and ``1.0`` are different keys) and adds with Knuth's two-sum, as
``CompensatedVector`` does, so it is associative to far below 1e-12 and the counts are exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..stats.moments import array_two_sum as two_sum
from .parts import CompensatedVector, LossState
from .plain import (
    Arrays,
    Meta,
    StateFileError,
    decode_float,
    encode_float,
    expect_members,
    fields,
    malformed,
    take,
    want_int,
    want_strs,
)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Key = tuple[Any, ...]
#: the exact counts each group keeps, in their column order
COUNTS = ("n", "ignored", "skipped")


def typed(key: Key) -> tuple[tuple[str, Any], ...]:
    """A key as a dict key that tells ``True`` from ``1`` and ``1.0`` (Python's == does not)."""
    return tuple((type(v).__name__, v) for v in key)


def union_keys(mine: Sequence[Key], theirs: Sequence[Key]) -> tuple[list[Key], NDArray[np.intp]]:
    """The keys of both parts of a merge (``mine`` first, then the new ones of ``theirs``, matched
    by typed key) and where each of ``theirs`` landed."""
    index = {typed(k): i for i, k in enumerate(mine)}
    keys = list(mine)
    pos = np.empty(len(theirs), dtype=np.intp)
    for j, k in enumerate(theirs):
        t = typed(k)
        if t not in index:
            index[t] = len(keys)
            keys.append(k)
        pos[j] = index[t]
    return keys, pos


def _rank(v: Any) -> tuple[int, Any]:
    """Sort order of one key value: booleans, numbers, text, then null (last, as SQL's NULLS LAST)."""
    if v is None:
        return (3, 0)
    if isinstance(v, bool):
        return (0, v)
    if isinstance(v, (int, float)):
        return (1, v)
    return (2, str(v))


def sort_key(key: Key) -> tuple[tuple[int, Any], ...]:
    return tuple(_rank(v) for v in key)


@dataclass
class GroupTallies:
    """Per-group sums of one evaluation; rows in ``keys`` order (sorted only when shown/saved)."""

    columns: tuple[str, ...]
    outputs: int
    companions: tuple[str, ...]
    keys: list[Key]
    hi: F64  # (groups, width)
    lo: F64
    counts: I64  # (groups, 3): n, ignored, skipped
    overflow: NDArray[np.bool_]  # (groups,)

    @classmethod
    def empty(cls, columns: tuple[str, ...], outputs: int, companions: tuple[str, ...]) -> GroupTallies:
        width = outputs + 1 + len(companions) + 2
        return cls(
            columns,
            outputs,
            companions,
            [],
            np.zeros((0, width)),
            np.zeros((0, width)),
            np.zeros((0, len(COUNTS)), dtype=np.int64),
            np.zeros(0, dtype=bool),
        )

    @property
    def width(self) -> int:
        return self.outputs + 1 + len(self.companions) + 2

    def __len__(self) -> int:
        return len(self.keys)

    def grow(self, keys: Sequence[Key]) -> None:
        """Extend to ``keys`` (this part's keys followed by new ones, as a run's key table grows)."""
        extra = len(keys) - len(self.keys)
        if extra <= 0:
            return
        self.keys = list(keys)
        self.hi = np.concatenate([self.hi, np.zeros((extra, self.width))])
        self.lo = np.concatenate([self.lo, np.zeros((extra, self.width))])
        self.counts = np.concatenate([self.counts, np.zeros((extra, len(COUNTS)), dtype=np.int64)])
        self.overflow = np.concatenate([self.overflow, np.zeros(extra, dtype=bool)])

    def add(self, sums: F64 | None, counts: I64, overflow: NDArray[np.bool_] | None = None) -> None:
        """Add one chunk's per-group sums (groups 0..g-1 of this part's key order) and counts."""
        g = len(counts)
        if sums is not None:
            s, err = two_sum(self.hi[:g], sums)
            self.hi[:g] = s
            self.lo[:g] += err
        self.counts[:g] += counts
        if overflow is not None:
            self.overflow[:g] |= overflow

    def merge(self, other: GroupTallies) -> GroupTallies:
        """Both parts' groups; the same key in both adds up (two-sum, as ``CompensatedVector``).

        A companion only one part keeps (the groups' Brier sum, which a state saved before
        losscli kept it lacks) is left out of the merge: the merged groups have no such figure,
        rather than one that counts only some of the parts."""
        if (other.columns, other.outputs, _but_brier(other.companions)) != (
            self.columns, self.outputs, _but_brier(self.companions)
        ):  # fmt: skip
            raise ValueError("cannot merge group tallies of different columns, outputs or companions")
        if other.companions != self.companions:
            shared = tuple(c for c in self.companions if c in other.companions)
            return self.keeping(shared).merge(other.keeping(shared))
        keys, pos = union_keys(self.keys, other.keys)
        out = GroupTallies(
            self.columns, self.outputs, self.companions, list(self.keys),
            self.hi.copy(), self.lo.copy(), self.counts.copy(), self.overflow.copy(),
        )  # fmt: skip
        out.grow(keys)
        lo = out.lo[pos] + other.lo
        s, err = two_sum(out.hi[pos], other.hi)
        out.hi[pos], out.lo[pos] = s, lo + err
        out.counts[pos] += other.counts
        out.overflow[pos] |= other.overflow
        return out

    def keeping(self, companions: tuple[str, ...]) -> GroupTallies:
        """These groups with only ``companions`` (a subset of this part's, in any order)."""
        k = self.outputs + 1
        cols = [
            *range(k),
            *(k + self.companions.index(c) for c in companions),
            *range(self.width - 2, self.width),
        ]
        return GroupTallies(
            self.columns, self.outputs, companions, list(self.keys),
            self.hi[:, cols], self.lo[:, cols], self.counts.copy(), self.overflow.copy(),
        )  # fmt: skip

    def order(self) -> list[int]:
        """Row positions in key order (nulls last)."""
        return sorted(range(len(self.keys)), key=lambda i: sort_key(self.keys[i]))

    def sorted(self) -> GroupTallies:
        idx = np.asarray(self.order(), dtype=np.intp)
        return GroupTallies(
            self.columns, self.outputs, self.companions, [self.keys[i] for i in idx],
            self.hi[idx], self.lo[idx], self.counts[idx], self.overflow[idx],
        )  # fmt: skip

    def loss_state(self, i: int, overall: LossState) -> LossState:
        """Group ``i`` as a ``LossState`` (no worst rows, no sequences), for the metric's figures."""
        k, c = self.outputs, len(self.companions)
        hi, lo = self.hi[i].tolist(), self.lo[i].tolist()
        st = LossState(k, 0)
        st.output_sums = CompensatedVector(hi[:k], lo[:k])
        st.weight_sum = CompensatedVector(hi[k : k + 1], lo[k : k + 1])
        for j, name in enumerate(self.companions):
            st.companion_sums[name] = CompensatedVector(hi[k + 1 + j : k + 2 + j], lo[k + 1 + j : k + 2 + j])
        st.hits = CompensatedVector(hi[k + 1 + c :], lo[k + 1 + c :])
        st.n, st.ignored, st.skipped = (int(x) for x in self.counts[i])
        st.rows = st.n + st.ignored + st.skipped
        st.counts_correct = overall.counts_correct
        st.overflow = bool(self.overflow[i])
        return st

    def to_plain(self) -> tuple[Meta, Arrays]:
        """``{columns, outputs, companions, keys}`` (keys as JSON values) and ``hi``, ``lo``
        (groups, width) float64, ``counts`` (groups, 3) int64, ``overflow`` (groups,) bool;
        rows in key order, so one state always gives the same bytes."""
        s = self.sorted()
        meta: Meta = {
            "columns": list(s.columns),
            "outputs": s.outputs,
            "companions": list(s.companions),
            "keys": [[_encode_value(v) for v in key] for key in s.keys],
        }
        return meta, {"hi": s.hi, "lo": s.lo, "counts": s.counts, "overflow": s.overflow}

    @classmethod
    def from_plain(cls, meta: Any, arrays: Arrays, where: str = "groups") -> GroupTallies:
        fields(meta, where, {"columns", "outputs", "companions", "keys"})
        columns = tuple(want_strs(meta["columns"], f"{where}.columns"))
        if not columns:
            raise malformed(f"{where}.columns", "at least one column name", meta["columns"])
        outputs = want_int(meta["outputs"], f"{where}.outputs", 1)
        companions = tuple(want_strs(meta["companions"], f"{where}.companions"))
        raw = meta["keys"]
        if not isinstance(raw, list):
            raise malformed(f"{where}.keys", "a list of keys", raw)
        keys = [_decode_key(k, len(columns), f"{where}.keys[{i}]") for i, k in enumerate(raw)]
        if len({typed(k) for k in keys}) != len(keys):
            raise StateFileError(f"not a valid losscli state: {where}.keys holds a key twice")
        out = cls.empty(columns, outputs, companions)
        g, w = len(keys), out.width
        expect_members(arrays, {"hi", "lo", "counts", "overflow"}, where)
        out.keys = keys
        out.hi = take(arrays, "hi", np.float64, (g, w), where)
        out.lo = take(arrays, "lo", np.float64, (g, w), where)
        out.counts = take(arrays, "counts", np.int64, (g, len(COUNTS)), where)
        out.overflow = take(arrays, "overflow", np.bool_, (g,), where)
        if g and int(out.counts.min()) < 0:
            raise StateFileError(f"not a valid losscli state: {where}.counts holds a negative count")
        return out


def _but_brier(companions: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(c for c in companions if c != "brier")


def _encode_value(v: Any) -> Any:
    return encode_float(v) if isinstance(v, float) else v


def _decode_key(raw: Any, size: int, where: str) -> Key:
    if not isinstance(raw, list) or len(raw) != size:
        raise malformed(where, f"a list of {size} values", raw)
    out: list[Any] = []
    for v in raw:
        if isinstance(v, dict):
            v = decode_float(v, where)
        elif not (v is None or isinstance(v, (str, int, float))):
            raise malformed(where, "text, a number, a boolean or null", v)
        if isinstance(v, float) and math.isnan(v):
            raise malformed(where, "a key that is not NaN (a NaN key is the null group)", v)
        out.append(v)
    return tuple(out)
