"""Poisson(1) bootstrap weights as a pure function of (seed, example identity, replicate).

A Poisson bootstrap gives each example an independent Poisson(1) weight per replicate instead of
resampling indices, so it streams: a replicate's statistic is a ratio of weighted sums, and the
sums of two parts of the data add. Drawing the weight from a counter-based hash of
(seed, identity, replicate) instead of a random stream makes it independent of chunk size,
thread count, worker count and engine: every layout of the same examples gives the same
replicates (up to the summation order of float64 sums, ~1e-15 relative).

The hash: ``base = splitmix64(identity ^ splitmix64(seed))`` once per example, then for the
replicate group j = b // 4, ``h = mix(base + (j + 1) * 0x9E3779B97F4A7C15)`` (splitmix64's
output function, Stafford's variant 13); replicate b takes the 16-bit lane b % 4 of h
(bits 16*(b%4) .. 16*(b%4)+15) as an integer u in 0..65535.

The inverse cdf: weight = #{k in 1..8 : u >= T_k} with T_k = round(65536 * P(X <= k - 1)),
X ~ Poisson(1). Each tail probability P(weight >= k) is therefore within 2^-17 of the exact
Poisson(1) one, and weights above 8 (probability 1.1e-6) are never drawn. Comparing against
eight thresholds in uint16 is several times faster in numpy than a 65,536-entry table lookup,
and gives the same weights as that table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MASK = (1 << 64) - 1
MAX_WEIGHT = 8
BLOCK = 4096  # examples per block: a block's hashes, weights and products stay in L2 cache
GROUPS = 16  # replicate groups of four per block (64 replicates)


def _thresholds() -> npt.NDArray[np.uint16]:
    cdf, term, out = 0.0, math.exp(-1.0), []
    for k in range(MAX_WEIGHT):
        cdf += term
        term /= k + 1
        out.append(round(65536 * cdf))
    return np.array(out, dtype=np.uint16)


THRESHOLDS = _thresholds()


def splitmix64_int(x: int) -> int:
    """splitmix64 of a Python int (the scalar definition, for seeds and file keys)."""
    z = (x + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _mix_inplace(h: U64, tmp: U64) -> None:
    """splitmix64's output function on an array, in place (uint64 arithmetic wraps)."""
    np.right_shift(h, np.uint64(30), out=tmp)
    np.bitwise_xor(h, tmp, out=h)
    np.multiply(h, _M1, out=h)
    np.right_shift(h, np.uint64(27), out=tmp)
    np.bitwise_xor(h, tmp, out=h)
    np.multiply(h, _M2, out=h)
    np.right_shift(h, np.uint64(31), out=tmp)
    np.bitwise_xor(h, tmp, out=h)


def example_bases(seed: int, ids: U64) -> U64:
    """Per-example hash base: splitmix64(identity ^ splitmix64(seed))."""
    h: U64 = np.bitwise_xor(ids.astype(np.uint64, copy=False),
                            np.uint64(splitmix64_int(seed & _MASK)))
    np.add(h, _GOLDEN, out=h)
    _mix_inplace(h, np.empty_like(h))
    return h


def file_key(resolved_path: str) -> int:
    """A 64-bit key of a shard's resolved path (BLAKE2b), hashed into its examples' identities."""
    import hashlib  # here, not at the top: most runs hash nothing and skip its import

    return int.from_bytes(hashlib.blake2b(resolved_path.encode(), digest_size=8).digest(), "little")


def example_ids(first_row: int, n: int, key: int | None = None) -> U64:
    """Identities of ``n`` consecutive rows: the row number, or (file key, row within file)."""
    rows = np.arange(first_row, first_row + n, dtype=np.uint64)
    if key is None:
        return rows
    # rows offset by the key's hash: injective within a file; two files' ranges overlap with
    # probability ~ 2 * rows / 2^64 (and an overlap only correlates those examples' weights)
    np.add(rows, np.uint64(splitmix64_int(key)), out=rows)
    return rows


def key_identity(value: object) -> int:
    """The identity of a cluster by its key value (--cluster-col): a 64-bit BLAKE2b hash of the
    value's text, so a pure function of the value whatever chunk, shard or part it was seen in,
    and the same for 7 in a Parquet file and "7" in a CSV (whose keys are text as written)."""
    import hashlib

    text = "\x00null" if value is None else str(value)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def row_identities(rows: npt.NDArray[np.int64], key: int | None = None, shift: int = 0) -> U64:
    """Identities of rows given by number (any order, gaps allowed): as ``example_ids``, of the
    row within its file ``rows - shift``, offset by the file key's hash when there is one."""
    out: U64 = (rows - np.int64(shift)).astype(np.uint64)
    if key is not None:
        np.add(out, np.uint64(splitmix64_int(key)), out=out)
    return out


def _weights_block(bases: U64, first_group: int, groups: int, h: U64, tmp: U64,
                   w8: npt.NDArray[np.uint8], flag: npt.NDArray[np.bool_]) -> None:
    """Poisson weights of replicates 4*first_group .. into w8 (groups, n, 4), uint8."""
    counters = (np.arange(first_group + 1, first_group + groups + 1, dtype=np.uint64) * _GOLDEN)
    np.add(bases[None, :], counters[:, None], out=h)
    _mix_inplace(h, tmp)
    u = h.view(np.uint16).reshape(groups, bases.shape[0], 4)
    np.greater_equal(u, THRESHOLDS[0], out=w8.view(np.bool_))
    for t in THRESHOLDS[1:]:
        np.greater_equal(u, t, out=flag)
        np.add(w8, flag.view(np.uint8), out=w8)


