"""Calibration of compare's paired tests, by simulation with fixed seeds (a few seconds).

Under the null (two models whose per-example losses are exchangeable) each test's p-values are
uniform: a Kolmogorov-Smirnov distance from U(0, 1) over 300 simulated pairs below the 1%
critical value 1.63 / sqrt(300) = 0.094. With a known mean difference the rejection rate is the
power a textbook calculation gives, within 0.08 (about 4 binomial standard errors over 300 runs).
The tallies are filled in two parts and merged, as threads and saved parts do.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from losscli.compare.judge import compare_one
from losscli.compare.tallies import PairTallies

RUNS = 300
KS_CRITICAL = 1.63 / math.sqrt(RUNS)


def p_value(losses: np.ndarray, test: str, resamples: int, seed: int) -> float:
    """The two-sided p-value of model 1 against model 0 from per-example losses (n, 2)."""
    n = len(losses)
    half = n // 2
    ids = np.arange(n, dtype=np.int64)
    a = PairTallies(2, test, resamples, seed)
    b = PairTallies(2, test, resamples, seed)
    a.add([losses[:half, 0], losses[:half, 1]], None, ids[:half], None)
    b.add([losses[half:, 0], losses[half:, 1]], None, ids[half:], None)
    return compare_one(a.merge(b), 0, 1, 0.95, None)[1]


def ks_distance(p: np.ndarray) -> float:
    p = np.sort(p)
    k = np.arange(1, len(p) + 1)
    return float(max(np.max(k / len(p) - p), np.max(p - (k - 1) / len(p))))


def norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


@pytest.mark.parametrize(
    ("test", "n", "resamples"), [("t", 40, 0), ("bootstrap", 80, 199), ("permutation", 30, 199)]
)
def test_p_values_uniform_under_the_null(test: str, n: int, resamples: int) -> None:
    rng = np.random.default_rng(2024)
    ps = []
    for run in range(RUNS):
        losses = rng.exponential(size=(n, 2))  # skewed losses, exchangeable between the models
        ps.append(p_value(losses, test, resamples, seed=run))
    assert ks_distance(np.array(ps)) < KS_CRITICAL


@pytest.mark.parametrize(("test", "resamples"), [("t", 0), ("bootstrap", 199), ("permutation", 199)])
def test_power_of_a_known_difference(test: str, resamples: int) -> None:
    """d ~ N(0.4, 1) on 50 examples: power of the two-sided 5% test is Phi(0.4 sqrt(50) - 1.96)
    + Phi(-0.4 sqrt(50) - 1.96) = 0.807 (normal approximation; the t test's exact power 0.79)."""
    rng = np.random.default_rng(99)
    n, shift = 50, 0.4
    lam = shift * math.sqrt(n)
    textbook = norm_cdf(lam - 1.959964) + norm_cdf(-lam - 1.959964)
    hits = 0
    for run in range(RUNS):
        base = rng.normal(size=n)
        losses = np.stack([base, base + shift + rng.normal(size=n)], axis=1)
        hits += p_value(losses, test, resamples, seed=run) < 0.05
    assert abs(hits / RUNS - textbook) < 0.08
