"""What every reader offers: named columns and a stream of numpy chunks. No loss math here.

A *group* is what one role (predictions, targets, weights) takes from a file: ``None`` for
"everything numeric in the file", or a list of column positions. A group with one scalar
column arrives as a 1-D array; several columns, a list column, or a whole 2-D array arrive as
2-D (rows, width). Chunks may be views into buffers the reader reuses: a chunk is valid only
until the next one is requested.
"""

from __future__ import annotations

import copy
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError, UsageError

if TYPE_CHECKING:
    from .json_records import TokenTexts

Group = Sequence[int] | None
Chunk = list[NDArray[Any]]


_PANDAS_UNNAMED = re.compile(r"Unnamed: \d+(\.\d+)?")
_EXACT_ID_NAMES = ("id", "idx", "index", "row")


def csv_index_columns(header: Sequence[str]) -> tuple[int, ...]:
    """The pandas index columns of a CSV header: the leading fields that are empty (what
    ``df.to_csv(path)`` writes for an unnamed index, one per level) or ``Unnamed: N`` (what
    pandas calls such a column when it reads the file back, and writes again)."""
    count = 0
    for field in header:
        if field.strip() and not _PANDAS_UNNAMED.fullmatch(field.strip()):
            break
        count += 1
    return tuple(range(count))


def is_id_name(name: str) -> bool:
    """Row identity, not data: ``id``, ``idx``, ``index``, ``row`` (any case), a name ending in ``_id``,
    or a camelCase ``...Id``/``...ID`` (Kaggle's ``PassengerId``). ``token_ids``/``input_ids``
    are not: they name token-id *values* (targets of a language model)."""
    low = name.strip().lower()
    if low in _EXACT_ID_NAMES or low.endswith("_id"):
        return True
    stripped = name.strip()
    return len(stripped) > 2 and stripped[-2:] in ("Id", "ID") and stripped[-3].islower()


def is_row_label(name: str) -> bool:
    """The plainest id names (``id``, ``index``, ``row``): beside ``token_id`` they are the
    row labels and ``token_id`` is the data."""
    return name.strip().lower() in _EXACT_ID_NAMES


