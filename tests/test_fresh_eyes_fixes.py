"""Fixes from a fresh-eyes user review: each test fails on the code before the fix.

1. bce --input auto: probabilities with a stray value are refused (exit 2), whatever the chunk size.
2. pandas' default header in both files of a run (integer values below it) is a header in both.
3. A failed write to stdout (``> /dev/full``) is exit 4 with one line, not an internal error.
4. --words 0 / --bytes 0 reach the "at least 1" check instead of being dropped as unset.
5. Two inputs that read stdin (under any name) or the same pipe: a usage error before reading.
6. API messages: only real choices are quoted (``input="logits"``), never prose after --input.

Every expected value is a float64 reference computed here from the formula.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import losscli
from losscli.errors import AmbiguousInput, UsageError

from conftest import run_cli, write_parquet

# ---------------------------------------------------------------- item 1: bce auto, stray values


def bce_probs_ref(p: np.ndarray, y: np.ndarray) -> float:
    """Mean binary cross-entropy from probabilities, in float64 (no clamping needed here)."""
    return math.fsum(
        -(yi * math.log(pi) + (1 - yi) * math.log(1 - pi)) for pi, yi in zip(p, y, strict=True)
    ) / len(p)


def bce_logits_ref(z: np.ndarray, y: np.ndarray) -> float:
    """Mean binary cross-entropy from logits: max(z, 0) - z*y + log(1 + exp(-|z|))."""
    terms = (max(zi, 0.0) - zi * yi + math.log1p(math.exp(-abs(zi))) for zi, yi in zip(z, y, strict=True))
    return math.fsum(terms) / len(z)


@pytest.fixture(scope="module")
def stray(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5,000 probabilities in (0, 1) with p[4000] = 1.7 and 0/1 labels, in every format."""
    d = tmp_path_factory.mktemp("stray")
    rng = np.random.default_rng(91)
    p = rng.uniform(0.01, 0.99, 5000)
    p[4000] = 1.7
    y = (rng.uniform(size=5000) < 0.5).astype(np.float64)
    np.save(d / "p.npy", p)
    np.save(d / "y.npy", y)
    pd.DataFrame({"y_pred": p}).to_csv(d / "p.csv", index=False)
    pd.DataFrame({"y_true": y}).to_csv(d / "y.csv", index=False)
    pd.DataFrame({"y_pred": p}).to_csv(d / "p.tsv", index=False, sep="\t")
    pd.DataFrame({"y_true": y}).to_csv(d / "y.tsv", index=False, sep="\t")
    write_parquet(d / "both.parquet", {"y_pred": p, "y_true": y})
    return d


@pytest.mark.parametrize("chunk", [None, 1000, 4000, 4001, 100_000])
@pytest.mark.parametrize(
    "files", [("p.npy", "y.npy"), ("p.csv", "y.csv"), ("p.tsv", "y.tsv"), ("both.parquet",)]
)
def test_bce_auto_stray_value_refused_whatever_the_chunk_size(
    stray: Path, files: tuple[str, ...], chunk: int | None
) -> None:
    args = [stray / f for f in files]
    if len(files) == 1:
        args += ["--pred-col", "y_pred", "--target-col", "y_true"]
    if chunk is not None:
        args += ["--chunk-size", chunk]
    r = run_cli("bce", *args)
    assert r.code == 2, r.stderr
    assert r.stdout == ""
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "row 4000" in line and "1.7" in line and "--input logits" in line and "fix the value" in line


def test_bce_auto_stray_value_api(stray: Path) -> None:
    with pytest.raises(AmbiguousInput, match=r"row 4000.*1\.7.*input=\"logits\""):
        losscli.evaluate("bce", stray / "p.npy", stray / "y.npy")
    # told what they are, the same file is scored (as logits) with no refusal
    z, y = np.load(stray / "p.npy"), np.load(stray / "y.npy")
    report = losscli.evaluate("bce", stray / "p.npy", stray / "y.npy", input="logits")
    assert report.n == 5000 and report.value == pytest.approx(bce_logits_ref(z, y), rel=1e-12)


