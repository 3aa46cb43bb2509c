"""compare mse|mae's fused pass (compare/fused.py): the same figures as numpy float64
references and as the ordinary path (taken with a weights file of ones), for any chunk size
and thread count; a NaN after the first chunk is reported with its file and row."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from losscli.compare.api import compare
from losscli.compare.fused import Fused
from test_compare import close, run_cli, t_sf_ref
from test_compare import t_ppf_ref as t_ppf_slow

t_ppf_ref = functools.lru_cache(maxsize=None)(t_ppf_slow)


@pytest.fixture
def big(tmp_path):
    rng = np.random.default_rng(17)
    n = 20_000
    y = rng.normal(50, 10, size=n)  # a large mean beside the spread: the one-pass sums must not cancel
    a = y + rng.normal(size=n)
    b = y + 0.98 * rng.normal(size=n)
    for name, v in (("y", y), ("a", a), ("b", b), ("ones", np.ones(n))):
        np.save(tmp_path / f"{name}.npy", v)
    return tmp_path, y, a, b


def files(d) -> tuple[str, list[str]]:
    return str(d / "y.npy"), [str(d / "a.npy"), str(d / "b.npy")]


@pytest.mark.parametrize("metric", ["mse", "mae"])
@pytest.mark.parametrize(("chunk_size", "threads"), [(5000, 1), (997, 1), (1500, 2)])
def test_fused_matches_float64_reference(big, metric, chunk_size, threads, monkeypatch):
    d, y, a, b = big
    chunks = []
    score = Fused.score
    monkeypatch.setattr(Fused, "score", lambda self, *args: chunks.append(1) or score(self, *args))
    loss = (lambda p: (p - y) ** 2) if metric == "mse" else (lambda p: np.abs(p - y))
    la, lb = loss(a), loss(b)
    diff = lb - la
    n = len(y)
    report = compare(metric, *files(d), chunk_size=chunk_size, threads=threads)
    c = report.comparisons[0]
    assert chunks  # the fused pass scored every chunk after the first
    assert close(c.delta, float(np.mean(diff)))
    se = float(np.std(diff, ddof=1)) / math.sqrt(n)
    half = t_ppf_ref(0.975, n - 1) * se
    assert math.isclose(c.high - c.low, 2 * half, rel_tol=1e-7)
    assert math.isclose(c.p_value, 2 * t_sf_ref(abs(float(np.mean(diff))) / se, n - 1), rel_tol=1e-7)
    for row, losses in zip(report.models, (la, lb), strict=True):
        assert close(row.value, float(np.mean(losses))) and row.n == n
        se_m = float(np.std(losses, ddof=1)) / math.sqrt(n)
        assert math.isclose(row.high - row.low, 2 * t_ppf_ref(0.975, n - 1) * se_m, rel_tol=1e-7)
    # the ordinary path (a weights file takes it) gives the same figures
    plain = compare(metric, *files(d), weights=str(d / "ones.npy"), chunk_size=chunk_size, threads=threads)
    p = plain.comparisons[0]
    for x, z in ((c.delta, p.delta), (c.low, p.low), (c.high, p.high), (c.p_value, p.p_value)):
        assert close(x, z, 1e-11)
    for x, z in zip(report.models, plain.models, strict=True):
        assert close(x.value, z.value) and close(x.low, z.low, 1e-11) and close(x.high, z.high, 1e-11)


def test_near_constant_differences_keep_their_variance(tmp_path):
    """B = A + 1e-7 on every row: the differences have a tiny spread around a mean far from 0,
    where sum d^2 - (sum d)^2 / n cancels; the two-pass fallback keeps the variance."""
    rng = np.random.default_rng(5)
    n = 5000
    y = rng.normal(size=n)
    a = y + 3.0 + rng.normal(scale=1e-3, size=n)
    b = a + 1e-7
    for name, v in (("y", y), ("a", a), ("b", b)):
        np.save(tmp_path / f"{name}.npy", v)
    c = compare(
        "mse", str(tmp_path / "y.npy"), [str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]
    ).comparisons[0]
    diff = (b - y) ** 2 - (a - y) ** 2
    se = float(np.std(diff, ddof=1)) / math.sqrt(n)
    assert close(c.delta, float(np.mean(diff)), 1e-9)
    assert math.isclose((c.high - c.low) / 2, t_ppf_ref(0.975, n - 1) * se, rel_tol=1e-6)


def test_nan_after_the_first_chunk_names_file_and_row(big, capsys):
    d, _y, _a, b = big
    bad = b.copy()
    bad[12_345] = np.nan
    np.save(d / "bad.npy", bad)
    code, out, err = run_cli(
        ["compare", "mse", str(d / "y.npy"), str(d / "a.npy"), str(d / "bad.npy"), "--chunk-size", "1000"],
        capsys,
    )
    assert code == 3 and out == ""
    assert "bad.npy" in err and "12345" in err
