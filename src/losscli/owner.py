"""Whether losscli owns its process (the command line) or is a library in someone else's.

Some choices are only the owner's to make: forking worker processes (engine/forked.py) copies
the host's whole state, threads and BLAS pools included, and a library must not do that to a
notebook or a server it was imported into. The CLI sets ``CLI`` before it runs a command; the
Python API leaves it False and keeps worker threads.
"""

from __future__ import annotations

import os

CLI = False
WORKERS_VARIABLE = "LOSSCLI_WORKERS"


def workers_choice() -> str:
    """``LOSSCLI_WORKERS``: "threads" keeps worker threads; "auto" (or unset) lets losscli choose."""
    value = os.environ.get(WORKERS_VARIABLE, "").strip().lower()
    if value not in ("", "auto", "threads"):
        from .errors import UsageError

        given = os.environ[WORKERS_VARIABLE]
        raise UsageError(f"{WORKERS_VARIABLE} must be 'threads' or 'auto', not {given!r}")
    return value or "auto"
