"""Output contracts (issue 9, items 11-16 and 18): exit codes, stdout closing early, Ctrl-C mid-write,
file modes, unique machine columns, numbers that narrow terminals never cut, and a perplexity
footer that compares only what is comparable.

Expected numbers come from float64 formulas written here (numpy), never from losscli's output.
"""

from __future__ import annotations

import ast
import csv
import glob
import io
import json
import math
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from rich.cells import cell_len
from rich.console import Console

import losscli
from losscli.errors import InputError, UsageError
from losscli.render.machine import render_value
from losscli.render.table import fmt_number, report_renderable

from conftest import ROOT, SAMPLES, drain_pty, run_cli

LOSSCLI = [sys.executable, "-m", "losscli"]
PIPE_BUFFER = 65536


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LOSSCLI_DEBUG", None)
    return env


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


# ---------------------------------------------------------------- 11: stdout closed early: exit 141


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """Inputs whose outputs overflow a pipe buffer (64 KB) several times over."""
    d = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(11)
    n = 200_000
    p, y = rng.random(n), rng.random(n)
    np.save(d / "p.npy", p)
    np.save(d / "y.npy", y)
    pd.DataFrame({"p": p, "y": y}).to_parquet(d / "big.parquet")
    np.save(d / "wide_p.npy", rng.random((8, 4000)))  # 4000 outputs: a TSV/CSV row per output
    np.save(d / "wide_y.npy", rng.random((8, 4000)))
    return d


def _cases(d: Path) -> dict[str, list[str]]:
    npy = [str(d / "p.npy"), str(d / "y.npy")]
    return {
        "per-example parquet (the issue's case)": ["mse", str(d / "big.parquet"), "--per-example", "-"],
        "per-example npy 1 thread": ["mse", *npy, "--per-example", "-", "--threads", "1"],
        "per-example npy 2 threads": ["mse", *npy, "--per-example", "-", "--threads", "2"],
        "table 1 thread": ["mse", *npy, "-f", "table", "--top", "3000", "--threads", "1"],
        "table 2 threads": ["mse", *npy, "-f", "table", "--top", "3000", "--threads", "2"],
        "json 2 threads": ["mse", *npy, "-f", "json", "--top", "3000", "--threads", "2"],
        "json parquet": ["mae", str(d / "big.parquet"), "-f", "json", "--top", "3000"],
        "tsv multi-output": ["mse", str(d / "wide_p.npy"), str(d / "wide_y.npy"), "-f", "tsv"],
        "csv multi-output": ["mae", str(d / "wide_p.npy"), str(d / "wide_y.npy"), "-f", "csv"],
    }


CASES = list(_cases(Path("x")))


@pytest.mark.parametrize("case", CASES)
def test_reader_leaving_early_is_exit_141_quietly(big: Path, case: str) -> None:
    args = _cases(big)[case]
    full = subprocess.run([*LOSSCLI, *args], capture_output=True, env=_env(), timeout=120)
    assert full.returncode == 0, full.stderr
    assert len(full.stdout) > 2 * PIPE_BUFFER  # really more than the pipe holds
    err = big / "err.txt"
    cmd = f"{shlex.join([*LOSSCLI, *args])} 2>{err} | head -c 100 >/dev/null; exit ${{PIPESTATUS[0]}}"
    out = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], env=_env(), timeout=120)
    assert out.returncode == 141
    text = err.read_text()
    # with --per-example - the summary goes to stderr before or after; nothing else may
    assert "Traceback" not in text and "error" not in text and "Exception" not in text
    if "--per-example" not in args:  # notes said before the output, as in the full run; nothing more
        assert text == full.stderr.decode()


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "tsv", "value"])
@pytest.mark.parametrize("threads", ["1", "2"])
def test_stdout_already_closed_is_exit_141_for_every_format(big: Path, fmt: str, threads: str) -> None:
    r, w = os.pipe()
    os.close(r)  # nobody will ever read: the first write fails with EPIPE
    args = ["mse", big / "p.npy", big / "y.npy", "-f", fmt, "--threads", threads]
    proc = subprocess.Popen(
        [*LOSSCLI, *map(str, args)], stdout=w, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=_env()
    )
    os.close(w)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141
    assert err == b""


