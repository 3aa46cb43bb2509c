"""NumPy .npy files (and the arrays inside .npz, see npz_reader), read a chunk at a time into
reused buffers.

We parse the header ourselves (numpy's literal-eval parser, never pickle) and ``readinto`` a
buffer of at most ``max_rows`` rows. Unlike ``np.load(mmap_mode='r')``, whose touched pages
count as resident until the mapping goes away, this keeps peak RSS at one buffer per file
whatever the file's size. Byte order is fixed in place; Fortran-ordered 2-D arrays are read
column by column with ``os.pread``.
"""

from __future__ import annotations

import functools
import io
import os
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from .base import Chunk, Group, IndexNames, RangeReader, Reader

MAX_HEADER_SIZE = 1 << 20
MAX_DEFLATE_RATIO = 1100
MAX_ROW_BYTES = 1 << 30  # one row (a token's logits) larger than this is refused, not allocated


@functools.cache
def zip_errors() -> tuple[type[BaseException], ...]:
    """What a damaged zip member can raise: bad headers, unsupported versions or compression,
    encryption ("password required", a RuntimeError), corrupt deflate data. A function, so that
    zipfile (12 ms) is imported only for .npz files."""
    import zipfile

    return (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        EOFError,
        NotImplementedError,
        RuntimeError,
        ValueError,
        zlib.error,
    )


class ArrayHeader:
    """What a .npy header declares, checked against the bytes actually present."""

    def __init__(self, dtype: np.dtype[Any], shape: tuple[int, ...], fortran: bool, offset: int):
        self.dtype = dtype
        self.shape = shape
        self.fortran = fortran
        self.offset = offset

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def row_shape(self) -> tuple[int, ...]:
        return self.shape[1:]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=object)) * self.dtype.itemsize


