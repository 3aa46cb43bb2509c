"""Mergeable moments: weighted per-example moments and cluster ratio moments.

Both are accumulators that ``update`` from numpy chunks (one vectorised pass, no Python loop
over values), ``merge`` associatively (Chan, Golub and LeVeque's pairwise formula for centred
second moments), and turn into plain data for a state file. Long sums (weights, weighted values)
are carried as compensated pairs (hi, lo) so a stream of many chunks keeps float64 accuracy
whatever the chunk size, shard layout or thread count; the centred second moment is computed
per chunk about the chunk's own mean (two passes over data already in cache), so it does not
lose digits to cancellation when the mean is large compared with the spread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
_CANCEL = 1e4  # sum x^2 / m2 above this: the one-pass m2 could lose 1e-12 relative, recentre


def two_sum(a: float, b: float) -> tuple[float, float]:
    """Knuth's error-free sum: a + b == s + e exactly."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def array_two_sum(a: F64, b: F64) -> tuple[F64, F64]:
    """``two_sum`` elementwise on arrays: a + b == s + e exactly (e = 0 where s is not finite),
    the one the state parts' compensated (hi, lo) arrays merge with."""
    with np.errstate(invalid="ignore", over="ignore"):
        s = a + b
        bp = s - a
        err = (a - (s - bp)) + (b - bp)
    err[~np.isfinite(s)] = 0.0
    return s, err


def _add(pair: tuple[float, float], hi: float, lo: float = 0.0) -> tuple[float, float]:
    """Compensated (hi, lo) + (hi2, lo2), renormalised."""
    s, e = two_sum(pair[0], hi)
    return two_sum(s, e + pair[1] + lo)


@dataclass
class Moments:
    """Count, sum of weights, sum of squared weights, weighted mean and centred second moment.

    ``m2`` is sum(w * (x - mean)^2). With unit weights the estimate's variance is
    m2 / (n - 1) / n; with weights it is the weighted variance m2 / sw over the effective sample
    size n_eff = sw^2 / sw2 (Kish), times n_eff / (n_eff - 1) for unbiasedness.
    """

    n: int = 0
    sw: tuple[float, float] = (0.0, 0.0)
    sw2: tuple[float, float] = (0.0, 0.0)
    swx: tuple[float, float] = (0.0, 0.0)
    m2: tuple[float, float] = (0.0, 0.0)
    _buf: F64 = field(default_factory=lambda: np.empty(0), repr=False, compare=False)

    @property
    def weight(self) -> float:
        return self.sw[0] + self.sw[1]

    @property
    def mean(self) -> float:
        w = self.weight
        return (self.swx[0] + self.swx[1]) / w if w > 0.0 else float("nan")

    @property
    def n_eff(self) -> float:
        """Effective sample size (sum w)^2 / sum w^2; equal to n with unit weights."""
        w2 = self.sw2[0] + self.sw2[1]
        return self.weight ** 2 / w2 if w2 > 0.0 else 0.0

    @property
    def variance(self) -> float:
        """Unbiased (for unit weights) variance of one value: m2 / sw * n_eff / (n_eff - 1)."""
        ne = self.n_eff
        if ne <= 1.0:
            return float("nan")
        return (self.m2[0] + self.m2[1]) / self.weight * ne / (ne - 1.0)

    @property
    def standard_error(self) -> float:
        """Standard error of the weighted mean: sqrt(variance / n_eff)."""
        ne = self.n_eff
        return float(np.sqrt(self.variance / ne)) if ne > 1.0 else float("nan")

    def _scratch(self, n: int) -> F64:
        if self._buf.shape[0] < n:
            self._buf = np.empty(max(n, 2 * self._buf.shape[0]))
        return self._buf[:n]

    def update(self, values: F64, weights: F64 | None = None) -> None:
        """Add a chunk of values (float64, finite), with optional non-negative weights."""
        n = int(values.shape[0])
        if n == 0:
            return
        if weights is None:
            sw = float(n)
            sw2 = float(n)
            swx = float(np.sum(values))
            mean = swx / sw
            # one pass, no temporary: sum x^2 - n mean^2, unless it cancels (rel. error ~
            # eps * sxx / m2: above 1e4 the chunk is centred in a second, exact pass)
            sxx = float(np.dot(values, values))
            m2 = sxx - swx * mean
            if not m2 * _CANCEL > sxx:
                np.subtract(values, mean, out=self._scratch(n))
                m2 = float(np.dot(self._buf[:n], self._buf[:n]))
        else:
            sw = float(np.sum(weights))
            if sw <= 0.0:
                self.n += n
                return
            sw2 = float(np.dot(weights, weights))
            swx = float(np.dot(weights, values))
            mean = swx / sw
            buf = self._scratch(n)
            np.subtract(values, mean, out=buf)
            np.multiply(buf, buf, out=buf)
            m2 = float(np.dot(weights, buf))
        self._absorb(n, (sw, 0.0), (sw2, 0.0), (swx, 0.0), (m2, 0.0))

    def _absorb(self, n: int, sw: tuple[float, float], sw2: tuple[float, float],
                swx: tuple[float, float], m2: tuple[float, float]) -> None:
        wa, wb = self.weight, sw[0] + sw[1]
        if wa > 0.0 and wb > 0.0:
            delta = (swx[0] + swx[1]) / wb - self.mean
            cross = delta * delta * wa * wb / (wa + wb)
        else:
            cross = 0.0
        self.n += n
        self.sw = _add(self.sw, *sw)
        self.sw2 = _add(self.sw2, *sw2)
        self.swx = _add(self.swx, *swx)
        self.m2 = _add(_add(self.m2, *m2), cross)

    def merge(self, other: Moments) -> Moments:
        """A new Moments for the union of both streams (associative up to rounding)."""
        out = Moments(self.n, self.sw, self.sw2, self.swx, self.m2)
        out._absorb(other.n, other.sw, other.sw2, other.swx, other.m2)
        return out

    def to_plain(self) -> dict[str, Any]:
        return {"n": self.n, "sw": list(self.sw), "sw2": list(self.sw2),
                "swx": list(self.swx), "m2": list(self.m2)}

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> Moments:
        def pair(key: str) -> tuple[float, float]:
            hi, lo = data[key]
            return float(hi), float(lo)

        return cls(int(data["n"]), pair("sw"), pair("sw2"), pair("swx"), pair("m2"))


