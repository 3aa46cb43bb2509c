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


def new_parts(tallies: LossState, metric_options: dict[str, Any], classes: int = 0) -> None:
    """The optional parts the metric's options ask for (--calibration)."""
    if metric_options.get("calibration"):
        from ..state.calibration import CalibrationTally

        tallies.calibration = CalibrationTally(int(metric_options.get("bins") or 15))
    if metric_options.get("per_class") and classes >= 2:
        from ..state.classes import ClassTally

        tallies.per_class = ClassTally(classes)


def add_probabilities(
    state: LossState,
    mc: Any,
    local: NDArray[np.intp] | None,
    w: Any,
    losses: NDArray[np.float64],
    scratch: Scratch | None = None,
) -> None:
    """The counted rows' probabilities into the calibration bins (bce/ce --calibration)."""
    if mc.probs is None or mc.prob_targets is None:
        return
    probs = mc.probs if local is None else mc.probs[local]
    targets = mc.prob_targets if local is None else mc.prob_targets[local]
    multiclass = probs.ndim == 2 and targets.ndim == 1
    if state.calibration is not None:
        from .calibrating import add_calibration

        known = (mc.positives, mc.prob_diff) if local is None else (None, None)
        add_calibration(state.calibration, probs, targets, w, multiclass, scratch, known, mc.probs_float32)
    if state.per_class is not None and multiclass and mc.predicted is not None:
        from .calibrating import add_per_class

        predicted = mc.predicted if local is None else mc.predicted[local]
        add_per_class(state.per_class, probs, targets, predicted, losses, w)
