"""Shared helpers: run the real CLI as a subprocess and write the same data in every format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_data"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(
    *args: Any, stdin: bytes | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Result:
    """Run ``python -m losscli`` with stdout piped (so not a terminal), like a script would."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("LOSSCLI_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "losscli", *[str(a) for a in args]],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=full_env,
        cwd=cwd,
        timeout=120,
    )
    return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


@pytest.fixture
def cli() -> Any:
    return run_cli


def drain_pty(leader: int) -> bytes:
    """Everything a program wrote to a pseudo-terminal, until it closed (then the fd is closed)."""
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO once the other side is gone
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return b"".join(chunks)


def write_csv(path: Path, columns: dict[str, np.ndarray], header: bool = True, delimiter: str = ",") -> Path:
    """Full-precision CSV (repr of each float) so the file holds exactly the array's values."""
    names = list(columns)
    arrays = [np.asarray(columns[n]) for n in names]
    lines = [delimiter.join(names)] if header else []
    for i in range(len(arrays[0])):
        lines.append(delimiter.join(repr(a[i].item()) for a in arrays))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_parquet(path: Path, columns: dict[str, np.ndarray], row_group_size: int | None = None) -> Path:
    data = {}
    for name, arr in columns.items():
        arr = np.asarray(arr)
        if arr.ndim == 2:
            data[name] = pa.array(list(arr))
        else:
            data[name] = pa.array(arr)
    pq.write_table(pa.table(data), path, row_group_size=row_group_size)
    return path


def single_file(tmp: Path, fmt: str, name: str, arr: np.ndarray) -> Path:
    """One array as a file of the given format (CSV/Parquet get one column per array column)."""
    arr = np.asarray(arr)
    if fmt == "npy":
        path = tmp / f"{name}.npy"
        np.save(path, arr)
        return path
    if fmt == "npz":
        path = tmp / f"{name}.npz"
        np.savez(path, arr)
        return path
    cols = {f"c{j}": arr[:, j] for j in range(arr.shape[1])} if arr.ndim == 2 else {name: arr}
    if fmt == "csv":
        return write_csv(tmp / f"{name}.csv", cols)
    if fmt == "tsv":
        return write_csv(tmp / f"{name}.tsv", cols, delimiter="\t")
    if fmt == "parquet":
        return write_parquet(tmp / f"{name}.parquet", cols)
    raise ValueError(fmt)


# Property tests are derandomised (the same examples every run, in CI and here); set
# HYPOTHESIS_PROFILE=explore locally to search with fresh random examples.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci", derandomize=True, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("explore", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