@pytest.mark.parametrize("value", [1.0000001, -1e-9, 3.0])
def test_bce_auto_one_value_just_outside_is_refused(tmp_path: Path, value: float) -> None:
    rng = np.random.default_rng(7)
    p = rng.uniform(0.05, 0.95, 200)
    p[17] = value
    y = (rng.uniform(size=200) < 0.5).astype(np.float64)
    pd.DataFrame({"y_pred": p}).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({"y_true": y}).to_csv(tmp_path / "y.csv", index=False)
    r = run_cli("bce", tmp_path / "p.csv", tmp_path / "y.csv")
    assert r.code == 2 and r.stdout == ""
    assert "row 17" in r.stderr and repr(value) in r.stderr and "--input logits" in r.stderr


def test_bce_auto_stray_value_in_a_multi_output_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    p = rng.uniform(0.05, 0.95, (300, 3))
    p[120, 2] = 1.25
    y = (rng.uniform(size=(300, 3)) < 0.5).astype(np.float64)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    r = run_cli("bce", tmp_path / "p.npy", tmp_path / "y.npy")
    assert r.code == 2 and "row 120" in r.stderr and "1.25" in r.stderr


@pytest.mark.parametrize("chunk", [None, 64])
def test_bce_auto_real_logits_still_detected(tmp_path: Path, chunk: int | None) -> None:
    """Logits straddle 0 with most outside [0, 1]: read as logits, the value from the formula."""
    rng = np.random.default_rng(9)
    z = rng.normal(0.0, 3.0, 2000)
    y = (rng.uniform(size=2000) < 0.5).astype(np.float64)
    np.save(tmp_path / "z.npy", z)
    pd.DataFrame({"y_true": y}).to_csv(tmp_path / "y.csv", index=False)
    extra = [] if chunk is None else ["--chunk-size", chunk]
    r = run_cli("bce", tmp_path / "z.npy", tmp_path / "y.csv", "-f", "json", *extra)
    assert r.code == 0, r.stderr
    out = r.json()
    assert out["input"] == "logits" and out["n"] == 2000
    assert out["value"] == pytest.approx(bce_logits_ref(z, y), rel=1e-12)
    # clean probabilities are still probabilities
    p = 1.0 / (1.0 + np.exp(-z))
    np.save(tmp_path / "p.npy", p)
    out = run_cli("bce", tmp_path / "p.npy", tmp_path / "y.csv", "-f", "json", *extra).json()
    assert out["input"] == "probs" and out["value"] == pytest.approx(bce_probs_ref(p, y), rel=1e-9)


def test_bce_help_and_readme_state_the_rule() -> None:
    assert "90%" in " ".join(run_cli("bce", "--help").stdout.split())
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "90%" in readme


# ---------------------------------------------------------------- item 2: pandas headers in both files


@pytest.mark.parametrize("sep", [",", "\t"])
@pytest.mark.parametrize("width", [1, 3])
def test_pandas_default_header_in_both_integer_files(tmp_path: Path, width: int, sep: str) -> None:
    rng = np.random.default_rng(20 + width)
    a = rng.integers(0, 10, (60, width))
    b = rng.integers(0, 10, (60, width))
    ext = "csv" if sep == "," else "tsv"
    pd.DataFrame(a).to_csv(tmp_path / f"p.{ext}", index=False, sep=sep)
    pd.DataFrame(b).to_csv(tmp_path / f"t.{ext}", index=False, sep=sep)
    assert (tmp_path / f"p.{ext}").read_text().splitlines()[0] == sep.join(str(j) for j in range(width))
    want = math.fsum(float(d) ** 2 for d in (a - b).ravel()) / a.size
    r = run_cli("mse", tmp_path / f"p.{ext}", tmp_path / f"t.{ext}", "-f", "json")
    assert r.code == 0, r.stderr
    out = r.json()
    assert out["n"] == 60 and out["value"] == pytest.approx(want, rel=1e-12)
    assert r.stderr.count("--no-header") == 2  # both guesses announced, with the way to force data
    report = losscli.evaluate("mse", tmp_path / f"p.{ext}", tmp_path / f"t.{ext}")
    assert report.n == 60 and report.value == pytest.approx(want, rel=1e-12)
    assert len(report.warnings) == 2
    # forced, both first rows are data (n + 1), as the warnings say
    out = run_cli("mse", tmp_path / f"p.{ext}", tmp_path / f"t.{ext}", "--no-header", "-f", "json").json()
    assert out["n"] == 61


