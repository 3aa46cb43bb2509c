"""In-memory tables (a pyarrow Table, and what the Python API turns into one: pandas and Polars
DataFrames, record batches, dicts of arrays, Arrow C streams) read as a Parquet file is.

A table keeps its column names, so the rules that read a file's columns apply unchanged: a
pandas index is not data, id-like columns go to the breakdown, two tables pair by name, ce's
class-named columns map labels. The column logic (types, nulls, list columns) is the Parquet
reader's, inherited; only where the batches come from differs. The data is already in memory,
so rows are sliced (zero-copy for numeric columns), never decoded, and a range reader lets
worker threads score slices of the same table.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .base import Chunk, Group, RangeReader, Reader, assemble, csv_index_columns, wanted_columns
from .ids import ID_BATCH_ROWS, ids_to_numpy
from .parquet_reader import READ_BYTES, READ_MAX_ROWS, ParquetReader, pandas_index_columns


def one_chunk(arr: Any) -> Any:
    """A ChunkedArray as one Array: its only chunk as it is (no copy), several concatenated."""
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        return arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    return arr


class ArrowReader(ParquetReader, RangeReader):
    """A pyarrow Table the caller's data became; ``display`` is the role ("preds")."""

    def __init__(self, table: Any, display: str, nan: str = "error") -> None:
        self.display = display
        self.skip_missing = nan == "skip"
        self.table = table
        schema = table.schema
        self.column_names = [str(n) for n in schema.names]
        carried = csv_index_columns(self.column_names)  # a frame read back from pandas' CSV
        if len(carried) == len(self.column_names):
            carried = ()
        listed = pandas_index_columns(schema.metadata, self.column_names)
        self.index_columns = tuple(sorted({*listed, *carried}))
        self._types = [schema.field(j).type for j in range(len(schema.names))]
        self.n_rows = table.num_rows
        # values per row, for the default chunk size: a 1000-class frame gets short chunks
        self.row_shape = (max(1, sum(getattr(t, "list_size", 1) for t in self._types)),)
        self._buffers: dict[int, NDArray[Any]] = {}
        self._tokens: dict[int, bool] = {}

    def list_lengths(self, column: int) -> NDArray[np.int64] | None:
        import pyarrow.types as pt

        t = self.table.schema.field(column).type
        if pt.is_fixed_size_list(t):  # a 2-D array in a dict: (B, T), one sequence a row
            return np.full(self.table.num_rows, t.list_size, dtype=np.int64)
        if not self.is_list(column):
            return None
        offsets = [np.diff(self._offsets(chunk)) for chunk in self.table.column(column).chunks]
        return np.concatenate(offsets).astype(np.int64) if offsets else np.empty(0, dtype=np.int64)

    @staticmethod
    def _offsets(chunk: Any) -> NDArray[Any]:
        from .base import arrow_to_numpy

        return arrow_to_numpy(chunk.offsets)

    def _columns(self, start: int, rows: int, wanted: list[int]) -> tuple[dict[int, NDArray[Any]], int]:
        """The wanted columns of rows [start, start + rows) as numpy (nulls refused, or NaN
        under nan="skip"), and how many rows there were."""
        part = self.table.slice(start, rows).select(wanted)
        if not self.skip_missing:
            self._refuse_missing(part, wanted, start)
        cols = {j: self._to_numpy(one_chunk(part.column(pos)), j, start) for pos, j in enumerate(wanted)}
        return cols, part.num_rows

    def row_groups_from(self, row: int) -> tuple[list[int], int] | None:
        return None  # a table in memory: its ranges are slices (range_reader)

    def chunks(
        self, groups: Sequence[Group], max_rows: int, row_groups: list[int] | None = None
    ) -> Iterator[Chunk]:
        wanted = wanted_columns(groups, len(self.column_names))
        for j in wanted:
            self._check_type(j)
        step = self._slice_rows(max_rows)
        row, total = 0, self.table.num_rows
        while row < total:
            cols, rows = self._columns(row, step, wanted)
            yield from self._sliced(groups, wanted, cols, row, max_rows)
            row += rows

    def _slice_rows(self, max_rows: int) -> int:
        """Rows per slice: a chunk; when a row is a whole sequence (list columns read as
        tokens), as many sequences as fit READ_BYTES."""
        if not self._tokens or not self.table.num_rows:
            return max_rows
        per_row = max(1, self.table.nbytes // self.table.num_rows)
        return int(max(1, min(READ_MAX_ROWS, READ_BYTES // per_row)))

    def read(self, groups: Sequence[Group], start: int, stop: int) -> Chunk:
        """Rows [start, stop): the range a worker thread scores (see ``range_reader``)."""
        wanted = wanted_columns(groups, len(self.column_names))
        for j in wanted:
            self._check_type(j)
        cols, _ = self._columns(start, stop - start, wanted)
        return assemble(groups, wanted, cols, self._buffers, self.display)

    def range_reader(self) -> RangeReader | None:
        """A view with buffers of its own, for another thread; None once rows are tokens."""
        if self._tokens:
            return None
        view = self._view()
        view._buffers = {}
        return view

    def close(self) -> None:
        """Nothing to close: the table is the caller's."""


class ArrowIds(Reader):
    """One column of an in-memory table, its own type kept (text ids stay text)."""

    def __init__(self, base: ArrowReader, column: int) -> None:
        self.table = base.table
        self.column = column
        self.display = base.display
        self.column_names = [base.column_names[column]]
        self.n_rows = base.n_rows

    def chunks(self, groups: Sequence[Group], max_rows: int) -> Iterator[Chunk]:
        col = self.table.column(self.column)
        step = max(max_rows, ID_BATCH_ROWS)
        for row in range(0, len(col), step):
            ids = ids_to_numpy(col.slice(row, step))
            for start in range(0, len(ids), max_rows):
                yield [ids[start : start + max_rows] for _ in groups]
