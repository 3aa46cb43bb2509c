"""The statistics core (losscli.stats) against independent references.

References: exact rational arithmetic (fractions) for moments of small integers; numpy float64
formulas written out here; the t and normal distribution functions against mpmath (40 digits,
computed once and tabulated below) and textbook t-table values; the Poisson bootstrap weights
against a pure-Python re-implementation of the documented hash and a dense numpy product.
"""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction

import numpy as np
import pytest

from losscli.stats import (
    BootstrapSums,
    Moments,
    RatioMoments,
    example_ids,
    file_key,
    mean_interval,
    norm_cdf,
    norm_ppf,
    percentile_interval,
    poisson_weights,
    ratio_interval,
    t_cdf,
    t_ppf,
    transform_interval,
)
from losscli.stats.distributions import t_sf

# (df, t, P(T > t)) and (df, p, t quantile): mpmath 1.3.0 at 40 digits, betainc/bisection
T_SF = [
    (1, 0.5, 0.35241638234956673),
    (1, 1.0, 0.25),
    (1, 2.0, 0.14758361765043327),
    (1, 3.5, 0.088585532782904749),
    (1, 8.0, 0.039583424160565542),
    (2, 0.5, 0.33333333333333333),
    (2, 1.0, 0.21132486540518712),
    (2, 2.0, 0.091751709536136984),
    (2, 3.5, 0.036413675027234668),
    (2, 8.0, 0.0076340360826690691),
    (3, 0.5, 0.3257239824240755),
    (3, 1.0, 0.19550110947788532),
    (3, 2.0, 0.069662984279421588),
    (3, 3.5, 0.0197405188096414),
    (3, 8.0, 0.0020382887938927341),
    (3.5, 0.5, 0.32342521966127551),
    (3.5, 1.0, 0.19066862678172277),
    (3.5, 2.0, 0.063069261287956767),
    (3.5, 3.5, 0.015448617122796765),
    (3.5, 8.0, 0.0011386632223602398),
    (5, 0.5, 0.3191494358204645),
    (5, 1.0, 0.18160873382456131),
    (5, 2.0, 0.050969739414929178),
    (5, 3.5, 0.0086422158926466773),
    (5, 8.0, 0.00024645333028622204),
    (10, 0.5, 0.31394680287148647),
    (10, 1.0, 0.17044656615102994),
    (10, 2.0, 0.036694017385370183),
    (10, 3.5, 0.0028632527149426079),
    (10, 8.0, 5.8874713948330799e-6),
    (29.3, 0.5, 0.3104048345511945),
    (29.3, 1.0, 0.16274901710135531),
    (29.3, 2.0, 0.027422875900221842),
    (29.3, 3.5, 0.00075485947702404468),
    (29.3, 8.0, 3.7180697286017507e-9),
    (100, 0.5, 0.30908678291544329),
    (100, 1.0, 0.15986207789206168),
    (100, 2.0, 0.02410608936556684),
    (100, 3.5, 0.00034821385867813446),
    (100, 8.0, 1.1364324038640403e-12),
    (1000.0, 0.5, 0.30859254041693741),
    (1000.0, 1.0, 0.15877620904233615),
    (1000.0, 2.0, 0.02288517324662582),
    (1000.0, 3.5, 0.00024288717298391612),
    (1000.0, 8.0, 1.7133307411957372e-15),
    (9999, 0.5, 0.30854304021175677),
    (9999, 1.0, 0.15866735337512868),
    (9999, 2.0, 0.022763631680755053),
    (9999, 3.5, 0.00023364234740039582),
    (9999, 8.0, 6.9106767191438224e-16),
    (10000.0, 0.5, 0.30854303966161671),
    (10000.0, 1.0, 0.15866735216521456),
    (10000.0, 2.0, 0.022763630330717721),
    (10000.0, 3.5, 0.000233642245933462),
    (10000.0, 8.0, 6.910604364532691e-16),
    (50000.0, 0.5, 0.30853863892672922),
    (50000.0, 1.0, 0.15865767362660367),
    (50000.0, 2.0, 0.022752831522148715),
    (50000.0, 3.5, 0.00023283148833745273),
    (50000.0, 8.0, 6.3536027632492404e-16),
    (3000000.0, 0.5, 0.30853755706272172),
    (3000000.0, 1.0, 0.15865529425990778),
    (3000000.0, 2.0, 0.022750176940658425),
    (3000000.0, 3.5, 0.00023263245160607876),
    (3000000.0, 8.0, 6.2231502461073356e-16),
    (50000000.0, 0.5, 0.30853753982619104),
    (50000000.0, 1.0, 0.15865525635116428),
    (50000000.0, 2.0, 0.022750134647727559),
    (50000000.0, 3.5, 0.00023262928138888095),
    (50000000.0, 8.0, 6.221091934595556e-16),
]
T_PPF = [
    (1, 0.6, 0.32491969623290625),
    (1, 0.9, 3.0776835371752541),
    (1, 0.975, 12.706204736174693),
    (1, 0.995, 63.656741162871524),
    (1, 0.9995, 636.61924876878973),
    (1, 0.9999999, 3183098.8635132447),
    (2, 0.6, 0.28867513459481282),
    (2, 0.9, 1.885618083164127),
    (2, 0.975, 4.3026527297494618),
    (2, 0.995, 9.9248432009182886),
    (2, 0.9995, 31.599054576445363),
    (2, 0.9999999, 2236.0676426780629),
    (3, 0.6, 0.27667066233268985),
    (3, 0.9, 1.6377443536962103),
    (3, 0.975, 3.1824463052837084),
    (3, 0.995, 5.8409093097333554),
    (3, 0.9995, 12.923978636687964),
    (3, 0.9999999, 222.57159098625124),
    (3.5, 0.6, 0.27326545405577962),
    (3.5, 0.9, 1.5765766051364053),
    (3.5, 0.975, 2.9400886379827288),
    (3.5, 0.995, 5.085702223091257),
    (3.5, 0.9995, 10.20482863165621),
    (3.5, 0.9999999, 117.89280577649427),
    (5, 0.6, 0.26718086570414507),
    (5, 0.9, 1.4758840488244813),
    (5, 0.975, 2.5705818356363148),
    (5, 0.995, 4.0321429835552272),
    (5, 0.9995, 6.8688266258812751),
    (5, 0.9999999, 39.34181962105261),
    (10, 0.6, 0.26018482949208018),
    (10, 0.9, 1.3721836411103358),
    (10, 0.975, 2.2281388519862742),
    (10, 0.995, 3.1692726726169507),
    (10, 0.9995, 4.5868938587027077),
    (10, 0.9999999, 12.492209688254746),
    (29.3, 0.6, 0.25565958997119065),
    (29.3, 0.9, 1.3111205919858127),
    (29.3, 0.975, 2.0443204215001401),
    (29.3, 0.995, 2.7544201716102626),
    (29.3, 0.9995, 3.6552656943310202),
    (29.3, 0.9999999, 6.7454766947493264),
    (100, 0.6, 0.25402218245822776),
    (100, 0.9, 1.2900747613465161),
    (100, 0.975, 1.9839715185235519),
    (100, 0.995, 2.6258905214380176),
    (100, 0.9995, 3.3904913111642636),
    (100, 0.9999999, 5.5869004747069529),
    (1000.0, 0.6, 0.25341451583949871),
    (1000.0, 0.9, 1.2823987214609246),
    (1000.0, 0.975, 1.9623390808264081),
    (1000.0, 0.995, 2.5807546980659508),
    (1000.0, 0.9995, 3.3002826484239442),
    (1000.0, 0.9999999, 5.2359984693922194),
    (9999, 0.6, 0.25335384411983588),
    (9999, 0.9, 1.281636238198314),
    (9999, 0.975, 1.9602012636213573),
    (9999, 0.995, 2.5763210958565974),
    (9999, 0.9995, 3.2915000633009629),
    (9999, 0.9999999, 5.2029840032291241),
    (10000.0, 0.6, 0.25335384344572679),
    (10000.0, 0.9, 1.2816362297304777),
    (10000.0, 0.975, 1.9602012398906259),
    (10000.0, 0.995, 2.5763210466685286),
    (10000.0, 0.9995, 3.2914999659416357),
    (10000.0, 0.9999999, 5.2029836383653237),
    (50000.0, 0.6, 0.2533484511806963),
    (50000.0, 0.9, 1.2815684974683014),
    (50000.0, 0.975, 1.9600114310936797),
    (50000.0, 0.995, 2.5759276380348748),
    (50000.0, 0.9995, 3.2907213365588247),
    (50000.0, 0.9999999, 5.200066438938158),
    (3000000.0, 0.6, 0.25334712560314466),
    (3000000.0, 0.9, 1.2815518477395864),
    (3000000.0, 0.975, 1.9599647752974442),
    (3000000.0, 0.995, 2.5758309423990816),
    (3000000.0, 0.9995, 3.2905299747383839),
    (3000000.0, 0.9999999, 5.1993497284493625),
    (50000000.0, 0.6, 0.25334710448384037),
    (50000000.0, 0.9, 1.2815515824762962),
    (50000000.0, 0.975, 1.9599640319854796),
    (50000000.0, 0.995, 2.575829401879856),
    (50000000.0, 0.9995, 3.2905269260865495),
    (50000000.0, 0.9999999, 5.1993383110587952),
]
NORM_PPF = [
    (1e-12, -7.0344838253011319),
    (1e-05, -4.2648907939228246),
    (0.01, -2.3263478740408411),
    (0.02425, -1.9729610513118848),
    (0.1, -1.2815515655446004),
    (0.3, -0.52440051270804082),
    (0.4999999, -2.5066282747031065e-7),
    (0.5000001, 2.5066282733116483e-7),
    (0.8, 0.84162123357291436),
    (0.975, 1.9599639845400539),
    (0.995, 2.5758293035489005),
    (0.999999999, 5.9978070196016374),
]

