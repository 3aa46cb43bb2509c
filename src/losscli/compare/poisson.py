"""Paired Poisson bootstrap sums, with the weights of ``stats.poisson`` (the same for every model).

A replicate's weight of an example is a pure function of (seed, the example's identity,
replicate) (see ``losscli.stats.poisson``): both models' losses of an example get the same
weight in a replicate, which is what makes the bootstrap paired, and the sums do not depend on
the chunk size or thread count. Examples are taken in blocks so the (replicates x block)
weight matrix stays small (a few MB) whatever the chunk size.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

BLOCK = 2048


def poisson_sums(seed: int, ids: NDArray[np.int64], values: NDArray[np.float64], replicates: int) -> NDArray[np.float64]:
    """sum_i P_ir * values[i, k] for every replicate r: a (replicates, k) array."""
    from ..stats.poisson import poisson_weights

    out = np.zeros((replicates, values.shape[1]))
    uids = ids.astype(np.uint64)
    weights = np.empty((replicates, BLOCK))
    for start in range(0, len(ids), BLOCK):
        stop = min(start + BLOCK, len(ids))
        w8 = poisson_weights(seed, uids[start:stop], replicates)
        block = weights[:, : stop - start]
        np.copyto(block, w8)
        out += block @ values[start:stop]
    return out
