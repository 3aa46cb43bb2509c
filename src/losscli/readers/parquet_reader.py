"""Parquet files, streamed a record batch at a time.

Numeric columns arrive as 1-D arrays; a list (or fixed-size list) column of numbers arrives as a
2-D (rows, width) array, which is how class scores and per-sequence values are usually stored.
Only the selected columns are decoded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from .base import (
    Chunk,
    Group,
    Reader,
    arrow_column,
    arrow_to_numpy,
    assemble,
    csv_index_columns,
    refuse_missing,
    wanted_columns,
)
from .prefetch import prefetch

READ_BYTES = 8 << 20
READ_MAX_ROWS = 1 << 20


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def pandas_index_columns(metadata: dict[bytes, bytes] | None, names: list[str]) -> tuple[int, ...]:
    """Columns the pandas metadata lists in ``index_columns`` (``__index_level_0__`` after a
    filter, or a named index). A RangeIndex is stored as metadata only: it has no column.
    Unreadable metadata (another writer's, or damaged) marks nothing."""
    import json

    raw = (metadata or {}).get(b"pandas")
    if raw is None:
        return ()
    try:
        listed = json.loads(raw).get("index_columns", [])
    except (ValueError, AttributeError):
        return ()
    if not isinstance(listed, list):
        return ()
    return tuple(sorted(names.index(c) for c in listed if isinstance(c, str) and c in names))


class ParquetReader(Reader):
    """A Parquet file. A null in a numeric column is a missing value (pandas and Polars write
    one for NaN/None, in float and integer columns alike): NaN under ``nan="skip"``, for the
    engine to drop with its row, else refused naming row and column."""

    def __init__(self, path: str, nan: str = "error") -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.display = path
        self.skip_missing = nan == "skip"
        try:
            # pre_buffer=False: reading whole row groups ahead doubles peak RSS and is slower here
            self._file = pq.ParquetFile(path, pre_buffer=False)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise InputError(f"is not a valid Parquet file ({_short(exc)})", path=path) from None
        schema = self._file.schema_arrow
        self.column_names = list(schema.names)
        # The pandas metadata's index, and a CSV's index carried over: ``pd.read_csv(f)`` (or
        # Polars') of a ``df.to_csv(f)`` names it ``Unnamed: 0`` (or ''), and writing Parquet keeps
        # it as a column. The same leading columns are skipped in the CSV, so here too.
        carried = csv_index_columns(self.column_names)
        if len(carried) == len(self.column_names):  # nothing but such names: they are the data
            carried = ()
        listed = pandas_index_columns(schema.metadata, self.column_names)
        self.index_columns = tuple(sorted({*listed, *carried}))
        self._types = [schema.field(j).type for j in range(len(schema.names))]
        self.n_rows = self._file.metadata.num_rows
        self._buffers: dict[int, NDArray[Any]] = {}
        self._tokens: dict[int, bool] = {}  # list columns read one token per row: keep_last

    def token_reader(self, column: int | None, keep_last: bool) -> tuple[Reader, tuple[int, ...]] | None:
        """A list column per sequence read one token per row: its elements (ids, or rows of V
        logits) become rows, and ``list_lengths`` gives the sequences. Any other column (or
        none named) is a flat table, read as it is (None)."""
        if column is None or not (self.is_list(column) or self._fixed_sequences(column, keep_last)):
            return None
        view = self._view()
        view._tokens = {**self._tokens, column: keep_last}
        view._buffers = {}
        view.n_rows = None  # rows are now tokens, counted as they are read
        return view, ()

    def _fixed_sequences(self, column: int, keep_last: bool) -> bool:
        """A fixed-size list column of ids, log-probs or mask values: a (B, T) array given as a
        table (a dict of 2-D arrays, as a tokenizer's BatchEncoding holds them), one sequence a
        row. Fixed-size lists of logits (``keep_last``) are each one token's V values."""
        import pyarrow.types as pt

        return not keep_last and bool(pt.is_fixed_size_list(self._types[column]))

    def is_list(self, column: int) -> bool:
        import pyarrow.types as pt

        t = self._types[column]
        return bool(pt.is_list(t) or pt.is_large_list(t))

    def list_lengths(self, column: int) -> NDArray[np.int64] | None:
        import pyarrow as pa
        import pyarrow.types as pt

        t = self._types[column]
        if pt.is_fixed_size_list(t) and self.n_rows is not None:
            return np.full(self.n_rows, t.list_size, dtype=np.int64)
        if not (pt.is_list(t) or pt.is_large_list(t)):
            return None
        parts = []
        try:
            for batch in self._file.iter_batches(columns=[self.column_names[column]], batch_size=1 << 16):
                offsets = arrow_to_numpy(batch.column(0).offsets)
                parts.append(np.diff(offsets).astype(np.int64))
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"is corrupt ({_short(exc)})", path=self.display) from None
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def text_column(self, column: int) -> bool:
        """A string column, or a dictionary (pandas category) of strings."""
        import pyarrow.types as pt

        t = self._types[column]
        if pt.is_dictionary(t):
            t = t.value_type
        return bool(pt.is_string(t) or pt.is_large_string(t))

    def _check_type(self, j: int) -> None:
        import pyarrow.types as pt

        t = self._types[j]
        value_type = t
        while pt.is_list(value_type) or pt.is_large_list(value_type) or pt.is_fixed_size_list(value_type):
            value_type = value_type.value_type
        if not (pt.is_integer(value_type) or pt.is_floating(value_type) or pt.is_boolean(value_type)):
            # Bad data, as the same strings in a CSV are (exit 3): the file, the column, the fix.
            raise InputError(
                f"holds {t} values, not numbers; pick numeric columns with --pred-col/--target-col",
                path=self.display,
                column=repr(self.column_names[j]),
            )

    def _to_numpy(self, arr: Any, j: int, row: int) -> NDArray[Any]:
        import pyarrow as pa
        import pyarrow.types as pt

        name = repr(self.column_names[j])
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        t = arr.type
        if arr.null_count:
            if not (pt.is_list(t) or pt.is_large_list(t) or pt.is_fixed_size_list(t)):
                return arrow_column(arr, self.display, row, name, "null value", self.skip_missing)
            bad = int(np.argmax(arrow_to_numpy(arr.is_null())))
            raise InputError(
                "null list (a missing row) in a list column, which cannot be skipped; "
                "drop or fill such rows before writing the file",
                path=self.display,
                row=row + bad,
                column=name,
            )
        if j in self._tokens:
            tokens = arr.flatten()  # one element per token: an id, or a list of V logits
            if tokens.null_count:
                raise InputError("a sequence holds a null token", path=self.display, row=row, column=name)
            if not self._tokens[j]:
                return arrow_to_numpy(tokens)
            arr, t = tokens, tokens.type
        if pt.is_list(t) or pt.is_large_list(t) or pt.is_fixed_size_list(t):
            rows = len(arr)
            if pt.is_fixed_size_list(t):
                width = t.list_size
            else:
                offsets = arrow_to_numpy(arr.offsets)
                lengths = np.diff(offsets)
                width = int(lengths[0]) if rows else 0
                if rows and not (lengths == width).all():
                    bad = int(np.argmax(lengths != width))
                    raise InputError(
                        f"list has {int(lengths[bad])} values but earlier rows have {width}",
                        path=self.display,
                        row=row + bad,
                        column=name,
                    )
            values = arr.flatten()
            if values.null_count:
                raise InputError("a list holds a null value", path=self.display, row=row, column=name)
            flat = arrow_to_numpy(values)
            return flat.reshape(rows, width)
        return arrow_to_numpy(arr)

    def row_groups_from(self, row: int) -> tuple[list[int], int] | None:
        """The row groups from the one holding ``row`` to the end, and that group's first row:
        where a row range of the file starts reading (a file beside shards), without decoding
        the groups before it. None when the file has no row groups to skip by."""
        meta = self._file.metadata
        first = 0
        for g in range(meta.num_row_groups):
            rows = meta.row_group(g).num_rows
            if first + rows > row:
                return list(range(g, meta.num_row_groups)), first
            first += rows
        return None

    def chunks(
        self, groups: Sequence[Group], max_rows: int, row_groups: list[int] | None = None
    ) -> Iterator[Chunk]:
        import pyarrow as pa

        wanted = wanted_columns(groups, len(self.column_names))
        for j in wanted:
            self._check_type(j)
        names = [self.column_names[j] for j in wanted]
        meta = self._file.metadata
        # rows are the file's own, also when reading starts at a later row group
        row = sum(meta.row_group(g).num_rows for g in range(row_groups[0])) if row_groups else 0
        try:
            batches = self._file.iter_batches(
                batch_size=self._read_rows(max_rows), columns=names, use_threads=True, row_groups=row_groups
            )
            for batch in prefetch(batches):
                if not self.skip_missing:
                    self._refuse_missing(batch, wanted, row)
                cols = {j: self._to_numpy(batch.column(pos), j, row) for pos, j in enumerate(wanted)}
                yield from self._sliced(groups, wanted, cols, row, max_rows)
                row += batch.num_rows
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise InputError(f"is corrupt near row {row} ({_short(exc)})", path=self.display) from None

    def _sliced(
        self,
        groups: Sequence[Group],
        wanted: list[int],
        cols: dict[int, NDArray[Any]],
        row: int,
        max_rows: int,
    ) -> Iterator[Chunk]:
        """One decoded batch (``row``: its first) as chunks of at most ``max_rows``; its list
        columns must hold as many tokens as one another."""
        out = assemble(groups, wanted, cols, self._buffers, self.display)
        lengths = {len(a) for a in out}
        if len(lengths) > 1:
            raise InputError(
                f"list columns hold different numbers of tokens near row {row}", path=self.display
            )
        for start in range(0, lengths.pop(), max_rows):
            yield [a[start : start + max_rows] for a in out]

    def _refuse_missing(self, batch: Any, wanted: list[int], row: int) -> None:
        """The first null of the batch's numeric columns in reading order (row, then column)."""
        import pyarrow.types as pt

        scalar = [
            (batch.column(pos), repr(self.column_names[j]))
            for pos, j in enumerate(wanted)
            if not (
                pt.is_list(self._types[j])
                or pt.is_large_list(self._types[j])
                or pt.is_fixed_size_list(self._types[j])
            )
        ]
        refuse_missing(scalar, self.display, row, "null value")

    def _read_rows(self, max_rows: int) -> int:
        """Rows per decoded batch: about READ_BYTES of data (small batches decode far slower),
        never fewer than a chunk; the chunks are then sliced out of it."""
        meta = self._file.metadata
        if meta.num_rows == 0 or meta.num_row_groups == 0:
            return max_rows
        total = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        per_row = max(1, total // max(meta.num_rows, 1))
        if self._tokens:  # a row is a whole sequence: read as few as fit the budget
            return int(max(1, min(READ_MAX_ROWS, READ_BYTES // per_row)))
        return int(max(max_rows, min(READ_MAX_ROWS, READ_BYTES // per_row)))

    def close(self) -> None:
        if not self.shares_files:
            self._file.close()
