"""Integer column names (years, scikit-learn's classes_) above float rows are a header, said in a warning.

pandas and Polars write floats with a decimal point, so a row of integers above such rows can
only be column names; the warning names --no-header for the rare file where it is data.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

import references as ref
from conftest import run_cli

REL = 1e-12


def test_year_columns_in_two_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    years = [2021, 2022, 2023]
    p, t = rng.normal(size=(30, 3)), rng.normal(size=(30, 3))
    pd.DataFrame(p, columns=years).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame(t, columns=years).to_csv(tmp_path / "t.csv", index=False)
    r = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "-f", "json")
    data = r.json()
    assert data["n"] == 30 and math.isclose(data["value"], ref.mse(p, t), rel_tol=REL)
    assert [o["output"] for o in data["outputs"]] == ["2021", "2022", "2023"]
    assert "--no-header" in r.stderr and any("2021,2022,2023" in w for w in data["warnings"])


def test_one_integer_named_column(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    p, t = rng.normal(size=25), rng.normal(size=25)
    pd.DataFrame({2023: p}).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({2023: t}).to_csv(tmp_path / "t.csv", index=False)
    # one integer above decimals cannot tell a column name from %g-written data: data, and said
    r = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "-f", "json")
    both = np.concatenate([[2023.0], p]), np.concatenate([[2023.0], t])  # the names read as a row
    assert r.json()["n"] == 26 and math.isclose(r.json()["value"], ref.mse(*both), rel_tol=REL)
    assert r.stderr.count("give --header") == 2
    forced = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "--header", "-f", "json").json()
    assert forced["n"] == 25 and math.isclose(forced["value"], ref.mse(p, t), rel_tol=REL)


def test_classes_header_in_two_file_mode(tmp_path: Path) -> None:
    """predict_proba with columns=clf.classes_ = [1, 2, 3] (or reordered) and a label file."""
    rng = np.random.default_rng(13)
    z = rng.normal(0, 2, (40, 3))
    proba = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = np.array([1, 2, 3])[rng.integers(0, 3, 40)]
    want = ref.ce_probs(proba, y - 1)
    for order in ([1, 2, 3], [2, 3, 1]):
        pd.DataFrame(proba[:, [k - 1 for k in order]], columns=order).to_csv(tmp_path / "p.csv", index=False)
        pd.DataFrame({"label": y}).to_csv(tmp_path / "y.csv", index=False)
        r = run_cli("ce", tmp_path / "p.csv", tmp_path / "y.csv", "-f", "json")
        assert r.code == 0, r.stderr
        assert r.json()["n"] == 40 and math.isclose(r.json()["value"], want, rel_tol=REL)
        assert "matched to the score columns by name" in r.stderr


def test_integers_above_integers_stay_data(tmp_path: Path) -> None:
    """A headerless file of integer labels: its first row is a label, with nothing to say."""
    rng = np.random.default_rng(14)
    p, y = rng.uniform(0.05, 0.95, 20), rng.integers(0, 2, 20)
    y[0] = 1
    np.savetxt(tmp_path / "y.csv", y, fmt="%d")
    pd.DataFrame({"prob": p}).to_csv(tmp_path / "p.csv", index=False, header=False)
    r = run_cli("bce", tmp_path / "p.csv", tmp_path / "y.csv", "-f", "json")
    assert r.json()["n"] == 20 and math.isclose(r.json()["value"], ref.bce_probs(p, y), rel_tol=REL)
    assert "header" not in r.stderr