def test_help_into_a_closed_pipe_is_141() -> None:
    r, w = os.pipe()
    os.close(r)
    proc = subprocess.Popen([*LOSSCLI, "ce", "--help"], stdout=w, stderr=subprocess.PIPE, env=_env())
    os.close(w)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (141, b"")


# ---------------------------------------------------------------- 12: unique machine column names


@pytest.fixture(scope="module")
def lm(tmp_path_factory) -> dict[str, Any]:
    """Small inputs for every command, with their float64 reference values."""
    d = tmp_path_factory.mktemp("lm")
    rng = np.random.default_rng(12)
    n, c, v = 40, 4, 7
    p, y = rng.normal(size=n), rng.normal(size=n)
    prob, lab = rng.uniform(0.05, 0.95, n), rng.integers(0, 2, n)
    scores, cls = rng.normal(size=(n, c)), rng.integers(0, c, n)
    logits, ids = rng.normal(size=(n, v)), rng.integers(0, v, n)
    ids[[3, 17]] = -100
    np.save(d / "p.npy", p)
    np.save(d / "y.npy", y)
    np.save(d / "prob.npy", prob)
    np.save(d / "lab.npy", lab)
    np.save(d / "scores.npy", scores)
    np.save(d / "cls.npy", cls)
    np.save(d / "logits.npy", logits)
    np.save(d / "ids.npy", ids)
    lp = -rng.exponential(2.0, n)
    pd.DataFrame({"logprob": lp}).to_csv(d / "lp.csv", index=False)
    (d / "text.txt").write_text("the cat sat on the mat\n")
    keep = ids != -100
    nll = -_log_softmax(logits)[np.flatnonzero(keep), ids[keep]]
    refs = {
        "mse": float(np.mean((p - y) ** 2)),
        "mae": float(np.mean(np.abs(p - y))),
        "bce": float(-np.mean(lab * np.log(prob) + (1 - lab) * np.log(1 - prob))),
        "ce": float(-np.mean(_log_softmax(scores)[np.arange(n), cls])),
        "ppl": math.exp(math.fsum(nll) / len(nll)),
        "ppl_lp": math.exp(-math.fsum(lp) / n),
    }
    return {"dir": d, "refs": refs}


def _command(d: Path, name: str) -> tuple[list[str], str]:
    f = {k: str(d / k) for k in ("p.npy", "y.npy", "prob.npy", "lab.npy", "scores.npy", "cls.npy")}
    ppl = ["perplexity", "--logits", str(d / "logits.npy"), "--targets", str(d / "ids.npy")]
    table: dict[str, tuple[list[str], str]] = {
        "mse": (["mse", f["p.npy"], f["y.npy"]], "mse"),
        "mae": (["mae", f["p.npy"], f["y.npy"]], "mae"),
        "bce": (["bce", f["prob.npy"], f["lab.npy"], "--input", "probs"], "bce"),
        "ce": (["ce", f["scores.npy"], f["cls.npy"], "--input", "logits"], "ce"),
        "perplexity --logits": (ppl, "ppl"),
        "perplexity --topk --text": ([*ppl, "--topk", "3", "--text", str(d / "text.txt")], "ppl"),
        "perplexity --logprobs": (["perplexity", "--logprobs", str(d / "lp.csv")], "ppl_lp"),
    }
    return table[name]


COMMANDS = [
    "mse",
    "mae",
    "bce",
    "ce",
    "perplexity --logits",
    "perplexity --topk --text",
    "perplexity --logprobs",
]


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), keys
    return dict(pairs)


