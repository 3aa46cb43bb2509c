"""Bool columns in CSV read as they do in Parquet: True/False (pandas) and true/false (Polars) are 1/0.

The same data gets the same answer in every format: a bool label column or pandas' get_dummies
targets score alike from CSV, TSV and Parquet, against a float64 reference written here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

import references as ref
from conftest import run_cli

REL = 1e-12


def _binary(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, n)
    return p, rng.random(n) < p


@pytest.mark.parametrize("n", [200, 30_000])  # the Python parser (small files) and pyarrow's
@pytest.mark.parametrize("writer", ["pandas csv", "pandas tsv", "polars csv", "parquet"])
def test_bool_labels(tmp_path: Path, n: int, writer: str) -> None:
    p, y = _binary(n)
    frame = pd.DataFrame({"prob": p, "label": y})
    path = tmp_path / ("f.parquet" if writer == "parquet" else "f.tsv" if "tsv" in writer else "f.csv")
    if writer == "parquet":
        frame.to_parquet(path, index=False)
    elif writer == "polars csv":
        pl.from_pandas(frame).write_csv(path)  # writes true/false
    else:
        frame.to_csv(path, index=False, sep="\t" if "tsv" in writer else ",")
    r = run_cli("bce", path, "--pred-col", "prob", "--target-col", "label", "-f", "json")
    assert r.code == 0, r.stderr
    assert r.json()["n"] == n
    assert math.isclose(r.json()["value"], ref.bce_probs(p, y.astype(float)), rel_tol=REL)


def test_get_dummies_targets_score_as_in_parquet(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    classes = np.array(["cat", "dog", "owl"])
    z = rng.normal(size=(50, 3))
    proba = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = rng.integers(0, 3, 50)
    pd.DataFrame(proba, columns=classes).to_csv(tmp_path / "p.csv", index=False)
    onehot = pd.get_dummies(pd.Series(classes[y]))  # bool columns in pandas >= 2
    onehot.to_csv(tmp_path / "t.csv", index=False)
    onehot.to_parquet(tmp_path / "t.parquet", index=False)
    want = ref.ce_probs(proba, y)
    for targets in ("t.csv", "t.parquet"):
        r = run_cli("ce", tmp_path / "p.csv", tmp_path / targets, "-f", "value")
        assert r.code == 0, r.stderr
        assert math.isclose(float(r.stdout), want, rel_tol=REL), targets


def test_a_headerless_bool_file_has_no_header(tmp_path: Path) -> None:
    p, y = _binary(40, seed=2)
    pd.DataFrame({"prob": p}).to_csv(tmp_path / "p.csv", index=False, header=False)
    pd.DataFrame({"label": y}).to_csv(tmp_path / "y.csv", index=False, header=False)
    data = run_cli("bce", tmp_path / "p.csv", tmp_path / "y.csv", "-f", "json").json()
    assert data["n"] == 40  # "True" on the first line is a value, not a column name
    assert math.isclose(data["value"], ref.bce_probs(p, y.astype(float)), rel_tol=REL)


@pytest.mark.parametrize("n", [100, 30_000])
def test_a_bool_column_holding_something_else_is_refused(tmp_path: Path, n: int) -> None:
    p, y = _binary(n, seed=3)
    labels = np.where(y, "True", "False").astype(object)
    labels[n // 2] = "maybe"
    pd.DataFrame({"prob": p, "label": labels}).to_csv(tmp_path / "f.csv", index=False)
    r = run_cli("bce", tmp_path / "f.csv", "--pred-col", "prob", "--target-col", "label")
    assert r.code == 3 and f"row {n // 2}" in r.stderr and "'label'" in r.stderr and "maybe" in r.stderr
    assert r.stdout == ""


def test_missing_bool_with_nan_skip(tmp_path: Path) -> None:
    p, y = _binary(30, seed=4)
    labels = pd.Series(y, dtype="boolean")  # pandas' nullable bool: NaN is written as an empty cell
    labels[[3, 17]] = pd.NA
    pd.DataFrame({"prob": p, "label": labels}).to_csv(tmp_path / "f.csv", index=False)
    keep = np.ones(30, dtype=bool)
    keep[[3, 17]] = False
    data = run_cli(
        "bce",
        tmp_path / "f.csv",
        "--pred-col",
        "prob",
        "--target-col",
        "label",
        "--nan",
        "skip",
        "-f",
        "json",
    ).json()
    assert (data["n"], data["skipped"]) == (28, 2)
    assert math.isclose(data["value"], ref.bce_probs(p[keep], y[keep].astype(float)), rel_tol=REL)
