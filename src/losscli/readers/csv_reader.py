"""CSV and TSV (also compressed, also on stdin), streamed with pyarrow's incremental reader.

The first non-blank line decides whether there is a header: if every field parses as a
number it is data, otherwise it names the columns. Only the selected columns are converted,
always to float64. pyarrow's conversion errors do not say where the bad cell is, so on error
we re-scan the file with the standard csv module to name the row and column.
"""

from __future__ import annotations

import csv
import io
import os
import queue
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from .base import Chunk, Group, Reader, arrow_column, assemble, csv_index_columns, wanted_columns
from .prefetch import prefetch

if TYPE_CHECKING:
    from concurrent.futures import Future

BLOCK_SIZE = 4 << 20  # pyarrow's unit of parallel parsing inside a block
PARSE_BLOCK = 16 << 20  # bytes handed to pyarrow at a time
PARSE_AHEAD = 2  # blocks parsed at once: the next block's parse fills the cores as one winds down
FIRST_BLOCK = 1 << 20
SMALL_FILE_BYTES = 256 << 10
PEEK_LIMIT = 64 << 20
COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4", ".br": "brotli"}


def _compression(path: str) -> str | None:
    for ext, name in COMPRESSED.items():
        if path.lower().endswith(ext):
            return name
    return None


def _is_number(text: str) -> bool:
    try:
        float(text.strip())
    except ValueError:
        return False
    return True


class _Replay(io.RawIOBase):
    """A stream that first returns bytes already read (the peeked line), then the rest."""

    def __init__(self, prefix: bytes, rest: Any) -> None:
        self._prefix = prefix
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        mv = memoryview(b).cast("B")
        if self._prefix:
            n = min(len(mv), len(self._prefix))
            mv[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(mv))
        mv[: len(data)] = data
        return len(data)


class _Slots:
    """Read buffers lent out one block at a time and taken back when that block's parse ends.

    The free list bounds memory (slots x PARSE_BLOCK) and makes reuse safe by construction:
    a buffer is refilled only after pyarrow has finished with the bytes in it.
    """

    def __init__(self, count: int) -> None:
        self.buffers = [bytearray(0) for _ in range(count)]
        self._free: queue.Queue[int | None] = queue.Queue()
        for slot in range(count):
            self._free.put(slot)

    def acquire(self) -> int | None:
        """A free slot, waiting for one; None once the reader is closed."""
        return self._free.get()

    def release_after(self, slot: int, parse: Future[Any]) -> None:
        """Give ``slot`` back once ``parse`` (of the bytes in it) has finished, however it ends."""
        parse.add_done_callback(lambda _: self._free.put(slot))

    def close(self) -> None:
        self._free.put(None)