@pytest.mark.parametrize("name", COMMANDS)
def test_machine_column_names_are_unique(lm: dict[str, Any], name: str) -> None:
    args, ref = _command(lm["dir"], name)
    by_format = {}
    for fmt, delim in (("csv", ","), ("tsv", "\t")):
        r = run_cli(*args, "-f", fmt)
        assert r.code == 0, r.stderr
        rows = list(csv.reader(io.StringIO(r.stdout), delimiter=delim))
        header = rows[0]
        assert len(header) == len(set(header)), header
        frame = pd.read_csv(io.StringIO(r.stdout), sep=delim)
        assert not any(re.search(r"\.\d+$", col) for col in frame.columns), list(frame.columns)
        by_format[fmt] = dict(zip(header, rows[1], strict=True))
    r = run_cli(*args, "-f", "json")
    doc = json.loads(r.stdout, object_pairs_hook=_no_duplicate_keys)
    assert by_format["csv"] == by_format["tsv"]
    for key, cell in by_format["csv"].items():  # every CSV column is the JSON key of that name
        if key in doc and key != "output" and isinstance(doc[key], (int, float)):
            assert float(cell) == doc[key], key
    assert float(by_format["csv"]["value"]) == pytest.approx(lm["refs"][ref], rel=1e-12)


def test_perplexity_ignored_count_is_one_column(lm: dict[str, Any]) -> None:
    args, _ = _command(lm["dir"], "perplexity --logits")
    frame = pd.read_csv(io.StringIO(run_cli(*args, "-f", "csv").stdout))
    assert list(frame.columns).count("ignored") == 1
    assert frame.loc[0, "ignored"] == 2  # the two -100 ids written above
    assert frame.loc[0, "n"] == 38


def test_per_example_column_names_are_unique(tmp_path) -> None:
    from losscli.per_example import CsvWriter, NpyWriter, ParquetWriter, unique_names

    assert unique_names(["row", "row", "loss", "loss", "row"]) == ["row", "row_2", "loss", "loss_2", "row_3"]
    rows = np.arange(3, dtype=np.int64)
    for cls, name in ((CsvWriter, "a.csv"), (NpyWriter, "a.npy"), (ParquetWriter, "a.parquet")):
        w = cls(str(tmp_path / name), ("row", "position"))
        w.write(rows, np.array([0.5, 1.5, 2.5]), {"row": rows + 10, "position": rows})
        w.commit()
    assert (tmp_path / "a.csv").read_text().splitlines()[:2] == ["row,row_2,position,loss", "0,10,0,0.5"]
    assert np.load(tmp_path / "a.npy").dtype.names == ("row", "row_2", "position", "loss")
    assert pd.read_parquet(tmp_path / "a.parquet").columns.tolist() == ["row", "row_2", "position", "loss"]


# ---------------------------------------------------------------- 13: Ctrl-C while --per-example is written


