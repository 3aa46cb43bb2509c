"""A terminal histogram of per-example losses, under the table (TTY only; ``--no-plot`` hides it).

Drawn from the state's quantile sketch, never from the data: each sketch bucket (0.4% wide)
falls into one display bin by its reported value. Exact zeros have a bin of their own. The
bins start at the smallest positive loss not more than a decade below the 1st percentile of the
positive losses (a tail below that gets one bin, labelled "(tail)") and end at the largest;
they are log-spaced when that range spans two decades or more (cross-entropy's 1e-6 beside 10
is the usual case), else equal-width. Losses all equal (to the
sketch's 0.4%) give one bin around the value.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.typing import NDArray
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from ..state.sketch import RELATIVE_ERROR, LossSketch

BINS = 16
BAR = 40  # characters of the longest bar
LOG_SPAN = 100.0  # max / min positive loss at or above which the bins are log-spaced


def _robust_low(values: NDArray[np.float64], mass: NDArray[np.float64]) -> float:
    """Where the bins start: the smallest positive loss not more than a decade below the 1st
    percentile of the positive mass (one tiny outlier would otherwise stretch the bins over
    hundreds of decades and draw everything as one bar); the values below go to a tail bin."""
    cum = np.cumsum(mass)
    p1 = float(values[min(int(np.searchsorted(cum, 0.01 * cum[-1])), len(values) - 1)])
    return float(values[values >= p1 / 10][0])


def display_bins(
    sketch: LossSketch, bins: int = BINS
) -> tuple[list[tuple[float, float]], NDArray[np.float64], bool, int]:
    """(bin edges (lo, hi) in order, the bins' counts (or weights), log-spaced?, how many
    leading bins are off the scale: exact zeros (0, 0) and the tail below the robust low
    (``_robust_low``) as (smallest, low)). Every bin holds the values it is labelled with: all
    losses equal (or one example) give one bin around the exact max, 0.4% either side."""
    values, counts, weights = sketch.histogram()
    mass = (weights if weights is not None else counts).astype(np.float64)
    order = np.argsort(values, kind="stable")
    values, mass = values[order], mass[order]
    top = min(float(values.max()), sketch.max)
    positive = values > 0
    edges: list[tuple[float, float]] = []
    out: list[float] = []
    zero = float(mass[~positive].sum())
    if zero:
        edges.append((0.0, 0.0))
        out.append(zero)
    if not positive.any():
        return edges, np.asarray(out), False, len(edges)
    pos, pmass = values[positive], mass[positive]
    low = _robust_low(pos, pmass)
    if low > float(pos[0]):
        edges.append((float(pos[0]), low))
        out.append(float(pmass[pos < low].sum()))
        pos, pmass = pos[pos >= low], pmass[pos >= low]
    aside = len(edges)
    if top <= low * (1 + 2 * RELATIVE_ERROR):  # one value (to the sketch's precision)
        cuts = np.array([min(low, sketch.max) * (1 - RELATIVE_ERROR), sketch.max * (1 + RELATIVE_ERROR)])
        log = False
    else:
        log = top / low >= LOG_SPAN
        cuts = np.geomspace(low, top, bins + 1) if log else np.linspace(low, top, bins + 1)
    hist, _ = np.histogram(np.clip(pos, cuts[0], cuts[-1]), bins=cuts, weights=pmass)
    edges += [(float(a), float(b)) for a, b in itertools.pairwise(cuts)]
    out += hist.tolist()
    return edges, np.asarray(out), bool(log), aside


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
    edges, mass, log, aside = display_bins(sketch)
    if not float(mass.sum()) > 0:
        return None
    from .table import fmt_number

    scale = "log-spaced bins" if log else "equal-width bins"
    weighted = sketch.weights is not None
    rows = []
    for i, ((lo, hi), m) in enumerate(zip(edges, mass.tolist(), strict=True)):
        label = "0" if lo == hi == 0.0 else f"{lo:.4g} - {hi:.4g}"
        if i < aside and lo > 0:
            label = f"{label} (tail)"
        rows.append((label, fmt_number(m if weighted else int(m), counts=True), m))
    unit = "weight per bin" if weighted else "examples per bin"
    return Histogram(f"Distribution of the {what} ({scale}, {unit})", rows)
