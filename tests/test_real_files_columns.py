"""Issue 9 item 2: index and id columns, as pandas, Polars and Kaggle really write them.

Every file here is written by the tool users have (pandas ``to_csv``/``to_parquet``, Polars
``write_csv``/``write_parquet``, NumPy), and every figure is checked against a float64
reference computed in the test from the formula (math.fsum), never against losscli's output.
"""

from __future__ import annotations

import csv
import io
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest

import losscli
from losscli.errors import InputError
from losscli.readers.base import IndexNames
from losscli.readers.memory import ArrayReader

from conftest import run_cli

REL = 1e-12


# ---------------------------------------------------------------- float64 references


def ref_mse(p: Any, t: Any) -> float:
    p, t = np.asarray(p, dtype=np.float64), np.asarray(t, dtype=np.float64)
    return math.fsum(((p - t) ** 2).ravel().tolist()) / p.size


def ref_mae(p: Any, t: Any) -> float:
    p, t = np.asarray(p, dtype=np.float64), np.asarray(t, dtype=np.float64)
    return math.fsum(np.abs(p - t).ravel().tolist()) / p.size


def ref_bce(p: Any, t: Any) -> float:
    return math.fsum(-(y * math.log(q) + (1 - y) * math.log(1 - q)) for q, y in zip(p, t, strict=True)) / len(
        p
    )


def ref_ce(probs: Any, labels: Any) -> float:
    return math.fsum(-math.log(row[int(y)]) for row, y in zip(probs, labels, strict=True)) / len(labels)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=0.0)


def regression(n: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    return y + rng.normal(scale=0.5, size=n), y


def softmax_rows(n: int, c: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, c)) * 2
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return probs, rng.integers(0, c, size=n)


def notes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("losscli: note:")]


def column_notes(stderr: str) -> list[str]:
    """Notes about columns (not the --input auto note of classifiers)."""
    return [n for n in notes(stderr) if "--input auto" not in n]


SEPS = {"csv": ",", "tsv": "\t"}


# ---------------------------------------------------------------- pandas index in CSV / TSV


@pytest.mark.parametrize("ext", ["csv", "tsv"])
@pytest.mark.parametrize("index", ["written", "read_back", "read_back_twice", "none"])
def test_pandas_to_csv_index_is_never_scored(tmp_path: Path, ext: str, index: str) -> None:
    """`df[["y_pred"]].to_csv(path)` writes a ',y_pred' header: the index is not a 2nd output."""
    p, t = regression()
    sep = SEPS[ext]
    paths = []
    for name, values in (("y_pred", p), ("y_true", t)):
        path = tmp_path / f"{name}.{ext}"
        df = pd.DataFrame({name: values})
        if index.startswith("read_back"):  # what pandas writes after reading its index back
            df.to_csv(path, sep=sep)
            df = pd.read_csv(path, sep=sep)
            assert list(df.columns) == ["Unnamed: 0", name]
        df.to_csv(path, sep=sep, index=index in ("written", "read_back_twice"))
        paths.append(path)
    res = run_cli("mse", *paths, "--format", "json")
    assert res.code == 0, res.stderr
    out = res.json()
    assert close(out["value"], ref_mse(p, t))
    assert out["n"] == len(p)
    assert "outputs" not in out
    cols = out["columns"]
    assert cols["preds"]["columns"] == ["y_pred"] and cols["targets"]["columns"] == ["y_true"]
    assert cols["preds"]["chosen_by"] == "rule: every column"
    assert cols["ids"] is None
    headers = {"written": [""], "read_back": ["Unnamed: 0"], "read_back_twice": ["", "Unnamed: 0"]}
    header = headers.get(index, [])
    assert cols["preds"]["skipped"] == [{"column": h, "reason": "pandas index"} for h in header]
    if not header:
        assert column_notes(res.stderr) == []
    else:
        (note,) = column_notes(res.stderr)
        assert f"skipped pandas index column{'s' if len(header) > 1 else ''} {header[0]!r}" in note
        assert "'y_pred'" in note


def test_one_file_with_index_every_other_column(tmp_path: Path) -> None:
    """One file, --target-col only: 'every other column' leaves the index out."""
    p, t = regression(seed=1)
    path = tmp_path / "both.csv"
    pd.DataFrame({"estimate": p, "y_true": t}).to_csv(path)
    res = run_cli("mae", path, "--target-col", "y_true", "--format", "json")
    assert res.code == 0, res.stderr
    out = res.json()
    assert close(out["value"], ref_mae(p, t))
    assert out["columns"]["preds"]["columns"] == ["estimate"]
    assert out["columns"]["preds"]["chosen_by"] == "rule: every other column"
    assert out["columns"]["targets"]["chosen_by"] == "user"
    (note,) = column_notes(res.stderr)
    assert "every other column" in note and "pandas index column ''" in note


