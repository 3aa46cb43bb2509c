"""Rich renderables for a Report. Pure: they build tables; only the caller's Console prints.

Tables fit the terminal without ever cutting a number: each table picks its columns and their
widths when it is rendered, from the width it is given. Number columns are never narrower
than their longest number (a list of numbers may wrap between its elements); prose folds, and
when even that does not fit, the explanation column goes first, then less important columns,
then the box lines.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from ..results.groups import value_text
from ..results.report import Report


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


TEXT_MIN_WIDTH = 12  # prose narrower than this is dropped rather than folded into a ribbon
LABEL_MIN_WIDTH = 6  # a label column (figure, output) folds down to this, never goes
LABEL_WANTED_WIDTH = 16  # ... but prose is dropped before a label is folded below this


@dataclass
class Col:
    """One column: its cells as text and how it gives way when the width runs out."""

    header: str
    cells: list[str] = field(default_factory=list)
    number: bool = False  # never narrower than its longest word: numbers are never broken
    drop: int = 0  # 0: always shown; otherwise dropped when too narrow, highest first
    justify: Literal["left", "right"] = "left"
    style: str = ""

    def natural(self) -> int:
        return max(cell_len(line) for text in [self.header, *self.cells] for line in text.split("\n"))

    def minimum(self, squeeze: bool = False) -> int:
        """The narrowest this column may be; ``squeeze``: when nothing else fits."""
        if self.number:
            return max(cell_len(w) for c in [self.header, *self.cells] for w in c.split() or [""])
        if self.drop:
            return min(self.natural(), TEXT_MIN_WIDTH)
        return min(self.natural(), LABEL_MIN_WIDTH if squeeze else LABEL_WANTED_WIDTH)


class FitTable:
    """A table whose columns and widths are chosen at render time, for the width available."""

    def __init__(self, title: str, columns: list[Col]) -> None:
        self.title = title
        self.columns = columns

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)

    def layouts(self) -> list[tuple[bool, list[Col], bool]]:
        """(boxed, columns, squeeze) in order of preference: boxed with every column, then with
        droppable columns gone one by one, then the same without box lines; last, the essential
        columns with labels folded narrower."""
        order = sorted((c for c in self.columns if c.drop), key=lambda c: -c.drop)
        shown = [list(self.columns)]
        for col in order:
            shown.append([c for c in shown[-1] if c is not col])
        preferred = [(boxed, cols, False) for boxed in (True, False) for cols in shown]
        return [*preferred, (True, shown[-1], True), (False, shown[-1], True)]

    def table(self, width: int) -> Table:
        layouts = self.layouts()
        for boxed, cols, squeeze in layouts:
            if sum(c.minimum(squeeze) for c in cols) + _overhead(len(cols), boxed) <= width:
                return self._build(boxed, cols, squeeze, width)
        return self._build(*layouts[-1], width)  # narrower than any number: folded, never cut

    def _build(self, boxed: bool, cols: list[Col], squeeze: bool, width: int) -> Table:
        widths = _share(cols, squeeze, width - _overhead(len(cols), boxed))
        kw: dict[str, Any] = {} if boxed else {"box": None, "pad_edge": False}
        table = Table(title=Text(self.title), title_justify="left", **kw)
        for col, w in zip(cols, widths, strict=True):
            table.add_column(Text(col.header), justify=col.justify, style=col.style, width=w, overflow="fold")
        for i in range(len(cols[0].cells) if cols else 0):
            table.add_row(*[Text(c.cells[i]) for c in cols])
        return table


def _overhead(n: int, boxed: bool) -> int:
    """Columns of padding and rules around n cells: rich's (0, 1) padding, plus box lines."""
    return 2 * n + n + 1 if boxed else max(0, 2 * n - 2)


def _share(cols: list[Col], squeeze: bool, room: int) -> list[int]:
    """Each column its minimum, then what is left: numbers first, then labels, then prose."""
    widths = [c.minimum(squeeze) for c in cols]
    left = room - sum(widths)
    for wanted in (lambda c: c.number, lambda c: not c.number and c.drop == 0, lambda c: True):
        for i, c in enumerate(cols):
            if left > 0 and wanted(c):
                grow = min(left, c.natural() - widths[i])
                if grow > 0:
                    widths[i] += grow
                    left -= grow
    return widths


def status_rows(report: Report) -> list[tuple[str, str, str]]:
    """How the run read and counted its rows (input kind, weights, ignored, skipped, clamped):
    the headline table's last rows, on a terminal and in --report alike."""
    rows: list[tuple[str, str, str]] = []
    if report.input_kind is not None:
        how = "detected from the first chunk" if report.input_detected else "as given by --input"
        if report.metric == "perplexity":  # it has no --input: the option named the kind
            how = f"from --{report.input_kind}"
        rows.append(("input", report.input_kind, how))
    if report.weighted:
        rows.append(("weighted", "yes", "weighted mean (sample_weight semantics)"))
    if report.ignored and not any(f.key == "ignored" for f in report.figures):
        rows.append(
            ("ignored", fmt_number(report.ignored, counts=True), "rows with the ignore index, not counted")
        )
    if report.skipped:
        rows.append(
            ("skipped", fmt_number(report.skipped, counts=True), "rows with NaN/inf, dropped by --nan skip")
        )
    if report.clamped:
        rows.append(
            ("clamped", fmt_number(report.clamped, counts=True), "log(0) clamped at -100, as torch does")
        )
    return rows


