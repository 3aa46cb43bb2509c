"""A `dask worker --preload` for tests/test_dask_engine.py: every shard evaluated on this worker
takes LOSSCLI_TEST_SHARD_DELAY seconds longer, so a test can kill a worker while it holds a task.
Only the timing changes; the evaluation is losscli's own."""

from __future__ import annotations

import os
import time
from typing import Any

import losscli.api

_delay = float(os.environ.get("LOSSCLI_TEST_SHARD_DELAY", "0"))
# dask may run a preload more than once in one process: wrap the original, once
_evaluate_state = getattr(losscli.api.evaluate_state, "unslowed", losscli.api.evaluate_state)


def _slow(*args: Any, **kwargs: Any) -> Any:
    time.sleep(_delay)
    return _evaluate_state(*args, **kwargs)


_slow.unslowed = _evaluate_state  # type: ignore[attr-defined]
if _delay > 0:
    losscli.api.evaluate_state = _slow
