"""``losscli compare ... --report PATH.html`` (and ``merge`` of comparison states): the page of
a comparison, built like the metric page (page.py) from the comparison's report alone.

It holds the models (value, interval, n), the comparisons (delta, its interval, p, Holm-adjusted
p, verdict, and the margin's outcome with --margin), the same per group, and a chart of every
delta with its interval against zero (and the margin). Numbers show seven significant digits
(the JSON/CSV keep full precision); a missing number (nothing scored) shows as "-".
"""

from __future__ import annotations

from typing import Any

from ..render.table import fmt_number
from . import charts
from .page import _e, _table, document

#: the comparisons table's columns; numbers from the third on
COMPARISON_HEAD = ["model", "baseline", "delta", "interval of delta", "p", "p adjusted", "verdict"]


def _interval(low: float, high: float) -> str:
    return f"{fmt_number(low)} - {fmt_number(high)}"


def _models_table(table_id: str, report: Any, models: list[Any]) -> str:
    pct = f"{report.level:.0%}"
    rows = [[m.name, m.file, fmt_number(m.value), _interval(m.low, m.high), f"{m.n:,}"] for m in models]
    head = ["model", "file", report.headline, f"{pct} interval", "n"]
    if not any(m.file for m in models):  # a group's rows carry no file
        rows, head = [[r[0], *r[2:]] for r in rows], [head[0], *head[2:]]
    return _table(table_id, head, rows, set(range(len(head) - 3, len(head))))


def _verdict(c: Any) -> str:
    from ..compare.judge import SAME

    text = "not significant" if c.verdict == SAME else str(c.verdict)
    if c.noninferior is not None:
        text += f"; {'within' if c.noninferior else 'NOT shown within'} margin"
    return text


def _comparisons_table(table_id: str, comparisons: list[Any], key: list[Any] | None = None) -> str:
    rows = [
        [
            *(key or []),
            c.model,
            c.baseline,
            fmt_number(c.delta),
            _interval(c.low, c.high),
            fmt_number(c.p_value),
            fmt_number(c.p_adjusted),
            _verdict(c),
        ]
        for c in comparisons
    ]
    width = len(key or [])
    return _table(table_id, COMPARISON_HEAD, rows, set(range(width + 2, width + 6)))


def _groups(report: Any) -> str:
    if not report.groups:
        return ""
    from ..results.groups import value_text  # null as null, "" quoted

    columns = list(report.groups[0].key)
    rows: list[list[Any]] = []
    for g in report.groups:
        key = [value_text(g.key[c]) for c in columns]
        for c in g.comparisons:
            rows.append(
                [
                    *key,
                    c.model,
                    fmt_number(c.delta),
                    _interval(c.low, c.high),
                    fmt_number(c.p_adjusted),
                    _verdict(c),
                ]
            )
    head = [*columns, "model", "delta", "interval of delta", "p (Holm)", "verdict"]
    numeric = set(range(len(columns) + 1, len(columns) + 4))
    return "<h2>Per group</h2>" + _table("group-comparisons", head, rows, numeric)


def render_compare_page(report: Any) -> str:
    """The whole HTML document of a comparison."""
    from ..compare.render import _caption

    baseline = report.models[0].name
    title = f"{report.title}: is a model better than {baseline}?"
    svg = charts.deltas_svg(report)
    chart = (
        f'<h2>Deltas and their intervals</h2><figure class="chart" id="chart-deltas">'
        f'{charts.strip_scripts(svg)}<figcaption class="dim">delta = model - {_e(baseline)}; '
        "left of zero is better</figcaption></figure>"
        if svg is not None
        else ""
    )
    first = report.comparisons[0] if report.comparisons else None
    headline = ""
    if first is not None:
        headline = (
            f'<p id="headline"><span class="dim">delta of {_e(first.model)}</span> '
            f'<span class="headline" id="headline-value">{_e(fmt_number(first.delta))}</span> '
            f'<span class="dim">{report.level:.0%} interval {_e(_interval(first.low, first.high))}; '
            f"{_e(_verdict(first))}</span></p>"
        )
    return document(
        title,
        [
            headline,
            "<h2>Models</h2>" + _models_table("models", report, report.models),
            "<h2>Comparisons</h2>" + _comparisons_table("comparisons", report.comparisons),
            f'<p class="dim" id="method">{_e(_caption(report))}</p>',
            chart,
            _groups(report),
            *(f'<p class="warn">warning: {_e(w)}</p>' for w in report.warnings),
            *(f'<p class="dim">note: {_e(n)}</p>' for n in report.notes),
        ],
    )
