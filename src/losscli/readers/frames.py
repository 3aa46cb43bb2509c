"""What the Python API reads from an object the caller passes: a table of named columns (pandas
and Polars DataFrames, pyarrow Tables and RecordBatches, dicts of arrays, anything exposing the
Arrow C stream or the dataframe interchange protocol) or an array (numpy, lists, torch tensors).

Nothing is imported for a library the caller did not use: an object is recognised by the
module its type comes from (``type(x).__module__``) or by the protocol methods it has, and
pandas, Polars or torch are imported only to convert an object of theirs (so they are already
loaded). pyarrow is losscli's own dependency: every table becomes a pyarrow Table, read by
``ArrowReader`` as a Parquet file with the same columns would be.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InputError, UsageError
from .base import Reader

ACCEPTED = (
    "a path, an array (numpy, list, torch tensor), a DataFrame (pandas, Polars), a pyarrow "
    "Table or RecordBatch, or a dict of column name -> 1-D array"
)


def open_memory(data: Any, role: str, nan: str = "error", text: bool = False) -> Reader:
    """A reader for an in-memory input: named tables by name, arrays as arrays; ``text``: a 1-D
    array (or list) of strings is accepted (text labels, for a metric that takes them)."""
    from .memory import ArrayReader

    if isinstance(data, np.ndarray):  # the plain fast path, as before
        return ArrayReader(data, role, text=text)
    table = as_table(data, role)
    if table is not None:
        from .arrow_reader import ArrowReader

        return ArrowReader(table, role, nan)
    if text and isinstance(data, (list, tuple)) and data and all(isinstance(v, str) for v in data):
        return ArrayReader(np.asarray(data), role, text=True)
    return ArrayReader(as_array(data, role), role, text=text)


def _top_module(data: Any) -> str:
    return (type(data).__module__ or "").split(".")[0]


def as_table(data: Any, role: str) -> Any | None:
    """``data`` as a pyarrow Table if it is a table of named columns; None for an array."""
    top, kind = _top_module(data), type(data).__name__
    if top == "pyarrow":
        return _pyarrow_table(data)
    if top == "pandas" and kind == "DataFrame":
        # as df.to_parquet stores it: a default RangeIndex is metadata only, a named (or
        # filtered) index is a column listed in the pandas metadata, skipped as data
        return _converted(role, kind, lambda: _from_pandas(data))
    if top == "pandas" and kind == "Series" and not _default_index(data.index):
        # a Series keeps its index as a DataFrame does, so two Series in different orders are
        # caught (Evaluator._check_index) instead of being paired by position
        name = data.name if data.name is not None else role
        return _converted(role, kind, lambda: _from_pandas(data.to_frame(name=name)))
    if top == "polars" and kind == "DataFrame":
        return _converted(role, kind, data.to_arrow)
    if isinstance(data, Mapping):
        return dict_table(data, role)
    if hasattr(data, "__arrow_c_stream__"):
        table = _from_stream(data)
        if table is not None or hasattr(data, "__array__"):  # a 1-D array's stream: an array
            return table
        raise UsageError(
            f"{role}: a {_type_name(data)} gives an Arrow stream that is not a table; pass {ACCEPTED}"
        )
    if hasattr(data, "__arrow_c_array__") and not hasattr(data, "__array__"):
        batch = _from_array_capsule(data)
        if batch is None:
            raise UsageError(
                f"{role}: a {_type_name(data)} gives an Arrow array that is not a table; pass {ACCEPTED}"
            )
        return batch
    if hasattr(data, "__dataframe__") and not hasattr(data, "__array__"):
        from pyarrow.interchange import from_dataframe

        return _converted(role, kind, lambda: from_dataframe(data))
    return None


def _default_index(index: Any) -> bool:
    """pandas' RangeIndex 0, 1, 2, ...: no labels worth keeping (the rows' positions)."""
    return (
        type(index).__name__ == "RangeIndex" and index.start == 0 and index.step == 1 and index.name is None
    )


def _pyarrow() -> Any:
    import pyarrow as pa

    return pa


def _from_pandas(frame: Any) -> Any:
    """``pa.Table.from_pandas``; its warning that integer column names become text is the
    reading losscli promises (``columns=clf.classes_`` names class columns "0", "1", ...)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The DataFrame has column names of mixed type")
        # any index but the default 0..n-1 is kept as a column, a reversed or sliced RangeIndex
        # too (pyarrow would keep those as metadata only), so two frames' orders can be compared
        keep = None if _default_index(frame.index) else True
        return _pyarrow().Table.from_pandas(frame, preserve_index=keep)


def _pyarrow_table(data: Any) -> Any | None:
    pa = _pyarrow()
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    return None  # an Array or ChunkedArray: a column of values, read as an array


def _from_stream(data: Any) -> Any | None:
    """An object exporting an Arrow C stream of record batches, as a Table; None when its
    stream is of plain values (a Series, an Arrow array), which reads as an array."""
    pa = _pyarrow()
    try:
        reader = pa.RecordBatchReader.from_stream(data)
    except Exception:  # a stream of values, or the caller's object failed: not a table
        return None
    return reader.read_all()


def _from_array_capsule(data: Any) -> Any | None:
    """An object exporting one Arrow record batch (``__arrow_c_array__`` of a struct), as a
    Table; None when it is an array of plain values."""
    pa = _pyarrow()
    try:
        batch = pa.record_batch(data)
    except Exception:  # an array of values, or the caller's object failed: not a table
        return None
    return pa.Table.from_batches([batch])


