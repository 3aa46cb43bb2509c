"""``GroupIntervals``: what ``--ci`` keeps per group (``--group-by``), merged by key.

Per group and per interval column (the loss, each companion mean): the count, and compensated
(hi, lo) sums of w, w^2, w*x and the centred second moment sum w*(x - mean)^2 (as
``stats.Moments``, one row per group, merged with Chan's formula); with ``--bootstrap B`` also
the group's B x (columns + 1) Poisson-bootstrap replicate sums (as ``stats.BootstrapSums``: the
weights are a function of the example's identity alone, so a group's replicates do not depend
on chunking, threads, shards or engines). Memory: 8 x B x (columns + 1) bytes per group.

Groups are matched by typed key, as ``GroupTallies`` matches them, so parts with different
groups, in any order, merge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..stats.moments import Moments
from ..stats.moments import array_two_sum as two_sum
from .groups import Key, typed, union_keys

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
SW, SW2, SWX, M2 = range(4)


@dataclass
class GroupIntervals:
    """Per-group moments (groups, columns, 4) as hi + lo, counts (groups,), optional replicates."""

    columns: int
    bootstrap: int
    keys: list[Key]
    n: I64
    hi: F64
    lo: F64
    boot: F64 | None = None  # (groups, B, columns + 1)

    @classmethod
    def empty(cls, columns: int, bootstrap: int) -> GroupIntervals:
        boot = np.zeros((0, bootstrap, columns + 1)) if bootstrap else None
        z = np.zeros((0, columns, 4))
        return cls(columns, bootstrap, [], np.zeros(0, np.int64), z, z.copy(), boot)

    def __len__(self) -> int:
        return len(self.keys)

    def grow(self, keys: Sequence[Key]) -> None:
        """Extend to ``keys`` (this part's keys followed by new ones)."""
        extra = len(keys) - len(self.keys)
        if extra <= 0:
            return
        self.keys = list(keys)
        self.n = np.concatenate([self.n, np.zeros(extra, np.int64)])
        self.hi = np.concatenate([self.hi, np.zeros((extra, self.columns, 4))])
        self.lo = np.concatenate([self.lo, np.zeros((extra, self.columns, 4))])
        if self.boot is not None:
            self.boot = np.concatenate([self.boot, np.zeros((extra, *self.boot.shape[1:]))])

    def absorb(self, at: NDArray[np.intp], n: I64, hi: F64, lo: F64) -> None:
        """Add moments (rows ``at`` of this part): Chan's cross term, then compensated sums."""
        wa = self.hi[at, :, SW] + self.lo[at, :, SW]
        wb = hi[:, :, SW] + lo[:, :, SW]
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = (hi[:, :, SWX] + lo[:, :, SWX]) / wb - (self.hi[at, :, SWX] + self.lo[at, :, SWX]) / wa
            cross = delta * delta * wa * wb / (wa + wb)
        cross[~((wa > 0) & (wb > 0))] = 0.0
        s, err = two_sum(self.hi[at], hi)
        lo_sum = self.lo[at] + lo + err
        s2, err2 = two_sum(s[:, :, M2], cross)
        s[:, :, M2] = s2
        lo_sum[:, :, M2] += err2
        self.hi[at], self.lo[at] = s, lo_sum
        self.n[at] += n

    def merge(self, other: GroupIntervals) -> GroupIntervals:
        if (self.columns, self.bootstrap) != (other.columns, other.bootstrap):
            raise ValueError("per-group interval tallies with different columns or --bootstrap")
        keys, pos = union_keys(self.keys, other.keys)
        boot = None if self.boot is None else self.boot.copy()
        out = GroupIntervals(self.columns, self.bootstrap, list(self.keys), self.n.copy(),
                             self.hi.copy(), self.lo.copy(), boot)
        out.grow(keys)
        out.absorb(pos, other.n, other.hi, other.lo)
        if out.boot is not None and other.boot is not None:
            out.boot[pos] += other.boot
        return out

    def moments(self, i: int, column: int) -> Moments:
        """Group ``i``'s moments of one column, as the stats core's ``Moments``."""
        h, lo = self.hi[i, column].tolist(), self.lo[i, column].tolist()
        pair = [(h[k], lo[k]) for k in range(4)]
        return Moments(int(self.n[i]), pair[SW], pair[SW2], pair[SWX], pair[M2])

    def index(self) -> dict[Any, int]:
        return {typed(k): i for i, k in enumerate(self.keys)}

    def to_plain(self) -> tuple[list[Key], dict[str, NDArray[Any]]]:
        """Keys (caller encodes them) and arrays n, hi, lo (, boot)."""
        arrays: dict[str, NDArray[Any]] = {"n": self.n, "hi": self.hi, "lo": self.lo}
        if self.boot is not None:
            arrays["boot"] = self.boot
        return list(self.keys), arrays
