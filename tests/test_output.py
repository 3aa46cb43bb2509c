"""Output contracts: formats, piping, --per-example, thresholds, signals, help."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

import losscli

from conftest import SAMPLES, drain_pty, run_cli

EX1 = [SAMPLES / "exercise1_preds.csv", SAMPLES / "exercise1_targets.csv"]


def test_piped_default_is_tsv_without_colour_or_boxes() -> None:
    r = run_cli("mse", *EX1)
    assert r.code == 0
    assert "\x1b[" not in r.stdout and "┃" not in r.stdout and "│" not in r.stdout
    rows = list(csv.DictReader(io.StringIO(r.stdout), delimiter="\t"))
    assert rows[0]["metric"] == "mse" and rows[0]["output"] == "all"
    assert float(rows[0]["value"]) == 0.25 and rows[0]["n"] == "3" and float(rows[0]["rmse"]) == 0.5


def test_table_format_honours_no_color() -> None:
    r = run_cli("mse", *EX1, "--format", "table", env={"NO_COLOR": "1", "FORCE_COLOR": ""})
    assert r.code == 0
    assert "\x1b[" not in r.stdout
    assert "MSE" in r.stdout and "RMSE" in r.stdout and "0.25" in r.stdout
    assert "Every example (3)" in r.stdout


def test_json_keys() -> None:
    data = run_cli("ce", SAMPLES / "digits_logits.npy", SAMPLES / "digits_labels.npy", "-f", "json").json()
    for key in ("metric", "value", "n", "perplexity", "bits", "accuracy", "status", "examples", "files"):
        assert key in data
    assert data["metric"] == "ce" and data["status"] == "ok"
    assert len(data["examples"]) == 10  # --top default, worst first
    losses = [e["loss"] for e in data["examples"]]
    assert losses == sorted(losses, reverse=True)
    ppl = run_cli(
        "perplexity",
        "--logits",
        SAMPLES / "paris_logits.npy",
        "--targets",
        SAMPLES / "paris_targets.npy",
        "-f",
        "json",
    ).json()
    assert {"cross_entropy", "bits_per_token", "value", "n"} <= set(ppl)


def test_value_round_trips_at_full_precision(tmp_path) -> None:
    p = np.array([0.1, 0.7, 1 / 3])
    y = np.array([0.2, 0.3, 0.0])
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    r = run_cli("mae", tmp_path / "p.npy", tmp_path / "y.npy", "-f", "value")
    want = math.fsum(abs(a - b) for a, b in zip(p.tolist(), y.tolist(), strict=True)) / 3
    assert float(r.stdout) == want
    assert r.stdout.strip() == repr(want)


def test_csv_format_multi_output_rows(tmp_path) -> None:
    y = np.arange(12.0).reshape(4, 3)
    p = y + np.array([1.0, 2.0, 3.0])
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    r = run_cli("mse", tmp_path / "p.npy", tmp_path / "y.npy", "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["output"] for row in rows] == ["all", "0", "1", "2"]
    assert [float(row["value"]) for row in rows] == [14 / 3, 1.0, 4.0, 9.0]


def test_overflow_gives_inf_and_valid_json(tmp_path) -> None:
    np.save(tmp_path / "p.npy", np.array([1e200, 0.0]))
    np.save(tmp_path / "y.npy", np.array([-1e200, 0.0]))
    r = run_cli("mse", tmp_path / "p.npy", tmp_path / "y.npy", "-f", "json")
    assert r.code == 0
    data = json.loads(r.stdout)  # strict JSON: no bare Infinity
    assert data["value"] is None and data["status"] == "overflow"
    assert "overflowed" in r.stderr
    assert run_cli("mse", tmp_path / "p.npy", tmp_path / "y.npy", "-f", "value").stdout == "inf\n"


@pytest.mark.parametrize("ext", ["csv", "parquet", "npy"])
def test_per_example_files(tmp_path, ext: str) -> None:
    rng = np.random.default_rng(5)
    p, y = rng.normal(size=1000), rng.normal(size=1000)
    np.save(tmp_path / "p.npy", p)
    (tmp_path / "y.csv").write_text("y\n" + "".join(f"{v!r}\n" for v in y.tolist()))
    out = tmp_path / f"losses.{ext}"
    r = run_cli("mse", tmp_path / "p.npy", tmp_path / "y.csv", "--per-example", out, "--chunk-size", "77")
    assert r.code == 0, r.stderr
    if ext == "csv":
        rows = list(csv.DictReader(out.open()))
        idx = np.array([int(row["row"]) for row in rows])
        loss = np.array([float(row["loss"]) for row in rows])
    elif ext == "parquet":
        table = pq.read_table(out)
        idx, loss = table["row"].to_numpy(), table["loss"].to_numpy()
    else:
        arr = np.load(out)
        idx, loss = arr["row"], arr["loss"]
    assert idx.tolist() == list(range(1000))
    assert loss.tolist() == ((p - y) ** 2).tolist()  # exact: full precision, input order
    assert sorted(os.listdir(tmp_path)) == sorted(["p.npy", "y.csv", f"losses.{ext}"])  # no temp left


def test_per_example_to_stdout_moves_summary_to_stderr() -> None:
    r = run_cli("mse", *EX1, "--per-example", "-")
    assert r.code == 0
    assert r.stdout == "row,loss\n0,0.25\n1,0.25\n2,0.25\n"
    assert "0.25" in r.stderr


def test_per_example_skips_ignored_rows(tmp_path) -> None:
    np.save(tmp_path / "z.npy", np.zeros((4, 2)))
    np.save(tmp_path / "t.npy", np.array([0, -100, 1, -100]))
    r = run_cli("ce", tmp_path / "z.npy", tmp_path / "t.npy", "--input", "logits", "--per-example", "-")
    lines = r.stdout.splitlines()
    assert lines[0] == "row,loss"
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "2"]
    assert all(float(line.split(",")[1]) == pytest.approx(math.log(2), rel=1e-15) for line in lines[1:])


def test_failed_run_leaves_no_partial_file_and_keeps_the_old_one(tmp_path) -> None:
    out = tmp_path / "losses.csv"
    out.write_text("precious\n")
    (tmp_path / "p.csv").write_text("p\n" + "1\n" * 10 + "x\n")
    np.save(tmp_path / "y.npy", np.zeros(11))
    r = run_cli("mse", tmp_path / "p.csv", tmp_path / "y.npy", "--per-example", out)
    assert r.code == 3
    assert out.read_text() == "precious\n"
    assert sorted(os.listdir(tmp_path)) == ["losses.csv", "p.csv", "y.npy"]


def test_unwritable_per_example_is_exit_4(tmp_path) -> None:
    r = run_cli("mse", *EX1, "--per-example", tmp_path / "no" / "such" / "dir" / "l.csv")
    assert r.code == 4 and r.stdout == "" and "cannot write" in r.stderr


@pytest.mark.parametrize(
    ("flag", "x", "code"),
    [
        ("--fail-above", "0.2", 1),
        ("--fail-above", "0.25", 0),
        ("--fail-below", "0.3", 1),
        ("--fail-below", "0.25", 0),
    ],
)
def test_thresholds(flag: str, x: str, code: int) -> None:
    r = run_cli("mse", *EX1, flag, x, "-f", "value")
    assert r.code == code
    assert r.stdout == "0.25\n"  # printed before the exit code says anything


def test_version_and_help(capsys) -> None:
    r = run_cli("--version")
    assert r.code == 0 and r.stdout == f"losscli, version {losscli.__version__}\n"
    # the fast path (before click is imported) says exactly what click's --version says
    from losscli.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == r.stdout
    assert run_cli("--version", "-h").stdout.startswith("losscli, version")  # other argv: click
    for cmd in ("mse", "mae", "bce", "ce", "perplexity"):
        h = run_cli(cmd, "-h")
        assert h.code == 0
        body = h.stdout.split("\n\n", 2)[2]
        assert body.lstrip().startswith("Example"), body[:200]
        assert f"losscli {cmd}" in h.stdout


def test_python_dash_m_and_console_script_agree() -> None:
    script = os.path.join(os.path.dirname(sys.executable), "losscli")
    out = subprocess.run([script, "mse", *map(str, EX1), "-f", "value"], capture_output=True, text=True)
    assert out.stdout == "0.25\n"


def test_head_ends_quietly(tmp_path) -> None:
    n = 200_000
    np.save(tmp_path / "p.npy", np.arange(n, dtype=np.float64))
    np.save(tmp_path / "y.npy", np.zeros(n))
    losscli = f"{sys.executable} -m losscli mse {tmp_path}/p.npy {tmp_path}/y.npy --per-example -"
    cmd = f"{losscli} 2>{tmp_path}/err | head -3"
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=60)
    assert out.stdout == "row,loss\n0,0.0\n1,1.0\n"
    assert (tmp_path / "err").read_text() == ""


def _stream_forever(args: list[str], sig: int) -> tuple[int, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "losscli", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    proc.stdin.write(b"p,y\n1,2\n3,4\n")
    proc.stdin.flush()
    time.sleep(1.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err.decode()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_mid_stream(tmp_path, sig: int, code: int) -> None:
    out = tmp_path / "losses.parquet"
    rc, err = _stream_forever(["mse", "-", "--per-example", str(out)], sig)
    assert rc == code
    assert "Traceback" not in err
    assert os.listdir(tmp_path) == []


def _stderr_of(args: list[str], tty: bool) -> str:
    import pty

    env = {**os.environ, "LOSSCLI_PROGRESS_AFTER": "0", "TERM": "xterm"}
    if not tty:
        out = subprocess.run(
            [sys.executable, "-m", "losscli", *args], capture_output=True, env=env, timeout=60
        )
        return out.stderr.decode()
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "losscli", *args], stdout=subprocess.PIPE, stderr=follower, env=env
    )
    os.close(follower)
    proc.communicate(timeout=60)
    return drain_pty(leader).decode(errors="replace")


def test_progress_bar_only_on_a_terminal(tmp_path) -> None:
    np.save(tmp_path / "p.npy", np.zeros(5000))
    args = ["mse", str(tmp_path / "p.npy"), str(tmp_path / "p.npy"), "--chunk-size", "10", "-f", "value"]
    assert "scoring" in _stderr_of(args, tty=True)
    assert _stderr_of(args, tty=False) == ""


def test_a_table_to_a_full_disk_is_exit_4_in_one_line() -> None:
    """rich writes the table itself: its ENOSPC is 'output not written' (4), as every other format's."""
    from conftest import SAMPLES

    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "losscli",
                "mse",
                SAMPLES / "exercise1_preds.csv",
                SAMPLES / "exercise1_targets.csv",
                "--format",
                "table",
            ],
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    assert proc.returncode == 4
    assert proc.stderr.decode().strip().splitlines() == [
        "losscli: error: stdout: write failed (No space left on device)"
    ]


def test_closed_stdout_is_exit_4_and_closed_stderr_still_reports() -> None:
    """`>&-` and `2>&-`: no traceback, no exit 70."""
    from conftest import SAMPLES

    args = [
        sys.executable,
        "-m",
        "losscli",
        "mse",
        SAMPLES / "exercise1_preds.csv",
        SAMPLES / "exercise1_targets.csv",
    ]
    closed_out = subprocess.run(
        [*args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60, preexec_fn=lambda: os.close(1)
    )
    assert closed_out.returncode == 4
    assert closed_out.stderr.decode().splitlines() == [
        "losscli: error: stdout is closed: nothing can be written (redirect it to a file)"
    ]
    closed_err = subprocess.run(
        [*args, "-f", "value"], stdout=subprocess.PIPE, timeout=60, preexec_fn=lambda: os.close(2)
    )
    assert closed_err.returncode == 0
    assert float(closed_err.stdout) == 0.25  # the seed's exercise 1: (0.5^2 + 0.5^2 + 0.5^2) / 3