# Textbook two-sided 95% / 99% critical values (any t table, 3 decimals)
TEXTBOOK_T = [(1, 0.975, 12.706), (5, 0.975, 2.571), (10, 0.975, 2.228), (30, 0.975, 2.042),
              (120, 0.975, 1.980), (10, 0.995, 3.169), (30, 0.995, 2.750)]


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


# ---------------------------------------------------------------- distributions

@pytest.mark.parametrize(("df", "t", "expected"), T_SF)
def test_t_tail_matches_mpmath(df: float, t: float, expected: float) -> None:
    assert rel(t_sf(t, df), expected) < 1e-12
    assert rel(t_cdf(-t, df), expected) < 1e-12
    assert abs(t_cdf(t, df) - (1.0 - expected)) < 1e-14


@pytest.mark.parametrize(("df", "p", "expected"), T_PPF)
def test_t_quantile_matches_mpmath(df: float, p: float, expected: float) -> None:
    assert rel(t_ppf(p, df), expected) < 1e-12
    assert rel(t_ppf(1.0 - p, df), -expected) < 1e-9  # 1 - p itself is rounded


@pytest.mark.parametrize(("p", "expected"), NORM_PPF)
def test_normal_quantile_matches_mpmath(p: float, expected: float) -> None:
    assert rel(norm_ppf(p), expected) < 1e-13
    assert rel(norm_cdf(expected), p) < 1e-13


