"""Interval helpers: t or normal intervals from moments, monotone maps, percentile intervals."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from losscli.stats.distributions import norm_ppf, t_ppf
from losscli.stats.moments import Moments, RatioMoments


class Interval(NamedTuple):
    low: float
    high: float


_NAN = Interval(math.nan, math.nan)


def t_interval(estimate: float, standard_error: float, df: float, level: float) -> Interval:
    """estimate -/+ t_{df, (1+level)/2} * se; a normal quantile when df is infinite."""
    if not (math.isfinite(standard_error) and df > 0.0):
        return _NAN
    q = norm_ppf(0.5 + 0.5 * level) if math.isinf(df) else t_ppf(0.5 + 0.5 * level, df)
    half = q * standard_error
    return Interval(estimate - half, estimate + half)


def mean_interval(m: Moments, level: float) -> Interval:
    """Student t interval of a (weighted) mean, with n_eff - 1 degrees of freedom."""
    return t_interval(m.mean, m.standard_error, m.n_eff - 1.0, level)


def ratio_interval(r: RatioMoments, level: float) -> Interval:
    """Cluster-robust t interval of a ratio sum(y)/sum(n), with G - 1 degrees of freedom."""
    return t_interval(r.ratio, r.standard_error, r.g - 1.0, level)


def transform_interval(iv: tuple[float, float], fn: Callable[[float], float],
                       lower: float | None = None) -> Interval:
    """Map an interval through an increasing function; ``lower`` clips the input first (for
    RMSE = sqrt(MSE) an interval reaching below 0 is clipped to 0 before the square root)."""
    lo, hi = iv
    if lower is not None:
        lo, hi = max(lo, lower), max(hi, lower)
    return Interval(fn(lo), fn(hi))


def percentile_interval(replicates: npt.NDArray[np.float64], level: float) -> Interval:
    """The (1-level)/2 and (1+level)/2 quantiles of the replicate estimates (numpy's linear
    interpolation, Hyndman-Fan type 7); replicates that are NaN (weighed nothing) are dropped."""
    finite = replicates[np.isfinite(replicates)]
    if finite.shape[0] < 2:
        return _NAN
    lo, hi = np.quantile(finite, [0.5 - 0.5 * level, 0.5 + 0.5 * level])
    return Interval(float(lo), float(hi))
