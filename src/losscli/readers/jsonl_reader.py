"""Per-token log-probabilities in JSON, as language-model servers write them (vLLM, llama.cpp,
OpenAI-compatible servers): one record per sequence (json_records.py reads a record's shapes).

A file (``.jsonl``, ``.ndjson``, ``.json``, compressed or not, or a pipe) holds either
JSON Lines (one record a line), one JSON array (of records; or of ``{"token", "logprob"}``
objects or numbers: one sequence), or documents spread over several lines (a saved server
response, ``jq``'s output). Errors name the line (where the record starts) or the array
element, and what is wrong.

A null log-probability (an echoed prompt's first token) keeps its place: it is a row, marked
``NULL_LOGPROB``, which the scorer counts as ignored, so every later token keeps its row, its
position in its sequence and its text.

A file is read twice (sequence lengths first, then values). A pipe can be read only once, so
its first pass also keeps the values (8 bytes a token, far less than the JSON they came in).
"""

from __future__ import annotations

import io
import json
from array import array
from collections.abc import Iterator, Sequence
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from ..sequences import NULL_LOGPROB
from .base import Chunk, Group, Reader
from .json_records import (
    FIELD_PATHS,
    SHAPES,
    Parsed,
    RecordError,
    TokenTexts,
    numbers_only,
    parse_record,
    token_logprobs,
)

__all__ = ["FIELD_PATHS", "JsonlReader", "token_logprobs"]

BOM = b"\xef\xbb\xbf"


