"""Second user review: weights files' ids, DataFrames in Python, an index column scored as an output,
a row off because of an undecided header. Each case as the real tools write it, against float64."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import losscli

import references as ref
from conftest import run_cli

REL = 1e-12


def _kaggle(tmp: Path, n: int = 40) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(21)
    ids = [f"r{i:03d}" for i in range(n)]
    p, t, w = rng.normal(size=n), rng.normal(size=n), rng.uniform(0.1, 2.0, n)
    pd.DataFrame({"id": ids, "y_pred": p}).to_csv(tmp / "p.csv", index=False)
    pd.DataFrame({"id": ids, "y_true": t}).to_csv(tmp / "t.csv", index=False)
    return ids, p, t, w


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_weights_files_ids_are_checked(tmp_path: Path, fmt: str) -> None:
    ids, p, t, w = _kaggle(tmp_path)
    weights = pd.DataFrame({"id": ids, "weight": w})
    order = np.arange(len(ids))
    order[[5, 6]] = order[[6, 5]]
    for name, frame in (("w", weights), ("shuffled", weights.iloc[order])):
        if fmt == "csv":
            frame.to_csv(tmp_path / f"{name}.{fmt}", index=False)
        else:
            frame.to_parquet(tmp_path / f"{name}.{fmt}", index=False)
    good = run_cli(
        "mse", tmp_path / "p.csv", tmp_path / "t.csv", "--weights", tmp_path / f"w.{fmt}", "-f", "json"
    )
    data = good.json()
    assert math.isclose(data["value"], ref.mse(p, t, w), rel_tol=REL)
    assert [c["file"] for c in data["columns"]["ids"]["checked_against"]] == [
        str(tmp_path / "t.csv"),
        str(tmp_path / f"w.{fmt}"),
    ]
    bad = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "--weights", tmp_path / f"shuffled.{fmt}")
    assert (
        bad.code == 3
        and "row 5:" in bad.stderr
        and "'r006'" in bad.stderr
        and "different orders" in bad.stderr
    )
    assert bad.stdout == ""


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow"])
def test_named_tables_in_python_are_read_by_name_not_guessed(kind: str) -> None:
    """A frame's ``id`` column labels rows (the breakdown), it is never scored as a prediction."""
    frame = pd.DataFrame({"id": [10, 11, 12], "y_pred": [1.0, 2.0, 4.0]})
    table = {"pandas": frame, "polars": pl.from_pandas(frame), "arrow": pa.Table.from_pandas(frame)}[kind]
    assert losscli.mse(table, [1.0, 2.0, 3.0]) == pytest.approx(1 / 3, rel=REL)
    report = losscli.evaluate("mse", [1.0, 2.0, 3.0], table)
    assert report.value == pytest.approx(1 / 3, rel=REL)
    assert report.to_dict()["columns"]["targets"]["columns"] == ["y_pred"]


def test_columns_and_arrays_from_frames_still_work() -> None:
    frame = pd.DataFrame({"id": [10, 11, 12], "y_pred": [1.0, 2.0, 4.0]})
    assert losscli.mse(frame["y_pred"], [1.0, 2.0, 3.0]) == pytest.approx(1 / 3, rel=REL)
    assert losscli.mse(pl.from_pandas(frame)["y_pred"], [1.0, 2.0, 3.0]) == pytest.approx(1 / 3, rel=REL)
    assert losscli.mse(frame[["y_pred"]], [1.0, 2.0, 3.0]) == pytest.approx(1 / 3, rel=REL)
    unnamed = pd.DataFrame(np.array([[1.0, 2.0], [3.0, 5.0]]))  # pandas' 0..k-1: nothing to lose
    assert losscli.mse(unnamed, np.array([[1.0, 2.0], [3.0, 4.0]])) == pytest.approx(0.25, rel=REL)


def test_an_index_written_without_a_header_is_not_silent(tmp_path: Path) -> None:
    """Series.to_csv(header=False): the index becomes an unnamed first column of both files."""
    rng = np.random.default_rng(22)
    p, t = rng.normal(size=50), rng.normal(size=50)
    pd.Series(p).to_csv(tmp_path / "p.csv", header=False)
    pd.Series(t).to_csv(tmp_path / "t.csv", header=False)
    r = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "-f", "json")
    assert any("output '0' has no error on any row" in w for w in r.json()["warnings"])
    assert "--pred-col" in r.stderr
    named = run_cli(
        "mse", tmp_path / "p.csv", tmp_path / "t.csv", "--pred-col", "1", "--target-col", "1", "-f", "value"
    )
    assert math.isclose(float(named.stdout), ref.mse(p, t), rel_tol=REL)
    assert "warning" not in named.stderr


def test_a_row_off_from_an_undecided_header_names_the_option(tmp_path: Path) -> None:
    rng = np.random.default_rng(23)
    y = rng.integers(0, 5, 30)
    pd.DataFrame(y).to_csv(tmp_path / "y.csv", index=False)  # header "0" above integers
    pd.DataFrame({"p": y.astype(float) + 0.5}).to_parquet(tmp_path / "p.parquet", index=False)
    r = run_cli("mse", tmp_path / "p.parquet", tmp_path / "y.csv")
    assert r.code == 3 and "was read as data: give --header" in r.stderr
    fixed = run_cli("mse", tmp_path / "p.parquet", tmp_path / "y.csv", "--header", "-f", "value")
    assert math.isclose(float(fixed.stdout), 0.25, rel_tol=REL)