def test_pandas_default_header_integer_logits_and_labels_for_ce(tmp_path: Path) -> None:
    """Integer logits (N, 3) and integer class ids, both from pandas: n is N, not N + 1."""
    rng = np.random.default_rng(31)
    z = rng.integers(-4, 5, (40, 3))
    ids = rng.integers(0, 3, 40)
    pd.DataFrame(z).to_csv(tmp_path / "scores.csv", index=False)
    pd.DataFrame(ids).to_csv(tmp_path / "labels.csv", index=False)
    rows = (
        math.log(math.fsum(math.exp(v) for v in row)) - float(row[k]) for row, k in zip(z, ids, strict=True)
    )
    want = math.fsum(rows) / 40
    r = run_cli("ce", tmp_path / "scores.csv", tmp_path / "labels.csv", "--input", "logits", "-f", "json")
    assert r.code == 0, r.stderr
    assert r.json()["n"] == 40 and r.json()["value"] == pytest.approx(want, rel=1e-12)


def test_lone_undecided_input_stays_data(tmp_path: Path) -> None:
    """Guard: one pandas-written integer file beside a .npy stays data (the .npy cannot vouch)."""
    a = np.array([3, 1, 4, 1, 5])
    pd.DataFrame(a).to_csv(tmp_path / "p.csv", index=False)
    t = np.array([0.0, 3.0, 1.0, 4.0, 1.0, 5.0])  # six rows: the header row "0" is one of them
    np.save(tmp_path / "t.npy", t)
    r = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.npy", "-f", "json")
    assert r.code == 0 and r.json()["n"] == 6 and r.json()["value"] == 0.0
    assert "read it as data" in r.stderr and "--header" in r.stderr


# ---------------------------------------------------------------- item 3: stdout on /dev/full


@pytest.fixture(scope="module")
def npy_pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("full")
    np.save(d / "a.npy", np.arange(20.0))
    np.save(d / "b.npy", np.arange(20.0) + 0.5)
    return d


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(
    "extra", [[], ["-f", "json"], ["-f", "csv"], ["-f", "value"], ["--per-example", "-"], ["--version"]]
)
def test_write_to_full_stdout_is_exit_4(npy_pair: Path, extra: list[str]) -> None:
    args = extra
    if extra != ["--version"]:
        args = ["mse", str(npy_pair / "a.npy"), str(npy_pair / "b.npy"), *extra]
    env = {k: v for k, v in os.environ.items() if k != "LOSSCLI_DEBUG"}
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            [sys.executable, "-c", "from losscli.entry import run; run()", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            env=env,
            timeout=120,
        )
    assert proc.returncode == 4
    assert proc.stderr.decode() == "losscli: error: stdout: write failed (No space left on device)\n"


# ---------------------------------------------------------------- item 4: --words 0, --bytes 0


@pytest.fixture(scope="module")
def lm_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("lm")
    rng = np.random.default_rng(4)
    np.save(d / "logits.npy", rng.normal(size=(30, 6)))
    np.save(d / "ids.npy", rng.integers(0, 6, 30))
    np.save(d / "lp.npy", -rng.uniform(0.1, 3.0, 30))
    (d / "text.txt").write_text("a few words of text\n")
    return d


