"""JSON Lines of per-token log-probabilities, as OpenAI-compatible servers (vLLM, ...) return them.

One record per sequence. The log-probabilities are looked for at these paths, in order:

    token_logprobs
    logprobs.token_logprobs
    choices[0].logprobs.token_logprobs
    logprobs.content[].logprob
    choices[0].logprobs.content[].logprob
    logprobs                          (a plain list of numbers)

A null entry (the first token of an echoed prompt has no log-probability) is skipped and
counted. Records are parsed with the standard json module, one line at a time.

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
from .base import Chunk, Group, Reader

FIELD_PATHS = (
    "token_logprobs",
    "logprobs.token_logprobs",
    "choices[0].logprobs.token_logprobs",
    "logprobs.content[].logprob",
    "choices[0].logprobs.content[].logprob",
    "logprobs",
)


def _walk(record: Any, path: str) -> list[Any] | None:
    """The list at ``path`` in ``record``, or None when the record has no such list.

    ``key[]`` steps into a list and applies the rest of the path to each element; ``key[0]``
    takes its first element. Only after ``[]`` does a key reach inside list elements: a plain
    list found on the way (``{"logprobs": [-0.5, ...]}`` walked for ``logprobs.token_logprobs``)
    is not this path, so the next path gets its turn.
    """
    node = record
    each = False  # after "[]": node is a list whose elements the remaining parts apply to
    for part in path.split("."):
        key = part.removesuffix("[]").removesuffix("[0]")
        if each:
            node = [item.get(key) if isinstance(item, dict) else None for item in node]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return None
        if part.endswith("[]"):
            if each or not isinstance(node, list):
                return None
            each = True
        elif part.endswith("[0]"):
            if each or not isinstance(node, list) or not node:
                return None
            node = node[0]
    if isinstance(node, list) and all(v is None or _is_number(v) for v in node):
        return node
    return None


def _is_number(v: Any) -> bool:
    """A JSON number (``true``/``false`` parse as bool, a subclass of int, and are not)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def token_logprobs(record: Any) -> list[float | None] | None:
    """The list of token log-probabilities in one record, from the first path that has one."""
    for path in FIELD_PATHS:
        found = _walk(record, path)
        if found is not None:
            return found
    return None


class JsonlReader(Reader):
    """Flattened token log-probabilities; one column, ``logprob``. Its rows are already one
    token each (no token view to take); each record is a sequence (``sequence_records``)."""

    sequence_records = True

    def __init__(self, path: str, stream: io.RawIOBase | None = None) -> None:
        self.path = path
        self.display = "<stdin>" if path == "-" else path
        self.column_names = ["logprob"]
        self.n_rows = None
        self.nulls = 0  # null entries skipped (counted on the pre-pass)
        self._lengths: NDArray[np.int64] | None = None
        self._stream = stream  # a pipe: read once
        self.streamed = stream is not None
        self._kept: array[float] | None = None  # a pipe's values, kept by the first pass

    def _open(self) -> IO[bytes]:
        if self.streamed:
            stream, self._stream = self._stream, None
            if stream is None:
                raise InputError("was already read: a pipe can be read only once", path=self.display)
            return io.BufferedReader(stream)
        try:
            return open(self.path, "rb")
        except OSError as exc:
            raise InputError(f"cannot be opened ({exc.strerror})", path=self.display) from None

    def _records(self) -> Iterator[tuple[int, list[float | None]]]:
        fp = self._open()
        with fp:
            for number, raw in enumerate(fp, start=1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise InputError(f"line {number} is not valid JSON ({exc})", path=self.display) from None
                values = token_logprobs(record)
                if values is None:
                    raise InputError(
                        f"line {number} has no token log-probabilities at any of: {', '.join(FIELD_PATHS)}",
                        path=self.display,
                    )
                yield number, values

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()

    def list_lengths(self, column: int) -> NDArray[np.int64]:
        if self._lengths is None:
            lengths, nulls = [], 0
            keep = array("d") if self.streamed else None
            for _, values in self._records():
                kept = sum(v is not None for v in values)
                nulls += len(values) - kept
                lengths.append(kept)
                if keep is not None:
                    keep.extend(float(v) for v in values if v is not None)
            self._kept = keep
            self._lengths = np.asarray(lengths, dtype=np.int64)
            self.nulls = nulls
            self.n_rows = int(self._lengths.sum())
        return self._lengths

    def chunks(self, groups: Sequence[Group], max_rows: int) -> Iterator[Chunk]:
        if self._kept is not None:  # a pipe, already read by list_lengths
            kept = np.frombuffer(self._kept, dtype=np.float64) if len(self._kept) else np.empty(0)
            for start in range(0, len(kept), max_rows):
                block = kept[start : start + max_rows]
                yield [block for _ in groups]
            return
        pending: list[float] = []
        for _, values in self._records():
            pending.extend(float(v) for v in values if v is not None)
            while len(pending) >= max_rows:
                block = np.asarray(pending[:max_rows], dtype=np.float64)
                del pending[:max_rows]
                yield [block for _ in groups]
        if pending:
            block = np.asarray(pending, dtype=np.float64)
            yield [block for _ in groups]
