"""The report page: headline table, per-output and per-group tables, worst examples, charts,
per-class tables; every value escaped, every chart an inline SVG in a <figure> with an id."""

from __future__ import annotations

import html
import math
from typing import Any

from ..render.extra_tables import bin_label
from ..render.table import fmt_number, status_rows
from . import charts

CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:60em;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .7em;border-bottom:1px solid #eee;
text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.headline{font-size:2em;font-weight:600}.dim{color:#666}figure{margin:1em 0}svg{max-width:100%;height:auto}
.warn{color:#a15c00}
"""


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _table(table_id: str, header: list[str], rows: list[list[Any]], numeric: set[int]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_e(c)}</td>' if i in numeric else f"<td>{_e(c)}</td>" for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def interval_text(iv: Any) -> str:
    """``low - high`` of a [low, high] pair; empty without one (a missing end shows as nan)."""
    if not iv:
        return ""
    return " - ".join(fmt_number(math.nan if v is None else v) for v in iv)


def interval_header(ci: dict[str, Any]) -> str:
    """The interval column's heading: the level and the method's first word, as the table's."""
    return f"{ci['level']:.0%} interval ({str(ci['method']).split(':')[0]})"


def _headline(report: Any) -> str:
    ci = report.ci
    rows = [
        [f.label, fmt_number(f.value, counts=True), *_ci_cell(ci, f.key), f.meaning]
        for f in report.figures
        if f.in_table
    ]
    if report.quantiles is not None:
        from ..results.quantiles import QUANTILE_ROWS

        q = report.quantiles
        rows += [[label, fmt_number(q[k]), *_ci_cell(ci, None), m] for k, label, m in QUANTILE_ROWS]
    rows += [[label, value, *_ci_cell(ci, None), m] for label, value, m in status_rows(report)]
    value = fmt_number(report.value)
    unit = "tokens" if report.metric == "perplexity" else "examples"
    first = report.figures[0].label if report.figures else report.metric
    around = ""
    if ci is not None and ci.get("value"):
        around = (
            f' <span class="dim" id="headline-interval">{ci["level"]:.0%} interval '
            f"{_e(interval_text(ci['value']))}</span>"
        )
    head = ["figure", "value", *([interval_header(ci)] if ci is not None else []), "what it means"]
    method = ""
    if ci is not None:
        seed = f"; --seed {ci['seed']}" if "seed" in ci else ""
        method = f'<p class="dim" id="interval-method">intervals: {_e(ci["method"])}{_e(seed)}</p>'
    return (
        f'<p id="headline"><span class="dim">{_e(first)}</span> '
        f'<span class="headline" id="headline-value">{_e(value)}</span> '
        f'<span class="dim">over {report.n:,} {unit}</span>{around}</p>'
        + _table("summary", head, rows, {1, 2} if ci is not None else {1})
        + method
    )


def _ci_cell(ci: dict[str, Any] | None, key: str | None) -> list[str]:
    """The interval cell of a figure's row: none without --ci, empty for a figure without one."""
    if ci is None:
        return []
    return [interval_text(ci.get(key)) if key is not None else ""]


def _sections(report: Any) -> list[str]:
    out: list[str] = []
    if report.per_output:
        keys = [k for k, _ in report.per_output_labels]
        rows = [[name, *(fmt_number(v.get(k)) for k in keys)] for name, v in report.per_output]
        out.append(
            "<h2>Per output</h2>"
            + _table(
                "outputs",
                ["output", *(lb for _, lb in report.per_output_labels)],
                rows,
                set(range(1, len(keys) + 1)),
            )
        )
    if report.groups:
        cols = list(report.groups[0].key)
        ci = [] if report.ci is None else [interval_header(report.ci)]
        # --calibration: each group's Brier score (and its interval with --ci), as the terminal's
        brier = any(f.key == "brier" for f in report.groups[0].figures)
        brier_head = (["Brier"] + ([f"Brier {ci[0]}"] if ci else [])) if brier else []
        rows = [
            [
                *("null" if g.key[c] is None else g.key[c] for c in cols),
                fmt_number(g.value),
                *([interval_text((g.ci or {}).get("value"))] if ci else []),
                f"{g.n:,}",
                *([fmt_number(g.figure_or_none("brier"))] if brier else []),
                *([interval_text((g.ci or {}).get("brier"))] if brier and ci else []),
            ]
            for g in report.groups
        ]
        head = [*cols, report.figures[0].label, *ci, "n", *brier_head]
        numeric = set(range(len(cols), len(head)))
        out.append("<h2>Per group</h2>" + _table("groups", head, rows, numeric))
    charts_html = [
        ("chart-histogram", "Distribution of the losses", charts.histogram_svg(report)),
        ("chart-reliability", "Reliability diagram", charts.reliability_svg(report)),
        ("chart-sequences", "Perplexity per sequence", charts.sequences_svg(report)),
    ]
    for chart_id, title, svg in charts_html:
        if svg is not None:
            out.append(
                f'<h2>{_e(title)}</h2><figure class="chart" id="{chart_id}">{charts.strip_scripts(svg)}'
                f'<figcaption class="dim">{_e(title)}</figcaption></figure>'
            )
    if report.calibration is not None:
        weighted = bool(report.weighted)  # a bin's weight beside its rows: its means are weighted
        rows = [
            [
                bin_label(r),
                f"{r['count']:,}",
                *([fmt_number(r["weight"])] if weighted else []),
                fmt_number(r["confidence"]),
                fmt_number(r["observed"]),
                fmt_number(r["gap"]),
            ]
            for r in report.calibration["reliability"]
            if r["count"]
        ]
        head = ["bin", "count", *(["weight"] if weighted else []), "confidence", "observed", "gap"]
        out.append(_table("reliability", head, rows, set(range(1, len(head)))))
    if report.per_class is not None:
        weighted = bool(report.per_class) and "weight" in report.per_class[0]
        rows = [
            [
                r["class"],
                f"{r['support']:,}",
                *([fmt_number(r["weight"])] if weighted else []),
                fmt_number(r["loss"]),
                fmt_number(r["accuracy"]),
                fmt_number(r["mean_probability"]),
            ]
            for r in report.per_class
        ]
        head = ["class", "support", *(["weight"] if weighted else []), "loss", "accuracy", "mean p"]
        note = (
            '<p class="dim" id="classes-weighted">support and count are rows; weight, loss, accuracy, '
            "mean p and the share of the target are weighted; pairs ranked by weight</p>"
            if weighted
            else ""
        )
        out.append("<h2>Per class</h2>" + note + _table("classes", head, rows, set(range(1, len(head)))))
        pairs = [
            [
                p["target"],
                p["predicted"],
                f"{p['count']:,}",
                *([fmt_number(p["weight"])] if weighted else []),
                fmt_number(p["share"]),
            ]
            for p in report.confusions or []
        ]
        share = "share of target weight" if weighted else "share of target"
        head = ["target", "predicted", "count", *(["weight"] if weighted else []), share]
        out.append(_table("confusions", head, pairs, set(range(2, len(head)))))
    if report.examples:
        cols = list(report.detail_columns)
        rows = [
            [e.row, *(fmt_number(d) for d in e.detail[: len(cols)]), fmt_number(e.loss)]
            for e in report.examples
        ]
        title = "Every example" if report.breakdown == "all" else f"The {len(rows)} worst examples"
        out.append(
            f"<h2>{_e(title)}</h2>"
            + _table("examples", ["row", *cols, "loss"], rows, set(range(len(cols) + 2)))
        )
    return out


def render_page(report: Any) -> str:
    """The whole HTML document."""
    files = " vs ".join(dict.fromkeys(v for k, v in report.files.items() if k != "weights"))
    warnings = "".join(f'<p class="warn">warning: {_e(w)}</p>' for w in report.warnings)
    interpretation = f"<p>{_e(report.interpretation)}</p>" if report.interpretation else ""
    title = f"{report.title} - {files}" if files else report.title
    version = report.provenance.get("version", "")
    return document(
        title,
        [
            _headline(report),
            interpretation,
            warnings,
            *_sections(report),
            f'<p class="dim">losscli {_e(version)}; status {_e(report.status)}.</p>',
        ],
    )


def document(title: str, body: list[str]) -> str:
    """A self-contained page: the head with the inline CSS, the title as its heading, then the
    body's non-empty parts, a line each (the report and the comparison pages alike)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        *body,
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"
