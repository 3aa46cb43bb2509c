"""Per-chunk group sums for ``--group-by``: vectorised with ``np.bincount``, no loop per row.

``np.bincount`` adds each group's values one after another in float64: for n non-negative
values the relative error is at most (n - 1) ulps (u = 2**-53), 7e-12 for a 65,536-row chunk.
Each chunk is therefore summed in blocks of ``BLOCK`` rows (at most 8191 ulps, 9e-13, even in
the worst case; the typical error is near sqrt(n) ulps) and the blocks' per-group sums are
added (``np.sum`` over a handful of rows); across chunks the group sums are compensated
(two-sum, ``GroupTallies.add``), so a group's figure does not drift with its row count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..state.groups import COUNTS, GroupTallies

F64 = NDArray[np.float64]
BLOCK = 8192


def group_sum(codes: NDArray[np.intp], values: NDArray[Any] | None, groups: int) -> F64:
    """Per-group sums of ``values`` (counts when None), blockwise (see the module docstring)."""
    n = len(codes)
    if n <= BLOCK:
        return np.bincount(codes, weights=values, minlength=groups).astype(np.float64, copy=False)
    parts = np.empty(((n + BLOCK - 1) // BLOCK, groups))
    for b, start in enumerate(range(0, n, BLOCK)):
        stop = start + BLOCK
        parts[b] = np.bincount(
            codes[start:stop], weights=None if values is None else values[start:stop], minlength=groups
        )
    total: F64 = np.sum(parts, axis=0)
    return total


def counts_of(codes: NDArray[np.intp], groups: int) -> NDArray[np.int64]:
    return np.bincount(codes, minlength=groups).astype(np.int64, copy=False)


def weighted(values: NDArray[Any], w: NDArray[Any] | None) -> NDArray[Any]:
    """w * values; a row of weight 0 adds exactly 0 even when its value is inf (as ``sums``)."""
    if w is None:
        return values
    with np.errstate(over="ignore", invalid="ignore"):
        out: NDArray[Any] = values * w
    if not np.isfinite(out).all():
        out[w == 0] = 0.0
    return out


def add_chunk(
    tallies: GroupTallies,
    keys: Sequence[tuple[Any, ...]],
    codes: NDArray[np.intp],
    losses: F64,
    elements: F64 | None,
    w: NDArray[Any] | None,
    companions: dict[str, F64],
    hits: tuple[NDArray[np.bool_] | None, NDArray[np.bool_] | None],
) -> None:
    """One chunk's counted rows (``codes`` their groups) into ``tallies``."""
    tallies.grow(keys)
    g = int(codes.max()) + 1 if len(codes) else 0
    if g == 0:
        return
    k = tallies.outputs
    rows = counts_of(codes, g)
    sums = np.zeros((g, tallies.width))
    if elements is None:
        sums[:, 0] = group_sum(codes, weighted(losses, w), g)
    else:
        for j in range(k):
            sums[:, j] = group_sum(codes, weighted(elements[:, j], w), g)
    sums[:, k] = rows if w is None else group_sum(codes, np.asarray(w, dtype=np.float64), g)
    for j, name in enumerate(tallies.companions):
        if name in companions:
            sums[:, k + 1 + j] = group_sum(codes, weighted(companions[name], w), g)
    base = k + 1 + len(tallies.companions)
    for j, hit in enumerate(hits):
        if hit is not None:
            sums[:, base + j] = group_sum(codes[hit], None if w is None else w[hit], g)
    counts = np.zeros((g, len(COUNTS)), dtype=np.int64)
    counts[:, 0] = rows
    with np.errstate(invalid="ignore"):
        overflow: NDArray[np.bool_] = np.asarray(~np.isfinite(sums).all(axis=1))
    tallies.add(sums, counts, overflow if overflow.any() else None)


def add_left_out(
    tallies: GroupTallies, keys: Sequence[tuple[Any, ...]], codes: NDArray[np.intp], which: str
) -> None:
    """Rows of these groups that were ignored (``--ignore-index``) or skipped (``--nan skip``)."""
    if not len(codes):
        return
    tallies.grow(keys)
    g = int(codes.max()) + 1
    counts = np.zeros((g, len(COUNTS)), dtype=np.int64)
    counts[:, COUNTS.index(which)] = counts_of(codes, g)
    tallies.add(None, counts)
