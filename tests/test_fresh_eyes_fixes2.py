"""Fixes from a second fresh-eyes review: each test fails on the code before the fix.

1. ``--per-example -`` prints nothing on stdout when the run fails (rows are buffered until commit).
2. A row of weight 0 adds exactly 0, even when its loss overflows to inf (0 * inf was NaN).
3. ce ``--input auto``: scores <= 0 whose rows' exp-sums are below 1 (top-k truncated
   log-probabilities) are refused (exit 2), not renormalised as logits.
4. Parquet: a CSV's pandas index carried over (``Unnamed: 0``, ``''``) is an index, as in CSV.
5. The Python shortcuts take ``nan=``, as their NaN error tells users to pass.
6. ``--format csv/tsv``: per-output rows carry the run's ignored/skipped/clamped counts.

Every expected value is a float64 reference computed here from the formula.
"""

from __future__ import annotations

import io
import math
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

import losscli
from losscli.errors import AmbiguousInput, LossCliError

from conftest import run_cli

LOSSCLI = [sys.executable, "-m", "losscli"]

# ---------------------------------------------------------------- item 1: --per-example - on failure


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200,000 predictions and targets (more than two default chunks), and a copy with a NaN at 150,000."""
    d = tmp_path_factory.mktemp("rows")
    rng = np.random.default_rng(7)
    p, y = rng.random(200_000), rng.random(200_000)
    bad = p.copy()
    bad[150_000] = np.nan
    np.save(d / "p.npy", p)
    np.save(d / "y.npy", y)
    np.save(d / "bad.npy", bad)
    pd.DataFrame({"y_pred": bad, "y_true": y}).to_csv(d / "bad.csv", index=False)
    pd.DataFrame({"y_pred": bad, "y_true": y}).to_parquet(d / "bad.parquet")
    return d


@pytest.mark.parametrize(
    "inputs",
    [["bad.npy", "y.npy"], ["bad.npy", "y.npy", "--threads", "1"], ["bad.csv"], ["bad.parquet"]],
)
def test_failed_run_prints_nothing_on_stdout(rows: Path, inputs: list[str]) -> None:
    args = [str(rows / a) if a.startswith("bad") or a.startswith("y.") else a for a in inputs]
    r = run_cli("mse", *args, "--per-example", "-")
    assert r.code == 3, r.stderr
    assert "row 150000" in r.stderr
    assert r.stdout == ""


def test_good_run_prints_exactly_the_rows(rows: Path) -> None:
    r = run_cli("mse", rows / "p.npy", rows / "y.npy", "--per-example", "-")
    assert r.code == 0, r.stderr
    df = pd.read_csv(io.StringIO(r.stdout), dtype={"row": np.int64, "loss": np.float64})
    p, y = np.load(rows / "p.npy"), np.load(rows / "y.npy")
    assert list(df.columns) == ["row", "loss"]
    assert (df["row"].to_numpy() == np.arange(len(p))).all()
    ref = [(a - b) * (a - b) for a, b in zip(p.tolist(), y.tolist(), strict=True)]  # float64, per row
    assert df["loss"].tolist() == ref  # repr round-trips: bit-exact


def test_per_example_stdout_closed_early_is_141(rows: Path) -> None:
    args = [*LOSSCLI, "mse", str(rows / "p.npy"), str(rows / "y.npy"), "--per-example", "-"]
    cmd = f"{shlex.join(args)} 2>/dev/null | head -c 100 >/dev/null; exit ${{PIPESTATUS[0]}}"
    assert subprocess.run(["bash", "-o", "pipefail", "-c", cmd], timeout=120).returncode == 141


def test_per_example_stdout_full_device_is_4(rows: Path) -> None:
    with open("/dev/full", "wb") as full:
        args = [*LOSSCLI, "mse", str(rows / "p.npy"), str(rows / "y.npy"), "--per-example", "-"]
        proc = subprocess.run(args, stdout=full, stderr=subprocess.PIPE, timeout=120)
    assert proc.returncode == 4
    assert b"Traceback" not in proc.stderr


# ---------------------------------------------------------------- item 2: weight 0 and an inf loss


def weighted_ref(losses: list[float], w: list[float]) -> float:
    """scikit-learn's sample_weight mean: rows of weight 0 contribute nothing at all."""
    return math.fsum(li * wi for li, wi in zip(losses, w, strict=True) if wi != 0) / math.fsum(w)


P2, T2, W2 = [1.7e308, 3.0], [-1.7e308, 1.0], [0.0, 1.0]  # |p - t| of row 0 overflows to inf


