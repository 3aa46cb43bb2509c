"""``IntervalTallies``: what ``--ci`` adds to a state, mergeable like every other part.

Per-example losses (and each companion mean: MAE beside MSE, ...) are kept as streamed weighted
moments (``losscli.stats.Moments``); with ``--bootstrap B`` also as Poisson-bootstrap replicate
sums whose weights are a pure function of (seed, example identity, replicate), so every
chunking, thread count, shard layout and engine gives the same replicates. Token figures need
no tally here: perplexity's per-sequence NLL sums and token counts (``SequenceStats``) are the
clusters, and the report computes their ratio interval (and replicates) from them.

Plain form: meta ``{"bootstrap": B, "seed": s, "columns": [names]}``, arrays
``moments`` (one row of 9 numbers per column: n, then the (hi, lo) pairs of sum w, sum w^2,
sum w*x and the centred second moment) and, with B > 0, ``replicates`` (B x (2 + companions)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..stats.moments import Moments
from ..stats.poisson import BootstrapSums
from .plain import Arrays, Meta, StateFileError, expect_members, fields, take, want_int, want_strs

F64 = NDArray[np.float64]
LOSS = "value"  # the column of the per-example loss (the headline's mean)


@dataclass
class IntervalTallies:
    """Moments of the per-example loss and of each companion; optional bootstrap sums.

    ``names`` is ("value", *companions). Bootstrap columns: sum v*w*x for each name, then
    sum v*w (the replicate's weight), so replicate b's mean of name j is sums[b, j] / sums[b, -1].
    """

    names: tuple[str, ...]
    bootstrap: int = 0
    seed: int = 0
    moments: dict[str, Moments] = field(default_factory=dict)
    boot: BootstrapSums | None = None
    _cols: F64 = field(default_factory=lambda: np.empty((0, 0)), repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in self.names:
            self.moments.setdefault(name, Moments())
        if self.bootstrap and self.boot is None:
            self.boot = BootstrapSums(self.seed, self.bootstrap, len(self.names) + 1)

    def update(self, losses: F64, weights: F64 | None, companions: dict[str, F64],
               rows: NDArray[np.int64] | None) -> None:
        """Add counted examples; ``rows`` (their global input rows) are needed with a bootstrap."""
        self.moments[LOSS].update(losses, weights)
        for name in self.names[1:]:
            self.moments[name].update(companions[name], weights)
        if self.boot is None or rows is None:
            return
        n, k = losses.shape[0], len(self.names)
        if self._cols.shape[0] < n:
            self._cols = np.empty((n, k + 1))
        cols = self._cols[:n]
        for j, name in enumerate(self.names):
            np.copyto(cols[:, j], losses if j == 0 else companions[name])
            if weights is not None:
                cols[:, j] *= weights
        cols[:, k] = 1.0 if weights is None else weights
        self.boot.update(rows.astype(np.uint64), cols)

    def merge(self, other: IntervalTallies) -> IntervalTallies:
        if (self.names, self.bootstrap, self.seed) != (other.names, other.bootstrap, other.seed):
            raise ValueError("interval tallies with different figures, --bootstrap or --seed")
        out = IntervalTallies(self.names, self.bootstrap, self.seed,
                              {k: self.moments[k].merge(other.moments[k]) for k in self.names})
        if self.boot is not None and other.boot is not None:
            out.boot = self.boot.merge(other.boot)
        return out

    def to_plain(self) -> tuple[Meta, Arrays]:
        rows = [_moment_row(self.moments[k]) for k in self.names]
        arrays: Arrays = {"moments": np.array(rows, dtype=np.float64).reshape(len(rows), 9)}
        if self.boot is not None:
            arrays["replicates"] = self.boot.sums
        return {"bootstrap": self.bootstrap, "seed": self.seed, "columns": list(self.names)}, arrays

    @classmethod
    def from_plain(cls, meta: Any, arrays: Arrays, where: str = "ci") -> IntervalTallies:
        raw = fields(meta, where, {"bootstrap", "seed", "columns"})
        names = tuple(want_strs(raw["columns"], f"{where}.columns"))
        if not names or names[0] != LOSS:
            raise StateFileError(f"not a valid losscli state: {where}.columns must start with {LOSS}")
        bootstrap = want_int(raw["bootstrap"], f"{where}.bootstrap")
        seed = want_int(raw["seed"], f"{where}.seed")
        expect_members(arrays, {"moments", "replicates"} if bootstrap else {"moments"}, where)
        table = take(arrays, "moments", np.float64, (len(names), 9), where)
        moments = {k: _moment_of(table[i]) for i, k in enumerate(names)}
        out = cls(names, bootstrap, seed, moments)
        if bootstrap:
            sums = take(arrays, "replicates", np.float64, (bootstrap, len(names) + 1), where)
            out.boot = BootstrapSums(seed, bootstrap, len(names) + 1, sums.copy())
        return out


def _moment_row(m: Moments) -> list[float]:
    return [float(m.n), *m.sw, *m.sw2, *m.swx, *m.m2]


def _moment_of(row: F64) -> Moments:
    v = [float(x) for x in row]
    return Moments(int(v[0]), (v[1], v[2]), (v[3], v[4]), (v[5], v[6]), (v[7], v[8]))


def merge_intervals(a: IntervalTallies | None, b: IntervalTallies | None) -> IntervalTallies | None:
    """Both parts' interval tallies; a part without any (saw no chunk) adds none."""
    if a is None or b is None:
        return a if b is None else b
    return a.merge(b)