def test_one_file_conventional_names_are_noted(tmp_path: Path) -> None:
    p, t = regression(seed=2)
    path = tmp_path / "both.csv"
    pd.DataFrame({"y_pred": p, "y_true": t}).to_csv(path)
    res = run_cli("mse", path, "--format", "json")
    assert res.code == 0, res.stderr
    out = res.json()
    assert close(out["value"], ref_mse(p, t))
    assert out["columns"]["preds"] == {
        "file": str(path),
        "columns": ["y_pred"],
        "chosen_by": "rule: conventional name",
        "skipped": [],
    }
    assert out["columns"]["targets"]["chosen_by"] == "rule: conventional name"
    assert len(column_notes(res.stderr)) == 1


# ---------------------------------------------------------------- pandas index in Parquet


@pytest.mark.parametrize("filtered", [True, False])
def test_pandas_to_parquet_index_columns(tmp_path: Path, filtered: bool) -> None:
    """After a filter pandas stores the index as '__index_level_0__' (listed in the file's
    pandas metadata); a RangeIndex is metadata only. Neither is ever scored."""
    p, t = regression(n=80, seed=3)
    df = pd.DataFrame({"y_pred": p, "y_true": t})
    if filtered:
        df = df[df["y_true"] > -0.5]
    pd.DataFrame({"y_pred": df["y_pred"]}).to_parquet(tmp_path / "p.parquet")
    pd.DataFrame({"y_true": df["y_true"]}).to_parquet(tmp_path / "t.parquet")
    names = pq.read_schema(tmp_path / "p.parquet").names
    assert names == (["y_pred", "__index_level_0__"] if filtered else ["y_pred"])
    res = run_cli("mse", tmp_path / "p.parquet", tmp_path / "t.parquet", "--format", "json")
    assert res.code == 0, res.stderr
    out = res.json()
    assert close(out["value"], ref_mse(df["y_pred"].to_numpy(), df["y_true"].to_numpy()))
    assert out["n"] == len(df)
    assert out["columns"]["preds"]["columns"] == ["y_pred"]
    skipped = [{"column": "__index_level_0__", "reason": "pandas index"}] if filtered else []
    assert out["columns"]["preds"]["skipped"] == skipped
    assert len(column_notes(res.stderr)) == (1 if filtered else 0)


def test_csv_with_index_against_filtered_parquet(tmp_path: Path) -> None:
    """Predictions in CSV (index written), targets in Parquet (index column): same rows."""
    p, t = regression(n=60, seed=4)
    keep = t > 0
    pd.DataFrame({"y_pred": p[keep]}).to_csv(tmp_path / "p.csv")
    pd.DataFrame({"y_true": t}).loc[keep].to_parquet(tmp_path / "t.parquet")
    res = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.parquet", "--format", "value")
    assert res.code == 0, res.stderr
    assert close(float(res.stdout), ref_mse(p[keep], t[keep]))


# ---------------------------------------------------------------- Polars: no index at all


def test_polars_files_have_no_index(tmp_path: Path) -> None:
    p, t = regression(n=40, seed=5)
    pl.DataFrame({"y_pred": p}).write_csv(tmp_path / "p.csv")
    pl.DataFrame({"y_true": t}).write_parquet(tmp_path / "t.parquet")
    res = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.parquet", "--format", "json")
    assert res.code == 0, res.stderr
    out = res.json()
    assert close(out["value"], ref_mse(p, t))
    assert out["columns"]["preds"] == {
        "file": str(tmp_path / "p.csv"),
        "columns": ["y_pred"],
        "chosen_by": "rule: every column",
        "skipped": [],
    }
    assert column_notes(res.stderr) == []


# ---------------------------------------------------------------- wide predict_proba + label


