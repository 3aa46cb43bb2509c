"""--engine dask against a real cluster: a scheduler and two workers started here with the
`dask scheduler` / `dask worker` commands on 127.0.0.1, and a LocalCluster started by losscli.

Every result is compared with the local engine's (the JSON report, so figures, counts and worst
rows alike) and with a float64 numpy reference written here. Skipped only when distributed cannot
be imported; `make test` installs the dask extra, so in CI these run."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conftest import Result, run_cli

distributed = pytest.importorskip("distributed")

DASK = str(Path(sys.executable).with_name("dask"))
PRELOAD = str(Path(__file__).with_name("dask_support") / "slow_shards.py")
MSE = ("--pred-col", "pred", "--target-col", "target")


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    address: str
    workers: dict[str, subprocess.Popen[bytes]]  # worker address -> its `dask worker` process


def _start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _ready(address: str, workers: int) -> None:
    """Poll with a Client until the scheduler answers and has every worker."""
    deadline = time.monotonic() + 90
    while True:
        try:
            with distributed.Client(address, timeout=2) as client:
                client.wait_for_workers(workers, timeout=max(1.0, deadline - time.monotonic()))
                return
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Clusters:
    """Starts `dask scheduler` and two `dask worker`s (one thread each); ``stop`` ends them all."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, delay: float = 0.0) -> Cluster:
        env = {**os.environ, "LOSSCLI_TEST_SHARD_DELAY": str(delay)}
        port = free_port()
        address = f"tcp://127.0.0.1:{port}"
        self.procs.append(
            _start([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], env)
        )
        workers = {}
        for _ in range(2):
            wport = free_port()
            cmd = [DASK, "worker", address, "--host", "127.0.0.1", "--worker-port", str(wport)]
            cmd += ["--nthreads", "1", "--no-dashboard", "--preload", PRELOAD]
            workers[f"tcp://127.0.0.1:{wport}"] = proc = _start(cmd, env)
            self.procs.append(proc)
        _ready(address, 2)
        return Cluster(address, workers)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            _stop(proc)


@pytest.fixture
def make_cluster() -> Iterator[Clusters]:
    clusters = Clusters()
    yield clusters
    clusters.stop()


@pytest.fixture(scope="module")
def shared() -> Iterator[Cluster]:
    """One cluster for the tests that leave it as they found it."""
    clusters = Clusters()
    try:
        yield clusters.start()
    finally:
        clusters.stop()


def both(*args: Any, address: str | None = None, workers: int | None = None) -> tuple[Result, Result]:
    """The local engine's run and the dask engine's, of the same command."""
    local = run_cli(*args, "-f", "json")
    engine = ["--engine", "dask"]
    engine += ["--scheduler", address] if address else ["--workers", str(workers or 2)]
    dask = run_cli(*args, "-f", "json", *engine)
    return local, dask


def same(local: Result, dask: Result) -> dict[str, Any]:
    assert local.code == 0, local.stderr
    assert dask.code == 0, dask.stderr
    assert "Traceback" not in dask.stderr
    assert dask.json() == local.json()  # every figure bit for bit, counts, worst rows and shards
    return dask.json()  # type: ignore[no-any-return]


