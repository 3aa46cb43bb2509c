"""Per-group rows of a report (``--group-by``): each group's figures from the state alone.

A group's figures are its metric's own ``figures`` of a state whose tallies are the group's
(``GroupTallies.loss_state``), so they carry the same keys as the top level. What a group does
not keep stays overall: worst rows, per-sequence breakdowns and their mean/median perplexities,
and figures of the whole text (bits per byte, from --text).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from ..metrics import registry
from ..metrics.base import Figure
from ..state.evalstate import EvalState
from .quantiles import quantiles_of


@dataclass
class GroupRow:
    """One group: its key (column -> value), headline, count and figures."""

    key: dict[str, Any]
    value: float
    n: int
    figures: list[Figure] = field(default_factory=list)
    ignored: int = 0
    skipped: int = 0
    quantiles: dict[str, Any] | None = None  # the group's loss quantiles (results/quantiles.py)
    ci: dict[str, Any] | None = None  # --ci: the group's intervals (results.intervals)

    @property
    def status(self) -> str:
        if self.n == 0 or math.isnan(self.value):
            return "empty"
        return "ok" if math.isfinite(self.value) else "overflow"

    def figure_or_none(self, key: str) -> float | int | None:
        return next((f.value for f in self.figures if f.key == key), None)


def group_rows(state: EvalState) -> list[GroupRow]:
    """Every group of ``state``, sorted by key (nulls last); [] without --group-by."""
    groups = state.tallies.groups
    if groups is None:
        return []
    metric = registry.get(state.header.metric)
    header = replace(state.header, text_bytes=None, text_words=None)  # the text is the whole run's
    rows = []
    for i in groups.order():
        tallies = groups.loss_state(i, state.tallies)
        part = EvalState(header, tallies)
        empty = tallies.n == 0 or tallies.weights_sum_to_zero()
        figures = metric.figures(part)
        if empty:  # no value: its companions are not numbers either (JSON null, TSV nan)
            figures = [
                Figure(f.key, f.label, math.nan, f.meaning, f.in_table) if isinstance(f.value, float) else f
                for f in figures
            ]
        rows.append(
            GroupRow(
                dict(zip(groups.columns, groups.keys[i], strict=True)),
                math.nan if empty else metric.value(part),
                tallies.n,
                figures,
                tallies.ignored,
                tallies.skipped,
                group_quantiles(state, groups.keys[i]),
            )
        )
    return rows


def group_quantiles(state: EvalState, key: tuple[Any, ...]) -> dict[str, Any] | None:
    sketches = state.tallies.group_sketches
    sketch = None if sketches is None else sketches.get(key)
    if sketch is None and sketches is not None:  # a group with only ignored/skipped rows
        from ..state.sketch import LossSketch

        sketch = LossSketch()
    return quantiles_of(sketch, state.header.metric)


def value_text(v: Any) -> str:
    """A key value as text: null as ``null``, and the strings that would read as something else
    quoted (the empty string as ``""``, the string "null" as ``"null"``), so a null key and the
    text "None" or "" never look alike."""
    if v is None:
        return "null"
    if isinstance(v, str) and v in ("", "null"):
        return f'"{v}"'
    return str(v)


def key_text(key: dict[str, Any]) -> str:
    """``lang=de, split=test``; a null key shows as ``null``, the empty string as ``""``."""
    return ", ".join(f"{k}={value_text(v)}" for k, v in key.items())


def failing_groups(
    rows: list[GroupRow], above: float | None, below: float | None, shown: int = 10
) -> tuple[int, list[str]]:
    """--fail-group-above/--fail-group-below: one phrase per failing group (a NaN value, a
    group with nothing scored, fails: it cannot be shown to pass), at most ``shown`` and a count."""
    failing = []
    for row in rows:
        v = row.value
        if above is not None and not v <= above:
            failing.append(f"{key_text(row.key)} ({v!r} > {above!r})")
        elif below is not None and not v >= below:
            failing.append(f"{key_text(row.key)} ({v!r} < {below!r})")
    if len(failing) > shown:
        return len(failing), [*failing[:shown], f"and {len(failing) - shown} more"]
    return len(failing), failing
