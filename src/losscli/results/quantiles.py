"""The distribution of per-example losses in a report: quantiles (and the histogram's bins)
from the state's sketch (state/sketch.py), overall and per group.

JSON ``quantiles``: {"of", "p50", "p90", "p99", "max", "relative_error"}; the table's
"loss p50" ... rows; TSV's ``loss_p50`` ... columns, last, so existing columns keep their places.
"""

from __future__ import annotations

import math
from typing import Any

from ..state.sketch import PERCENTILES, RELATIVE_ERROR, LossSketch

#: (key, table label, meaning) of each quantile, in order
QUANTILE_ROWS = (
    *((f"p{p}", f"loss p{p}", f"{p}% of the losses are at or below this (±0.4%)") for p in PERCENTILES),
    ("max", "loss max", "the largest per-example loss (exact)"),
)
#: the delimited formats' columns
COLUMNS = tuple(f"loss_{key}" for key, _, _ in QUANTILE_ROWS)


def quantiles_of(sketch: LossSketch | None, metric: str) -> dict[str, Any] | None:
    """The quantiles a report shows; None for a state saved before sketches existed."""
    if sketch is None:
        return None
    values = sketch.quantiles()
    top = sketch.max if sketch.n else math.nan
    out: dict[str, Any] = {"of": "per-token loss (nats)" if metric == "perplexity" else "per-example loss"}
    out.update({key: v for (key, _, _), v in zip(QUANTILE_ROWS, [*values, top], strict=True)})
    out["relative_error"] = RELATIVE_ERROR
    return out


def json_quantiles(q: dict[str, Any] | None) -> dict[str, Any] | None:
    """Non-finite values as null, as every JSON number of a report."""
    if q is None:
        return None
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in q.items()}


def missing_warning() -> str:
    return (
        "this state was saved by a losscli without loss quantiles (or merged with one): no "
        "quantiles or histogram; re-run the parts with this version to see them"
    )


def json_tree(value: Any) -> Any:
    """Nested dicts and lists with non-finite floats as null (an empty bin's mean is NaN)."""
    if isinstance(value, dict):
        return {k: json_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_tree(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
