"""A terminal histogram of per-example losses, under the table (TTY only; ``--no-plot`` hides it).

Drawn from the state's quantile sketch, never from the data: each sketch bucket (0.4% wide)
falls into one display bin by its reported value. Bins are log-spaced when the positive losses
span two decades or more (cross-entropy's 1e-6 beside 10 is the usual case), with exact zeros
in a bin of their own; otherwise equal-width from the smallest loss to the largest.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.typing import NDArray
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from ..state.sketch import LossSketch

BINS = 16
BAR = 40  # characters of the longest bar
LOG_SPAN = 100.0  # max / min positive loss at or above which the bins are log-spaced


def display_bins(
    sketch: LossSketch, bins: int = BINS
) -> tuple[list[tuple[float, float]], NDArray[np.float64], bool]:
    """(bin edges (lo, hi) in order, the bins' counts (or weights), log-spaced?)."""
    values, counts, weights = sketch.histogram()
    mass = (weights if weights is not None else counts).astype(np.float64)
    top = min(float(values.max()), sketch.max)
    pos = values[values > 0]
    edges: list[tuple[float, float]] = []
    out: list[float] = []
    log = len(pos) > 0 and float(pos.min()) > 0 and top / float(pos.min()) >= LOG_SPAN
    if log:
        zero = float(mass[values <= 0].sum())
        if zero:
            edges.append((0.0, 0.0))
            out.append(zero)
        cuts = np.geomspace(float(pos.min()), top, bins + 1)
        inside = np.clip(values[values > 0], cuts[0], cuts[-1])  # the top bucket's value may pass the max
        hist, _ = np.histogram(inside, bins=cuts, weights=mass[values > 0])
    else:
        low = float(values.min())
        cuts = np.linspace(low, top, bins + 1) if top > low else np.array([low, low + (abs(low) or 1.0)])
        hist, _ = np.histogram(np.clip(values, cuts[0], cuts[-1]), bins=cuts, weights=mass)
    edges += [(float(a), float(b)) for a, b in itertools.pairwise(cuts)]
    out += hist.tolist()
    return edges, np.asarray(out), bool(log)


class Histogram:
    """Rows of "range  count  bar", the bars scaled to the width the console gives."""

    def __init__(self, title: str, rows: list[tuple[str, str, float]]) -> None:
        self.title, self.rows = title, rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        left = max(cell_len(r[0]) for r in self.rows)
        mid = max(cell_len(r[1]) for r in self.rows)
        room = max(1, min(BAR, options.max_width - left - mid - 4))
        top = max(r[2] for r in self.rows)
        yield Text(self.title, style="bold")
        for label, count, m in self.rows:
            bar = "█" * max(round(room * m / top), 1 if m > 0 else 0)
            line = Text(f"{label:>{left}}  {count:>{mid}}  ")
            line.append(bar, style="cyan")
            yield line


def histogram_renderable(sketch: LossSketch | None, what: str) -> Histogram | None:
    """The histogram of a sketch; None when there is nothing to draw."""
    if sketch is None or sketch.n == 0 or not math.isfinite(sketch.max):
        return None
    edges, mass, log = display_bins(sketch)
    if not float(mass.sum()) > 0:
        return None
    from .table import fmt_number

    scale = "log-spaced bins" if log else "equal-width bins"
    weighted = sketch.weights is not None
    rows = []
    for (lo, hi), m in zip(edges, mass.tolist(), strict=True):
        label = "0" if lo == hi == 0.0 else f"{lo:.4g} - {hi:.4g}"
        rows.append((label, fmt_number(m if weighted else int(m), counts=True), m))
    unit = "weight per bin" if weighted else "examples per bin"
    return Histogram(f"Distribution of the {what} ({scale}, {unit})", rows)
