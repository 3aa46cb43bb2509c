"""From paired tallies to deltas, intervals, p-values and verdicts (Holm-adjusted).

Every figure here is a function of the tallies alone, so a merged comparison state reports what
one run over all the data would.

* ``t``: delta is the weighted mean of d = loss(model) - loss(baseline); its standard error is
  sqrt(s_w^2 / (n_eff - 1)) with s_w^2 = sum w (d - delta)^2 / sum w and the effective sample
  size n_eff = (sum w)^2 / sum w^2 (n unweighted, where this is the textbook s / sqrt(n)), and
  Student's t with n_eff - 1 degrees of freedom gives the interval and the two-sided p-value.
* ``bootstrap``: replicate r's delta is sum P w d / sum P w; the interval is the percentile
  interval, the p-value 2 min(#{delta_r <= 0} + 1, #{delta_r >= 0} + 1) / (B + 1) (at most 1),
  so the verdict agrees with whether the interval holds 0.
  Below ``MIN_BOOTSTRAP_UNITS`` paired units (examples, or sequences when clustered) the
  percentile bootstrap gives no p-value and no verdict (``TOO_FEW``): on so few units its
  replicates take a handful of values and its p-value falls far below what any exact paired
  test allows (on n units the exact sign-flip test's smallest two-sided p is 2^(1-n): 0.25 at
  n = 3, where the bootstrap said 0.002). From that many units on, its p-value is floored at
  2^(1-n) all the same. Intervals need two units (n = 1: none, as the t interval).
* On fewer than two paired units (one example or sequence, a group with a single sequence or
  none) no test exists (G - 1 = 0 degrees of freedom, a single sign flip): every test gives the
  verdict ``TOO_FEW`` with no p-value, as the bootstrap does below its own minimum.
* ``permutation``: T = sum w d against the T_r of sign-flipped d; p = (1 + #{|T_r| >= |T|}) /
  (R + 1). It has no interval of its own: the interval shown is the t interval.

With ``--margin X`` each comparison also gets a one-sided test of H0: delta >= X (non-inferiority),
passed when its Holm-adjusted p-value is below (1 - level) / 2. Unadjusted, that is the same as
the two-sided interval's upper end lying below X (for t and the bootstrap); adjusted, a
comparison may fail with that upper end below X (intervals are not adjusted). The t test's
p = P(T <= (delta - X) / se) is taken from the lower tail itself (``t_sf`` of the negated
statistic), never as 1 - P(T > ...), which rounds every p below 1e-16 to 0.

Holm's step-down adjustment is applied over the comparisons of one report that have a p-value
(each candidate, in each group; the overall comparisons are their own family), to the two-sided
p-values and to the non-inferiority ones separately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..stats.distributions import t_ppf, t_sf
from ..stats.intervals import MIN_BOOTSTRAP_UNITS
from .tallies import PairTallies

F64 = NDArray[np.float64]
WORSE, BETTER, SAME = "worse", "better", "no significant difference"
TOO_FEW = "too few to test"


@dataclass
class Estimate:
    """A mean with its interval (NaN when there are too few examples)."""

    value: float
    low: float
    high: float


@dataclass
class Comparison:
    model: str
    baseline: str
    n: int
    delta: float
    low: float
    high: float
    p_value: float
    test: str
    p_adjusted: float = math.nan
    verdict: str = SAME
    p_noninferiority: float | None = None
    p_noninferiority_adjusted: float | None = None
    noninferior: bool | None = None
    group: tuple[object, ...] | None = None
    #: too few paired units for the test (two for t and permutation, MIN_BOOTSTRAP_UNITS for
    #: the bootstrap): no p-value, verdict TOO_FEW
    too_few: bool = False


def _t_parts(t: PairTallies, g: int, col: int) -> tuple[float, float, float]:
    """(mean, standard error, degrees of freedom) of column ``col`` in group ``g``; clustered by
    sequence: the ratio, its cluster-robust standard error and G - 1."""
    if t.ratios is not None:
        r = t.ratios[g][col]
        return r.ratio, r.standard_error, float(r.g - 1)
    m = t.moments
    w, w2 = float(m.w[g]), float(m.w2[g])
    mean = float(m.mean[g, col]) if w > 0 else math.nan
    n_eff = w * w / w2 if w2 > 0 else 0.0
    if n_eff <= 1.0:
        return mean, math.nan, math.nan
    var = float(m.m2[g, col]) / w
    return mean, math.sqrt(max(var, 0.0) / (n_eff - 1.0)), n_eff - 1.0


def t_interval(t: PairTallies, g: int, col: int, level: float) -> Estimate:
    mean, se, df = _t_parts(t, g, col)
    if math.isnan(se):
        return Estimate(mean, math.nan, math.nan)
    half = t_ppf(0.5 + level / 2.0, df) * se
    return Estimate(mean, mean - half, mean + half)


def _two_sided_t(t: PairTallies, g: int, col: int) -> float:
    mean, se, df = _t_parts(t, g, col)
    if math.isnan(se):
        return math.nan
    if se == 0.0:
        return 1.0 if mean == 0.0 else 0.0
    return min(1.0, 2.0 * t_sf(abs(mean) / se, df))


def units(t: PairTallies, g: int, col: int) -> int:
    """Paired units behind column ``col`` in group ``g``: examples, or sequences when clustered."""
    return t.ratios[g][col].g if t.ratios is not None else int(t.moments.n[g])


def too_few(t: PairTallies, g: int, col: int) -> bool:
    """Column ``col`` in group ``g`` has too few paired units for the test to say anything: below
    MIN_BOOTSTRAP_UNITS for the bootstrap; for the t test no standard error (fewer than two units,
    or weights whose effective sample size is at most 1: zero degrees of freedom); for sign flips
    fewer than two units (one sign flip cannot reject anything)."""
    if t.test == "bootstrap":
        return units(t, g, col) < MIN_BOOTSTRAP_UNITS
    if t.test == "permutation":
        return units(t, g, col) < 2
    return math.isnan(_t_parts(t, g, col)[1])


def replicates(t: PairTallies, g: int, col: int) -> F64:
    """Bootstrap replicates of column ``col``'s weighted mean in group ``g``."""
    r = t.resampled[g]
    with np.errstate(invalid="ignore", divide="ignore"):
        out: F64 = r[:, col] / r[:, -1]
    return out[np.isfinite(out)]