@pytest.mark.parametrize(("df", "p", "expected"), TEXTBOOK_T)
def test_t_quantile_textbook_table(df: float, p: float, expected: float) -> None:
    assert round(t_ppf(p, df), 3) == expected


def test_against_scipy_when_installed() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in (1.5, 4.0, 17.0, 250.0, 12345.0, 2e6):
        for p in (0.55, 0.8, 0.975, 0.999):
            assert rel(t_ppf(p, df), float(stats.t.ppf(p, df))) < 1e-12
        for t in (0.3, 1.7, 4.2, 7.5):
            assert rel(t_sf(t, df), float(stats.t.sf(t, df))) < 1e-11


# ---------------------------------------------------------------- moments

def _chunks(n: int, rng: np.random.Generator) -> list[slice]:
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(9, n - 1), replace=False))
    edges = [0, *cuts.tolist(), n]
    return [slice(a, b) for a, b in itertools.pairwise(edges)]


def test_moments_exact_on_small_integers() -> None:
    xs = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]
    ws = [1, 2, 1, 3, 1, 1, 2, 2, 1, 4, 1]
    m = Moments()
    for part in (slice(0, 4), slice(4, 5), slice(5, 11)):
        m.update(np.array(xs[part], float), np.array(ws[part], float))
    sw = sum(map(Fraction, ws))
    mean = sum(Fraction(w * x) for w, x in zip(ws, xs, strict=False)) / sw
    m2 = sum(w * (x - mean) ** 2 for w, x in zip(ws, xs, strict=False))
    assert m.n == len(xs) and m.weight == float(sw)
    assert m.mean == float(mean)
    assert rel(m.m2[0] + m.m2[1], float(m2)) < 1e-15
    assert m.n_eff == float(sw * sw / sum(Fraction(w * w) for w in ws))


