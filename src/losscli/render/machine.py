"""Machine-readable output: json, csv, tsv and the bare value. One place writes them all.

These formats are a contract with shell scripts and CI jobs: keys and columns only ever grow.

* ``value``: the headline number alone, ``repr(float)``, which round-trips exactly
  (``inf`` when it overflowed).
* ``json``: one object, ``Report.to_dict()``; non-finite numbers are null and ``status`` says
  ``overflow``.
* ``csv`` / ``tsv``: a header line, then one row for the whole input (``output`` = ``all``)
  and, for multi-output regression, one row per output. ``n``, ``ignored``, ``skipped`` and
  ``clamped`` are whole-run counts, repeated on every per-output row (a row skipped or ignored is
  skipped in every output), so no cell is empty and pandas reads integer columns, not NaN.
  With ``--group-by``, one row per group follows (sorted by key), and the header gains, after
  ``status``, a ``group`` column (``all`` on the overall rows, the key as a JSON object on a
  group's row) and one ``group.COL`` column per key column (the key's value; empty for null and
  on the overall rows). A group row's counts are the group's own; its ``output`` is ``all``.
  After ``status`` (and before the group columns) come ``loss_p50``, ``loss_p90``,
  ``loss_p99``, ``loss_max``: the per-example losses' quantiles (the whole run's on the overall
  and per-output rows, a group's own on its row).
  With ``--ci``, ``value_low`` and ``value_high`` come last: the headline's interval on the
  overall row and on every group's row (``nan`` where it cannot be computed, as on one example,
  the convention of every missing figure and of ``losscli compare``; empty on per-output rows
  and for a group with nothing counted).
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from ..results.report import Report


def number_text(v: float | int | None) -> str:
    """Full precision: repr for floats (shortest round-trip), plain for ints, empty for None."""
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return repr(v)
    return str(v)


def render_value(report: Report) -> str:
    return number_text(report.value) + "\n"


def render_json(report: Report) -> str:
    import json  # only for --format json: a few ms of every other run's start-up

    return json.dumps(report.to_dict(), allow_nan=False) + "\n"


HEAD_COLUMNS = ("metric", "output", "value", "n")
TAIL_COLUMNS = ("ignored", "skipped", "clamped", "status")


def figure_columns(report: Report) -> list[str]:
    """The figure keys between the fixed columns, each once.

    A figure whose key is also a fixed column (perplexity's ``ignored``, the same count) is
    that column, not a second one: a repeated header makes pandas rename it ``ignored.1``
    and ``csv.DictReader`` keep only the last.
    """
    fixed = set(HEAD_COLUMNS) | set(TAIL_COLUMNS)
    return list(dict.fromkeys(f.key for f in report.figures if f.key not in fixed))


def render_delimited(report: Report, delimiter: str) -> str:
    keys = figure_columns(report)
    header = [*HEAD_COLUMNS, *keys, *TAIL_COLUMNS]
    counts = [str(report.ignored), str(report.skipped), str(report.clamped)]  # whole-run, every row
    rows = [
        [
            report.metric,
            "all",
            number_text(report.value),
            str(report.n),
            *[number_text(report.figure(k)) for k in keys],
            *counts,
            report.status,
        ]
    ]
    for name, vals in report.per_output:
        v = vals["value"]
        extra = [number_text(vals.get(k)) for k in keys]
        status = "ok" if math.isfinite(v) else "overflow"
        rows.append([report.metric, name, number_text(v), str(report.n), *extra, *counts, status])
    header, rows = with_quantiles(report, header, rows)
    if report.groups is not None:
        header, rows = _with_groups(report, keys, header, rows)
    if report.ci is not None:  # --ci: the headline's interval, last: overall row, group rows
        header = [*header, "value_low", "value_high"]
        groups = report.groups or []
        cis = [report.ci] + [{}] * (len(rows) - 1 - len(groups)) + [g.ci or {} for g in groups]
        # an interval that could not be computed (one example) is nan, as any missing figure
        cells = [tuple(number_text(math.nan if v is None else v) for v in (ci.get("value") or (None, None)))
                 for ci in cis]
        cells = [c if ci else ("", "") for c, ci in zip(cells, cis, strict=True)]
        rows = [[*r, *c] for r, c in zip(rows, cells, strict=True)]
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _with_groups(
    report: Report, keys: list[str], header: list[str], rows: list[list[str]]
) -> tuple[list[str], list[list[str]]]:
    """The group columns after the existing ones, and a row per group after the overall rows."""
    import json

    assert report.groups is not None
    columns = list(report.groups[0].key) if report.groups else []
    header = [*header, "group", *(f"group.{c}" for c in columns)]
    rows = [[*r, "all", *([""] * len(columns))] for r in rows]
    for g in report.groups:
        figures = {f.key: f.value for f in g.figures}
        rows.append(
            [
                report.metric,
                "all",
                number_text(g.value),
                str(g.n),
                *[number_text(figures.get(k)) for k in keys],
                str(g.ignored),
                str(g.skipped),
                "0",
                g.status,
                *quantile_cells(g.quantiles),
                json.dumps(g.key, ensure_ascii=False, allow_nan=False, default=str),
                *["" if v is None else str(v) for v in g.key.values()],
            ]
        )
    return header, rows


def with_quantiles(
    report: Report, header: list[str], rows: list[list[str]]
) -> tuple[list[str], list[list[str]]]:
    """The loss quantile columns after ``status`` (before any group columns, which stay last):
    the whole run's on the overall and per-output rows (a row's loss is the whole example's)."""
    from ..results.quantiles import COLUMNS

    return [*header, *COLUMNS], [[*r, *quantile_cells(report.quantiles)] for r in rows]


def quantile_cells(q: dict[str, Any] | None) -> list[str]:
    """A row's quantile cells (empty for a state without a sketch)."""
    from ..results.quantiles import QUANTILE_ROWS

    return [number_text(None if q is None else q[key]) for key, _, _ in QUANTILE_ROWS]


def render_machine(report: Report, fmt: str) -> str:
    if fmt == "value":
        return render_value(report)
    if fmt == "json":
        return render_json(report)
    if fmt == "csv":
        return render_delimited(report, ",")
    if fmt == "tsv":
        return render_delimited(report, "\t")
    raise ValueError(f"not a machine format: {fmt}")
