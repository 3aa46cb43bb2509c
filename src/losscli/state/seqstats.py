"""Per-sequence statistics of a perplexity run: token counts, NLL sums and worst tokens.

A part covers the sequences ``first .. first + count - 1`` (global indices, so states of
different parts of a corpus merge into the statistics of the whole). Memory grows with the
number of sequences, never with tokens, and stays in numpy arrays: millions of sequences are a
few arrays in a state file, not JSON lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from .plain import Arrays, Meta, StateFileError, expect_members, fields, take, want_int

F64 = NDArray[np.float64]
WORST_PER_SEQUENCE = 3
#: a merge whose range would be mostly gap beyond this many sequences (88 bytes each) is refused,
#: so a state with a wild ``first`` gives an error, not a multi-gigabyte allocation
MAX_GAP_SPAN = 50_000_000


@dataclass
class SequenceStats:
    """Per-sequence token counts, NLL sums and worst tokens of sequences first..first+count-1.

    ``update`` takes global sequence ids. ``merge`` covers the union of both ranges (sums added
    where they overlap, sequences in a gap between them have no tokens), so it is associative and
    commutative, and the worst tokens keep a unique tie-break (loss, then earlier position).
    """

    count: int
    first: int = 0
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

    @property
    def end(self) -> int:
        """One past the global index of the last sequence covered."""
        return self.first + self.count

    def update(
        self, seq: NDArray[np.int64], pos: NDArray[np.int64], losses: F64, targets: NDArray[Any] | None
    ) -> None:
        """Count scored tokens of global sequences ``seq`` at positions ``pos``."""
        if len(seq) == 0:
            return
        if self.first:
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
        """Merge candidate tokens of local sequences ``seq`` into the worst-token slots."""
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

    def copy(self) -> SequenceStats:
        out = SequenceStats(0, self.first)
        out.count = self.count
        out.nll, out.tokens = self.nll.copy(), self.tokens.copy()
        out.worst_loss, out.worst_pos = self.worst_loss.copy(), self.worst_pos.copy()
        out.worst_target = self.worst_target.copy()
        return out

    def merge(self, other: SequenceStats) -> SequenceStats:
        """The statistics of both parts; an empty part (count 0) adds nothing, not even range."""
        if other.count == 0 or self.count == 0:
            if other.count == 0 and self.count == 0:
                return SequenceStats(0, min(self.first, other.first))
            return (self if other.count == 0 else other).copy()
        lo = min(self.first, other.first)
        span = max(self.end, other.end) - lo
        if span > max(MAX_GAP_SPAN, 4 * (self.count + other.count)):
            raise InputError(
                f"cannot merge these states: their sequences ({self.first}..{self.end - 1} and "
                f"{other.first}..{other.end - 1}) are so far apart that the merged statistics would "
                f"cover {span} sequences; check the parts' sequence offsets"
            )
        out = SequenceStats(span, lo)
        for part in (self, other):  # in the overlap ``other`` lands last, then the overlap is redone
            at = slice(part.first - lo, part.end - lo)
            out.nll[at], out.tokens[at] = part.nll, part.tokens
            out.worst_loss[at], out.worst_pos[at] = part.worst_loss, part.worst_pos
            out.worst_target[at] = part.worst_target
        start, stop = max(self.first, other.first), min(self.end, other.end)
        if start < stop:
            a, b, at = self._span(start, stop), other._span(start, stop), slice(start - lo, stop - lo)
            out.nll[at] = self.nll[a] + other.nll[b]
            out.tokens[at] = self.tokens[a] + other.tokens[b]
            out.worst_loss[at], out.worst_pos[at] = self.worst_loss[a], self.worst_pos[a]
            out.worst_target[at] = self.worst_target[a]
            filled = other.worst_loss[b] > -np.inf
            seq = np.nonzero(filled)[0].astype(np.int64) + (start - lo)
            out._offer(
                seq, other.worst_pos[b][filled], other.worst_loss[b][filled], other.worst_target[b][filled]
            )
        return out

    def _span(self, start: int, stop: int) -> slice:
        """Local indices of global sequences start..stop-1 (inside this part's range)."""
        return slice(start - self.first, stop - self.first)

    def perplexities(self) -> F64:
        """exp(mean NLL) of every sequence with at least one scored token."""
        scored = self.tokens > 0
        with np.errstate(over="ignore"):
            return np.exp(self.nll[scored] / self.tokens[scored])

    def to_plain(self) -> tuple[Meta, Arrays]:
        """``{"count", "first"}`` and five arrays, one row per sequence (see state.files)."""
        meta = {"count": self.count, "first": self.first}
        arrays = {
            "nll": self.nll,
            "tokens": self.tokens,
            "worst_loss": self.worst_loss,
            "worst_pos": self.worst_pos,
            "worst_target": self.worst_target,
        }
        return meta, arrays

    @classmethod
    def from_plain(cls, meta: Any, arrays: Arrays, where: str = "sequences") -> SequenceStats:
        fields(meta, where, {"count", "first"})
        count = want_int(meta["count"], f"{where}.count")
        first = want_int(meta["first"], f"{where}.first")
        expect_members(arrays, {"nll", "tokens", "worst_loss", "worst_pos", "worst_target"}, where)
        out = cls(0, first)  # allocates nothing: the arrays are checked, then taken as they are
        out.count = count
        k = (count, WORST_PER_SEQUENCE)
        out.nll = take(arrays, "nll", np.float64, (count,), where)
        out.tokens = take(arrays, "tokens", np.int64, (count,), where)
        out.worst_loss = take(arrays, "worst_loss", np.float64, k, where)
        out.worst_pos = take(arrays, "worst_pos", np.int64, k, where)
        out.worst_target = take(arrays, "worst_target", np.int64, k, where)
        if count and int(out.tokens.min()) < 0:
            raise StateFileError(f"not a valid losscli state: {where}.tokens holds a negative count")
        if np.isnan(out.worst_loss).any():  # tokens of finite inputs only; -inf is an empty slot
            raise StateFileError(f"not a valid losscli state: {where}.worst_loss holds NaN")
        return out