def test_moments_weighted_variance_and_chunking() -> None:
    rng = np.random.default_rng(7)
    x = 1e6 + rng.normal(size=20_000)  # a large mean: cancellation would show
    w = rng.uniform(0.1, 3.0, size=x.size)
    ref_mean = np.sum(w * x) / np.sum(w)
    ref_var = np.sum(w * (x - ref_mean) ** 2) / np.sum(w)
    n_eff = np.sum(w) ** 2 / np.sum(w * w)
    ref_se = math.sqrt(ref_var * n_eff / (n_eff - 1) / n_eff)
    parts = []
    for sl in _chunks(x.size, rng):
        p = Moments()
        p.update(x[sl], w[sl])
        parts.append(p)
    left = parts[0]
    for p in parts[1:]:
        left = left.merge(p)
    right = parts[-1]
    for p in reversed(parts[:-1]):
        right = p.merge(right)
    whole = Moments()
    whole.update(x, w)
    for m in (left, right, whole):
        assert rel(m.mean, ref_mean) < 1e-14
        assert rel(m.standard_error, ref_se) < 1e-11
        assert rel(m.n_eff, n_eff) < 1e-13
    unweighted = Moments()
    for sl in _chunks(x.size, rng):
        unweighted.update(x[sl])
    assert rel(unweighted.standard_error, np.std(x, ddof=1) / math.sqrt(x.size)) < 1e-11


def test_moments_plain_roundtrip_through_json() -> None:
    m = Moments()
    m.update(np.array([0.1, 0.2, 0.7]))
    back = Moments.from_plain(json.loads(json.dumps(m.to_plain())))
    assert back == m and back.merge(Moments()) == m


def test_ratio_moments_cluster_robust_variance() -> None:
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 50, size=400).astype(float)
    y = sizes * 2.5 + rng.normal(size=400) * np.sqrt(sizes)
    r_ref = y.sum() / sizes.sum()
    g = y.size
    var_ref = g / (g - 1) * np.sum((y - r_ref * sizes) ** 2) / sizes.sum() ** 2
    acc = RatioMoments()
    for sl in _chunks(g, rng):
        part = RatioMoments()
        part.update(y[sl], sizes[sl])
        acc = acc.merge(part)
    assert rel(acc.ratio, r_ref) < 1e-14
    assert rel(acc.standard_error, math.sqrt(var_ref)) < 1e-10
    back = RatioMoments.from_plain(json.loads(json.dumps(acc.to_plain())))
    assert back == acc


def test_ratio_with_unit_sizes_is_the_mean() -> None:
    x = np.random.default_rng(4).exponential(size=500)
    r = RatioMoments()
    r.update(x, np.ones_like(x))
    assert rel(r.standard_error, np.std(x, ddof=1) / math.sqrt(x.size)) < 1e-12
    iv = ratio_interval(r, 0.95)
    half = 1.9647293909876886 * np.std(x, ddof=1) / math.sqrt(500)  # t_{0.975, 499}, scipy
    assert abs(iv.low - (x.mean() - half)) < 1e-13 and abs(iv.high - (x.mean() + half)) < 1e-13


# ---------------------------------------------------------------- intervals

def test_mean_interval_is_the_textbook_t_interval() -> None:
    x = np.array([2.1, 3.4, 1.9, 5.0, 4.2, 3.3, 2.8, 3.9, 4.4, 3.0, 2.6])  # n = 11
    m = Moments()
    m.update(x)
    iv = mean_interval(m, 0.95)
    half = 2.228138851986274 * np.std(x, ddof=1) / math.sqrt(11)  # t_{0.975, 10}
    assert rel(iv.low, x.mean() - half) < 1e-13 and rel(iv.high, x.mean() + half) < 1e-13
    root = transform_interval(iv, math.sqrt, lower=0.0)
    assert root == (math.sqrt(iv.low), math.sqrt(iv.high))
    assert transform_interval((-1.0, 4.0), math.sqrt, lower=0.0) == (0.0, 2.0)


def test_percentile_interval_matches_numpy_quantile() -> None:
    reps = np.random.default_rng(5).normal(size=999)
    iv = percentile_interval(np.append(reps, np.nan), 0.9)
    assert iv == tuple(np.quantile(reps, [0.05, 0.95]).tolist())


# ---------------------------------------------------------------- Poisson bootstrap

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def _splitmix(x: int) -> int:
    z = (x + GOLDEN) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def _poisson_thresholds() -> list[int]:
    cdf = [sum(math.exp(-1) / math.factorial(i) for i in range(k)) for k in range(1, 9)]
    return [round(65536 * c) for c in cdf]