def model_estimate(t: PairTallies, g: int, col: int, level: float) -> Estimate:
    """A model's mean loss with its interval, by the comparison's method."""
    if t.test == "bootstrap":
        reps = replicates(t, g, col)
        mean = float(t.moments.mean[g, col]) if t.moments.w[g] > 0 else math.nan
        if len(reps) < 2 or units(t, g, col) < 2:  # one unit: no interval, as the t interval
            return Estimate(mean, math.nan, math.nan)
        lo, hi = np.quantile(reps, [0.5 - level / 2.0, 0.5 + level / 2.0])
        return Estimate(mean, float(lo), float(hi))
    return t_interval(t, g, col, level)


def compare_one(
    t: PairTallies, g: int, c: int, level: float, margin: float | None
) -> tuple[Estimate, float, float | None]:
    """Candidate ``c`` (1..models-1) against the baseline in group ``g``: (delta with its
    interval, two-sided p-value, one-sided non-inferiority p-value or None)."""
    col = t.models + c - 1
    none = None if margin is None else math.nan
    if t.test == "bootstrap":
        est = model_estimate(t, g, col, level)
        reps = replicates(t, g, col)
        b = len(reps)
        if b == 0 or math.isnan(est.value) or too_few(t, g, col):
            return est, math.nan, none
        below, above = int(np.count_nonzero(reps <= 0.0)), int(np.count_nonzero(reps >= 0.0))
        floor = 2.0 ** (1 - units(t, g, col))  # no paired test on n units can say more
        p = min(1.0, max(2.0 * (min(below, above) + 1) / (b + 1), floor))
        p_ni = None if margin is None else (int(np.count_nonzero(reps >= margin)) + 1) / (b + 1)
        return est, p, p_ni
    est = t_interval(t, g, col, level)
    if too_few(t, g, col):
        return est, math.nan, none
    p_ni = None if margin is None else _noninferiority_t(t, g, col, margin)
    if t.test == "permutation":
        # Monte Carlo sign flips estimate the exact test's p, which is never below 2^(1-n)
        p = max(_permutation_p(t, g, c), 2.0 ** (1 - units(t, g, col)))
        return est, p, None if margin is None else _noninferiority_perm(t, g, c, margin)
    return est, _two_sided_t(t, g, col), p_ni


