"""What every metric's Python shortcut shares: argument aliases, a bare float, warnings raised.

A shortcut (``losscli.mse(preds, targets)``) is a typed function in its metric's module; this is
the one body they all call, so they agree on scikit-learn's ``y_pred=``/``y_true=`` keywords and
on raising what ``evaluate`` would record as a warning.
"""

from __future__ import annotations

import warnings
from typing import Any

from ..errors import UsageError

Source = Any  # a path (str or os.PathLike) or an array-like


class LossCliWarning(UserWarning):
    """What ``evaluate`` records in ``Report.warnings``, raised as a Python warning by the
    shortcuts (``mse``, ``bce``, ...), which return a bare float and have nowhere else to say it."""


def pair_shortcut(
    metric: str,
    preds: Source | None,
    targets: Source | None,
    sample_weight: Source | None,
    y_pred: Source | None,
    y_true: Source | None,
    **options: Any,
) -> float:
    """Run a shortcut: predictions first (as torch's losses take them), warnings raised.

    Every shortcut takes ``nan=`` ("error" or "skip"), as ``evaluate`` does: the NaN error's
    hint says ``use nan="skip"``, so the shortcut that raised it must accept it."""
    for name, given, alias, alias_name in (
        ("preds", preds, y_pred, "y_pred"),
        ("targets", targets, y_true, "y_true"),
    ):
        if given is not None and alias is not None:
            raise UsageError(f"give {name} or its alias {alias_name}, not both")
    preds = preds if y_pred is None else y_pred
    targets = targets if y_true is None else y_true
    if preds is None or targets is None:
        raise UsageError(f"{metric} needs both preds and targets (y_pred= and y_true= are accepted too)")
    from ..api import evaluate

    report = evaluate(metric, preds, targets, weights=sample_weight, top=0, **options)
    for text in report.warnings:
        warnings.warn(text, LossCliWarning, stacklevel=3)
    if report.input_detected:
        warnings.warn(
            f'input="auto" read the predictions as {report.input_kind}; '
            f'pass input="{report.input_kind}" to say so and silence this warning',
            LossCliWarning,
            stacklevel=3,
        )
    return report.value