def mse_shards(folder: Path, shards: int = 5, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    frames = []
    for i in range(shards):
        n = 400 + 37 * i
        df = pd.DataFrame({"pred": rng.normal(size=n), "target": rng.normal(size=n)})
        df.to_parquet(folder / f"part-{i:05d}.parquet", index=False)
        frames.append(df)
    (folder / "_SUCCESS").write_text("")
    return pd.concat(frames, ignore_index=True)


def test_mse_over_parquet_shards_on_a_running_cluster(shared: Cluster, tmp_path: Path) -> None:
    df = mse_shards(tmp_path / "d")
    out = same(*both("mse", tmp_path / "d", *MSE, address=shared.address))
    d = df["pred"].to_numpy() - df["target"].to_numpy()
    assert close(out["value"], float(np.mean(d * d))) and out["n"] == len(df)
    assert close(out["mae"], float(np.mean(np.abs(d))))
    worst = int(np.argmax(d * d))
    assert out["examples"][0]["row"] == worst and out["examples"][0]["file"].endswith(".parquet")


def test_the_scheduler_from_the_environment(shared: Cluster, tmp_path: Path) -> None:
    mse_shards(tmp_path / "d", shards=3)
    r = run_cli(
        "mse",
        tmp_path / "d",
        *MSE,
        "-f",
        "json",
        "--engine",
        "dask",
        env={"DASK_SCHEDULER_ADDRESS": shared.address},
    )
    assert r.code == 0, r.stderr
    assert r.json() == run_cli("mse", tmp_path / "d", *MSE, "-f", "json").json()


def test_ce_over_parquet_shards(shared: Cluster, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    (tmp_path / "d").mkdir()
    logits, labels = [], []
    for i in range(4):
        n = 250 + 11 * i
        x, y = rng.normal(size=(n, 4)) * 2, rng.integers(0, 4, n)
        pd.DataFrame({**{f"s{k}": x[:, k] for k in range(4)}, "label": y}).to_parquet(
            tmp_path / "d" / f"{i}.parquet", index=False
        )
        logits.append(x)
        labels.append(y)
    x, y = np.concatenate(logits), np.concatenate(labels)
    args = ("ce", tmp_path / "d", "--pred-col", "s0,s1,s2,s3", "--target-col", "label", "--input", "logits")
    out = same(*both(*args, address=shared.address))
    logsum = np.log(np.exp(x).sum(axis=1))
    assert close(out["value"], float(np.mean(logsum - x[np.arange(len(y)), y]))) and out["n"] == len(y)


def test_perplexity_over_parquet_list_shards(shared: Cluster, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    seqs = [-rng.exponential(2.0, rng.integers(3, 40)) for _ in range(31)]
    (tmp_path / "d").mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(seqs)), 4)):
        pd.DataFrame({"lp": [seqs[j] for j in part]}).to_parquet(tmp_path / "d" / f"{i}.parquet", index=False)
    args = ("perplexity", "--logprobs", tmp_path / "d", "--pred-col", "lp")
    out = same(*both(*args, address=shared.address))
    flat = np.concatenate(seqs)
    assert close(out["value"], float(np.exp(-flat.mean()))) and out["n"] == len(flat)
    assert out["sequences"] == len(seqs)


def test_csv_shards_counted_first(shared: Cluster, tmp_path: Path) -> None:
    df = mse_shards(tmp_path / "p", shards=4, seed=3)
    (tmp_path / "d").mkdir()
    for i, path in enumerate(sorted((tmp_path / "p").glob("*.parquet"))):
        pd.read_parquet(path).to_csv(tmp_path / "d" / f"part-{i}.csv", index=False, float_format="%.17g")
    out = same(*both("mse", tmp_path / "d", *MSE, address=shared.address))
    d = df["pred"].to_numpy() - df["target"].to_numpy()
    assert close(out["value"], float(np.mean(d * d))) and out["rows"] == len(df)
    assert out["examples"][0]["row"] == int(np.argmax(d * d))


def test_a_bad_shard_is_exit_3_naming_it_as_locally(shared: Cluster, tmp_path: Path) -> None:
    mse_shards(tmp_path / "p", shards=4, seed=4)
    (tmp_path / "d").mkdir()
    paths = []
    for i, path in enumerate(sorted((tmp_path / "p").glob("*.parquet"))):
        paths.append(tmp_path / "d" / f"part-{i}.csv")
        pd.read_parquet(path).to_csv(paths[-1], index=False, float_format="%.17g")
    lines = paths[2].read_text().splitlines()
    lines[1 + 17] = "oops," + lines[1 + 17].split(",")[1]
    paths[2].write_text("\n".join(lines) + "\n")
    local, dask = both("mse", tmp_path / "d", *MSE, address=shared.address)
    assert local.code == 3 and dask.code == 3, dask.stderr
    error = [line for line in dask.stderr.splitlines() if line.startswith("losscli: error:")]
    assert error == [line for line in local.stderr.splitlines() if line.startswith("losscli: error:")]
    assert str(paths[2]) in error[0] and "row 17" in error[0] and "oops" in error[0]
    assert dask.stdout == "" and "Traceback" not in dask.stderr

    df = mse_shards(tmp_path / "q", shards=4, seed=6)  # NaN in a Parquet shard: the global row
    bad = sorted((tmp_path / "q").glob("*.parquet"))[3]
    piece = pd.read_parquet(bad)
    piece.loc[5, "pred"] = np.nan
    piece.to_parquet(bad, index=False)
    local, dask = both("mse", tmp_path / "q", *MSE, address=shared.address)
    assert local.code == 3 and dask.code == 3 and dask.stderr == local.stderr, dask.stderr
    assert str(bad) in dask.stderr and len(df) > 0


