"""Worker processes (engine/forked.py): the same report as threads and as one worker, errors
that name the same row as the serial run, and a child that dies is redone by the parent."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from losscli.engine import forked

from conftest import run_cli

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers fork on Linux only")

THREADS = {"LOSSCLI_WORKERS": "threads"}


def _same(a: Any, b: Any, where: str = "") -> None:
    """Equal JSON, floats within 1e-12 relative (the merge order of partial sums differs)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300) or (math.isnan(a) and math.isnan(b)), where
    else:
        assert a == b, where


def _three_ways(*args: Any) -> dict[str, Any]:
    """The JSON report with processes (the default here), threads and one worker; all equal."""
    runs = {
        "processes": run_cli(*args, "-f", "json"),
        "threads": run_cli(*args, "-f", "json", env=THREADS),
        "serial": run_cli(*args, "-f", "json", "--threads", "1"),
    }
    for name, r in runs.items():
        assert r.code == 0, (name, r.stderr)
    reports = {name: r.json() for name, r in runs.items()}
    for name in ("threads", "serial"):
        _same(reports["processes"], reports[name], name)
    return reports["processes"]


def test_regression_matches_numpy_and_threads(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    p, y, w = rng.normal(0, 3, 30_011), rng.normal(0, 3, 30_011), rng.uniform(0.1, 2, 30_011)
    for name, a in (("p", p), ("y", y), ("w", w)):
        np.save(tmp_path / f"{name}.npy", a)
    report = _three_ways(
        "mse",
        tmp_path / "p.npy",
        tmp_path / "y.npy",
        "--weights",
        tmp_path / "w.npy",
        "--chunk-size",
        "1000",
        "--ci",
    )
    d = p - y
    assert math.isclose(report["value"], float(np.sum(w * d * d) / np.sum(w)), rel_tol=1e-12)
    assert report["n"] == 30_011
    worst = int(np.argmax(d * d))
    assert report["examples"][0]["row"] == worst


def test_calibration_per_class_and_bootstrap(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    prob = rng.uniform(0.001, 0.999, 20_003)
    label = (rng.random(20_003) < prob).astype(np.float64)
    np.save(tmp_path / "prob.npy", prob)
    np.save(tmp_path / "label.npy", label)
    report = _three_ways(
        "bce",
        tmp_path / "prob.npy",
        tmp_path / "label.npy",
        "--calibration",
        "--chunk-size",
        "777",
        "--ci",
        "--bootstrap",
        "100",
    )
    brier = float(np.mean((prob - label) ** 2))
    assert math.isclose(report["calibration"]["brier"], brier, rel_tol=1e-12)
    logits = rng.normal(0, 2, (9_001, 7))
    classes = rng.integers(0, 7, 9_001)
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "classes.npy", classes)
    _three_ways(
        "ce",
        tmp_path / "logits.npy",
        tmp_path / "classes.npy",
        "--per-class",
        "--calibration",
        "--chunk-size",
        "500",
    )


def test_perplexity_sequences(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 1, (40, 64, 11)).astype(np.float32)
    ids = rng.integers(0, 11, (40, 64))
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "ids.npy", ids)
    report = _three_ways(
        "perplexity",
        "--logits",
        tmp_path / "logits.npy",
        "--targets",
        tmp_path / "ids.npy",
        "--chunk-size",
        "300",
        "--ci",
    )
    x = logits.astype(np.float64).reshape(-1, 11)
    m = x.max(axis=1)
    nll = m + np.log(np.exp(x - m[:, None]).sum(axis=1)) - x[np.arange(len(x)), ids.reshape(-1)]
    assert math.isclose(report["value"], math.exp(float(np.mean(nll))), rel_tol=1e-6)


