"""Class labels as scikit-learn and pandas write them: ce with class names (``cat``) and integer
classes that are not positions (``[1, 2, 3]``, ``[-1, 1]``), bce with bool and text labels.

Files are written as ``pd.DataFrame(clf.predict_proba(X), columns=clf.classes_)`` writes them
(the probabilities drawn with numpy); every value is checked against a float64 reference
written here from the formula: -mean log p[row, column of the row's label].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import losscli

from conftest import run_cli

REL = 1e-12
ANIMALS = ["cat", "dog", "bird"]  # not sorted: the order is the columns', not the alphabet's


def proba(rng: np.random.Generator, n: int, c: int) -> np.ndarray:
    z = rng.normal(0.0, 1.5, (n, c))
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ce_ref(p: np.ndarray, labels: Sequence[Any], classes: Sequence[Any]) -> float:
    """-mean log p[row, column named by the row's label], exactly summed."""
    col = {c: j for j, c in enumerate(classes)}
    return -math.fsum(math.log(float(p[i, col[y]])) for i, y in enumerate(labels)) / len(labels)


def bce_ref(p: np.ndarray, y: Sequence[float]) -> float:
    terms = [t * math.log(q) + (1 - t) * math.log(1 - q) for q, t in zip(p.tolist(), y, strict=True)]
    return -math.fsum(terms) / len(terms)


def one_line_error(r: Any, code: int) -> str:
    assert r.code == code, (r.code, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("losscli: error")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def animals(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    return proba(rng, n, 3), [ANIMALS[k] for k in rng.integers(0, 3, n)]


# ---- ce: class names ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_wide_file_of_class_names_with_a_label_column(tmp_path: Path, fmt: str) -> None:
    p, y = animals(60, 1)
    df = pd.DataFrame(p, columns=ANIMALS)
    df["species"] = y
    path = tmp_path / f"proba.{fmt}"
    df.to_csv(path) if fmt == "csv" else df.to_parquet(path)  # the CSV with its pandas index
    r = run_cli("ce", path, "--target-col", "species", "-f", "json")
    assert r.code == 0, r.stderr
    data = r.json()
    assert data["n"] == 60 and math.isclose(data["value"], ce_ref(p, y, ANIMALS), rel_tol=REL)
    worst = data["examples"][0]
    assert worst["target"] in ANIMALS and worst["predicted"] in ANIMALS
    row = worst["row"]
    assert worst["target"] == y[row] and worst["predicted"] == ANIMALS[int(np.argmax(p[row]))]
    assert math.isclose(worst["p(target)"], p[row, ANIMALS.index(y[row])], rel_tol=1e-9)
    assert data["accuracy"] == pytest.approx(
        np.mean([ANIMALS[int(np.argmax(p[i]))] == y[i] for i in range(60)])
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_labels_in_a_second_file(tmp_path: Path, fmt: str) -> None:
    p, y = animals(50, 2)
    classes = sorted(ANIMALS)  # scikit-learn's classes_ are sorted
    p_path, y_path = tmp_path / f"p.{fmt}", tmp_path / f"y.{fmt}"
    scores, labels = pd.DataFrame(p, columns=classes), pd.DataFrame({"label": y})
    if fmt == "csv":
        scores.to_csv(p_path, index=False)
        labels.to_csv(y_path, index=False)
    else:
        scores.to_parquet(p_path)
        labels.astype("category").to_parquet(y_path)  # a category column: dictionary of strings
    r = run_cli("ce", p_path, y_path, "-f", "json")
    assert r.code == 0, r.stderr
    assert math.isclose(r.json()["value"], ce_ref(p, y, classes), rel_tol=REL)


def test_large_csv_read_in_blocks_and_chunks(tmp_path: Path) -> None:
    """Over the small-file limit (pyarrow blocks) and in many chunks: every label still meets
    its column."""
    p, y = animals(30_000, 3)
    df = pd.DataFrame(p, columns=ANIMALS)
    df["label"] = y
    df.to_csv(tmp_path / "big.csv", index=False)
    r = run_cli("ce", tmp_path / "big.csv", "--chunk-size", "7000", "-f", "json")
    assert r.code == 0, r.stderr
    assert r.json()["n"] == 30_000 and math.isclose(r.json()["value"], ce_ref(p, y, ANIMALS), rel_tol=1e-11)


def test_npy_scores_with_classes(tmp_path: Path) -> None:
    p, y = animals(40, 4)
    np.save(tmp_path / "p.npy", p)
    pd.DataFrame({"label": y}).to_csv(tmp_path / "y.csv", index=False)
    r = run_cli("ce", tmp_path / "p.npy", tmp_path / "y.csv", "--classes", "cat,dog,bird", "-f", "json")
    assert r.code == 0, r.stderr
    assert math.isclose(r.json()["value"], ce_ref(p, y, ANIMALS), rel_tol=REL)
    # logits of the same classes, and the kind given: the labels are matched the same way
    z = np.log(p) + 3.0
    np.save(tmp_path / "z.npy", z)
    r = run_cli(
        "ce",
        tmp_path / "z.npy",
        tmp_path / "y.csv",
        "--classes",
        "cat,dog,bird",
        "--input",
        "logits",
        "-f",
        "json",
    )
    assert r.code == 0, r.stderr
    assert math.isclose(r.json()["value"], ce_ref(p, y, ANIMALS), rel_tol=1e-9)
    error = one_line_error(run_cli("ce", tmp_path / "p.npy", tmp_path / "y.csv"), 2)
    assert "--classes" in error and repr(y[0]) in error


def test_label_files_as_pandas_and_numpy_write_them(tmp_path: Path) -> None:
    """Series.to_csv (header 0), and np.savetxt(fmt="%s") with no header: its first label is a
    class, so it is read as a label, with a warning."""
    p, y = animals(30, 15)
    np.save(tmp_path / "p.npy", p)
    pd.Series(y).to_csv(tmp_path / "series.csv", index=False)
    np.savetxt(tmp_path / "plain.csv", np.array(y), fmt="%s")
    for name in ("series.csv", "plain.csv"):
        r = run_cli("ce", tmp_path / "p.npy", tmp_path / name, "--classes", "cat,dog,bird", "-f", "json")
        assert r.code == 0, r.stderr
        assert r.json()["n"] == 30 and math.isclose(r.json()["value"], ce_ref(p, y, ANIMALS), rel_tol=REL)
    assert f"first row {y[0]!r} is one of the classes" in r.stderr


def test_unknown_label_names_it_the_row_and_the_classes(tmp_path: Path) -> None:
    p, y = animals(30, 5)
    y[17] = "fish"
    df = pd.DataFrame(p, columns=ANIMALS)
    df["label"] = y
    df.to_csv(tmp_path / "p.csv", index=False)
    error = one_line_error(run_cli("ce", tmp_path / "p.csv"), 3)
    assert "row 17" in error and "'fish'" in error and "'cat', 'dog', 'bird'" in error
    np.save(tmp_path / "p.npy", p)
    pd.DataFrame({"label": y}).to_csv(tmp_path / "y.csv", index=False)
    error = one_line_error(
        run_cli("ce", tmp_path / "p.npy", tmp_path / "y.csv", "--classes", "cat,dog,bird"), 3
    )
    assert "row 17" in error and "'fish'" in error and "--classes" in error


def test_many_classes_are_listed_up_to_a_handful(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    classes = [f"c{k}" for k in range(40)]
    p = proba(rng, 10, 40)
    df = pd.DataFrame(p, columns=classes)
    df["label"] = ["c3"] * 9 + ["nope"]
    df.to_csv(tmp_path / "p.csv", index=False)
    error = one_line_error(run_cli("ce", tmp_path / "p.csv"), 3)
    assert "'nope'" in error and "row 9" in error and "(40 in all)" in error and "'c39'" not in error


def test_ignore_index_and_an_id_column_beside_text_labels(tmp_path: Path) -> None:
    """The ignore index written in a text column (-100) is ignored; a text id column in the same
    file still travels with the rows."""
    p, y = animals(40, 13)
    labels: list[str] = list(y)
    for r in (3, 20):
        labels[r] = "-100"
    df = pd.DataFrame({"id": [f"img{k:03d}" for k in range(40)]})
    df[ANIMALS] = p
    df["label"] = labels
    df.to_csv(tmp_path / "p.csv", index=False)
    r = run_cli("ce", tmp_path / "p.csv", "-f", "json")
    assert r.code == 0, r.stderr
    kept = [k for k in range(40) if k not in (3, 20)]
    assert r.json()["ignored"] == 2 and r.json()["n"] == 38
    assert math.isclose(r.json()["value"], ce_ref(p[kept], [y[k] for k in kept], ANIMALS), rel_tol=REL)
    worst = r.json()["examples"][0]
    assert worst["id"] == f"img{worst['row']:03d}" and worst["target"] == y[worst["row"]]


def test_a_state_saved_before_classes_existed_still_merges() -> None:
    """A state written before --classes and --positive were options has no such keys: the same
    as not giving them."""
    from losscli.engine.evaluator import Evaluator

    rng = np.random.default_rng(14)
    p, y = proba(rng, 30, 3), rng.integers(0, 3, 30)
    a, b = Evaluator("ce", input="probs"), Evaluator("ce", input="probs")
    a.update(p[:10], y[:10])
    b.update(p[10:], y[10:], first_row=10)
    old = a.state
    old.header.metric_options.pop("classes")
    merged = old.merge(b.state)
    assert math.isclose(merged.report().value, ce_ref(p, y.tolist(), [0, 1, 2]), rel_tol=REL)


# ---- ce: integer classes that are not positions ----------------------------------------------


@pytest.mark.parametrize("classes", [[1, 2, 3], [-1, 1]])
def test_integer_classes_given_by_option(tmp_path: Path, classes: list[int]) -> None:
    rng = np.random.default_rng(7)
    p = proba(rng, 45, len(classes))
    y = [classes[k] for k in rng.integers(0, len(classes), 45)]
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", np.array(y, dtype=np.int64))
    spec = ",".join(str(c) for c in classes)
    r = run_cli("ce", tmp_path / "p.npy", tmp_path / "y.npy", f"--classes={spec}", "-f", "json")
    assert r.code == 0, r.stderr
    assert math.isclose(r.json()["value"], ce_ref(p, y, classes), rel_tol=REL)
    worst = r.json()["examples"][0]
    assert worst["target"] == y[worst["row"]] and worst["predicted"] in classes
    # without --classes a label that is not a position says what class ids are, and the fix
    if max(y) >= len(classes) or min(y) < 0:
        error = one_line_error(run_cli("ce", tmp_path / "p.npy", tmp_path / "y.npy"), 3)
        assert "column positions" in error and "--classes" in error


@pytest.mark.filterwarnings("ignore:The DataFrame has column names of mixed type")
def test_wide_file_named_by_integer_classes_maps_by_name(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    p = proba(rng, 35, 3)
    y = [[1, 2, 3][k] for k in rng.integers(0, 3, 35)]
    df = pd.DataFrame(p[:, [2, 0, 1]], columns=[3, 1, 2])  # columns out of order, named by class
    df["label"] = y
    df.to_parquet(tmp_path / "p.parquet")
    r = run_cli("ce", tmp_path / "p.parquet", "-f", "json")
    assert r.code == 0, r.stderr
    assert "matched to the score columns by name" in r.stderr
    assert math.isclose(r.json()["value"], ce_ref(p, y, [1, 2, 3]), rel_tol=REL)


def test_pandas_default_header_is_names_and_positions(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    p = proba(rng, 30, 3)
    y = rng.integers(0, 3, 30)
    pd.DataFrame(p).to_csv(tmp_path / "p.csv", index=False)  # header 0,1,2
    pd.DataFrame(y).to_csv(tmp_path / "y.csv", index=False)
    r = run_cli("ce", tmp_path / "p.csv", tmp_path / "y.csv", "-f", "json")
    assert r.code == 0, r.stderr
    assert "by name" not in r.stderr
    assert math.isclose(r.json()["value"], ce_ref(p, y.tolist(), [0, 1, 2]), rel_tol=REL)


def test_classes_option_mistakes_are_usage_errors(tmp_path: Path) -> None:
    p, y = animals(20, 10)
    np.save(tmp_path / "p.npy", p)
    pd.DataFrame({"label": y}).to_csv(tmp_path / "y.csv", index=False)
    error = one_line_error(run_cli("ce", tmp_path / "p.npy", tmp_path / "y.csv", "--classes", "cat,dog"), 2)
    assert "2 classes" in error and "3 columns" in error
    error = one_line_error(
        run_cli("ce", tmp_path / "p.npy", tmp_path / "y.csv", "--classes", "cat,dog,cat"), 2
    )
    assert "'cat' twice" in error
    df = pd.DataFrame(p, columns=ANIMALS)
    df["label"] = y
    df.to_csv(tmp_path / "w.csv", index=False)
    error = one_line_error(run_cli("ce", tmp_path / "w.csv", "--classes", "bird,cat,dog"), 2)
    assert "another order" in error
    # the same classes in the columns' own order are no mistake
    r = run_cli("ce", tmp_path / "w.csv", "--classes", "cat,dog,bird", "-f", "json")
    assert r.code == 0 and math.isclose(r.json()["value"], ce_ref(p, y, ANIMALS), rel_tol=REL)
    error = one_line_error(run_cli("mse", tmp_path / "w.csv", "--classes", "a,b"), 2)
    assert "--classes" in error


def test_python_api_classes(tmp_path: Path) -> None:
    p, y = animals(25, 11)
    want = ce_ref(p, y, ANIMALS)
    for classes in (ANIMALS, "cat,dog,bird", np.array(ANIMALS)):
        report = losscli.evaluate("ce", p, y, classes=classes)
        assert math.isclose(report.value, want, rel_tol=REL)
    assert math.isclose(
        losscli.cross_entropy(p, np.array(y, dtype=object), input="probs", classes=ANIMALS), want, rel_tol=REL
    )
    ints = [[1, 2, 3][ANIMALS.index(v)] for v in y]
    assert math.isclose(
        losscli.cross_entropy(p, ints, input="probs", classes=np.array([1, 2, 3])), want, rel_tol=REL
    )
    with pytest.raises(losscli.LossCliError, match="pass classes"):  # in Python's words
        losscli.evaluate("ce", p, y)
    with pytest.raises(losscli.LossCliError, match="classes"):
        losscli.evaluate("mse", p[:, 0], p[:, 1], classes=ANIMALS)


def test_state_keeps_class_names_and_merges_only_with_the_same(tmp_path: Path) -> None:
    p, y = animals(40, 12)
    np.save(tmp_path / "a.npy", p[:25])
    np.save(tmp_path / "b.npy", p[25:])
    pd.DataFrame({"label": y[:25]}).to_csv(tmp_path / "ya.csv", index=False)
    pd.DataFrame({"label": y[25:]}).to_csv(tmp_path / "yb.csv", index=False)
    a = run_cli(
        "ce",
        tmp_path / "a.npy",
        tmp_path / "ya.csv",
        "--classes",
        "cat,dog,bird",
        "--save-state",
        tmp_path / "a.state",
    )
    b = run_cli(
        "ce",
        tmp_path / "b.npy",
        tmp_path / "yb.csv",
        "--classes",
        "cat,dog,bird",
        "--row-offset",
        "25",
        "--save-state",
        tmp_path / "b.state",
    )
    assert a.code == 0 and b.code == 0, a.stderr + b.stderr
    merged = run_cli("merge", tmp_path / "a.state", tmp_path / "b.state", "-f", "json")
    assert merged.code == 0, merged.stderr
    assert math.isclose(merged.json()["value"], ce_ref(p, y, ANIMALS), rel_tol=REL)
    assert all(e["target"] in ANIMALS for e in merged.json()["examples"])
    # the same numbers under other names are other classes: not merged
    swapped = [{"cat": "dog", "dog": "cat", "bird": "bird"}[v] for v in y[25:]]
    pd.DataFrame({"label": swapped}).to_csv(tmp_path / "yc.csv", index=False)
    c = run_cli(
        "ce",
        tmp_path / "b.npy",
        tmp_path / "yc.csv",
        "--classes",
        "dog,cat,bird",
        "--row-offset",
        "25",
        "--save-state",
        tmp_path / "c.state",
    )
    assert c.code == 0, c.stderr
    error = one_line_error(run_cli("merge", tmp_path / "a.state", tmp_path / "c.state"), 3)
    assert "classes" in error


# ---- bce ------------------------------------------------------------------------------------


def binary(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.02, 0.98, n), rng.integers(0, 2, n).astype(bool)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_bce_pandas_bool_column(tmp_path: Path, fmt: str) -> None:
    p, y = binary(50, 20)
    df = pd.DataFrame({"prob": p, "label": y})
    path = tmp_path / f"b.{fmt}"
    df.to_csv(path, index=False) if fmt == "csv" else df.to_parquet(path)
    r = run_cli("bce", path, "-f", "json")
    assert r.code == 0, r.stderr
    assert math.isclose(r.json()["value"], bce_ref(p, y.astype(float).tolist()), rel_tol=REL)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_bce_lowercase_true_false_text(tmp_path: Path, fmt: str) -> None:
    """Polars and JSON write true/false; a Parquet string column of them is text, not bool."""
    p, y = binary(40, 21)
    df = pd.DataFrame({"prob": p, "label": np.where(y, "true", "false")})
    path = tmp_path / f"b.{fmt}"
    df.to_csv(path, index=False) if fmt == "csv" else df.to_parquet(path)
    r = run_cli("bce", path, "-f", "json")
    assert r.code == 0, r.stderr
    assert math.isclose(r.json()["value"], bce_ref(p, y.astype(float).tolist()), rel_tol=REL)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_bce_text_classes_with_positive(tmp_path: Path, fmt: str) -> None:
    p, y = binary(60, 22)
    text = np.where(y, "spam", "ham")
    path = tmp_path / f"s.{fmt}"
    df = pd.DataFrame({"prob": p, "label": text})
    df.to_csv(path, index=False) if fmt == "csv" else df.to_parquet(path)
    r = run_cli("bce", path, "--positive", "spam", "-f", "json")
    assert r.code == 0, r.stderr
    assert math.isclose(r.json()["value"], bce_ref(p, y.astype(float).tolist()), rel_tol=REL)
    assert {e["target"] for e in r.json()["examples"]} <= {"spam", "ham"}
    # the predictions as the probability of ham
    r = run_cli("bce", path, "--positive", "ham", "-f", "json")
    assert math.isclose(r.json()["value"], bce_ref(p, (~y).astype(float).tolist()), rel_tol=REL)
    error = one_line_error(run_cli("bce", path), 2)
    assert "'spam'" in error and "'ham'" in error and "--positive" in error


def test_bce_text_label_errors(tmp_path: Path) -> None:
    p, y = binary(30, 23)
    text = np.where(y, "spam", "ham").astype(object)
    text[12] = "eggs"
    pd.DataFrame({"prob": p, "label": text}).to_csv(tmp_path / "s.csv", index=False)
    error = one_line_error(run_cli("bce", tmp_path / "s.csv"), 3)
    assert "more than two classes" in error
    error = one_line_error(run_cli("bce", tmp_path / "s.csv", "--positive", "spam"), 3)
    assert "row 12" in error and "'eggs'" in error and "third class" in error
    pd.DataFrame({"prob": p, "label": y}).to_csv(tmp_path / "b.csv", index=False)
    error = one_line_error(run_cli("bce", tmp_path / "b.csv", "--positive", "spam"), 2)
    assert "numbers" in error
    # --positive False: the predictions are the probability of False
    r = run_cli("bce", tmp_path / "b.csv", "--positive", "False", "-f", "json")
    assert r.code == 0, r.stderr
    assert math.isclose(r.json()["value"], bce_ref(p, (~y).astype(float).tolist()), rel_tol=REL)


def test_bce_python_api_positive() -> None:
    p, y = binary(35, 24)
    text = np.where(y, "spam", "ham").tolist()
    want = bce_ref(p, y.astype(float).tolist())
    assert math.isclose(losscli.bce(p, text, input="probs", positive="spam"), want, rel_tol=REL)
    assert math.isclose(losscli.evaluate("bce", p, text, positive="spam").value, want, rel_tol=REL)
    assert math.isclose(losscli.bce(p, pd.Series(y).to_numpy(), input="probs"), want, rel_tol=REL)
    with pytest.raises(losscli.LossCliError, match="pass positive"):  # in Python's words
        losscli.bce(p, text)


def test_bce_positive_must_agree_for_a_merge(tmp_path: Path) -> None:
    p, y = binary(30, 25)
    df = pd.DataFrame({"prob": p, "label": np.where(y, "spam", "ham")})
    df[:15].to_csv(tmp_path / "a.csv", index=False)
    df[15:].to_csv(tmp_path / "b.csv", index=False)
    a = run_cli("bce", tmp_path / "a.csv", "--positive", "spam", "--save-state", tmp_path / "a.state")
    b = run_cli(
        "bce",
        tmp_path / "b.csv",
        "--positive",
        "ham",
        "--row-offset",
        "15",
        "--save-state",
        tmp_path / "b.state",
    )
    assert a.code == 0 and b.code == 0, a.stderr + b.stderr
    error = one_line_error(run_cli("merge", tmp_path / "a.state", tmp_path / "b.state"), 3)
    assert "positive" in error


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_multilabel_bce_rows_named_by_column(tmp_path: Path, fmt: str) -> None:
    rng = np.random.default_rng(26)
    names = ["toxic", "insult", "threat"]
    p = rng.uniform(0.02, 0.98, (40, 3))
    y = rng.integers(0, 2, (40, 3)).astype(bool)
    for frame, stem in ((pd.DataFrame(p, columns=names), "p"), (pd.DataFrame(y, columns=names), "y")):
        path = tmp_path / f"{stem}.{fmt}"
        frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
    r = run_cli("bce", tmp_path / f"p.{fmt}", tmp_path / f"y.{fmt}", "-f", "json")
    assert r.code == 0, r.stderr
    outputs = r.json()["outputs"]
    assert [o["output"] for o in outputs] == names
    for j, o in enumerate(outputs):
        assert math.isclose(o["value"], bce_ref(p[:, j], y[:, j].astype(float).tolist()), rel_tol=REL)
    per_label = [bce_ref(p[:, j], y[:, j].astype(float).tolist()) for j in range(3)]
    assert math.isclose(r.json()["value"], math.fsum(per_label) / 3, rel_tol=REL)


def test_classes_parse_to_one_canonical_form() -> None:
    """The CLI's text and the API's lists mean the same classes, so their states merge."""
    from losscli.errors import UsageError
    from losscli.metrics.labels import parse_classes

    assert parse_classes("1,2,3") == parse_classes([1, 2, 3]) == parse_classes(np.array([1.0, 2.0, 3.0]))
    assert parse_classes(" -1 , 1") == (-1, 1)
    assert parse_classes(np.array(["cat", "dog"])) == parse_classes("cat,dog") == ("cat", "dog")
    assert parse_classes("9007199254740993,1") == (9007199254740993, 1)  # exact beyond 2**53
    for bad in ("cat", "cat,,dog", "cat,cat", "99999999999999999999,1", 5):
        with pytest.raises(UsageError, match="--classes"):
            parse_classes(bad)


def test_a_positive_class_that_no_label_has_says_so(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("prob,label\n0.2,spam\n0.3,ham\n0.9,spam\n")
    error = one_line_error(run_cli("bce", path, "--positive", "eggs"), 3)
    assert "'spam'" in error and "'ham'" in error and "spelled" in error and "third class" not in error
