"""ce --per-class in a report: rows per class and the most confused pairs, named by class label."""

from __future__ import annotations

from typing import Any

from ..state.evalstate import EvalState


def class_rows(state: EvalState, top: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(per class rows, the ``top`` most confused pairs), classes by their label when they have one;
    a weighted run's rows carry their weight and its pairs are ranked by weight."""
    tally = state.tallies.per_class
    assert tally is not None
    binding = state.header.binding
    labels = binding.labels if binding is not None else None

    def name(c: int) -> int | str:
        return labels[c] if labels is not None else c

    total = float(state.tallies.weight_sum.total()[0])
    weighted = binding is not None and binding.weighted
    rows = [{**r, "class": name(r["class"])} for r in tally.rows(total, weighted)]
    pairs = [
        {**p, "target": name(p["target"]), "predicted": name(p["predicted"])}
        for p in tally.confusions(top, weighted)
    ]
    return rows, pairs
