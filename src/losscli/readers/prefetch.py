"""Run a producer (decoding, parsing) one step ahead of its consumer on a second thread.

pyarrow releases the GIL while it decodes Parquet pages or parses CSV blocks, so the next
batch is prepared while numpy scores the current one. Items must not alias buffers that the
producer reuses: readers prefetch Arrow tables and batches, which are fresh objects.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_DONE = object()


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield ``items`` in order, produced up to ``depth`` ahead on a daemon thread."""
    box: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put((True, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put((True, _DONE))
        except BaseException as exc:  # handed to the consumer, raised there
            box.put((False, exc))

    thread = threading.Thread(target=produce, daemon=True, name="losscli-prefetch")
    thread.start()
    try:
        while True:
            ok, item = box.get()
            if not ok:
                raise item
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