def test_a_local_cluster_and_save_state(tmp_path: Path) -> None:
    df = mse_shards(tmp_path / "d", shards=4, seed=7)
    local, dask = both("mse", tmp_path / "d", *MSE, "--save-state", tmp_path / "s.state", workers=2)
    out = same(local, dask)
    d = df["pred"].to_numpy() - df["target"].to_numpy()
    assert close(out["value"], float(np.mean(d * d)))
    merged = run_cli("merge", tmp_path / "s.state", "-f", "json")
    assert merged.code == 0 and merged.json() == out


def test_a_worker_killed_mid_run(make_cluster: Clusters, tmp_path: Path) -> None:
    """Each shard takes 0.5 s longer on these workers; one is killed while it evaluates a shard."""
    cluster = make_cluster.start(delay=0.5)
    df = mse_shards(tmp_path / "d", shards=5, seed=8)
    cmd = [sys.executable, "-m", "losscli", "mse", str(tmp_path / "d"), *MSE, "-f", "json"]
    run = subprocess.Popen(
        [*cmd, "--engine", "dask", "--scheduler", cluster.address],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    killed = None
    with distributed.Client(cluster.address, timeout=10) as client:
        deadline = time.monotonic() + 60
        while killed is None and time.monotonic() < deadline and run.poll() is None:
            for worker, keys in client.processing().items():
                if any(str(k).startswith("losscli-") and "shard-" in str(k) for k in keys):
                    os.killpg(cluster.workers[worker].pid, signal.SIGKILL)
                    killed = worker
                    break
            time.sleep(0.05)
    stdout, stderr = run.communicate(timeout=120)
    assert killed is not None, "no worker was seen evaluating a shard"
    assert run.returncode == 0, stderr.decode()
    out = json.loads(stdout)
    assert out == run_cli(*cmd[3:]).json()
    d = df["pred"].to_numpy() - df["target"].to_numpy()
    assert close(out["value"], float(np.mean(d * d))) and out["n"] == len(df)


def test_an_unreachable_scheduler_is_exit_5(tmp_path: Path) -> None:
    mse_shards(tmp_path / "d", shards=2)
    started = time.monotonic()
    address = f"tcp://127.0.0.1:{free_port()}"
    r = run_cli(
        "mse", tmp_path / "d", *MSE, "--engine", "dask", "--scheduler", address, "--connect-timeout", "1"
    )
    assert r.code == 5 and address in r.stderr and "--connect-timeout" in r.stderr, r.stderr
    assert r.stdout == "" and "Traceback" not in r.stderr
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("listener", ["answers http", "never answers"])
def test_an_address_that_is_no_dask_scheduler_is_exit_5_in_time(tmp_path: Path, listener: str) -> None:
    """An HTTP server made distributed allocate 3 EiB (exit 70); a silent listener held the
    handshake past --connect-timeout for ever."""
    import socket
    import threading

    mse_shards(tmp_path / "d", shards=2)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            if listener == "answers http":
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                conn.close()
            else:
                held.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    started = time.monotonic()
    try:
        r = run_cli(
            "mse", tmp_path / "d", *MSE, "--engine", "dask", "--scheduler", address, "--connect-timeout", "1"
        )
    finally:
        server.close()
        for conn in held:
            conn.close()
    assert r.code == 5 and address in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert r.stdout == "" and time.monotonic() - started < 30


def test_dask_missing_is_exit_2_with_the_install_command(tmp_path: Path) -> None:
    mse_shards(tmp_path / "d", shards=2)
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "distributed.py").write_text("raise ImportError(\"No module named 'distributed'\")\n")
    env = {"PYTHONPATH": os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")])}
    r = run_cli("mse", tmp_path / "d", *MSE, "--engine", "dask", env=env)
    assert r.code == 2 and "pip install 'losscli[dask]'" in r.stderr and r.stdout == "", r.stderr
    assert run_cli("mse", tmp_path / "d", *MSE, env=env).code == 0  # the local engine needs no dask


def test_refusals_before_any_cluster(tmp_path: Path) -> None:
    df = mse_shards(tmp_path / "d", shards=3)
    df[["target"]].to_csv(tmp_path / "targets.csv", index=False)
    r = run_cli("mse", tmp_path / "d", tmp_path / "targets.csv", "--pred-col", "pred", "--engine", "dask")
    assert r.code == 2 and str(tmp_path / "targets.csv") in r.stderr and "--engine local" in r.stderr
    r = run_cli("mse", tmp_path / "d", *MSE, "--workers", "2")
    assert r.code == 2 and "--engine dask" in r.stderr
    one = sorted((tmp_path / "d").glob("*.parquet"))[0]
    r = run_cli("mse", one, *MSE, "--engine", "dask")
    assert r.code == 2 and "directory" in r.stderr


def test_a_single_parquet_file_beside_shards(shared: Cluster, tmp_path: Path) -> None:
    df = mse_shards(tmp_path / "d", shards=3, seed=9)
    df[["target"]].to_parquet(tmp_path / "targets.parquet", index=False)
    out = same(
        *both(
            "mse",
            tmp_path / "d",
            tmp_path / "targets.parquet",
            "--pred-col",
            "pred",
            "--target-col",
            "target",
            address=shared.address,
        )
    )
    d = df["pred"].to_numpy() - df["target"].to_numpy()
    assert close(out["value"], float(np.mean(d * d)))


def test_large_shards_cut_at_row_groups_are_tasks_of_their_own(shared: Cluster, tmp_path: Path) -> None:
    """--split-rows: a shard of many row groups runs as several tasks, with the local result."""
    rng = np.random.default_rng(21)
    folder = tmp_path / "d"
    folder.mkdir()
    frames = []
    for i, n in enumerate((1000, 640)):
        df = pd.DataFrame({"pred": rng.normal(size=n), "target": rng.normal(size=n)})
        df.to_parquet(folder / f"part-{i}.parquet", index=False, row_group_size=100)
        frames.append(df)
    whole = pd.concat(frames, ignore_index=True)
    out = same(*both("mse", folder, *MSE, "--split-rows", "200", address=shared.address))
    assert len(out["provenance"]["parts"]) > 2
    d = whole["pred"].to_numpy() - whole["target"].to_numpy()
    assert close(out["value"], float(np.mean(d * d)))
    assert out["n"] == len(whole)


def test_bootstrap_interval_over_shards_is_the_local_engines(shared: Cluster, tmp_path: Path) -> None:
    """--ci --bootstrap over Parquet shards: an example's identity is (file, row within file), so
    the dask engine's interval is the local engine's, with any chunk size (1e-12)."""
    df = mse_shards(tmp_path / "d")
    args = ("mse", tmp_path / "d", *MSE, "--bootstrap", "200")
    local, dask = both(*args, address=shared.address)
    out = same(local, dask)
    engine = ("--engine", "dask", "--scheduler", shared.address)
    other = run_cli(*args, "-f", "json", "--chunk-size", "97", *engine)
    assert other.code == 0, other.stderr
    for a, b in zip(out["ci"]["value"], other.json()["ci"]["value"], strict=True):
        assert close(a, b)
    from losscli.stats import example_ids, file_key, poisson_weights

    ids = np.concatenate([example_ids(0, 400 + 37 * i, file_key(f"part-{i:05d}.parquet")) for i in range(5)])
    w = poisson_weights(13, ids, 200).astype(float)
    d = (df["pred"] - df["target"]).to_numpy()
    reps = (w @ (d * d)) / w.sum(axis=1)
    for a, b in zip(out["ci"]["value"], np.quantile(reps, [0.025, 0.975]), strict=True):
        assert close(a, float(b))
