"""Mergeable float64 state: compensated sums, counts and the worst examples.

The state is a monoid. ``merge`` is associative and commutative (up to the last bits of the
compensation term, far below 1e-12 relative), so chunks can be reduced in any grouping: by one
thread in order, by several threads, or later by a distributed engine. The result does not
depend on how the input was cut into chunks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


def _two_sum(a: float, b: float) -> tuple[float, float]:
    """Knuth's error-free two-sum, a + b == s + e exactly, in plain floats (it runs once per
    chunk, where numpy's call overhead would cost more than the arithmetic)."""
    s = a + b
    if s - s != 0.0:  # inf or nan: there is no finite error term
        return s, 0.0
    bp = s - a
    return s, (a - (s - bp)) + (b - bp)


@dataclass
class CompensatedVector:
    """A few running sums (one per output), each carried as hi + lo with two-sum.

    Plain Python floats: k is small and ``add`` runs once per chunk, where numpy's per-call
    overhead would cost more than the arithmetic.
    """

    hi: list[float]
    lo: list[float]

    @classmethod
    def zeros(cls, k: int) -> CompensatedVector:
        return cls([0.0] * k, [0.0] * k)

    def add(self, values: Sequence[float] | NDArray[Any]) -> None:
        for j, v in enumerate(values):
            self.hi[j], err = _two_sum(self.hi[j], float(v))
            self.lo[j] += err

    def add1(self, value: float) -> None:
        """``add([value])`` for the common single-output case."""
        self.hi[0], err = _two_sum(self.hi[0], value)
        self.lo[0] += err

    def merge(self, other: CompensatedVector) -> CompensatedVector:
        out = CompensatedVector(list(self.hi), [a + b for a, b in zip(self.lo, other.lo, strict=True)])
        out.add(other.hi)
        return out

    def total(self) -> F64:
        return np.array([h + lo for h, lo in zip(self.hi, self.lo, strict=True)], dtype=np.float64)


@dataclass(frozen=True)
class Example:
    """One scored row kept for the breakdown table."""

    row: int
    loss: float
    detail: tuple[Any, ...]
    id: Any = None  # the row's value in the input's id column, when it has one


