"""CSV ids are text: compared fast as integers where the text is a plain integer, never changed.

``007`` and ``7`` are different ids in a CSV, an id column may switch from numbers to text after
a million rows, and whatever the comparison used, the rows and messages show the ids as written.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import references as ref
from conftest import run_cli


def _pair(
    tmp: Path, p_ids: list[str], t_ids: list[str], rng: np.random.Generator
) -> tuple[Path, Path, float]:
    n = len(p_ids)
    p, y = rng.normal(size=n), rng.normal(size=n)
    pd.DataFrame({"id": p_ids, "y_pred": p}).to_csv(tmp / "p.csv", index=False)
    pd.DataFrame({"id": t_ids, "y_true": y}).to_csv(tmp / "t.csv", index=False)
    return tmp / "p.csv", tmp / "t.csv", ref.mse(p, y)


def test_leading_zeros_are_part_of_the_id(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    p, t, _ = _pair(tmp_path, ["007", "008", "009"], ["7", "8", "9"], rng)
    r = run_cli("mse", p, t)
    assert r.code == 3 and "row 0" in r.stderr and "'007'" in r.stderr and "'7'" in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("switch", [0, 150_000])
def test_ids_that_turn_to_text_midway(tmp_path: Path, switch: int) -> None:
    """Integers for the first ``switch`` rows (several of pyarrow's blocks), then text ids."""
    n = 200_000
    ids = [str(i) if i < switch else f"k{i}" for i in range(n)]
    rng = np.random.default_rng(2)
    p, t, want = _pair(tmp_path, ids, ids, rng)
    data = run_cli("mse", p, t, "-f", "json", "--top", "3").json()
    assert data["n"] == n and math.isclose(data["value"], want, rel_tol=1e-12)
    shown = [e["id"] for e in data["examples"]]
    assert all(isinstance(i, str) for i in shown)
    assert shown == [str(e["row"]) if e["row"] < switch else f"k{e['row']}" for e in data["examples"]]
    other = list(ids)
    other[switch + 10] = "0" + other[switch + 10] if switch == 0 else other[switch + 10] + "x"
    _, t2, _ = _pair(tmp_path, ids, other, rng)
    r = run_cli("mse", p, t2)
    assert r.code == 3 and f"row {switch + 10}:" in r.stderr and "different orders" in r.stderr


def test_integer_text_ids_are_written_as_text(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    ids = [str(1000 + i) for i in range(50)]
    p, t, _ = _pair(tmp_path, ids, ids, rng)
    r = run_cli("mse", p, t, "--per-example", tmp_path / "out.parquet")
    assert r.code == 0, r.stderr
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["id"].tolist() == ids  # text in, text out
