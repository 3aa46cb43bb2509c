"""Which sequence each token row belongs to, and the causal-LM label shift.

Language-model inputs are flattened to one row per token: (B, T, V) logits become B*T rows of V,
Parquet list columns become their concatenated tokens. A ``SequenceMap`` recovers (sequence,
position) for any global row, so per-sequence figures and the shift work chunk by chunk, in any
order, on any thread. No I/O and no loss math here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: target value that marks a token dropped by --shift (not scored, not counted as ignored)
SHIFT_DROP = np.iinfo(np.int64).min
#: a null log-probability's row (JSON log-probs): a positive number no log-probability can be,
#: which the scorer counts as ignored, so a null keeps its row and every later token keeps its own
NULL_LOGPROB = float(np.finfo(np.float64).max)
#: the role of an attention mask (--mask, --mask-col): 1 = real token, 0 = padding
MASK = "mask"


class SequenceMap:
    """Rows -> (sequence index, position in the sequence)."""

    sequences: int

    def locate(self, rows: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        raise NotImplementedError

    def next_in_sequence(self, rows: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Whether row + 1 continues the same sequence (False at each sequence's last token)."""
        seq, _ = self.locate(rows)
        nxt, _ = self.locate(rows + 1)
        return np.asarray(seq == nxt)


class SingleSequence(SequenceMap):
    """Flat (N, V) logits with no sequence information: one sequence of N tokens."""

    def __init__(self, tokens: int | None) -> None:
        self.tokens = tokens
        self.sequences = 1

    def locate(self, rows: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        return np.zeros_like(rows), rows.copy()

    def next_in_sequence(self, rows: NDArray[np.int64]) -> NDArray[np.bool_]:
        if self.tokens is None:
            return np.ones(len(rows), dtype=bool)
        return np.asarray(rows + 1 < self.tokens)


class PeriodicSequences(SequenceMap):
    """(B, T, ...) arrays flattened in C order: row r is token r % T of sequence r // T."""

    def __init__(self, batch: int, length: int) -> None:
        self.length = length
        self.sequences = batch

    def locate(self, rows: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        return rows // self.length, rows % self.length


class ListSequences(SequenceMap):
    """Sequences of varying lengths, one after another (Parquet list columns, JSON Lines)."""

    def __init__(self, lengths: Sequence[int] | NDArray[np.int64]) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.ends = self.starts + self.lengths
        self.sequences = len(self.lengths)

    def locate(self, rows: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        seq = np.searchsorted(self.ends, rows, side="right").astype(np.int64)
        seq = np.minimum(seq, max(self.sequences - 1, 0))
        return seq, rows - self.starts[seq]


def shift_ids(
    ids: NDArray[Any], rows: NDArray[np.int64], following: NDArray[Any], seqmap: SequenceMap
) -> NDArray[np.int64]:
    """The causal-LM shift for one chunk: the logits at token t are scored on token t + 1.

    ``ids`` are the targets of ``rows``; ``following`` is the target of the row after the
    chunk's last (ignored when that row starts a new sequence, or does not exist). The last
    token of every sequence has nothing to predict and gets SHIFT_DROP.
    """
    out = np.empty(len(ids), dtype=np.int64)
    if len(ids) == 0:
        return out
    if ids.ndim == 2 and ids.shape[1] == 1:  # one column of a table (a CSV mask): (n, 1)
        ids, following = ids[:, 0], following.reshape(-1)
    out[:-1] = ids[1:]
    out[-1] = following[0] if len(following) else SHIFT_DROP
    out[~seqmap.next_in_sequence(rows)] = SHIFT_DROP
    return out


def shifted_stream(
    chunks: Iterator[list[NDArray[Any]]], indices: Sequence[int], seqmap: SequenceMap
) -> Iterator[list[NDArray[Any]]]:
    """Apply ``shift_ids`` to arrays ``indices`` of a sequential chunk stream (the ids, and an
    attention mask read by the same reader; one chunk of look-ahead: each chunk is released
    once the first target of the next is known)."""
    held: list[NDArray[Any]] | None = None
    start = 0
    first = indices[0]
    for chunk in chunks:
        if len(chunk[first]) == 0:
            continue
        if held is not None:
            yield _shifted(held, indices, start, chunk, seqmap)
            start += len(held[first])
        held = [np.array(a, copy=True) for a in chunk]  # the reader may reuse its buffers
    if held is not None:
        yield _shifted(held, indices, start, None, seqmap)


def _shifted(
    chunk: list[NDArray[Any]],
    indices: Sequence[int],
    start: int,
    following: list[NDArray[Any]] | None,
    seqmap: SequenceMap,
) -> list[NDArray[Any]]:
    rows = np.arange(start, start + len(chunk[indices[0]]), dtype=np.int64)
    out = list(chunk)
    for i in indices:
        nxt = following[i][:1] if following is not None else np.empty(0, dtype=np.int64)
        out[i] = shift_ids(chunk[i], rows, nxt, seqmap)
    return out


def check_mask(mask: NDArray[Any], label: str, first_row: int) -> None:
    """An attention mask holds 0 (padding) and 1 (a real token), as tokenizers return it; a
    bool mask is taken as it is. Checked before any shift, so 0.5 is never read as 0."""
    if mask.dtype == np.bool_:
        return
    bad = (mask != 0) & (mask != 1)
    if bad.any():
        from .errors import InputError

        r = int(np.argmax(bad.ravel()))
        raise InputError(
            f"attention mask value {mask.ravel()[r].item()!r} is not 0 or 1 (1 = real token, 0 = padding)",
            path=label,
            row=first_row + r,
        )


def apply_mask(ids: NDArray[Any], mask: NDArray[Any], ignore_index: int) -> NDArray[Any]:
    """The ids with padding (mask 0) set to the ignore index, so it is counted as ignored:
    exactly labels.masked_fill(mask == 0, -100). A token --shift dropped keeps SHIFT_DROP
    (its shifted mask is SHIFT_DROP too, never 0)."""
    if mask.shape != ids.shape and mask.size == ids.size:  # one column of a table: (n, 1)
        mask = mask.reshape(ids.shape)
    pad = mask == 0
    if not pad.any():
        return ids
    out = ids.astype(np.result_type(ids.dtype, np.int64))  # a copy; float ids stay exact
    out[pad] = ignore_index
    return out


def mask_logprobs(logprobs: NDArray[Any], mask: NDArray[Any]) -> NDArray[Any]:
    """Gathered log-probs with padding (mask 0) marked NULL_LOGPROB, which the scorer ignores,
    as ``apply_mask`` marks ids with the ignore index."""
    if mask.shape != logprobs.shape and mask.size == logprobs.size:
        mask = mask.reshape(logprobs.shape)
    pad = mask == 0
    if not pad.any():
        return logprobs
    return np.where(pad, NULL_LOGPROB, np.asarray(logprobs, dtype=np.float64))