def _converted(role: str, kind: str, convert: Any) -> Any:
    """``convert()``, its failure (a column of mixed Python objects) one line naming the input."""
    try:
        return convert()
    except Exception as exc:  # a column of mixed Python objects, or the caller's object failed
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(f"the {kind} cannot be read as a table of columns ({text})", path=role) from None


def dict_table(data: Mapping[Any, Any], role: str) -> Any:
    """A dict of column name -> array as a Table: 1-D arrays as columns, 2-D (N, k) ones (class
    scores) as list columns of k values per row, as Parquet stores them. All columns have as
    many rows as the first."""
    pa = _pyarrow()
    if not data:
        raise UsageError(f"{role}: the dict has no columns")
    names, arrays, rows = [], [], None
    for key, value in data.items():
        name = str(key)
        arr = as_array(value, f"{role}[{name!r}]")
        if arr.ndim not in (1, 2):
            raise UsageError(
                f"{role}[{name!r}]: a dict's columns are 1-D arrays (or 2-D for class scores), "
                f"not shape {arr.shape}"
            )
        if rows is not None and arr.shape[0] != rows:
            raise UsageError(
                f"{role}: the dict's columns differ in length: {names[0]!r} has {rows} rows, "
                f"{name!r} has {arr.shape[0]}"
            )
        rows = arr.shape[0]
        names.append(name)
        arrays.append(_arrow_column(arr, f"{role}[{name!r}]"))
    if len(set(names)) != len(names):
        raise UsageError(f"{role}: the dict's column names repeat once written as text: {names}")
    return pa.Table.from_arrays(arrays, names=names)


def _arrow_column(arr: np.ndarray[Any, Any], where: str) -> Any:
    """A 1-D array as an Arrow column (zero-copy for numbers; text for ids), a 2-D one as a
    fixed-size list column."""
    pa = _pyarrow()
    try:
        if arr.ndim == 2:
            flat = _numeric(np.ascontiguousarray(arr).reshape(-1))
            if flat is None:
                raise TypeError(arr.dtype)
            return pa.FixedSizeListArray.from_arrays(flat, arr.shape[1])
        column = _numeric(arr)
        return column if column is not None else _text(arr)
    except (pa.ArrowException, TypeError, ValueError):
        raise UsageError(
            f"{where}: a column of dtype {arr.dtype} cannot be read; give numbers (or text ids)"
        ) from None


def _text(arr: np.ndarray[Any, Any]) -> Any:
    """A 1-D array of anything else as Arrow text (row ids: ``"r001"``), built from buffers
    for the reason given in ``_numeric``; objects are written as ``str`` writes them."""
    pa = _pyarrow()
    encoded = [(v.decode() if isinstance(v, bytes) else str(v)).encode() for v in arr.tolist()]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    large = offsets[-1] >= 2**31
    kind = pa.large_string() if large else pa.string()
    offsets = offsets if large else offsets.astype(np.int32)
    data = pa.py_buffer(b"".join(encoded))
    return pa.Array.from_buffers(kind, len(encoded), [None, pa.py_buffer(offsets), data])


def _numeric(arr: np.ndarray[Any, Any]) -> Any | None:
    """A 1-D numeric array as an Arrow array over the same memory; None for other dtypes.

    Not ``pa.array(arr)``: that imports pandas whenever pandas is installed (to ask whether the
    array is categorical), which a caller who never used pandas should not pay for."""
    pa = _pyarrow()
    if arr.dtype.kind == "b":
        bits = np.packbits(arr, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(arr), [None, pa.py_buffer(bits)])
    if arr.dtype.kind not in "iuf":
        return None
    arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))
    kind = pa.from_numpy_dtype(arr.dtype)
    return pa.Array.from_buffers(kind, len(arr), [None, pa.py_buffer(arr)])


def as_array(data: Any, role: str) -> np.ndarray[Any, Any]:
    """``data`` as a numpy array: torch tensors detached, moved to the CPU, bf16 widened;
    lists and anything with numpy's array interfaces as numpy reads them; nothing else."""
    if isinstance(data, np.ndarray):
        return data
    torch = _top_module(data) == "torch"
    if not torch and not _array_like(data):
        raise UsageError(f"{role}: cannot read a {_type_name(data)}; pass {ACCEPTED}")
    try:
        return np.asarray(_from_torch(data) if torch else data)
    except Exception as exc:  # cupy's __array__ refuses; a broken __array__ raises anything
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise UsageError(
            f"{role}: cannot read a {_type_name(data)} as an array ({text}); pass {ACCEPTED}"
        ) from None


def _array_like(data: Any) -> bool:
    """What numpy reads as an array: sequences, numbers, and objects with its array protocols."""
    if isinstance(data, (list, tuple, range, int, float, bool, np.generic, memoryview)):
        return True
    return any(hasattr(data, a) for a in ("__array__", "__array_interface__", "__array_struct__"))


def _from_torch(data: Any) -> Any:
    """A torch tensor as numpy can take it: detached (``requires_grad``), on the CPU, dense,
    and bf16 widened to float32 (numpy has no bfloat16; float32 holds every bf16 exactly)."""
    import torch  # type: ignore[import-not-found, unused-ignore]

    if not isinstance(data, torch.Tensor):
        return data
    t = data.detach()
    if t.layout != torch.strided:
        t = t.to_dense()
    t = t.cpu()
    if t.dtype == torch.bfloat16:
        t = t.to(torch.float32)
    return t.resolve_conj().resolve_neg().numpy()


def _type_name(data: Any) -> str:
    """``set``; ``mymodule.Thing``: what the caller passed, as they would write its type."""
    t = type(data)
    module = t.__module__ or ""
    return t.__qualname__ if module == "builtins" else f"{module}.{t.__qualname__}"
