"""Pick a reader from the file's extension, and check the extension against the magic bytes.

A file named .npy that starts with PAR1 is a Parquet file: we say so instead of failing with
a parser error that hides the real mistake.

An input that is not a regular file (``-``, a FIFO, ``/dev/stdin``, ``/dev/fd/N`` from a
shell's ``<(...)``, a character device) can be read only once: it is opened here, once, its
first bytes are sniffed from a buffer, and the reader gets a stream that replays them before
the rest. Formats that must seek (Parquet, .npz) are refused for such inputs.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError, UsageError
from .base import Reader
from .formats import (
    BY_NAME,
    FORMATS,
    GZIP_MAGIC,
    decompressed_head,
    detect_compression,
    extension,
    format_from_name,
    looks_like_json,
    sniff,
)

HEAD_BYTES = 8
#: bytes of a compressed input read to sniff its content (a gzip header and a deflate block start)
COMPRESSED_HEAD = 512


class Replay(io.RawIOBase):
    """A read-once stream that first returns ``head`` (bytes already read from it, to sniff or
    peek), then the rest of ``rest``. ``tell`` counts the bytes handed out, so parsers that
    note their offset (numpy's header reader) work on pipes. Closing it closes ``rest`` only
    when ``owns`` (stdin stays open)."""

    def __init__(self, head: bytes, rest: Any, owns: bool = True) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._rest = rest
        self._owns = owns
        self._pos = 0
        self.sniffed = bytes(head)  # what open_reader looked at to pick the format

    def peek(self, size: int) -> bytes:
        """Up to ``size`` first bytes, reading more of the stream into the replayed head when it
        holds fewer (before anything was handed out): a compressed pipe is sniffed this way."""
        assert self._pos == 0, "peek before reading"
        head = bytearray(self._head)
        while len(head) < size:
            piece = self._rest.read(size - len(head))
            if not piece:
                break
            head += piece
        self._head = memoryview(bytes(head))
        return bytes(head)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def readinto(self, b: Any) -> int:
        mv = memoryview(b).cast("B")
        if self._head:
            n = min(len(mv), len(self._head))
            mv[:n] = self._head[:n]
            self._head = self._head[n:]
        else:
            readinto = getattr(self._rest, "readinto", None)
            if readinto is not None:
                n = int(readinto(mv) or 0)
            else:
                data = self._rest.read(len(mv))
                n = len(data)
                mv[:n] = data
        self._pos += n
        return n

    def close(self) -> None:
        if not self.closed and self._owns:
            self._rest.close()
        super().close()


@dataclass(frozen=True)
class TextMarks:
    """How a CSV/TSV is written: its separator and decimal mark (None: detected from it)."""

    delimiter: str | None = None
    decimal: str | None = None


def open_reader(
    path: str,
    fmt: str | None = None,
    header: bool | None = None,
    nan: str = "error",
    delimiter: str | None = None,
    decimal: str | None = None,
) -> Reader:
    """A reader for ``path`` (``-`` is stdin); ``fmt`` overrides the extension.

    ``header`` forces whether a CSV's first row is a header (None: detect it; see
    ``settle_headers``). ``nan`` is the --nan policy: "skip" turns missing values (empty CSV
    cells, Parquet nulls) into NaN for the engine to drop; "error" refuses them where found.
    ``delimiter``/``decimal``: a CSV's separator and decimal mark (None: detected; see
    ``describe_marks``); other formats have neither.
    """
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    stream = _open_stream(path)
    try:
        return _reader(path, fmt, header, nan, stream, TextMarks(delimiter, decimal))
    except BaseException:
        if stream is not None:
            stream.close()
        raise


def _reader(
    path: str, fmt: str | None, header: bool | None, nan: str, stream: Replay | None, marks: TextMarks
) -> Reader:
    named = fmt or (None if path == "-" else format_from_name(path))
    head = stream.sniffed if stream is not None else _head(path)
    display = "<stdin>" if path == "-" else path
    actual = sniff(head)
    if not head:
        raise InputError("is empty (0 bytes)", path=display)
    # the bytes may say a compression only when neither the name nor the magic says anything
    # (or only a text format is named: gzip-compressed JSON on stdin with --input-format json)
    text = named is None or BY_NAME[named].magic is None
    compression = detect_compression(path, head if text and actual is None else None)
    if named is None:  # no extension (a pipe has none): the bytes decide
        content = head
        if compression is not None:  # a compressed pipe or file: sniff what it decompresses to
            more = stream.peek(COMPRESSED_HEAD) if stream is not None else _head(path, COMPRESSED_HEAD)
            content = decompressed_head(more, compression)
        named = actual or ("jsonl" if looks_like_json(content) else "csv")
    elif BY_NAME[named].magic is None and actual is not None and compression is None:
        raise InputError(
            f"looks like a {actual} file (it starts with the {actual} magic bytes), not {named.upper()}; "
            f"rename it to {extension(actual)}",
            path=display,
        )
    elif BY_NAME[named].magic is not None and actual != named:
        what = (
            f"a {actual} file"
            if actual
            else ("gzip-compressed data" if head.startswith(GZIP_MAGIC) else "not one")
        )
        raise InputError(
            f"has the {extension(named)} extension but is {what}"
            + (f"; rename it to {extension(actual)}" if actual else "")
            + ("" if actual else f" (a {named} file starts with {BY_NAME[named].magic_text})"),
            path=display,
        )
    if stream is not None and BY_NAME[named].seekable_only:
        raise InputError(
            f"is a pipe or device, but a {extension(named)} file needs a seekable file (it is read "
            f"from its end); save it to a file first (for example: ... > input{extension(named)})",
            path=display,
        )
    return _construct(path, named, header, nan, stream, compression, marks)


def _construct(
    path: str,
    named: str,
    header: bool | None,
    nan: str,
    stream: Replay | None,
    compression: str | None,
    marks: TextMarks,
) -> Reader:
    if named in ("jsonl", "json"):
        from .jsonl_reader import JsonlReader

        return JsonlReader(path, stream=stream, compression=compression)
    if named in ("csv", "tsv"):
        from .csv_reader import CsvReader

        return CsvReader(
            path,
            marks.delimiter or ("\t" if named == "tsv" else None),
            header=header,
            decimal=marks.decimal,
            nan=nan,
            stream=stream,
            compression=compression,
        )
    if named == "parquet":
        from .parquet_reader import ParquetReader

        return ParquetReader(path, nan=nan)
    if named == "npz":
        from .npz_reader import NpzReader

        return NpzReader(path)
    from .numpy_reader import NpyReader

    return NpyReader(path, stream=stream)


def _open_stream(path: str) -> Replay | None:
    """For an input that can be read only once (stdin, a pipe, a device): open it now, once,
    and read its first bytes into the replay buffer (``peek_head``). None for regular files,
    which readers open (and may reopen) by path."""
    if path == "-":
        raw: Any = sys.stdin.buffer
        owns = False
    else:
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise InputError("no such file", path=path) from None
        except OSError as exc:
            raise InputError(f"cannot be read ({exc.strerror})", path=path) from None
        if stat.S_ISDIR(info.st_mode):
            raise InputError("is a directory, not a file", path=path)
        if stat.S_ISREG(info.st_mode):
            return None
        raw = _open_raw(path)
        owns = True
    display = "<stdin>" if path == "-" else path
    head = bytearray()
    try:
        while len(head) < HEAD_BYTES:  # a pipe may hand out fewer bytes than asked
            piece = raw.read(HEAD_BYTES - len(head))
            if not piece:
                break
            head += piece
    except OSError as exc:
        if owns:
            raw.close()
        raise InputError(f"cannot be read ({exc.strerror})", path=display) from None
    return Replay(bytes(head), raw, owns)


#: names that read this process's standard input, whatever it is (a pipe, a terminal, a file)
STDIN_NAMES = ("-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0")


def check_read_once(paths: Sequence[str]) -> None:
    """Refuse two inputs that read the same stream: stdin under any of its names, or one pipe
    or device (same device and inode, not a regular file) given twice.

    Such a stream can be read only once, so the two readers would each get part of it and the
    run would end in a nonsense length mismatch (or a hang). Called before any input is opened,
    with the paths of every input of the run (``-`` included).
    """
    seen: dict[object, str] = {}
    for path in paths:
        keys = _stream_keys(path)
        for key in keys:
            if key in seen:
                raise UsageError(
                    f"only one input can come from stdin or the same pipe: {seen[key]} and {path} "
                    "both read it; give the other as a file path"
                )
        seen.update(dict.fromkeys(keys, path))


def _stream_keys(path: str) -> set[object]:
    """What ``path`` reads if it is read-once: "stdin" and/or (device, inode) of a non-regular file."""
    keys: set[object] = set()
    try:
        if path in STDIN_NAMES:
            keys.add("stdin")
            info = os.fstat(0)
        else:
            info = os.stat(path)
    except (OSError, ValueError):  # missing, unreadable, or no stdin: the reader says so later
        return keys
    if not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
        keys.add((info.st_dev, info.st_ino))
    return keys


def _open_raw(path: str) -> Any:
    try:
        return open(path, "rb", buffering=0)
    except PermissionError:
        raise InputError("permission denied", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", path=path) from None


def _head(path: str, size: int = HEAD_BYTES) -> bytes:
    try:
        with open(path, "rb") as fp:
            return fp.read(size)
    except PermissionError:
        raise InputError("permission denied", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", path=path) from None


def settle_headers(readers: Sequence[Reader]) -> list[str]:
    """Decide, in one place, the CSV headers that one file alone cannot tell, and say so:
    returns one warning per decision (each names the option that forces the other reading).

    * pandas' default row ``0,1,...,k-1`` above integers: a header if another input has
      pandas' default header or starts with that row too (files of one run are written alike),
      else data. A named header elsewhere is no evidence: a file written with names would have
      named this one too, and a headerless label file often starts with 0.
    * One integer above decimals (``np.savetxt(fmt="%g")`` and R write 3 before 2.5; pandas a
      column named 2023): data, with the warning.
    * A first row of several numbers read as data that is the same text as another input's
      header (``1,2,3`` above 0/1 one-hot targets, under predictions headed ``1,2,3``): a header.
    Inputs forced by --header/--no-header are left alone; inputs decided earlier count as
    evidence as decided (call again when another input, such as weights, is opened later).
    """
    from .csv_reader import CsvReader

    csvs = [r for r in dict.fromkeys(readers) if isinstance(r, CsvReader)]
    warnings: list[str] = []
    for reader in csvs:  # integer column names, read as a header: said once
        if reader.header_note is not None:
            warnings.append(reader.header_note)
            reader.header_note = None
    pending = [r for r in csvs if not (r.header_certain or r.header_settled)]
    evidence = [
        r for r in csvs if r.has_header and r.pandas_default and (r.header_certain or r.header_settled)
    ]
    decided: list[tuple[CsvReader, str | None]] = []
    for reader in pending:
        by = peer = None
        if reader.pandas_default:
            by = next((o for o in evidence if o is not reader), None)
            peer = next((o for o in pending if o is not reader and o.pandas_default), None)
        if by is not None:
            decided.append((reader, f"as {by.display} has one"))
        elif peer is not None:
            decided.append((reader, f"as {peer.display} starts with one too (both look written by pandas)"))
        else:
            decided.append((reader, None))
    for reader, reason in decided:
        reader.header_settled = reader.header_guessed = True
        reader.use_header(reason is not None)
        what = f"{reader.display}: its first row ({_shown(reader)}) could be a header or data; "
        if reason is not None:
            warnings.append(what + f"read it as a header, {reason}; give --no-header if it is data")
        else:
            warnings.append(what + "read it as data; give --header if it is a header")
    warnings += _repeated_headers(csvs)
    return warnings


def _repeated_headers(csvs: Sequence[Any]) -> list[str]:
    """First rows of several numbers, read as data, that repeat another input's header: headers
    (see settle_headers). One value is too common a coincidence (a label file starting with 0)."""
    warnings: list[str] = []
    free = [r for r in csvs if not r.has_header and not r.header_forced and not r.header_settled]
    for reader in free:
        row = reader.first_fields
        if len(row) < 2:
            continue
        match = next((o for o in csvs if o is not reader and o.has_header and o.first_fields == row), None)
        if match is None:
            continue
        reader.header_settled = reader.header_guessed = True
        reader.use_header(True)
        warnings.append(
            f"{reader.display}: its first row ({_shown(reader)}) is the same as the header of "
            f"{match.display}: read it as a header; give --no-header if it is data"
        )
    return warnings


def _shown(reader: Any) -> str:
    k = len(reader.first_fields)
    return ",".join(reader.first_fields) if k <= 4 else ",".join(reader.first_fields[:3]) + ",..."