def read_header(fp: IO[bytes], display: str, available: int | None) -> ArrayHeader:
    """Parse and vet a .npy header; ``available`` is the byte size of the whole array file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "created on Python 2": not worth a stderr line
            _, shape, fortran, dtype = _parse_header(fp)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # numpy's header parser raises many kinds (TokenError, ...)
        raise InputError(f"not a valid .npy array ({short_error(exc)})", path=display) from None
    return _vet_header(fp, display, available, shape, fortran, dtype)


def _parse_header(fp: IO[bytes]) -> tuple[Any, Any, Any, Any]:
    fmt = np.lib.format
    version = fmt.read_magic(fp)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(fp, max_header_size=MAX_HEADER_SIZE)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = fmt.read_array_header_2_0(fp, max_header_size=MAX_HEADER_SIZE)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return version, shape, fortran, dtype


def _vet_header(
    fp: IO[bytes], display: str, available: int | None, shape: Any, fortran: Any, dtype: Any
) -> ArrayHeader:
    offset = fp.tell()
    if dtype.hasobject:
        raise InputError(
            "holds Python objects (dtype=object); losscli never unpickles files. "
            "Save a numeric array instead (for example arr.astype(float))",
            path=display,
        )
    if dtype.names is not None or dtype.subdtype is not None:
        raise InputError(f"has a structured dtype {dtype}; save a plain numeric array instead", path=display)
    one_column = len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)
    if dtype.kind in "US" and not one_column:
        raise InputError(
            f"holds text (dtype {dtype}) in shape {tuple(shape)}: a text array is read only as one "
            "column of class labels (np.save(path, np.asarray(labels))); save scores as numbers",
            path=display,
        )
    if dtype.kind not in "biufUS":
        raise InputError(f"has dtype {dtype}, which is not a number type losscli can score", path=display)
    if len(shape) == 0:
        raise InputError("holds a single scalar, not an array of examples", path=display)
    if any(not isinstance(s, int) or s < 0 for s in shape):
        raise InputError(f"declares an impossible shape {shape}", path=display)
    header = ArrayHeader(dtype, tuple(int(s) for s in shape), bool(fortran), offset)
    if available is not None and header.nbytes > available - offset:
        raise InputError(
            f"is truncated: its header declares shape {header.shape} of {dtype} "
            f"({header.nbytes} bytes) but only {max(available - offset, 0)} bytes of data follow",
            path=display,
        )
    return header


def short_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def flat_header(header: ArrayHeader, display: str, keep_last: bool) -> tuple[ArrayHeader, tuple[int, ...]]:
    """A header read one token per row (``header`` itself is left as it is), and the leading
    shape it flattened: (B, T, V) logits as (B*T, V) with (B, T); ids (B, T) as (B*T,)."""
    shape = header.shape
    if header.fortran and len(shape) > 1:
        raise InputError(
            "is Fortran-ordered; save token arrays in C order (np.ascontiguousarray)", path=display
        )
    if keep_last:
        if len(shape) < 2:
            raise InputError(f"holds shape {shape}; logits need (N, V) or (B, T, V)", path=display)
        lead = shape[:-1]
        flat: tuple[int, ...] = (int(np.prod(lead, dtype=np.int64)), shape[-1])
    else:
        lead = shape
        flat = (int(np.prod(shape, dtype=np.int64)),)
    tokens = ArrayHeader(header.dtype, flat, header.fortran, header.offset)
    return tokens, tuple(int(x) for x in lead)


def array_columns(header: ArrayHeader) -> IndexNames:
    """The columns of an array: those of a 2-D array, else one."""
    return IndexNames(header.shape[1] if len(header.shape) == 2 else 1)


class ArrayStream:
    """Sequential row chunks of one array from a readable binary stream."""

    def __init__(self, fp: IO[bytes], header: ArrayHeader, display: str, fd: int | None):
        self.fp = fp
        self.header = header
        self.display = display
        self.fd = fd  # for pread when Fortran-ordered
        self.row = 0
        self._buffer: NDArray[Any] | None = None
        self.native = header.dtype.newbyteorder("=")
        self.row_bytes = int(np.prod(header.row_shape, dtype=np.int64)) * header.dtype.itemsize
        if header.fortran and len(header.shape) > 2:
            raise InputError(
                "is a Fortran-ordered array of more than 2 dimensions; save it in C order", path=display
            )
        if header.fortran and len(header.shape) == 2 and fd is None:
            raise InputError(
                "holds a Fortran-ordered 2-D array, which cannot be streamed from a pipe or "
                "from inside .npz; save it with np.ascontiguousarray (or to a file)",
                path=display,
            )

    def _buf(self, rows: int) -> NDArray[Any]:
        if self.row_bytes > MAX_ROW_BYTES:
            raise InputError(
                f"has rows of {self.row_bytes} bytes (shape {self.header.shape}); losscli reads at least a "
                f"row at a time and refuses rows over {MAX_ROW_BYTES} bytes",
                path=self.display,
            )
        shape = (rows, *self.header.row_shape)
        if self._buffer is None or self._buffer.shape[0] < rows:
            self._buffer = np.empty(shape, dtype=self.native)
        return self._buffer[:rows]

    def read(self, rows: int) -> NDArray[Any]:
        """The next ``rows`` rows (fewer at the end); a view into a reused buffer."""
        view = self.read_at(self.row, rows)
        self.row += len(view)
        return view

    def read_at(self, start: int, rows: int) -> NDArray[Any]:
        """Rows [start, start + rows): by pread when there is a file descriptor (any order,
        any thread), else sequentially from the stream (``start`` must be the next row)."""
        rows = max(0, min(rows, self.header.rows - start))
        view = self._buf(rows)
        if rows == 0:
            return view
        if view.nbytes == 0:  # rows of zero width: nothing to read
            pass
        elif self.header.fortran and view.ndim == 2:
            self._read_fortran(view, start)
        elif self.fd is not None:
            self._pread_into(memoryview(view).cast("B"), start)  # type: ignore[arg-type]
        else:
            self._read_into(memoryview(view).cast("B"), start)  # type: ignore[arg-type]
        if not self.header.dtype.isnative:
            view.byteswap(inplace=True)
        return view

    def twin(self) -> ArrayStream:
        """Another reader of the same array with its own buffer (pread shares the fd safely)."""
        return ArrayStream(self.fp, self.header, self.display, self.fd)

    def _pread_into(self, mv: memoryview, start: int) -> None:
        assert self.fd is not None
        fd, offset = self.fd, self.header.offset + start * self.row_bytes
        self._fill(mv, start, lambda view, done: os.preadv(fd, [view], offset + done), (OSError,))

    def _read_into(self, mv: memoryview, start: int) -> None:
        readinto = self.fp.readinto  # type: ignore[attr-defined]
        self._fill(mv, start, lambda view, done: readinto(view), zip_errors())

    def _fill(
        self,
        mv: memoryview,
        start: int,
        read: Callable[[memoryview, int], int | None],
        errors: tuple[type[BaseException], ...],
    ) -> None:
        """Read until ``mv`` is full; a short file is an error naming the chunk's first row."""
        filled = 0
        while filled < len(mv):
            try:
                got = read(mv[filled:], filled)
            except errors as exc:
                raise InputError(
                    f"could not be read at row {start} ({short_error(exc)})", path=self.display
                ) from None
            if not got:
                raise InputError(
                    f"ended early at row {start}: the file is shorter than its header declares "
                    "(truncated, or changed while being read)",
                    path=self.display,
                )
            filled += got

    def _read_fortran(self, view: NDArray[Any], first: int) -> None:
        assert self.fd is not None
        n, k = self.header.shape
        item = self.header.dtype.itemsize
        rows = view.shape[0]
        for j in range(k):
            start = self.header.offset + (j * n + first) * item
            data = os.pread(self.fd, rows * item, start)
            if len(data) < rows * item:
                raise InputError(f"ended early at row {first}, column {j}", path=self.display)
            view[:, j] = np.frombuffer(data, dtype=self.native)


