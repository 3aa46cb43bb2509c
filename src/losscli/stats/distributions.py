"""Standard normal and Student t distribution functions, without scipy.

The default install has numpy and no scipy, and an interval needs only a few quantiles and a
paired test a few tail probabilities, so these are scalar functions in plain Python floats:

- normal: ``math.erfc`` for the cdf (relative accuracy in the tails), Acklam's rational
  approximation refined by two Halley steps for the quantile (~1e-15 relative).
- Student t: the cdf is the regularised incomplete beta function ``I_x(df/2, 1/2)`` with
  ``x = df / (df + t^2)``, by its continued fraction (modified Lentz); log-beta for large
  arguments uses Stirling's series with ``log1p`` so large degrees of freedom (50M examples) keep
  ~1e-13 relative accuracy. The quantile is the Cornish-Fisher expansion (A&S 26.7.5) for
  df >= 1e4 (error O(df^-5)) and otherwise a bracketed Newton iteration on the tail.
  Degrees of freedom may be fractional (an effective sample size minus one).
"""

from __future__ import annotations

import math

_SQRT2 = math.sqrt(2.0)
_LN_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_EPS = 1e-16
_TINY = 1e-300
_LARGE_DF = 1e4  # above: Cornish-Fisher expansion, error O(df^-5)

_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
      1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
      6.680131188771972e01, -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
      -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
      3.754408661907416e00)


def norm_cdf(x: float) -> float:
    """P(Z <= x) for a standard normal Z, accurate relative to the value in the lower tail."""
    return 0.5 * math.erfc(-x / _SQRT2)


def norm_sf(x: float) -> float:
    """P(Z > x), accurate relative to the value in the upper tail (for small p-values)."""
    return 0.5 * math.erfc(x / _SQRT2)


def _acklam(p: float) -> float:
    """Acklam's approximation of the lower-tail normal quantile (relative error < 1.2e-9)."""
    if p < 0.02425:
        q = math.sqrt(-2.0 * math.log(p))
        num = ((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]
        return num / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0)
    q = p - 0.5
    r = q * q
    num = (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
    return num / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0)


def norm_ppf(p: float) -> float:
    """The standard normal quantile: the x with P(Z <= x) = p, for 0 < p < 1."""
    if not 0.0 < p < 1.0:
        if p == 0.0:
            return -math.inf
        if p == 1.0:
            return math.inf
        raise ValueError(f"norm_ppf: p must be in [0, 1], got {p}")
    if abs(p - 0.5) < 0.47575:
        return _norm_ppf_central(p)
    if p > 0.5:
        return -norm_ppf(1.0 - p)
    x = _acklam(p)
    for _ in range(2):  # Halley steps on the lower tail, where norm_cdf is relatively accurate
        e = norm_cdf(x) - p
        u = e * math.sqrt(2.0 * math.pi) * math.exp(0.5 * x * x)
        x = x - u / (1.0 + 0.5 * x * u)
    return x


def _norm_ppf_central(p: float) -> float:
    """Central quantiles, refined on erf so p near 1/2 keeps its relative digits in x."""
    x = _acklam(p) if p <= 0.5 else -_acklam(1.0 - p)
    d = p - 0.5  # exact (Sterbenz)
    for _ in range(2):
        e = 0.5 * math.erf(x / _SQRT2) - d
        u = e * math.sqrt(2.0 * math.pi) * math.exp(0.5 * x * x)
        x = x - u / (1.0 + 0.5 * x * u)
    return x


def _stirling_corr(x: float) -> float:
    """lgamma(x) - ((x - 0.5) ln x - x + ln sqrt(2 pi)), for x >= 10 (error < 1e-15)."""
    r = 1.0 / (x * x)
    return (1.0 / 12 - r * (1.0 / 360 - r * (1.0 / 1260 - r * (1.0 / 1680 - r / 1188)))) / x


def _lbeta(a: float, b: float) -> float:
    """ln B(a, b), without the cancellation of lgamma sums when an argument is large."""
    small, big = (a, b) if a <= b else (b, a)
    if big < 10.0:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    if small < 10.0:
        # lgamma(big) - lgamma(big + small) by Stirling, with log1p for the near-cancelling logs
        diff = (-(big - 0.5) * math.log1p(small / big) - small * math.log(big + small) + small
                + _stirling_corr(big) - _stirling_corr(big + small))
        return math.lgamma(small) + diff
    return (_LN_SQRT_2PI + (a - 0.5) * math.log(a) + (b - 0.5) * math.log(b)
            - (a + b - 0.5) * math.log(a + b)
            + _stirling_corr(a) + _stirling_corr(b) - _stirling_corr(a + b))


