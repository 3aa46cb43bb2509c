"""CSV and TSV (also compressed, also on stdin), streamed with pyarrow's incremental reader.

The first non-blank line decides whether there is a header: if a field is not a number it
names the columns; pandas' default header ``0,1,...,k-1`` is recognised when the rows below it
are not integers (and otherwise left for ``open.settle_headers`` to decide); ``--header`` /
``--no-header`` force it. Only the selected columns are converted, always to float64.

An empty cell, quoted (``""``, as pandas writes NaN) or not, is a missing value. In a file of
one column an empty line is one too (Polars writes a null so), unless it comes before a header
or after the last row; empty lines there, and in a file of several columns, hold no row. Under ``--nan skip``
a missing value becomes NaN for the engine to drop with its row; otherwise it is refused here,
naming the row and column. Both parsers (Python for small files, pyarrow otherwise) follow
these rules. pyarrow's conversion errors do not say where the bad cell is, so on error we
re-scan the file with the standard csv module to name the row and column.

A pipe or stdin arrives as a stream that replays what open_reader sniffed; it is read once.
"""

from __future__ import annotations

import csv
import io
import math
import os
import queue
import re
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from .base import (
    Chunk,
    Group,
    Reader,
    arrow_column,
    assemble,
    csv_index_columns,
    missing_message,
    refuse_missing,
    wanted_columns,
)
from .csv_dialect import decimal_hint, detect
from .formats import detect_compression
from .open import Replay
from .prefetch import prefetch

if TYPE_CHECKING:
    from concurrent.futures import Future

BLOCK_SIZE = 4 << 20  # pyarrow's unit of parallel parsing inside a block
PARSE_BLOCK = 16 << 20  # bytes handed to pyarrow at a time
PARSE_AHEAD = 2  # blocks parsed at once: the next block's parse fills the cores as one winds down
FIRST_BLOCK = 1 << 20
SMALL_FILE_BYTES = 256 << 10
PEEK_LIMIT = 64 << 20
PEEK_BYTES = 1 << 16  # read at least this much (or SAMPLE_LINES lines) to judge the first row
SAMPLE_LINES = 1000
_NON_BLANK = re.compile(rb"[^\r\n]")
_INTEGER = re.compile(r"\s*[+-]?\d+\s*")


# How pandas (True/False) and Polars (true/false) write a bool column: 1 and 0, as in Parquet
BOOL_VALUES = {"True": 1.0, "False": 0.0, "true": 1.0, "false": 0.0, "TRUE": 1.0, "FALSE": 0.0}


def _is_number(text: str, decimal: str = ".") -> bool:
    """A cell that holds a value: a number, or a bool as pandas and Polars write them."""
    text = text.strip()
    if text in BOOL_VALUES:
        return True
    if decimal != ".":
        if "." in text:
            return False
        text = text.replace(decimal, ".")
    try:
        float(text)
    except ValueError:
        return False
    return True


def _bool_columns(fields: list[str], rows: list[list[str]], has_header: bool) -> set[int]:
    """Columns whose first non-empty value is True/False: read as booleans (1/0), as the same
    column is read from Parquet, where it is a bool column."""
    data = rows if has_header else [fields, *rows]
    found: set[int] = set()
    for j in range(len(fields)):
        first = next((r[j].strip() for r in data if j < len(r) and r[j].strip()), "")
        if first in BOOL_VALUES:
            found.add(j)
    return found


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

    def release(self, slot: int) -> None:
        """Give back a slot whose bytes were not handed to a parse."""
        self._free.put(slot)

    def release_after(self, slot: int, parse: Future[Any]) -> None:
        """Give ``slot`` back once ``parse`` (of the bytes in it) has finished, however it ends."""
        parse.add_done_callback(lambda _: self._free.put(slot))

    def close(self) -> None:
        self._free.put(None)


