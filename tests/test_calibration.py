"""--calibration (issue 14): reliability bins, ECE, MCE and Brier for bce and ce, against float64
numpy references written as torchmetrics bins (``bucketize(right=True) - 1``) and scikit-learn's
``brier_score_loss`` computes; checked against the libraries themselves by
benchmarks/calibration_check.py (torch, torchmetrics, scikit-learn in a separate environment)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import losscli

from conftest import run_cli


def torch_linspace(n_bins: int, float32: bool = False) -> np.ndarray:
    """torch.linspace(0, 1, n + 1) as torch's CPU kernel computes it: step = 1/n in the dtype,
    step*k below the middle and 1 - step*(n - k) from it on, each rounded once (fused)."""
    out = []
    if float32:  # a float32 step times k is exact in float64: one rounding, by np.float32
        s32 = np.float64(np.float32(1.0) / np.float32(n_bins))
        for k in range(n_bins + 1):
            out.append(np.float32(s32 * k if k < (n_bins + 1) // 2 else 1.0 - s32 * (n_bins - k)))
        return np.array(out, dtype=np.float64)
    step = Fraction(1.0 / n_bins)
    for k in range(n_bins + 1):
        out.append(float(step * k if k < (n_bins + 1) // 2 else 1 - step * (n_bins - k)))
    return np.array(out)


def tm_bins(conf: np.ndarray, n_bins: int, float32: bool = False) -> np.ndarray:
    """torchmetrics' _binning_bucketize: bucketize(conf, linspace(0, 1, n+1), right=True) - 1 in
    n + 1 slots (1.0 in slot n, a bin of its own); ``float32``: float32 edges and confidences."""
    c = conf.astype(np.float32).astype(np.float64) if float32 else conf
    return np.searchsorted(torch_linspace(n_bins, float32), c, side="right") - 1


def reference(
    conf: np.ndarray, acc: np.ndarray, n_bins: int, w: np.ndarray | None = None, float32: bool = False
) -> dict:
    """torchmetrics' _ce_compute (norm l1 and max) over its n + 1 slots, weighted by sample
    weights when given; the slot of 1.0 is a row only when it holds any."""
    w = np.ones(len(conf)) if w is None else w
    b = tm_bins(conf, n_bins, float32)
    ece, mce, rows = 0.0, 0.0, []
    for k in range(n_bins + 1):
        m = b == k
        if not m.any() or w[m].sum() == 0:
            if k < n_bins:
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
    for row, (n, c, a) in zip(cal["reliability"], ref["rows"], strict=True):  # 1.0's row too
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
    soft = np.eye(3)[[0, 1, 2, 1]] * 0.9 + 0.1 / 3  # label-smoothed rows: no one class per row
    np.save(tmp_path / "s.npy", soft)
    out = run_cli("ce", tmp_path / "s.npy", tmp_path / "s.npy", "--calibration")
    assert out.code == 3 and "one-hot" in out.stderr and out.stdout == ""


def test_one_hot_targets_are_class_ids(tmp_path: Path) -> None:
    """Keras' to_categorical rows give the calibration and per-class figures of their ids."""
    rng = np.random.default_rng(12)
    p, y = rng.dirichlet(np.ones(4), 300), rng.integers(0, 4, 300)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "oh.npy", np.eye(4)[y])
    ids, onehot = (
        run_cli("ce", tmp_path / "p.npy", tmp_path / t, "--calibration", "--per-class", "-f", "json")
        for t in ("y.npy", "oh.npy")
    )
    assert ids.code == 0 and onehot.code == 0, onehot.stderr
    a, b = ids.json(), onehot.json()
    for key in ("value", "ece", "mce", "brier", "per_class", "calibration"):
        assert a[key] == b[key], key


def _edges_data(n_bins: int, float32: bool) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities on every edge (torch's and k/n), just beside them, and many exactly 1.0."""
    edges = torch_linspace(n_bins, float32)
    near = [edges, np.arange(n_bins + 1) / n_bins, np.nextafter(edges, 0), np.nextafter(edges, 1)]
    p = np.clip(np.concatenate([*near, np.full(40, 1.0), np.arange(21) / 20]), 0, 1)
    y = (np.arange(len(p)) % 3 == 0).astype(np.int64)
    return (p.astype(np.float32) if float32 else p), y


@pytest.mark.parametrize("n_bins", [15, 10, 7])
@pytest.mark.parametrize("float32", [False, True])
def test_bce_edges_and_ones_as_torchmetrics(tmp_path: Path, n_bins: int, float32: bool) -> None:
    """Values on torch's linspace edges (not k/n: edge 11 of 16 is 0.7333333333333334), float32
    probabilities binned by float32 edges, and 1.0 in a slot of its own, as BinaryCalibrationError."""
    p, y = _edges_data(n_bins, float32)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    r = losscli.evaluate(
        "bce", str(tmp_path / "p.npy"), str(tmp_path / "y.npy"), calibration=True, bins=n_bins
    )
    p64 = p.astype(np.float64)
    check(r, reference(p64, y.astype(float), n_bins, float32=float32), float(np.mean((y - p64) ** 2)))
    assert r.calibration is not None and r.calibration["reliability"][-1]["lower"] == 1.0
    table = run_cli("bce", tmp_path / "p.npy", tmp_path / "y.npy", "--calibration", "--bins", n_bins,
                    "--format", "table").stdout  # fmt: skip
    assert "1 exactly" in table


def test_random_forest_outputs_as_torchmetrics(tmp_path: Path) -> None:
    """RF-style outputs: k/20 probabilities, many exactly 1.0; ce bins the float32 top-1
    confidence by float32 edges (a float32 0.2 < edge 0.20000002: the lower bin)."""
    rng = np.random.default_rng(11)
    n, c = 3000, 3
    votes = rng.multinomial(20, rng.dirichlet([0.3] * c, n)[rng.integers(0, n, n)])
    prob = votes / 20.0
    y = np.where(rng.random(n) < 0.8, prob.argmax(axis=1), rng.integers(0, c, n))
    assert (prob.max(axis=1) == 1.0).sum() > 100
    np.save(tmp_path / "P.npy", prob)
    np.save(tmp_path / "Y.npy", y)
    r = losscli.evaluate("ce", str(tmp_path / "P.npy"), str(tmp_path / "Y.npy"), calibration=True)
    conf, acc = prob.max(axis=1), (prob.argmax(axis=1) == y).astype(float)
    brier = float(np.mean(((prob - np.eye(c)[y]) ** 2).sum(axis=1)))
    check(r, reference(conf, acc, 15, float32=True), brier)
    pb, yb = prob[:, 1], (y == 1).astype(np.int64)
    np.save(tmp_path / "p.npy", pb)
    np.save(tmp_path / "y.npy", yb)
    rb = losscli.evaluate("bce", str(tmp_path / "p.npy"), str(tmp_path / "y.npy"), calibration=True)
    check(rb, reference(pb, yb.astype(float), 15), float(np.mean((yb - pb) ** 2)))
