"""The report's charts as inline SVG, drawn by matplotlib's SVG backend (no pyplot, no display).

Each chart is a function of the report (and its state): the loss histogram from the quantile
sketch, the reliability diagram from the calibration bins, per-sequence perplexity from the
per-sequence statistics. Text stays text (``svg.fonttype: none``) and ids are salted with a
constant, so one report always gives the same bytes.
"""

from __future__ import annotations

import io
import itertools
import math
import re
from typing import Any

import numpy as np

_STYLE: dict[str, Any] = {"svg.fonttype": "none", "svg.hashsalt": "losscli", "font.size": 9}


def _svg(fig: Any) -> str:
    """The figure as an <svg> element (no XML declaration or DOCTYPE, which inline HTML refuses)."""
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.StringIO()
    FigureCanvasSVG(fig).print_svg(buf, metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg") :], flags=re.S)
    return _own_ids(re.sub(r' xmlns:(dc|cc|rdf)="[^"]*"', "", text), f"c{next(_CHARTS)}-")


_CHARTS = itertools.count(1)


def _own_ids(svg: str, prefix: str) -> str:
    """Every id of one chart, and every reference to it, prefixed: matplotlib numbers each
    figure's ids alike (figure_1, axes_1, its marker and clip-path hashes), so two inline charts
    on one page would share ids, which HTML forbids."""
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", svg)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m.group(1)}"', svg)


def _figure(width: float = 6.4, height: float = 3.2) -> Any:
    import matplotlib
    from matplotlib.figure import Figure

    params: Any = matplotlib.rcParams
    params.update(_STYLE)
    fig = Figure(figsize=(width, height))  # fixed margins: constrained layout doubles the drawing time
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.16, top=0.9)
    return fig


def histogram_svg(report: Any) -> str | None:
    """Per-example losses in bins (log-spaced when they span two decades), from the sketch."""
    from ..render.histogram import display_bins

    state = report.state
    sketch = None if state is None else state.tallies.sketch
    if sketch is None or sketch.n == 0 or not math.isfinite(sketch.max):
        return None
    edges, mass, log, aside = display_bins(sketch, 40)
    fig = _figure()
    ax = fig.add_subplot()
    lows = np.array([lo for lo, _ in edges[aside:]])
    widths = np.array([hi - lo for lo, hi in edges[aside:]])
    ax.bar(lows, mass[aside:], width=widths, align="edge", color="#4c78a8")
    if log:
        ax.set_xscale("log")
        ax.minorticks_off()  # a log axis's minor ticks are most of the drawing time
    notes = []
    for (lo, hi), m in zip(edges[:aside], mass[:aside].tolist(), strict=True):
        count = f"{m:,.6g}" if sketch.weights is not None else f"{int(m):,}"
        notes.append(f"{count} exact zeros" if hi == 0 else f"{count} in the tail {lo:.3g} - {hi:.3g}")
    if notes:
        ax.set_title("not drawn: " + "; ".join(notes), fontsize=8)
    what = "per-token loss (nats)" if report.metric == "perplexity" else "per-example loss"
    ax.set_xlabel(what)
    ax.set_ylabel("weight" if sketch.weights is not None else "examples")
    q = report.quantiles or {}
    for key, style in (("p50", "--"), ("p99", ":")):
        v = q.get(key)
        if isinstance(v, float) and v > 0 and math.isfinite(v):
            ax.axvline(v, color="#e45756", linestyle=style, linewidth=1, label=f"{key} {v:.4g}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False)
    return _svg(fig)


def reliability_svg(report: Any) -> str | None:
    """Observed frequency against mean confidence per bin, with the diagonal and the ECE."""
    cal = report.calibration
    if cal is None:
        return None
    rows = [r for r in cal["reliability"] if r["count"]]
    fig = _figure(4.2, 4.0)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="#999999", linewidth=1, linestyle="--", label="perfect calibration")
    centers = [(r["lower"] + r["upper"]) / 2 for r in rows]
    width = 1.0 / cal["bins"]
    ax.bar(centers, [r["observed"] for r in rows], width=width * 0.9, color="#4c78a8", label="observed")
    # each bin's mean confidence as a height over the bin: where a calibrated bar would reach,
    # so the gap between it and the bar is the bin's calibration error
    ax.plot(centers, [r["confidence"] for r in rows], "_", color="#e45756", markersize=width * 200,
            markeredgewidth=2, label="mean confidence")  # fmt: skip
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("observed frequency")
    ax.set_title(f"ECE {cal['ece']:.4g}   MCE {cal['mce']:.4g}")
    ax.legend(frameon=False, loc="upper left")
    return _svg(fig)


