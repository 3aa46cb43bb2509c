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
from .prefetch import prefetch

ID_BATCH_ROWS = 1 << 16
# 1 MB blocks: with 4 MB, pyarrow's read-ahead for the id stream held ~150 MB more at its peak
# and was no faster (5M-row id files: 1.05 s and 480 MB with 1 MB, against 1.4 s and 625 MB)
ID_BLOCK_BYTES = 1 << 20


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


def _ids_to_numpy(arr: Any, try_integers: bool = False) -> NDArray[Any]:
    """An Arrow id column as numpy: numbers as they are, anything else as text objects.

    ``try_integers``: text that is exactly the decimal form of integers (``7``, not ``007`` or
    ``+7``) comes back as int64, which compares far faster than Python strings; the engine
    compares an int64 id with a text id by their text, so either form gives the same verdict.
    """
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
    if try_integers and not arr.null_count and len(arr):
        ints = _exact_integers(arr)
        if ints is not None:
            return ints
    return np.array(arr.to_pylist(), dtype=object)


def _exact_integers(text: Any) -> NDArray[np.int64] | None:
    """``text`` as int64 when every value is an integer written exactly as int64 prints it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    first = text[0].as_py()
    if not first.lstrip("-").isdigit():  # a failed cast costs ~0.3 s per million: look first
        return None
    try:
        ints = pc.cast(text, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if not pc.all(pc.equal(pc.cast(ints, pa.string()), text)).as_py():
        return None  # leading zeros or a sign: the text is the id, not the number
    return arrow_to_numpy(ints)


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


class _IdColumn(Reader):
    """One column of a data reader's file, read by a stream of its own."""

    def __init__(self, base: Any, column: int) -> None:
        self.base = base
        self.column = column
        self.display = base.display
        self.column_names = [base.column_names[column]]
        self.n_rows = base.n_rows


class CsvIds(_IdColumn):
    """One column of a CSV/TSV file as text, streamed with pyarrow; plain integers arrive as
    int64 (``ids_as_text`` tells the engine to show them as the text they are)."""

    ids_as_text = True

    def chunks(self, groups: Sequence[Group], max_rows: int) -> Iterator[Chunk]:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        base = self.base
        name = base.column_names[self.column]
        skip = _blank_lines_before(base) + 1 if base.has_header else 0
        names = list(base.column_names)
        read = pacsv.ReadOptions(column_names=names, skip_rows=skip, block_size=ID_BLOCK_BYTES)
        convert = pacsv.ConvertOptions(
            column_types={name: pa.string()},
            include_columns=[name],
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        row = 0
        src = base._open_binary()

        def decoded(stream: Any) -> Iterator[NDArray[Any]]:
            integers = True  # until a batch holds an id that is not a plain integer
            for batch in stream:
                ids = _ids_to_numpy(batch.column(0), try_integers=integers)
                integers = ids.dtype != object
                yield ids

        try:
            stream = pacsv.open_csv(
                src,
                read_options=read,
                parse_options=pacsv.ParseOptions(delimiter=base.delimiter),
                convert_options=convert,
            )
            # parsed and decoded on a thread of its own, while the data stream is scored
            for ids in prefetch(decoded(stream)):
                for start in range(0, len(ids), max_rows):
                    yield [ids[start : start + max_rows] for _ in groups]
                row += len(ids)
        except (pa.ArrowException, UnicodeDecodeError, OSError) as exc:
            raise base._diagnose(exc, row, []) from None  # row shape only: ids are not numbers
        finally:
            src.close()


class ParquetIds(_IdColumn):
    """One column of a Parquet file, its own type kept (text ids stay text)."""

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
