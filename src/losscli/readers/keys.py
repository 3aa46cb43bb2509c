"""Group keys (``--group-by``): a column's values turned into small integer codes, chunk by chunk.

``KeyTable`` gives each distinct key (a tuple, one value per group-by column) a code in order of
first appearance, so a chunk's keys become one int array that ``np.bincount`` sums by, with no
Python loop per row. Values are encoded by pyarrow's hash kernel (``dictionary_encode``, or the
dictionary a Parquet file already stores for a pandas category), and only each chunk's distinct
values pass through Python. Memory is bounded by the number of groups: past ``max_groups`` the
run stops (exit 3) naming the columns.

Keys keep their type: text, integers, booleans and floats (a NaN float is null, as in pandas);
other types (dates, decimals) become their text. A CSV's keys are text as written (its empty
cell is null). The table is shared by a run's worker threads (a lock guards new codes).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from .base import Chunk, Group, Reader, arrow_to_numpy

KEY_BATCH_ROWS = 1 << 16
#: rows of key columns decoded at once from a Parquet file (about 4 MB of codes)
KEY_DECODE_ROWS = 1 << 19
#: combined codes of several columns are looked up densely below this many combinations
DENSE_COMBINATIONS = 1 << 22
Codes = NDArray[np.intp]


def plain_value(v: Any) -> Any:
    """A key value as plain JSON-able data: NaN is null, a numpy scalar its Python value."""
    if v is None or isinstance(v, (str, bool, int)):
        return v
    if isinstance(v, float):
        return None if math.isnan(v) else v
    item = getattr(v, "item", None)
    if callable(item):
        return plain_value(item())
    if isinstance(v, bytes):
        return v.decode("utf-8", "backslashreplace")
    return str(v)


class TooManyGroups(InputError):
    """More distinct keys than --max-groups allows (exit 3)."""


class KeyTable:
    """Distinct keys of one run, each with a code; per column, distinct values with a code."""

    def __init__(
        self,
        columns: Sequence[str],
        max_groups: int,
        display: str = "",
        shown: Sequence[str] | None = None,
        option: str = "--group-by",
    ) -> None:
        self.columns = tuple(columns)
        #: each column as an error names it: the report's key name is a file's stem when its
        #: columns are only numbered, which names no column ('cp' for column 0 of cp.npy)
        self.shown = tuple(shown) if shown is not None else tuple(repr(c) for c in columns)
        self.option = option
        self.max_groups = max_groups
        self.display = display
        self._values: list[dict[tuple[str, Any], int]] = [{} for _ in columns]
        self._value_list: list[list[Any]] = [[] for _ in columns]
        self._combos: dict[tuple[int, ...], int] = {}
        self.keys: list[tuple[Any, ...]] = []
        #: columns read from a CSV: text as written (int64 chunks back to their text, "" null)
        self.text_columns: set[int] = set()
        self._lock = threading.Lock()
        #: a stored dictionary every value of which already has a code -> its codes: the same
        #: dictionary in batch after batch (a Parquet row group's) is then mapped with one take
        self._known: dict[tuple[int, tuple[Any, ...]], NDArray[np.intp]] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def _value_code(self, i: int, value: Any) -> int:
        value = plain_value(value)
        t = (type(value).__name__, value)
        code = self._values[i].get(t)
        if code is None:
            code = len(self._value_list[i])
            self._values[i][t] = code
            self._value_list[i].append(value)
            if code >= self.max_groups:
                self._refuse([self.shown[i]])
        return code

    def _refuse(self, columns: Sequence[str]) -> None:
        """Past --max-groups (exit 3): ``columns`` as ``shown`` names them, the file as the path."""
        shown = ", ".join(columns)
        raise TooManyGroups(
            f"{self.option} {shown} has more than {self.max_groups:,} distinct keys (--max-groups): "
            "group by a column with fewer values, or raise --max-groups",
            path=self.display or None,
        )

    def column_codes(self, i: int, values: Any) -> Codes:
        """Codes of column ``i``'s values (a pyarrow Array, or a numpy array of values)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = values
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if not isinstance(arr, pa.Array):
            arr = self._from_numpy(i, np.asarray(values))
        stored = pa.types.is_dictionary(arr.type)
        if not stored:
            arr = pc.dictionary_encode(arr, null_encoding="encode")
        dictionary = arr.dictionary.to_pylist()
        indices = arr.indices
        if indices.null_count:  # a Parquet dictionary column's nulls are null indices
            indices = pc.fill_null(indices, len(dictionary))
        idx = arrow_to_numpy(indices)
        nulls = bool(arr.indices.null_count)
        known = self._known.get((i, tuple(dictionary))) if stored and not nulls else None
        if known is not None:  # every value of this dictionary has its code already, no null here
            mapped: Codes = known[idx]
            return mapped
        if stored:  # a stored dictionary (pandas categories) may hold values no row has
            present = np.flatnonzero(np.bincount(idx, minlength=len(dictionary) + 1)).tolist()
        else:
            present = list(range(len(dictionary)))
        lookup = np.zeros(len(dictionary) + 1, dtype=np.intp)
        with self._lock:
            for p in present:
                lookup[p] = self._value_code(i, dictionary[p] if p < len(dictionary) else None)
            complete = sum(1 for p in present if p < len(dictionary)) == len(dictionary)
            if stored and complete and len(self._known) < 64:
                self._known[(i, tuple(dictionary))] = lookup  # used only for batches without nulls
        out: Codes = lookup[idx]
        return out

    def _from_numpy(self, i: int, values: NDArray[Any]) -> Any:
        """A numpy chunk as an Arrow array: NaN is null (as pandas reads it); a CSV column's
        cells are text, and its empty cell null."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if values.ndim > 1:
            values = values.reshape(len(values), -1)[:, 0]
        if i not in self.text_columns:
            return pa.array(values, from_pandas=True)
        if values.dtype.kind != "O":
            values = values.astype(str)
        text = pa.array(values, type=pa.string(), from_pandas=True)
        return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)

    def codes(self, columns: Sequence[Any]) -> Codes:
        """Group codes of one chunk from its key columns (pyarrow arrays or numpy arrays)."""
        per = [self.column_codes(i, c) for i, c in enumerate(columns)]
        if len(per) == 1:
            with self._lock:  # one column: a group per value, in the same order
                values = self._value_list[0]
                while len(self.keys) < len(values):
                    self.keys.append((values[len(self.keys)],))
            return per[0]
        return self._combine(per)

    def _combine(self, per: list[Codes]) -> Codes:
        """Codes of the combinations of several columns' codes: chunk-local combined integers,
        their distinct values found densely (or by sorting when there are many), and only
        those passed through the table."""
        sizes = [len(v) for v in self._value_list]
        combined = np.zeros(len(per[0]), dtype=np.int64)
        stride = 1
        for codes, size in zip(reversed(per), reversed(sizes), strict=True):
            combined += codes * stride
            stride *= max(size, 1)
        if stride <= DENSE_COMBINATIONS:
            present = np.flatnonzero(np.bincount(combined, minlength=stride))
            inverse = None
        else:
            present, inverse = np.unique(combined, return_inverse=True)
        with self._lock:
            group = np.empty(len(present), dtype=np.intp)
            for j, c in enumerate(present.tolist()):
                parts = []
                for size in reversed(sizes):
                    parts.append(c % max(size, 1))
                    c //= max(size, 1)
                combo = tuple(reversed(parts))
                code = self._combos.get(combo)
                if code is None:
                    code = len(self.keys)
                    if code >= self.max_groups:
                        self._refuse(self.shown)
                    self._combos[combo] = code
                    self.keys.append(tuple(self._value_list[i][v] for i, v in enumerate(combo)))
                group[j] = code
        if inverse is not None:
            return group[inverse.reshape(-1)]
        lut = np.zeros(stride, dtype=np.intp)
        lut[present] = group
        return lut[combined]


class ArrowKeys(Reader):
    """Group codes from key columns of a Parquet file (a stream of its own that decodes only
    those columns) or of an in-memory table; one array of codes per chunk."""

    def __init__(self, base: Any, columns: Sequence[int], table: KeyTable) -> None:
        self.base = base
        self.positions = list(columns)
        self.table = table
        self.display = base.display
        self.column_names = ["group"]
        self.n_rows = base.n_rows

    def _batches(self, rows: int) -> Iterator[list[Any]]:
        import pyarrow.parquet as pq

        names = [self.base.column_names[j] for j in self.positions]
        source = getattr(self.base, "table", None)
        if source is not None:  # an in-memory table (the Python API's frames)
            for batch in source.select(self.positions).to_batches(KEY_BATCH_ROWS):
                yield list(batch.columns)
            return
        from .prefetch import prefetch

        with pq.ParquetFile(self.base.display, pre_buffer=False, read_dictionary=names) as file:
            # decoded a batch ahead on a thread of its own, as the data columns are: the keys'
            # decode overlaps the math instead of waiting in line with it
            batches = file.iter_batches(batch_size=rows, columns=names, use_threads=True)
            for batch in prefetch(batches):
                yield list(batch.columns)

    def chunks(self, groups: Sequence[Group], max_rows: int) -> Iterator[Chunk]:
        import pyarrow as pa

        row = 0
        try:
            # decoded in batches of several chunks: the per-batch work (a dictionary's lookup
            # table) is Python, paid per batch, not per chunk
            for columns in self._batches(max(max_rows, KEY_DECODE_ROWS)):
                codes = self.table.codes(columns)
                for start in range(0, len(codes), max_rows):
                    yield [codes[start : start + max_rows] for _ in groups]
                row += len(codes)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise InputError(f"is corrupt near row {row} ({exc})", path=self.display) from None


class SequenceKeys(Reader):
    """Per-sequence keys (a Parquet row per sequence, its tokens in list columns) repeated for
    every token of the row's sequence: ``lengths`` are the sequences' token counts."""

    def __init__(self, inner: ArrowKeys, lengths: NDArray[np.int64]) -> None:
        self.inner, self.lengths = inner, lengths
        self.display = inner.display
        self.column_names = ["group"]
        self.n_rows = int(lengths.sum())

    def chunks(self, groups: Sequence[Group], max_rows: int) -> Iterator[Chunk]:
        seq = 0
        for (codes,) in self.inner.chunks([[0]], KEY_BATCH_ROWS):
            tokens = np.repeat(codes, self.lengths[seq : seq + len(codes)])
            seq += len(codes)
            for start in range(0, len(tokens), max_rows):
                yield [tokens[start : start + max_rows] for _ in groups]