class CsvReader(Reader):
    """A delimited text file, or ``-`` for stdin.

    ``ids_as_text``: its id columns are text, even when they travel as int64 (see ids).

    ``stream``: the input when it can be read only once (stdin, a pipe), replaying the bytes
    open_reader sniffed. ``compression`` overrides what the name says (a pipe has no name).
    ``delimiter``/``decimal``: the separator and decimal mark, None to detect (csv_dialect).
    """

    delimited = True

    def __init__(
        self,
        path: str,
        delimiter: str | None = None,
        *,
        header: bool | None = None,
        nan: str = "error",
        stream: Any = None,
        compression: str | None = None,
        decimal: str | None = None,
    ) -> None:
        self.path = path
        self.display = "<stdin>" if path == "-" else path
        if stream is None and path == "-":
            stream = Replay(b"", sys.stdin.buffer, owns=False)
        self.compression = compression or (None if stream is not None else detect_compression(path))
        self.skip_missing = nan == "skip"
        self._stream = self._decompressed(stream) if stream is not None and self.compression else stream
        first, raw = self._peek()
        lines = _sample_lines(raw, self._peek_eof)
        self.dialect = detect(path, first, lines, delimiter, decimal)
        self.delimiter = delimiter = self.dialect.delimiter
        self.decimal = self.dialect.decimal
        self._prefix: bytes | None = raw
        try:
            fields = next(csv.reader([first], delimiter=delimiter)) if first else []
        except csv.Error as exc:
            raise InputError(f"cannot be parsed on its first line ({exc})", path=self.display) from None
        if not fields:
            raise InputError("is empty: there are no rows to score", path=self.display)
        if first.lstrip("\ufeff \t").startswith(("{", "[")):  # not a header: a JSON record
            raise InputError(
                f"looks like JSON, not {'TSV' if delimiter == chr(9) else 'CSV'} (its first line "
                f"starts with {first.lstrip(chr(0xFEFF) + ' ' + chr(9))[0]!r}); JSON holds per-token "
                "log-probabilities, read by `losscli perplexity --logprobs FILE`: name the file "
                ".json or .jsonl, or give --input-format json",
                path=self.display,
            )
        self.first_fields = [f.strip() for f in fields]
        sample = _sample_rows(lines, delimiter)
        self.has_header, self.header_certain = _detect_header(fields, sample, header, self.decimal)
        self.bool_columns = _bool_columns(fields, sample, self.has_header)
        self._sample = sample
        # a header of integers other than pandas' default: a guess worth a line (see settle_headers)
        self.header_note: str | None = None
        integers = all(_INTEGER.fullmatch(f.strip()) for f in fields)
        if header is None and self.has_header and integers and not _is_default_header(fields):
            shown = ",".join(f.strip() for f in fields[:4]) + (",..." if len(fields) > 4 else "")
            self.header_note = (
                f"{self.display}: read its first row ({shown}) as column names: integers above "
                "values written as decimals or True/False, as pandas writes integer column names; "
                "give --no-header if it is data"
            )
        self.header_settled = False  # set by open.settle_headers once it has decided
        self.header_forced = header is not None  # --header/--no-header: no rule may change it
        self.pandas_default = _is_default_header(fields)  # 0,1,...,k-1: pandas' unnamed columns
        self.header_guessed = self.header_note is not None  # a guess was announced (for hints)
        self.blank_tail = 0  # empty lines ending a one-column file: not rows (known once read)
        self.ids_as_text = True
        self.text_columns: set[int] = set()  # read as text, not numbers (id columns, see ids)
        self._integer_ids = True  # text ids so far were plain integers (compared as int64)
        self._fields = fields
        self.use_header(self.has_header)
        self.n_rows = None
        self._buffers: dict[int, NDArray[Any]] = {}

    def use_header(self, header: bool) -> None:
        """Read the first row as column names (or as data): names, and pandas' index columns."""
        fields = self._fields
        self.has_header = header
        if header:
            names = [f.strip() or f"column{j}" for j, f in enumerate(fields)]
            seen: dict[str, int] = {}
            for j, name in enumerate(names):
                if name in seen:
                    names[j] = f"{name}.{j}"
                seen[name] = j
            self.column_names = names
            self.index_columns = csv_index_columns(fields)  # pandas' index: never data
            self._header: list[str] | None = [f.strip() for f in fields]
        else:
            self.column_names = [str(j) for j in range(len(fields))]
            self.index_columns = ()
            self._header = None

    @property
    def header_row(self) -> bool:
        return self.has_header

    def header_text(self, j: int) -> str:
        """A column's name as the header wrote it ('' for pandas' unnamed index, not 'column0')."""
        header = getattr(self, "_header", None)
        return header[j] if header is not None and j < len(header) else self.column_names[j]

    @property
    def one_column(self) -> bool:
        """A file of one column, where an empty line between rows is a missing value."""
        return len(self.column_names) == 1

    def _decompressed(self, stream: Any) -> Any:
        import pyarrow as pa

        try:
            return pa.CompressedInputStream(stream, self.compression)
        except (pa.ArrowException, ValueError, OSError) as exc:
            raise InputError(f"cannot be decompressed ({exc})", path=self.display) from None

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
        """The first non-blank line as text, and every byte read to get it and a sample of the
        rows below it (which a stream replays). Reads PEEK_BYTES or SAMPLE_LINES lines past the
        first line, whichever comes first, or the whole input if it is shorter."""
        src = self._stream if self._stream is not None else self._open_binary()
        buf = bytearray()
        blank_end, line_end = 0, -1  # the BOM/empty lines before the first line; its end
        self._peek_eof = False
        try:
            while len(buf) <= PEEK_LIMIT:
                piece = src.read(PEEK_BYTES)
                if not piece:
                    self._peek_eof = True
                    break
                buf += piece
                if line_end < 0:
                    blank_end = _data_start(buf, len(buf), blank_end)
                    line_end = buf.find(b"\n", max(blank_end, len(buf) - len(piece)))
                if line_end >= 0 and (len(buf) >= PEEK_BYTES or buf.count(b"\n") > SAMPLE_LINES):
                    break
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot be read ({exc})", path=self.display) from None
        finally:
            if self._stream is None:
                src.close()
        consumed = bytes(buf)
        if len(consumed) > PEEK_LIMIT and b"\n" not in consumed:
            raise InputError(
                f"has no line end in its first {PEEK_LIMIT} bytes: not a CSV file", path=self.display
            )
        start = _data_start(consumed, len(consumed))
        line = consumed[start:].split(b"\n", 1)[0].rstrip(b"\r")
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
        """The raw bytes, from the start (a stream replays the bytes peeked at); read once."""
        if self._stream is not None:
            if self._prefix is None:
                raise InputError("was already read: a pipe can be read only once", path=self.display)
            prefix, self._prefix = self._prefix, None
            return Replay(prefix, self._stream)
        return self._open_binary()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()

    def _blocks(self, slots: _Slots) -> Iterator[tuple[int, memoryview]]:
        """The input in blocks of about PARSE_BLOCK bytes, each ending at a line end.

        Blocks are parsed by pyarrow's multi-threaded reader, PARSE_AHEAD at a time, so parsing
        runs on every core while memory stays at a few blocks, whatever the file's size. Each
        block is read into a slot's buffer (fresh pages cost more than the parse, so buffers
        are reused) and comes with its slot number, to be released once parsed.

        The first block starts after any BOM and leading blank lines. In a one-column file,
        where pyarrow is told to keep empty lines (each is a missing value), the blank lines
        at the end of a block are carried into the next one, and dropped at the end of the
        input: only there are they not rows.
        """
        src = self._source()
        carry = b""
        turn = 0
        started = False
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
                if not started:  # drop a BOM, and leading blank lines unless they are rows
                    first = _data_start(buf, filled, blank_lines=not self._leading_blanks_are_rows())
                    if first:
                        buf[: filled - first] = buf[first:filled]
                        filled -= first
                        cut -= first
                if eof:
                    end = _rstrip_newlines(buf, filled) if self.one_column else filled
                    self.blank_tail = max(0, buf.count(b"\n", end, filled) - 1)
                    if end > 0:
                        yield slot, memoryview(buf)[:end]
                    return
                end = _blank_tail(buf, cut + 1) if self.one_column else cut + 1
                carry = bytes(buf[end:filled])
                if end > 0:
                    started = True
                    yield slot, memoryview(buf)[:end]
                else:
                    slots.release(slot)
                turn += 1
        finally:
            src.close()

    def chunks(self, groups: Sequence[Group], max_rows: int) -> Iterator[Chunk]:
        wanted = wanted_columns(groups, len(self.column_names))
        if self._small():
            yield from self._small_chunks(groups, wanted, max_rows)
        else:
            yield from self._arrow_chunks(groups, wanted, max_rows)

    def text_column(self, column: int) -> bool:
        """A cell of the first rows that is neither a number nor True/False (``dog``)."""
        rows = self._sample if self.has_header else [self._fields, *self._sample]
        return any(
            column < len(r) and r[column].strip() and not _is_number(r[column], self.decimal) for r in rows
        )

    def _leading_blanks_are_rows(self) -> bool:
        """In a one-column file without a header, every empty line before the last row is a
        missing value, the first ones too (Polars writes a leading null so without a header)."""
        return self.one_column and not self.has_header

    def _small(self) -> bool:
        """Small plain files are parsed in Python: importing pyarrow costs more than parsing."""
        if self._stream is not None or self.compression:
            return False
        try:
            return os.path.getsize(self.path) <= SMALL_FILE_BYTES
        except OSError:
            return False

    def _ids(self, arr: Any) -> NDArray[Any]:
        """An id column of a parsed block as numpy: int64 while every block's text so far was
        plain integers (see ids), else str objects."""
        from .ids import ids_to_numpy

        ids = ids_to_numpy(arr, try_integers=self._integer_ids)
        self._integer_ids = ids.dtype != object
        return ids

    def _small_chunks(self, groups: Sequence[Group], wanted: list[int], max_rows: int) -> Iterator[Chunk]:
        numbers = [j for j in wanted if j not in self.text_columns]
        parsed = list(self._parse_python(wanted))
        if self.text_columns:  # text cells stay text: split them off the numbers
            from .ids import ids_from_text

            at = {j: pos for pos, j in enumerate(wanted)}
            texts = {j: ids_from_text([r[at[j]] for r in parsed], True) for j in self.text_columns}
            parsed = [[r[at[j]] for j in numbers] for r in parsed]
        # (rows, 0) when every wanted column is text (a file of text labels alone)
        values = np.array(parsed, dtype=np.float64).reshape(len(parsed), len(numbers))
        cols: dict[int, NDArray[Any]] = {j: values[:, pos] for pos, j in enumerate(numbers)}
        if self.text_columns:
            cols.update(texts)
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

        # In a one-column file an empty line is an empty cell: a missing value, not a gap.
        keep_empty = self.one_column
        parse_opts = pacsv.ParseOptions(delimiter=self.delimiter, ignore_empty_lines=not keep_empty)
        text = {self.column_names[j] for j in self.text_columns}
        bools = {self.column_names[j] for j in self.bool_columns} - text
        convert_opts = pacsv.ConvertOptions(
            column_types={
                n: pa.string() if n in text else pa.bool_() if n in bools else pa.float64() for n in names
            },
            true_values=[t for t, v in BOOL_VALUES.items() if v],
            false_values=[t for t, v in BOOL_VALUES.items() if not v],
            include_columns=names,
            null_values=[""],  # an empty cell, quoted or not, is missing; "nan" is a value, "NA" an error
            strings_can_be_null=False,
            quoted_strings_can_be_null=True,
            decimal_point=self.decimal,
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

        plain_opts = pacsv.ParseOptions(
            delimiter=self.delimiter, quote_char=False, double_quote=False, ignore_empty_lines=not keep_empty
        )
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
            numbers = [(pos, j) for pos, j in enumerate(wanted) if j not in self.text_columns]
            if not self.skip_missing:
                named = [(batch.column(pos), repr(self.column_names[j])) for pos, j in numbers]
                refuse_missing(named, self.display, row, "empty cell")
            cols: dict[int, NDArray[Any]] = {}
            for pos, j in numbers:
                name = repr(self.column_names[j])
                cols[j] = arrow_column(
                    batch.column(pos), self.display, row, name, "empty cell", self.skip_missing
                )
            for pos, j in enumerate(wanted):
                if j in self.text_columns:
                    cols[j] = self._ids(batch.column(pos))
            whole = assemble(groups, wanted, cols, self._buffers, self.display)
            for start in range(0, batch.num_rows, max_rows):
                yield [a[start : start + max_rows] for a in whole]
            row += batch.num_rows

    def _parse_python(self, wanted: list[int]) -> Iterator[list[Any]]:
        """Row values of the wanted columns via the csv module; raises InputError at the first
        problem with its row, line and column. Serves small files and error diagnosis.

        Follows the pyarrow path's rules: an empty cell is missing (NaN under --nan skip); in a
        one-column file so is an empty line, unless it comes before a header or only empty
        lines follow it; elsewhere empty lines hold no row."""
        raw = self._open_binary()
        bad_utf8: list[int] = []
        data_row = -1
        width = len(self.column_names)
        skip_header = self.has_header
        started = False  # past the first non-blank row (header or data)
        blanks: list[int] = []  # line numbers of empty lines not yet known to be inside the data
        try:
            lines = io.BufferedReader(Replay(b"", raw, owns=False))  # pyarrow's streams cannot iterate lines
            reader = csv.reader(_decoded_lines(lines, bad_utf8), delimiter=self.delimiter)
            for fields in reader:
                if not fields:
                    if (started and width == 1) or self._leading_blanks_are_rows():
                        blanks.append(reader.line_num)
                    continue
                started = True
                if skip_header:
                    skip_header = False
                    continue
                for line in blanks:  # empty lines with a row after them: missing values
                    data_row += 1
                    yield self._cells([""], wanted, data_row, line)
                blanks.clear()
                data_row += 1
                line = reader.line_num
                if len(fields) != width:
                    hint = decimal_hint(",".join(fields), self.decimal) if width == 1 else ""
                    raise InputError(
                        f"line {line} has {len(fields)} field(s) but the first row has {width}{hint}",
                        path=self.display,
                        row=data_row,
                    )
                yield self._cells(fields, wanted, data_row, line)
            self.blank_tail = len(blanks)
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

    def _cells(self, fields: list[str], wanted: list[int], data_row: int, line: int) -> list[Any]:
        """The wanted fields of one row as floats (text for ``text_columns``): an empty one is
        missing (NaN, or an error unless --nan skip); anything else that is not a number is an
        error naming the cell."""
        values: list[Any] = []
        for j in wanted:
            text = fields[j]
            if j in self.text_columns:
                values.append(text)
                continue
            value = BOOL_VALUES.get(text) if j in self.bool_columns else _to_float(text, self.decimal)
            if value is None:
                if text == "" and self.skip_missing:
                    value = math.nan
                else:
                    shown = text if len(text) <= 40 else text[:40] + "..."
                    if "\x00" in text:
                        what = "contains a NUL byte"
                    elif text == "":
                        what = missing_message("empty cell")
                    elif not text.strip():
                        what = "blank cell (only spaces) is not a number"
                    elif j in self.bool_columns:
                        what = f"{shown!r} is not True or False, as the column's first value is"
                    else:
                        what = f"{shown!r} is not a number"
                    raise InputError(
                        f"{what} (line {line}){decimal_hint(text, self.decimal)}",
                        path=self.display,
                        row=data_row,
                        column=repr(self.column_names[j]),
                    )
            values.append(value)
        return values

    def _diagnose(self, exc: BaseException, row: int, wanted: list[int]) -> InputError:
        """pyarrow's errors do not say where; the Python parser finds the first bad cell."""
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if self._stream is not None:
            bad = re.search(r"invalid value '([^']*)'", message)
            hint = decimal_hint(bad[1], self.decimal) if bad else ""
            return InputError(f"{_friendly(message)} (somewhere after row {row}){hint}", path=self.display)
        try:
            for _ in self._parse_python(wanted):
                pass
        except InputError as located:
            return located
        return InputError(_friendly(message), path=self.display)


def _to_float(text: str, decimal: str = ".") -> float | None:
    """float() as pyarrow reads numbers: no digit separators, surrounding spaces allowed;
    ``decimal`` is the decimal mark (with a comma, a point is not a number, as in pyarrow)."""
    if "_" in text:
        return None
    if decimal != ".":
        if "." in text:
            return None
        text = text.replace(decimal, ".")
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


def _data_start(buf: bytes | bytearray, end: int, begin: int = 0, blank_lines: bool = True) -> int:
    """Where the first non-blank line starts: after a UTF-8 BOM and empty lines (``end`` when
    there is none before it); after the BOM alone unless ``blank_lines``. ``begin``: a position
    known to be inside that prefix."""
    if begin == 0 and buf[:3] == b"\xef\xbb\xbf":
        begin = 3
    if not blank_lines:
        return begin
    found = _NON_BLANK.search(buf, begin, end)
    return found.start() if found else end


def _blank_tail(buf: bytearray, end: int) -> int:
    """The start of the run of empty lines that ends ``buf[:end]`` (which ends with a newline):
    just after the last non-empty line, or 0 if every line is empty."""
    i = end
    while i > 0:
        j = buf.rfind(b"\n", 0, i - 1) + 1  # the line buf[j : i - 1]
        length = i - 1 - j
        if length > 1 or (length == 1 and buf[j] != 0x0D):
            return i
        i = j
    return 0


def _rstrip_newlines(buf: bytearray, end: int) -> int:
    """``end`` moved back over the empty lines (and the last line end) that finish the input."""
    while end > 0 and buf[end - 1] in (0x0A, 0x0D):
        end -= 1
    return end


def _sample_lines(raw: bytes, complete: bool) -> list[str]:
    """The non-empty lines after the first line in the bytes peeked at, up to SAMPLE_LINES:
    complete lines only, unless the peek reached the end of the input."""
    body = raw[_data_start(raw, len(raw)) :]
    nl = body.find(b"\n")
    if nl < 0:
        return []
    rest = body[nl + 1 :]
    if not complete:
        rest = rest[: rest.rfind(b"\n") + 1]
    return [ln for ln in rest.decode("utf-8", errors="replace").splitlines()[:SAMPLE_LINES] if ln]


def _sample_rows(lines: list[str], delimiter: str) -> list[list[str]]:
    """The sampled lines (see _sample_lines) split into fields."""
    try:
        return list(csv.reader(lines, delimiter=delimiter))
    except csv.Error:
        return []


def _detect_header(
    fields: list[str], rows: list[list[str]], forced: bool | None, decimal: str = "."
) -> tuple[bool, bool]:
    """(has a header, certain). A field that is not a number makes the first row a header.
    A row of integers is a header when a column below it holds numbers written with a decimal
    point or exponent (pandas and Polars write 0.0 there, never 0) and no column mixes them with
    integers (%g style, where 0 may be data): pandas' default ``0,1,...,k-1``, and integer
    column names (years, scikit-learn's ``classes_``), which ``header_note`` then announces.
    Above integers, ``0,1,...,k-1`` cannot tell and ``open.settle_headers`` decides; any other
    row of numbers is data."""
    if forced is not None:
        return forced, True
    if len(fields) == 1 and not fields[0].strip():
        return False, True  # "" alone: a missing value, as pandas writes NaN without a header
    if not all(_is_number(f, decimal) for f in fields):
        return True, True
    default = _is_default_header(fields)
    if not default and not all(_INTEGER.fullmatch(f.strip()) for f in fields):
        return False, True
    if _decimals_below(len(fields), rows):
        # one integer above decimals may be %g-written data (2, then 2.5): let the run decide
        return (True, True) if default or len(fields) > 1 else (False, False)
    return False, not default


def _is_default_header(fields: list[str]) -> bool:
    """pandas' column names for an unnamed array: ``0,1,...,k-1``."""
    return [f.strip() for f in fields] == [str(j) for j in range(len(fields))]


def _decimals_below(width: int, rows: list[list[str]]) -> bool:
    """Some column holds numbers written with a decimal point or exponent, and none mixes them
    with integers: the rows were written by a tool that writes floats as floats."""
    ints = [False] * width
    floats = [False] * width
    for row in rows:
        for j, text in enumerate(row[:width]):
            if text.strip():  # True/False count as not integers: a bool column is never data's 0/1
                if _INTEGER.fullmatch(text):
                    ints[j] = True
                else:
                    floats[j] = True
    return any(f and not i for f, i in zip(floats, ints, strict=True)) and not any(
        f and i for f, i in zip(floats, ints, strict=True)
    )
