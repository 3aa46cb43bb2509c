"""Float64 references written from the lesson's formulas, independent of losscli's code.

Each uses math.fsum (exactly rounded sums) and plain per-row Python, so agreement with the
vectorised, chunked engine is a real check rather than the engine compared with itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _mean(terms: Sequence[float], weights: Sequence[float] | None = None) -> float:
    if weights is None:
        return math.fsum(terms) / len(terms)
    return math.fsum(w * t for w, t in zip(weights, terms, strict=True)) / math.fsum(weights)


def mse(p: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> float:
    p, y = np.asarray(p, np.float64), np.asarray(y, np.float64)
    if p.ndim == 2:  # uniform average over outputs
        return math.fsum(mse(p[:, j], y[:, j], w) for j in range(p.shape[1])) / p.shape[1]
    return _mean(
        [(a - b) ** 2 for a, b in zip(p.tolist(), y.tolist(), strict=True)], None if w is None else w.tolist()
    )


def mae(p: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> float:
    p, y = np.asarray(p, np.float64), np.asarray(y, np.float64)
    if p.ndim == 2:
        return math.fsum(mae(p[:, j], y[:, j], w) for j in range(p.shape[1])) / p.shape[1]
    return _mean(
        [abs(a - b) for a, b in zip(p.tolist(), y.tolist(), strict=True)], None if w is None else w.tolist()
    )


def bce_probs(p: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> float:
    terms = []
    for a, b in zip(np.asarray(p, np.float64).tolist(), np.asarray(y, np.float64).tolist(), strict=True):
        lp = max(math.log(a), -100.0) if a > 0 else -100.0
        l1p = max(math.log1p(-a), -100.0) if a < 1 else -100.0
        terms.append(-(b * lp + (1 - b) * l1p))
    return _mean(terms, None if w is None else w.tolist())


def bce_logits(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> float:
    """Via the sigmoid, for moderate logits: -(y log s + (1-y) log(1-s))."""
    terms = []
    for a, b in zip(np.asarray(x, np.float64).tolist(), np.asarray(y, np.float64).tolist(), strict=True):
        log_s = -math.log1p(math.exp(-a))  # log sigmoid(a)
        log_1ms = -math.log1p(math.exp(a))  # log(1 - sigmoid(a))
        terms.append(-(b * log_s + (1 - b) * log_1ms))
    return _mean(terms, None if w is None else w.tolist())


def log_softmax_row(z: Sequence[float]) -> list[float]:
    m = max(z)
    lse = m + math.log(math.fsum(math.exp(v - m) for v in z))
    return [v - lse for v in z]


def ce_logits(z: np.ndarray, t: np.ndarray, w: np.ndarray | None = None, ignore: int = -100) -> float:
    z64 = np.asarray(z, np.float64)
    terms, ws = [], []
    for i, row in enumerate(z64.tolist()):
        ti = np.asarray(t)[i]
        if np.ndim(ti) == 0 and int(ti) == ignore:
            continue
        ls = log_softmax_row(row)
        if np.ndim(ti) == 0:
            terms.append(-ls[int(ti)])
        else:
            terms.append(
                -math.fsum(q * v for q, v in zip(np.asarray(ti, np.float64).tolist(), ls, strict=True) if q)
            )
        ws.append(1.0 if w is None else float(w[i]))
    return _mean(terms, ws)


def ce_probs(p: np.ndarray, t: np.ndarray) -> float:
    p64 = np.asarray(p, np.float64)
    return math.fsum(-math.log(p64[i, int(k)]) for i, k in enumerate(np.asarray(t).tolist())) / len(p64)
