"""A progress bar on stderr, shown only on a terminal and only once a run lasts a moment.

Short runs never flash a bar; piped or redirected stderr never gets escape codes.
``LOSSCLI_PROGRESS_AFTER`` (seconds, default 0.5) sets the moment.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from .api import Progress

SHOW_AFTER_SECONDS = 0.5


def _show_after() -> float:
    try:
        return float(os.environ.get("LOSSCLI_PROGRESS_AFTER", SHOW_AFTER_SECONDS))
    except ValueError:
        return SHOW_AFTER_SECONDS


class _Bar:
    def __init__(self) -> None:
        self.total: int | None = None
        self.done = 0
        self.started = time.monotonic()
        self.progress: Any = None
        self.task: Any = None
        self.after = _show_after()

    def start(self, total: int | None) -> None:
        self.total = total
        self.started = time.monotonic()

    def advance(self, rows: int) -> None:
        self.done += rows
        if self.progress is None:
            if time.monotonic() - self.started < self.after:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("scoring"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("rows", total=self.total)
        self.progress.update(self.task, completed=self.done)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def terminal_progress() -> Progress | None:
    """Hooks for ``api.evaluate``, or None when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return None
    bar = _Bar()
    return Progress(bar.start, bar.advance, bar.stop)
