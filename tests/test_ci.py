"""--ci: intervals in the report, equal for any chunking, threads and merged parts; coverage.

References: numpy formulas written here (t interval with tabulated quantiles, Kish's effective
sample size, the cluster-robust ratio variance from per-sequence sums computed with numpy), and
simulations from known distributions whose true mean is known.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import run_cli

import losscli
from losscli.state.files import load_state
from losscli.stats import (
    BootstrapSums,
    Moments,
    RatioMoments,
    example_ids,
    mean_interval,
    percentile_interval,
    ratio_interval,
    t_ppf,
)

T_975_499 = 1.9647293909876886  # scipy.stats.t.ppf(0.975, 499)
T_95_499 = 1.6479129840597124  # scipy.stats.t.ppf(0.95, 499)


@pytest.fixture
def regression(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.normal(size=500)
    p = y + rng.standard_t(5, size=500)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    return tmp_path / "p.npy", tmp_path / "y.npy", p, y


def test_analytic_interval_is_the_t_interval(regression: tuple[Path, Path, np.ndarray, np.ndarray]) -> None:
    pp, yp, p, y = regression
    rep = losscli.evaluate("mse", pp, yp, ci=True)
    sq, ab = (p - y) ** 2, np.abs(p - y)
    for key, x in (("value", sq), ("mae", ab)):
        half = T_975_499 * np.std(x, ddof=1) / math.sqrt(500)
        np.testing.assert_allclose(rep.ci[key], [x.mean() - half, x.mean() + half], rtol=1e-12)
    half = T_975_499 * np.std(sq, ddof=1) / math.sqrt(500)
    np.testing.assert_allclose(rep.ci["rmse"], np.sqrt([sq.mean() - half, sq.mean() + half]), rtol=1e-12)
    assert rep.ci["level"] == 0.95 and rep.ci["method"].startswith("t")
    rep90 = losscli.evaluate("mse", pp, yp, ci=True, ci_level=0.9)
    half = T_95_499 * np.std(sq, ddof=1) / math.sqrt(500)
    np.testing.assert_allclose(rep90.ci["value"], [sq.mean() - half, sq.mean() + half], rtol=1e-12)


def test_weighted_interval_uses_the_effective_sample_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    p, y, w = rng.normal(size=400), rng.normal(size=400), rng.uniform(0, 4, size=400)
    for name, a in (("p", p), ("y", y), ("w", w)):
        np.save(tmp_path / f"{name}.npy", a)
    rep = losscli.evaluate("mae", tmp_path / "p.npy", tmp_path / "y.npy", weights=tmp_path / "w.npy", ci=True)
    x = np.abs(p - y)
    mean = np.sum(w * x) / np.sum(w)
    n_eff = np.sum(w) ** 2 / np.sum(w * w)
    var = np.sum(w * (x - mean) ** 2) / np.sum(w) * n_eff / (n_eff - 1)
    half = t_ppf(0.975, n_eff - 1) * math.sqrt(var / n_eff)  # t_ppf: checked against mpmath
    np.testing.assert_allclose(rep.ci["value"], [mean - half, mean + half], rtol=1e-12)
    assert "n_eff" in rep.ci["method"]


@pytest.mark.parametrize("bootstrap", [0, 200])
def test_same_interval_for_any_chunking_threads_and_merged_parts(
    regression: tuple[Path, Path, np.ndarray, np.ndarray], tmp_path: Path, bootstrap: int
) -> None:
    pp, yp, p, y = regression
    opts = {"ci": True, "bootstrap": bootstrap or None}
    whole = losscli.evaluate("mse", pp, yp, **opts).ci
    for chunk, threads in ((7, 1), (64, 2), (499, 2)):
        other = losscli.evaluate("mse", pp, yp, chunk_size=chunk, threads=threads, **opts).ci
        for key in ("value", "rmse", "mae"):
            np.testing.assert_allclose(other[key], whole[key], rtol=1e-12)
    np.save(tmp_path / "p1.npy", p[:230])
    np.save(tmp_path / "y1.npy", y[:230])
    np.save(tmp_path / "p2.npy", p[230:])
    np.save(tmp_path / "y2.npy", y[230:])
    a, b = str(tmp_path / "a.zip"), str(tmp_path / "b.zip")
    losscli.evaluate("mse", tmp_path / "p1.npy", tmp_path / "y1.npy", save_state=a, **opts)
    losscli.evaluate("mse", tmp_path / "p2.npy", tmp_path / "y2.npy", row_offset=230, save_state=b, **opts)
    merged = load_state(tmp_path / "b.zip").merge(load_state(tmp_path / "a.zip"))
    from losscli.results.report import build_report

    got = build_report(merged).ci
    for key in ("value", "rmse", "mae"):
        np.testing.assert_allclose(got[key], whole[key], rtol=1e-12)
    if bootstrap:
        assert whole["replicates"] == bootstrap and whole["method"].startswith("bootstrap")


def test_bootstrap_interval_matches_a_dense_numpy_bootstrap(
    regression: tuple[Path, Path, np.ndarray, np.ndarray],
) -> None:
    pp, yp, p, y = regression
    rep = losscli.evaluate("mse", pp, yp, bootstrap=300, seed=77)
    from losscli.stats.poisson import poisson_weights  # the weights' definition is tested in test_stats_core

    w = poisson_weights(77, np.arange(500, dtype=np.uint64), 300).astype(float)
    sq = (p - y) ** 2
    reps = (w @ sq) / w.sum(axis=1)
    np.testing.assert_allclose(rep.ci["value"], np.quantile(reps, [0.025, 0.975]), rtol=1e-12)
    assert rep.ci["seed"] == 77


def test_perplexity_interval_is_clustered_by_sequence(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    b, t, v = 40, 25, 11
    z = rng.normal(size=(b, t, v)) * 2
    ids = rng.integers(0, v, size=(b, t))
    ids[rng.random((b, t)) < 0.2] = -100  # padding: sequences of different lengths
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "ids.npy", ids)
    rep = losscli.evaluate("perplexity", tmp_path / "z.npy", tmp_path / "ids.npy", ci=True, chunk_size=13)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    keep = ids != -100
    nll = -np.take_along_axis(logp, np.where(keep, ids, 0)[..., None], -1)[..., 0] * keep
    y, n = nll.sum(1), keep.sum(1).astype(float)
    r = y.sum() / n.sum()
    se = math.sqrt(b / (b - 1) * np.sum((y - r * n) ** 2)) / n.sum()
    half = t_ppf(0.975, b - 1) * se
    np.testing.assert_allclose(rep.ci["cross_entropy"], [r - half, r + half], rtol=1e-11)
    np.testing.assert_allclose(rep.ci["value"], np.exp([r - half, r + half]), rtol=1e-11)
    assert "clustered by sequence" in rep.ci["method"]
    boot = losscli.evaluate(
        "perplexity", tmp_path / "z.npy", tmp_path / "ids.npy", bootstrap=500, chunk_size=7
    )
    lo, hi = boot.ci["cross_entropy"]
    assert lo < r < hi and "sequences" in boot.ci["method"]


def test_cli_outputs_and_refusals(regression: tuple[Path, Path, np.ndarray, np.ndarray]) -> None:
    pp, yp, _p, _y = regression
    tsv = run_cli("mse", pp, yp, "--ci", "-f", "tsv")
    assert tsv.code == 0, tsv.stderr
    header, first, *_ = [line.split("\t") for line in tsv.stdout.splitlines()]
    assert header[-2:] == ["value_low", "value_high"]
    js = run_cli("mse", pp, yp, "--ci", "-f", "json").json()
    assert [float(first[-2]), float(first[-1])] == js["ci"]["value"]
    table = run_cli("mse", pp, yp, "--ci", "-f", "table")
    assert "95% interval" in table.stdout
    plain = run_cli("mse", pp, yp, "-f", "tsv")
    assert "value_low" not in plain.stdout and "ci" not in run_cli("mse", pp, yp, "-f", "json").json()
    for bad in (["--ci", "--ci-level", "1.5"], ["--bootstrap", "3"], ["--seed", "4"]):
        r = run_cli("mse", pp, yp, *bad)
        assert r.code == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stderr


# ---------------------------------------------------------------- coverage (the promise)

def _coverage(draw: object, true: float, sets: int, seed: int, bootstrap: bool) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for k in range(sets):
        x = draw(rng)  # type: ignore[operator]
        if bootstrap:
            acc = BootstrapSums(seed + k, 1000, 2)
            acc.update(example_ids(0, x.size), np.stack([x, np.ones_like(x)], axis=1))
            lo, hi = percentile_interval(acc.ratios(0, 1), 0.95)
        else:
            m = Moments()
            m.update(x)
            lo, hi = mean_interval(m, 0.95)
        hits += lo <= true <= hi
    return hits / sets


@pytest.mark.parametrize("bootstrap", [False, True])
def test_coverage_of_example_means(bootstrap: bool) -> None:
    """400 data sets each: normal errors (MSE's true value 1) and exponential losses (mean 2).
    The percentile bootstrap under-covers skewed means by O(1/sqrt(n)) (about 93% at n = 200),
    so the data sets hold 400 examples; the sampling error of 400 sets is about 1.1%."""
    normal = _coverage(lambda r: r.normal(size=400) ** 2, 1.0, 400, 10, bootstrap)
    skewed = _coverage(lambda r: r.exponential(2.0, size=400), 2.0, 400, 20, bootstrap)
    assert 0.92 <= normal <= 0.98 and 0.92 <= skewed <= 0.98, (normal, skewed)


def _sequences(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """60 sequences of 5-80 tokens whose NLLs share a per-sequence effect (true ratio 2)."""
    lengths = rng.integers(5, 80, size=60)
    effect = rng.normal(0, 0.5, size=60)
    nll = np.array(
        [np.sum(2.0 + e + rng.normal(0, 0.3, size=n)) for e, n in zip(effect, lengths, strict=True)]
    )
    return nll, lengths.astype(float)


@pytest.mark.parametrize("bootstrap", [False, True])
def test_coverage_of_token_figures_clustered_by_sequence(bootstrap: bool) -> None:
    rng = np.random.default_rng(30)
    hits = 0
    for k in range(300):
        nll, tokens = _sequences(rng)
        if bootstrap:
            acc = BootstrapSums(k, 1000, 2)
            acc.update(np.arange(60, dtype=np.uint64), np.stack([nll, tokens], axis=1))
            lo, hi = percentile_interval(acc.ratios(0, 1), 0.95)
        else:
            r = RatioMoments()
            r.update(nll, tokens)
            lo, hi = ratio_interval(r, 0.95)
        hits += lo <= 2.0 <= hi
    assert 0.92 <= hits / 300 <= 0.98, hits / 300
