"""A comparison as a table, JSON, CSV/TSV or bare values, and its numbers for ``--fail-if``.

CSV/TSV: a header, then a row per model (the baseline's comparison cells empty, its verdict
``baseline``), then, with ``--group-by``, the same rows per group with ``group`` (the key as JSON)
and ``group.COL`` columns. ``value`` format: each candidate's delta, one per line.

``n`` (CSV/TSV and ``--fail-if``) is the count of paired units, as JSON ``comparisons[].n``: for
perplexity clustered by sequence, sequences (a model's own row would count its tokens).
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from ..render.machine import number_text
from .judge import SAME, Comparison
from .report import CompareReport, ModelRow

COLUMNS = (
    "model",
    "baseline",
    "value",
    "value_low",
    "value_high",
    "n",
    "delta",
    "delta_low",
    "delta_high",
    "p_value",
    "p_adjusted",
    "verdict",
    "test",
    "level",
)


def paired_n(report: CompareReport, m: ModelRow, comparisons: list[Comparison]) -> int:
    """A model's ``n`` in CSV/TSV and --fail-if: the paired units its comparisons count (the
    sequences, when clustered by sequence; the baseline's: those of its candidates), as JSON."""
    if report.unit != "sequence" or not comparisons:
        return m.n
    own = [c.n for c in comparisons if c.model == m.name]
    return own[0] if own else comparisons[0].n


def _rows(report: CompareReport, models: list[ModelRow], comparisons: list[Comparison]) -> list[list[str]]:
    by_model = {c.model: c for c in comparisons}
    rows = []
    for m in models:
        c = by_model.get(m.name)
        cells = [
            m.name,
            report.models[0].name,
            number_text(m.value),
            number_text(m.low),
            number_text(m.high),
            str(paired_n(report, m, comparisons)),
        ]
        if c is None:
            cells += ["", "", "", "", "", "baseline"]
        else:
            cells += [number_text(x) for x in (c.delta, c.low, c.high, c.p_value, c.p_adjusted)] + [c.verdict]
        rows.append([*cells, report.test, repr(report.level)])
    return rows


def render_delimited(report: CompareReport, delimiter: str) -> str:
    header = list(COLUMNS)
    rows = _rows(report, report.models, report.comparisons)
    if report.groups is not None:
        columns = list(report.groups[0].key) if report.groups else []
        header += ["group", *(f"group.{c}" for c in columns)]
        rows = [[*r, "all", *([""] * len(columns))] for r in rows]
        for g in report.groups:
            key = json.dumps(g.key, ensure_ascii=False, default=str)
            cells = ["" if v is None else str(v) for v in g.key.values()]
            rows += [[*r, key, *cells] for r in _rows(report, g.models, g.comparisons)]
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def render_compare(report: CompareReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report.to_dict(), allow_nan=False) + "\n"
    if fmt in ("csv", "tsv"):
        return render_delimited(report, "," if fmt == "csv" else "\t")
    if fmt == "value":
        return "".join(number_text(c.delta) + "\n" for c in report.comparisons)
    raise ValueError(f"not a machine format: {fmt}")


def gate_values(report: CompareReport) -> dict[str, list[float]]:
    """--fail-if keys: delta, delta_low, delta_high, p_value, p_adjusted, value, value_low,
    value_high and n stand for every candidate (a gate fires if any candidate satisfies it);
    NAME.KEY for one model (the baseline too, for its value keys)."""
    out: dict[str, list[float]] = {}
    by_model = {c.model: c for c in report.comparisons}
    for i, m in enumerate(report.models):
        n = float(paired_n(report, m, report.comparisons))
        own = {"value": m.value, "value_low": m.low, "value_high": m.high, "n": n}
        c = by_model.get(m.name)
        if c is not None:
            own.update(
                delta=c.delta, delta_low=c.low, delta_high=c.high, p_value=c.p_value, p_adjusted=c.p_adjusted
            )
        for k, v in own.items():
            out[f"{m.name}.{k}"] = [v]
            if i > 0:
                out.setdefault(k, []).append(v)
    return out