@pytest.mark.parametrize("layout", ["csv_index", "tsv_index", "parquet_filtered", "csv_id", "polars_csv"])
def test_wide_predict_proba_with_target_col(tmp_path: Path, layout: str) -> None:
    """`--target-col label` on a wide predict_proba table: the index/id is not a class."""
    probs, labels = softmax_rows(60, 4, seed=6)
    df = pd.DataFrame(probs, columns=[f"p{c}" for c in range(4)])
    df["label"] = labels
    keep = np.ones(len(df), dtype=bool)
    if layout == "csv_index":
        path = tmp_path / "scores.csv"
        df.to_csv(path)
    elif layout == "tsv_index":
        path = tmp_path / "scores.tsv"
        df.to_csv(path, sep="\t")
    elif layout == "parquet_filtered":
        keep = labels != 2
        path = tmp_path / "scores.parquet"
        df[keep].to_parquet(path)
    elif layout == "csv_id":
        path = tmp_path / "scores.csv"
        df.insert(0, "id", [f"img_{i:04d}.png" for i in range(len(df))])
        df.to_csv(path, index=False)
    else:
        path = tmp_path / "scores.csv"
        pl.from_pandas(df).write_csv(path)
    res = run_cli("ce", path, "--target-col", "label", "--input", "probs", "--format", "json")
    assert res.code == 0, res.stderr
    out = res.json()
    assert close(out["value"], ref_ce(probs[keep], labels[keep]))
    assert out["n"] == int(keep.sum())
    assert out["columns"]["preds"]["columns"] == ["p0", "p1", "p2", "p3"]


# ---------------------------------------------------------------- Kaggle-style id columns


def kaggle_files(tmp_path: Path, n: int, ext: str, order: np.ndarray | None = None, seed: int = 7) -> Any:
    p, t = regression(n=n, seed=seed)
    ids = np.array([f"{i * 7919 % 100003:05d}" for i in range(n)], dtype=object)  # text, leading zeros
    preds = pd.DataFrame({"id": ids, "y_pred": p})
    targets = pd.DataFrame({"id": ids, "y_true": t})
    if order is not None:
        targets = targets.iloc[order]
    paths = []
    for name, df in (("submission", preds), ("solution", targets)):
        path = tmp_path / f"{name}.{ext}"
        if ext == "parquet":
            df.to_parquet(path, index=False)
        else:
            df.to_csv(path, sep=SEPS[ext], index=False)
        paths.append(path)
    return p, t, ids, paths


@pytest.mark.parametrize("ext", ["csv", "tsv", "parquet"])
def test_kaggle_ids_same_order(tmp_path: Path, ext: str) -> None:
    p, t, ids, paths = kaggle_files(tmp_path, 30, ext)
    res = run_cli("mse", *paths, "--format", "json", "--top", "3")
    assert res.code == 0, res.stderr
    out = res.json()
    assert close(out["value"], ref_mse(p, t))
    assert out["columns"]["preds"]["columns"] == ["y_pred"]
    assert out["columns"]["preds"]["skipped"] == [{"column": "id", "reason": "id column"}]
    assert out["columns"]["ids"] == {
        "file": str(paths[0]),
        "columns": ["id"],
        "chosen_by": "rule: id-like name",
        "checked_against": [{"file": str(paths[1]), "columns": ["id"]}],
    }
    worst = np.argsort(-((p - t) ** 2), kind="stable")[:3]
    assert [e["row"] for e in out["examples"]] == worst.tolist()
    assert [e["id"] for e in out["examples"]] == [ids[r] for r in worst]  # text, "00000" kept
    (note,) = column_notes(res.stderr)
    assert "skipped id column 'id'" in note and "checked row by row" in note


@pytest.mark.parametrize("ext", ["csv", "tsv", "parquet"])
def test_kaggle_ids_shuffled_is_refused(tmp_path: Path, ext: str) -> None:
    n = 30
    order = np.random.default_rng(8).permutation(n)
    _, _, ids, paths = kaggle_files(tmp_path, n, ext, order)
    first = int(np.argmax(order != np.arange(n)))
    res = run_cli("mse", *paths)
    assert res.code == 3
    assert res.stdout == ""
    err = res.stderr.strip().splitlines()[-1]
    assert err.startswith("losscli: error: ")
    assert f"row {first}:" in err and "different orders" in err
    assert repr(ids[first]) in err and repr(ids[order[first]]) in err
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("chunk", ["7", "4096"])
def test_id_mismatch_found_late_in_a_large_file(tmp_path: Path, chunk: str) -> None:
    """Checked chunk by chunk while streaming (a file above the small-file limit goes through
    pyarrow's block reader): only rows 15000/15001 are swapped, and that row is named."""
    n = 20_000
    order = np.arange(n)
    order[[15_000, 15_001]] = order[[15_001, 15_000]]
    _, _, ids, paths = kaggle_files(tmp_path, n, "csv", order)
    assert paths[0].stat().st_size > 256 << 10
    res = run_cli("mse", *paths, "--chunk-size", chunk)
    assert res.code == 3, res.stderr
    assert f"row 15000: {paths[0]} has id {ids[15_000]!r} but {paths[1]} has id {ids[15_001]!r}" in res.stderr


