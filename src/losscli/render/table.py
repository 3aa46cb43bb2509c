"""Rich renderables for a Report. Pure: they build tables; only the caller's Console prints."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..report import Report, interpret_perplexity

TITLES = {
    "mse": "Mean squared error",
    "mae": "Mean absolute error",
    "bce": "Binary cross-entropy",
    "ce": "Categorical cross-entropy",
    "perplexity": "Perplexity",
}


def fmt_number(v: Any, counts: bool = False) -> str:
    """Seven significant digits for people (machine formats keep full precision).

    Integers get thousands separators only when they are counts, never when they are ids.
    """
    if v is None:
        return "-"
    if isinstance(v, tuple):
        inner = ", ".join(fmt_number(x) for x in v[:6])
        return f"[{inner}{', ...' if len(v) > 6 else ''}]"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}" if counts else str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v != 0 and (abs(v) >= 1e7 or abs(v) < 1e-4):
            return f"{v:.6e}"
        return f"{v:.7g}"
    return str(v)


def summary_table(report: Report) -> Table:
    files = " vs ".join(dict.fromkeys(v for k, v in report.files.items() if k != "weights"))
    table = Table(title=f"{TITLES[report.metric]} - {files}", title_justify="left")
    table.add_column("figure", style="bold")
    table.add_column("value", justify="right")
    table.add_column("what it means", style="dim")
    for f in report.figures:
        if f.in_table:
            table.add_row(f.label, fmt_number(f.value, counts=True), f.meaning)
    if report.input_kind is not None:
        how = "detected from the first chunk" if report.input_detected else "as given by --input"
        table.add_row("input", report.input_kind, how)
    if report.weighted:
        table.add_row("weighted", "yes", "weighted mean (sample_weight semantics)")
    if report.ignored and not any(f.key == "ignored" for f in report.figures):
        table.add_row(
            "ignored", fmt_number(report.ignored, counts=True), "rows with the ignore index, not counted"
        )
    if report.skipped:
        table.add_row(
            "skipped", fmt_number(report.skipped, counts=True), "rows with NaN/inf, dropped by --nan skip"
        )
    if report.clamped:
        table.add_row(
            "clamped", fmt_number(report.clamped, counts=True), "log(0) clamped at -100, as torch does"
        )
    return table


def outputs_table(report: Report) -> Table | None:
    if not report.per_output:
        return None
    table = Table(title="Per output", title_justify="left")
    table.add_column("output")
    table.add_column(report.metric.upper(), justify="right")
    has_rmse = report.metric == "mse"
    if has_rmse:
        table.add_column("RMSE", justify="right")
    for name, vals in report.per_output:
        cells = [name, fmt_number(vals["value"])]
        if has_rmse:
            cells.append(fmt_number(vals["rmse"]))
        table.add_row(*cells)
    return table


def examples_table(report: Report) -> Table | None:
    if not report.examples:
        return None
    if report.breakdown == "all":
        title = f"Every example ({report.n})"
    else:
        title = f"The {len(report.examples)} worst of {report.n:,} examples"
    table = Table(title=title, title_justify="left")
    table.add_column("row", justify="right")
    ids = [] if report.id_column is None else [report.id_column]
    for col in [*ids, *report.detail_columns]:
        table.add_column(col, justify="right")
    table.add_column("loss", justify="right", style="bold")
    for e in report.examples:
        cells = [fmt_number(e.id)] if ids else []
        table.add_row(str(e.row), *cells, *[fmt_number(v) for v in e.detail], fmt_number(e.loss))
    return table


def sequences_table(report: Report) -> Table | None:
    if not report.sequences or (len(report.sequences) == 1 and report.breakdown == "all"):
        return None
    if report.sequence_breakdown == "all":
        title = f"Every sequence ({len(report.sequences)})"
    else:
        title = f"The {len(report.sequences)} sequences with the highest perplexity"
    table = Table(title=title, title_justify="left")
    table.add_column("sequence", justify="right")
    table.add_column("tokens", justify="right")
    table.add_column("NLL (nats/token)", justify="right")
    table.add_column("perplexity", justify="right", style="bold")
    table.add_column("worst tokens (position: target id, log-prob)")
    for row in report.sequences:
        worst = "; ".join(
            f"{w['position']}: {w['target'] if w['target'] >= 0 else '?'}, {fmt_number(w['logprob'])}"
            for w in row["worst_tokens"]
        )
        table.add_row(
            str(row["sequence"]),
            fmt_number(row["tokens"], counts=True),
            fmt_number(row["nll"]),
            fmt_number(row["perplexity"]),
            worst,
        )
    return table


def report_renderable(report: Report) -> RenderableType:
    parts: list[RenderableType] = [summary_table(report)]
    for extra in (outputs_table(report), sequences_table(report), examples_table(report)):
        if extra is not None:
            parts.append(extra)
    if report.metric == "perplexity":
        parts.append(Text(interpret_perplexity(report.value)))
    elif report.metric == "ce":
        ppl = report.figure("perplexity")
        if isinstance(ppl, float):
            parts.append(Text(interpret_perplexity(ppl, unit="classes")))
    return Group(*parts)
