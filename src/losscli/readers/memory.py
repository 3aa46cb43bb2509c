"""In-memory arrays behind the same interface as files, for the Python API and for tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import UsageError
from .base import Chunk, Group, IndexNames, RangeReader, Reader


class ArrayReader(Reader, RangeReader):
    """Slices of an array the caller already holds; columns are those of a 2-D array."""

    def __init__(self, array: Any, name: str, text: bool = False) -> None:
        """``text``: a 1-D array of strings is accepted too (text labels, for a metric that
        takes them); anything else that is not numeric is refused."""
        arr = np.asarray(array)
        self.text = text and arr.ndim == 1 and _is_text(arr)
        if not self.text and (arr.dtype.hasobject or arr.dtype.kind not in "biuf"):
            raise UsageError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
        if arr.ndim == 0:
            raise UsageError(f"{name}: expected an array of examples, got a scalar")
        self.array: NDArray[Any] = arr
        self.display = name
        self.n_rows = arr.shape[0]
        self.row_shape = arr.shape[1:]
        self.column_names = IndexNames(arr.shape[1] if arr.ndim == 2 else 1)

    def text_column(self, column: int) -> bool:
        return self.text

    def chunks(self, groups: Sequence[Group], max_rows: int) -> Iterator[Chunk]:
        for start in range(0, self.array.shape[0], max_rows):
            yield self.read(groups, start, start + max_rows)

    def read(self, groups: Sequence[Group], start: int, stop: int) -> Chunk:
        """Read-only views: the metrics may work in place on buffers they own, never on yours."""
        block = self.array[start:stop].view()
        block.flags.writeable = False
        out: Chunk = []
        for g in groups:
            if g is None or block.ndim == 1:
                out.append(block)
            elif len(g) == 1:
                out.append(block[:, g[0]])
            else:
                out.append(block[:, list(g)])
        return out

    def token_reader(self, column: int | None, keep_last: bool) -> tuple[Reader, tuple[int, ...]]:
        """(B, T, V) logits as B*T rows of V; (B, T) ids as B*T values: a new reader of a view
        of the same array (a copy only where numpy's reshape needs one, as for a strided
        array). ``column`` plays no part: the array is the tokens."""
        shape = self.array.shape
        if keep_last:
            if len(shape) < 2:
                raise UsageError(f"{self.display}: logits need (N, V) or (B, T, V), not {shape}")
            view = ArrayReader(self.array.reshape(-1, shape[-1]), self.display)
            lead = shape[:-1]
        else:
            view = ArrayReader(self.array.reshape(-1), self.display)
            lead = shape
        return view, tuple(int(x) for x in lead)

    def range_reader(self) -> RangeReader:
        return self


def _is_text(arr: NDArray[Any]) -> bool:
    """Strings: a str dtype, or objects that are all str (None for a missing label)."""
    if arr.dtype.kind == "U":
        return True
    return arr.dtype.kind == "O" and all(v is None or isinstance(v, str) for v in arr.tolist())
