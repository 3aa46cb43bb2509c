"""Columns meet by name: several outputs in another order, class labels that name the columns.

Each case is written the way pandas and scikit-learn write it, and checked against a float64
reference computed here with the columns matched by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import losscli

import references as ref
from conftest import run_cli

REL = 1e-12


def _regression(n: int = 40) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(5)
    targets = pd.DataFrame({"price": rng.normal(100, 10, n), "qty": rng.normal(5, 1, n)})
    return targets + rng.normal(0, 1, (n, 2)), targets


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet"])
def test_outputs_in_another_order_pair_by_name(tmp_path: Path, fmt: str) -> None:
    preds, targets = _regression()
    want = ref.mse(preds[["price", "qty"]].to_numpy(), targets[["price", "qty"]].to_numpy())
    p, t = tmp_path / f"p.{fmt}", tmp_path / f"t.{fmt}"
    if fmt == "parquet":
        preds[["qty", "price"]].to_parquet(p, index=False)
        targets.to_parquet(t, index=False)
    else:
        sep = "\t" if fmt == "tsv" else ","
        preds[["qty", "price"]].to_csv(p, index=False, sep=sep)
        targets.to_csv(t, index=False, sep=sep)
    r = run_cli("mse", p, t, "-f", "json")
    data = r.json()
    assert math.isclose(data["value"], want, rel_tol=REL)
    by_name = {o["output"]: o["value"] for o in data["outputs"]}
    assert math.isclose(
        by_name["qty"], ref.mse(preds["qty"].to_numpy(), targets["qty"].to_numpy()), rel_tol=REL
    )
    assert data["columns"]["targets"]["columns"] == ["qty", "price"]
    assert "pair by name" in data["columns"]["targets"]["paired"]
    assert "pair by name" in r.stderr  # the note line
    report = losscli.evaluate("mse", str(p), str(t))  # the Python API pairs alike
    assert math.isclose(report.value, want, rel_tol=REL)


def test_columns_the_user_named_pair_as_given(tmp_path: Path) -> None:
    preds, targets = _regression()
    preds.to_csv(tmp_path / "p.csv", index=False)
    targets.to_csv(tmp_path / "t.csv", index=False)
    data = run_cli(
        "mse", tmp_path / "p.csv", tmp_path / "t.csv", "--pred-col", "qty,price", "--target-col", "price,qty",
        "-f", "json",
    ).json()  # fmt: skip
    crossed = ref.mse(preds[["qty", "price"]].to_numpy(), targets[["price", "qty"]].to_numpy())
    assert math.isclose(data["value"], crossed, rel_tol=REL)


def test_one_hot_targets_in_another_class_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    classes = ["setosa", "versicolor", "virginica"]
    z = rng.normal(0, 2, (30, 3))
    proba = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = rng.integers(0, 3, 30)
    pd.DataFrame(proba, columns=classes).to_csv(tmp_path / "p.csv", index=False)
    onehot = pd.get_dummies(pd.Series(np.array(classes)[y])).astype(float)[
        ["virginica", "setosa", "versicolor"]
    ]
    onehot.to_csv(tmp_path / "t.csv", index=False)
    data = run_cli("ce", tmp_path / "p.csv", tmp_path / "t.csv", "-f", "json").json()
    assert math.isclose(data["value"], ref.ce_probs(proba, y), rel_tol=REL)


def test_a_named_idx_index_is_an_id_not_an_output(tmp_path: Path) -> None:
    # a named pandas index ("idx") that pandas writes as an ordinary first column: an id, checked
    # row by row, never scored as an output beside the predictions
    preds, targets = _regression()
    p = preds[["price"]].rename(columns={"price": "y_pred"}).rename_axis("idx")
    t = targets[["price"]].rename(columns={"price": "y_true"}).rename_axis("idx")
    p.to_csv(tmp_path / "p.csv")
    t.to_csv(tmp_path / "t.csv")
    r = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "-f", "json")
    assert r.code == 0, r.stderr
    assert "column 'idx', checked row by row" in r.stderr
    assert math.isclose(
        r.json()["value"], ref.mse(p["y_pred"].to_numpy(), t["y_true"].to_numpy()), rel_tol=REL
    )
    assert r.json()["columns"]["preds"]["columns"] == ["y_pred"]
    named = run_cli(
        "mse", tmp_path / "p.csv", tmp_path / "t.csv", "--pred-col", "y_pred", "--target-col", "y_true",
        "-f", "value",
    )  # fmt: skip
    assert math.isclose(
        float(named.stdout), ref.mse(p["y_pred"].to_numpy(), t["y_true"].to_numpy()), rel_tol=REL
    )


def test_several_columns_taken_by_a_rule_get_a_note(tmp_path: Path) -> None:
    preds, targets = _regression()
    preds.to_csv(tmp_path / "p.csv", index=False)
    targets.to_csv(tmp_path / "t.csv", index=False)
    r = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "-f", "value")
    assert "note:" in r.stderr and "'price', 'qty'" in r.stderr
    one = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "--pred-col", "qty", "--target-col", "qty")
    assert "note:" not in one.stderr  # named by the user: nothing chosen by a rule


def _classifier(tmp_path: Path, order: list[int]) -> tuple[Path, float, np.ndarray]:
    """predict_proba of a model whose classes_ are [1, 2, 3], columns named by those labels."""
    rng = np.random.default_rng(7)
    z = rng.normal(0, 2, (60, 3))
    proba = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    labels = np.array([1, 2, 3])
    y = labels[rng.integers(0, 3, 60)]
    want = ref.ce_probs(proba, y - 1)  # column k holds class k + 1
    frame = pd.DataFrame(proba[:, [k - 1 for k in order]], columns=[str(k) for k in order])
    frame["label"] = y
    frame.to_csv(tmp_path / "f.csv", index=False)
    return tmp_path / "f.csv", want, y


@pytest.mark.parametrize("order", [[1, 2, 3], [2, 3, 1], [3, 1, 2]])
def test_class_labels_that_name_the_columns(tmp_path: Path, order: list[int]) -> None:
    path, want, y = _classifier(tmp_path, order)
    r = run_cli("ce", path, "--target-col", "label", "-f", "json", "--top", "60")
    data = r.json()
    assert math.isclose(data["value"], want, rel_tol=REL)
    assert "matched to the score columns by name" in r.stderr
    assert {e["predicted"] for e in data["examples"]} <= {1, 2, 3}  # labels, not positions
    assert [e["target"] for e in sorted(data["examples"], key=lambda e: e["row"])] == y.tolist()


def test_pandas_default_names_are_positions(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    z = rng.normal(0, 2, (20, 3))
    proba = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = rng.integers(0, 3, 20)
    frame = pd.DataFrame(proba)  # columns 0, 1, 2
    frame["label"] = y
    frame.to_csv(tmp_path / "f.csv", index=False)
    r = run_cli("ce", tmp_path / "f.csv", "--target-col", "label", "-f", "value")
    assert math.isclose(float(r.stdout), ref.ce_probs(proba, y), rel_tol=REL)
    assert "by name" not in r.stderr


def test_a_label_that_names_no_column_is_refused(tmp_path: Path) -> None:
    path, _, _ = _classifier(tmp_path, [1, 2, 3])
    frame = pd.read_csv(path)
    frame.loc[4, "label"] = 0
    frame.to_csv(path, index=False)
    r = run_cli("ce", path, "--target-col", "label")
    assert r.code == 3 and "row 4" in r.stderr and "label 0" in r.stderr and "1, 2, 3" in r.stderr
    assert r.stdout == ""


def test_an_extra_column_read_as_logits_is_not_silent(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    z = rng.normal(0, 2, (20, 3))
    proba = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    frame = pd.DataFrame(proba)
    frame["label"] = rng.integers(0, 3, 20)
    frame["fold"] = rng.integers(0, 5, 20)
    frame.to_csv(tmp_path / "f.csv", index=False)
    r = run_cli("ce", tmp_path / "f.csv", "--target-col", "label", "-f", "json")
    assert "read as logits" in r.stderr and "--pred-col" in r.stderr
    assert any("read as logits" in w for w in r.json()["warnings"])


def test_evaluate_takes_scikit_learn_keywords() -> None:
    assert losscli.evaluate("mse", y_true=[1.0, 3.0], y_pred=[1.0, 2.0]).value == 0.5
    with pytest.raises(losscli.UsageError, match="preds or its alias y_pred"):
        losscli.evaluate("mse", [1.0], y_pred=[2.0], y_true=[1.0])