class JsonlReader(Reader):
    """Flattened token log-probabilities; one column, ``logprob``. Its rows are already one
    token each (no token view to take); each record is a sequence (``sequence_records``)."""

    sequence_records = True

    def __init__(self, path: str, stream: io.RawIOBase | None = None, compression: str | None = None) -> None:
        self.path = path
        self.compression = compression
        self.display = "<stdin>" if path == "-" else path
        self.column_names = ["logprob"]
        self.n_rows = None
        self.nulls = 0  # null entries, marked NULL_LOGPROB (counted on the pre-pass)
        self._lengths: NDArray[np.int64] | None = None
        self._stream = stream  # a pipe: read once
        self.streamed = self.read_once = stream is not None
        self._kept: array[float] | None = None  # a pipe's values, kept by the first pass
        self.token_texts: TokenTexts | None = None  # when the records carry token text
        self._null_rows: NDArray[np.int64] | None = None  # the rows of nulls, in order

    def _open(self) -> IO[bytes]:
        """The file's bytes, decompressed (gzip, bz2, zstd, lz4, brotli: as for CSV)."""
        if self.streamed:
            stream, self._stream = self._stream, None
            if stream is None:
                raise InputError("was already read: a pipe can be read only once", path=self.display)
            raw: Any = stream
            if self.compression:
                import pyarrow as pa

                raw = pa.CompressedInputStream(stream, self.compression)
            return io.BufferedReader(raw)
        try:
            if self.compression:
                import pyarrow as pa

                return io.BufferedReader(pa.input_stream(self.path, compression=self.compression))
            return open(self.path, "rb")
        except OSError as exc:
            raise InputError(f"cannot be opened ({exc.strerror or exc})", path=self.display) from None

    def _records(self) -> Iterator[tuple[str, Parsed]]:
        """Each sequence's log-probabilities (and token text), with where its record is."""
        try:
            for where, record in self._documents():
                try:
                    parsed = parse_record(record)
                except RecordError as exc:
                    raise InputError(f"{where}: {exc}", path=self.display) from None
                if parsed is None:
                    raise InputError(
                        f"{where} has no token log-probabilities; looked for {SHAPES}", path=self.display
                    )
                yield where, parsed
        except RecursionError:
            raise InputError("nests JSON too deeply to be read", path=self.display) from None
        except (OSError, EOFError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"cannot be read or decompressed ({exc})", path=self.display) from None

    def _documents(self) -> Iterator[tuple[str, Any]]:
        """The records: JSON Lines (of objects or of lists), one top-level array, or documents
        spread over lines. A single value that is an array is a top-level array (``_items``)."""
        fp = self._open()
        with fp:
            number, first = 0, b""
            for number, raw in enumerate(fp, start=1):
                first = raw.removeprefix(BOM) if number == 1 else raw
                if first.strip():
                    break
            if not first.strip():
                return
            try:
                record = json.loads(first)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                yield from self._single_array(self._whole(number, first + fp.read(), exc))
                return
            lines = ((n, raw) for n, raw in enumerate(fp, start=number + 1) if raw.strip())
            following = next(lines, None)
            if following is None and isinstance(record, list):  # one line holding one array
                yield from self._items(record)
                return
            yield f"line {number}", record
            if following is not None:
                yield f"line {following[0]}", self._loads(following[1], following[0])
            for later, raw in lines:
                yield f"line {later}", self._loads(raw, later)

    def _single_array(self, documents: Iterator[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
        """Documents as they come, but one document that is an array is a top-level array."""
        head = next(documents, None)
        if head is None:
            return
        second = next(documents, None)
        if second is None and isinstance(head[1], list):
            yield from self._items(head[1])
            return
        yield head
        if second is not None:
            yield second
            yield from documents

    def _loads(self, raw: bytes, number: int) -> Any:
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"line {number} is not valid JSON ({exc})", path=self.display) from None

    def _whole(self, number: int, data: bytes, first_error: Exception) -> Iterator[tuple[str, Any]]:
        """Documents spread over lines (``json.dump(..., indent=2)`` of one response, or
        ``jq``'s output of several), each named by the line it starts on."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"is not UTF-8 text (byte {exc.start})", path=self.display) from None
        decoder, pos, end = json.JSONDecoder(), 0, len(text)
        while True:
            while pos < end and text[pos] in " \t\r\n":
                pos += 1
            if pos >= end:
                return
            line = number + text.count("\n", 0, pos)
            try:
                record, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                if exc.lineno == 1:  # the first line alone is not JSON either: say what it says
                    raise InputError(
                        f"line {number} is not valid JSON ({first_error})", path=self.display
                    ) from None
                at = number + exc.lineno - 1
                raise InputError(f"line {at} is not valid JSON ({exc.msg})", path=self.display) from None
            yield f"line {line}", record

    def _items(self, items: list[Any]) -> Iterator[tuple[str, Any]]:
        """One top-level array: of records (each a sequence), or of token objects or numbers
        (one sequence)."""
        objects = all(isinstance(item, dict) for item in items)
        if objects and any("logprob" in item for item in items):
            yield "the top-level array (one sequence of token objects)", items
            return
        if items and numbers_only(items):
            yield "the top-level array (one sequence of log-probabilities)", items
            return
        for i, item in enumerate(items):
            yield f"element [{i}] of the top-level array", item

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()

    def list_lengths(self, column: int) -> NDArray[np.int64]:
        if self._lengths is None:
            lengths, nulls, row = [], array("q"), 0
            keep = array("d") if self.streamed else None
            texts = TokenTexts()
            for _, parsed in self._records():
                values = parsed.values
                if None in values:
                    nulls.extend(row + t for t, v in enumerate(values) if v is None)
                lengths.append(len(values))
                row += len(values)
                if keep is not None:
                    keep.extend(_marked(values))
                texts.add(parsed)
            self._kept = keep
            self._lengths = np.asarray(lengths, dtype=np.int64)
            self._null_rows = np.frombuffer(nulls, dtype=np.int64) if nulls else None
            self.nulls = len(nulls)
            self.n_rows = int(self._lengths.sum())
            self.token_texts = texts if texts.any else None
        return self._lengths

    def row_place(self, row: int) -> str | None:
        """``line 3, token 5`` (or the array element): a row is a token of a record. A pipe
        cannot be read again to find the record's line: its record is counted instead."""
        if self._lengths is None or not 0 <= row < int(self._lengths.sum()):
            return None
        ends = np.cumsum(self._lengths)
        k = int(np.searchsorted(ends, row, side="right"))
        token = row - (int(ends[k - 1]) if k else 0)
        where = f"record {k + 1}"
        if not self.streamed:
            where = next((w for i, (w, _) in enumerate(self._records()) if i == k), where)
        return f"{where}, token {token}"

    def chunks(self, groups: Sequence[Group], max_rows: int) -> Iterator[Chunk]:
        if self._kept is not None:  # a pipe, already read by list_lengths
            kept = np.frombuffer(self._kept, dtype=np.float64) if len(self._kept) else np.empty(0)
            for start in range(0, len(kept), max_rows):
                block = self._checked(kept[start : start + max_rows], start)
                yield [block for _ in groups]
            return
        pending: list[Any] = []  # JSON numbers (ints too): float64 by np.asarray
        row = 0
        for _, parsed in self._records():
            values = parsed.values
            pending.extend(values if None not in values else _marked(values))
            while len(pending) >= max_rows:
                block = self._checked(np.asarray(pending[:max_rows], dtype=np.float64), row)
                del pending[:max_rows]
                row += max_rows
                yield [block for _ in groups]
        if pending:
            block = self._checked(np.asarray(pending, dtype=np.float64), row)
            yield [block for _ in groups]

    def _checked(self, block: NDArray[np.float64], row: int) -> NDArray[np.float64]:
        """``block`` (rows ``row``...), refused when a value in it that was not null is
        NULL_LOGPROB itself; only a file with nulls marks rows (without, the scorer refuses the
        value as a positive log-prob)."""
        if self.nulls and self._null_rows is not None:
            marked = np.flatnonzero(block == NULL_LOGPROB) + row
            nulls = self._null_rows
            inside = nulls[np.searchsorted(nulls, row) : np.searchsorted(nulls, row + len(block))]
            if len(marked) != len(inside):
                bad = int(np.setdiff1d(marked, inside)[0])
                raise InputError(
                    f"holds {NULL_LOGPROB!r}, which is not a log-probability (<= 0)",
                    path=self.display,
                    row=bad,
                )
        return block


def _marked(values: list[float | None]) -> list[float]:
    """A sequence's values with each null as NULL_LOGPROB, so it keeps its row."""
    return [NULL_LOGPROB if v is None else v for v in values]
