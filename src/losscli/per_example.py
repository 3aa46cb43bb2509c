"""--per-example: every counted example's loss, streamed to a file in input order.

Writers never hold all losses in memory. They write to a temporary file beside the target and
rename it into place only when the run succeeds, so a failed or interrupted run leaves neither
a partial file nor a clobbered old one.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from .errors import OutputError

NPY_HEADER_BYTES = 128  # fixed, so the real row count can be written over the placeholder
PARQUET_ROWS_PER_GROUP = 1 << 20


def _kind(path: str) -> str:
    low = path.lower()
    if path == "-" or low.endswith(".csv"):
        return "csv"
    if low.endswith((".parquet", ".pq")):
        return "parquet"
    if low.endswith(".npy"):
        return "npy"
    raise OutputError(f"{path}: --per-example writes .csv, .parquet or .npy (or - for CSV on stdout)")


class PerExampleWriter:
    """Base: a temporary file beside ``path``; ``commit`` renames it, ``abort`` removes it."""

    def __init__(self, path: str, extra: tuple[str, ...] = (), ids: bool = False) -> None:
        self.path = path
        self.extra = extra  # int64 columns between row and loss (sequence, position)
        self.ids = ids  # an ``id`` column after ``row``: the input's id column, as read
        self._ids: NDArray[Any] | None = None  # the ids of the rows being written
        self.rows_written = 0
        self.tmp_path: str | None = None
        self.fp: IO[bytes]
        if path == "-":
            self.fp = sys.stdout.buffer
            return
        directory = os.path.dirname(os.path.abspath(path))
        try:
            fd, self.tmp_path = tempfile.mkstemp(
                prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory
            )
        except OSError as exc:
            raise OutputError(f"{path}: cannot write here ({exc.strerror})") from None
        self.fp = os.fdopen(fd, "wb")

    def write(
        self,
        rows: NDArray[np.int64],
        losses: NDArray[np.float64],
        extra: dict[str, NDArray[Any]] | None = None,
        ids: NDArray[Any] | None = None,
    ) -> None:
        columns = [np.asarray((extra or {})[name], dtype=np.int64) for name in self.extra]
        self._ids = ids if self.ids else None
        try:
            self._write(rows, columns, np.asarray(losses, dtype=np.float64))
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(f"{self.path}: write failed ({exc.strerror or exc})") from None
        self.rows_written += len(rows)

    def _write(
        self, rows: NDArray[np.int64], extra: list[NDArray[np.int64]], losses: NDArray[np.float64]
    ) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Format-specific closing bytes, before the file is closed."""

    def commit(self) -> None:
        try:
            self._finish()
            self.fp.flush()
            if self.tmp_path is not None:
                os.fsync(self.fp.fileno())
                self.fp.close()
                os.replace(self.tmp_path, self.path)
                self.tmp_path = None
        except OSError as exc:
            self.abort()
            raise OutputError(f"{self.path}: could not be finished ({exc.strerror or exc})") from None

    def abort(self) -> None:
        if self.tmp_path is None:
            return
        with contextlib.suppress(OSError):
            self.fp.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp_path)
        self.tmp_path = None


class CsvWriter(PerExampleWriter):
    """``row,loss``; losses in Python's shortest round-trip repr, so every float64 survives."""

    def __init__(self, path: str, extra: tuple[str, ...] = (), ids: bool = False) -> None:
        super().__init__(path, extra, ids)
        head = ["row", *(["id"] if ids else []), *extra, "loss"]
        self.fp.write((",".join(head) + "\n").encode("ascii"))

    def _write(
        self, rows: NDArray[np.int64], extra: list[NDArray[np.int64]], losses: NDArray[np.float64]
    ) -> None:
        ids = [] if self._ids is None else [[_csv_cell(v) for v in self._ids.tolist()]]
        cells = zip(rows.tolist(), *ids, *[c.tolist() for c in extra], losses.tolist(), strict=True)
        lines = [",".join([*map(str, c[:-1]), repr(c[-1])]) + "\n" for c in cells]
        self.fp.write("".join(lines).encode("utf-8"))


