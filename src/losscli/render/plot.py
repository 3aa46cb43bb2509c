"""The terminal charts under the table: what ``cli`` prints after it on a TTY (--no-plot: none)."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType


def plots_renderable(report: Any) -> list[RenderableType]:
    """The histogram of per-example losses (from the state's sketch), when there is one."""
    from .histogram import histogram_renderable

    state = report.state
    if state is None or report.quantiles is None:
        return []
    what = "per-token losses" if report.metric == "perplexity" else "per-example losses"
    chart = histogram_renderable(state.tallies.sketch, what)
    return [] if chart is None else [chart]