@dataclass
class RatioMoments:
    """Moments of cluster totals (y_g, n_g) for the ratio estimator R = sum(y) / sum(n).

    Token figures are such ratios (NLL summed over a sequence's tokens, over its token count),
    and tokens of one sequence are not independent, so the variance is the cluster-robust
    (linearised, "sandwich") one: Var(R) ~ G / (G - 1) * sum_g (y_g - R n_g)^2 / (sum n)^2 over
    G clusters, with G - 1 degrees of freedom. The residual sum is kept mergeable through the
    centred co-moments Cyy, Cyn, Cnn (Chan's formula in two variables), since
    sum (y_g - R n_g)^2 = Cyy - 2 R Cyn + R^2 Cnn exactly when R = ybar / nbar.
    A cluster must be complete when it is added (a sequence is one row; other clusters are
    summed by key first). With n_g = 1 this is the ordinary mean and its s^2 / G.
    """

    g: int = 0
    sy: tuple[float, float] = (0.0, 0.0)
    sn: tuple[float, float] = (0.0, 0.0)
    cyy: tuple[float, float] = (0.0, 0.0)
    cyn: tuple[float, float] = (0.0, 0.0)
    cnn: tuple[float, float] = (0.0, 0.0)
    _buf: F64 = field(default_factory=lambda: np.empty(0), repr=False, compare=False)

    @property
    def ratio(self) -> float:
        sn = self.sn[0] + self.sn[1]
        return (self.sy[0] + self.sy[1]) / sn if sn != 0.0 else float("nan")

    @property
    def residual_ss(self) -> float:
        r = self.ratio
        cyy, cyn, cnn = (sum(p) for p in (self.cyy, self.cyn, self.cnn))
        return max(cyy - 2.0 * r * cyn + r * r * cnn, 0.0)

    @property
    def standard_error(self) -> float:
        """Cluster-robust standard error of the ratio (NaN with fewer than two clusters)."""
        if self.g < 2:
            return float("nan")
        sn = self.sn[0] + self.sn[1]
        return float(np.sqrt(self.g / (self.g - 1.0) * self.residual_ss)) / abs(sn)

    def _scratch(self, n: int) -> tuple[F64, F64]:
        if self._buf.shape[0] < 2 * n:
            self._buf = np.empty(max(2 * n, 2 * self._buf.shape[0]))
        return self._buf[:n], self._buf[n:2 * n]

    def update(self, y: F64, n: F64) -> None:
        """Add complete clusters: ``y`` their totals, ``n`` their sizes (or total weights)."""
        g = int(y.shape[0])
        if g == 0:
            return
        dy, dn = self._scratch(g)
        sy, sn = float(np.sum(y)), float(np.sum(n))
        np.subtract(y, sy / g, out=dy)
        np.subtract(n, sn / g, out=dn)
        cyy, cyn, cnn = float(np.dot(dy, dy)), float(np.dot(dy, dn)), float(np.dot(dn, dn))
        self._absorb(RatioMoments(g, (sy, 0.0), (sn, 0.0), (cyy, 0.0), (cyn, 0.0), (cnn, 0.0)))

    def _absorb(self, o: RatioMoments) -> None:
        ga, gb = self.g, o.g
        if ga > 0 and gb > 0:
            dy = sum(o.sy) / gb - sum(self.sy) / ga
            dn = sum(o.sn) / gb - sum(self.sn) / ga
            f = ga * gb / (ga + gb)
        else:
            dy = dn = f = 0.0
        self.g = ga + gb
        self.sy = _add(self.sy, *o.sy)
        self.sn = _add(self.sn, *o.sn)
        self.cyy = _add(_add(self.cyy, *o.cyy), dy * dy * f)
        self.cyn = _add(_add(self.cyn, *o.cyn), dy * dn * f)
        self.cnn = _add(_add(self.cnn, *o.cnn), dn * dn * f)

    def merge(self, other: RatioMoments) -> RatioMoments:
        out = RatioMoments(self.g, self.sy, self.sn, self.cyy, self.cyn, self.cnn)
        out._absorb(other)
        return out

    def to_plain(self) -> dict[str, Any]:
        return {"g": self.g, "sy": list(self.sy), "sn": list(self.sn), "cyy": list(self.cyy),
                "cyn": list(self.cyn), "cnn": list(self.cnn)}

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> RatioMoments:
        def pair(key: str) -> tuple[float, float]:
            hi, lo = data[key]
            return float(hi), float(lo)

        return cls(int(data["g"]), pair("sy"), pair("sn"), pair("cyy"), pair("cyn"), pair("cnn"))