@pytest.fixture(scope="module")
def long_input(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("long")
    np.save(d / "big.npy", np.random.default_rng(13).random(5_000_000))
    return d / "big.npy"


@pytest.mark.parametrize("ext", ["csv", "parquet", "npy"])
def test_ctrl_c_mid_write_is_130_one_line_and_no_file(tmp_path, long_input: Path, ext: str) -> None:
    out = tmp_path / f"losses.{ext}"
    args = ["mse", long_input, long_input, "--chunk-size", "100", "--per-example", out]
    proc = subprocess.Popen(
        [*LOSSCLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
    )
    deadline = time.monotonic() + 60
    while not glob.glob(str(tmp_path / f".losses.{ext}.*.tmp")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.4)  # well into the writing
    assert proc.poll() is None, "the run ended before the signal: make the input longer"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert stderr.decode() == "losscli: interrupted\n"
    assert stdout == b""
    assert os.listdir(tmp_path) == []  # neither the file nor its temporary


def test_abort_closes_the_parquet_writer_first(tmp_path) -> None:
    """In process: an aborted Parquet writer leaves nothing for pyarrow's __del__ to complain about."""
    import gc

    from losscli.per_example import ParquetWriter

    w = ParquetWriter(str(tmp_path / "x.parquet"))
    w.write(np.arange(3, dtype=np.int64), np.ones(3))
    w._flush()
    w.abort()
    unraisable: list[Any] = []
    old, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        del w
        gc.collect()
    finally:
        sys.unraisablehook = old
    assert unraisable == []
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- 14: file modes follow the umask


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
@pytest.mark.parametrize("ext", ["csv", "parquet", "npy"])
def test_per_example_mode_is_0666_minus_umask(tmp_path, umask: int, ext: str) -> None:
    out = tmp_path / f"losses.{ext}"
    args = ["mse", SAMPLES / "exercise1_preds.csv", SAMPLES / "exercise1_targets.csv", "--per-example", out]
    proc = subprocess.run(
        [*LOSSCLI, *map(str, args)], capture_output=True, env=_env(), preexec_fn=lambda: os.umask(umask)
    )
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_saved_states_and_comparisons_follow_the_umask(tmp_path, umask: int) -> None:
    """Every whole file losscli writes (atomic_file.py) gets the mode ``open`` would give it."""
    preds, targets = SAMPLES / "exercise1_preds.csv", SAMPLES / "exercise1_targets.csv"
    runs = {
        "state.losscli": ["mse", preds, targets, "--save-state"],
        "compare.losscli": [
            "compare",
            "mse",
            targets,
            preds,
            preds,
            "--name",
            "A",
            "--name",
            "B",
            "--save-state",
        ],
    }
    for name, args in runs.items():
        out = tmp_path / name
        proc = subprocess.run(
            [*LOSSCLI, *map(str, [*args, out])],
            capture_output=True,
            env=_env(),
            preexec_fn=lambda: os.umask(umask),
        )
        assert proc.returncode == 0, proc.stderr
        assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask, name
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_replacing_a_file_gives_the_new_file_mode(tmp_path) -> None:
    out = tmp_path / "losses.csv"
    out.write_text("old\n")
    out.chmod(0o600)
    args = ["mae", SAMPLES / "exercise1_preds.csv", SAMPLES / "exercise1_targets.csv", "--per-example", out]
    cmd = f"umask 022; {shlex.join([*LOSSCLI, *map(str, args)])} -f value"
    assert subprocess.run(["bash", "-c", cmd], capture_output=True, env=_env()).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert out.read_text().startswith("row,loss\n")


# ---------------------------------------------------------------- 15: exit codes


def _string_label_files(d: Path) -> dict[str, tuple[list[Any], str]]:
    """The same string labels written by pandas, Polars and numpy, in every format."""
    frame = pd.DataFrame({"p": [0.1, 0.9, 0.4], "label": ["spam", "ham", "spam"]})
    frame.to_csv(d / "pd.csv", index=False)
    frame.to_csv(d / "pd.tsv", sep="\t", index=False)
    frame.to_parquet(d / "pd.parquet")
    frame.assign(label=frame.label.astype("category")).to_parquet(d / "cat.parquet")
    pl.from_pandas(frame).write_parquet(d / "pl.parquet")
    pl.from_pandas(frame).write_csv(d / "pl.csv")
    frame[["p"]].to_parquet(d / "p.parquet")
    frame[["label"]].to_parquet(d / "label.parquet")
    np.save(d / "p.npy", frame.p.to_numpy())
    np.save(d / "label.npy", frame.label.to_numpy(dtype=str))
    one = ["--pred-col", "p", "--target-col", "label"]
    return {
        "pandas csv": ([d / "pd.csv", *one], "pd.csv"),
        "pandas tsv": ([d / "pd.tsv", *one], "pd.tsv"),
        "polars csv": ([d / "pl.csv", *one], "pl.csv"),
        "pandas parquet": ([d / "pd.parquet", *one], "pd.parquet"),
        "categorical parquet": ([d / "cat.parquet", *one], "cat.parquet"),
        "polars parquet": ([d / "pl.parquet", *one], "pl.parquet"),
        "two-file parquet": ([d / "p.parquet", d / "label.parquet"], "label.parquet"),
        "two-file npy + parquet": ([d / "p.npy", d / "label.parquet"], "label.parquet"),
        "two-file npy": ([d / "p.npy", d / "label.npy"], "label.npy"),
    }


@pytest.mark.parametrize("metric", ["bce", "ce", "mse"])
@pytest.mark.parametrize(
    "case",
    [
        "pandas csv",
        "pandas tsv",
        "polars csv",
        "pandas parquet",
        "categorical parquet",
        "polars parquet",
        "two-file parquet",
        "two-file npy + parquet",
        "two-file npy",
    ],
)
def test_string_labels_are_bad_data_in_every_format(tmp_path, metric: str, case: str) -> None:
    """mse: text is bad data. bce and ce read a text label column as class labels (issue 11):
    bce's two classes need --positive (exit 2, naming both); ce's one-column scores are then
    the fault. A .npy of strings (np.save of str labels) is a label file like the others."""
    args, culprit = _string_label_files(tmp_path)[case]
    r = run_cli(metric, *args)
    as_labels = metric != "mse"
    if as_labels and metric == "ce":
        culprit = str(args[0].name)  # the scores: one column is not (N, C)
    assert r.code == (2 if as_labels and metric == "bce" else 3), r.stderr
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"losscli: error: {tmp_path / culprit}")
    if culprit.endswith((".csv", ".tsv", ".parquet")) and not (as_labels and metric == "ce"):
        assert "'label'" in lines[0]
    if as_labels and metric == "bce":
        assert "'spam' and 'ham'" in lines[0] and "--positive" in lines[0]


def test_string_labels_through_the_api(tmp_path) -> None:
    args, _ = _string_label_files(tmp_path)["pandas parquet"]
    with pytest.raises(InputError, match="'label'") as err:
        losscli.evaluate("bce", str(args[0]), pred_col="p", target_col="label")
    assert err.value.exit_code == 2 and "pass positive" in str(err.value)  # the fix is an option
    value = losscli.evaluate("bce", str(args[0]), pred_col="p", target_col="label", positive="spam").value
    ref = -(math.log(0.1) + math.log(1 - 0.9) + math.log(0.4)) / 3  # spam, ham, spam
    assert math.isclose(value, ref, rel_tol=1e-12)


@pytest.mark.parametrize("name", ["out.txt", "out", "out.json", "out.csv.gz"])
def test_bad_per_example_name_is_usage_error_before_reading(tmp_path, name: str) -> None:
    missing = tmp_path / "does-not-exist.csv"  # were it read first, this would be exit 3
    r = run_cli("mse", missing, missing, "--per-example", tmp_path / name)
    assert r.code == 2
    assert r.stdout == ""
    assert r.stderr.startswith("losscli: error: --per-example") and r.stderr.count("\n") == 1
    assert ".csv, .parquet or .npy" in r.stderr
    assert os.listdir(tmp_path) == []
    with pytest.raises(UsageError):
        losscli.evaluate("mse", str(missing), str(missing), per_example=str(tmp_path / name))


@pytest.mark.parametrize("flag", ["--fail-above", "--fail-below"])
@pytest.mark.parametrize("x", ["nan", "NaN", "-nan"])
def test_nan_threshold_is_a_usage_error(flag: str, x: str) -> None:
    r = run_cli("mse", SAMPLES / "exercise1_preds.csv", SAMPLES / "exercise1_targets.csv", f"{flag}={x}")
    assert r.code == 2
    assert r.stdout == ""
    assert r.stderr.startswith("losscli: error:") and flag in r.stderr and r.stderr.count("\n") == 1


def test_infinite_thresholds_still_work() -> None:
    ex = [SAMPLES / "exercise1_preds.csv", SAMPLES / "exercise1_targets.csv", "-f", "value"]
    assert run_cli("mse", *ex, "--fail-above", "inf").code == 0
    assert run_cli("mse", *ex, "--fail-above", "-inf").code == 1


@pytest.mark.parametrize(
    ("args", "must_say"),
    [
        (["mse", "-", "-"], "stdin"),
        (["perplexity"], "--logprobs"),
        (["perplexity", "--logits", "a.npy", "--logprobs", "b.csv"], "--logprobs"),
        (["mse", "a.csv", "b.csv", "--formt", "json"], "--format"),  # click: no such option
        (["mse"], "PREDS"),  # click: missing argument
        (["mse", "a.csv", "--format", "xml"], "'xml'"),  # click: bad choice
        (["mse", "a.csv", "--chunk-size", "x"], "--chunk-size"),  # click: not an integer
        (["nosuchmetric"], "nosuchmetric"),  # click: no such command
        (["ce", "a.csv", "--topk", "3"], "--topk"),
    ],
)
def test_every_usage_error_is_one_line_exit_2(args: list[str], must_say: str) -> None:
    r = run_cli(*args)
    assert r.code == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("losscli: error: ")
    assert must_say in lines[0]
    assert "Usage:" not in r.stderr and "Traceback" not in r.stderr


def test_click_parse_errors_say_where_the_options_are() -> None:
    r = run_cli("ce", "a.csv", "--formt", "json")
    assert r.stderr.rstrip().endswith("Try 'losscli ce --help'.")


# ---------------------------------------------------------------- 16: narrow terminals never cut a number


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Any]:
    """One report of every kind the table renders, built from inputs written here."""
    d = tmp_path_factory.mktemp("reports")
    rng = np.random.default_rng(16)
    n = 60
    small = rng.normal(size=n) * 1e-6  # numbers in e-notation, the longest fmt_number writes
    soft = rng.dirichlet([1, 1, 1], size=n)
    out = {
        "mse": losscli.evaluate("mse", rng.normal(size=n) * 1000, rng.normal(size=n), top=5),
        "mse tiny": losscli.evaluate("mse", small, np.zeros(n), top=5),
        "mse multi-output": losscli.evaluate("mse", rng.normal(size=(n, 5)), rng.normal(size=(n, 5)), top=5),
        "mae": losscli.evaluate("mae", rng.normal(size=n), rng.normal(size=n), top=5),
        "bce": losscli.evaluate("bce", rng.uniform(0.001, 0.999, n), rng.integers(0, 2, n), top=5),
        "ce": losscli.evaluate("ce", rng.normal(size=(n, 4)), rng.integers(0, 4, n), top=5),
        "ce soft": losscli.evaluate("ce", soft, rng.dirichlet([1, 1, 1], size=n), input="probs", top=5),
        "perplexity sequences": losscli.evaluate(
            "perplexity",
            str(SAMPLES / "bigram" / "logits.npy"),
            str(SAMPLES / "bigram" / "input_ids.npy"),
            shift=True,
            topk=5,
            text=str(SAMPLES / "bigram" / "heldout.txt"),
            top=5,
        ),
        "perplexity logprobs": losscli.evaluate(
            "perplexity", None, logprobs=str(SAMPLES / "bigram" / "completions.jsonl"), top=5
        ),
    }
    del d
    return out


