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

Safe means: the command line runs (``owner.CLI``: a library must not fork the notebook or
server it was imported into, nor its BLAS pools, which the CLI pins to one thread); Linux
(fork is cheap and its semantics known); this process has no other OS thread (one holding a
lock at the fork would leave the child waiting forever: pyarrow's pools, rich's refresh
thread, a background import); and nothing the workers must share while they run: group keys
and cluster codes are numbered as they are met by one table every thread sees, and bce's
text labels learn the classes met so far, so those runs keep threads. ``compare`` keeps
threads (its models are fed in step by one object). ``LOSSCLI_WORKERS=threads`` keeps threads
always. A failed ``pipe`` or ``fork`` (a pids limit, no file descriptors) falls back to threads.

A child that fails (bad data, or anything else) reports the first chunk it could not score and
the children after it are stopped: the parent scores that chunk itself, so the error raised is
exactly the serial run's, and of the earliest failing range, so it names the first bad row in
file order (were the chunk to pass on this process, its range and the stopped ones are scored
here). A child that dies without a whole report (killed) is redone the same way. Ctrl-C or
SIGTERM in the parent kills the children; they ignore SIGINT, and die with their parent
(``PR_SET_PDEATHSIG``) should it be killed outright.
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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import owner

if TYPE_CHECKING:
    from ..readers.base import RangeReader
    from .evaluator import Evaluator

#: how often the parent moves the progress bar while children score (seconds)
POLL_SECONDS = 0.1
PR_SET_PDEATHSIG = 1
Score = Callable[["Evaluator", list["RangeReader"], int], int]


def can_fork(evaluator: Any) -> bool:
    """Whether the workers of this run may be processes (see the module's docstring)."""
    from .evaluator import Evaluator

    if not owner.CLI or owner.workers_choice() == "threads" or not sys.platform.startswith("linux"):
        return False
    if type(evaluator) is not Evaluator or not evaluator.scorer.forks_alike():
        return False
    feed = evaluator.interval_feed
    if feed is not None and (feed.codes is not None or feed.table is not None):
        return False
    return evaluator.keys is None and _only_thread()


def _only_thread() -> bool:
    """No other OS thread in this process (Python's, pyarrow's, a BLAS pool's)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def ranges_of(first: int, stop: int, workers: int) -> list[range]:
    """``first .. stop - 1`` cut into at most ``workers`` contiguous, near-equal ranges."""
    count = stop - first
    parts = max(1, min(workers, count))
    bounds = [first + count * i // parts for i in range(parts + 1)]
    return [range(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def run_forked(
    evaluator: Evaluator,
    score: Score,
    openers: Sequence[Callable[[], RangeReader]],
    chunks: range,
    workers: int,
    progress: Callable[[int], None] | None,
) -> bool:
    """Score ``chunks`` in ``workers`` child processes and merge their tallies into
    ``evaluator.tallies`` (chunk 0 is scored already, on this process). False, with nothing
    changed, when the children could not be started: the caller then uses threads."""
    parts = ranges_of(chunks.start, chunks.stop, workers)
    counters = mmap.mmap(-1, 8 * len(parts))  # rows scored per child, for the progress bar
    rows_done = np.frombuffer(counters, dtype=np.int64)
    children: list[tuple[int, int]] = []  # (pid, read end)
    parent = os.getpid()
    try:
        try:
            for slot, part in enumerate(parts):
                read_end, write_end = os.pipe()
                try:
                    pid = os.fork()
                except OSError:
                    os.close(read_end)
                    os.close(write_end)
                    raise
                if pid == 0:  # the child: never returns
                    os.close(read_end)
                    _child(evaluator, score, openers, part, rows_done, slot, write_end, parent)
                os.close(write_end)
                children.append((pid, read_end))
        except OSError:  # no pipe or no fork (a pids limit, no descriptors): threads instead
            for pid, _ in children:
                _kill(pid)
            return False
        reports = _collect(children, rows_done, progress)
    except BaseException:
        for pid, _ in children:
            _kill(pid)
        raise
    finally:
        for pid, fd in children:
            _close(fd)
            _reap(pid)
    tallies = evaluator.tallies
    assert tallies is not None
    for slot, (part, report) in enumerate(zip(parts, reports, strict=True)):
        if report is not None and report[0] == "ok":
            tallies = tallies.merge(report[1])
            continue
        if report is not None:  # ("failed", chunk): the serial run's error, raised here
            ev = evaluator.fork()
            score(ev, [open_range() for open_range in openers], report[1])
        tallies = tallies.merge(_redo(evaluator, score, openers, part, int(rows_done[slot]), progress))
    evaluator.tallies = tallies
    return True


def _redo(
    evaluator: Evaluator,
    score: Score,
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
    score: Score,
    openers: Sequence[Callable[[], RangeReader]],
    part: range,
    rows_done: Any,
    slot: int,
    write_end: int,
    parent: int,
) -> None:
    """Score ``part`` and send ("ok", tallies) or ("failed", chunk) to the parent; always ends
    with ``os._exit`` (0 once the whole report is written)."""
    status = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it kills us on Ctrl-C
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _die_with(parent)
        index = part.start
        try:
            ev = evaluator.fork()
            rrs = [open_range() for open_range in openers]
            for index in part:
                rows_done[slot] += score(ev, rrs, index)
            payload = pickle.dumps(("ok", ev.tallies), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:  # the parent scores this chunk again and raises its error
            payload = pickle.dumps(("failed", index))
        view = memoryview(payload)
        while view:
            view = view[os.write(write_end, view) :]
        status = 0
    finally:
        os._exit(status)


def _die_with(parent: int) -> None:
    """Ask the kernel to kill this child when its parent dies (not to burn CPU as an orphan)."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _collect(
    children: list[tuple[int, int]], rows_done: Any, progress: Callable[[int], None] | None
) -> list[Any]:
    """Every child's report, read as they come (None for a child that died without a whole
    one); when a child fails, the children after it are stopped (their ranges can no longer
    matter: the earlier failure is raised). The bar moves meanwhile."""
    slots = {fd: slot for slot, (_, fd) in enumerate(children)}
    buffers: dict[int, bytearray] = {fd: bytearray() for _, fd in children}
    reports: list[Any] = [None] * len(children)
    shown = 0
    with selectors.DefaultSelector() as selector:
        for fd in buffers:
            selector.register(fd, selectors.EVENT_READ)
        pending = set(buffers)
        while pending:
            for key, _ in selector.select(POLL_SECONDS):
                fd = int(key.fd)
                data = os.read(fd, 1 << 20)
                if data:
                    buffers[fd] += data
                    continue
                selector.unregister(fd)
                pending.discard(fd)
                slot = slots[fd]
                reports[slot] = _report(children[slot][0], bytes(buffers[fd]))
                buffers[fd] = bytearray()
                if reports[slot] is not None and reports[slot][0] == "failed":
                    for pid, _ in children[slot + 1 :]:
                        _kill(pid)
            if progress is not None:
                done = int(rows_done.sum())
                if done > shown:
                    progress(done - shown)
                    shown = done
    return reports


def _report(pid: int, raw: bytes) -> Any:
    """A child's report: ("ok", tallies) or ("failed", chunk), or None when it did not end
    well (killed, or a report cut short). Our own child's bytes, never a user's file."""
    _, status = os.waitpid(pid, 0)
    if status != 0 or not raw:
        return None
    try:
        report = pickle.loads(raw)
    except Exception:
        return None
    return report if isinstance(report, tuple) and len(report) == 2 else None


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
