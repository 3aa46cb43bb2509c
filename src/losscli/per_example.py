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

    def __init__(self, path: str, extra: tuple[str, ...] = ()) -> None:
        self.path = path
        self.extra = extra  # int64 columns between row and loss (sequence, position)
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
    ) -> None:
        columns = [np.asarray((extra or {})[name], dtype=np.int64) for name in self.extra]
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

    def __init__(self, path: str, extra: tuple[str, ...] = ()) -> None:
        super().__init__(path, extra)
        self.fp.write((",".join(["row", *extra, "loss"]) + "\n").encode("ascii"))

    def _write(
        self, rows: NDArray[np.int64], extra: list[NDArray[np.int64]], losses: NDArray[np.float64]
    ) -> None:
        cells = zip(rows.tolist(), *[c.tolist() for c in extra], losses.tolist(), strict=True)
        lines = [",".join([*map(str, c[:-1]), repr(c[-1])]) + "\n" for c in cells]
        self.fp.write("".join(lines).encode("ascii"))


class NpyWriter(PerExampleWriter):
    """A structured .npy with fields ``row`` (int64), any extra int64 fields, ``loss`` (float64)."""

    def __init__(self, path: str, extra: tuple[str, ...] = ()) -> None:
        super().__init__(path, extra)
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

    def __init__(self, path: str, extra: tuple[str, ...] = ()) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        super().__init__(path, extra)
        self._pa = pa
        fields = [("row", pa.int64()), *[(name, pa.int64()) for name in extra], ("loss", pa.float64())]
        self.schema = pa.schema(fields)
        self.writer: Any = pq.ParquetWriter(self.fp, self.schema)
        self.pending: list[Any] = []
        self.pending_rows = 0

    def _write(
        self, rows: NDArray[np.int64], extra: list[NDArray[np.int64]], losses: NDArray[np.float64]
    ) -> None:
        pa = self._pa
        arrays = [pa.array(np.array(a, copy=True)) for a in (rows, *extra, losses)]
        self.pending.append(pa.record_batch(arrays, schema=self.schema))
        self.pending_rows += len(rows)
        if self.pending_rows >= PARQUET_ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.writer.write_table(self._pa.Table.from_batches(self.pending, schema=self.schema))
            self.pending, self.pending_rows = [], 0

    def _finish(self) -> None:
        self._flush()
        self.writer.close()


def open_writer(path: str, extra: tuple[str, ...] = ()) -> PerExampleWriter:
    """A writer for ``path``'s format; ``extra`` names int64 columns written before ``loss``."""
    kind = _kind(path)
    if kind == "parquet":
        return ParquetWriter(path, extra)
    if kind == "npy":
        return NpyWriter(path, extra)
    return CsvWriter(path, extra)
