"""What every metric's Python shortcut shares: argument aliases, a bare float, warnings raised.

A shortcut (``losscli.mse(preds, targets)``) is a typed function in its metric's module; this is
the one body they all call, so they agree on scikit-learn's ``y_pred=``/``y_true=`` keywords and
on raising what ``evaluate`` would record as a warning.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any, Protocol, TypeAlias

from numpy.typing import ArrayLike

from ..errors import UsageError


class SupportsArrowStream(Protocol):
    """A table exporting the Arrow PyCapsule stream (pandas >= 2.2, Polars, pyarrow, DuckDB)."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...


class SupportsArrowArray(Protocol):
    """A record batch exporting the Arrow PyCapsule array interface."""

    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple[object, object]: ...


class SupportsDataFrame(Protocol):
    """A table exporting the dataframe interchange protocol (``__dataframe__``)."""

    def __dataframe__(self, nan_as_null: bool = False, allow_copy: bool = True) -> object: ...


#: What an input may be: a path (``"-"`` for stdin); an array (numpy, a list, a torch tensor:
#: anything numpy reads); a table read by column name (pandas and Polars DataFrames, pyarrow
#: Tables and RecordBatches, any Arrow stream or interchange object); or a dict of column name
#: -> 1-D array. Written with protocols, so no DataFrame library is imported to name it.
Source: TypeAlias = (
    str
    | os.PathLike[str]
    | ArrayLike
    | SupportsArrowStream
    | SupportsArrowArray
    | SupportsDataFrame
    | Mapping[str, ArrayLike]
)


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
