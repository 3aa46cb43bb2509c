"""Paired Poisson bootstrap sums, with the weights of ``stats.poisson`` (the same for every model).

A replicate's weight of an example is a pure function of (seed, the example's identity,
replicate) (see ``losscli.stats.poisson``): every model's loss of an example, and so their
difference, gets the same weight in a replicate, which is what makes the bootstrap paired; the
sums do not depend on the chunk size or thread count.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def poisson_sums(
    seed: int, ids: NDArray[np.int64], values: NDArray[np.float64], replicates: int
) -> NDArray[np.float64]:
    """sum_i P_ir * values[i, k] for every replicate r: a (replicates, k) array."""
    from ..stats.poisson import BootstrapSums

    sums = BootstrapSums(seed, replicates, values.shape[1])
    sums.update(ids.astype(np.uint64), np.ascontiguousarray(values))
    return sums.sums
