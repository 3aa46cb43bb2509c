"""Tables of issue 14's figures under the summary: the reliability table (--calibration), the
per-class table and the most confused pairs (--per-class)."""

from __future__ import annotations

from typing import Any

from .table import Col, FitTable, fmt_number


def bin_label(row: dict[str, Any]) -> str:
    """A reliability row's range; torchmetrics' slot of confidences of exactly 1.0 says so."""
    if row["lower"] == row["upper"]:
        return f"{row['lower']:.3g} exactly"
    return f"{row['lower']:.3g} - {row['upper']:.3g}"


def reliability_table(calibration: dict[str, Any] | None, weighted: bool = False) -> FitTable | None:
    """One row per non-empty confidence bin: its range, count (and, weighted, its weight: the
    confidence, observed frequency and ECE are weighted means), mean confidence, observed
    frequency and the gap (observed - confidence: negative is overconfident)."""
    if calibration is None:
        return None
    rows = [r for r in calibration["reliability"] if r["count"]]
    if not rows:
        return None
    weight = [_weight_col(rows)] if weighted else []
    return FitTable(
        f"Reliability ({calibration['bins']} bins; ECE {fmt_number(calibration['ece'])}"
        + ("; weighted" if weighted else "")
        + ")",
        [
            Col("confidence bin", [bin_label(r) for r in rows], number=True),
            Col("count", [fmt_number(r["count"], counts=True) for r in rows], number=True, justify="right"),
            *weight,
            Col("confidence", [fmt_number(r["confidence"]) for r in rows], number=True, justify="right"),
            Col("observed", [fmt_number(r["observed"]) for r in rows], number=True, justify="right"),
            Col("gap", [fmt_number(r["gap"]) for r in rows], number=True, drop=1, justify="right"),
        ],
    )


def _weight_col(rows: list[dict[str, Any]]) -> Col:
    """The rows' weight sums, beside their exact row counts (a weighted run's figures are means
    over weight, not over rows)."""
    return Col("weight", [fmt_number(r["weight"]) for r in rows], number=True, justify="right")


#: classes a terminal's per-class table shows at most
CLASS_ROWS = 50


def _loss_key(loss: Any) -> float:
    return float("-inf") if loss is None or loss != loss else float(loss)  # no rows: last


def classes_table(rows: list[dict[str, Any]] | None) -> FitTable | None:
    """ce --per-class: support, mean loss, accuracy and mean predicted probability per class;
    weighted (the rows carry a weight), the class's weight beside its support and the title says
    that loss, accuracy and mean p are weighted.

    A terminal shows at most CLASS_ROWS of them: beyond, the classes with the highest mean loss
    (the ones to look at), in class order; JSON, TSV and --report keep every class."""
    if not rows:
        return None
    total = len(rows)
    weighted = "weight" in rows[0]
    title = f"Per class ({total:,})"
    if total > CLASS_ROWS:
        every = rows
        order = sorted(range(total), key=lambda i: -_loss_key(every[i]["loss"]))[:CLASS_ROWS]
        rows = [every[i] for i in sorted(order)]
        title = f"Per class: the {CLASS_ROWS} of {total:,} with the highest mean loss (JSON has all)"
    if weighted:
        title += "; loss, accuracy, mean p weighted"
    return FitTable(
        title,
        [
            Col("class", [str(r["class"]) for r in rows]),
            Col(
                "support", [fmt_number(r["support"], counts=True) for r in rows], number=True, justify="right"
            ),
            *([_weight_col(rows)] if weighted else []),
            Col("loss", [fmt_number(r["loss"]) for r in rows], number=True, justify="right"),
            Col("accuracy", [fmt_number(r["accuracy"]) for r in rows], number=True, justify="right"),
            Col(
                "mean p",
                [fmt_number(r["mean_probability"]) for r in rows],
                number=True,
                drop=1,
                justify="right",
            ),
        ],
    )


def confusions_table(pairs: list[dict[str, Any]] | None) -> FitTable | None:
    """The most confused pairs: count and share of the target's rows; weighted, ranked by weight,
    with the weight beside the count and the share of the target's weight."""
    if not pairs:
        return None
    weighted = "weight" in pairs[0]
    share = "share of target weight" if weighted else "share of target"
    return FitTable(
        f"The {len(pairs)} most confused pairs" + (" (by weight)" if weighted else ""),
        [
            Col("target", [str(p["target"]) for p in pairs]),
            Col("predicted", [str(p["predicted"]) for p in pairs]),
            Col("count", [fmt_number(p["count"], counts=True) for p in pairs], number=True, justify="right"),
            *([_weight_col(pairs)] if weighted else []),
            Col(share, [fmt_number(p["share"]) for p in pairs], number=True, justify="right"),
        ],
    )


def extra_tables(report: Any) -> list[FitTable]:
    tables = (
        reliability_table(report.calibration, bool(report.weighted)),
        classes_table(report.per_class),
        confusions_table(report.confusions),
    )
    return [t for t in tables if t is not None]
