"""Worker processes for seekable inputs: the threaded runner's work, without the GIL.

On a 2-core machine two threads scored W1/W4 no faster than one, and with ``--calibration``
slower (0.30 s against 0.26 s; CPU 0.44 s against 0.26 s): every numpy call hands the GIL
over, ``np.bincount`` (the quantile sketch, the calibration bins) holds it, and each hand-off
between cores costs tens of microseconds here. Two processes, each scoring half the rows,
ran in the time of one half (0.15 s each, concurrently, against 0.14 s alone).

So where it is safe, the chunks after the first (which binds the metric, on this process)
are cut into one contiguous range per worker and each range is scored by a forked child with
its own evaluator; the child sends back its tallies (pickled: our own objects over a pipe,
never a user's file) and exits with ``os._exit``, so no cleanup or buffered output of the
parent runs twice. The parent merges the tallies in range order (the merge is associative).

Safe means: Linux (fork is cheap and its semantics known), no other thread alive (a thread
holding a lock at the fork would leave the child waiting forever; pyarrow's thread pools are
such threads, so runs that imported pyarrow keep threads), and nothing the workers must share
while they run: group keys and cluster codes are numbered as they are met, by one table that
every thread sees, so runs with ``--group-by`` or clustered intervals keep threads too.

A child that fails (bad data, or anything else) reports the first chunk it could not score;
the parent then scores that child's range itself, from its start, so the error raised is
exactly the one the serial run raises, and of the earliest failing range, so it names the
first bad row in file order. A child that dies without a report (killed) is redone the same
way. Ctrl-C or SIGTERM in the parent kills the children; they ignore SIGINT themselves.
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import pickle
import selectors
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..readers.base import RangeReader
from .evaluator import Evaluator

#: how often the parent moves the progress bar while children score (seconds)
POLL_SECONDS = 0.1


def can_fork(evaluator: Evaluator) -> bool:
    """Whether the workers of this run may be processes (see the module's docstring)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    if os.environ.get("LOSSCLI_WORKERS", "").lower() == "threads":
        return False
    if threading.active_count() > 1 or "pyarrow" in sys.modules:
        return False
    feed = evaluator.interval_feed
    if feed is not None and (feed.codes is not None or feed.table is not None):
        return False
    return evaluator.keys is None


def ranges_of(first: int, stop: int, workers: int) -> list[range]:
    """``first .. stop - 1`` cut into at most ``workers`` contiguous, near-equal ranges."""
    count = stop - first
    parts = max(1, min(workers, count))
    bounds = [first + count * i // parts for i in range(parts + 1)]
    return [range(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def run_forked(
    evaluator: Evaluator,
    score: Callable[[Evaluator, list[RangeReader], int], int],
    openers: Sequence[Callable[[], RangeReader]],
    chunks: range,
    workers: int,
    progress: Callable[[int], None] | None,
) -> None:
    """Score ``chunks`` in ``workers`` child processes and merge their tallies into
    ``evaluator.tallies`` (chunk 0 is scored already, on this process)."""
    parts = ranges_of(chunks.start, chunks.stop, workers)
    counters = mmap.mmap(-1, 8 * len(parts))  # rows scored per child, for the progress bar
    rows_done = np.frombuffer(counters, dtype=np.int64)
    children: list[tuple[int, int, range]] = []  # (pid, read end, range)
    try:
        for slot, part in enumerate(parts):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: never returns
                os.close(read_end)
                _child(evaluator, score, openers, part, rows_done, slot, write_end)
            os.close(write_end)
            children.append((pid, read_end, part))
        reports = _collect(children, rows_done, progress)
    except BaseException:
        for pid, _, _ in children:
            _kill(pid)
        raise
    finally:
        for pid, fd, _ in children:
            _close(fd)
            _reap(pid)
    tallies = evaluator.tallies
    assert tallies is not None
    for slot, ((_, _, part), report) in enumerate(zip(children, reports, strict=True)):
        if report is None:  # failed or died: score the range here, so its error is the serial one
            report = _redo(evaluator, score, openers, part, int(rows_done[slot]), progress)
        tallies = tallies.merge(report)
    evaluator.tallies = tallies


def _redo(
    evaluator: Evaluator,
    score: Callable[[Evaluator, list[RangeReader], int], int],
    openers: Sequence[Callable[[], RangeReader]],
    part: range,
    counted: int,
    progress: Callable[[int], None] | None,
) -> Any:
    """A child's range scored on this process (raising its first error, if any); the bar moves
    only past the rows the child had counted already."""
    ev = evaluator.fork()
    rrs = [open_range() for open_range in openers]
    for index in part:
        rows = score(ev, rrs, index)
        if progress is not None and rows > counted:
            progress(rows - counted)
        counted = max(0, counted - rows)
    return ev.tallies


def _child(
    evaluator: Evaluator,
    score: Callable[[Evaluator, list[RangeReader], int], int],
    openers: Sequence[Callable[[], RangeReader]],
    part: range,
    rows_done: Any,
    slot: int,
    write_end: int,
) -> None:
    """Score ``part`` and send (tallies or None) to the parent; always ends with ``os._exit``."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it kills us on Ctrl-C
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        payload = pickle.dumps(None)
        try:
            ev = evaluator.fork()
            rrs = [open_range() for open_range in openers]
            for index in part:
                rows_done[slot] += score(ev, rrs, index)
            payload = pickle.dumps(ev.tallies, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:  # reported as None: the parent redoes the range and raises
            payload = pickle.dumps(None)
        view = memoryview(payload)
        while view:
            view = view[os.write(write_end, view) :]
    finally:
        os._exit(0)


def _collect(
    children: list[tuple[int, int, range]], rows_done: Any, progress: Callable[[int], None] | None
) -> list[Any]:
    """Every child's report (its tallies, or None), read as they come; the bar moves meanwhile."""
    buffers: dict[int, bytearray] = {fd: bytearray() for _, fd, _ in children}
    open_fds = set(buffers)
    shown = 0
    with selectors.DefaultSelector() as selector:
        for fd in open_fds:
            selector.register(fd, selectors.EVENT_READ)
        while open_fds:
            for key, _ in selector.select(POLL_SECONDS):
                fd = int(key.fd)
                data = os.read(fd, 1 << 20)
                if data:
                    buffers[fd] += data
                else:
                    selector.unregister(fd)
                    open_fds.discard(fd)
            if progress is not None:
                done = int(rows_done.sum())
                if done > shown:
                    progress(done - shown)
                    shown = done
    if progress is not None and int(rows_done.sum()) > shown:
        progress(int(rows_done.sum()) - shown)
    reports = []
    for _, fd, _ in children:
        raw = bytes(buffers[fd])
        reports.append(pickle.loads(raw) if raw else None)  # our own child's bytes, not a user file
    return reports


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