@pytest.mark.parametrize("bad_rows", [(29_500,), (3_100, 29_500), (15_200, 15_300)])
def test_error_names_the_first_bad_row_as_the_serial_run_does(
    tmp_path: Path, bad_rows: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(6)
    p, y = rng.normal(size=30_000), rng.normal(size=30_000)
    p[list(bad_rows)] = np.nan
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    args = ("mse", tmp_path / "p.npy", tmp_path / "y.npy", "--chunk-size", "1000")
    forked_run, serial = run_cli(*args), run_cli(*args, "--threads", "1")
    assert forked_run.code == serial.code == 3
    assert forked_run.stdout == "" and forked_run.stderr == serial.stderr
    assert f"row {bad_rows[0]}" in serial.stderr


def test_the_cli_really_forks_for_npy_inputs(tmp_path: Path) -> None:
    """The default run of an .npy input takes the process path (no pyarrow is imported)."""
    rng = np.random.default_rng(7)
    np.save(tmp_path / "p.npy", rng.normal(size=5_000))
    np.save(tmp_path / "y.npy", rng.normal(size=5_000))
    marker = tmp_path / "forked.txt"
    script = _spy_script(
        marker,
        "from losscli.cli import run\n"
        f"sys.argv = ['losscli', 'mse', {str(tmp_path / 'p.npy')!r}, {str(tmp_path / 'y.npy')!r}]\n"
        "sys.argv += ['--chunk-size', '1000']\n"
        "run()\n",
    )
    # numpy is imported here before the CLI pins OpenBLAS to one thread, as the console script does
    env = {k: v for k, v in os.environ.items() if k != "LOSSCLI_WORKERS"}
    env.update(OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert marker.read_text() == "forked"
    assert "pyarrow" not in proc.stderr.decode()


def test_ranges_cover_every_chunk_once() -> None:
    for first, stop, workers in ((1, 2, 2), (1, 10, 2), (1, 10, 3), (1, 1000, 7), (1, 3, 8)):
        parts = forked.ranges_of(first, stop, workers)
        assert [i for r in parts for i in r] == list(range(first, stop))
        assert len(parts) == min(workers, stop - first)
        assert max(len(r) for r in parts) - min(len(r) for r in parts) <= 1


class _Tally:
    def __init__(self, seen: list[int] | None = None) -> None:
        self.seen = seen or []

    def merge(self, other: _Tally) -> _Tally:
        return _Tally(self.seen + other.seen)


class _Evaluator:
    """Enough of an Evaluator for run_forked: fork() and tallies with merge()."""

    def __init__(self) -> None:
        self.tallies: _Tally | None = _Tally([0])

    def fork(self) -> _Evaluator:
        twin = _Evaluator()
        twin.tallies = _Tally()
        return twin


def test_a_child_that_dies_is_redone_by_the_parent() -> None:
    parent = os.getpid()

    def score(ev: Any, rrs: list[Any], index: int) -> int:
        if os.getpid() != parent and index >= 6:
            os._exit(9)  # killed mid-range: no report
        ev.tallies.seen.append(index)
        return 10

    rows: list[int] = []
    ev = _Evaluator()
    forked.run_forked(ev, score, [], range(1, 11), 2, rows.append)  # type: ignore[arg-type]
    assert ev.tallies is not None and sorted(ev.tallies.seen) == list(range(11))
    assert sum(rows) == 100  # each chunk's rows once, though the second child's range was redone


def test_a_child_error_is_raised_by_the_parent_from_the_earliest_range() -> None:
    def score(ev: Any, rrs: list[Any], index: int) -> int:
        if index in (3, 8):
            raise ValueError(f"bad chunk {index}")
        ev.tallies.seen.append(index)
        return 1

    with pytest.raises(ValueError, match="bad chunk 3"):
        forked.run_forked(_Evaluator(), score, [], range(1, 11), 2, None)  # type: ignore[arg-type]


def test_a_failed_fork_leaves_the_run_to_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(forked.os, "fork", no_fork)
    ev = _Evaluator()
    assert forked.run_forked(ev, lambda e, r, i: 1, [], range(1, 5), 2, None) is False  # type: ignore[arg-type]
    assert ev.tallies is not None and ev.tallies.seen == [0]


def test_a_report_cut_short_is_redone(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = os.getpid()
    real_write = os.write

    def half_then_die(fd: int, data: Any) -> int:
        if os.getpid() != parent:
            real_write(fd, bytes(data)[: len(data) // 2])
            os._exit(0)  # as if killed while writing: the parent must not trust the bytes
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_then_die)

    def score(ev: Any, rrs: list[Any], index: int) -> int:
        ev.tallies.seen.append(index)
        return 1

    ev = _Evaluator()
    assert forked.run_forked(ev, score, [], range(1, 9), 2, None)  # type: ignore[arg-type]
    assert ev.tallies is not None and sorted(ev.tallies.seen) == list(range(9))


def test_an_early_failure_stops_the_later_children() -> None:
    import time

    def score(ev: Any, rrs: list[Any], index: int) -> int:
        if index == 1:
            raise ValueError("bad chunk 1")
        if index >= 6:
            time.sleep(60)  # the second child's range: long, and never needed
        return 1

    started = time.monotonic()
    with pytest.raises(ValueError, match="bad chunk 1"):
        forked.run_forked(_Evaluator(), score, [], range(1, 11), 2, None)  # type: ignore[arg-type]
    assert time.monotonic() - started < 20


def _spy_script(marker: Path, body: str) -> str:
    return (
        "import sys\n"
        "import losscli.engine.forked as f\n"
        "real = f.run_forked\n"
        "def spy(*a, **k):\n"
        f"    open({str(marker)!r}, 'w').write('forked')\n"
        "    return real(*a, **k)\n"
        "f.run_forked = spy\n" + body
    )


def test_the_python_api_keeps_threads(tmp_path: Path) -> None:
    """A library does not fork its host's process: only the CLI forks."""
    rng = np.random.default_rng(8)
    np.save(tmp_path / "p.npy", rng.normal(size=5_000))
    np.save(tmp_path / "y.npy", rng.normal(size=5_000))
    marker = tmp_path / "forked.txt"
    body = (
        "import losscli\n"
        f"p, y = {str(tmp_path / 'p.npy')!r}, {str(tmp_path / 'y.npy')!r}\n"
        "r = losscli.evaluate('mse', p, y, chunk_size=1000)\n"
        "print(r.value)\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}  # no BLAS threads: only the API's choice matters
    proc = subprocess.run(
        [sys.executable, "-c", _spy_script(marker, body)], capture_output=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()


def test_workers_variable_is_checked(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.zeros(3))
    r = run_cli("mse", tmp_path / "p.npy", tmp_path / "p.npy", env={"LOSSCLI_WORKERS": "thread"})
    assert r.code == 2 and r.stdout == ""
    assert "LOSSCLI_WORKERS must be 'threads' or 'auto'" in r.stderr


def test_compare_on_npy_inputs_of_many_chunks(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    y = rng.normal(size=20_000)
    a, b = y + rng.normal(0, 1, 20_000), y + rng.normal(0, 1.1, 20_000)
    for name, v in (("y", y), ("a", a), ("b", b)):
        np.save(tmp_path / f"{name}.npy", v)
    args = (
        "compare",
        "mse",
        tmp_path / "y.npy",
        tmp_path / "a.npy",
        tmp_path / "b.npy",
        "--chunk-size",
        "1000",
    )
    default, threads = run_cli(*args, "-f", "json"), run_cli(*args, "-f", "json", env=THREADS)
    assert default.code == threads.code == 0, default.stderr
    _same(default.json(), threads.json())
    models = default.json()["models"]
    assert math.isclose(models[0]["value"], float(np.mean((a - y) ** 2)), rel_tol=1e-12)


def test_a_misspelt_workers_variable_still_shows_help_and_the_api_ignores_it(tmp_path: Path) -> None:
    bad = {"LOSSCLI_WORKERS": "thread"}
    helped = run_cli("mse", "--help", env=bad)
    assert helped.code == 0 and "--threads" in helped.stdout
    script = (
        "import losscli, numpy as np\n"
        "print(losscli.evaluate('mse', np.arange(5000.0), np.zeros(5000), chunk_size=500).value)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, env={**os.environ, **bad}, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout) == float(np.mean(np.arange(5000.0) ** 2))
