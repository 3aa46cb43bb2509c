"""The metrics: one module each (a ``MetricDef`` and its chunk ``Scorer``), listed in
``registry``; ``kernels`` holds the pure loss math and ``checks`` the shared validation."""

from __future__ import annotations

from typing import Any

from .base import Figure, MetricChunk, MetricDef, MetricOption, Scorer
from .checks import (
    BCE_PROB_SHARE,
    LOGPROB_TOLERANCE,
    PREDS,
    PROB_SUM_TOLERANCE,
    PROB_SUM_WARN,
    TARGETS,
)
from .registry import get


def make_metric(name: str, **options: Any) -> Scorer:
    """A fresh chunk scorer of metric ``name`` (``input=``, ``ignore_index=``, ``topk=``, ...)."""
    metric = get(name)
    return metric.scorer({**metric.defaults(), **options})


__all__ = [
    "BCE_PROB_SHARE",
    "LOGPROB_TOLERANCE",
    "PREDS",
    "PROB_SUM_TOLERANCE",
    "PROB_SUM_WARN",
    "TARGETS",
    "Figure",
    "MetricChunk",
    "MetricDef",
    "MetricOption",
    "Scorer",
    "get",
    "make_metric",
]
