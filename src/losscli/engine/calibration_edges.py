"""torchmetrics' calibration bin edges, exactly: ``torch.linspace(0, 1, bins + 1, dtype=...)``.

torchmetrics bins a confidence by ``bucketize(conf, linspace(0, 1, bins + 1), right=True) - 1``
and keeps ``bins + 1`` slots, so a confidence of exactly 1.0 has a slot of its own (index
``bins``). The edges are not k/bins: torch's CPU kernel computes ``step = 1 / bins`` in the
tensor's dtype, then ``step * k`` for k < (bins + 1) // 2 and ``1 - step * (bins - k)`` above,
each rounded once (fused), so edge 11 of 16 is 0.7333333333333334 > 11/15. BinaryCalibrationError
keeps the input's dtype (float32 probabilities: float32 edges); MulticlassCalibrationError casts
the top-1 confidence to float32 and uses float32 edges (0.20000002 for 3/15: a float32 0.2
lands in the lower bin). Checked against torch 2.13 for every bins up to 1,200
(benchmarks/calibration_check.py)."""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import NDArray


@functools.lru_cache(maxsize=64)
def torch_edges(bins: int, float32: bool = False) -> NDArray[np.float64]:
    """The ``bins + 1`` edges torch.linspace gives (as float64 values), read only."""
    from fractions import Fraction  # here: 10 ms of import that a run without --calibration skips

    steps = bins + 1
    # float32: step * k and 1 - step * k are exact in float64 (a 24-bit step times k < 2**29),
    # so one rounding to float32 is torch's; float64: exact in fractions, rounded once by float()
    step = Fraction(float(np.float32(1.0) / np.float32(bins)) if float32 else 1.0 / bins)
    half = steps // 2
    exact = [step * k if k < half else 1 - step * (bins - k) for k in range(steps)]
    edges = np.array([float(np.float32(float(v))) if float32 else float(v) for v in exact])
    edges.setflags(write=False)
    return edges


@functools.lru_cache(maxsize=64)
def lookup_edges(bins: int, float32: bool = False) -> NDArray[np.float64]:
    """The edges with +inf appended: ``edges[code + 1]`` is defined for the 1.0 slot too."""
    out = np.append(torch_edges(bins, float32), np.inf)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=64)
def floor_is_exact(bins: int, float32: bool = False) -> bool:
    """Whether ``floor(x * bins)`` gives every x in [0, 1] (of the edges' precision) torchmetrics'
    slot: each edge times ``bins`` floors to its own index and the value just below the next
    edge stays under it (rounded multiplication is monotone, so the whole bin follows)."""
    edges = torch_edges(bins, float32)
    kind = np.float32 if float32 else np.float64
    for k in range(bins):
        below = float(np.nextafter(kind(edges[k + 1]), kind(0.0)))
        if math.floor(edges[k] * bins) != k or math.floor(below * bins) != k:
            return False
    return bool(math.floor(edges[bins] * bins) == bins)