def test_csv_text_ids_agree_with_parquet_integer_ids(tmp_path: Path) -> None:
    """`7` in a Parquet int64 column and `7` in a CSV are the same id."""
    p, t = regression(n=25, seed=9)
    ids = np.arange(1000, 1025)
    pd.DataFrame({"id": ids, "y_pred": p}).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({"id": ids, "y_true": t}).to_parquet(tmp_path / "t.parquet", index=False)
    res = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.parquet", "--format", "value")
    assert res.code == 0, res.stderr
    assert close(float(res.stdout), ref_mse(p, t))
    pd.DataFrame({"id": ids[::-1], "y_true": t}).to_parquet(tmp_path / "t.parquet", index=False)
    res = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.parquet")
    assert res.code == 3 and "row 0:" in res.stderr and "'1000'" in res.stderr and "1024" in res.stderr


def test_id_rules_by_name(tmp_path: Path) -> None:
    """`ID`, `*_id`, camelCase `...Id`, `index`, `row` are ids; a file holding only
    `token_id` is data (token ids are targets, not row labels)."""
    probs, labels = softmax_rows(20, 3, seed=10)
    scores = tmp_path / "scores.csv"
    pd.DataFrame(probs, columns=["a", "b", "c"]).assign(PassengerId=np.arange(20)).to_csv(scores, index=False)
    for cols in (["token_id"], ["row", "token_id"], ["ID", "token_id"], ["index", "token_id"]):
        targets = tmp_path / "labels.csv"
        df = pd.DataFrame({"token_id": labels})
        for c in cols[:-1]:
            df.insert(0, c, np.arange(20) + 5)
        df.to_csv(targets, index=False)
        res = run_cli("ce", scores, targets, "--input", "probs", "--format", "json")
        assert res.code == 0, (cols, res.stderr)
        out = res.json()
        assert close(out["value"], ref_ce(probs, labels)), cols
        assert out["columns"]["targets"]["columns"] == ["token_id"]
        assert out["columns"]["preds"]["columns"] == ["a", "b", "c"]


def test_named_id_column_is_data(tmp_path: Path) -> None:
    """Naming an id-like column in --pred-col/--target-col makes it data: the user said so."""
    rng = np.random.default_rng(11)
    row, y = rng.normal(size=15), rng.normal(size=15)
    path = tmp_path / "f.csv"
    pd.DataFrame({"row": row, "y_true": y}).to_csv(path, index=False)
    res = run_cli("mse", path, "--pred-col", "row", "--target-col", "y_true", "--format", "json")
    assert res.code == 0, res.stderr
    out = res.json()
    assert close(out["value"], ref_mse(row, y))
    assert out["columns"]["preds"]["chosen_by"] == "user" and out["columns"]["ids"] is None
    assert column_notes(res.stderr) == []


# ---------------------------------------------------------------- per-output names


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_per_output_rows_carry_column_names(tmp_path: Path, fmt: str) -> None:
    rng = np.random.default_rng(12)
    t = rng.normal(size=(30, 2)) * [100, 10]
    p = t + rng.normal(size=(30, 2))
    frames = (
        pd.DataFrame({"price": p[:, 0], "rent": p[:, 1]}),
        pd.DataFrame({"price": t[:, 0], "rent": t[:, 1]}),
    )
    paths = []
    for name, df in zip(("p", "t"), frames, strict=True):
        path = tmp_path / f"{name}.{fmt}"
        df.to_csv(path) if fmt == "csv" else df.iloc[1:].to_parquet(path)  # index in both
        paths.append(path)
    lo = 0 if fmt == "csv" else 1
    res = run_cli("mse", *paths, "--format", "json")
    assert res.code == 0, res.stderr
    out = res.json()
    assert [o["output"] for o in out["outputs"]] == ["price", "rent"]
    for j, o in enumerate(out["outputs"]):
        assert close(o["value"], ref_mse(p[lo:, j], t[lo:, j]))
    assert close(out["value"], ref_mse(p[lo:], t[lo:]))
    table = list(csv.reader(io.StringIO(run_cli("mse", *paths, "--format", "csv").stdout)))
    assert [row[1] for row in table[1:]] == ["all", "price", "rent"]
    text = run_cli("mse", *paths, "--format", "table").stdout
    assert "price" in text and "rent" in text


def test_unnamed_arrays_keep_numbered_outputs() -> None:
    rng = np.random.default_rng(13)
    t = rng.normal(size=(10, 2))
    p = t + 1.5
    report = losscli.evaluate("mse", p, t)
    assert [name for name, _ in report.per_output] == ["0", "1"]
    assert close(report.value, ref_mse(p, t))
    assert report.columns["preds"] == {
        "file": "preds",
        "columns": None,
        "chosen_by": "rule: the whole array",
        "skipped": [],
    }
    assert report.notes == []


