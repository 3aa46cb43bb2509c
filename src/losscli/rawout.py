"""Write to stdout so that a reader going away is always noticed (exit 141, never 0 or 1).

A large ``sys.stdout.write`` can return without error after the reader closed the pipe
mid-write: the pipe takes a first slice, the kernel reports the short count, and the text
layer reports success for the rest (seen with CPython 3.11 and ``| head -c 10``). A script
using ``set -o pipefail`` would then see exit 0 for output nobody read in full. Plain
``os.write`` calls report every short write, so the loop below writes the rest and the next
call raises ``BrokenPipeError``, which the CLI turns into its quiet exit 141.

Any other failed write (a full disk, ``> /dev/full``, an I/O error) is an ``OutputError``
naming the stream: exit 4, "output not written", not an internal error.
"""

from __future__ import annotations

import os
from typing import IO, Any

from .errors import OutputError


def write_bytes(stream: IO[Any], data: bytes) -> None:
    """All of ``data`` to ``stream``'s file descriptor, or ``BrokenPipeError`` (the reader left),
    or ``OutputError`` (the write failed otherwise)."""
    try:
        stream.flush()  # anything the stream still buffers goes first, in order
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):  # not a real file (a test's StringIO)
            stream.write(data)
            stream.flush()
            return
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(f"{stream_name(stream)}: write failed ({exc.strerror or exc})") from None


def stream_name(stream: IO[Any]) -> str:
    """ "stdout"/"stderr" for the standard streams (whatever Python calls them), else its name."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1
    return {1: "stdout", 2: "stderr"}.get(fd, str(getattr(stream, "name", "output")))


def write_text(stream: IO[str], text: str) -> None:
    """``text`` in the stream's encoding, as ``write_bytes`` writes bytes."""
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        stream.write(text)
        stream.flush()
        return
    encoding = getattr(stream, "encoding", None) or "utf-8"
    errors = getattr(stream, "errors", None) or "strict"
    write_bytes(stream, text.encode(encoding, errors))


class RawStdout:
    """A bytes file for --per-example '-': every write reaches the pipe whole, or raises."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, data: bytes) -> int:
        write_bytes(self.stream, data)
        return len(data)

    def flush(self) -> None:
        self.stream.flush()

    def fileno(self) -> int:
        return self.stream.fileno()
