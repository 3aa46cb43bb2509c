"""``--ci``: the interval tallies an evaluator keeps, from the options its header records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..state.intervals import LOSS, IntervalTallies


def new_interval_tallies(options: Mapping[str, Any], companions: Sequence[str]) -> IntervalTallies:
    """Empty tallies for the headline loss and each companion mean (MAE beside MSE, ...)."""
    return IntervalTallies(
        (LOSS, *companions), int(options.get("bootstrap") or 0), int(options.get("seed") or 0)
    )