# ---------------------------------------------------------------- columns object


def test_columns_object_user_rule_and_weights(tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    n = 12
    p, t, w = rng.normal(size=n), rng.normal(size=n), rng.uniform(0.5, 2, size=n)
    path = tmp_path / "f.csv"
    pd.DataFrame({"order_id": np.arange(n) + 100, "guess": p, "truth_value": t, "w": w}).to_csv(path)
    res = run_cli(
        "mse",
        path,
        "--pred-col",
        "guess",
        "--target-col",
        "truth_value",
        "--weight-col",
        "w",
        "--format",
        "json",
    )
    assert res.code == 0, res.stderr
    out = res.json()
    assert close(out["value"], math.fsum((w * (p - t) ** 2).tolist()) / math.fsum(w.tolist()))
    cols = out["columns"]
    assert [cols[r]["chosen_by"] for r in ("preds", "targets", "weights")] == ["user"] * 3
    assert cols["weights"]["columns"] == ["w"]
    assert cols["ids"]["columns"] == ["order_id"] and cols["ids"]["checked_against"] == []
    assert [e["id"] for e in out["examples"]] == [str(100 + e["row"]) for e in out["examples"]]  # CSV: text
    (note,) = column_notes(res.stderr)
    assert "rows carry ids from" in note and "'order_id'" in note


def test_weight_col_is_not_a_prediction_in_two_file_mode(tmp_path: Path) -> None:
    rng = np.random.default_rng(15)
    n = 10
    p, t, w = rng.normal(size=n), rng.normal(size=n), rng.uniform(0.5, 2, size=n)
    pd.DataFrame({"y_pred": p, "w": w}).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({"y_true": t}).to_csv(tmp_path / "t.csv", index=False)
    res = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "--weight-col", "w", "--format", "value")
    assert res.code == 0, res.stderr
    assert close(float(res.stdout), math.fsum((w * (p - t) ** 2).tolist()) / math.fsum(w.tolist()))


# ---------------------------------------------------------------- ids in the breakdown


def test_every_example_table_carries_ids(tmp_path: Path) -> None:
    p, t, ids, paths = kaggle_files(tmp_path, 8, "csv")
    res = run_cli("mse", *paths, "--format", "table", env={"COLUMNS": "200"})
    assert res.code == 0, res.stderr
    section = res.stdout[res.stdout.index("Every example") :]
    rows = [[c.strip() for c in line.strip("│ ").split("│")] for line in section.splitlines() if "│" in line]
    header = next(line for line in section.splitlines() if "┃" in line)
    assert [c.strip() for c in header.strip("┃ ").split("┃")][:2] == ["row", "id"]
    assert [(int(r[0]), r[1]) for r in rows] == [(i, ids[i]) for i in range(8)]
    assert all(math.isclose(float(r[-1]), (p[int(r[0])] - t[int(r[0])]) ** 2, rel_tol=1e-6) for r in rows)


def test_python_api_carries_and_checks_ids(tmp_path: Path) -> None:
    p, t, ids, paths = kaggle_files(tmp_path, 12, "parquet")
    report = losscli.evaluate("mae", *paths, top=12)
    assert close(report.value, ref_mae(p, t))
    assert report.breakdown == "all"
    assert [e.id for e in report.examples] == [ids[e.row] for e in report.examples]
    assert report.id_column == "id"
    assert report.notes and "checked row by row" in report.notes[0]
    order = np.arange(12)[::-1].copy()
    _, _, _, shuffled = kaggle_files(tmp_path, 12, "parquet", order)
    with pytest.raises(InputError, match="different orders"):
        losscli.evaluate("mae", *shuffled)


# ---------------------------------------------------------------- --per-example carries ids


@pytest.mark.parametrize("out_ext", ["csv", "parquet"])
def test_per_example_carries_ids(tmp_path: Path, out_ext: str) -> None:
    p, t, ids, paths = kaggle_files(tmp_path, 40, "csv")
    ids[3] = 'a,"quoted" id'  # a CSV cell that needs quoting, written back as it was
    for path in paths:
        df = pd.read_csv(path, dtype={"id": str})
        df["id"] = ids
        df.to_csv(path, index=False)
    out = tmp_path / f"losses.{out_ext}"
    res = run_cli("mse", *paths, "--per-example", out)
    assert res.code == 0, res.stderr
    got = pd.read_csv(out, dtype={"id": str}) if out_ext == "csv" else pd.read_parquet(out)
    assert list(got.columns) == ["row", "id", "loss"]
    assert got["row"].tolist() == list(range(40))
    assert got["id"].tolist() == list(ids)
    expected = ((p - t) ** 2).tolist()
    assert all(close(a, b) for a, b in zip(got["loss"].tolist(), expected, strict=True))


