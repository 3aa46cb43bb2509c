"""bce's single-log path (float32 probabilities against labels of exactly 0 or 1: -log(1 - |p - y|),
one log per example) and the calibration bins indexed by (bin, label, lane): every per-example
loss, the mean, the clamped count and the reliability figures against float64 numpy references
written here, and the same bits whatever the chunking, thread count or mix of label kinds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import losscli
from test_calibration import tm_bins


def bce_reference(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int]:
    """float64 -[y log p + (1 - y) log(1 - p)], each log clamped at -100 as torch does, and
    how many examples had a clamped log that carries weight."""
    p, y = p.astype(np.float64), y.astype(np.float64)
    with np.errstate(divide="ignore"):
        lp, l1p = np.log(p), np.log1p(-p)
    clamped = ((lp < -100) & (y > 0)) | ((l1p < -100) & (y < 1))
    return -(y * np.maximum(lp, -100) + (1 - y) * np.maximum(l1p, -100)), int(clamped.sum())


def _data(tmp: Path, n: int, seed: int, soft_every: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.6, 0.6, n).astype(np.float32)
    y = (rng.random(n) < p).astype(np.float32)
    # the edges: certain and wrong, certain and right, tiny (1 - p rounds in float64), subnormal
    p[:9] = np.array([0.0, 1.0, 0.0, 1.0, 2.0**-35, 1e-40, 1 - 2.0**-24, 3e-8, 1e-45], dtype=np.float32)
    y[:9] = [1, 0, 0, 1, 1, 0, 1, 1, 1]
    if soft_every:
        y[::soft_every] = rng.uniform(0.05, 0.95, len(y[::soft_every])).astype(np.float32)
    np.save(tmp / "p.npy", p)
    np.save(tmp / "y.npy", y)
    return p, y


def _losses(tmp: Path, name: str, **options: object) -> tuple[losscli.Report, np.ndarray]:
    out = tmp / f"{name}.npy"
    report = losscli.evaluate("bce", str(tmp / "p.npy"), str(tmp / "y.npy"), per_example=str(out), **options)
    return report, np.load(out)["loss"]


@pytest.mark.parametrize("soft_every", [0, 3])
def test_every_loss_against_float64_and_the_same_whatever_the_chunking(tmp_path: Path, soft_every: int):
    p, y = _data(tmp_path, 30_000, soft_every, soft_every)
    want, clamped = bce_reference(p, y)
    runs = [
        _losses(tmp_path, f"run{i}", chunk_size=chunk, threads=threads)
        for i, (chunk, threads) in enumerate([(65536, 1), (1000, 2), (7, 1), (4097, 2)])
    ]
    for report, losses in runs:
        np.testing.assert_allclose(losses, want, rtol=1e-13, atol=1e-300)
        assert report.value == pytest.approx(want.mean(), rel=1e-12)
        assert report.clamped == clamped >= 3  # p = 0 and 1e-45 with y = 1, p = 1 with y = 0 (or soft)
        np.testing.assert_array_equal(losses, runs[0][1])  # bit for bit
        assert [e.loss for e in report.examples] == [e.loss for e in runs[0][0].examples]
    assert not np.signbit(runs[0][1][3])  # p = 1, y = 1 scores +0.0, not -0.0


def test_a_chunk_of_mixed_labels_scores_each_example_as_its_own_kind(tmp_path: Path) -> None:
    """The hard labels of a chunk that also holds soft ones get the single-log value, exactly
    as in a chunk of hard labels only (the soft row lands in some chunks and not others)."""
    p, y = _data(tmp_path, 5000, 11)
    y[4000] = 0.25
    np.save(tmp_path / "y.npy", y)
    _, small = _losses(tmp_path, "small", chunk_size=10)
    _, large = _losses(tmp_path, "large", chunk_size=65536)
    np.testing.assert_array_equal(small, large)
    np.testing.assert_allclose(large, bce_reference(p, y)[0], rtol=1e-13)


def test_float64_predictions_keep_both_logs(tmp_path: Path) -> None:
    """float64 1 - p is not exact below 0.5: those runs take both logs, as before (whose
    (log(1-p) - log p) y - log(1-p) loses a few ulps of log(1-p) on the smallest losses)."""
    rng = np.random.default_rng(5)
    p = rng.random(9000)
    y = (rng.random(9000) < p).astype(np.float64)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    report, losses = _losses(tmp_path, "f64", chunk_size=1000)
    np.testing.assert_allclose(losses, bce_reference(p, y)[0], rtol=1e-13, atol=1e-14)
    assert report.value == pytest.approx(bce_reference(p, y)[0].mean(), rel=1e-12)


def tm_rows(
    conf: np.ndarray, obs: np.ndarray, bins: int, w: np.ndarray
) -> list[tuple[int, float, float, float]]:
    """torchmetrics' bins (float32 probabilities: torch's float32 linspace edges, bucketize
    right=True, 1.0 in a slot of its own) with count, weight, mean confidence and mean outcome,
    in float64."""
    b = tm_bins(conf, bins, float32=True)
    rows = []
    for k in range(bins + 1):
        m = b == k
        if k == bins and not m.any():
            break
        s = w[m].sum()
        rows.append((int(m.sum()), s, (w[m] * conf[m]).sum() / s, (w[m] * obs[m]).sum() / s))
    return rows


@pytest.mark.parametrize(
    ("bins", "weighted", "chunk"), [(15, False, 65536), (7, True, 3000), (100, False, 999)]
)
def test_calibration_bins_by_bin_label_and_lane(
    tmp_path: Path, bins: int, weighted: bool, chunk: int
) -> None:
    p, y = _data(tmp_path, 40_000, bins)
    p[100:110] = np.float32(3 / 7)  # on and next to edges
    p[110:120] = np.nextafter(np.float32(0.2), np.float32(0))
    np.save(tmp_path / "p.npy", p)
    w = np.random.default_rng(bins).uniform(0, 2, len(p)) if weighted else np.ones(len(p))
    np.save(tmp_path / "w.npy", w)
    extra = {"weights": str(tmp_path / "w.npy")} if weighted else {}
    r = losscli.evaluate(
        "bce", str(tmp_path / "p.npy"), str(tmp_path / "y.npy"),
        calibration=True, bins=bins, chunk_size=chunk, **extra,
    )  # fmt: skip
    conf, obs = p.astype(np.float64), y.astype(np.float64)
    rows = tm_rows(conf, obs, bins, w)
    cal = r.calibration
    assert cal is not None
    ece = sum(s / w.sum() * abs(a - c) for n, s, c, a in rows if n)
    assert r.figure("ece") == pytest.approx(ece, rel=1e-12)
    assert r.figure("brier") == pytest.approx(np.average((conf - obs) ** 2, weights=w), rel=1e-12)
    for got, (n, s, c, a) in zip(cal["reliability"], rows, strict=True):
        assert got["count"] == n
        if n:
            assert got["weight"] == pytest.approx(s, rel=1e-12)
            assert got["confidence"] == pytest.approx(c, rel=1e-12)
            assert got["observed"] == pytest.approx(a, rel=1e-12, abs=1e-15)


def test_calibration_of_several_outputs_and_soft_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    p = rng.random((3000, 3)).astype(np.float32)
    y = (rng.random((3000, 3)) < p).astype(np.float32)
    y[::5, 1] = 0.5  # soft: the bins take the label's value as the outcome
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    r = losscli.evaluate(
        "bce", str(tmp_path / "p.npy"), str(tmp_path / "y.npy"), calibration=True, chunk_size=500
    )
    conf, obs = p.reshape(-1).astype(np.float64), y.reshape(-1).astype(np.float64)
    rows = tm_rows(conf, obs, 15, np.ones(len(conf)))
    assert r.calibration is not None
    for got, (n, _, c, a) in zip(r.calibration["reliability"], rows, strict=True):
        assert got["count"] == n
        assert got["confidence"] == pytest.approx(c, rel=1e-12)
        assert got["observed"] == pytest.approx(a, rel=1e-12)
    assert r.figure("brier") == pytest.approx(np.mean((conf - obs) ** 2), rel=1e-12)
