"""The quantile sketches' share of a chunk: its counted losses into the overall sketch and,
with --group-by, into each group's (state/sketch.py, state/group_sketch.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..metrics.base import Scratch
from ..state.parts import LossState


def add_to_sketches(
    state: LossState,
    losses: NDArray[np.float64],
    w: NDArray[Any] | None,
    groups: NDArray[np.intp] | None,
    keys: Any,
    scratch: Scratch,
) -> None:
    """One pass of bit shifts and a ``bincount``: no logarithm, one reused key buffer."""
    if state.sketch is not None:
        state.sketch.add(losses, w, scratch.get("sketch_keys", (len(losses),), np.int64))
    if groups is not None and state.group_sketches is not None and keys is not None:
        state.group_sketches.add(keys.keys, groups, losses, w)