def test_per_example_npy_says_it_has_no_ids(tmp_path: Path) -> None:
    p, t, _, paths = kaggle_files(tmp_path, 10, "csv")
    out = tmp_path / "losses.npy"
    res = run_cli("mse", *paths, "--per-example", out)
    assert res.code == 0, res.stderr
    rec = np.load(out)
    assert rec.dtype.names == ("row", "loss")
    assert all(close(a, b) for a, b in zip(rec["loss"].tolist(), ((p - t) ** 2).tolist(), strict=True))
    assert any(".npy files have no id column" in n for n in notes(res.stderr))


def test_nan_skip_keeps_ids_with_their_rows(tmp_path: Path) -> None:
    """--nan skip compacts the chunk: each kept row must keep its own id."""
    p, t, ids, paths = kaggle_files(tmp_path, 30, "csv")
    p[[2, 17]] = np.nan
    pd.DataFrame({"id": ids, "y_pred": p}).to_csv(paths[0], index=False, na_rep="nan")
    out = tmp_path / "losses.csv"
    res = run_cli(
        "mse", *paths, "--nan", "skip", "--chunk-size", "8", "--per-example", out, "--format", "json"
    )
    assert res.code == 0, res.stderr
    keep = ~np.isnan(p)
    assert close(res.json()["value"], ref_mse(p[keep], t[keep]))
    got = pd.read_csv(out, dtype={"id": str})
    assert got["row"].tolist() == np.flatnonzero(keep).tolist()
    assert got["id"].tolist() == list(ids[keep])
    for e in res.json()["examples"]:
        assert e["id"] == ids[e["row"]]


# ---------------------------------------------------------------- threaded path


class NamedArrays(ArrayReader):
    """An in-memory table with column names: seekable, so the engine may score it on threads."""

    def __init__(self, columns: dict[str, np.ndarray], name: str) -> None:
        super().__init__(np.column_stack(list(columns.values())), name)
        self.column_names = list(columns)


def test_ids_checked_on_the_threaded_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from losscli.engine import plan

    opened = plan.open_source
    monkeypatch.setattr(
        plan,
        "open_source",
        lambda src, *rest: src.data if isinstance(src.data, NamedArrays) else opened(src, *rest),
    )
    n = 10_000
    p, t = regression(n=n, seed=16)
    ids = np.arange(n, dtype=np.float64) + 1
    preds = NamedArrays({"row": ids, "y_pred": p}, "preds")
    targets = NamedArrays({"row": ids, "y_true": t}, "targets")
    assert not isinstance(preds.column_names, IndexNames) and preds.range_reader() is not None
    report = losscli.evaluate("mse", preds, targets, threads=2, chunk_size=512)
    assert close(report.value, ref_mse(p, t))
    worst = int(np.argmax((p - t) ** 2))
    assert report.examples[0].row == worst and report.examples[0].id == worst + 1
    bad = ids.copy()
    bad[[7000, 7001]] = bad[[7001, 7000]]
    targets = NamedArrays({"row": bad, "y_true": t}, "targets")
    with pytest.raises(InputError, match=r"row 7000: preds has id 7001\.0 but targets has id 7002\.0"):
        losscli.evaluate(
            "mse", NamedArrays({"row": ids, "y_pred": p}, "preds"), targets, threads=2, chunk_size=512
        )


# ---------------------------------------------------------------- property: never changes the result


@pytest.mark.parametrize("metric", ["mse", "mae", "bce", "ce"])
@pytest.mark.parametrize("extra", ["index", "id"])
@pytest.mark.parametrize("ext", ["csv", "tsv", "parquet"])
def test_index_or_id_column_never_changes_the_result(
    tmp_path: Path, metric: str, extra: str, ext: str
) -> None:
    rng = np.random.default_rng(17)
    n = 40
    if metric == "ce":
        probs, labels = softmax_rows(n, 3, seed=18)
        pred_df, target_df = pd.DataFrame(probs, columns=["a", "b", "c"]), pd.DataFrame({"label": labels})
        expected = ref_ce(probs, labels)
    else:
        t = rng.integers(0, 2, size=n).astype(float) if metric == "bce" else rng.normal(size=n)
        p = rng.uniform(0.05, 0.95, size=n) if metric == "bce" else t + rng.normal(size=n)
        pred_df, target_df = pd.DataFrame({"y_pred": p}), pd.DataFrame({"y_true": t})
        expected = {"mse": ref_mse, "mae": ref_mae, "bce": ref_bce}[metric](p, t)
    paths = []
    for name, df in (("p", pred_df), ("t", target_df)):
        if extra == "id":
            df = df.copy()
            df.insert(0, "id", [f"s{i}" for i in range(n)])
        else:
            df = df.iloc[::2] if ext == "parquet" else df  # a filter: the index becomes a column
        path = tmp_path / f"{name}.{ext}"
        if ext == "parquet":
            df.to_parquet(path, index=extra == "index")
        else:
            df.to_csv(path, sep=SEPS[ext], index=extra == "index")
        paths.append(path)
    if extra == "index" and ext == "parquet":
        keep = slice(None, None, 2)
        if metric == "ce":
            expected = ref_ce(probs[keep], labels[keep])
        else:
            expected = {"mse": ref_mse, "mae": ref_mae, "bce": ref_bce}[metric](p[keep], t[keep])
    extra_opts = ["--input", "probs"] if metric in ("bce", "ce") else []
    res = run_cli(metric, *paths, *extra_opts, "--format", "value")
    assert res.code == 0, res.stderr
    assert close(float(res.stdout), expected)


