"""Id columns, read as a stream of their own: text or numbers, never converted to float.

The data readers convert every selected cell to a number (fast, and what the metrics need);
an id may be text (Kaggle ids often are) and must be compared as written. So an id column gets
its own pyarrow stream over the same file (CSV: only that column is converted; Parquet: only
that column is decoded). The engine aligns it with the data like any other input, so memory
stays bounded and the data path is untouched when a file has no id column.

Ids come out as numpy arrays: numbers for numeric Parquet columns, Python ``str`` objects for
CSV/TSV (the text as written: ``007`` stays ``007``) and for text Parquet columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from .base import Chunk, Group, Reader, arrow_to_numpy

ID_BATCH_ROWS = 1 << 16


def open_ids(reader: Reader, column: int) -> tuple[Reader, Group] | None:
    """Where the ids of ``reader``'s ``column`` come from: (reader, group), or None when the
    input can be read only once (stdin, a pipe), so a second stream is impossible."""
    from .csv_reader import CsvReader
    from .parquet_reader import ParquetReader

    if isinstance(reader, CsvReader):
        if reader.read_once:
            return None
        return CsvIds(reader, column), [0]
    if isinstance(reader, ParquetReader):
        return ParquetIds(reader, column), [0]
    return reader, [column]  # numeric columns of other formats: the reader itself delivers them


def _ids_to_numpy(arr: Any) -> NDArray[Any]:
    """An Arrow id column as numpy: numbers as they are, anything else as text objects."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pt

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if not arr.null_count and (pt.is_integer(t) or pt.is_floating(t)):
        return arrow_to_numpy(arr)
    if not (pt.is_string(t) or pt.is_large_string(t)):
        arr = pc.cast(arr, pa.string())
    return np.array(arr.to_pylist(), dtype=object)


def _blank_lines_before(base: Any) -> int:
    """Empty lines before the header (after a UTF-8 BOM): pyarrow's ``skip_rows`` counts them,
    so the ids stream must skip them too, or it reads the header as its first id."""
    src = base._open_binary()
    try:
        head = src.read(1 << 16)
    finally:
        src.close()
    head = head.removeprefix(b"\xef\xbb\xbf")
    blank = head[: len(head) - len(head.lstrip(b"\r\n"))]
    return len(re.findall(rb"\r\n|\n|\r", blank))


class CsvIds(Reader):
    """One column of a CSV/TSV file as text, streamed with pyarrow."""

    def __init__(self, base: Any, column: int) -> None:
        self.base = base
        self.column = column
        self.display = base.display
        self.column_names = [base.column_names[column]]
        self.n_rows = base.n_rows

    def chunks(self, groups: Sequence[Group], max_rows: int) -> Iterator[Chunk]:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        base = self.base
        name = base.column_names[self.column]
        skip = _blank_lines_before(base) + 1 if base.has_header else 0
        read = pacsv.ReadOptions(column_names=list(base.column_names), skip_rows=skip, block_size=4 << 20)
        convert = pacsv.ConvertOptions(
            column_types={name: pa.string()},
            include_columns=[name],
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        row = 0
        src = base._open_binary()
        try:
            stream = pacsv.open_csv(
                src,
                read_options=read,
                parse_options=pacsv.ParseOptions(delimiter=base.delimiter),
                convert_options=convert,
            )
            for batch in stream:
                ids = _ids_to_numpy(batch.column(0))
                for start in range(0, len(ids), max_rows):
                    yield [ids[start : start + max_rows] for _ in groups]
                row += batch.num_rows
        except (pa.ArrowException, UnicodeDecodeError, OSError) as exc:
            raise base._diagnose(exc, row, []) from None  # row shape only: ids are not numbers
        finally:
            src.close()


class ParquetIds(Reader):
    """One column of a Parquet file, its own type kept (text ids stay text)."""

    def __init__(self, base: Any, column: int) -> None:
        self.base = base
        self.column = column
        self.display = base.display
        self.column_names = [base.column_names[column]]
        self.n_rows = base.n_rows

    def chunks(self, groups: Sequence[Group], max_rows: int) -> Iterator[Chunk]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        row = 0
        try:
            # a file object of its own: the data reader iterates its own in another thread
            with pq.ParquetFile(self.base.display, pre_buffer=False) as file:
                batches = file.iter_batches(
                    batch_size=max(max_rows, ID_BATCH_ROWS), columns=[self.column_names[0]]
                )
                for batch in batches:
                    ids = _ids_to_numpy(batch.column(0))
                    for start in range(0, len(ids), max_rows):
                        yield [ids[start : start + max_rows] for _ in groups]
                    row += batch.num_rows
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise InputError(f"is corrupt near row {row} ({exc})", path=self.display) from None