@pytest.mark.parametrize("option", ["--words", "--bytes"])
@pytest.mark.parametrize("form", ["logits", "logprobs", "text"])
def test_zero_word_or_byte_count_is_refused(lm_files: Path, option: str, form: str) -> None:
    if form == "logprobs":
        base: list[object] = ["--logprobs", lm_files / "lp.npy"]
    else:
        base = ["--logits", lm_files / "logits.npy", "--targets", lm_files / "ids.npy"]
    if form == "text":
        base += ["--text", lm_files / "text.txt"]
    r = run_cli("perplexity", *base, option, "0")
    assert r.code == 2 and r.stdout == ""
    assert r.stderr.strip() == f"losscli: error: {option} must be at least 1"
    assert run_cli("perplexity", *base, option, "1").code == 0


@pytest.mark.parametrize("name", ["n_words", "n_bytes"])
def test_zero_counts_for_another_metric_are_refused_in_the_api(lm_files: Path, name: str) -> None:
    with pytest.raises(UsageError, match="only for perplexity"):
        losscli.evaluate("mse", lm_files / "lp.npy", lm_files / "lp.npy", **{name: 0})
    with pytest.raises(UsageError, match="at least 1"):
        losscli.evaluate("perplexity", logprobs=lm_files / "lp.npy", preds=None, **{name: 0})


# ---------------------------------------------------------------- item 5: stdin twice


@pytest.mark.parametrize(
    "pair",
    [
        ("/dev/stdin", "-"),
        ("-", "/dev/fd/0"),
        ("/dev/stdin", "/dev/stdin"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("-", "-"),
    ],
)
def test_two_inputs_from_stdin_are_a_usage_error(pair: tuple[str, str]) -> None:
    r = run_cli("mse", *pair, stdin=b"y\n1.0\n2.0\n3.0\n")
    assert r.code == 2 and r.stdout == ""
    assert r.stderr.startswith("losscli: error: only one input can come from stdin")
    assert r.stderr.count("\n") == 1


def test_stdin_as_weights_and_input(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("y\n1.0\n2.0\n3.0\n")
    r = run_cli("mse", "/dev/stdin", tmp_path / "t.csv", "--weights", "-", stdin=b"y\n1.0\n2.0\n3.0\n")
    assert r.code == 2 and "only one input can come from stdin" in r.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_same_fifo_twice_is_a_usage_error(tmp_path: Path) -> None:
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    r = run_cli("mse", fifo, fifo)  # before: hung, each open waiting for a writer
    assert r.code == 2 and "only one input can come from stdin or the same pipe" in r.stderr


def test_stdin_twice_in_the_api() -> None:
    with pytest.raises(UsageError, match="only one input can come from stdin"):
        losscli.evaluate("mse", "/dev/stdin", "-")


def test_one_stdin_input_still_works(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("y\n1.5\n2.0\n2.0\n")
    r = run_cli("mse", "/dev/stdin", tmp_path / "t.csv", "-f", "json", stdin=b"y\n1.0\n2.0\n3.0\n")
    assert r.code == 0 and r.json()["value"] == pytest.approx((0.25 + 0 + 1) / 3, rel=1e-15)


# ---------------------------------------------------------------- item 6: API wording


def test_bad_input_kind_reads_sensibly_in_python() -> None:
    with pytest.raises(UsageError) as info:
        losscli.cross_entropy([[0.5, 0.5]], [0], input="prob")
    message = str(info.value)
    assert 'input="must"' not in message and "--input" not in message
    assert "must be one of auto, probs, logits, logprobs" in message and "prob" in message


def test_real_choices_are_still_quoted() -> None:
    from losscli.wording import in_api_words

    text = "use --nan skip or --nan=error; pass --input logits (or --input logprobs); --input auto read"
    assert in_api_words(text) == (
        'use nan="skip" or nan="error"; pass input="logits" (or input="logprobs"); input="auto" read'
    )
    assert in_api_words("--nan must be error or skip") == "nan must be error or skip"
