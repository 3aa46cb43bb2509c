"""A shard's hive partition values (``lang=de/part-0.parquet``) as columns of every one of its rows.

``PartitionedReader`` wraps the reader of one shard and appends one constant column per
partition key after the file's own columns, so ``--pred-col``-style options (and the run's other
column options) can name them. They are listed as index columns: a rule that takes "every other
column" as predictions never takes them, as it never takes a pandas index; only a name does.
Everything else is the wrapped reader's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from .base import Chunk, Group, RangeReader, Reader, missing_message, stack_columns


def constant_column(value: Any, rows: int) -> NDArray[Any]:
    """A partition value repeated: int32 (pyarrow's inference for integer keys) or text; a null
    (``__HIVE_DEFAULT_PARTITION__``) is NaN, a missing value as --nan treats one, and a null
    group key."""
    if value is None:
        return np.full(rows, np.nan)
    if isinstance(value, int) and not isinstance(value, bool):
        return np.full(rows, value, dtype=np.int32)
    return np.full(rows, value, dtype=object)


class PartitionedReader(Reader):
    """``inner``'s columns, then one column per (key, value) of ``partition``."""

    def __init__(self, inner: Reader, partition: Sequence[tuple[str, Any]]) -> None:
        self.inner = inner
        self.width = len(inner.column_names)  # the file's own columns come first
        # keys the file holds as columns too (Polars) are read from the file, as columns of it
        self.partition = tuple(p for p in partition if not _in_file(inner, *p))
        self.column_names = [*inner.column_names, *(k for k, _ in self.partition)]
        self.index_columns = (*inner.index_columns, *range(self.width, len(self.column_names)))
        self.display = inner.display
        #: a null key (__HIVE_DEFAULT_PARTITION__) read as data, refused at the first row read
        self.null_data: str | None = None
        self.first_row = 0  # the file's row this reader starts at (a row range's start)

    def read_as_numbers(self, columns: Sequence[int], skip_missing: bool) -> None:
        """Partition columns that a role reads as numbers (predictions, targets, weights): a
        text key is refused now, as a file's own text column is (exit 3, not a crash in the
        math); a null key is a missing value, refused at its first row unless --nan skip."""
        for j in columns:
            if j < self.width:
                continue
            key, value = self.partition[j - self.width]
            if isinstance(value, str):
                raise InputError(
                    f"holds text values (its hive partition folder {key}={value}), not numbers; "
                    "pick numeric columns with --pred-col/--target-col/--weight-col",
                    path=self.display,
                    column=repr(key),
                )
            if value is None and not skip_missing and self.null_data is None:
                self.null_data = key

    def __getattr__(self, name: str) -> Any:  # a format's own attributes (a CSV's use_header)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    # what the wrapped reader learns while reading is read from it, not copied once
    n_rows = property(lambda self: self.inner.n_rows)
    row_shape = property(lambda self: self.inner.row_shape)
    itemsize = property(lambda self: self.inner.itemsize)
    scratch_chunks = property(lambda self: self.inner.scratch_chunks)
    delimited = property(lambda self: self.inner.delimited)
    header_guessed = property(lambda self: self.inner.header_guessed)
    blank_tail = property(lambda self: self.inner.blank_tail)
    ids_as_text = property(lambda self: self.inner.ids_as_text)
    sequence_records = property(lambda self: self.inner.sequence_records)
    token_texts = property(lambda self: self.inner.token_texts)
    nulls = property(lambda self: self.inner.nulls)

    @property
    def header_row(self) -> bool:
        return self.inner.header_row

    def named(self) -> bool:
        """Named when the file is, or has partition columns (named by their keys)."""
        return bool(self.partition) or self.inner.named()

    def header_text(self, j: int) -> str:
        return self.inner.header_text(j) if j < self.width else self.column_names[j]

    def text_column(self, column: int) -> bool:
        if column < self.width:
            return self.inner.text_column(column)
        return isinstance(self.partition[column - self.width][1], str)

    def list_lengths(self, column: int) -> NDArray[np.int64] | None:
        return self.inner.list_lengths(column) if column < self.width else None

    def row_place(self, row: int) -> str | None:
        return self.inner.row_place(row)

    def token_reader(self, column: int | None, keep_last: bool) -> tuple[Reader, tuple[int, ...]] | None:
        return self.inner.token_reader(column, keep_last)

    def _split(self, groups: Sequence[Group]) -> list[Group]:
        """The groups as the file's reader sees them (its own columns only)."""
        return [None if g is None else [j for j in g if j < self.width] for g in groups]

    def _joined(self, groups: Sequence[Group], chunk: Chunk) -> Chunk:
        out: Chunk = []
        rows = len(chunk[0]) if chunk else 0
        if rows and self.null_data is not None:  # the same null on every row: the first is named
            raise InputError(
                missing_message("null value"),
                path=self.display,
                row=self.first_row,
                column=repr(self.null_data),
            )
        for g, arr in zip(groups, chunk, strict=True):
            if g is None or all(j < self.width for j in g):
                out.append(arr)
                continue
            cols = [
                arr[:, [j for j in g if j < self.width].index(j)]
                if arr.ndim == 2
                else arr
                if j < self.width
                else constant_column(self.partition[j - self.width][1], rows)
                for j in g
            ]
            out.append(cols[0] if len(cols) == 1 else stack_columns(cols, None)[0])
        return out

    def chunks(self, groups: Sequence[Group], max_rows: int) -> Iterator[Chunk]:
        inner_groups = self._split(groups)
        if all(g is None or g for g in inner_groups):
            for chunk in self.inner.chunks(inner_groups, max_rows):
                yield self._joined(groups, chunk)
            return
        yield from self._constants_only(groups, inner_groups, max_rows)

    def _constants_only(self, groups: Sequence[Group], inner: list[Group], max_rows: int) -> Iterator[Chunk]:
        """Some group reads only partition columns: the file still says how many rows there are."""
        probe: list[Group] = [[0]]
        reading = [g for g in inner if g is None or g]
        for chunk in self.inner.chunks(reading or probe, max_rows):
            rows = len(chunk[0])
            full: Chunk = []
            it = iter(chunk)
            for g in inner:
                full.append(next(it) if (g is None or g) else np.empty(rows))
            yield self._joined(groups, full)

    def range_reader(self) -> RangeReader | None:
        inner = self.inner.range_reader()
        return None if inner is None else _PartitionedRanges(self, inner)

    def close(self) -> None:
        self.inner.close()


class _PartitionedRanges(RangeReader):
    def __init__(self, outer: PartitionedReader, inner: RangeReader) -> None:
        self.outer, self.inner = outer, inner

    def read(self, groups: Sequence[Group], start: int, stop: int) -> Chunk:
        inner = self.outer._split(groups)
        reading = [g if (g is None or g) else [0] for g in inner]
        return self.outer._joined(groups, self.inner.read(reading, start, stop))


class RowRangeReader(PartitionedReader):
    """Rows [start, stop) of a file as one part of a run: a single file read beside a sharded
    input (each shard's rows of it), or a large shard cut into parts at its row groups (with its
    hive partition's columns). By seeking where the format can (.npy), else by streaming past
    the rows before (Parquet: from the row group that holds ``start``)."""

    def __init__(
        self,
        inner: Reader,
        start: int,
        stop: int,
        partition: Sequence[tuple[str, Any]] = (),
        total: int | None = None,
    ) -> None:
        super().__init__(inner, partition)
        self.start, self.stop = start, stop
        self.first_row = start
        #: a single file beside shards: all the shards' rows, where the file must end (a file
        #: of unknown length, a CSV, is checked as it is read: short in any shard, long in the last)
        self.total = total

    n_rows = property(lambda self: self.stop - self.start)

    def chunks(self, groups: Sequence[Group], max_rows: int) -> Iterator[Chunk]:
        if not self.partition:
            yield from self._range_chunks(groups, max_rows)
            return
        reading = [g if (g is None or g) else [0] for g in self._split(groups)]
        for chunk in self._range_chunks(reading, max_rows):
            yield self._joined(groups, chunk)

    def _range_chunks(self, groups: Sequence[Group], max_rows: int) -> Iterator[Chunk]:
        ranges = self.inner.range_reader()
        if ranges is not None:
            for at in range(self.start, self.stop, max_rows):
                yield ranges.read(groups, at, min(self.stop, at + max_rows))
            return
        row, stream = 0, None
        skip = getattr(self.inner, "row_groups_from", None)  # Parquet: start at the right row group
        found = skip(self.start) if skip is not None and self.start else None
        if found is not None:
            stream = self.inner.chunks(groups, max_rows, row_groups=found[0])  # type: ignore[call-arg]
            row = found[1]
        for chunk in stream if stream is not None else self.inner.chunks(groups, max_rows):
            n = len(chunk[0]) if chunk else 0
            lo, hi = max(self.start - row, 0), min(self.stop - row, n)
            row += n
            if hi > lo:
                yield [a[lo:hi] for a in chunk]
            if row > self.stop and self.stop == self.total:
                self._refuse_length(None)
            if row >= self.stop and self.stop != self.total:
                return
        if row < self.stop:
            self._refuse_length(row)

    def _refuse_length(self, rows: int | None) -> None:
        """The file ended before this shard's rows (``rows``: where), or goes on past all the
        shards' rows (None): not a row per row of the shards."""
        if self.total is None:
            detail = f"ends after {rows:,} rows, before row {self.stop:,} that this part reads"
        elif rows is not None:
            detail = f"ends after {rows:,} rows, but the shards have {self.total:,}"
        else:
            detail = f"has more rows than the shards' {self.total:,}"
        raise InputError(
            f"{detail}: one file beside sharded inputs needs a row per row of all the shards",
            path=self.display,
        )

    def range_reader(self) -> RangeReader | None:
        inner = self.inner.range_reader()
        if inner is None:
            return None
        shifted = _ShiftedRanges(inner, self.start)
        return _PartitionedRanges(self, shifted) if self.partition else shifted


class _ShiftedRanges(RangeReader):
    def __init__(self, inner: RangeReader, start: int) -> None:
        self.inner, self.start = inner, start

    def read(self, groups: Sequence[Group], start: int, stop: int) -> Chunk:
        return self.inner.read(groups, start + self.start, stop + self.start)


def _in_file(inner: Reader, key: str, value: Any) -> bool:
    """The file holds the key as a column of its own: Polars' partitioned output, read from the
    file (see ``hive_keys``); any other column of that name is a clash, refused as pyarrow's
    datasets refuse it (which one would --group-by mean?)."""
    if key not in inner.column_names:
        return False
    from .hive_keys import file_keeps_key

    if file_keeps_key(inner, key, value):
        return True
    raise InputError(
        f"has a column {key!r} and sits in a partition folder {key}=...: the two would share a "
        "name, and the column cannot hold the folder's key (another type); rename the column or "
        "the partition key",
        path=inner.display,
    )


def partition_numbers(roles: Iterable[Any], skip_missing: bool) -> None:
    """Tell each shard's reader which of its partition columns the run reads as numbers
    (``roles``: the plan's roles with ``reader`` and ``group``, ids and text labels left out)."""
    for role in roles:
        reader, group = role.reader, role.group
        if isinstance(reader, PartitionedReader) and group is not None:
            reader.read_as_numbers(group, skip_missing)