def summary_table(report: Report) -> FitTable:
    files = " vs ".join(dict.fromkeys(v for k, v in report.files.items() if k != "weights"))
    rows: list[tuple[str, str, str]] = []
    intervals: list[str] = []  # --ci: each figure's interval, "" for the rest
    for f in report.figures:
        if f.in_table:
            rows.append((f.label, fmt_number(f.value, counts=True), f.meaning))
            intervals.append(_interval_text((report.ci or {}).get(f.key)))
    rows += quantile_rows(report.quantiles)
    rows += status_rows(report)
    if report.ci is not None:  # --ci: how the intervals were made, and the bootstrap's seed
        seed = f"--seed {report.ci['seed']}" if "seed" in report.ci else "analytic"
        rows.append(("interval", seed, str(report.ci["method"])))
    return FitTable(
        f"{report.title} - {files}",
        [
            Col("figure", [r[0] for r in rows], style="bold"),
            Col("value", [r[1] for r in rows], number=True, justify="right"),
            *_interval_column(report, intervals, len(rows)),
            Col("what it means", [r[2] for r in rows], drop=1, style="dim"),
        ],
    )


def quantile_rows(quantiles: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """The loss quantiles as summary rows (none for a state without a sketch)."""
    if quantiles is None:
        return []
    from ..results.quantiles import QUANTILE_ROWS

    return [(label, fmt_number(quantiles[key]), meaning) for key, label, meaning in QUANTILE_ROWS]


def _interval_text(iv: Any) -> str:
    """``low - high``; empty without an interval (a NaN end, with too few examples, is nan)."""
    return "" if iv is None else f"{fmt_number(iv[0])} - {fmt_number(iv[1])}"


def _interval_column(report: Report, intervals: list[str], rows: int) -> list[Col]:
    """--ci: a column of intervals, headed by the level and the method's first word."""
    if report.ci is None:
        return []
    level, method = report.ci["level"], str(report.ci["method"]).split(":")[0]
    cells = intervals + [""] * (rows - len(intervals))
    return [Col(f"{level:.0%} interval ({method})", cells, number=True, justify="right")]


def outputs_table(report: Report) -> FitTable | None:
    if not report.per_output:
        return None
    cols = [Col("output", [name for name, _ in report.per_output])]
    for j, (key, label) in enumerate(report.per_output_labels):  # the headline never drops
        cells = [fmt_number(v.get(key)) for _, v in report.per_output]
        cols.append(Col(label, cells, number=True, drop=j, justify="right"))
    return FitTable("Per output", cols)


def examples_table(report: Report) -> FitTable | None:
    if not report.examples:
        return None
    if report.breakdown == "all":
        title = f"Every example ({report.n})"
    else:
        title = f"The {len(report.examples)} worst of {report.n:,} examples"
    n_detail = len(report.detail_columns)
    cols = [Col("row", [str(e.row) for e in report.examples], number=True, justify="right")]
    if report.example_files is not None:  # shards: which file, and its own row, beside the row
        shown = _short_paths([f for f, _ in report.example_files], report.files_root)
        cols.append(Col("file", shown, drop=1 + n_detail + 1))
        rows_in = ["?" if r < 0 else str(r) for _, r in report.example_files]
        cols.append(Col("file row", rows_in, number=True, drop=1 + n_detail + 2, justify="right"))
    if report.id_column is not None:  # the input's own name for the example, beside its row
        cols.append(Col(report.id_column, [fmt_number(e.id) for e in report.examples], justify="right"))
    if report.token_text is not None:  # the input's own text of each token (JSON log-probs)
        texts = [report.token_text.get(e.row) for e in report.examples]
        cols.append(Col("token", ["?" if t is None else repr(t) for t in texts], drop=1))
    for j, name in enumerate(report.detail_columns):  # the first detail column goes first
        cells = [fmt_number(e.detail[j]) if j < len(e.detail) else "" for e in report.examples]
        cols.append(Col(name, cells, number=True, drop=1 + n_detail - j, justify="right"))
    cols.append(
        Col("loss", [fmt_number(e.loss) for e in report.examples], number=True, justify="right", style="bold")
    )
    return FitTable(title, cols)


def _short_paths(paths: list[str], root: str | None = None) -> list[str]:
    """Shards' paths without the folder all the shards share (``split=test/part-0.parquet``,
    not ``part-0.parquet``: every hive file may have that name): the table names the shard;
    JSON keeps the absolute path. ``root``: that folder (else the shown paths' own)."""
    known = [p for p in paths if p]
    common = os.path.commonpath(known) if len(set(known)) > 1 else os.path.dirname(known[0]) if known else ""
    if root is not None and all(p == root or p.startswith(root.rstrip(os.sep) + os.sep) for p in known):
        common = root
    return [os.path.relpath(p, common) if p and common else (p or "?") for p in paths]


def _token_shown(worst: dict[str, Any], texts: bool, ids: bool) -> str:
    """A worst token as the input knows it: its text (quoted) and id, as far as the input has
    them ('?' for one missing where others have it), then its log-prob."""
    text, target = worst.get("token"), worst["target"]
    # token_position, not the logits' position: input_ids[sequence][token_position] is the target
    # (t + 1 under --shift), so the number shown finds the token in the ids
    shown = []
    if texts:
        shown.append("?" if text is None else repr(text))
    if ids:
        shown.append("?" if target is None else (f"({target})" if texts else str(target)))
    who = " ".join(shown)
    return f"{worst['token_position']}: {who + ', ' if who else ''}{fmt_number(worst['logprob'])}"


def _worst_tokens_header(texts: bool, ids: bool) -> str:
    """The worst-tokens column's header, naming only what its cells show."""
    who = {(True, True): "token (id), ", (True, False): "token, ", (False, True): "target id, "}
    return f"worst tokens (token position: {who.get((texts, ids), '')}log-prob)"


def sequences_table(report: Report) -> FitTable | None:
    if not report.sequences or (len(report.sequences) == 1 and report.breakdown == "all"):
        return None
    if report.sequence_breakdown == "all":
        title = f"Every sequence ({len(report.sequences)})"
    else:
        title = f"The {len(report.sequences)} sequences with the highest perplexity"
    rows = report.sequences
    every = [w for row in rows for w in row["worst_tokens"]]
    texts = any(w.get("token") is not None for w in every)
    ids = any(w["target"] is not None for w in every)
    worst = ["; ".join(_token_shown(w, texts, ids) for w in row["worst_tokens"]) for row in rows]
    return FitTable(
        title,
        [
            Col("sequence", [str(r["sequence"]) for r in rows], number=True, justify="right"),
            Col(
                "tokens",
                [fmt_number(r["tokens"], counts=True) for r in rows],
                number=True,
                drop=2,
                justify="right",
            ),
            Col(
                "NLL (nats/token)", [fmt_number(r["nll"]) for r in rows], number=True, drop=3, justify="right"
            ),
            Col(
                "perplexity",
                [fmt_number(r["perplexity"]) for r in rows],
                number=True,
                justify="right",
                style="bold",
            ),
            Col(_worst_tokens_header(texts, ids), worst, number=True, drop=4),
        ],
    )


#: the group figures whose --ci interval the per-group table shows beside them (the headline's
#: always has its column): the Brier score, the one calibration figure a group has
GROUP_INTERVALS = ("brier",)


def groups_table(report: Report) -> FitTable | None:
    """One row per group: its key columns, headline, count and the other figures of the summary."""
    if not report.groups:
        return None
    rows = report.groups
    cols = [Col(name, [value_text(g.key[name]) for g in rows]) for name in rows[0].key]
    shown = [f for f in rows[0].figures if f.in_table and f.key not in ("value", "n")]
    cols.append(
        Col(rows[0].figures[0].label, [fmt_number(g.value) for g in rows], number=True, justify="right")
    )
    if report.ci is not None:  # --ci: the headline's interval of each group, never dropped
        level, method = report.ci["level"], str(report.ci["method"]).split(":")[0]
        cells = [_interval_text((g.ci or {}).get("value")) for g in rows]
        cols.append(Col(f"{level:.0%} interval ({method})", cells, number=True, justify="right"))
    cols.append(Col("n", [fmt_number(g.n, counts=True) for g in rows], number=True, justify="right"))
    for j, f in enumerate(shown, start=1):  # the headline and count never drop
        cells = [fmt_number(g.figure_or_none(f.key), counts=isinstance(f.value, int)) for g in rows]
        cols.append(Col(f.label, cells, number=True, drop=j, justify="right"))
        if report.ci is not None and f.key in GROUP_INTERVALS:  # its interval beside it, dropped alike
            cells = [_interval_text((g.ci or {}).get(f.key)) for g in rows]
            cols.append(Col(f"{f.label} interval", cells, number=True, drop=j, justify="right"))
    return FitTable(f"Per group ({len(rows):,})", cols)


def report_renderable(report: Report) -> RenderableType:
    parts: list[RenderableType] = [summary_table(report)]
    for extra in (
        groups_table(report),
        outputs_table(report),
        sequences_table(report),
        examples_table(report),
    ):
        if extra is not None:
            parts.append(extra)
    from .extra_tables import extra_tables

    parts += extra_tables(report)
    if report.interpretation:
        parts.append(Text(report.interpretation))
    return Group(*parts)