def sequences_svg(report: Any) -> str | None:
    """Perplexity per sequence (the sequences the report lists), for perplexity."""
    rows = report.sequences
    if report.metric != "perplexity" or not rows:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    ax.bar([str(r["sequence"]) for r in rows], [r["perplexity"] for r in rows], color="#4c78a8")
    ax.set_xlabel("sequence")
    ax.set_ylabel("perplexity")
    if len(rows) > 20:
        ax.set_xticks([])
    return _svg(fig)


#: the deltas chart's margins in inches: the title's line above the axes, the ticks and the two
#: lines of the x label below
DELTAS_TOP, DELTAS_BOTTOM = 0.4, 0.8
#: the width of a tick label's character at matplotlib's default 10 pt (DejaVu Sans, a little over)
LABEL_INCHES_PER_CHAR = 0.085
#: names longer than this are shortened in the chart (the tables beside it give them whole)
LONGEST_LABEL = 48


def _short(name: str) -> str:
    """A model name as the chart shows it: whole, or its start and end around an ellipsis."""
    if len(name) <= LONGEST_LABEL:
        return name
    keep = (LONGEST_LABEL - 1) // 2
    return name[:keep] + "\u2026" + name[-keep:]


def deltas_svg(report: Any, most: int = 40) -> str | None:
    """A comparison's deltas (model - baseline) with their intervals, against zero (and the
    --margin): overall, then per group (the first ``most`` rows)."""
    rows = [(c.model, c) for c in report.comparisons]
    from ..results.groups import key_text  # null as null, "" quoted

    for g in report.groups or []:
        label = key_text(g.key)
        rows += [(f"{c.model} ({label})", c) for c in g.comparisons]
    rows = [(name, c) for name, c in rows[:most] if math.isfinite(c.delta)]
    if not rows:
        return None
    names = [_short(name) for name, _ in rows]
    height = 1.4 + 0.32 * len(rows)
    # margins in inches, not fractions: the title (above), the two-line x label (below) and the
    # longest model name (left) keep their room however few rows or long names there are
    label_inches = 0.25 + LABEL_INCHES_PER_CHAR * max(len(n) for n in names)
    width = max(6.4, label_inches + 4.2)
    fig = _figure(width, height)
    fig.subplots_adjust(
        left=label_inches / width,
        right=1 - 0.2 / width,
        bottom=DELTAS_BOTTOM / height,
        top=1 - DELTAS_TOP / height,
    )
    ax = fig.add_subplot()
    y = np.arange(len(rows))[::-1]
    delta = np.array([c.delta for _, c in rows])
    low = np.array([c.low if math.isfinite(c.low) else c.delta for _, c in rows])
    high = np.array([c.high if math.isfinite(c.high) else c.delta for _, c in rows])
    colors = [
        "#e45756" if c.verdict == "worse" else "#54a24b" if c.verdict == "better" else "#4c78a8"
        for _, c in rows
    ]
    ax.hlines(y, low, high, colors=colors, linewidth=2)
    ax.scatter(delta, y, c=colors, s=14, zorder=3)
    ax.axvline(0.0, color="#999999", linewidth=1, linestyle="--")
    if report.margin is not None:
        label = f"margin {report.margin:g}"
        ax.axvline(report.margin, color="#a15c00", linewidth=1, linestyle=":", label=label)
        ax.legend(frameon=False, loc="lower right")
    ax.set_yticks(y, names)
    unit = "cross-entropy, nats per token" if report.metric == "perplexity" else report.headline
    ax.set_xlabel(f"delta ({unit})\nmodel - {_short(report.models[0].name)}; lower is better")
    ax.set_title(f"{report.level:.0%} intervals of the deltas")
    return _svg(fig)


def strip_scripts(svg: str) -> str:
    """A guard: no <script> ever reaches the page (matplotlib writes none)."""
    return re.sub(r"<script.*?</script>", "", svg, flags=re.S)