def _csv_cell(value: Any) -> str:
    """An id as a CSV cell: quoted (quotes doubled) when it holds a delimiter, quote or line end."""
    text = value if isinstance(value, str) else str(value)
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


class NpyWriter(PerExampleWriter):
    """A structured .npy with fields ``row`` (int64), any extra int64 fields, ``loss`` (float64).

    No ``id`` field: ids may be text of any length, which a fixed-layout record cannot hold
    while streaming; .csv and .parquet outputs carry them.
    """

    def __init__(self, path: str, extra: tuple[str, ...] = (), ids: bool = False) -> None:
        super().__init__(path, extra, False)
        self.dtype = np.dtype([("row", "<i8"), *[(name, "<i8") for name in extra], ("loss", "<f8")])
        self.fp.write(self._header(0))

    def _header(self, rows: int) -> bytes:
        text = f"{{'descr': {self.dtype.descr!r}, 'fortran_order': False, 'shape': ({rows},), }}"
        magic = b"\x93NUMPY\x01\x00"
        body_len = NPY_HEADER_BYTES - len(magic) - 2
        body = text.ljust(body_len - 1) + "\n"
        return magic + len(body).to_bytes(2, "little") + body.encode("latin1")

    def _write(
        self, rows: NDArray[np.int64], extra: list[NDArray[np.int64]], losses: NDArray[np.float64]
    ) -> None:
        rec = np.empty(len(rows), dtype=self.dtype)
        rec["row"] = rows
        for name, values in zip(self.extra, extra, strict=True):
            rec[name] = values
        rec["loss"] = losses
        self.fp.write(rec.tobytes())

    def _finish(self) -> None:
        self.fp.flush()
        self.fp.seek(0)
        self.fp.write(self._header(self.rows_written))
        self.fp.seek(0, os.SEEK_END)


class ParquetWriter(PerExampleWriter):
    """Columns ``row``, any extra, ``loss``; buffered into row groups of about a million rows."""

    def __init__(self, path: str, extra: tuple[str, ...] = (), ids: bool = False) -> None:
        import pyarrow as pa

        super().__init__(path, extra, ids)
        self._pa = pa
        self.writer: Any = None  # opened at the first rows: the id column's type comes from them
        self.schema: Any = None
        self.pending: list[Any] = []
        self.pending_rows = 0

    def _open(self, id_type: Any) -> None:
        import pyarrow.parquet as pq

        pa = self._pa
        fields = [("row", pa.int64())]
        if self.ids:
            fields.append(("id", id_type))
        fields += [*[(name, pa.int64()) for name in self.extra], ("loss", pa.float64())]
        self.schema = pa.schema(fields)
        self.writer = pq.ParquetWriter(self.fp, self.schema)

    def _write(
        self, rows: NDArray[np.int64], extra: list[NDArray[np.int64]], losses: NDArray[np.float64]
    ) -> None:
        pa = self._pa
        id_array = None if self._ids is None else pa.array(self._ids.tolist())
        if self.writer is None:
            self._open(id_array.type if id_array is not None else pa.string())
        arrays = [pa.array(np.array(rows, copy=True))]
        if self.ids:
            arrays.append(id_array.cast(self.schema.field("id").type) if id_array is not None else None)
        arrays += [pa.array(np.array(a, copy=True)) for a in (*extra, losses)]
        self.pending.append(pa.record_batch(arrays, schema=self.schema))
        self.pending_rows += len(rows)
        if self.pending_rows >= PARQUET_ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.writer.write_table(self._pa.Table.from_batches(self.pending, schema=self.schema))
            self.pending, self.pending_rows = [], 0

    def _finish(self) -> None:
        if self.writer is None:
            self._open(self._pa.string())
        self._flush()
        self.writer.close()


def open_writer(path: str, extra: tuple[str, ...] = (), ids: bool = False) -> PerExampleWriter:
    """A writer for ``path``'s format; ``extra`` names int64 columns written before ``loss``;
    ``ids``: an ``id`` column after ``row`` (.csv and .parquet; .npy has none)."""
    kind = _kind(path)
    if kind == "parquet":
        return ParquetWriter(path, extra, ids)
    if kind == "npy":
        return NpyWriter(path, extra, ids)
    return CsvWriter(path, extra, ids)
