"""Sign flips for the paired permutation test, as a pure function of (seed, example, resample).

Approximate randomisation (sacrebleu's ``--paired-ar``) swaps the two models' losses on each
example at random: the difference d_i becomes -d_i. For the p-value to be the same whatever the
chunk size, thread count or part layout, the sign of example i in resample r must depend on
(seed, i, r) alone. Identities are cut into blocks of ``BLOCK`` consecutive rows; a block's bits
come from its own PCG64 stream, seeded by ``SeedSequence([seed, STREAM, block])``, so a chunk
that starts or ends inside a block draws the whole block and keeps its rows.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

BLOCK = 256
STREAM = 0x5A17  # keeps these streams apart from any other use of the same seed


def _block_bits(seed: int, block: int, resamples: int) -> NDArray[np.uint8]:
    """(BLOCK, resamples) bits of one block of identities, 0 or 1."""
    words = -(-resamples // 64)
    gen = np.random.PCG64(np.random.SeedSequence([seed & 0xFFFFFFFFFFFFFFFF, STREAM, block]))
    raw = gen.random_raw(BLOCK * words).astype("<u8", copy=False).view(np.uint8)
    bits = np.unpackbits(raw.reshape(BLOCK, words * 8), axis=1, bitorder="little")
    return bits[:, :resamples]


def flip_sums(
    seed: int, ids: NDArray[np.int64], values: NDArray[np.float64], resamples: int
) -> NDArray[np.float64]:
    """sum_i s_ir * values[i, k] for every resample r: a (resamples, k) array.

    ``ids``: the examples' identities (global rows), ascending; ``values``: (n, k). The sign
    s_ir = +1 or -1 is bit (i, r) of the block's stream (see the module docstring).
    """
    out = np.zeros((resamples, values.shape[1]))
    if len(ids) == 0:
        return out
    blocks = ids // BLOCK
    edges = np.flatnonzero(np.diff(blocks)) + 1
    starts = np.concatenate(([0], edges))
    stops = np.concatenate((edges, [len(ids)]))
    signs = np.empty((BLOCK, resamples))
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        block = int(blocks[a])
        bits = _block_bits(seed, block, resamples)
        rows = ids[a:b] - block * BLOCK
        np.multiply(bits[rows], 2.0, out=signs[: b - a])
        signs[: b - a] -= 1.0
        out += signs[: b - a].T @ values[a:b]
    return out
