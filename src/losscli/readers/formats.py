"""Every input format losscli reads, in one table: names, extensions, magic bytes.

open.py picks a reader with this table; csv_reader.py asks it about compression and tabs; the
CLI's ``--input-format`` choices are ``INPUT_FORMATS``. A new format is one ``InputFormat``
line here, its reader module, and one branch of ``open._construct``. Nothing here imports a
reader, so a run imports only the reader it uses (pyarrow and zipfile cost start-up time).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputFormat:
    """One readable format."""

    name: str
    #: extensions that name it (lower case); a compression suffix after them is allowed
    suffixes: tuple[str, ...]
    #: first bytes every such file starts with; None for text formats
    magic: bytes | None = None
    #: how messages spell the magic bytes
    magic_text: str = ""
    #: offered by ``--input-format``, which reads every input of a run as this format
    every_input: bool = True
    #: must seek (read from the end): refused for pipes and devices
    seekable_only: bool = False


TABLE = (
    InputFormat("csv", (".csv", ".txt")),
    InputFormat("tsv", (".tsv", ".tab")),
    InputFormat("parquet", (".parquet", ".pq"), b"PAR1", "PAR1", seekable_only=True),
    InputFormat("npy", (".npy",), b"\x93NUMPY", "\\x93NUMPY"),
    InputFormat("npz", (".npz",), b"PK\x03\x04", "PK (a zip archive)", seekable_only=True),
    # JSON holds log-probabilities only (--logprobs); a pipe's first byte ({ or [) says JSON
    InputFormat("jsonl", (".jsonl", ".ndjson")),
    InputFormat("json", (".json",)),
)
BY_NAME = {f.name: f for f in TABLE}

#: every format open_reader (and the Python API's ``fmt``) accepts
FORMATS = tuple(f.name for f in TABLE)
#: the choices of the CLI's ``--input-format``
INPUT_FORMATS = tuple(f.name for f in TABLE if f.every_input)
#: formats recognised by their first bytes
BINARY_FORMATS = tuple(f.name for f in TABLE if f.magic is not None)

#: compression by name suffix: what pyarrow's ``input_stream(compression=...)`` calls it
COMPRESSION_SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4", ".br": "brotli"}
#: compressed streams recognised by their first bytes when no name says what a file is
COMPRESSION_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bz2",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\x04\x22\x4d\x18": "lz4",
}
GZIP_MAGIC = b"\x1f\x8b"


def without_compression(path: str) -> str:
    """The lower-cased name without its compression suffix (``a.TSV.gz`` -> ``a.tsv``)."""
    low = path.lower()
    for suffix in COMPRESSION_SUFFIXES:
        low = low.removesuffix(suffix)
    return low


def detect_compression(path: str, head: bytes | None = None) -> str | None:
    """Compression detection, in one place: the name's suffix (``.gz``, ``.bz2``, ``.zst``,
    ``.lz4``, ``.br``) decides; without one, ``head`` (the first bytes, when the caller found
    nothing else the file could be) is matched against the compressed streams' magic bytes.
    None: not compressed."""
    low = path.lower()
    named = next((name for suffix, name in COMPRESSION_SUFFIXES.items() if low.endswith(suffix)), None)
    if named is not None or head is None:
        return named
    return next((name for magic, name in COMPRESSION_MAGIC.items() if head.startswith(magic)), None)


def tab_separated(path: str, first_line: str | None = None) -> bool:
    """TSV detection, in one place: the name ends in ``.tsv`` or ``.tab`` (before any
    compression suffix); or, when ``first_line`` (the first non-blank line of a delimited file)
    is given, it holds tabs and no commas. ``--input-format tsv`` forces tabs before this."""
    if without_compression(path).endswith(BY_NAME["tsv"].suffixes):
        return True
    return first_line is not None and "\t" in first_line and "," not in first_line


def format_from_name(path: str) -> str | None:
    """The format an extension promises (a compression suffix after it allowed), or None when
    it says nothing. ``-`` (stdin) is CSV until its first bytes say otherwise."""
    if path == "-":
        return "csv"
    low = without_compression(path)
    if tab_separated(low):
        return "tsv"
    return next((f.name for f in TABLE if low.endswith(f.suffixes)), None)


def sniff(head: bytes) -> str | None:
    """What the first bytes say the file is (the binary formats only)."""
    return next((f.name for f in TABLE if f.magic is not None and head.startswith(f.magic)), None)


def looks_like_json(head: bytes) -> bool:
    """JSON by its first non-space byte (a byte-order mark allowed): ``{`` (JSON Lines, one
    object) or ``[`` (one array). Only asked when nothing else says what the input is."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"{", b"["))


def decompressed_head(head: bytes, compression: str | None) -> bytes:
    """The first bytes of a compressed head, decompressed as far as they go (gzip, bz2: what
    ``gzip -c`` and ``bzip2 -c`` pipe), so a compressed pipe's content can be sniffed too; the
    head itself when not compressed, and b"" for a codec that cannot decode a prefix."""
    import bz2
    import zlib

    if compression is None:
        return head
    try:
        if compression == "gzip":
            return zlib.decompressobj(wbits=31).decompress(head, 4096)
        if compression == "bz2":
            return bz2.BZ2Decompressor().decompress(head, 4096)
    except (OSError, EOFError, ValueError, zlib.error):
        return b""
    return b""


def extension(name: str) -> str:
    """The extension a file of this format should have, for messages ("rename it to .npz")."""
    return BY_NAME[name].suffixes[0]