@pytest.fixture(scope="module")
def zero_w(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("zero_w")
    np.save(d / "p.npy", np.array(P2))
    np.save(d / "t.npy", np.array(T2))
    np.save(d / "w.npy", np.array(W2))
    frame = pd.DataFrame({"y_pred": P2, "y_true": T2, "w": W2})
    frame.to_csv(d / "all.csv", index=False)
    frame.to_csv(d / "all.tsv", index=False, sep="\t")
    frame.to_parquet(d / "all.parquet")
    return d


def _zero_w_args(d: Path, kind: str) -> list[str]:
    if kind == "npy":
        return [str(d / "p.npy"), str(d / "t.npy"), "--weights", str(d / "w.npy")]
    return [str(d / f"all.{kind}"), "--pred-col", "y_pred", "--target-col", "y_true", "--weight-col", "w"]


@pytest.mark.parametrize("kind", ["npy", "csv", "tsv", "parquet"])
@pytest.mark.parametrize("metric", ["mae", "mse"])
def test_zero_weight_row_with_inf_loss_adds_nothing(zero_w: Path, kind: str, metric: str) -> None:
    abs_err = [abs(a - b) for a, b in zip(P2[1:], T2[1:], strict=True)]
    mae_ref = weighted_ref([math.inf, *abs_err], W2)
    mse_ref = weighted_ref([math.inf, *[e * e for e in abs_err]], W2)
    assert (mae_ref, mse_ref) == (2.0, 4.0)
    r = run_cli(metric, *_zero_w_args(zero_w, kind), "-f", "json")
    assert r.code == 0, r.stderr
    assert "RuntimeWarning" not in r.stderr and "overflow" not in r.stderr
    out = r.json()
    assert out["value"] == (mae_ref if metric == "mae" else mse_ref)
    assert out["mse" if metric == "mae" else "mae"] == (mse_ref if metric == "mae" else mae_ref)
    assert out["status"] == "ok"
    fail = run_cli(metric, *_zero_w_args(zero_w, kind), "--fail-above", "1")
    assert fail.code == 1, fail.stderr  # --fail-above fires: the mean is a number, not nan


def test_zero_weight_inf_per_output_and_api() -> None:
    p = np.array([[1e200, 1.0], [3.0, 2.0]])
    t = np.array([[-1e200, 1.0], [1.0, 5.0]])
    w = np.array([0.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        report = losscli.evaluate("mse", p, t, weights=w)
    sq = [
        [(a - b) * (a - b) for a, b in zip(p[:, j].tolist(), t[:, j].tolist(), strict=True)] for j in range(2)
    ]
    col_ref = [weighted_ref(sq[j], w.tolist()) for j in range(2)]  # row 0 of column 0 is inf
    assert col_ref == [4.0, 9.0]
    assert [v["value"] for _, v in report.per_output] == col_ref
    assert report.value == math.fsum(col_ref) / 2
    ab = [[abs(a - b) for a, b in zip(p[:, j].tolist(), t[:, j].tolist(), strict=True)] for j in range(2)]
    mae_cols = [weighted_ref(ab[j], w.tolist()) for j in range(2)]
    assert report.figure("mae") == math.fsum(mae_cols) / 2
    assert report.warnings == []


def test_zero_weight_inf_bce_row(tmp_path: Path) -> None:
    """bce's row loss (the mean over 2 outputs) overflows for row 0 (two losses of 1.7e308)."""
    z = np.array([[-1.7e308, 1.7e308], [0.5, -0.25]])
    y = np.array([[1.0, 0.0], [1.0, 0.0]])
    w = np.array([0.0, 2.0])

    def bce_logit(zi: float, yi: float) -> float:
        return max(zi, 0.0) - zi * yi + math.log1p(math.exp(-abs(zi)))

    cols = [weighted_ref([bce_logit(z[i, j], y[i, j]) for i in range(2)], list(w)) for j in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        report = losscli.evaluate("bce", z, y, weights=w, input="logits")
    assert report.value == pytest.approx(math.fsum(cols) / 2, rel=1e-15)
    assert report.warnings == []  # no "overflowed" warning: the inf row has weight 0
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "w.npy", w)
    r = run_cli("bce", tmp_path / "z.npy", tmp_path / "y.npy", "--weights", tmp_path / "w.npy",
                "--input", "logits", "-f", "value")  # fmt: skip
    assert r.code == 0 and "RuntimeWarning" not in r.stderr and "overflow" not in r.stderr, r.stderr
    assert float(r.stdout) == pytest.approx(math.fsum(cols) / 2, rel=1e-15)


def test_positive_weight_overflow_still_inf_with_warning(zero_w: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "w1.npy", np.array([1.0, 1.0]))
    r = run_cli("mae", zero_w / "p.npy", zero_w / "t.npy", "--weights", tmp_path / "w1.npy", "-f", "value")
    assert r.code == 0
    assert r.stdout.strip() == "inf"
    assert "losscli: warning: some losses overflowed float64 to inf" in r.stderr
    assert "RuntimeWarning" not in r.stderr


# ---------------------------------------------------------------- item 3: ce auto, truncated log-probs


TOPK = np.array([[0.5, 0.3, 0.2], [0.5, 0.25, 0.1], [0.6, 0.2, 0.15], [0.7, 0.2, 0.1]])  # row 1: 0.85
LABELS = np.array([0, 1, 2, 0])


def ce_logits_ref(z: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log softmax(z)[label], float64 log-sum-exp per row."""
    terms = []
    for row, k in zip(z.tolist(), labels.tolist(), strict=True):
        m = max(row)
        terms.append(m + math.log(math.fsum(math.exp(v - m) for v in row)) - row[k])
    return math.fsum(terms) / len(terms)


@pytest.mark.parametrize("kind", ["npy", "csv", "parquet", "api"])
def test_truncated_logprobs_are_refused(tmp_path: Path, kind: str) -> None:
    lp = np.log(TOPK)
    if kind == "api":
        with pytest.raises(AmbiguousInput, match=r"exp-sum is 0\.85.*input=\"logprobs\""):
            losscli.evaluate("ce", lp, LABELS)
        return
    if kind == "npy":
        np.save(tmp_path / "lp.npy", lp)
        np.save(tmp_path / "y.npy", LABELS)
        args = [tmp_path / "lp.npy", tmp_path / "y.npy"]
    else:
        frame = pd.DataFrame(lp, columns=["a", "b", "c"])
        labels = pd.DataFrame({"label": LABELS})
        if kind == "csv":
            frame.to_csv(tmp_path / "lp.csv", index=False)
            labels.to_csv(tmp_path / "y.csv", index=False)
        else:
            frame.to_parquet(tmp_path / "lp.parquet")
            labels.to_parquet(tmp_path / "y.parquet")
        args = [tmp_path / f"lp.{kind}", tmp_path / f"y.{kind}"]
    r = run_cli("ce", *args)
    assert r.code == 2, r.stderr
    assert r.stdout == ""
    assert (
        "row 1" in r.stderr
        and "0.85" in r.stderr
        and "--input logprobs" in r.stderr
        and "--input logits" in r.stderr
    )
    assert len(r.stderr.strip().splitlines()) == 1
    given = run_cli("ce", *args, "--input", "logprobs", "-f", "value")
    ref = math.fsum(-math.log(TOPK[i, k]) for i, k in enumerate(LABELS.tolist())) / len(LABELS)
    assert given.code == 0 and float(given.stdout) == pytest.approx(ref, rel=1e-12)


def test_real_logits_still_detected(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(50, 4)) * 3  # positive and negative values
    labels = rng.integers(0, 4, 50)
    shifted = z - z.max(axis=1, keepdims=True)  # every row's max is 0: all <= 0, exp-sums >= 1
    for scores in (z, shifted):
        report = losscli.evaluate("ce", scores, labels)
        assert report.input_kind == "logits"
        assert report.value == pytest.approx(ce_logits_ref(z, labels), rel=1e-12)
    np.save(tmp_path / "z.npy", shifted)
    np.save(tmp_path / "y.npy", labels)
    r = run_cli("ce", tmp_path / "z.npy", tmp_path / "y.npy", "-f", "value")
    assert r.code == 0 and float(r.stdout) == pytest.approx(ce_logits_ref(z, labels), rel=1e-12)
    # all-negative scores with some row's exp-sum well above 1 are still logits
    big = z - 10.0
    big[0] = [0.0, 0.0, -1.0, -2.0]  # exp-sum 2.5
    assert losscli.evaluate("ce", big, labels).input_kind == "logits"


# ---------------------------------------------------------------- item 4: Parquet, carried CSV index


def test_parquet_keeps_csv_index_as_index(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    p, y = rng.random(30), rng.random(30)
    pd.DataFrame({"y_pred": p}).to_csv(tmp_path / "p.csv")  # with pandas' index
    pd.DataFrame({"y_true": y}).to_csv(tmp_path / "y.csv")
    pd.read_csv(tmp_path / "p.csv").to_parquet(tmp_path / "pd_p.parquet")  # column 'Unnamed: 0'
    pd.read_csv(tmp_path / "y.csv").to_parquet(tmp_path / "pd_y.parquet")
    pl.read_csv(tmp_path / "p.csv").write_parquet(tmp_path / "pl_p.parquet")  # column ''
    pl.read_csv(tmp_path / "y.csv").write_parquet(tmp_path / "pl_y.parquet")
    assert pq_names(tmp_path / "pd_p.parquet")[0] == "Unnamed: 0"
    assert pq_names(tmp_path / "pl_p.parquet")[0] == ""
    ref = math.fsum((a - b) ** 2 for a, b in zip(p.tolist(), y.tolist(), strict=True)) / 30
    for tool in ("pd", "pl"):
        r = run_cli("mse", tmp_path / f"{tool}_p.parquet", tmp_path / f"{tool}_y.parquet", "-f", "json")
        assert r.code == 0, r.stderr
        out = r.json()
        assert out["value"] == pytest.approx(ref, rel=1e-14)
        report = losscli.evaluate(
            "mse", str(tmp_path / f"{tool}_p.parquet"), str(tmp_path / f"{tool}_y.parquet")
        )
        assert report.per_output == [] and report.value == pytest.approx(ref, rel=1e-14)
        # the same file as CSV gives the same answer
        csv = run_cli("mse", tmp_path / "p.csv", tmp_path / "y.csv", "-f", "value")
        assert float(csv.stdout) == pytest.approx(ref, rel=1e-14)
    # one file holding both columns after the index
    both = pd.DataFrame({"y_pred": p, "y_true": y})
    both.to_csv(tmp_path / "both.csv")
    pd.read_csv(tmp_path / "both.csv").to_parquet(tmp_path / "both.parquet")
    assert losscli.evaluate("mse", str(tmp_path / "both.parquet")).value == pytest.approx(ref, rel=1e-14)


def pq_names(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.ParquetFile(path).schema_arrow.names)


# ---------------------------------------------------------------- item 5: shortcuts take nan=


SHORTCUTS = {
    "mse": (losscli.mse, [1.0, math.nan, 3.0], [1.0, 2.0, 3.0], {}),
    "mae": (losscli.mae, [1.0, math.nan, 3.0], [1.0, 2.0, 3.0], {}),
    "bce": (losscli.bce, [0.5, math.nan, 0.25], [1.0, 0.0, 0.0], {"input": "probs"}),
    "ce": (losscli.cross_entropy, [[0.0, 1.0], [math.nan, 0.0], [2.0, 0.0]], [1, 0, 0], {"input": "logits"}),
    "perplexity": (losscli.perplexity, [[0.0, 1.0], [math.nan, 0.0], [2.0, 0.0]], [1, 0, 0], {}),
}


def test_mse_nan_skip() -> None:
    assert losscli.mse([1, math.nan, 3], [1, 2, 3], nan="skip") == 0.0
    assert losscli.evaluate("mse", [1, math.nan, 3], [1, 2, 3], nan="skip").n == 2
    with pytest.raises(LossCliError, match='nan="skip"'):
        losscli.mse([1, math.nan, 3], [1, 2, 3])


@pytest.mark.parametrize("name", list(SHORTCUTS))
def test_every_shortcut_takes_nan(name: str) -> None:
    fn, p, t, opts = SHORTCUTS[name]
    keep_p = [p[0], p[2]]
    keep_t = [t[0], t[2]]
    if name in ("mse", "mae"):
        errs = [a - b for a, b in zip(keep_p, keep_t, strict=True)]
        ref = math.fsum(e * e if name == "mse" else abs(e) for e in errs) / 2
    elif name == "bce":
        ref = (
            math.fsum(
                -(y * math.log(q) + (1 - y) * math.log(1 - q)) for q, y in zip(keep_p, keep_t, strict=True)
            )
            / 2
        )
    else:
        nll = [
            math.log(math.fsum(math.exp(v) for v in row)) - row[k]
            for row, k in zip(keep_p, keep_t, strict=True)
        ]
        ref = math.fsum(nll) / 2
        ref = math.exp(ref) if name == "perplexity" else ref
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert fn(p, t, nan="skip", **opts) == pytest.approx(ref, rel=1e-14)
        with pytest.raises(LossCliError, match='nan="skip"'):
            fn(p, t, **opts)


# ---------------------------------------------------------------- item 6: csv/tsv per-output counts


@pytest.mark.parametrize("fmt,sep", [("csv", ","), ("tsv", "\t")])
def test_per_output_rows_carry_the_counts(tmp_path: Path, fmt: str, sep: str) -> None:
    p = np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, 5.0]])
    t = np.array([[0.0, 2.0], [1.0, 1.0], [1.0, 1.0]])
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "t.npy", t)
    r = run_cli("mse", tmp_path / "p.npy", tmp_path / "t.npy", "--nan", "skip", "-f", fmt)
    assert r.code == 0, r.stderr
    df = pd.read_csv(io.StringIO(r.stdout), sep=sep)
    assert list(df["output"].astype(str)) == ["all", "0", "1"]
    for col, want in (("ignored", 0), ("skipped", 1), ("clamped", 0), ("n", 2)):
        assert df[col].dtype.kind == "i", col  # no empty cell, so no NaN
        assert df[col].tolist() == [want] * 3
    cols = [math.fsum((p[i, j] - t[i, j]) ** 2 for i in (0, 2)) / 2 for j in range(2)]
    assert df["value"].tolist() == [math.fsum(cols) / 2, *cols]