def _render(report: Any, width: int) -> str:
    buf = io.StringIO()
    Console(width=width, file=buf, color_system=None, force_terminal=False).print(report_renderable(report))
    return buf.getvalue()


def _intact(text: str, out: str) -> bool:
    """``text`` appears whole: not as part of a longer number, not split across lines."""
    return re.search(rf"(?<![\w.,-]){re.escape(text)}(?![\w.]|,\d)", out) is not None


def _essential_numbers(report: Any) -> list[str]:
    """Numbers every width shows: the summary values, each example's row and loss, each
    output's value, each sequence's id and perplexity."""
    texts = [fmt_number(f.value, counts=True) for f in report.figures if f.in_table]
    texts += [str(e.row) for e in report.examples] + [fmt_number(e.loss) for e in report.examples]
    texts += [fmt_number(v["value"]) for _, v in report.per_output]
    texts += [fmt_number(s["perplexity"]) for s in report.sequences]
    return texts


def _all_numbers(report: Any) -> list[str]:
    texts = _essential_numbers(report)
    for e in report.examples:
        for v in e.detail:
            texts += [fmt_number(x) for x in v[:6]] if isinstance(v, tuple) else [fmt_number(v)]
    texts += [fmt_number(v["rmse"]) for _, v in report.per_output if "rmse" in v]
    for s in report.sequences:
        texts += [fmt_number(s["nll"]), fmt_number(s["tokens"], counts=True)]
        texts += [fmt_number(w["logprob"]) for w in s["worst_tokens"]]
    return [t for t in texts if t != "-"]


