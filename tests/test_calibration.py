"""--calibration (issue 14): reliability bins, ECE, MCE and Brier for bce and ce, against float64
numpy references written as torchmetrics bins (``bucketize(right=True) - 1``) and scikit-learn's
``brier_score_loss`` computes; checked against the libraries themselves by
benchmarks/calibration_check.py (torch, torchmetrics, scikit-learn in a separate environment)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import losscli

from conftest import run_cli


def tm_bins(conf: np.ndarray, n_bins: int) -> np.ndarray:
    """torchmetrics' _binning_bucketize: bucketize(conf, linspace(0, 1, n+1), right=True) - 1, clamped."""
    edges = np.linspace(0, 1, n_bins + 1)
    return np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)


def reference(conf: np.ndarray, acc: np.ndarray, n_bins: int, w: np.ndarray | None = None) -> dict:
    """torchmetrics' _ce_compute (norm l1 and max), weighted by sample weights when given."""
    w = np.ones(len(conf)) if w is None else w
    b = tm_bins(conf, n_bins)
    ece, mce, rows = 0.0, 0.0, []
    for k in range(n_bins):
        m = b == k
        if not m.any() or w[m].sum() == 0:
            rows.append((int(m.sum()), np.nan, np.nan))
            continue
        c = np.average(conf[m], weights=w[m])
        a = np.average(acc[m], weights=w[m])
        ece += w[m].sum() / w.sum() * abs(a - c)
        mce = max(mce, abs(a - c))
        rows.append((int(m.sum()), c, a))
    return {"ece": ece, "mce": mce, "rows": rows}


def check(report: losscli.Report, ref: dict, brier: float) -> None:
    cal = report.calibration
    assert cal is not None
    assert report.figure("ece") == pytest.approx(ref["ece"], rel=1e-12, abs=1e-15)
    assert report.figure("mce") == pytest.approx(ref["mce"], rel=1e-12, abs=1e-15)
    assert report.figure("brier") == pytest.approx(brier, rel=1e-12)
    for row, (n, c, a) in zip(cal["reliability"], ref["rows"], strict=True):
        assert row["count"] == n
        if n:
            assert row["confidence"] == pytest.approx(c, rel=1e-12)
            assert row["observed"] == pytest.approx(a, rel=1e-12, abs=1e-15)


def _binary(tmp: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.7, 0.7, n)
    y = (rng.random(n) < p**1.3).astype(np.float64)
    np.save(tmp / "p.npy", p)
    np.save(tmp / "y.npy", y)
    return p, y


@pytest.mark.parametrize(("bins", "chunk", "threads"), [(15, 65536, 1), (10, 777, 2), (1, 5000, 2)])
def test_bce_against_torchmetrics_and_sklearn_definitions(
    tmp_path: Path, bins: int, chunk: int, threads: int
):
    p, y = _binary(tmp_path, 20_000, bins)
    r = losscli.evaluate(
        "bce", str(tmp_path / "p.npy"), str(tmp_path / "y.npy"),
        calibration=True, bins=bins, chunk_size=chunk, threads=threads,
    )  # fmt: skip
    check(r, reference(p, y, bins), float(np.mean((y - p) ** 2)))  # brier_score_loss


def test_bce_weighted_and_from_logits(tmp_path: Path) -> None:
    p, y = _binary(tmp_path, 5000, 7)
    w = np.random.default_rng(1).uniform(0, 3, len(p))
    np.save(tmp_path / "w.npy", w)
    logits = np.log(p) - np.log1p(-p)
    np.save(tmp_path / "x.npy", logits)
    files = str(tmp_path / "p.npy"), str(tmp_path / "y.npy")
    r = losscli.evaluate("bce", *files, weights=str(tmp_path / "w.npy"), calibration=True)
    check(r, reference(p, y, 15, w), float(np.average((y - p) ** 2, weights=w)))
    rl = losscli.evaluate(
        "bce", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), input="logits", calibration=True
    )
    pl = 1 / (1 + np.exp(-logits))
    check(rl, reference(pl, y, 15), float(np.mean((y - pl) ** 2)))


