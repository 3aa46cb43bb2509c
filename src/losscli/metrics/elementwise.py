"""Scorers for losses of one (prediction, target) element: 1-D values or (N, k) multi-output.

``RegressionScorer`` is the shared engine of every loss that is a function of the error
e = prediction - target: one subtraction serves the headline and its companions (MSE and MAE
beside each other), so a regression metric declares only its headline from (e, e^2, |e|).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataProblem
from . import kernels as K
from .base import MetricChunk, Scorer
from .checks import PREDS, TARGETS, cell, need_targets, squeeze_single, width

F64 = NDArray[np.float64]


class ElementwiseScorer(Scorer):
    """Shapes: predictions and targets of the same width, one value or k per row."""

    def bind(self, preds: NDArray[Any], targets: NDArray[Any] | None) -> None:
        p, t = squeeze_single(preds), squeeze_single(need_targets(targets))
        if p.ndim != t.ndim or (p.ndim == 2 and p.shape[1] != t.shape[1]):
            raise DataProblem(
                TARGETS,
                None,
                f"targets have {width(t)} value(s) per row but predictions have {width(p)}; "
                "pick matching columns with --pred-col/--target-col",
                against=PREDS,
            )
        if p.ndim > 2:
            raise DataProblem(PREDS, None, f"{self.name} takes 1-D values or (N, k) arrays, not {p.ndim}-D")
        if p.ndim == 2 and p.shape[1] == 0:
            raise DataProblem(PREDS, None, "has rows with no values in them")
        self.outputs = 1 if p.ndim == 1 else p.shape[1]

    def describe(
        self,
        preds: NDArray[Any],
        targets: NDArray[Any] | None,
        rows: NDArray[np.intp],
        chunk: MetricChunk,
    ) -> list[tuple[Any, ...]]:
        p, t = squeeze_single(preds), squeeze_single(need_targets(targets))
        return [(cell(p[r]), cell(t[r])) for r in rows]


class RegressionScorer(ElementwiseScorer):
    """A loss of the error e: the headline from (e, e^2, |e|), MSE and MAE as companions.

    ``companions`` names the per-example means reported beside the headline ("mse", "mae").
    """

    def __init__(self, name: str, companions: tuple[str, ...]) -> None:
        super().__init__(name)
        self.companions = companions

    @abstractmethod
    def headline(self, diff: F64, sq: F64, ab: F64) -> F64:
        """Per-element losses (the same shape as ``diff``); may return ``sq`` or ``ab`` itself."""

    def compute(
        self, preds: NDArray[Any], targets: NDArray[Any] | None, overwrite: bool = False
    ) -> MetricChunk:
        p, t = squeeze_single(preds), squeeze_single(need_targets(targets))
        shape = p.shape
        diff = self.scratch.get("diff", shape, np.float64)
        sq = self.scratch.get("sq", shape, np.float64)
        ab = self.scratch.get("abs", shape, np.float64)
        K.regression_errors(p, t, diff, sq, ab)
        head = self.headline(diff, sq, ab)
        elements = {"mse": sq, "mae": ab}
        if self.outputs == 1:
            return MetricChunk(head, companions={c: elements[c] for c in self.companions})
        out = self.scratch.get("loss", (shape[0],), np.float64)
        np.mean(head, axis=1, out=out)
        companions = {}
        for c in self.companions:
            mean = self.scratch.get(f"mean_{c}", (shape[0],), np.float64)
            np.mean(elements[c], axis=1, out=mean)
            companions[c] = mean
        return MetricChunk(out, elements=head, companions=companions)
