"""Which engine runs a sharded evaluation, and the options only ``--engine dask`` takes.

Kept apart from ``engine.dask_engine`` so every run can check its options without loading the
engines (start-up time of small runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import UsageError

#: run_evaluation's keywords that only --engine dask takes (--scheduler, --workers, --connect-timeout)
DASK_OPTIONS = ("scheduler", "workers", "connect_timeout")


def check_engine_options(engine: str | None, options: Mapping[str, Any], sharded_run: bool) -> None:
    """--scheduler/--workers/--connect-timeout belong to --engine dask, which needs shards."""
    given = [k for k in DASK_OPTIONS if options.get(k) is not None]
    if (engine or "local") != "dask":
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise UsageError(f"{flag} is an option of --engine dask; add --engine dask, or drop {flag}")
        return
    if not sharded_run:
        raise UsageError(
            "--engine dask evaluates the shards of a directory or glob input on a cluster; every input "
            "here is one file: drop --engine dask (one file is read on this machine), or give a "
            "directory of shards"
        )