@pytest.mark.parametrize("width", [20, 30, 40, 60, 80])
@pytest.mark.parametrize(
    "kind",
    [
        "mse",
        "mse tiny",
        "mse multi-output",
        "mae",
        "bce",
        "ce",
        "ce soft",
        "perplexity sequences",
        "perplexity logprobs",
    ],
)
def test_no_number_is_ever_cut(reports: dict[str, Any], kind: str, width: int) -> None:
    report = reports[kind]
    out = _render(report, width)
    assert "…" not in out and "..." not in out.replace("...]", "")
    assert max(cell_len(line) for line in out.splitlines()) <= width  # nothing cropped at the edge
    missing = [t for t in _essential_numbers(report) if not _intact(t, out)]
    assert missing == [], out
    if width >= 80:
        missing = [t for t in _all_numbers(report) if not _intact(t, out)]
        assert missing == [], out


def test_the_explanation_goes_before_any_number(reports: dict[str, Any]) -> None:
    report = reports["ce"]
    wide, narrow = _render(report, 100), _render(report, 40)
    assert "what it means" in wide and "rows scored" in wide
    assert "what it means" not in narrow  # dropped, not squeezed
    assert all(_intact(fmt_number(e.loss), narrow) for e in report.examples)


def test_value_format_keeps_the_raw_value(reports: dict[str, Any]) -> None:
    for report in reports.values():
        assert render_value(report) == repr(report.value) + "\n"


