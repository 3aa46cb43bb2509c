"""--per-example: every counted example's loss, streamed to a file in input order.

Writers never hold all losses in memory. They write to a temporary file beside the target and
rename it into place only when the run succeeds, so a failed or interrupted run leaves neither
a partial file nor a clobbered old one. ``-`` (CSV on stdout) is buffered the same way, in an
anonymous temporary file (disk, not memory), and copied to stdout only at ``commit``: a run that
fails at row 150000 prints nothing on stdout, as for every other failure. The temporary file
is created with mode 0666 and the kernel applies the umask (and any default ACL), so the result
gets the mode any new file gets.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import IO, Any, cast

import numpy as np
from numpy.typing import NDArray

from .errors import OutputError, UsageError

NPY_HEADER_BYTES = 128  # fixed, so the real row count can be written over the placeholder
PARQUET_ROWS_PER_GROUP = 1 << 20
NEW_FILE_MODE = 0o666  # what open(path, "w") asks for; the umask takes its bits away

# Writers holding a temporary file. ``abort_all`` removes them when a run is cut short between
# the writer's creation and the caller's cleanup hook (a signal can land between any two lines).
_LIVE: set[PerExampleWriter] = set()


def output_kind(path: str) -> str:
    """The format --per-example writes for ``path``; a usage error (exit 2) for any other name.

    Called before any input is opened, so a typo in the output name costs no reading.
    """
    low = path.lower()
    if path == "-" or low.endswith(".csv"):
        return "csv"
    if low.endswith((".parquet", ".pq")):
        return "parquet"
    if low.endswith(".npy"):
        return "npy"
    raise UsageError(
        f"--per-example {path}: the file name must end in .csv, .parquet or .npy (or be - for CSV on stdout)"
    )


def unique_names(names: list[str]) -> list[str]:
    """Column names made unique: a repeat gets ``_2``, ``_3``, ... (pandas would read ``x.1``)."""
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, k = name, 1
        while candidate in seen:
            k += 1
            candidate = f"{name}_{k}"
        seen.add(candidate)
        out.append(candidate)
    return out


def _create_temp(path: str) -> tuple[int, str]:
    """A new file beside ``path``, exclusive, mode 0666 minus the umask (mkstemp would give 0600)."""
    directory = os.path.dirname(os.path.abspath(path))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, NEW_FILE_MODE), tmp
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, "no free temporary name")


def abort_all() -> None:
    """Remove every temporary file still open: the last line of defence after Ctrl-C."""
    for writer in list(_LIVE):
        writer.abort()


class PerExampleWriter:
    """Base: a temporary file beside ``path``; ``commit`` renames it, ``abort`` removes it."""

    def __init__(
        self, path: str, extra: tuple[str, ...] = (), ids: bool = False, files: Sequence[str] | None = None
    ) -> None:
        self.path = path
        #: sharded input: a ``file`` column after ``row`` (the shard's path; .npy: its index in
        #: ``files``, field ``shard``) and ``file_row``, the row within that shard
        self.files = list(files) if files is not None else None
        self.extra = (("file_row",) if files is not None else ()) + extra  # int64 columns before loss
        self.ids = ids  # an ``id`` column after ``row``: the input's id column, as read
        self._ids: NDArray[Any] | None = None  # the ids of the rows being written
        self._file: NDArray[np.int64] | None = None  # the shard index of the rows being written
        lead = ["row", *([self.file_field] if files is not None else []), *(["id"] if ids else [])]
        # as written: never two alike
        self.names = unique_names([*lead, *self.extra, "loss"])
        self.rows_written = 0
        self.tmp_path: str | None = None
        self.fp: IO[bytes]
        self._stdout_buffer = path == "-"  # fp is an anonymous file, copied to stdout at commit
        if self._stdout_buffer:
            try:
                # unlinked already, so nothing is left behind even by a kill; closed in commit/abort
                self.fp = tempfile.TemporaryFile()  # noqa: SIM115
            except OSError as exc:
                reason = exc.strerror or exc
                raise OutputError(f"--per-example -: no temporary file for the rows ({reason})") from None
            _LIVE.add(self)
            return
        try:
            fd, self.tmp_path = _create_temp(path)
        except OSError as exc:
            raise OutputError(f"{path}: cannot write here ({exc.strerror})") from None
        _LIVE.add(self)
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
        self._file = np.asarray((extra or {})["file"], dtype=np.int64) if self.files is not None else None
        try:
            self._write(rows, columns, np.asarray(losses, dtype=np.float64))
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(f"{self.path}: write failed ({exc.strerror or exc})") from None
        self.rows_written += len(rows)

    file_field = "file"

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
            if self._stdout_buffer:
                self._copy_to_stdout()
            elif self.tmp_path is not None:
                os.fsync(self.fp.fileno())
                self.fp.close()
                os.replace(self.tmp_path, self.path)
                self.tmp_path = None
                _LIVE.discard(self)
        except BrokenPipeError:  # '-' and stdout closed early: the CLI's quiet exit 141
            raise
        except OSError as exc:
            self.abort()
            raise OutputError(f"{self.path}: could not be finished ({exc.strerror or exc})") from None

    def _copy_to_stdout(self) -> None:
        """The buffered rows to stdout through ``RawStdout``: a reader leaving early is still
        ``BrokenPipeError`` (exit 141) and a full device an ``OutputError`` (exit 4)."""
        from .rawout import RawStdout

        self._stdout_buffer = False
        _LIVE.discard(self)
        with self.fp:
            self.fp.seek(0)
            shutil.copyfileobj(self.fp, cast(IO[bytes], RawStdout(sys.stdout)), 1 << 20)

    def abort(self) -> None:
        """Close and remove the temporary file; safe to call twice, and after ``commit``."""
        _LIVE.discard(self)
        if self._stdout_buffer:  # '-': the anonymous file vanishes when closed; nothing printed
            self._stdout_buffer = False
            with contextlib.suppress(OSError):
                self.fp.close()
            return
        if self.tmp_path is None:
            return
        self._close_format()
        with contextlib.suppress(OSError):
            self.fp.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp_path)
        self.tmp_path = None

    def _close_format(self) -> None:
        """Release format-level state before the file closes (nothing for plain byte writers)."""


class CsvWriter(PerExampleWriter):
    """``row,loss``; losses in Python's shortest round-trip repr, so every float64 survives."""

    def __init__(
        self, path: str, extra: tuple[str, ...] = (), ids: bool = False, files: Sequence[str] | None = None
    ) -> None:
        super().__init__(path, extra, ids, files)
        self._file_cells = [_csv_cell(f) for f in self.files] if self.files is not None else []
        self.fp.write((",".join(_csv_cell(n) for n in self.names) + "\n").encode("utf-8"))

    def _write(
        self, rows: NDArray[np.int64], extra: list[NDArray[np.int64]], losses: NDArray[np.float64]
    ) -> None:
        files = [] if self._file is None else [[self._file_cells[k] for k in self._file.tolist()]]
        ids = [] if self._ids is None else [[_csv_cell(v) for v in self._ids.tolist()]]
        cells = zip(rows.tolist(), *files, *ids, *[c.tolist() for c in extra], losses.tolist(), strict=True)
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

    file_field = "shard"  # a fixed-layout record holds the shard's index in the sorted files

    def __init__(
        self, path: str, extra: tuple[str, ...] = (), ids: bool = False, files: Sequence[str] | None = None
    ) -> None:
        super().__init__(path, extra, False, files)
        *ints, loss = self.names
        self.dtype = np.dtype([*[(name, "<i8") for name in ints], (loss, "<f8")])
        self.fp.write(self._header(0))

    def _header(self, rows: int) -> bytes:
        """The header for ``rows`` rows, always the same size (room for any row count, rounded
        to numpy's 64-byte alignment), so the count written at the end fits over the
        placeholder: a header that grew would overwrite the first rows."""
        text = f"{{'descr': {self.dtype.descr!r}, 'fortran_order': False, 'shape': ({rows},), }}"
        magic = b"\x93NUMPY\x01\x00"
        widest = len(text) - len(str(rows)) + 20  # any int64 row count
        size = max(NPY_HEADER_BYTES, -(-(len(magic) + 2 + widest + 1) // 64) * 64)
        body_len = size - len(magic) - 2
        body = text.ljust(body_len - 1) + "\n"
        return magic + len(body).to_bytes(2, "little") + body.encode("latin1")

    def _write(
        self, rows: NDArray[np.int64], extra: list[NDArray[np.int64]], losses: NDArray[np.float64]
    ) -> None:
        rec = np.empty(len(rows), dtype=self.dtype)
        shard = [] if self._file is None else [self._file]
        for name, values in zip(self.names, (rows, *shard, *extra, losses), strict=True):
            rec[name] = values
        self.fp.write(rec.tobytes())

    def _finish(self) -> None:
        self.fp.flush()
        self.fp.seek(0)
        self.fp.write(self._header(self.rows_written))
        self.fp.seek(0, os.SEEK_END)


class ParquetWriter(PerExampleWriter):
    """Columns ``row``, any extra, ``loss``; buffered into row groups of about a million rows."""

    def __init__(
        self, path: str, extra: tuple[str, ...] = (), ids: bool = False, files: Sequence[str] | None = None
    ) -> None:
        import pyarrow as pa

        self.writer: Any = None  # first: abort() may run before pyarrow's writer exists
        self.schema: Any = None  # at the first rows: the id column's type comes from them
        super().__init__(path, extra, ids, files)
        self._pa = pa
        self.pending: list[Any] = []
        self.pending_rows = 0

    def _open(self, id_type: Any) -> None:
        import pyarrow.parquet as pq

        pa = self._pa
        file_type = [pa.dictionary(pa.int32(), pa.string())] if self.files is not None else []
        types = [
            pa.int64(),
            *file_type,
            *([id_type] if self.ids else []),
            *[pa.int64()] * len(self.extra),
            pa.float64(),
        ]
        self.schema = pa.schema(list(zip(self.names, types, strict=True)))
        try:
            self.writer = pq.ParquetWriter(self.fp, self.schema)
        except BaseException:
            self.abort()
            raise

    def _write(
        self, rows: NDArray[np.int64], extra: list[NDArray[np.int64]], losses: NDArray[np.float64]
    ) -> None:
        pa = self._pa
        id_array = None if self._ids is None else pa.array(self._ids.tolist())
        if self.writer is None:
            self._open(id_array.type if id_array is not None else pa.string())
        arrays = [pa.array(np.array(rows, copy=True))]
        if self._file is not None:  # the shard's path, dictionary-encoded: one string per shard
            indices = pa.array(self._file.astype(np.int32))
            arrays.append(pa.DictionaryArray.from_arrays(indices, pa.array(self.files, pa.string())))
        if self.ids:
            id_type = self.schema.field(len(arrays)).type
            arrays.append(id_array.cast(id_type) if id_array is not None else pa.nulls(len(rows), id_type))
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

    def _close_format(self) -> None:
        """Close pyarrow's writer before the file: left open, its ``__del__`` would later write a
        footer into the closed file and print "Exception ignored ... write to closed file"."""
        writer, self.writer = self.writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()


def open_writer(
    path: str, extra: tuple[str, ...] = (), ids: bool = False, files: Sequence[str] | None = None
) -> PerExampleWriter:
    """A writer for ``path``'s format; ``extra`` names int64 columns written before ``loss``;
    ``ids``: an ``id`` column after ``row`` (.csv and .parquet; .npy has none); ``files``: the
    shards of a sharded input, for the ``file`` and ``file_row`` columns."""
    kind = output_kind(path)
    if kind == "parquet":
        return ParquetWriter(path, extra, ids, files)
    if kind == "npy":
        return NpyWriter(path, extra, ids, files)
    return CsvWriter(path, extra, ids, files)