def reference_weight(seed: int, identity: int, replicate: int) -> int:
    """The documented definition, in Python integers."""
    base = _splitmix(identity ^ _splitmix(seed))
    h = _splitmix((base + (replicate // 4) * GOLDEN) & MASK)
    u = (h >> (16 * (replicate % 4))) & 0xFFFF
    return sum(u >= t for t in _poisson_thresholds())


def test_weights_match_the_documented_hash() -> None:
    ids = np.array([0, 1, 2, 77, 2**40 + 5, 2**64 - 1], dtype=np.uint64)
    w = poisson_weights(12345, ids, 11)
    assert w.shape == (11, 6)
    for b in range(11):
        for i, ident in enumerate(ids.tolist()):
            assert w[b, i] == reference_weight(12345, ident, b)


def test_weights_follow_poisson_one() -> None:
    w = poisson_weights(1, np.arange(50_000, dtype=np.uint64), 40).ravel()
    counts = np.bincount(w, minlength=9)[:9] / w.size
    pmf = np.array([math.exp(-1) / math.factorial(k) for k in range(9)])
    se = np.sqrt(pmf * (1 - pmf) / w.size)
    assert np.all(np.abs(counts - pmf) < 5 * se + 2**-16)
    assert w.max() <= 8
    # replicates of one example, and neighbouring examples, are uncorrelated
    m = poisson_weights(9, np.arange(20_000, dtype=np.uint64), 8).astype(float)
    corr = np.corrcoef(m)
    assert np.max(np.abs(corr - np.eye(8))) < 0.04
    assert abs(np.corrcoef(m[0, :-1], m[0, 1:])[0, 1]) < 0.04


def test_bootstrap_sums_equal_the_dense_product_for_any_chunking() -> None:
    rng = np.random.default_rng(11)
    n, reps = 9_000, 70  # more than one block of examples and of replicate groups
    x = np.stack([rng.exponential(size=n), np.ones(n)], axis=1)
    ids = example_ids(1000, n)
    dense = poisson_weights(2024, ids, reps).astype(np.float64) @ x
    for chunks in ([slice(0, n)], _chunks(n, rng)):
        acc = BootstrapSums(seed=2024, replicates=reps, columns=2)
        for sl in chunks:
            acc.update(ids[sl], x[sl])
        np.testing.assert_allclose(acc.sums, dense, rtol=1e-13)
    halves = [BootstrapSums(2024, reps, 2), BootstrapSums(2024, reps, 2)]
    halves[0].update(ids[:4000], x[:4000])
    halves[1].update(ids[4000:], x[4000:])
    merged = halves[1].merge(halves[0])
    np.testing.assert_allclose(merged.sums, dense, rtol=1e-13)
    back = BootstrapSums.from_plain(merged.to_plain())
    assert np.array_equal(back.sums, merged.sums)
    np.testing.assert_allclose(back.ratios(0, 1), dense[:, 0] / dense[:, 1], rtol=1e-13)
    with pytest.raises(ValueError):
        merged.merge(BootstrapSums(2025, reps, 2))


def test_example_ids_of_sharded_rows() -> None:
    a, b = file_key("/data/part-0.parquet"), file_key("/data/part-1.parquet")
    assert a != b and file_key("/data/part-0.parquet") == a
    ids_a = example_ids(0, 1000, a)
    assert np.unique(ids_a).size == 1000
    assert not set(ids_a.tolist()) & set(example_ids(0, 1000, b).tolist())
    assert np.array_equal(example_ids(500, 500, a), ids_a[500:])
    assert np.array_equal(example_ids(7, 3), np.array([7, 8, 9], dtype=np.uint64))


def test_bootstrap_percentile_interval_of_a_mean() -> None:
    """1,000 Poisson replicates of a mean of 2,000 normals: the percentile interval is close to
    the normal-theory one (mean -/+ 1.96 s / sqrt(n)), within its Monte-Carlo error."""
    x = np.random.default_rng(8).normal(3.0, 2.0, size=2000)
    acc = BootstrapSums(seed=5, replicates=1000, columns=2)
    acc.update(example_ids(0, x.size), np.stack([x, np.ones_like(x)], axis=1))
    lo, hi = percentile_interval(acc.ratios(0, 1), 0.95)
    half = 1.959963984540054 * np.std(x, ddof=1) / math.sqrt(x.size)
    assert abs(lo - (x.mean() - half)) < 0.12 * half
    assert abs(hi - (x.mean() + half)) < 0.12 * half
