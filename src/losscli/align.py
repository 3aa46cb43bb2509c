"""Zip chunk streams whose boundaries differ into pieces with equal rows.

A CSV reader yields whatever rows fit its byte blocks, a Parquet reader follows row groups and
a NumPy reader yields exact counts; the metric needs row i of every input together. Pieces are
views (no copies). This module owns the length-mismatch error, including the case where only
the end of one stream reveals it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from numpy.typing import NDArray

from .errors import InputError

Chunk = list[NDArray[Any]]


class _Cursor:
    def __init__(self, chunks: Iterator[Chunk]) -> None:
        self.chunks = chunks
        self.current: Chunk = []
        self.length = 0
        self.pos = 0
        self.consumed = 0  # rows of finished chunks
        self.done = False

    def ready(self) -> bool:
        """Make sure a non-empty chunk is loaded; False once the stream is over."""
        while not self.done and self.pos >= self.length:
            self.consumed += self.length
            nxt = next(self.chunks, None)
            if nxt is None:
                self.done = True
                self.current, self.length, self.pos = [], 0, 0
            else:
                self.current, self.pos = nxt, 0
                self.length = len(nxt[0]) if nxt else 0
        return not self.done

    def drain(self) -> int:
        """Count every remaining row (reading to the end) and return the stream's total."""
        total = self.consumed + self.length
        for chunk in self.chunks:
            total += len(chunk[0]) if chunk else 0
        self.done = True
        return total


def align(streams: Sequence[Iterator[Chunk]], labels: Sequence[str]) -> Iterator[list[Chunk]]:
    """Yield, per step, one chunk per stream, all with the same positive number of rows."""
    cursors = [_Cursor(s) for s in streams]
    while True:
        live = [c.ready() for c in cursors]
        if not any(live):
            return
        if not all(live):
            totals = [c.drain() if ok else c.consumed for c, ok in zip(cursors, live, strict=True)]
            raise length_mismatch(labels, totals)
        rows = min(c.length - c.pos for c in cursors)
        yield [[a[c.pos : c.pos + rows] for a in c.current] for c in cursors]
        for c in cursors:
            c.pos += rows


class LengthMismatch(InputError):
    """Inputs with different row counts; the engine may add what it knows of the cause.

    ``labels`` and ``totals`` (each input once) let a caller say it in its own terms (tokens)."""

    labels: list[str]
    totals: list[int]


def length_mismatch(
    labels: Sequence[str], totals: Sequence[int], unit: str = "row", need: str = ""
) -> LengthMismatch:
    """The error naming every input once (a file read for two roles, its keys beside its
    values, is one input) with its count of ``unit``s; ``need`` says what every input needs."""
    seen: dict[str, int] = {}
    for label, n in zip(labels, totals, strict=True):
        seen.setdefault(label, n)
    parts = [f"{label} has {n} {unit}{'s' if n != 1 else ''}" for label, n in seen.items()]
    exc = LengthMismatch(
        "inputs differ in length: "
        + ", ".join(parts)
        + "; "
        + (need or "every input needs one row per example")
    )
    exc.labels, exc.totals = list(seen), list(seen.values())
    return exc
