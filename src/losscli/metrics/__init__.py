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
    """A fresh chunk scorer of metric ``name`` (``input=``, ``ignore_index=``, ``topk=``, ...).

    The options are ``evaluate``'s names for them, checked as ``evaluate`` checks them: a
    keyword the metric does not have (``input_kind=``, a typo) is a UsageError listing the
    ones it has, not an option silently ignored."""
    from ..errors import UsageError
    from ..wording import in_api_words

    metric = get(name)
    known = {o.name: o for o in metric.options}
    unknown = [k for k in options if k not in known]
    if unknown:
        has = ", ".join(known) or "none"
        raise UsageError(f"{', '.join(unknown)}: not an option of {metric.name} (its options: {has})")
    try:
        for key, value in options.items():
            known[key].check(value)
    except UsageError as exc:
        raise UsageError(in_api_words(str(exc))) from None
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