def _noninferiority_t(t: PairTallies, g: int, col: int, margin: float) -> float:
    mean, se, df = _t_parts(t, g, col)
    if math.isnan(se):
        return math.nan
    if se == 0.0:
        return 0.0 if mean < margin else 1.0
    return t_sf((margin - mean) / se, df)  # P(T <= (mean - margin) / se), from its own tail


def _permutation_p(t: PairTallies, g: int, c: int) -> float:
    m = t.moments
    if m.w[g] <= 0:
        return math.nan
    observed = abs(float(m.mean[g, t.models + c - 1]) * float(m.w[g]))
    flipped = np.abs(t.resampled[g, :, c - 1])
    tol = 1e-12 * max(observed, 1e-300)  # the identity resample equals T up to rounding
    return (int(np.count_nonzero(flipped >= observed - tol)) + 1) / (len(flipped) + 1)


def _noninferiority_perm(t: PairTallies, g: int, c: int, margin: float) -> float:
    m = t.moments
    if m.w[g] <= 0:
        return math.nan
    observed = (float(m.mean[g, t.models + c - 1]) - margin) * float(m.w[g])
    flipped = t.resampled[g, :, c - 1] - margin * t.resampled[g, :, -1]
    tol = 1e-12 * max(abs(observed), 1e-300)
    return (int(np.count_nonzero(flipped <= observed + tol)) + 1) / (len(flipped) + 1)


def holm(p: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count)."""
    idx = [i for i, v in enumerate(p) if not math.isnan(v)]
    m = len(idx)
    order = sorted(idx, key=lambda i: p[i])
    out = [math.nan] * len(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def family(comparisons: list[Comparison]) -> int:
    """How many comparisons Holm's adjustment runs over: those with a p-value (one too few to
    test has none and is no hypothesis tested)."""
    return sum(1 for c in comparisons if not math.isnan(c.p_value))


def settle(comparisons: list[Comparison], level: float, margin: float | None) -> str:
    """Adjust the p-values of one family and give each comparison its verdict; returns the
    adjustment's name ("holm", or "none" when at most one comparison has a p-value, whose
    adjusted p is then its raw one)."""
    alpha = 1.0 - level
    many = family(comparisons) > 1
    adjusted = holm([c.p_value for c in comparisons]) if many else [c.p_value for c in comparisons]
    for c, p in zip(comparisons, adjusted, strict=True):
        c.p_adjusted = p
        significant = not math.isnan(p) and p < alpha
        c.verdict = SAME if not significant else (WORSE if c.delta > 0 else BETTER)
        if c.too_few:
            c.verdict = TOO_FEW
    if margin is not None:
        raw = [math.nan if c.p_noninferiority is None else c.p_noninferiority for c in comparisons]
        ni = holm(raw) if many else raw
        for c, p in zip(comparisons, ni, strict=True):
            c.p_noninferiority_adjusted = p
            c.noninferior = not math.isnan(p) and p < alpha / 2.0
    return "holm" if many else "none"
