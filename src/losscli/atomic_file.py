"""Whole files written atomically: a temporary file beside the target, flushed and fsynced,
given the mode ``open`` would have given it, then renamed over the target (and the rename made
durable). A reader sees the old file or the new one, never a part; a failure leaves nothing.

Used by --save-state, the comparison state and --report; --per-example streams its rows
through its own writer (per_example.py), which commits the same way.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from typing import IO

from .errors import OutputError


def write_atomically(target: str, write: Callable[[IO[bytes]], object], failure: str) -> None:
    """``write`` the file's bytes into a temporary file, then rename it to ``target``. An
    ``OSError`` becomes one ``OutputError`` line (exit 4): ``failure``, then the system's reason."""
    directory = os.path.dirname(os.path.abspath(target))
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, default_mode())
        os.replace(tmp, target)
        tmp = None
        _sync_directory(directory)
    except OSError as e:
        raise OutputError(f"{failure}: {e.strerror or e}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def default_mode() -> int:
    """0666 less the umask, as ``open`` would have made the file (mkstemp makes it 0600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _sync_directory(directory: str) -> None:
    """Make the rename itself durable where the platform allows it (not on Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