class IndexNames(Sequence[str]):
    """The column names "0".."k-1" of an array, without building k strings (k may be 256k)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [str(j) for j in range(self.size)[index]]
        if not -self.size <= index < self.size:
            raise IndexError(index)
        return str(index % self.size)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.isdigit() and int(name) < self.size

    def index(self, name: Any, start: int = 0, stop: int | None = None) -> int:
        if name not in self:
            raise ValueError(name)
        return int(name)


R = TypeVar("R", bound="Reader")


class Reader(ABC):
    """A file opened for streaming. Subclasses know one format each."""

    #: what messages call the file
    display: str
    #: column names in file order (for .npy: "0".."k-1"; for .npz with several arrays: the keys)
    column_names: Sequence[str]
    #: rows, when the format tells them before reading (NumPy, Parquet); None for CSV
    n_rows: int | None = None
    #: the file's natural shape beyond rows (for example (V,) for logits), when known
    row_shape: tuple[int, ...] | None = None
    #: bytes per element of the widest column, when known (sizes the default chunk)
    itemsize: int = 8
    #: chunks are this reader's reused buffers, so the math may overwrite them in place
    scratch_chunks: bool = False
    #: positions of pandas index columns (CSV: an empty or ``Unnamed: 0`` first header field;
    #: Parquet: the ``index_columns`` of the pandas metadata): row labels, never data
    index_columns: tuple[int, ...] = ()
    #: a delimited text table (CSV/TSV): its first row may be a header, its cells are text
    delimited: bool = False
    #: whether the first row was read as a guess between header and data, announced in a
    #: warning (CSV/TSV), so a row-count mismatch can point at it
    header_guessed: bool = False
    #: empty lines that ended a one-column text file and held no row (known once read)
    blank_tail: int = 0
    #: id columns are text in the file even when they travel as int64 (see ids)
    ids_as_text: bool = False
    #: each record is one sequence's tokens (JSON Lines of log-probabilities): the format fixes
    #: the column and where sequences end (``list_lengths(0)``)
    sequence_records: bool = False
    #: the text and id of each scored token, when the format carries them (JSON of LM servers)
    token_texts: TokenTexts | None = None
    #: null log-probabilities (JSON of echoed prompts), rows marked NULL_LOGPROB for the scorer
    #: to ignore, counted once ``list_lengths`` has read them
    nulls: int = 0
    #: a pipe or stdin: its rows can be read only once, so nothing may look at them first
    read_once: bool = False
    #: a view (``token_reader``) that shares its reader's open files: closing it closes nothing
    shares_files: bool = False

    @property
    def header_row(self) -> bool:
        """The first row was read as column names (CSV/TSV); False for formats whose columns
        are named (or numbered) otherwise."""
        return False

    def named(self) -> bool:
        """True when the columns have names a person gave them (a header, Parquet fields,
        .npz keys), so name rules (index, id, conventional names) can apply."""
        return not isinstance(self.column_names, IndexNames)

    def header_text(self, j: int) -> str:
        """A column's name as the file wrote it (a CSV's unnamed index: '', not 'column0')."""
        return self.column_names[j]

    def resolve(self, spec: str) -> int:
        """A column by name first, then by 0-based position, as ``--pred-col`` promises."""
        if spec in self.column_names:
            return self.column_names.index(spec)
        try:
            index = int(spec)
        except ValueError:
            index = None
        if index is not None and 0 <= index < len(self.column_names):
            return index
        if not self.named() and not spec.lstrip("-").isdigit():  # a name asked of a plain array
            raise UsageError(
                f"{self.display}: no column {spec!r}: it is a plain array, whose columns have no "
                f"names, only positions 0..{len(self.column_names) - 1}"
            )
        shown = ", ".join(repr(c) for c in self.column_names[:20])
        more = ", ..." if len(self.column_names) > 20 else ""
        raise UsageError(f"{self.display}: no column {spec!r}; columns are {shown}{more}")

    def guess(self, names: Sequence[str]) -> int | None:
        """The first column whose lower-cased name is one of ``names`` (conventional names like
        "target" or "logits"); None when there is none, and at once for an array's numbered
        columns, which have no names to match."""
        if not self.named():
            return None
        lowered = [("" if j in self.index_columns else c.lower()) for j, c in enumerate(self.column_names)]
        return next((lowered.index(n) for n in names if n in lowered), None)

    def resolve_many(self, spec: str, skip: Collection[int] = ()) -> list[int]:
        """A column spec: names, positions, ranges (``1-10``, ``3-``) and globs (``p_*``),
        separated by commas (rules in ``colspec``). Ranges and globs never take an index or id
        column, nor one in ``skip`` (the columns another role took from this file)."""
        from .colspec import resolve_spec

        return resolve_spec(self, spec, skip)

    @abstractmethod
    def chunks(self, groups: Sequence[Group], max_rows: int) -> Iterator[Chunk]:
        """Yield one list of arrays per chunk, one array per group, all with the same rows."""

    def token_reader(self, column: int | None, keep_last: bool) -> tuple[Reader, tuple[int, ...]] | None:
        """A NEW reader of ``column`` (or the file's array) one token per row, for language
        models, and the leading shape it flattened; this reader is left as it was. Called
        through ``tokens.token_view``.

        ``keep_last``: logits, (B, T, V) -> (B*T, V), leading shape (B, T); otherwise ids,
        (B, T) -> (B*T,), leading shape (B, T). A list column per sequence (Parquet) gives
        ``()``: its list lengths are the sequences. None: a flat table, already one token per
        row (CSV, JSON Lines, a Parquet column that is not a list), to be read as it is.
        """
        return None

    def text_column(self, column: int) -> bool:
        """The column holds text, not numbers (class names as labels): the plan then reads it
        as text (``ids.open_ids``) for a metric that takes text labels. CSV judges from its
        first rows, Parquet from the column's type."""
        return False

    def list_lengths(self, column: int) -> NDArray[np.int64] | None:
        """Per-row list lengths of a list column (tokens per sequence), or None if not a list."""
        return None

    def row_place(self, row: int) -> str | None:
        """Where row ``row`` (0-based, this file's own) is, in the file's own terms, when a row
        and column would not say it (a JSON record's token: its line and index); None: they do."""
        return None

    def range_reader(self) -> RangeReader | None:
        """An independent reader of row ranges (own buffers, safe in another thread), for
        formats that can seek to a row; None for streams (CSV, Parquet, .npz)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, most readers hold nothing open
        """Release file handles; safe to call twice."""

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _view(self: R) -> R:
        """A shallow copy that shares this reader's open files (closing it closes nothing: this
        reader owns them). The caller replaces whatever the view reads differently."""
        view = copy.copy(self)
        view.shares_files = True
        return view


class RangeReader(ABC):
    """Reads rows [start, stop) of the groups; results are valid until the next call."""

    @abstractmethod
    def read(self, groups: Sequence[Group], start: int, stop: int) -> Chunk: ...


def stack_columns(
    columns: Sequence[NDArray[Any]], out: NDArray[Any] | None
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Place 1-D columns side by side in a reused (rows, k) buffer: returns (view, buffer)."""
    rows = len(columns[0]) if columns else 0
    k = len(columns)
    dtype = np.result_type(*[c.dtype for c in columns]) if columns else np.float64
    if out is None or out.shape[0] < rows or out.shape[1] != k or out.dtype != dtype:
        out = np.empty((max(rows, 1), k), dtype=dtype)
    view = out[:rows]
    for j, col in enumerate(columns):
        view[:, j] = col
    return view, out