def test_a_one_column_files_errors_name_its_column(tmp_path: Path) -> None:
    pd.DataFrame({"y_pred": [1.0, float("nan"), 3.0]}).to_csv(tmp_path / "p.csv", index=False, na_rep="nan")
    pd.DataFrame({"y_true": [1.0, 2.0, 3.0]}).to_csv(tmp_path / "t.csv", index=False)
    r = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv")
    assert r.code == 3 and "row 1, column 'y_pred'" in r.stderr


def test_accuracy_is_weighted_like_the_loss(tmp_path: Path) -> None:
    rng = np.random.default_rng(31)
    z = rng.normal(size=(60, 4))
    y = rng.integers(0, 4, 60)
    w = rng.uniform(0.1, 3.0, 60)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "w.npy", w)
    data = run_cli(
        "ce", tmp_path / "z.npy", tmp_path / "y.npy", "--weights", tmp_path / "w.npy", "-f", "json"
    ).json()
    top1 = z.argmax(axis=1) == y
    assert math.isclose(data["accuracy"], math.fsum(w[top1]) / math.fsum(w), rel_tol=REL)
    assert math.isclose(data["value"], ref.ce_logits(z, y, w), rel_tol=REL)
    r = run_cli(
        "perplexity",
        "--logits",
        tmp_path / "z.npy",
        "--targets",
        tmp_path / "y.npy",
        "--topk",
        "2",
        "-f",
        "json",
    ).json()
    rank = (z > z[np.arange(60), y][:, None]).sum(axis=1)
    assert math.isclose(r["topk_accuracy"], float(np.mean(rank < 2)), rel_tol=REL)


def test_float_class_names_and_files_that_begin_alike(tmp_path: Path) -> None:
    """Float class labels name their columns 2.0,0.0,1.0; and two headerless files that begin
    with the same row (the same file twice, zero-inflated data) keep every row."""
    rng = np.random.default_rng(32)
    z = rng.normal(0, 2, (40, 3))
    proba = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = np.array([2.0, 0.0, 1.0])[rng.integers(0, 3, 40)]
    frame = pd.DataFrame(proba[:, [2, 0, 1]], columns=[2.0, 0.0, 1.0])  # classes_ of float labels, reordered
    frame["label"] = y
    frame.to_csv(tmp_path / "f.csv", index=False)
    r = run_cli("ce", tmp_path / "f.csv", "--target-col", "label", "-f", "value")
    assert math.isclose(float(r.stdout), ref.ce_probs(proba, y.astype(int)), rel_tol=REL)
    t = rng.normal(size=30)
    t[0] = 0.0
    p = np.where(rng.random(30) < 0.5, 0.0, rng.normal(size=30))
    p[0] = 0.0
    np.savetxt(tmp_path / "t.csv", t, delimiter=",")
    np.savetxt(tmp_path / "p.csv", p, delimiter=",")
    same = run_cli("mse", tmp_path / "t.csv", tmp_path / "t.csv", "-f", "json")
    assert same.json()["n"] == 30 and same.json()["value"] == 0.0 and same.stderr == ""
    both = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "-f", "json")
    assert both.json()["n"] == 30 and math.isclose(both.json()["value"], ref.mse(p, t), rel_tol=REL)


def test_integer_one_hot_under_a_class_header(tmp_path: Path) -> None:
    rng = np.random.default_rng(33)
    z = rng.normal(0, 2, (30, 3))
    proba = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = rng.integers(0, 3, 30)
    pd.DataFrame(proba, columns=[1, 2, 3]).to_csv(tmp_path / "p.csv", index=False)
    pd.get_dummies(pd.Series(y + 1), dtype=int).to_csv(
        tmp_path / "t.csv", index=False
    )  # header 1,2,3 over 0/1
    r = run_cli("ce", tmp_path / "p.csv", tmp_path / "t.csv", "-f", "json")
    assert r.code == 0, r.stderr
    assert r.json()["n"] == 30 and math.isclose(r.json()["value"], ref.ce_probs(proba, y), rel_tol=REL)


def test_an_unmatched_weights_id_column_is_a_warning(tmp_path: Path) -> None:
    ids, _, _, w = _kaggle(tmp_path)
    pd.DataFrame({"sample_id": ids, "weight": w}).to_csv(tmp_path / "w.csv", index=False)
    r = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "--weights", tmp_path / "w.csv", "-f", "json")
    assert any("were not checked" in x and "w.csv" in x for x in r.json()["warnings"])


def test_one_integer_above_decimals_is_undecided(tmp_path: Path) -> None:
    """np.savetxt(fmt="%g") writes 3 then 2.5: data, said in a warning (one file cannot tell)."""
    (tmp_path / "p.csv").write_text("3\n2.5\n4.25\n1.5\n")
    (tmp_path / "t.csv").write_text("y\n3.5\n2.0\n4.0\n1.0\n")
    r = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "-f", "json")
    want = ref.mse(np.array([3, 2.5, 4.25, 1.5]), np.array([3.5, 2.0, 4.0, 1.0]))
    assert r.json()["n"] == 4 and math.isclose(r.json()["value"], want, rel_tol=REL)
    assert "give --header" in r.stderr
    (tmp_path / "t3.csv").write_text("y\n2.0\n4.0\n1.0\n")
    short = run_cli("mse", tmp_path / "p.csv", tmp_path / "t3.csv")
    assert short.code == 3 and "read as data: give --header" in short.stderr
    (tmp_path / "q.csv").write_text("2\n2.25\n4.0\n1.0\n")  # two such files (%g, R): data both
    both = run_cli("mse", tmp_path / "p.csv", tmp_path / "q.csv", "-f", "json")
    assert both.json()["n"] == 4 and both.stderr.count("give --header") == 2