class CsvReader(Reader):
    """A delimited text file, or ``-`` for stdin."""

    def __init__(self, path: str, delimiter: str | None = None) -> None:
        self.path = path
        self.display = "<stdin>" if path == "-" else path
        self.stdin = path == "-"
        self.compression = None if self.stdin else _compression(path)
        stem = path.lower()
        for ext in COMPRESSED:
            stem = stem.removesuffix(ext)
        if delimiter is None and stem.endswith((".tsv", ".tab")):
            delimiter = "\t"
        first, raw = self._peek()
        if delimiter is None:
            delimiter = "\t" if ("\t" in first and "," not in first) else ","
        self.delimiter = delimiter
        self._stdin_prefix = raw
        try:
            fields = next(csv.reader([first], delimiter=delimiter)) if first else []
        except csv.Error as exc:
            raise InputError(f"cannot be parsed on its first line ({exc})", path=self.display) from None
        if not fields:
            raise InputError("is empty: there are no rows to score", path=self.display)
        self.has_header = not all(_is_number(f) for f in fields)
        if self.has_header:
            names = [f.strip() or f"column{j}" for j, f in enumerate(fields)]
            seen: dict[str, int] = {}
            for j, name in enumerate(names):
                if name in seen:
                    names[j] = f"{name}.{j}"
                seen[name] = j
            self.column_names = names
            self.index_columns = csv_index_columns(fields)  # pandas' index: never data
            self._header = [f.strip() for f in fields]
        else:
            self.column_names = [str(j) for j in range(len(fields))]
        self.n_rows = None
        self._buffers: dict[int, NDArray[Any]] = {}

    def header_text(self, j: int) -> str:
        """A column's name as the header wrote it ('' for pandas' unnamed index, not 'column0')."""
        header = getattr(self, "_header", None)
        return header[j] if header is not None and j < len(header) else self.column_names[j]

    def _open_binary(self) -> Any:
        try:
            if self.compression:
                import pyarrow as pa

                return pa.input_stream(self.path, compression=self.compression)
            return open(self.path, "rb")
        except FileNotFoundError:
            raise InputError("no such file", path=self.display) from None
        except PermissionError:
            raise InputError("permission denied", path=self.display) from None
        except IsADirectoryError:
            raise InputError("is a directory, not a file", path=self.display) from None
        except OSError as exc:
            raise InputError(f"cannot be opened ({exc})", path=self.display) from None

    def _peek(self) -> tuple[str, bytes]:
        """The first non-blank line as text, and (for stdin) every byte consumed to get it."""
        src = sys.stdin.buffer if self.stdin else self._open_binary()
        buf = bytearray()
        try:
            while len(buf) <= PEEK_LIMIT:
                piece = src.read(1 << 16)
                if not piece:
                    break
                buf += piece
                # a line end after the leading BOM/blank lines ends the first line
                if b"\n" in piece and b"\n" in bytes(buf).lstrip(b"\xef\xbb\xbf").lstrip(b"\r\n"):
                    break
        except OSError as exc:
            raise InputError(f"cannot be read ({exc})", path=self.display) from None
        finally:
            if not self.stdin:
                src.close()
        consumed = bytes(buf)
        if len(consumed) > PEEK_LIMIT and b"\n" not in consumed:
            raise InputError(
                f"has no line end in its first {PEEK_LIMIT} bytes: not a CSV file", path=self.display
            )
        text = consumed.lstrip(b"\xef\xbb\xbf").lstrip(b"\r\n")
        line = text.split(b"\n", 1)[0].rstrip(b"\r")
        try:
            first = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"is not UTF-8 text (bad byte at offset {exc.start} of the first line)",
                path=self.display,
            ) from None
        if "\x00" in first:
            raise InputError("contains NUL bytes: it is not a text file", path=self.display)
        return first, consumed

    def _source(self) -> Any:
        """The raw bytes, from the start (stdin replays the line peeked at)."""
        if self.stdin:
            return _Replay(self._stdin_prefix, sys.stdin.buffer)
        return self._open_binary()

    def _blocks(self, slots: _Slots) -> Iterator[tuple[int, memoryview]]:
        """The input in blocks of about PARSE_BLOCK bytes, each ending at a line end.

        Blocks are parsed by pyarrow's multi-threaded reader, PARSE_AHEAD at a time, so parsing
        runs on every core while memory stays at a few blocks, whatever the file's size. Each
        block is read into a slot's buffer (fresh pages cost more than the parse, so buffers
        are reused) and comes with its slot number, to be released once parsed.
        """
        src = self._source()
        carry = b""
        turn = 0
        try:
            while True:
                # 1 MB first, doubling to PARSE_BLOCK: a small stream never costs a full block
                size = max(min(PARSE_BLOCK, FIRST_BLOCK << turn), 2 * len(carry))
                slot = slots.acquire()
                if slot is None:
                    return
                buf = slots.buffers[slot]
                if len(buf) < size:
                    # a new object: views of the old one may outlive its parse
                    buf = slots.buffers[slot] = bytearray(size)
                buf[: len(carry)] = carry
                filled = len(carry)
                eof = False
                while True:
                    while filled < len(buf):
                        with memoryview(buf) as view:
                            got = _read_into(src, view[filled:])
                        if not got:
                            eof = True
                            break
                        filled += got
                    cut = buf.rfind(b"\n", 0, filled)
                    if eof or cut >= 0:
                        break
                    buf = slots.buffers[slot] = buf + bytes(len(buf))  # a line longer than the block
                if eof:
                    if filled:
                        yield slot, memoryview(buf)[:filled]
                    return
                carry = bytes(buf[cut + 1 : filled])
                yield slot, memoryview(buf)[: cut + 1]
                turn += 1
        finally:
            src.close()

    def chunks(self, groups: Sequence[Group], max_rows: int) -> Iterator[Chunk]:
        wanted = wanted_columns(groups, len(self.column_names))
        if self._small():
            yield from self._small_chunks(groups, wanted, max_rows)
        else:
            yield from self._arrow_chunks(groups, wanted, max_rows)

    def _small(self) -> bool:
        """Small plain files are parsed in Python: importing pyarrow costs more than parsing."""
        if self.stdin or self.compression:
            return False
        try:
            return os.path.getsize(self.path) <= SMALL_FILE_BYTES
        except OSError:
            return False

    def _small_chunks(self, groups: Sequence[Group], wanted: list[int], max_rows: int) -> Iterator[Chunk]:
        values = np.array(list(self._parse_python(wanted)), dtype=np.float64).reshape(-1, len(wanted))
        cols = {j: values[:, pos] for pos, j in enumerate(wanted)}
        rows = len(values)
        whole = assemble(groups, wanted, cols, self._buffers, self.display)
        for start in range(0, rows, max_rows):
            yield [a[start : start + max_rows] for a in whole]

    def _arrow_chunks(self, groups: Sequence[Group], wanted: list[int], max_rows: int) -> Iterator[Chunk]:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        names = [self.column_names[j] for j in wanted]

        def read_options(first: bool) -> Any:
            return pacsv.ReadOptions(
                column_names=self.column_names,
                skip_rows=1 if (first and self.has_header) else 0,
                block_size=BLOCK_SIZE,
                use_threads=True,
            )

        parse_opts = pacsv.ParseOptions(delimiter=self.delimiter)
        convert_opts = pacsv.ConvertOptions(
            column_types={n: pa.float64() for n in names},
            include_columns=names,
            null_values=[],  # "nan", "NA" and "" are not silently missing: nan is a value, "" an error
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )

        def parse(number: int, block: memoryview) -> Any:
            # Without quotes in a block, pyarrow's quote-free parse is ~10% faster.
            quoted = block.obj.find(b'"', 0, len(block)) >= 0  # type: ignore[attr-defined]
            options = parse_opts if quoted else plain_opts
            try:
                return pacsv.read_csv(
                    pa.py_buffer(block),
                    read_options=read_options(number == 0),
                    parse_options=options,
                    convert_options=convert_opts,
                )
            except pa.ArrowInvalid as exc:
                if "straddl" not in str(exc):
                    raise
                # a row longer than pyarrow's parse unit: parse this block as one unit
                long_rows = read_options(number == 0)
                long_rows.block_size = len(block) + 1
                return pacsv.read_csv(
                    pa.py_buffer(block),
                    read_options=long_rows,
                    parse_options=options,
                    convert_options=convert_opts,
                )

        def tables() -> Iterator[Any]:
            """Tables in file order, PARSE_AHEAD blocks in flight: one pyarrow call alone leaves
            a core idle while its last piece is parsed and converted."""
            from concurrent.futures import ThreadPoolExecutor  # 8 ms with logging: large files only

            slots = _Slots(PARSE_AHEAD + 2)  # the blocks being parsed, one queued, one being read
            pending: deque[Future[Any]] = deque()
            with ThreadPoolExecutor(PARSE_AHEAD, thread_name_prefix="losscli-csv") as pool:
                try:
                    for number, (slot, block) in enumerate(prefetch(self._blocks(slots), depth=1)):
                        parsed = pool.submit(parse, number, block)
                        slots.release_after(slot, parsed)
                        pending.append(parsed)
                        if len(pending) >= PARSE_AHEAD:
                            yield pending.popleft().result()
                    while pending:
                        yield pending.popleft().result()
                finally:
                    slots.close()
                    for parsed in pending:
                        parsed.cancel()

        plain_opts = pacsv.ParseOptions(delimiter=self.delimiter, quote_char=False, double_quote=False)
        row = 0
        try:
            for table in prefetch(tables()):  # parse the next block while this one is scored
                yield from self._table_chunks(table, groups, wanted, max_rows, row)
                row += table.num_rows
        except InputError:
            raise
        except (pa.ArrowException, UnicodeDecodeError, OSError) as exc:
            raise self._diagnose(exc, row, wanted) from None

    def _table_chunks(
        self, table: Any, groups: Sequence[Group], wanted: list[int], max_rows: int, row: int
    ) -> Iterator[Chunk]:
        for batch in table.to_batches():
            cols: dict[int, NDArray[Any]] = {}
            for pos, j in enumerate(wanted):
                name = repr(self.column_names[j])
                cols[j] = arrow_column(batch.column(pos), self.display, row, name, "empty cell")
            whole = assemble(groups, wanted, cols, self._buffers, self.display)
            for start in range(0, batch.num_rows, max_rows):
                yield [a[start : start + max_rows] for a in whole]
            row += batch.num_rows

    def _parse_python(self, wanted: list[int]) -> Iterator[list[float]]:
        """Row values of the wanted columns via the csv module; raises InputError at the first
        problem with its row, line and column. Serves small files and error diagnosis."""
        raw = self._open_binary()
        bad_utf8: list[int] = []
        data_row = -1
        width = len(self.column_names)
        skip_header = self.has_header
        try:
            lines = io.BufferedReader(_Replay(b"", raw))  # pyarrow's streams cannot iterate lines
            reader = csv.reader(_decoded_lines(lines, bad_utf8), delimiter=self.delimiter)
            for fields in reader:
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                if skip_header:
                    skip_header = False
                    continue
                data_row += 1
                line = reader.line_num
                if len(fields) != width:
                    raise InputError(
                        f"line {line} has {len(fields)} field(s) but the first row has {width}",
                        path=self.display,
                        row=data_row,
                    )
                values = []
                for j in wanted:
                    value = _to_float(fields[j])
                    if value is None:
                        text = fields[j]
                        shown = text if len(text) <= 40 else text[:40] + "..."
                        if "\x00" in text:
                            what = "contains a NUL byte"
                        elif not text.strip():
                            what = "empty cell"
                        else:
                            what = f"{shown!r} is not a number"
                        raise InputError(
                            f"{what} (line {line})",
                            path=self.display,
                            row=data_row,
                            column=repr(self.column_names[j]),
                        )
                    values.append(value)
                yield values
        except UnicodeDecodeError as exc:
            raise InputError(
                f"is not valid UTF-8 text: byte 0x{exc.object[exc.start]:02x} on line {bad_utf8[0]}",
                path=self.display,
                row=data_row + 1,
            ) from None
        except csv.Error as exc:
            raise InputError(f"cannot be parsed near row {data_row + 1} ({exc})", path=self.display) from None
        except OSError as exc:
            raise InputError(f"cannot be read ({exc})", path=self.display) from None
        finally:
            raw.close()

    def _diagnose(self, exc: BaseException, row: int, wanted: list[int]) -> InputError:
        """pyarrow's errors do not say where; the Python parser finds the first bad cell."""
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if self.stdin:
            return InputError(f"{_friendly(message)} (somewhere after row {row})", path=self.display)
        try:
            for _ in self._parse_python(wanted):
                pass
        except InputError as located:
            return located
        return InputError(_friendly(message), path=self.display)


def _to_float(text: str) -> float | None:
    """float() as pyarrow reads numbers: no digit separators, surrounding spaces allowed."""
    if "_" in text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _read_into(src: Any, view: memoryview) -> int:
    """readinto where the stream has it (files, stdin), read otherwise."""
    readinto = getattr(src, "readinto", None)
    if readinto is not None:
        return int(readinto(view) or 0)
    data = src.read(len(view))
    view[: len(data)] = data
    return len(data)


def _decoded_lines(raw: Any, bad: list[int]) -> Iterator[str]:
    """Text lines of a binary stream; on invalid UTF-8, records the line number and raises."""
    for number, line in enumerate(raw, start=1):
        try:
            text = line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            bad.append(number)
            raise
        yield text


def _friendly(message: str) -> str:
    return message.replace("CSV parse error: ", "cannot be parsed: ").replace(
        "CSV conversion error to double: ", "not a number: "
    )