def _betacf(x: float, a: float, b: float) -> float:
    """The continued fraction of I_x(a, b) (Numerical Recipes' betacf, modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    max_iter = 300 + int(30.0 * math.sqrt(max(a, b)))
    for m in range(1, max_iter + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        c = 1.0 + aa / c
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        c = 1.0 + aa / c
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = c if abs(c) > _TINY else _TINY
        step = d * c
        h *= step
        if abs(step - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta did not converge (a={a}, b={b}, x={x})")


def betainc(x: float, y: float, a: float, b: float) -> float:
    """The regularised incomplete beta I_x(a, b); ``y`` is 1 - x, passed in to keep its digits."""
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    ln_x = math.log1p(-y) if x > 0.5 else math.log(x)
    ln_y = math.log1p(-x) if y > 0.5 else math.log(y)
    front = math.exp(a * ln_x + b * ln_y - _lbeta(a, b))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(x, a, b) / a
    return 1.0 - front * _betacf(y, b, a) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (relatively accurate for t > 0)."""
    if df <= 0.0 or math.isnan(df):
        raise ValueError(f"t distribution: df must be positive, got {df}")
    if math.isinf(df) or df > 1e12:
        return norm_sf(t)
    if df >= _LARGE_DF:
        return norm_sf(_t_to_z(t, df))
    t2 = t * t
    tail = 0.5 * betainc(df / (df + t2), t2 / (df + t2), 0.5 * df, 0.5)
    return tail if t >= 0.0 else 1.0 - tail


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    return t_sf(-t, df)


def _t_pdf(t: float, df: float) -> float:
    return math.exp(-0.5 * math.log(df) - _lbeta(0.5 * df, 0.5)
                    - 0.5 * (df + 1.0) * math.log1p(t * t / df))


def _cornish_fisher(z: float, df: float) -> float:
    """Student t quantile from the normal one (Abramowitz & Stegun 26.7.5), error O(df^-5)."""
    z2 = z * z
    g1 = (z2 + 1.0) * z / 4.0
    g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0
    g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0
    g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0
    return z + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df


def _t_to_z(t: float, df: float) -> float:
    """The z with norm_sf(z) = t_sf(t, df): the Cornish-Fisher map inverted by Newton steps.

    For large df the continued fraction needs ~sqrt(df) steps and gathers rounding; the
    expansion's error is O(df^-5) instead (below 1e-20 at df = 1e4).
    """
    z = t
    for _ in range(50):
        z2 = z * z
        slope = 1.0 + (3.0 * z2 + 1.0) / (4.0 * df) + (25.0 * z2 * z2 + 48.0 * z2 + 3.0) / (96.0 * df * df)
        step = (t - _cornish_fisher(z, df)) / slope
        z += step
        if abs(step) <= 1e-17 * max(abs(z), 1e-300):
            break
    return z


def t_ppf(p: float, df: float) -> float:
    """The Student t quantile: the t with P(T <= t) = p."""
    if not 0.0 < p < 1.0:
        if p in (0.0, 1.0):
            return math.inf if p == 1.0 else -math.inf
        raise ValueError(f"t_ppf: p must be in [0, 1], got {p}")
    if df <= 0.0 or math.isnan(df):
        raise ValueError(f"t distribution: df must be positive, got {df}")
    if p < 0.5:
        return -t_ppf(1.0 - p, df)
    if p == 0.5:
        return 0.0
    q = 1.0 - p
    if df == 1.0:
        return 1.0 / math.tan(math.pi * q)
    if df == 2.0:
        return (2.0 * p - 1.0) / math.sqrt(2.0 * p * q)
    if math.isinf(df) or df >= _LARGE_DF:
        return _cornish_fisher(norm_ppf(p), df) if not math.isinf(df) else norm_ppf(p)
    return _t_newton(q, df)


def _t_newton(q: float, df: float) -> float:
    """Solve t_sf(t) = q for t > 0: Newton steps kept inside a bracket, bisection as fallback."""
    t = max(_cornish_fisher(norm_ppf(1.0 - q), df), 1e-3)
    lo, hi = 0.0, t
    while t_sf(hi, df) > q:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        excess = t_sf(t, df) - q  # > 0 when t is too small
        if excess > 0.0:
            lo = max(lo, t)
        else:
            hi = min(hi, t)
        step = excess / _t_pdf(t, df)
        new = t + step
        if not lo < new < hi:
            new = 0.5 * (lo + hi)
        if abs(new - t) <= 1e-15 * abs(new) or hi - lo <= 1e-15 * hi:
            return new
        t = new
    return t
