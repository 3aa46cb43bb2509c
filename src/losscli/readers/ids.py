"""Id columns: text or numbers, never converted to float, compared fast where they can be.

The data readers convert every selected cell to a number (fast, and what the metrics need);
an id may be text (Kaggle ids often are) and must be compared as written. A CSV reader parses
its id column as text in the same pass as the numbers (so a pipe's ids are checked too), and
text that is plain integers travels as int64, which compares far faster than Python strings;
the engine shows such ids as the text they are. A Parquet id column is decoded by a stream of
its own (columnar: only that column is read) and keeps its type.
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
PLAIN_INTEGER = re.compile(r"-?[1-9][0-9]{0,17}|0")  # as int64 prints it: the text is the number


def open_ids(reader: Reader, column: int) -> tuple[Reader, Group]:
    """Where the ids of ``reader``'s ``column`` come from: (reader, group)."""
    from .partitioned import PartitionedReader, RowRangeReader

    if isinstance(reader, PartitionedReader) and column < reader.width:  # a hive shard's own column
        inner, group = open_ids(reader.inner, column)
        if inner is reader.inner:
            return reader, group
        if isinstance(reader, RowRangeReader):  # a file beside shards: its ids of this shard's rows
            return RowRangeReader(inner, reader.start, reader.stop), group
        return inner, group
    from .arrow_reader import ArrowIds, ArrowReader
    from .csv_reader import CsvReader
    from .parquet_reader import ParquetReader

    if isinstance(reader, CsvReader):
        reader.text_columns.add(column)  # parsed as text beside the numbers, in one pass
        return reader, [column]
    if isinstance(reader, ArrowReader):  # an in-memory table (a ParquetReader without a file)
        return ArrowIds(reader, column), [0]
    if isinstance(reader, ParquetReader):
        return ParquetIds(reader, column), [0]
    from .numpy_reader import NpyReader

    if isinstance(reader, NpyReader) and reader.text:  # np.save of class names: labels as text
        reader.labels_as_text = True
    return reader, [column]  # numeric columns of other formats: the reader itself delivers them


def ids_from_text(texts: Sequence[str], try_integers: bool) -> NDArray[Any]:
    """Ids parsed in Python (small CSV files): int64 when every one is a plain integer."""
    if try_integers and all(PLAIN_INTEGER.fullmatch(t) for t in texts):
        return np.array([int(t) for t in texts], dtype=np.int64)
    return np.array(texts, dtype=object)


def ids_to_numpy(arr: Any, try_integers: bool = False) -> NDArray[Any]:
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
                    ids = ids_to_numpy(batch.column(0))
                    for start in range(0, len(ids), max_rows):
                        yield [ids[start : start + max_rows] for _ in groups]
                    row += batch.num_rows
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise InputError(f"is corrupt near row {row} ({exc})", path=self.display) from None
