"""Every metric on every format, and across formats, against the float64 references."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

import losscli

import references as ref
from conftest import run_cli, single_file, write_csv, write_parquet

FORMATS = ["csv", "tsv", "parquet", "npy", "npz"]
REL = 1e-12


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def regression_data(rng: np.random.Generator, n: int = 257) -> tuple[np.ndarray, np.ndarray]:
    y = rng.normal(10, 3, n)
    return y + rng.normal(0, 1.5, n), y


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("metric", ["mse", "mae"])
def test_regression_each_format(tmp_path, rng, fmt: str, metric: str) -> None:
    p, y = regression_data(rng)
    pf, tf = single_file(tmp_path, fmt, "preds", p), single_file(tmp_path, fmt, "targets", y)
    report = losscli.evaluate(metric, pf, tf, chunk_size=50)
    want = ref.mse(p, y) if metric == "mse" else ref.mae(p, y)
    assert report.value == pytest.approx(want, rel=REL)
    # the other regression metric is reported beside the headline, from the same pass
    other = "mae" if metric == "mse" else "mse"
    assert report.figure(other) == pytest.approx(ref.mae(p, y) if other == "mae" else ref.mse(p, y), rel=REL)
    assert report.figure("rmse") == pytest.approx(np.sqrt(ref.mse(p, y)), rel=REL)


@pytest.mark.parametrize(
    ("pfmt", "tfmt"), [("csv", "npy"), ("parquet", "csv"), ("npz", "parquet"), ("tsv", "npy")]
)
def test_regression_mixed_formats(tmp_path, rng, pfmt: str, tfmt: str) -> None:
    p, y = regression_data(rng, 1000)
    pf, tf = single_file(tmp_path, pfmt, "preds", p), single_file(tmp_path, tfmt, "targets", y)
    assert losscli.evaluate("mse", pf, tf, chunk_size=97).value == pytest.approx(ref.mse(p, y), rel=REL)


def test_gzip_csv(tmp_path, rng) -> None:
    p, y = regression_data(rng)
    plain = write_csv(tmp_path / "both.csv", {"pred": p, "target": y})
    with open(plain, "rb") as src, gzip.open(tmp_path / "both.csv.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    r = run_cli("mae", tmp_path / "both.csv.gz", "--format", "value")
    assert r.code == 0, r.stderr
    assert float(r.stdout) == pytest.approx(ref.mae(p, y), rel=REL)


def test_stdin_csv(rng) -> None:
    p, y = regression_data(rng, 50)
    text = "yhat,y\n" + "".join(f"{a!r},{b!r}\n" for a, b in zip(p.tolist(), y.tolist(), strict=True))
    r = run_cli("mse", "-", "--pred-col", "yhat", "--target-col", "y", "-f", "value", stdin=text.encode())
    assert r.code == 0, r.stderr
    assert float(r.stdout) == pytest.approx(ref.mse(p, y), rel=REL)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "npy"])
def test_multi_output_regression(tmp_path, rng, fmt: str) -> None:
    y = rng.normal(0, 1, (120, 3)) * [1, 10, 100]
    p = y + rng.normal(0, 1, (120, 3))
    pf, tf = single_file(tmp_path, fmt, "preds", p), single_file(tmp_path, fmt, "targets", y)
    report = losscli.evaluate("mse", pf, tf, chunk_size=16)
    assert report.value == pytest.approx(ref.mse(p, y), rel=REL)
    per_output = [vals["value"] for _, vals in report.per_output]
    assert per_output == pytest.approx([ref.mse(p[:, j], y[:, j]) for j in range(3)], rel=REL)


def test_n_and_n1_agree(tmp_path, rng) -> None:
    p, y = regression_data(rng, 64)
    a = losscli.evaluate("mse", p, y).value
    b = losscli.evaluate("mse", p[:, None], y[:, None]).value
    assert a == b


@pytest.mark.parametrize("fmt", FORMATS)
def test_bce_probs_each_format(tmp_path, rng, fmt: str) -> None:
    n = 300
    y = (rng.random(n) < 0.4).astype(np.float64)
    p = np.clip(rng.beta(2, 2, n), 1e-6, 1 - 1e-6)
    pf, tf = single_file(tmp_path, fmt, "probs", p), single_file(tmp_path, fmt, "labels", y)
    report = losscli.evaluate("bce", pf, tf, chunk_size=64)
    assert report.input_kind == "probs"
    assert report.value == pytest.approx(ref.bce_probs(p, y), rel=REL)


def test_bce_logits_and_soft_labels(tmp_path, rng) -> None:
    n = 200
    x = rng.normal(0, 4, n)
    y = rng.random(n)  # soft labels
    report = losscli.evaluate(
        "bce", single_file(tmp_path, "npy", "x", x), single_file(tmp_path, "csv", "y", y)
    )
    assert report.input_kind == "logits" and report.input_detected
    assert report.value == pytest.approx(ref.bce_logits(x, y), rel=REL)


def test_bce_probability_zero_is_clamped_and_counted() -> None:
    p = np.array([0.0, 1.0, 0.5, 1.0])
    y = np.array([1.0, 1.0, 1.0, 0.0])
    report = losscli.evaluate("bce", p, y, input="probs")
    # log(0) clamps to -100: losses 100, 0, log 2, 100
    assert report.value == pytest.approx((200 + np.log(2)) / 4, rel=REL)
    assert report.clamped == 2


@pytest.mark.parametrize("fmt", FORMATS)
def test_ce_logits_each_format(tmp_path, rng, fmt: str) -> None:
    n, c = 150, 5
    z = rng.normal(0, 3, (n, c))
    t = rng.integers(0, c, n)
    pf = single_file(tmp_path, fmt, "scores", z)
    tf = single_file(tmp_path, fmt, "labels", t)
    report = losscli.evaluate("ce", pf, tf, chunk_size=33)
    assert report.input_kind == "logits"
    assert report.value == pytest.approx(ref.ce_logits(z, t), rel=REL)
    want_acc = float(np.mean(np.argmax(z, axis=1) == t))
    assert report.figure("accuracy") == want_acc
    assert report.figure("perplexity") == pytest.approx(np.exp(ref.ce_logits(z, t)), rel=REL)


def test_ce_parquet_list_column(tmp_path, rng) -> None:
    n, c = 90, 4
    z = rng.normal(0, 2, (n, c))
    t = rng.integers(0, c, n)
    path = write_parquet(tmp_path / "scores.parquet", {"logits": z, "label": t}, row_group_size=25)
    r = run_cli("ce", path, "--pred-col", "logits", "--target-col", "label", "-f", "json")
    assert r.code == 0, r.stderr
    assert r.json()["value"] == pytest.approx(ref.ce_logits(z, t), rel=REL)


def test_ce_wide_csv_with_label_column(tmp_path, rng) -> None:
    n, c = 60, 3
    p = rng.dirichlet(np.ones(c), n)
    t = rng.integers(0, c, n)
    path = write_csv(tmp_path / "wide.csv", {"a": p[:, 0], "b": p[:, 1], "c": p[:, 2], "label": t})
    report = losscli.evaluate("ce", path, target_col="label")
    assert report.input_kind == "probs"
    assert report.value == pytest.approx(ref.ce_probs(p, t), rel=REL)


def test_ce_soft_targets_and_logprobs(tmp_path, rng) -> None:
    n, c = 80, 6
    z = rng.normal(0, 2, (n, c))
    soft = rng.dirichlet(np.ones(c), n)
    soft[::7] = np.eye(c)[rng.integers(0, c, len(soft[::7]))]  # some one-hot rows
    want = ref.ce_logits(z, soft)
    assert losscli.evaluate("ce", z, soft, input="logits").value == pytest.approx(want, rel=REL)
    logprobs = np.array([ref.log_softmax_row(row) for row in z.tolist()])
    got = losscli.evaluate("ce", logprobs, soft)
    assert got.input_kind == "logprobs"
    assert got.value == pytest.approx(want, rel=1e-11)


def test_ce_ignore_index(rng) -> None:
    n, c = 50, 4
    z = rng.normal(0, 2, (n, c))
    t = rng.integers(0, c, n)
    t[::5] = -100
    report = losscli.evaluate("ce", z, t)
    assert report.n == n - len(t[::5])
    assert report.ignored == len(t[::5])
    assert report.value == pytest.approx(ref.ce_logits(z, t), rel=REL)
    custom = t.copy()
    custom[custom == -100] = 99
    assert losscli.evaluate("ce", z, custom, ignore_index=99).value == pytest.approx(report.value, rel=REL)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_perplexity_dtypes(tmp_path, rng, dtype) -> None:
    n, v = 40, 1000
    z = (rng.normal(0, 3, (n, v))).astype(dtype)
    t = rng.integers(0, v, n)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "t.npy", t)
    r = run_cli("perplexity", "--logits", tmp_path / "z.npy", "--targets", tmp_path / "t.npy", "-f", "json")
    assert r.code == 0, r.stderr
    want = ref.ce_logits(z, t)  # reference on the exact stored values, in float64
    rel = REL if dtype == np.float64 else 1e-6
    assert r.json()["cross_entropy"] == pytest.approx(want, rel=rel)
    assert r.json()["value"] == pytest.approx(np.exp(want), rel=rel)


@pytest.mark.parametrize("metric", ["mse", "mae", "ce"])
def test_weights_weighted_mean(tmp_path, rng, metric: str) -> None:
    n = 120
    w = rng.uniform(0, 3, n)
    wf = single_file(tmp_path, "csv", "w", w)
    if metric == "ce":
        z, t = rng.normal(0, 2, (n, 3)), rng.integers(0, 3, n)
        got = losscli.evaluate(
            "ce",
            single_file(tmp_path, "npy", "z", z),
            single_file(tmp_path, "parquet", "t", t),
            weights=wf,
            chunk_size=17,
        )
        assert got.value == pytest.approx(ref.ce_logits(z, t, w), rel=REL)
    else:
        p, y = regression_data(rng, n)
        got = losscli.evaluate(
            metric,
            single_file(tmp_path, "npy", "p", p),
            single_file(tmp_path, "npy", "y", y),
            weights=wf,
            chunk_size=17,
        )
        want = ref.mse(p, y, w) if metric == "mse" else ref.mae(p, y, w)
        assert got.value == pytest.approx(want, rel=REL)
        other = ref.mae(p, y, w) if metric == "mse" else ref.mse(p, y, w)
        assert got.figure("mae" if metric == "mse" else "mse") == pytest.approx(other, rel=REL)
    assert got.weighted


def test_weight_column_in_the_same_file(tmp_path, rng) -> None:
    p, y = regression_data(rng, 40)
    w = rng.integers(1, 4, 40).astype(float)
    path = write_csv(tmp_path / "all.csv", {"pred": p, "target": y, "w": w})
    r = run_cli("mse", path, "--weight-col", "w", "-f", "value")
    assert r.code == 0, r.stderr
    assert float(r.stdout) == pytest.approx(ref.mse(p, y, w), rel=REL)


def test_single_file_column_guessing(tmp_path, rng) -> None:
    p, y = regression_data(rng, 30)
    path = write_parquet(tmp_path / "r.parquet", {"id": np.arange(30), "y_true": y, "y_pred": p})
    assert losscli.evaluate("mae", path).value == pytest.approx(ref.mae(p, y), rel=REL)