def wanted_columns(groups: Sequence[Group], count: int) -> list[int]:
    """Every column any group reads, in file order (all of them when a group is None)."""
    if any(g is None for g in groups):
        return list(range(count))
    return sorted({j for g in groups if g is not None for j in g})


def assemble(
    groups: Sequence[Group],
    wanted: list[int],
    cols: dict[int, NDArray[Any]],
    buffers: dict[int, NDArray[Any]],
    display: str,
) -> Chunk:
    """One array per group from decoded columns: a named single column as it is (1-D, or 2-D
    for a list column), several columns stacked into a reused (rows, k) buffer per group."""
    out: Chunk = []
    for gi, g in enumerate(groups):
        sel = wanted if g is None else list(g)
        if len(sel) == 1 and (g is not None or cols[sel[0]].ndim == 2):
            out.append(cols[sel[0]])
            continue
        if any(cols[j].ndim != 1 for j in sel):
            raise UsageError(
                f"{display}: a list column cannot be combined with other columns; "
                "select it alone with --pred-col"
            )
        view, buffers[gi] = stack_columns([cols[j] for j in sel], buffers.get(gi))
        out.append(view)
    return out


def missing_message(what: str) -> str:
    """How every reader refuses a missing value (an empty CSV cell, a Parquet null)."""
    return f"{what} (a missing value): every selected cell must hold a number; --nan skip drops such rows"


def arrow_column(
    arr: Any, display: str, row: int, column: str, empty: str, missing_as_nan: bool = False
) -> NDArray[Any]:
    """A numeric Arrow column as numpy. A null is a missing value: NaN when ``missing_as_nan``
    (--nan skip, so the engine drops its row in every input), else an InputError at the first
    null (``empty`` says what a null is in this format) naming the global row."""
    if arr.null_count:
        if missing_as_nan:
            import pyarrow as pa
            import pyarrow.compute as pc

            return arrow_to_numpy(pc.fill_null(arr.cast(pa.float64()), math.nan))
        bad = int(np.argmax(arrow_to_numpy(arr.is_null())))
        raise InputError(missing_message(empty), path=display, row=row + bad, column=column)
    return arrow_to_numpy(arr)


def refuse_missing(columns: Sequence[tuple[Any, str]], display: str, row: int, empty: str) -> None:
    """Raise at the first null of a batch's (Arrow array, column name) pairs in reading order,
    row then column, as a reader going cell by cell would name it; nothing if none."""
    first: tuple[int, int] | None = None
    for k, (arr, _) in enumerate(columns):
        if arr.null_count:
            at = (int(np.argmax(arrow_to_numpy(arr.is_null()))), k)
            first = at if first is None else min(first, at)
    if first is not None:
        name = columns[first[1]][1]
        raise InputError(missing_message(empty), path=display, row=row + first[0], column=name)


def arrow_to_numpy(arr: Any) -> NDArray[Any]:
    """A null-free numeric Arrow array as a zero-copy numpy view.

    Not ``Array.to_numpy()``: that imports pandas whenever pandas is installed, which costs
    ~300 ms of start-up for nothing.
    """
    import pyarrow as pa
    import pyarrow.types as pt

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pt.is_boolean(t):
        bits = np.frombuffer(arr.buffers()[1], dtype=np.uint8)
        return np.unpackbits(bits, bitorder="little", count=arr.offset + len(arr))[arr.offset :]
    if pt.is_floating(t):
        dtype = np.dtype(f"f{t.bit_width // 8}")
    elif pt.is_signed_integer(t):
        dtype = np.dtype(f"i{t.bit_width // 8}")
    elif pt.is_unsigned_integer(t):
        dtype = np.dtype(f"u{t.bit_width // 8}")
    else:
        raise TypeError(f"not a numeric Arrow type: {t}")
    if len(arr) == 0:
        return np.empty(0, dtype=dtype)
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)
