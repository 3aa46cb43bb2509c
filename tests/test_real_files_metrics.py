"""Metric rules on files as real tools write them (issue 9, items 1, 5, 7, 8, 9 and 15a).

Every expectation is a float64 reference computed here from the formula (math.fsum over plain
Python floats) on the values actually stored in the file, never losscli's own output.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import losscli

from conftest import run_cli, single_file

REL = 1e-12


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261130)


def assert_refused(r, code: int, *needles: str) -> str:
    """One `losscli: error:` line on stderr, nothing on stdout, the documented exit code."""
    assert r.code == code, (r.code, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("losscli: error: "), r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def ok_json(r) -> dict:
    assert r.code == 0, r.stderr
    return r.json()


# ---------------------------------------------------------------- references (float64, by hand)


def ref_ce_ids(logp: np.ndarray, t: np.ndarray, ignore: int | None = None) -> tuple[float, int]:
    """mean of -log p[target] over the rows whose target is not ``ignore``, and that count."""
    terms = [-float(row[k]) for row, k in zip(logp.tolist(), t.tolist(), strict=True) if k != ignore]
    return math.fsum(terms) / len(terms), len(terms)


def log_softmax(z: np.ndarray) -> np.ndarray:
    out = []
    for row in np.asarray(z, np.float64).tolist():
        m = max(row)
        lse = m + math.log(math.fsum(math.exp(v - m) for v in row))
        out.append([v - lse for v in row])
    return np.array(out)


def log_of(p: np.ndarray) -> np.ndarray:
    """log of every stored probability, in float64 (math.log per value; -inf for 0)."""
    rows = np.asarray(p, np.float64).tolist()
    return np.array([[math.log(v) if v > 0 else -math.inf for v in row] for row in rows])


def bf16(x: np.ndarray) -> np.ndarray:
    """bfloat16 by truncation: keep the top 16 bits of each float32 (8-bit mantissa)."""
    bits = np.asarray(x, np.float32).view(np.uint32) & np.uint32(0xFFFF0000)
    return bits.view(np.float32)


def softmax64(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------- item 1: --ignore-index


ISSUE_P = np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
ISSUE_T = np.array([0, 1, 2])


def test_issue_reproduction_ignore_a_valid_class(tmp_path: Path) -> None:
    np.save(tmp_path / "lp.npy", np.log(ISSUE_P))
    np.save(tmp_path / "t.npy", ISSUE_T)
    want = math.fsum([-math.log(0.5), -math.log(0.6)]) / 2  # 0.601986..., torch's nll_loss
    r = run_cli(
        "ce",
        tmp_path / "lp.npy",
        tmp_path / "t.npy",
        "--input",
        "logprobs",
        "--ignore-index",
        "1",
        "-f",
        "json",
    )
    got = ok_json(r)
    assert got["value"] == pytest.approx(want, rel=REL)
    assert (got["n"], got["ignored"]) == (2, 1)
    # the same scores are valid logits (log-probabilities are logits): perplexity masks too
    r = run_cli(
        "perplexity",
        "--logits",
        tmp_path / "lp.npy",
        "--targets",
        tmp_path / "t.npy",
        "--ignore-index",
        "1",
        "-f",
        "json",
    )
    got = ok_json(r)
    assert got["value"] == pytest.approx(math.exp(want), rel=REL)
    assert (got["n"], got["ignored"]) == (2, 1)


def _ignore_data(rng: np.random.Generator, n: int, c: int, ignore: int) -> tuple[np.ndarray, np.ndarray]:
    p = rng.dirichlet(np.ones(c), n)
    t = rng.integers(0, c, n)
    t[rng.random(n) < 0.3] = ignore
    return p, t


@pytest.mark.parametrize("kind", ["probs", "logits", "logprobs"])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_ignore_index_every_position_and_input_kind(rng, kind: str, where: str) -> None:
    c = 5
    ignore = {"first": 0, "middle": 2, "last": c - 1}[where]
    p, t = _ignore_data(rng, 200, c, ignore)
    offsets = rng.normal(0, 3, (200, 1))
    scores = {"probs": p, "logprobs": np.log(p), "logits": np.log(p) + offsets}[kind]
    want, n = ref_ce_ids(log_of(p) if kind != "logits" else log_softmax(scores), t, ignore)
    for chunk in (1, 7, 64, None):
        got = losscli.evaluate("ce", scores, t, input=kind, ignore_index=ignore, chunk_size=chunk)
        assert got.value == pytest.approx(want, rel=1e-11), chunk
        assert (got.n, got.ignored) == (n, 200 - n)
    if kind == "logits":
        got = losscli.evaluate("perplexity", scores, t, ignore_index=ignore, chunk_size=13)
        assert got.value == pytest.approx(math.exp(want), rel=1e-11)
        assert (got.n, got.ignored) == (n, 200 - n)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "npy"])
def test_ignore_index_in_every_format_two_files(tmp_path: Path, rng, fmt: str) -> None:
    p, t = _ignore_data(rng, 60, 4, 3)
    want, n = ref_ce_ids(log_of(p), t, 3)
    pf = single_file(tmp_path, fmt, "p", p)
    tf = single_file(tmp_path, fmt, "t", t)
    got = ok_json(run_cli("ce", pf, tf, "--input", "probs", "--ignore-index", "3", "-f", "json"))
    assert got["value"] == pytest.approx(want, rel=REL)
    assert (got["n"], got["ignored"]) == (n, 60 - n)


def test_ignore_index_one_file_written_by_pandas_and_polars(tmp_path: Path, rng) -> None:
    p, t = _ignore_data(rng, 80, 3, 0)
    want, n = ref_ce_ids(log_of(p), t, 0)
    df = pd.DataFrame(p, columns=["a", "b", "c"]).assign(label=t)
    df.to_csv(tmp_path / "pd.csv", index=False)
    df.to_parquet(tmp_path / "pd.parquet")
    pl.from_pandas(df).write_csv(tmp_path / "pl.csv")
    for name in ("pd.csv", "pd.parquet", "pl.csv"):
        r = run_cli(
            "ce",
            tmp_path / name,
            "--target-col",
            "label",
            "--input",
            "probs",
            "--ignore-index",
            "0",
            "-f",
            "json",
        )
        got = ok_json(r)
        assert got["value"] == pytest.approx(want, rel=REL), name
        assert (got["n"], got["ignored"]) == (n, 80 - n)


def test_ignore_index_absent_from_some_chunks_and_threads(tmp_path: Path, rng) -> None:
    """Ignored rows only in the first 10 of 1000: most chunks hold none; two worker threads."""
    c = 6
    z = rng.normal(0, 2, (1000, c)).astype(np.float64)
    t = rng.integers(0, c, 1000)
    t[:10] = 2
    t[10:][t[10:] == 2] = 1
    want, n = ref_ce_ids(log_softmax(z), t, 2)
    assert n == 990
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "t.npy", t)
    for extra in (["--chunk-size", "7"], ["--chunk-size", "64", "--threads", "2"], ["--threads", "2"]):
        r = run_cli(
            "ce",
            tmp_path / "z.npy",
            tmp_path / "t.npy",
            "--input",
            "logits",
            "--ignore-index",
            "2",
            "-f",
            "json",
            *extra,
        )
        got = ok_json(r)
        assert got["value"] == pytest.approx(want, rel=REL), extra
        assert (got["n"], got["ignored"]) == (990, 10)
        r = run_cli(
            "perplexity",
            "--logits",
            tmp_path / "z.npy",
            "--targets",
            tmp_path / "t.npy",
            "--ignore-index",
            "2",
            "-f",
            "json",
            *extra,
        )
        got = ok_json(r)
        assert got["cross_entropy"] == pytest.approx(want, rel=REL), extra
        assert (got["n"], got["ignored"]) == (990, 10)


def test_gpt2_pad_id_is_a_real_token(tmp_path: Path, rng) -> None:
    v, pad = 50257, 50256
    z = rng.normal(0, 1, (12, v)).astype(np.float32)
    t = rng.integers(0, v - 1, 12)
    t[8:] = pad  # right padding with eos, as GPT-2 batches are padded
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "t.npy", t)
    want, n = ref_ce_ids(log_softmax(z), t, pad)
    assert n == 8
    r = run_cli(
        "perplexity",
        "--logits",
        tmp_path / "z.npy",
        "--targets",
        tmp_path / "t.npy",
        "--ignore-index",
        str(pad),
        "-f",
        "json",
    )
    got = ok_json(r)
    assert (got["n"], got["ignored"]) == (8, 4)
    assert got["cross_entropy"] == pytest.approx(want, rel=1e-6)  # float32 logits: float32 work


@pytest.mark.parametrize("ignore", [0, 1, 2])
def test_every_row_ignored_is_refused(tmp_path: Path, ignore: int) -> None:
    np.save(tmp_path / "lp.npy", np.log(ISSUE_P))
    np.save(tmp_path / "t.npy", np.full(3, ignore))
    args = ("--ignore-index", str(ignore))
    line = assert_refused(
        run_cli("ce", tmp_path / "lp.npy", tmp_path / "t.npy", "--input", "logprobs", *args),
        3,
        "nothing was scored",
    )
    assert f"ignore index {ignore}" in line
    line = assert_refused(
        run_cli(
            "perplexity",
            "--logits",
            tmp_path / "lp.npy",
            "--targets",
            tmp_path / "t.npy",
            "--chunk-size",
            "1",
            *args,
        ),
        3,
        "nothing was scored",
    )
    assert f"ignore index {ignore}" in line


# ---------------------------------------------------------------- item 5: --input auto for ce


def _softmax_case(rng: np.random.Generator, n: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    z = rng.normal(0, 2, (n, c))
    p = softmax64(z)
    t = np.array([rng.choice(c, p=row) for row in p])  # targets drawn from the model: no p == 0
    return p, t


@pytest.mark.parametrize("storage", ["bf16", "fp16"])
def test_auto_reads_low_precision_softmax_as_probabilities(tmp_path: Path, rng, storage: str) -> None:
    p, t = _softmax_case(rng, 300, 10)
    stored = bf16(p) if storage == "bf16" else p.astype(np.float16)
    sums = stored.astype(np.float64).sum(axis=1)
    # bf16 goes beyond the old detection tolerance (1e-3); fp16 stays within it but is warned about
    assert np.abs(sums - 1).max() > (1e-3 if storage == "bf16" else 1e-6)
    np.save(tmp_path / "p.npy", stored)
    np.save(tmp_path / "t.npy", t)
    want, _ = ref_ce_ids(log_of(stored), t)  # CE on the stored, unnormalised values
    for extra in ([], ["--chunk-size", "32", "--threads", "2"]):
        got = ok_json(run_cli("ce", tmp_path / "p.npy", tmp_path / "t.npy", "-f", "json", *extra))
        assert (got["input"], got["input_detected"]) == ("probs", True)
        assert got["value"] == pytest.approx(want, rel=REL)
        worst = int(np.argmax(np.abs(sums - 1)))
        (warning,) = got["warnings"]
        assert f"row {worst} sums to" in warning and "not renormalised" in warning


def test_auto_reads_two_decimal_probabilities_from_pandas_and_polars(tmp_path: Path, rng) -> None:
    """predict_proba rounded to 2 decimals, 20 classes: rows off by up to ~0.05."""
    p, _ = _softmax_case(rng, 400, 20)
    rounded = np.round(p, 2)
    t = np.array([rng.choice(np.flatnonzero(row > 0)) for row in rounded])
    dev = np.abs(rounded.sum(axis=1) - 1)
    assert 0.02 < dev.max() <= 0.1
    cols = [f"class_{j}" for j in range(20)]
    df = pd.DataFrame(rounded, columns=cols).assign(label=t)
    df.to_csv(tmp_path / "pd.csv", index=False)
    pl.from_pandas(df).write_parquet(tmp_path / "pl.parquet")
    pd.DataFrame(rounded, columns=cols).to_csv(tmp_path / "probs.csv", index=False)
    pd.DataFrame({"label": t}).to_csv(tmp_path / "labels.csv", index=False)
    df.to_csv(tmp_path / "pd.tsv", sep="\t", index=False)
    # the reference reads the numbers back the way any CSV reader does
    stored = pd.read_csv(tmp_path / "pd.csv")[cols].to_numpy()
    want, _ = ref_ce_ids(log_of(stored), t)
    runs = [
        (tmp_path / "pd.csv", "--target-col", "label"),
        (tmp_path / "pl.parquet", "--target-col", "label"),
        (tmp_path / "probs.csv", tmp_path / "labels.csv"),
        (tmp_path / "pd.tsv", "--target-col", "label"),
    ]
    for args in runs:
        got = ok_json(run_cli("ce", *args, "-f", "json"))
        assert (got["input"], got["input_detected"]) == ("probs", True), args
        assert got["value"] == pytest.approx(want, rel=REL), args
        assert any("do not sum to 1" in w for w in got["warnings"])
    report = losscli.evaluate("ce", stored, t)
    assert report.input_kind == "probs" and report.value == pytest.approx(want, rel=REL)


@pytest.mark.parametrize("total", [0.8, 1.2, 0.5])
def test_auto_refuses_scores_in_unit_range_that_do_not_sum_to_one(tmp_path: Path, total: float) -> None:
    p = np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.3, 0.3, 0.4]])
    p[2] *= total  # row 2 sums to `total`
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "t.npy", np.array([0, 1, 2, 0]))
    line = assert_refused(
        run_cli("ce", tmp_path / "p.npy", tmp_path / "t.npy"), 2, "p.npy", "row 2", "--input"
    )
    assert f"{total:g}" in line
    with pytest.raises(losscli.LossCliError) as info:
        losscli.evaluate("ce", p, np.array([0, 1, 2, 0]))
    assert info.value.exit_code == 2
    # said explicitly, they are scored as given (never renormalised), with a warning
    got = ok_json(run_cli("ce", tmp_path / "p.npy", tmp_path / "t.npy", "--input", "probs", "-f", "json"))
    want, _ = ref_ce_ids(log_of(p), np.array([0, 1, 2, 0]))
    assert got["value"] == pytest.approx(want, rel=REL)
    assert any("row 2 sums to" in w for w in got["warnings"])


def test_auto_checks_every_chunk_not_only_the_first(tmp_path: Path, rng) -> None:
    p, t = _softmax_case(rng, 200, 4)
    bad_sum = p.copy()
    bad_sum[150] *= 0.8
    np.save(tmp_path / "p.npy", bad_sum)
    np.save(tmp_path / "t.npy", t)
    for extra in (["--chunk-size", "50"], ["--chunk-size", "50", "--threads", "2"]):
        assert_refused(
            run_cli("ce", tmp_path / "p.npy", tmp_path / "t.npy", *extra), 2, "row 150", "0.8", "--input"
        )
    # a later chunk that is plainly not probabilities (a value above 1)
    logits_later = p.copy()
    logits_later[170, 1] = 3.5
    np.save(tmp_path / "p2.npy", logits_later)
    assert_refused(
        run_cli("ce", tmp_path / "p2.npy", tmp_path / "t.npy", "--chunk-size", "50"),
        2,
        "row 170",
        "3.5",
        "--input logits",
    )
    # log-probabilities: detected from the first chunk, a later row whose exp sums to 0.8
    np.save(tmp_path / "lp.npy", np.log(bad_sum))
    args = ("ce", tmp_path / "lp.npy", tmp_path / "t.npy")
    got = ok_json(run_cli(*args, "--input", "logprobs", "-f", "json"))
    assert any("row 150 sums to 0.8" in w for w in got["warnings"])
    want, _ = ref_ce_ids(np.log(bad_sum), t)
    assert got["value"] == pytest.approx(want, rel=REL)
    assert_refused(
        run_cli("ce", tmp_path / "lp.npy", tmp_path / "t.npy", "--chunk-size", "50"),
        2,
        "row 150",
        "0.8",
        "--input",
    )
    # pandas CSV, streamed in chunks
    pd.DataFrame(bad_sum).assign(label=t).to_csv(tmp_path / "p.csv", index=False)
    assert_refused(
        run_cli("ce", tmp_path / "p.csv", "--target-col", "label", "--chunk-size", "50"), 2, "row 150"
    )


def test_bce_auto_later_chunk_outside_unit_range_asks_for_input(tmp_path: Path) -> None:
    p = np.full(100, 0.3)
    p[80] = 2.5  # a logit after 50 rows that looked like probabilities
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", np.ones(100))
    assert_refused(
        run_cli("bce", tmp_path / "p.npy", tmp_path / "y.npy", "--chunk-size", "50"),
        2,
        "row 80",
        "--input logits",
    )
    # values in [0, 1] stay probabilities for bce, whatever they sum to
    q = np.array([0.2, 0.9, 0.7])
    got = losscli.evaluate("bce", q, np.array([0.0, 1.0, 1.0]))
    assert got.input_kind == "probs"
    want = math.fsum([-math.log(0.8), -math.log(0.9), -math.log(0.7)]) / 3
    assert got.value == pytest.approx(want, rel=REL)


def test_rows_the_ignore_index_removes_do_not_decide_the_input_kind(tmp_path: Path, rng) -> None:
    """Padding rows zero-filled by a data loader: not scored, so their sums neither refuse nor warn."""
    p, t = _softmax_case(rng, 40, 5)
    p[30:] = 0.0
    t[30:] = -100
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "t.npy", t)
    want, n = ref_ce_ids(log_of(p), t, -100)
    for extra in ([], ["--chunk-size", "8"], ["--input", "probs"]):
        got = ok_json(run_cli("ce", tmp_path / "p.npy", tmp_path / "t.npy", "-f", "json", *extra))
        assert got["input"] == "probs" and (got["n"], got["ignored"]) == (n, 40 - n) == (30, 10)
        assert got["value"] == pytest.approx(want, rel=REL)
        assert not any("sum to 1" in w for w in got.get("warnings", [])), got.get("warnings")


# ---------------------------------------------------------------- item 7: weights summing to zero


def _metric_data(metric: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    if metric in ("mse", "mae"):
        return rng.normal(size=n), rng.normal(size=n)
    if metric == "bce":
        return rng.uniform(0.05, 0.95, n), rng.integers(0, 2, n).astype(float)
    return rng.normal(0, 1, (n, 3)), rng.integers(0, 3, n)


@pytest.mark.parametrize("metric", ["mse", "mae", "bce", "ce", "perplexity"])
def test_weights_summing_to_zero_are_refused(tmp_path: Path, rng, metric: str) -> None:
    p, y = _metric_data(metric, rng, 30)
    pf, yf = single_file(tmp_path, "npy", "p", p), single_file(tmp_path, "npy", "y", y)
    pd.DataFrame({"w": np.zeros(30)}).to_csv(tmp_path / "w.csv", index=False)
    inputs = ["--logits", pf, "--targets", yf] if metric == "perplexity" else [pf, yf]
    assert_refused(
        run_cli(metric, *inputs, "--weights", tmp_path / "w.csv"), 3, "w.csv", "weights sum to zero"
    )
    # --weight-col in a file written by pandas
    if metric in ("mse", "mae", "bce"):
        pd.DataFrame({"y_pred": p, "y_true": y, "wt": np.zeros(30)}).to_csv(tmp_path / "all.csv", index=False)
        assert_refused(
            run_cli(metric, tmp_path / "all.csv", "--weight-col", "wt"),
            3,
            "all.csv",
            "'wt'",
            "weights sum to zero",
        )
    # the API's sample_weight, through evaluate and the shortcuts
    with pytest.raises(losscli.InputError, match="weights sum to zero") as info:
        losscli.evaluate(metric, p, y, weights=np.zeros(30))
    assert info.value.exit_code == 3
    shortcut = {"mse": losscli.mse, "mae": losscli.mae, "bce": losscli.bce, "ce": losscli.cross_entropy}
    if metric in shortcut:
        with pytest.raises(losscli.InputError, match="weights sum to zero"):
            shortcut[metric](p, y, sample_weight=np.zeros(30))


def test_weights_zero_on_every_scored_row(tmp_path: Path, rng) -> None:
    """Judged on the final result: weight only on rows the ignore index removes, over two chunks."""
    z, t = rng.normal(0, 1, (20, 3)), rng.integers(0, 3, 20)
    t[:5] = -100
    w = np.zeros(20)
    w[:5] = 1.0
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "t.npy", t)
    np.save(tmp_path / "w.npy", w)
    assert_refused(
        run_cli(
            "ce", tmp_path / "z.npy", tmp_path / "t.npy", "--weights", tmp_path / "w.npy", "--chunk-size", "4"
        ),
        3,
        "w.npy",
        "weights sum to zero",
    )
    # a zero-weight chunk among weighted ones is fine: the weighted mean over the others
    w2 = np.ones(20)
    w2[:10] = 0.0
    got = losscli.evaluate("ce", z, t, weights=w2, chunk_size=4)
    want, _ = ref_ce_ids(log_softmax(z)[10:], t[10:])
    assert got.value == pytest.approx(want, rel=REL)


# ---------------------------------------------------------------- item 8: log-probabilities above 0


def test_ce_logprobs_above_zero_are_refused_like_probs_above_one(tmp_path: Path) -> None:
    lp = np.log(ISSUE_P)
    lp[1, 2] = 0.25
    np.save(tmp_path / "lp.npy", lp)
    np.save(tmp_path / "t.npy", ISSUE_T)
    assert_refused(
        run_cli("ce", tmp_path / "lp.npy", tmp_path / "t.npy", "--input", "logprobs"),
        3,
        "lp.npy",
        "row 1",
        "column",
        "0.25",
    )
    pd.DataFrame(lp, columns=["a", "b", "c"]).assign(label=ISSUE_T).to_csv(tmp_path / "lp.csv", index=False)
    assert_refused(
        run_cli("ce", tmp_path / "lp.csv", "--target-col", "label", "--input", "logprobs"),
        3,
        "row 1",
        "column 'c'",
        "above 0",
    )
    np.save(tmp_path / "ilp.npy", np.array([[0, -1, -2], [-1, -3, 2], [-1, -1, -1]]))  # integer dtype
    assert_refused(
        run_cli("ce", tmp_path / "ilp.npy", tmp_path / "t.npy", "--input", "logprobs"), 3, "row 1", "above 0"
    )
    p = ISSUE_P.copy()
    p[1, 2] = 1.25
    np.save(tmp_path / "p.npy", p)
    assert_refused(
        run_cli("ce", tmp_path / "p.npy", tmp_path / "t.npy", "--input", "probs"),
        3,
        "row 1",
        "column",
        "1.25",
    )


def test_logprob_rounding_tolerance_is_one_rule(tmp_path: Path) -> None:
    """5e-6 above 0 is float32 rounding of log(1) (accepted, scored as given); 1e-3 is not."""
    lp = np.log(ISSUE_P)
    lp[0] = [5e-6, -40.0, -40.0]  # a confident row whose log_softmax rounded above 0
    np.save(tmp_path / "lp.npy", lp)
    np.save(tmp_path / "t.npy", ISSUE_T)
    got = ok_json(run_cli("ce", tmp_path / "lp.npy", tmp_path / "t.npy", "--input", "logprobs", "-f", "json"))
    assert got["value"] == pytest.approx(math.fsum([-5e-6, -math.log(0.8), -math.log(0.6)]) / 3, rel=REL)
    tokens = np.array([-0.5, 5e-6, -1.25])
    np.save(tmp_path / "tok.npy", tokens)
    got = ok_json(run_cli("perplexity", "--logprobs", tmp_path / "tok.npy", "-f", "json"))
    assert got["cross_entropy"] == pytest.approx(math.fsum([0.5, -5e-6, 1.25]) / 3, rel=REL)
    tokens[1] = 1e-3
    np.save(tmp_path / "tok.npy", tokens)
    assert_refused(run_cli("perplexity", "--logprobs", tmp_path / "tok.npy"), 3, "row 1", "above 0")
    pd.DataFrame({"logprob": tokens}).to_csv(tmp_path / "tok.csv", index=False)
    assert_refused(
        run_cli("perplexity", "--logprobs", tmp_path / "tok.csv"), 3, "tok.csv", "row 1", "above 0"
    )
    lp[0, 0] = 1e-3
    np.save(tmp_path / "lp.npy", lp)
    assert_refused(
        run_cli("ce", tmp_path / "lp.npy", tmp_path / "t.npy", "--input", "logprobs"), 3, "row 0", "above 0"
    )


# ---------------------------------------------------------------- item 9: float16 inputs


def _fp16_case(metric: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, str, float]:
    """float16 preds/targets and the float64 reference on exactly the stored values."""
    if metric in ("mse", "mae"):
        # magnitudes apart, so p - y is not a float16 number (close values would subtract exactly)
        p = rng.normal(0, 30, n).astype(np.float16)
        y = rng.normal(0, 1, n).astype(np.float16)
        d = [a - b for a, b in zip(p.astype(np.float64).tolist(), y.astype(np.float64).tolist(), strict=True)]
        terms = [v * v for v in d] if metric == "mse" else [abs(v) for v in d]
        return p, y, "auto", math.fsum(terms) / n
    if metric == "bce-probs":
        p = rng.uniform(0.01, 0.99, n).astype(np.float16)
        y = rng.uniform(0, 1, n).astype(np.float16)  # soft labels
        terms = [
            -(b * math.log(a) + (1 - b) * math.log1p(-a))
            for a, b in zip(p.astype(np.float64).tolist(), y.astype(np.float64).tolist(), strict=True)
        ]
        return p, y, "probs", math.fsum(terms) / n
    if metric == "bce-logits":
        x = rng.normal(0, 3, n).astype(np.float16)
        y = rng.uniform(0, 1, n).astype(np.float16)
        terms = [
            max(a, 0.0) - a * b + math.log1p(math.exp(-abs(a)))
            for a, b in zip(x.astype(np.float64).tolist(), y.astype(np.float64).tolist(), strict=True)
        ]
        return x, y, "logits", math.fsum(terms) / n
    c = 6
    p16 = softmax64(rng.normal(0, 2, (n, c))).astype(np.float16)
    p16 = np.maximum(p16, np.float16(1e-3))
    soft = softmax64(rng.normal(0, 1, (n, c))).astype(np.float16)
    p64, s64 = p16.astype(np.float64).tolist(), soft.astype(np.float64).tolist()
    if metric == "ce-probs-soft":
        terms = [
            -math.fsum(q * math.log(v) for q, v in zip(s, r, strict=True))
            for s, r in zip(s64, p64, strict=True)
        ]
        return p16, soft, "probs", math.fsum(terms) / n
    lp16 = np.log(p16.astype(np.float64)).astype(np.float16)
    lp64 = lp16.astype(np.float64).tolist()
    terms = [-math.fsum(q * v for q, v in zip(s, r, strict=True)) for s, r in zip(s64, lp64, strict=True)]
    return lp16, soft, "logprobs", math.fsum(terms) / n


@pytest.mark.parametrize(
    "metric", ["mse", "mae", "bce-probs", "bce-logits", "ce-probs-soft", "ce-logprobs-soft"]
)
def test_float16_inputs_are_widened_before_any_arithmetic(tmp_path: Path, rng, metric: str) -> None:
    p, y, kind, want = _fp16_case(metric, rng, 500)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    command = metric.split("-")[0]
    option = [] if command in ("mse", "mae") else ["--input", kind]
    got = ok_json(
        run_cli(command, tmp_path / "p.npy", tmp_path / "y.npy", *option, "-f", "json", "--chunk-size", "64")
    )
    assert got["value"] == pytest.approx(want, rel=REL)
    assert losscli.evaluate(command, p, y, input=kind, chunk_size=100).value == pytest.approx(want, rel=REL)
    if p.ndim == 1:  # one Parquet file with halffloat columns, as pyarrow writes float16
        pq.write_table(pa.table({"y_pred": pa.array(p), "y_true": pa.array(y)}), tmp_path / "h.parquet")
        got = ok_json(run_cli(command, tmp_path / "h.parquet", *option, "-f", "json"))
        assert got["value"] == pytest.approx(want, rel=REL)


def test_float16_ce_with_class_ids_probs_and_logprobs(tmp_path: Path, rng) -> None:
    p, t = _softmax_case(rng, 300, 8)
    p16 = np.maximum(p, 1e-3).astype(np.float16)
    np.save(tmp_path / "p.npy", p16)
    np.save(tmp_path / "t.npy", t)
    want, _ = ref_ce_ids(log_of(p16), t)
    got = ok_json(run_cli("ce", tmp_path / "p.npy", tmp_path / "t.npy", "--input", "probs", "-f", "json"))
    assert got["value"] == pytest.approx(want, rel=REL)
    lp16 = np.log(p16.astype(np.float64)).astype(np.float16)
    np.save(tmp_path / "lp.npy", lp16)
    want, _ = ref_ce_ids(lp16.astype(np.float64), t)
    got = ok_json(run_cli("ce", tmp_path / "lp.npy", tmp_path / "t.npy", "--input", "logprobs", "-f", "json"))
    assert got["value"] == pytest.approx(want, rel=REL)


# ---------------------------------------------------------------- item 15 (first clause): weights shape


def test_weights_with_two_columns_are_bad_data_naming_the_file(tmp_path: Path, rng) -> None:
    p, y = rng.normal(size=10), rng.normal(size=10)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "w2.npy", np.ones((10, 2)))
    assert_refused(
        run_cli("mse", tmp_path / "p.npy", tmp_path / "y.npy", "--weights", tmp_path / "w2.npy"),
        3,
        "w2.npy",
        "2 per row",
    )
    pd.DataFrame({"a": np.ones(10), "b": np.ones(10)}).to_csv(tmp_path / "w2.csv", index=False)
    assert_refused(
        run_cli("mse", tmp_path / "p.npy", tmp_path / "y.npy", "--weights", tmp_path / "w2.csv"), 3, "w2.csv"
    )
    with pytest.raises(losscli.InputError, match="one number per example"):
        losscli.evaluate("mse", p, y, weights=np.ones((10, 2)))
