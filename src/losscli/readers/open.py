"""Pick a reader from the file's extension, and check the extension against the magic bytes.

A file named .npy that starts with PAR1 is a Parquet file: we say so instead of failing with
a parser error that hides the real mistake.
"""

from __future__ import annotations

import os

from ..errors import InputError, UsageError
from .base import Reader

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"

FORMATS = ("csv", "tsv", "parquet", "npy", "npz", "jsonl")
CSV_SUFFIXES = (".csv", ".tsv", ".tab", ".txt")
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zst", ".lz4", ".br")


def format_from_name(path: str) -> str | None:
    """The format an extension promises, or None when it says nothing."""
    if path == "-":
        return "csv"
    low = path.lower()
    for comp in COMPRESSION_SUFFIXES:
        low = low.removesuffix(comp)
    if low.endswith((".parquet", ".pq")):
        return "parquet"
    if low.endswith(".npy"):
        return "npy"
    if low.endswith(".npz"):
        return "npz"
    if low.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if low.endswith((".tsv", ".tab")):
        return "tsv"
    if low.endswith(CSV_SUFFIXES):
        return "csv"
    return None


def sniff(head: bytes) -> str | None:
    """What the first bytes say the file is."""
    if head.startswith(NPY_MAGIC):
        return "npy"
    if head.startswith(ZIP_MAGIC):
        return "npz"
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    return None


_EXT = {"npy": ".npy", "npz": ".npz", "parquet": ".parquet"}


def open_reader(path: str, fmt: str | None = None) -> Reader:
    """A reader for ``path`` (``-`` is CSV on stdin); ``fmt`` overrides the extension."""
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    named = fmt or format_from_name(path)
    if path != "-":
        head = _head(path)
        actual = sniff(head)
        if not head:
            raise InputError("is empty (0 bytes)", path=path)
        compressed = path.lower().endswith(COMPRESSION_SUFFIXES)
        if named is None:
            named = actual or "csv"
        elif named in ("csv", "tsv", "jsonl") and actual is not None and not compressed:
            raise InputError(
                f"looks like a {actual} file (it starts with the {actual} magic bytes), not CSV; "
                f"rename it to {_EXT[actual]}",
                path=path,
            )
        elif named in _EXT and actual != named:
            what = (
                f"a {actual} file"
                if actual
                else ("gzip-compressed data" if head.startswith(GZIP_MAGIC) else "not one")
            )
            raise InputError(
                f"has the {_EXT[named]} extension but is {what}"
                + (f"; rename it to {_EXT[actual]}" if actual else "")
                + ("" if actual else f" (a {named} file starts with {_magic_text(named)})"),
                path=path,
            )
    if named == "jsonl":
        from .jsonl_reader import JsonlReader

        return JsonlReader(path)
    if named in ("csv", "tsv"):
        from .csv_reader import CsvReader

        return CsvReader(path, "\t" if named == "tsv" else None)
    if named == "parquet":
        from .parquet_reader import ParquetReader

        return ParquetReader(path)
    if named == "npz":
        from .numpy_reader import NpzReader

        return NpzReader(path)
    from .numpy_reader import NpyReader

    return NpyReader(path)


def _magic_text(fmt: str) -> str:
    return {"npy": "\\x93NUMPY", "npz": "PK (a zip archive)", "parquet": "PAR1"}[fmt]


def _head(path: str) -> bytes:
    if not os.path.exists(path):
        raise InputError("no such file", path=path)
    if os.path.isdir(path):
        raise InputError("is a directory, not a file", path=path)
    try:
        with open(path, "rb") as fp:
            return fp.read(8)
    except PermissionError:
        raise InputError("permission denied", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", path=path) from None