def poisson_weights(seed: int, ids: U64, replicates: int) -> npt.NDArray[np.uint8]:
    """The (replicates x n) matrix of Poisson(1) weights of examples ``ids`` (for tests, small n)."""
    n, groups = ids.shape[0], -(-replicates // 4)
    h = np.empty((groups, n), np.uint64)
    w8 = np.empty((groups, n, 4), np.uint8)
    _weights_block(example_bases(seed, ids), 0, groups, h, np.empty_like(h), w8,
                   np.empty((groups, n, 4), np.bool_))
    return np.ascontiguousarray(w8.transpose(0, 2, 1).reshape(groups * 4, n)[:replicates])


@dataclass
class BootstrapSums:
    """Per replicate, the Poisson-weighted sums of ``columns`` per-example (or per-cluster) values.

    ``sums[b, c] = sum_i w_bi * values[i, c]``. A mean is the ratio of a value column to a
    column of ones (or of weights); a token figure the ratio of per-sequence NLL sums to token
    counts. Sums are float64 (weights are exact small integers, the products come from float64
    BLAS), so a replicate is the same to ~1e-15 whatever the chunking; merge is addition.
    """

    seed: int
    replicates: int
    columns: int
    sums: F64 = field(default_factory=lambda: np.zeros((0, 0)))
    _work: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.sums.shape != (self.replicates, self.columns):
            self.sums = np.zeros((self.replicates, self.columns))

    def _buffers(self, groups: int) -> dict[str, Any]:
        if self._work.get("groups") != groups:
            shape = (groups, BLOCK)
            self._work = {
                "groups": groups, "h": np.empty(shape, np.uint64),
                "tmp": np.empty(shape, np.uint64),
                "w8": np.empty((groups, BLOCK, 4), np.uint8),
                "flag": np.empty((groups, BLOCK, 4), np.bool_),
                "wf": np.empty((groups, BLOCK, 4)),
                "xt": np.empty((self.columns, BLOCK)),
                "out": np.empty((groups, self.columns, 4)),
            }
        return self._work

    def update(self, ids: U64, values: F64) -> None:
        """Add examples with identities ``ids`` (uint64) and ``values`` (n,) or (n, columns)."""
        vals = values.reshape(values.shape[0], -1)
        if vals.shape[1] != self.columns:
            raise ValueError(f"expected {self.columns} value columns, got {vals.shape[1]}")
        bases = example_bases(self.seed, ids)
        total_groups = -(-self.replicates // 4)
        view = self.sums
        for start in range(0, bases.shape[0], BLOCK):
            stop = min(start + BLOCK, bases.shape[0])
            for g0 in range(0, total_groups, GROUPS):
                groups = min(GROUPS, total_groups - g0)
                self._add_block(bases[start:stop], vals[start:stop], g0, groups, view)

    def _add_block(self, bases: U64, vals: F64, g0: int, groups: int, sums: F64) -> None:
        n = bases.shape[0]
        work = self._buffers(min(GROUPS, -(-self.replicates // 4)))
        h, tmp = work["h"][:groups, :n], work["tmp"][:groups, :n]
        w8, flag = work["w8"][:groups, :n], work["flag"][:groups, :n]
        _weights_block(bases, g0, groups, h, tmp, w8, flag)
        wf = work["wf"][:groups, :n]
        np.copyto(wf, w8)
        xt = work["xt"][:, :n]
        np.copyto(xt, vals.T)
        out = work["out"][:groups]
        np.matmul(xt, wf, out=out)  # (groups, columns, 4): replicate 4*(g0+g)+k
        first, last = 4 * g0, min(4 * (g0 + groups), self.replicates)
        block = out.transpose(0, 2, 1).reshape(4 * groups, self.columns)
        sums[first:last] += block[: last - first]

    def merge(self, other: BootstrapSums) -> BootstrapSums:
        """Sums of both parts; both must use the same seed, replicate count and columns."""
        if (self.seed, self.replicates, self.columns) != (other.seed, other.replicates,
                                                          other.columns):
            raise ValueError("bootstrap sums with different seed, replicates or columns")
        return BootstrapSums(self.seed, self.replicates, self.columns, self.sums + other.sums)

    def ratios(self, num: int, den: int) -> F64:
        """Per replicate, sums[:, num] / sums[:, den] (NaN where a replicate weighs nothing)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            out: F64 = self.sums[:, num] / self.sums[:, den]
        return out

    def to_plain(self) -> dict[str, Any]:
        """Plain data; ``sums`` stays an array (a .npy member of the state file)."""
        return {"seed": self.seed, "replicates": self.replicates, "columns": self.columns,
                "sums": self.sums}

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> BootstrapSums:
        sums = np.asarray(data["sums"], dtype=np.float64)
        return cls(int(data["seed"]), int(data["replicates"]), int(data["columns"]),
                   sums.reshape(int(data["replicates"]), int(data["columns"])).copy())
