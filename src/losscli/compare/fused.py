"""The lean path of ``compare mse|mae`` (t test, no weights, no groups, --nan error): every
model's errors, figures and the paired moments in one fused pass over a chunk.

A plain run reads two files and scores one model; a comparison reads K + 1 and scores K. Going
through each model's ``Evaluator`` would also pay, per model and chunk, for what a comparison
never reports (the worst rows, per-row loss arrays handed to the pairing) and read each model's
losses again for the paired moments. Here, per chunk, with buffers reused across chunks:

* E[k] = pred_k - target (one subtraction per model, in float64), squared (mse) or made
  absolute (mae) in place: each model's losses;
* each model's loss sum (numpy's pairwise sum) and sum of squared losses (a BLAS dot product);
* D[c] = H[c] - H[0] for each candidate, with its sum and sum of squares;
* moments by the one-pass formula m2 = sum x^2 - (sum x)^2 / n, and two passes over the column
  where that would cancel (see ``tallies.ONE_PASS_KEEPS``), so figures stay within ~1e-12.

Chunk 0 goes through the ordinary path (the scorers bind and check shapes there); a chunk
whose sums are not finite goes through it too, so a NaN is reported with its file and row
exactly as a plain run reports it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..metrics.checks import PREDS, TARGETS
from .tallies import ONE_PASS_KEEPS, Moments

F64 = NDArray[np.float64]
METRICS = ("mse", "mae")


class Fused:
    """Per-thread buffers and running moments of the fused pass (``Models.fork`` makes a new one).

    Chunk moments are merged here in Python floats (Chan's formula, the same arithmetic as
    ``Moments.merge`` on one group) and handed to the paired tallies by ``flush``: a numpy merge
    per chunk cost more than the chunk's own reductions.
    """

    def __init__(self, models: int, headline: str) -> None:
        self.k = models
        self.headline = headline  # "mse" (squared errors) or "mae" (absolute errors)
        self.e = np.empty((models, 0))
        self.d = np.empty((models - 1, 0))
        self.n = 0
        self.mean = [0.0] * (2 * models - 1)
        self.m2 = [0.0] * (2 * models - 1)

    def _buffers(self, n: int) -> tuple[F64, F64]:
        if self.e.shape[1] < n:
            self.e = np.empty((self.k, n))
            self.d = np.empty((self.k - 1, n))
        return self.e[:, :n], self.d[:, :n]

    def score(self, models: Any, targets: NDArray[Any], preds: list[Any]) -> bool:
        """Add one chunk to every model's tallies and the paired moments; False (nothing added)
        when a sum is not finite, for the ordinary path to locate the bad value."""
        t = targets.reshape(len(targets))
        n = len(t)
        if n == 0:
            return True
        e, d = self._buffers(n)
        for k, p in enumerate(preds):
            np.subtract(p.reshape(n), t, out=e[k], dtype=np.float64)
        if self.headline == "mse":
            np.multiply(e, e, out=e)  # squared errors
        else:
            np.abs(e, out=e)  # absolute errors
        sums = [float(np.sum(e[k])) for k in range(self.k)]
        if not all(math.isfinite(x) for x in sums):
            return False
        np.subtract(e[1:], e[0], out=d)
        sums += [float(np.sum(d[c])) for c in range(self.k - 1)]
        columns = [*e, *d]
        self._add(n, columns, sums)
        for ev, total in zip(models.evaluators, sums, strict=False):
            _count(ev, n, total)
        return True

    def _add(self, n: int, columns: list[F64], sums: list[float]) -> None:
        """One chunk's moments (one pass: m2 = sum x^2 - (sum x)^2 / n, two where that would
        cancel, see ``tallies.ONE_PASS_KEEPS``), merged into the running ones."""
        total = self.n + n
        for j, x in enumerate(columns):
            s2 = float(np.dot(x, x))
            mean = sums[j] / n
            m2 = s2 - sums[j] * mean
            if not m2 > ONE_PASS_KEEPS * s2:  # heavy cancellation (near-constant values): two passes
                dev = x - mean
                m2 = float(np.dot(dev, dev))
            delta = mean - self.mean[j]
            self.mean[j] += delta * (n / total)
            self.m2[j] += m2 + delta * delta * (self.n * n / total)
        self.n = total

    def flush(self, pairs: Any) -> None:
        """The running moments into the paired tallies (then reset)."""
        if self.n == 0:
            return
        count, w = np.array([self.n]), np.array([float(self.n)])
        chunk = Moments(count, w, w.copy(), np.array([self.mean]), np.array([self.m2]))
        pairs.moments = pairs.moments.merge(chunk)
        self.n = 0
        self.mean = [0.0] * len(self.mean)
        self.m2 = [0.0] * len(self.m2)


def _count(ev: Any, n: int, total: float) -> None:
    """What ``Evaluator._score`` adds for n unweighted single-output rows of loss sum ``total``
    (a comparison's scorers keep no companions, see ``fused_for``)."""
    state = ev.tallies
    state.rows += n
    state.output_sums.add1(total)
    state.weight_sum.add1(float(n))
    state.n += n
    ev.next_row += n


def fused_for(evaluators: list[Any], roles: set[str], test: str) -> Fused | None:
    """The fused pass when this comparison can take it (else None: the ordinary path)."""
    ev = evaluators[0]
    name = ev.metric.name
    if name not in METRICS or test != "t" or ev.nan != "error" or ev.keys is not None:
        return None
    if roles - {PREDS, TARGETS} or any(e.sink is not None or e.seqmap is not None for e in evaluators):
        return None  # weights, ids, pandas indexes, group keys, masks: the ordinary path
    return Fused(len(evaluators), name)


def ready(models: Any) -> bool:
    """The scorers are bound (chunk 0 done) to one output each, as the fused pass needs."""
    return all(ev.tallies is not None and ev.scorer.outputs == 1 for ev in models.evaluators)