@dataclass
class WorstExamples:
    """The ``capacity`` highest-loss rows; ties go to the earlier row, so the set is unique.

    Uniqueness makes merge exactly associative and the breakdown independent of chunking.
    """

    capacity: int
    rows: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    losses: F64 = field(default_factory=lambda: np.empty(0))
    details: list[tuple[Any, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._floor = self._lowest_kept()

    def _lowest_kept(self) -> float:
        if len(self.rows) < self.capacity:
            return -math.inf
        return float(self.losses.min())

    def threshold(self) -> float:
        """Losses at or below this cannot enter (ties lose to earlier rows)."""
        return self._floor

    def candidates(self, losses: F64) -> NDArray[np.intp]:
        """Positions in ``losses`` (in row order) that would enter the set, at most capacity."""
        if self.capacity == 0:
            return np.empty(0, dtype=np.intp)
        thr = self.threshold()
        idx = np.arange(len(losses)) if thr == -math.inf else np.flatnonzero(losses > thr)
        if len(idx) > self.capacity:
            vals = losses[idx]
            kth = np.partition(vals, len(vals) - self.capacity)[len(vals) - self.capacity]
            above = idx[vals > kth]
            ties = idx[vals == kth][: self.capacity - len(above)]
            idx = np.sort(np.concatenate([above, ties]))
        return idx

    def offer(self, rows: NDArray[np.int64], losses: F64, details: Sequence[tuple[Any, ...]]) -> None:
        """Merge new (row, loss, detail) triples in, keeping the unique top ``capacity``."""
        all_rows = np.concatenate([self.rows, np.asarray(rows, dtype=np.int64)])
        all_losses = np.concatenate([self.losses, np.asarray(losses, dtype=np.float64)])
        all_details = [*self.details, *details]
        order = np.lexsort((all_rows, -all_losses))[: self.capacity]
        self.rows = all_rows[order]
        self.losses = all_losses[order]
        self.details = [all_details[i] for i in order]
        self._floor = self._lowest_kept()

    def merge(self, other: WorstExamples) -> WorstExamples:
        out = WorstExamples(max(self.capacity, other.capacity), self.rows, self.losses, self.details)
        out.offer(other.rows, other.losses, other.details)
        return out

    def examples(self) -> list[Example]:
        """Worst first."""
        return [
            Example(int(r), float(v), d) for r, v, d in zip(self.rows, self.losses, self.details, strict=True)
        ]


WORST_PER_SEQUENCE = 3


@dataclass
class SequenceStats:
    """Per-sequence token counts, NLL sums and worst tokens (sequence ids are 0..count-1).

    Memory grows with the number of sequences, never with tokens: a few numbers each.
    """

    count: int
    first: int = 0  # the global index of sequence 0 here (the lead's stopgap; merge by range follows)
    nll: F64 = field(init=False)
    tokens: NDArray[np.int64] = field(init=False)
    # worst tokens per sequence: loss (-inf = empty slot), position, target id (-1 unknown)
    worst_loss: F64 = field(init=False)
    worst_pos: NDArray[np.int64] = field(init=False)
    worst_target: NDArray[np.int64] = field(init=False)

    def __post_init__(self) -> None:
        self.nll = np.zeros(self.count)
        self.tokens = np.zeros(self.count, dtype=np.int64)
        self.worst_loss = np.full((self.count, WORST_PER_SEQUENCE), -np.inf)
        self.worst_pos = np.full((self.count, WORST_PER_SEQUENCE), -1, dtype=np.int64)
        self.worst_target = np.full((self.count, WORST_PER_SEQUENCE), -1, dtype=np.int64)

    def update(
        self, seq: NDArray[np.int64], pos: NDArray[np.int64], losses: F64, targets: NDArray[Any] | None
    ) -> None:
        if len(seq) == 0:
            return
        seq = seq - self.first
        # Only tokens at least as bad as their sequence's current k-th worst can enter (ties too,
        # so the lexsort in _offer breaks them by position whatever the chunk order): usually none.
        if self.count == 1:  # flat logits: one sequence, no per-row bookkeeping
            self.nll[0] += float(losses.sum())
            self.tokens[0] += len(seq)
            enter = losses >= self.worst_loss[0, WORST_PER_SEQUENCE - 1]
        else:
            self.nll += np.bincount(seq, weights=losses, minlength=self.count)[: self.count]
            self.tokens += np.bincount(seq, minlength=self.count)[: self.count]
            enter = losses >= self.worst_loss[seq, WORST_PER_SEQUENCE - 1]
        if not enter.any():
            return
        idx = np.flatnonzero(enter)
        tgt = (
            np.full(len(idx), -1, dtype=np.int64)
            if targets is None
            else np.asarray(targets, dtype=np.int64)[idx]
        )
        self._offer(seq[idx], pos[idx], losses[idx], tgt)

    def _offer(
        self, seq: NDArray[np.int64], pos: NDArray[np.int64], losses: F64, tgt: NDArray[np.int64]
    ) -> None:
        if len(seq) == 0:
            return
        ordered = np.sort(seq)  # np.unique would import numpy.ma (14 ms) on first use
        touched = ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]
        k = WORST_PER_SEQUENCE
        all_seq = np.concatenate([np.repeat(touched, k), seq])
        all_loss = np.concatenate([self.worst_loss[touched].ravel(), losses])
        all_pos = np.concatenate([self.worst_pos[touched].ravel(), pos])
        all_tgt = np.concatenate([self.worst_target[touched].ravel(), tgt])
        order = np.lexsort((all_pos, -all_loss, all_seq))  # by sequence, worst first, then position
        s = all_seq[order]
        first = np.searchsorted(s, s, side="left")
        rank = np.arange(len(s)) - first
        keep = order[rank < k]
        slot = rank[rank < k]
        rows = all_seq[keep]
        self.worst_loss[rows, slot] = all_loss[keep]
        self.worst_pos[rows, slot] = all_pos[keep]
        self.worst_target[rows, slot] = all_tgt[keep]

    def merge(self, other: SequenceStats) -> SequenceStats:
        out = SequenceStats(self.count, self.first)
        out.nll = self.nll + other.nll
        out.tokens = self.tokens + other.tokens
        out.worst_loss, out.worst_pos, out.worst_target = (
            self.worst_loss.copy(),
            self.worst_pos.copy(),
            self.worst_target.copy(),
        )
        filled = other.worst_loss > -np.inf
        seq = np.nonzero(filled)[0].astype(np.int64)
        out._offer(seq, other.worst_pos[filled], other.worst_loss[filled], other.worst_target[filled])
        return out

    def perplexities(self) -> F64:
        """exp(mean NLL) of every sequence with at least one scored token."""
        scored = self.tokens > 0
        with np.errstate(over="ignore"):
            return np.exp(self.nll[scored] / self.tokens[scored])


@dataclass
class LossState:
    """Sufficient statistics of a weighted mean loss over k outputs.

    ``output_sums[j]`` is sum_i w_i * loss_ij and ``weight_sum`` is sum_i w_i (the example
    count when unweighted). The metric value is mean_j(output_sums[j] / weight_sum), which
    is scikit-learn's uniform average over outputs with sample_weight.
    """

    outputs: int
    worst_capacity: int = 20
    output_sums: CompensatedVector = field(init=False)
    weight_sum: CompensatedVector = field(init=False)
    n: int = 0
    ignored: int = 0
    skipped: int = 0
    clamped: int = 0
    counts_correct: bool = False
    worst: WorstExamples = field(init=False)
    companion_sums: dict[str, CompensatedVector] = field(default_factory=dict)
    # weighted top-1 and top-k hits, so accuracies weigh rows as the loss does (= counts unweighted)
    hits: CompensatedVector = field(init=False)
    sequences: SequenceStats | None = None
    # probabilities: the row whose sum is furthest from 1 (-1: none seen) and that sum
    row_sum_row: int = -1
    row_sum: float = 1.0
    rows: int = 0  # input rows read: scored, ignored and skipped alike
    nulls: int = 0  # perplexity: null log-probabilities (JSON Lines), also counted in ``ignored``
    overflow: bool = False  # some finite inputs gave a loss that overflowed float64 to inf

    def note_row_sum(self, row: int, value: float) -> None:
        """Keep the row sum furthest from 1; ties go to the earlier row (chunking-independent)."""
        dev, mine = abs(value - 1.0), abs(self.row_sum - 1.0)
        if self.row_sum_row < 0 or dev > mine or (dev == mine and row < self.row_sum_row):
            self.row_sum_row, self.row_sum = row, value

    def weights_sum_to_zero(self) -> bool:
        """Every counted example had weight 0: the weighted mean is 0/0, not a number."""
        return self.n > 0 and float(self.weight_sum.total()[0]) == 0.0

    def companion(self, name: str) -> CompensatedVector:
        """The running weighted sum of a per-example companion (MAE beside MSE, ...)."""
        if name not in self.companion_sums:
            self.companion_sums[name] = CompensatedVector.zeros(1)
        return self.companion_sums[name]

    def companion_mean(self, name: str) -> float:
        w = float(self.weight_sum.total()[0])
        return float(self.companion_sums[name].total()[0]) / w if w else math.nan

    def __post_init__(self) -> None:
        self.output_sums = CompensatedVector.zeros(self.outputs)
        self.weight_sum = CompensatedVector.zeros(1)
        self.hits = CompensatedVector.zeros(2)
        self.worst = WorstExamples(self.worst_capacity)

    def merge(self, other: LossState) -> LossState:
        if other.outputs != self.outputs:
            raise ValueError("cannot merge states with different numbers of outputs")
        out = LossState(self.outputs, max(self.worst_capacity, other.worst_capacity))
        out.output_sums = self.output_sums.merge(other.output_sums)
        out.weight_sum = self.weight_sum.merge(other.weight_sum)
        out.n = self.n + other.n
        out.ignored = self.ignored + other.ignored
        out.skipped = self.skipped + other.skipped
        out.clamped = self.clamped + other.clamped
        out.counts_correct = self.counts_correct or other.counts_correct
        out.worst = self.worst.merge(other.worst)
        out.hits = self.hits.merge(other.hits)
        out.row_sum_row, out.row_sum = self.row_sum_row, self.row_sum
        if other.row_sum_row >= 0:
            out.note_row_sum(other.row_sum_row, other.row_sum)
        if self.sequences is not None and other.sequences is not None:
            out.sequences = self.sequences.merge(other.sequences)
        else:
            out.sequences = self.sequences or other.sequences
        for name in sorted(set(self.companion_sums) | set(other.companion_sums)):
            zero = CompensatedVector.zeros(1)
            out.companion_sums[name] = self.companion_sums.get(name, zero).merge(
                other.companion_sums.get(name, zero)
            )
        return out

    def accuracy(self, k: int = 0) -> float:
        """Top-1 (k=0) or top-k (k=1) accuracy, weighted like the loss."""
        w = float(self.weight_sum.total()[0])
        return float(self.hits.total()[k]) / w if w else math.nan

    def per_output(self) -> F64:
        """The weighted mean loss of each output (NaN before any example is counted)."""
        w = float(self.weight_sum.total()[0])
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.output_sums.total() / w

    def mean(self) -> float:
        """Headline value: the uniform average over outputs of the weighted mean loss."""
        per = self.per_output()
        return float(np.mean(per)) if per.size else math.nan