def test_ce_multiclass_top1(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    n, c = 6000, 7
    logits = rng.normal(size=(n, c)) * 2
    y = rng.integers(0, c, n)
    y[::50] = -100  # ignored rows count nowhere
    np.save(tmp_path / "z.npy", logits)
    np.save(tmp_path / "y.npy", y)
    r = losscli.evaluate(
        "ce", str(tmp_path / "z.npy"), str(tmp_path / "y.npy"), calibration=True, chunk_size=1000
    )
    keep = y != -100
    z = logits[keep] - logits[keep].max(axis=1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    conf, pred = prob.max(axis=1), prob.argmax(axis=1)
    acc = (pred == y[keep]).astype(float)
    onehot = np.eye(c)[y[keep]]
    check(r, reference(conf, acc, 15), float(np.mean(((prob - onehot) ** 2).sum(axis=1))))


def test_parts_merge_to_the_whole_and_cli_outputs(tmp_path: Path) -> None:
    p, y = _binary(tmp_path, 4000, 9)
    np.save(tmp_path / "p1.npy", p[:1500])
    np.save(tmp_path / "y1.npy", y[:1500])
    np.save(tmp_path / "p2.npy", p[1500:])
    np.save(tmp_path / "y2.npy", y[1500:])
    a = run_cli(
        "bce", tmp_path / "p1.npy", tmp_path / "y1.npy", "--calibration", "--save-state", tmp_path / "a.s"
    )
    b = run_cli("bce", tmp_path / "p2.npy", tmp_path / "y2.npy", "--calibration", "--row-offset", 1500,
                "--save-state", tmp_path / "b.s")  # fmt: skip
    assert a.code == 0 and b.code == 0
    merged = run_cli("merge", tmp_path / "b.s", tmp_path / "a.s", "--format", "json").json()
    whole = run_cli("bce", tmp_path / "p.npy", tmp_path / "y.npy", "--calibration", "--format", "json").json()
    ref = reference(p, y, 15)
    for doc in (merged, whole):
        assert doc["ece"] == pytest.approx(ref["ece"], rel=1e-12)
        assert [r["count"] for r in doc["calibration"]["reliability"]] == [n for n, _, _ in ref["rows"]]
    tsv = run_cli("bce", tmp_path / "p.npy", tmp_path / "y.npy", "--calibration").stdout.splitlines()
    assert {"ece", "mce", "brier"} <= set(tsv[0].split("\t"))
    table = run_cli(
        "bce", tmp_path / "p.npy", tmp_path / "y.npy", "--calibration", "--format", "table"
    ).stdout
    assert "Reliability (15 bins" in table and "ECE" in table
    # parts with and without --calibration do not merge
    c = run_cli(
        "bce",
        tmp_path / "p2.npy",
        tmp_path / "y2.npy",
        "--row-offset",
        1500,
        "--save-state",
        tmp_path / "c.s",
    )
    refused = run_cli("merge", tmp_path / "a.s", tmp_path / "c.s")
    assert c.code == 0 and refused.code == 3 and "calibration" in refused.stderr


def test_usage_errors(tmp_path: Path) -> None:
    _binary(tmp_path, 10, 1)
    bad = run_cli("bce", tmp_path / "p.npy", tmp_path / "y.npy", "--calibration", "--bins", "0")
    assert bad.code == 2 and "--bins" in bad.stderr
    assert run_cli("mse", tmp_path / "p.npy", tmp_path / "y.npy", "--calibration").code == 2
    soft = np.eye(3)[[0, 1, 2, 1]]
    np.save(tmp_path / "s.npy", soft)
    out = run_cli("ce", tmp_path / "s.npy", tmp_path / "s.npy", "--calibration")
    assert out.code == 2 and "class ids" in out.stderr