@pytest.mark.parametrize("columns", ["20", "40"])
def test_cli_table_at_narrow_columns(tmp_path, columns: str) -> None:
    env = {"COLUMNS": columns}
    ex = [SAMPLES / "exercise1_preds.csv", SAMPLES / "exercise1_targets.csv"]
    pred = pd.read_csv(ex[0]).to_numpy(dtype=float).ravel()
    true = pd.read_csv(ex[1]).to_numpy(dtype=float).ravel()
    mse = math.fsum((pred - true) ** 2) / len(pred)
    r = run_cli("mse", *ex, "-f", "table", env=env)
    assert r.code == 0 and "…" not in r.stdout
    assert _intact(fmt_number(mse), r.stdout)
    assert float(run_cli("mse", *ex, "-f", "value", env=env).stdout) == mse

    logits = np.load(SAMPLES / "digits_logits.npy").astype(np.float64)  # float64: exact to 7 digits
    labels = np.load(SAMPLES / "digits_labels.npy")
    np.save(tmp_path / "logits.npy", logits)
    nll = -_log_softmax(logits)[np.arange(len(labels)), labels]
    worst = np.argsort(-nll, kind="stable")[:5]
    r = run_cli(
        "ce", tmp_path / "logits.npy", SAMPLES / "digits_labels.npy", "--top", "5", "-f", "table", env=env
    )
    assert r.code == 0 and "…" not in r.stdout
    for row in worst:
        assert _intact(str(row), r.stdout) and _intact(fmt_number(float(nll[row])), r.stdout), r.stdout
    assert _intact(fmt_number(float(nll.mean())), r.stdout)