def test_named_pandas_index_in_parquet_is_an_id(tmp_path: Path) -> None:
    """`df.set_index("id").to_parquet()` stores `id` as an index column: never scored, but it
    is the row's id, carried and checked like a Kaggle id column."""
    p, t = regression(n=20, seed=19)
    ids = np.arange(20) ** 2  # not a range: a RangeIndex would be stored as metadata only
    pd.DataFrame({"id": ids, "y_pred": p}).set_index("id").to_parquet(tmp_path / "p.parquet")
    pd.DataFrame({"id": ids, "y_true": t}).set_index("id").to_parquet(tmp_path / "t.parquet")
    res = run_cli("mse", tmp_path / "p.parquet", tmp_path / "t.parquet", "--format", "json")
    assert res.code == 0, res.stderr
    out = res.json()
    assert close(out["value"], ref_mse(p, t))
    assert out["columns"]["preds"]["skipped"] == [{"column": "id", "reason": "pandas index"}]
    assert out["columns"]["ids"]["checked_against"] == [
        {
            "file": str(tmp_path / "t.parquet"),
            "columns": ["id"],
        }
    ]
    assert [e["id"] for e in out["examples"]] == [e["row"] ** 2 for e in out["examples"]]  # Parquet: int
    pd.DataFrame({"id": ids, "y_true": t}).set_index("id").iloc[::-1].to_parquet(tmp_path / "t.parquet")
    res = run_cli("mse", tmp_path / "p.parquet", tmp_path / "t.parquet")
    assert (
        res.code == 3
        and "row 0:" in res.stderr
        and "has id 0 but" in res.stderr
        and "has id 361" in res.stderr
    )


def test_compressed_csv_ids_are_checked(tmp_path: Path) -> None:
    n = 30
    order = np.arange(n)
    order[[20, 21]] = [21, 20]
    _, _, ids, paths = kaggle_files(tmp_path, n, "csv", order)
    gz = []
    for path in paths:
        target = path.with_suffix(".csv.gz")
        pd.read_csv(path, dtype={"id": str}).to_csv(target, index=False)  # pandas infers gzip
        gz.append(target)
    res = run_cli("mse", *gz)
    assert (
        res.code == 3 and f"row 20: {gz[0]} has id {ids[20]!r} but {gz[1]} has id {ids[21]!r}" in res.stderr
    )


def test_stdin_and_pipe_ids_are_checked_in_the_one_pass(tmp_path: Path) -> None:
    """stdin and pipes are read once: their ids are parsed with the numbers, so they are
    carried and checked like a file's."""
    p, t, ids, paths = kaggle_files(tmp_path, 15, "csv")
    res = run_cli("mse", "-", paths[1], "--format", "json", stdin=paths[0].read_bytes())
    assert res.code == 0, res.stderr
    out = res.json()
    assert close(out["value"], ref_mse(p, t))
    assert "warnings" not in out
    assert out["columns"]["ids"]["file"] == "<stdin>"
    assert out["columns"]["ids"]["checked_against"][0]["file"] == str(paths[1])
    assert all(e["id"] == ids[e["row"]] for e in out["examples"])
    order = np.arange(15)
    order[[3, 4]] = order[[4, 3]]
    (tmp_path / "swapped").mkdir()
    _, _, _, swapped = kaggle_files(tmp_path / "swapped", 15, "csv", order=order)
    res = run_cli("mse", "-", swapped[1], stdin=paths[0].read_bytes())
    assert (
        res.code == 3
        and f"row 3: <stdin> has id {ids[3]!r}" in res.stderr
        and "different orders" in res.stderr
    )
    shell = f"{sys.executable} -m losscli mse <(cat {paths[0]}) <(cat {swapped[1]})"
    piped = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=60)
    assert piped.returncode == 3 and "row 3:" in piped.stderr and f"{ids[4]!r}" in piped.stderr


