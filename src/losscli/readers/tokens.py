"""Token views: a reader read one token per row, for language models, as a new value.

Language-model inputs come as (B, T, V) logits and (B, T) ids, as flat (N, V) arrays, or as a
list column per sequence (Parquet). The engine scores one token per row, so an LM plan reads
each input through a ``TokenView``: a NEW reader that yields one token per row, with what was
flattened (so sequences can be recovered). The reader the view was taken from is left as it
was and still reads as before; the view shares its open files (closing the view closes
nothing, closing the reader closes both). Which formats have token arrays is decided by each
reader (``Reader.token_reader``), so nothing outside readers/ looks at concrete classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .base import Reader


@dataclass(frozen=True)
class TokenView:
    """A reader one token per row, and the layout it came from."""

    #: yields one token per row: a row of V logits, or one id (or log-probability)
    reader: Reader
    #: the leading shape flattened into rows: (B, T) for batched arrays, (N,) for flat ones;
    #: () for a list column per sequence (see ``lengths``); None for a flat table read as it is
    lead: tuple[int, ...] | None
    #: the token column of ``reader`` (None: the whole file or array)
    column: int | None

    @property
    def batched(self) -> tuple[int, int] | None:
        """(sequences, tokens per sequence) of a (B, T, ...) array; None for other layouts."""
        if self.lead is None or len(self.lead) != 2:
            return None
        return self.lead[0], self.lead[1]

    @property
    def lists(self) -> bool:
        """A list column per sequence: ``lengths`` says where sequences end."""
        return self.lead == ()

    def lengths(self) -> NDArray[np.int64]:
        """Tokens per sequence of a list column (one pass over its list offsets)."""
        found = None if self.column is None else self.reader.list_lengths(self.column)
        if found is None:
            raise ValueError(f"{self.reader.display}: not a list column per sequence")
        return found


def token_view(reader: Reader, column: int | None, keep_last: bool) -> TokenView:
    """``reader``'s ``column`` (None: the file's array) one token per row.

    ``keep_last``: logits, whose last axis (V) stays a row; otherwise ids or log-probabilities,
    flattened whole. Formats without token arrays (CSV, JSON Lines, a Parquet column that is not
    a list) give a view whose reader is ``reader`` itself: its rows are already tokens.
    """
    made = reader.token_reader(column, keep_last)
    if made is None:
        return TokenView(reader, None, column)
    view, lead = made
    return TokenView(view, lead, column)