def report_renderable(report: CompareReport) -> Any:
    """Rich tables: a row per model, its delta from the baseline beside it; one table per group."""
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = [
        _table(
            report,
            f"{report.title}: is a model better than {report.models[0].name}?",
            report.models,
            report.comparisons,
        )
    ]
    from ..results.groups import key_text

    for g in report.groups or []:
        n = g.comparisons[0].n if g.comparisons else 0  # each group's own paired units
        units = ("sequence" if report.unit == "sequence" else "example") + ("" if n == 1 else "s")
        title = f"group {key_text(g.key)} ({n:,} paired {units})"
        parts.append(_table(report, title, g.models, g.comparisons, grouped=True))
    return Group(*parts, Text(_caption(report), style="dim"))


def _table(
    report: CompareReport,
    title: str,
    models: list[ModelRow],
    comparisons: list[Comparison],
    grouped: bool = False,
) -> Any:
    from rich.table import Table

    pct = f"{report.level * 100:g}%"
    holm = (report.group_adjustment if grouped else report.overall_adjustment) == "holm"
    p = "p (Holm)" if holm else "p"
    table = Table(title=title, title_justify="left")
    width = max(len(m.name) for m in models)
    table.add_column("model", no_wrap=True, min_width=min(width, 24))
    for name in (report.headline, f"{pct} CI", "delta", f"{pct} CI of delta", p):
        table.add_column(name, justify="right", no_wrap="CI" not in name)  # an interval folds at its comma
    table.add_column("verdict", min_width=11)
    _add_rows(table, report, models, comparisons)
    return table


def _add_rows(
    table: Any, report: CompareReport, models: list[ModelRow], comparisons: list[Comparison]
) -> None:
    by_model = {c.model: c for c in comparisons}
    for m in models:
        c = by_model.get(m.name)
        cells = [m.name, _fmt(m.value), _interval(m.low, m.high)]
        if c is None:
            cells += ["", "", "", "baseline"]
        else:
            verdict = "not significant" if c.verdict == SAME else c.verdict
            if c.noninferior is not None:
                verdict += f"; {'within' if c.noninferior else 'NOT shown within'} margin"
            cells += [
                _fmt(c.delta, signed=True),
                _interval(c.low, c.high, signed=True),
                _fmt_p(c.p_adjusted),
                verdict,
            ]
        table.add_row(*cells)


def _caption(report: CompareReport) -> str:
    test = {
        "t": "paired t test",
        "bootstrap": f"paired Poisson bootstrap, {report.resamples} replicates",
        "permutation": f"paired permutation (sign flips), {report.resamples} resamples",
    }[report.test]
    holm = report.adjustment == "holm"
    adjusted = (
        "; p and verdicts are Holm-adjusted over the comparisons, intervals are not (an interval "
        "may exclude 0 beside 'not significant'; JSON p_value is the raw p)"
        if holm
        else ""
    )
    margin = (
        f"; margin {report.margin:g}: within when the one-sided p of delta >= margin"
        f"{' (Holm-adjusted)' if holm else ''} < {(1 - report.level) / 2:g}"
        + (
            " (unadjusted, when the delta's CI upper end < margin)"
            if holm
            else " (the delta's CI upper end < margin)"
        )
        if report.margin is not None
        else ""
    )
    n = report.comparisons[0].n if report.comparisons else 0
    every = " in all (each group's n in its title)" if report.groups else ""
    if report.unit == "sequence":
        return (
            f"Lower loss is better. delta = model - {report.models[0].name}, in nats of cross-entropy "
            f"per token, over {n:,} paired sequences{every} (tests clustered by sequence); two-sided {test} "
            f"at level {report.level:g}{adjusted}{margin}."
        )
    units = "in nats of cross-entropy per token" if report.metric == "perplexity" else "in the metric's units"
    return (
        f"Lower loss is better. delta = model - {report.models[0].name}, {units}, over {n:,} "
        f"paired examples{every}; two-sided {test} at level {report.level:g}{adjusted}{margin}."
    )


def _fmt(v: float, signed: bool = False) -> str:
    if math.isnan(v):
        return "-"
    return f"{v:+.4g}" if signed else f"{v:.4g}"


def _fmt_p(p: float) -> str:
    return "-" if math.isnan(p) else (f"{p:.3g}" if p >= 1e-4 else f"{p:.1e}")


def _interval(lo: float, hi: float, signed: bool = False) -> str:
    if math.isnan(lo) or math.isnan(hi):
        return "-"
    return f"{_fmt(lo, signed)}, {_fmt(hi, signed)}"