@pytest.mark.parametrize("ext", ["csv", "tsv"])
def test_perplexity_logits_written_with_an_index(tmp_path: Path, ext: str) -> None:
    """`pd.DataFrame(logits).to_csv(path)`: the index is not a vocabulary entry."""
    rng = np.random.default_rng(20)
    n, v = 30, 5
    z = rng.normal(size=(n, v))
    y = rng.integers(0, v, size=n)
    pd.DataFrame(z).to_csv(tmp_path / f"logits.{ext}", sep=SEPS[ext])
    pd.DataFrame({"labels": y}).to_csv(tmp_path / f"labels.{ext}", sep=SEPS[ext])
    nll = [
        math.log(math.fsum(math.exp(x) for x in row)) - row[k]
        for row, k in zip(z.tolist(), y.tolist(), strict=True)
    ]
    res = run_cli(
        "perplexity",
        "--logits",
        tmp_path / f"logits.{ext}",
        "--targets",
        tmp_path / f"labels.{ext}",
        "--format",
        "json",
    )
    assert res.code == 0, res.stderr
    out = res.json()
    assert close(out["cross_entropy"], math.fsum(nll) / n)
    assert out["columns"]["preds"]["columns"] == [str(j) for j in range(v)]
    assert out["columns"]["preds"]["skipped"] == [{"column": "", "reason": "pandas index"}]


def test_a_file_holding_only_an_index_is_refused(tmp_path: Path) -> None:
    """Nothing but row labels: exit 2 with what to name, never a crash or an empty score."""
    pd.DataFrame({"y_pred": [1.0, 2.0]}).to_csv(tmp_path / "p.csv")
    pd.read_csv(tmp_path / "p.csv")[["Unnamed: 0"]].to_csv(tmp_path / "only_index.csv", index=False)
    pd.DataFrame({"y_true": [0.5, 1.5]}).to_csv(tmp_path / "t.csv", index=False)
    res = run_cli("mse", tmp_path / "only_index.csv", tmp_path / "t.csv")
    assert res.code == 2 and res.stdout == ""
    assert "pandas index column 'Unnamed: 0'" in res.stderr and "--pred-col" in res.stderr
    res = run_cli(
        "mse",
        tmp_path / "only_index.csv",
        tmp_path / "t.csv",
        "--pred-col",
        "Unnamed: 0",
        "--format",
        "value",
    )
    assert res.code == 0 and close(float(res.stdout), ref_mse([0.0, 1.0], [0.5, 1.5]))


def test_ids_survive_bom_blank_lines_crlf_and_quotes(tmp_path: Path) -> None:
    """The id stream skips what the data reader skips (a BOM, blank lines before the header
    and between rows, CRLF) and unquotes ids as the CSV module does."""
    (tmp_path / "p.csv").write_bytes(b'\xef\xbb\xbf\r\nid,y_pred\r\na,1\r\n\r\nb,2\r\n"c,d",3\r\n')
    (tmp_path / "t.csv").write_bytes(b'id,y_true\na,1.5\nb,2\n"c,d",4\n')
    res = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "--format", "json")
    assert res.code == 0, res.stderr
    out = res.json()
    assert close(out["value"], ref_mse([1, 2, 3], [1.5, 2, 4]))
    assert [(e["row"], e["id"]) for e in out["examples"]] == [(0, "a"), (1, "b"), (2, "c,d")]


@pytest.mark.parametrize("ext", ["csv", "tsv", "parquet"])
def test_python_api_skips_the_index_and_records_the_note(tmp_path: Path, ext: str) -> None:
    p, t = regression(n=30, seed=21)
    keep = t > -1
    paths = []
    for name, values in (("y_pred", p), ("y_true", t)):
        path = tmp_path / f"{name}.{ext}"
        df = pd.DataFrame({name: values})[keep]  # filtered: a non-range index
        df.to_parquet(path) if ext == "parquet" else df.to_csv(path, sep=SEPS[ext])
        paths.append(path)
    report = losscli.evaluate("mse", *paths)
    assert close(report.value, ref_mse(p[keep], t[keep]))
    assert report.columns["preds"]["columns"] == ["y_pred"]
    assert report.warnings == []
    (note,) = report.notes
    assert "skipped pandas index column" in note
    assert close(losscli.mse(str(paths[0]), str(paths[1])), ref_mse(p[keep], t[keep]))
