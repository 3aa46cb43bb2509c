"""Tables of issue 14's figures under the summary: the reliability table (--calibration)."""

from __future__ import annotations

from typing import Any

from .table import Col, FitTable, fmt_number


def reliability_table(calibration: dict[str, Any] | None) -> FitTable | None:
    """One row per non-empty confidence bin: its range, count, mean confidence, observed
    frequency and the gap (observed - confidence: negative is overconfident)."""
    if calibration is None:
        return None
    rows = [r for r in calibration["reliability"] if r["count"]]
    if not rows:
        return None
    return FitTable(
        f"Reliability ({calibration['bins']} bins; ECE {fmt_number(calibration['ece'])})",
        [
            Col("confidence bin", [f"{r['lower']:.3g} - {r['upper']:.3g}" for r in rows], number=True),
            Col("count", [fmt_number(r["count"], counts=True) for r in rows], number=True, justify="right"),
            Col("confidence", [fmt_number(r["confidence"]) for r in rows], number=True, justify="right"),
            Col("observed", [fmt_number(r["observed"]) for r in rows], number=True, justify="right"),
            Col("gap", [fmt_number(r["gap"]) for r in rows], number=True, drop=1, justify="right"),
        ],
    )


def extra_tables(report: Any) -> list[FitTable]:
    return [t for t in (reliability_table(report.calibration),) if t is not None]
