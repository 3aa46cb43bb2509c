"""Per-group quantile sketches (``--group-by``): one ``LossSketch`` per group key.

Kept beside ``GroupTallies`` rather than in it, so the group sums stay as they were; matched
by typed key value on merge, as the tallies are. A chunk's losses are bucketed once; each
group's bucket counts come from one ``bincount`` over (group, bucket) when that table is small
(the usual case: tens of groups), else from the rows sorted by group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .groups import Key, _decode_key, _encode_value, sort_key, typed
from .plain import Arrays, Meta, StateFileError, fields, malformed, want_strs
from .sketch import LossSketch, order_keys

#: the largest (groups x buckets) table one chunk is counted in at once (int64: 32 MB)
DENSE_CELLS = 1 << 22


@dataclass
class GroupSketches:
    columns: tuple[str, ...]
    weighted: bool = False
    keys: list[Key] = field(default_factory=list)
    sketches: list[LossSketch] = field(default_factory=list)

    def grow(self, keys: Sequence[Key]) -> None:
        """Extend to the run's key table (append-only, as ``GroupTallies.grow``)."""
        for k in keys[len(self.keys) :]:
            self.keys.append(k)
            self.sketches.append(LossSketch(self.weighted))

    def add(
        self, keys: Sequence[Key], codes: NDArray[np.intp], losses: NDArray[np.float64], w: Any
    ) -> None:
        """One chunk's counted rows, ``codes`` their positions in the run's key table ``keys``."""
        if not len(losses):
            return
        if w is not None and not self.weighted:
            self.weighted = True
            for s in self.sketches:
                s.weighted, s.weights = True, np.zeros(len(s.counts))
        self.grow(keys)
        bucket = order_keys(losses)
        lo = int(bucket.min())
        bucket -= lo
        span = int(bucket.max()) + 1
        g = int(codes.max()) + 1
        top = np.full(g, -np.inf)
        np.maximum.at(top, codes, losses)
        weights = None if w is None else np.asarray(w, dtype=np.float64)
        if g * span <= DENSE_CELLS:
            cell = codes.astype(np.int64) * span + bucket
            counts = np.bincount(cell, minlength=g * span).reshape(g, span)
            wsum = None if weights is None else np.bincount(cell, weights, g * span).reshape(g, span)
            for i in np.flatnonzero(counts.any(axis=1)).tolist():
                self.sketches[i].add_buckets(lo, counts[i], None if wsum is None else wsum[i], float(top[i]))
            return
        order = np.argsort(codes, kind="stable")
        starts = np.flatnonzero(np.diff(codes[order], prepend=-1))
        for a, b in zip(starts.tolist(), [*starts[1:].tolist(), len(order)], strict=True):
            rows = order[a:b]
            i = int(codes[rows[0]])
            sw = None if weights is None else weights[rows]
            cnt: NDArray[np.int64] = np.bincount(bucket[rows], minlength=span).astype(np.int64, copy=False)
            ws = None if sw is None else np.bincount(bucket[rows], sw, span).astype(np.float64, copy=False)
            self.sketches[i].add_buckets(lo, cnt, ws, float(top[i]))

    def get(self, key: Key) -> LossSketch | None:
        want = typed(key)
        return next((s for k, s in zip(self.keys, self.sketches, strict=True) if typed(k) == want), None)

    def merge(self, other: GroupSketches) -> GroupSketches:
        out = GroupSketches(self.columns, self.weighted or other.weighted)
        index: dict[Any, int] = {}
        for part in (self, other):
            for k, s in zip(part.keys, part.sketches, strict=True):
                t = typed(k)
                if t in index:
                    out.sketches[index[t]] = out.sketches[index[t]].merge(s)
                else:
                    index[t] = len(out.keys)
                    out.keys.append(k)
                    out.sketches.append(s.merge(LossSketch(s.weighted)))  # a copy
        return out

    def to_plain(self) -> tuple[Meta, Arrays]:
        """Groups in key order, so one state always gives the same bytes."""
        order = sorted(range(len(self.keys)), key=lambda i: sort_key(self.keys[i]))
        metas, arrays = [], {}
        for j, i in enumerate(order):
            meta, sub = self.sketches[i].to_plain()
            metas.append(meta)
            arrays.update({f"g{j}_{name}": a for name, a in sub.items()})
        keys = [[_encode_value(v) for v in self.keys[i]] for i in order]
        return {"columns": list(self.columns), "keys": keys, "sketches": metas}, arrays

    @classmethod
    def from_plain(cls, meta: Any, arrays: Arrays, where: str = "group_sketches") -> GroupSketches:
        fields(meta, where, {"columns", "keys", "sketches"})
        columns = tuple(want_strs(meta["columns"], f"{where}.columns"))
        raw_keys, raw_sketches = meta["keys"], meta["sketches"]
        if not isinstance(raw_keys, list) or not isinstance(raw_sketches, list):
            raise malformed(where, "lists of keys and sketches", meta)
        if len(raw_keys) != len(raw_sketches):
            raise StateFileError(f"not a valid losscli state: {where} has {len(raw_keys)} keys but "
                                 f"{len(raw_sketches)} sketches")  # fmt: skip
        out = cls(columns)
        for i, (k, s) in enumerate(zip(raw_keys, raw_sketches, strict=True)):
            out.keys.append(_decode_key(k, len(columns), f"{where}.keys[{i}]"))
            mine = {name[len(f"g{i}_") :]: a for name, a in arrays.items() if name.startswith(f"g{i}_")}
            out.sketches.append(LossSketch.from_plain(s, mine, f"{where}.sketches[{i}]"))
        if len({typed(k) for k in out.keys}) != len(out.keys):
            raise StateFileError(f"not a valid losscli state: {where}.keys holds a key twice")
        known = {f"g{i}_{m}" for i in range(len(out.keys)) for m in ("counts", "weights")}
        if any(name not in known for name in arrays):
            raise StateFileError(f"not a valid losscli state: {where} holds an unknown array")
        out.weighted = any(s.weighted for s in out.sketches)
        return out