def select_group(block: NDArray[Any], group: Group) -> NDArray[Any]:
    if group is None:
        return block
    if block.ndim == 1:
        return block
    if len(group) == 1:
        return block[:, group[0]]
    return block[:, list(group)]


class NpyReader(Reader):
    """One .npy file: its columns are the columns of a 2-D array (a 1-D array is column 0).

    ``stream``: the input when it can be read only once (stdin, a pipe): it is then read
    sequentially, without pread, and offers no range reader (so no worker threads).
    """

    def __init__(self, path: str, stream: io.RawIOBase | None = None) -> None:
        self.display = "<stdin>" if path == "-" else path
        self._fp: Any
        if stream is not None:
            self._fp, self._fd, size = stream, None, None
        else:
            try:
                self._fp = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
            except OSError as exc:
                raise InputError(f"cannot be opened ({exc.strerror})", path=path) from None
            self._fd = self._fp.fileno()
            size = os.fstat(self._fd).st_size
        header = read_header(self._fp, self.display, size)
        self.read_once = stream is not None
        self.stream = ArrayStream(self._fp, header, self.display, self._fd)
        self.n_rows = header.rows
        self.row_shape = header.row_shape
        self.dtype = self.stream.native
        self.itemsize = self.dtype.itemsize
        self.scratch_chunks = True
        self.column_names = array_columns(header)
        #: a text array (np.save of class names, dtype <U or |S): class labels, read as text
        #: only when the plan asks for labels (``ids.open_ids`` sets ``labels_as_text``)
        self.text = header.dtype.kind in "US"
        self.labels_as_text = False

    def text_column(self, column: int) -> bool:
        return self.text

    def _as_text(self, block: NDArray[Any]) -> NDArray[Any]:
        """A text block as str (bytes decoded as UTF-8), or the refusal of text where numbers
        are needed (predictions, weights, labels of a metric without text labels)."""
        if not self.labels_as_text:
            raise InputError(
                f"holds text (dtype {self.header_dtype}), not numbers; text is read only as class "
                "labels (ce: the classes' names or --classes; bce: with --positive)",
                path=self.display,
            )
        return np.char.decode(block, "utf-8", "replace") if block.dtype.kind == "S" else block

    def chunks(self, groups: Sequence[Group], max_rows: int) -> Iterator[Chunk]:
        """Every row from the first: a file is read by pread from row 0 on every pass (as every
        other reader of a file starts over); a pipe only once (a second pass is refused, not
        silently empty)."""
        stream = self.stream
        if self._fd is None:
            if stream.row:
                raise InputError("was already read: a pipe can be read only once", path=self.display)
            while stream.row < stream.header.rows:
                block = stream.read(max_rows)
                yield [select_group(self._as_text(block) if self.text else block, g) for g in groups]
            return
        row = 0
        while row < stream.header.rows:
            block = stream.read_at(row, max_rows)
            row += len(block)
            yield [select_group(self._as_text(block) if self.text else block, g) for g in groups]

    def token_reader(self, column: int | None, keep_last: bool) -> tuple[Reader, tuple[int, ...]]:
        """The array one token per row (``column`` plays no part: the array is the tokens). The
        view reads the same file descriptor with its own stream and buffer, so it keeps the
        preadv fast path and its range readers for worker threads."""
        header, lead = flat_header(self.stream.header, self.display, keep_last)
        view = self._view()
        view.stream = ArrayStream(self._fp, header, self.display, self._fd)
        view.n_rows = header.rows
        view.row_shape = header.row_shape
        view.column_names = array_columns(header)
        return view, lead

    def range_reader(self) -> RangeReader | None:
        if self._fd is None or self.text:  # a pipe: one sequential reader only; text: no threads
            return None
        return _NpyRanges(self.stream.twin())

    @property
    def header_dtype(self) -> np.dtype[Any]:
        return self.stream.header.dtype

    def close(self) -> None:
        if not self.shares_files:
            self._fp.close()


class _NpyRanges(RangeReader):
    def __init__(self, stream: ArrayStream) -> None:
        self.stream = stream

    def read(self, groups: Sequence[Group], start: int, stop: int) -> Chunk:
        block = self.stream.read_at(start, stop - start)
        return [select_group(block, g) for g in groups]