def _on_a_terminal(args: list[Any], columns: int) -> str:
    """Run losscli with stdout on a pseudo-terminal ``columns`` wide (the default table, in colour)."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in _env().items() if k not in ("COLUMNS", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen([*LOSSCLI, *map(str, args)], stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    output = drain_pty(leader)
    assert proc.wait(timeout=60) == 0
    text = output.decode()
    assert "\x1b[" in text  # really treated as a terminal
    return re.sub(r"\x1b\[[0-9;]*m", "", text).replace("\r\n", "\n")


def test_real_terminal_40_columns(tmp_path) -> None:
    logits = np.load(SAMPLES / "digits_logits.npy").astype(np.float64)
    labels = np.load(SAMPLES / "digits_labels.npy")
    np.save(tmp_path / "logits.npy", logits)
    nll = -_log_softmax(logits)[np.arange(len(labels)), labels]
    out = _on_a_terminal(["ce", tmp_path / "logits.npy", SAMPLES / "digits_labels.npy", "--top", "5"], 40)
    assert "…" not in out
    assert max(cell_len(line) for line in out.splitlines()) <= 40
    for row in np.argsort(-nll, kind="stable")[:5]:
        assert _intact(fmt_number(float(nll[row])), out), out
    assert _intact(fmt_number(float(nll.mean())), out)


# ---------------------------------------------------------------- 18: the perplexity footer


def _footer(args: list[Any]) -> str:
    r = run_cli(*args, "-f", "table", env={"COLUMNS": "400"})
    assert r.code == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


def test_footer_compares_with_uniform_guessing_over_the_vocabulary(tmp_path) -> None:
    v, n, p = 1000, 50, 0.1
    a = math.log(p * (v - 1) / (1 - p))  # target logit a, others 0: p(target) = e^a / (e^a + v - 1)
    ids = np.arange(n) % v
    logits = np.zeros((n, v))
    logits[np.arange(n), ids] = a
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "ids.npy", ids)
    line = _footer(["perplexity", "--logits", tmp_path / "logits.npy", "--targets", tmp_path / "ids.npy"])
    ppl = 1 / p  # 10 choices; uniform guessing over 1,000 tokens scores 1,000: 100 times higher
    assert line.startswith(f"As uncertain as a uniform choice among {ppl:,.0f} tokens, 100 times lower than")
    assert "uniform guessing over all 1,000 tokens (perplexity 1,000)" in line
    assert "same tokenizer" in line
    assert "lesson" not in line and "GPT" not in line
    doc = run_cli(
        "perplexity", "--logits", tmp_path / "logits.npy", "--targets", tmp_path / "ids.npy", "-f", "json"
    )
    assert doc.json()["vocab_size"] == v


def test_footer_for_uniform_logits_and_for_worse_than_guessing(tmp_path) -> None:
    np.save(tmp_path / "flat.npy", np.zeros((20, 50)))
    np.save(tmp_path / "ids.npy", np.arange(20))
    line = _footer(["perplexity", "--logits", tmp_path / "flat.npy", "--targets", tmp_path / "ids.npy"])
    assert "no better than uniform guessing over all 50 tokens" in line
    bad = np.zeros((20, 50))
    bad[np.arange(20), (np.arange(20) + 1) % 50] = 10.0  # confident and wrong
    np.save(tmp_path / "bad.npy", bad)
    line = _footer(["perplexity", "--logits", tmp_path / "bad.npy", "--targets", tmp_path / "ids.npy"])
    assert "worse than guessing" in line


def test_footer_without_a_vocabulary_says_less(tmp_path) -> None:
    pd.DataFrame({"logprob": [-2.0, -2.5, -1.5]}).to_csv(tmp_path / "lp.csv", index=False)
    line = _footer(["perplexity", "--logprobs", tmp_path / "lp.csv"])
    assert line.startswith(f"As uncertain as a uniform choice among {math.exp(2.0):.2g} tokens.")
    assert "uniform guessing" not in line and "same tokenizer" in line
    assert "lesson" not in line and "GPT" not in line


def test_ce_footer_compares_with_the_classes() -> None:
    logits = np.load(SAMPLES / "digits_logits.npy")
    labels = np.load(SAMPLES / "digits_labels.npy")
    ppl = math.exp(float(-_log_softmax(logits)[np.arange(len(labels)), labels].mean()))
    line = _footer(["ce", SAMPLES / "digits_logits.npy", SAMPLES / "digits_labels.npy"])
    assert line.startswith(
        f"As uncertain as a uniform choice among {ppl:.2g} classes, {10 / ppl:.3g} times lower"
    )
    assert "uniform guessing over all 10 classes" in line and "tokenizer" not in line


def _user_visible_strings(path: Path) -> list[tuple[int, str]]:
    """Every string literal in a module except its own docstring (help texts are docstrings of
    click commands, so function docstrings count)."""
    tree = ast.parse(path.read_text())
    module_doc = tree.body[0] if tree.body and isinstance(tree.body[0], ast.Expr) else None
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and (module_doc is None or node is not module_doc.value)
    ]


def test_no_user_visible_string_names_the_lesson() -> None:
    hits = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted((ROOT / "src" / "losscli").rglob("*.py"))
        for line, text in _user_visible_strings(path)
        if "lesson" in text.lower()
    ]
    assert hits == []
    for cmd in ("mse", "mae", "bce", "ce", "perplexity"):
        assert "lesson" not in run_cli(cmd, "--help").stdout.lower()
