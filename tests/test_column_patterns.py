"""Column specs with ranges and globs (issue 11, "Tabular files"): ``--pred-col 'p_*'``,
``1-10``, ``3-``, mixes with names and positions, ``--exclude-col``, and the columns a range or
glob never takes (pandas index, id columns, another role's columns).

Every value is checked against a float64 reference computed here from the arrays the files were
written from, never against losscli's own output.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import losscli
from losscli.errors import UsageError
from losscli.readers.base import Reader, is_id_name
from losscli.readers.colspec import resolve_spec

from conftest import run_cli

RNG_SEED = 1111


def ce_logits(z: NDArray[np.float64], y: NDArray[np.int64]) -> float:
    """Cross-entropy of logits, float64: logsumexp(z) - z[y], averaged."""
    top = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - top).sum(axis=1)) + top[:, 0]
    return float(np.mean(lse - z[np.arange(len(y)), y]))


def ce_probs(p: NDArray[np.float64], y: NDArray[np.int64]) -> float:
    return float(np.mean(-np.log(p[np.arange(len(y)), y])))


def columns_of(report: Any, role: str = "preds") -> dict[str, Any]:
    out: dict[str, Any] = report.to_dict()["columns"][role]
    return out


# ---------------------------------------------------------------- 1000 classes


@pytest.fixture(scope="module")
def thousand(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, NDArray[np.float64], NDArray[np.int64]]:
    """A predict_proba CSV of 1000 classes as pandas writes it (with its index), and a label."""
    rng = np.random.default_rng(RNG_SEED)
    classes = range(1000)
    proba = rng.dirichlet(np.full(1000, 5.0), size=120)
    labels = rng.integers(0, 1000, size=120)
    df = pd.DataFrame(proba, columns=[f"p_{c}" for c in classes])
    df["label"] = labels
    path = tmp_path_factory.mktemp("thousand") / "proba.csv"
    df.to_csv(path)  # the index goes first, as an unnamed column
    return path, proba, labels


def test_thousand_classes_by_glob(thousand: tuple[Path, Any, Any]) -> None:
    path, proba, labels = thousand
    r = run_cli("ce", path, "--pred-col", "p_*", "--target-col", "label", "-f", "json")
    assert r.code == 0, r.stderr
    out = r.json()
    assert out["value"] == pytest.approx(ce_probs(proba, labels), rel=1e-12)
    assert out["n"] == 120 and out["classes"] == 1000 and out["clamped"] == 0
    preds = out["columns"]["preds"]
    assert preds["columns"] == [f"p_{c}" for c in range(1000)]
    assert preds["spec"] == "p_*" and preds["chosen_by"] == "user"
    assert out["columns"]["targets"]["spec"] == "label"
    assert "(from 'p_*')" in r.stderr and "1000 in all" in r.stderr  # the expansion is said


@pytest.mark.parametrize("spec", ["1-1000", "1-", "0-", "p_*,1-", "p_0,p_1,2-"])
def test_thousand_classes_by_range_index_counted(thousand: tuple[Path, Any, Any], spec: str) -> None:
    """Position 0 is pandas' index, so the classes are 1-1000; ``0-`` and ``1-`` skip the index
    and the label, which --target-col took; columns already taken are not taken twice."""
    path, proba, labels = thousand
    report = losscli.evaluate("ce", str(path), pred_col=spec, target_col="label")
    assert report.value == pytest.approx(ce_probs(proba, labels), rel=1e-12)
    assert columns_of(report)["columns"] == [f"p_{c}" for c in range(1000)]
    assert columns_of(report)["spec"] == spec


# ---------------------------------------------------------------- ranges, mixes, order


@pytest.fixture(scope="module")
def logits_file(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, NDArray[np.float64], NDArray[np.int64]]:
    """z_0..z_19 logits, then label (0..10), fold, sample_id; no index."""
    rng = np.random.default_rng(RNG_SEED + 1)
    z = rng.normal(size=(60, 20)) * 2.0
    y = rng.integers(0, 11, size=60)
    df = pd.DataFrame(z, columns=[f"z_{c}" for c in range(20)])
    df["label"], df["fold"], df["sample_id"] = y, rng.integers(0, 5, size=60), np.arange(60)
    path = tmp_path_factory.mktemp("logits") / "z.csv"
    df.to_csv(path, index=False)
    return path, z, y


def test_inclusive_range_end(logits_file: tuple[Path, Any, Any]) -> None:
    """The end is included: ``0-10`` is eleven columns, ``1-10`` ten (positions 1 to 10)."""
    path, z, y = logits_file
    report = losscli.evaluate("ce", str(path), pred_col="0-10", target_col="label", input="logits")
    assert columns_of(report)["columns"] == [f"z_{c}" for c in range(11)]
    assert report.value == pytest.approx(ce_logits(z[:, 0:11], y), rel=1e-12)
    report = losscli.evaluate("ce", str(path), pred_col="1-11", target_col="label", input="logits")
    assert columns_of(report)["columns"] == [f"z_{c}" for c in range(1, 12)]
    assert report.value == pytest.approx(ce_logits(z[:, 1:12], y), rel=1e-12)
    report = losscli.evaluate("mse", str(path), pred_col="1-10", target_col="11-19,0")
    assert len(columns_of(report)["columns"]) == 10
    other = z[:, [*range(11, 20), 0]]
    assert report.value == pytest.approx(float(np.mean((z[:, 1:11] - other) ** 2)), rel=1e-12)


def test_open_range_runs_to_the_last_column_but_skips_other_roles_and_ids(
    logits_file: tuple[Path, Any, Any],
) -> None:
    """``9-`` reaches z_9..z_19, label (the target: skipped), fold (taken: the user asked for
    it), sample_id (an id: skipped)."""
    path, z, y = logits_file
    report = losscli.evaluate("ce", str(path), pred_col="9-", target_col="label", input="logits")
    assert columns_of(report)["columns"] == [*[f"z_{c}" for c in range(9, 20)], "fold"]
    fold = pd.read_csv(path)["fold"].to_numpy(dtype=np.float64)
    expected = ce_logits(np.column_stack([z[:, 9:], fold]), y)
    assert report.value == pytest.approx(expected, rel=1e-12)


def test_mix_keeps_spec_order_file_order_within_and_drops_duplicates(
    logits_file: tuple[Path, Any, Any],
) -> None:
    path, z, y = logits_file
    spec = "z_7, z_[0-2] ,4-5,z_1,2,z_1?"
    report = losscli.evaluate("ce", str(path), pred_col=spec, target_col="label", input="logits")
    order = [7, 0, 1, 2, 4, 5, *range(10, 20)]
    assert columns_of(report)["columns"] == [f"z_{c}" for c in order]
    assert report.value == pytest.approx(ce_logits(z[:, order], y), rel=1e-12)


def test_todays_forms_unchanged(logits_file: tuple[Path, Any, Any]) -> None:
    """A name, a position, a comma list of both: as before, in the order given."""
    path, z, y = logits_file
    spec = "10,z_0,1,2,3,4,5,6,7,8,z_9"
    report = losscli.evaluate("ce", str(path), pred_col=spec, target_col="20", input="logits")
    order = [10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert columns_of(report)["columns"] == [f"z_{c}" for c in order]
    assert columns_of(report, "targets")["columns"] == ["label"]
    assert report.value == pytest.approx(ce_logits(z[:, order], y), rel=1e-12)


# ---------------------------------------------------------------- exclude


def test_exclude_from_every_other_column(logits_file: tuple[Path, Any, Any]) -> None:
    """With only --target-col, every other data column is a class score: fold would be one."""
    path, z, y = logits_file
    report = losscli.evaluate("ce", str(path), target_col="label", exclude_col="fold", input="logits")
    preds = columns_of(report)
    assert preds["columns"] == [f"z_{c}" for c in range(20)]
    assert preds["exclude"] == {"spec": "fold", "columns": ["fold"]}
    assert report.value == pytest.approx(ce_logits(z, y), rel=1e-12)
    assert any("excluded column 'fold'" in n for n in report.notes)


def test_exclude_takes_patterns_and_ranges(logits_file: tuple[Path, Any, Any]) -> None:
    path, z, y = logits_file
    report = losscli.evaluate(
        "ce", str(path), pred_col="z_*", target_col="label", exclude_col="z_1[5-9],0-1", input="logits"
    )
    assert columns_of(report)["columns"] == [f"z_{c}" for c in range(2, 15)]
    assert columns_of(report)["exclude"]["columns"] == ["z_0", "z_1", *[f"z_{c}" for c in range(15, 20)]]
    assert report.value == pytest.approx(ce_logits(z[:, 2:15], y), rel=1e-12)


def test_exclude_everything_is_a_usage_error(logits_file: tuple[Path, Any, Any]) -> None:
    path, _, _ = logits_file
    r = run_cli("ce", path, "--pred-col", "z_1,z_2", "--target-col", "label", "--exclude-col", "z_*")
    assert r.code == 2 and "leaves no prediction column" in r.stderr and "Traceback" not in r.stderr


def test_exclude_is_not_a_perplexity_option(tmp_path: Path) -> None:
    logits = tmp_path / "l.npy"
    np.save(logits, np.zeros((4, 3)))
    np.save(tmp_path / "t.npy", np.zeros(4, dtype=np.int64))
    r = run_cli("perplexity", "--logits", logits, "--targets", tmp_path / "t.npy", "--exclude-col", "0")
    assert r.code == 2 and "--exclude-col" in r.stderr


# ---------------------------------------------------------------- index and ids


def test_index_and_id_columns_never_matched_but_nameable(tmp_path: Path) -> None:
    rng = np.random.default_rng(RNG_SEED + 2)
    z = rng.normal(size=(30, 4))
    y = rng.integers(0, 4, size=30)
    df = pd.DataFrame(z, columns=["a", "b", "c", "d"])
    df.insert(0, "PassengerId", np.arange(100, 130))
    df["row_id"] = np.arange(30)
    df["label"] = y
    path = tmp_path / "ids.csv"
    df.to_csv(path)  # pandas' unnamed index at position 0
    report = losscli.evaluate("ce", str(path), pred_col="*", target_col="label", input="logits")
    assert columns_of(report)["columns"] == ["a", "b", "c", "d"]
    assert report.value == pytest.approx(ce_logits(z, y), rel=1e-12)
    report = losscli.evaluate("ce", str(path), pred_col="0-", target_col="label", input="logits")
    assert columns_of(report)["columns"] == ["a", "b", "c", "d"]
    # named explicitly, an id or the index is read as data
    target = z[:, 0]
    ref = float(np.mean((np.arange(100, 130) - target) ** 2))
    assert losscli.evaluate("mse", str(path), pred_col="PassengerId", target_col="a").value == pytest.approx(
        ref
    )
    ref = float(np.mean((np.arange(30) - target) ** 2))
    assert losscli.evaluate("mse", str(path), pred_col="0", target_col="a").value == pytest.approx(ref)
    with pytest.raises(UsageError, match=r"'\*Id'.*never taken by a range or pattern"):
        losscli.evaluate("mse", str(path), pred_col="*Id", target_col="a")


def test_parquet_index_from_pandas_never_matched(tmp_path: Path) -> None:
    rng = np.random.default_rng(RNG_SEED + 3)
    z = rng.normal(size=(40, 3))
    y = rng.integers(0, 3, size=40)
    df = pd.DataFrame(z, columns=["s0", "s1", "s2"])
    df["label"] = y
    df = df.iloc[5:]  # a filtered frame keeps its index as __index_level_0__
    path = tmp_path / "f.parquet"
    df.to_parquet(path)
    report = losscli.evaluate("ce", str(path), pred_col="*", target_col="label", input="logits")
    assert columns_of(report)["columns"] == ["s0", "s1", "s2"]
    assert report.value == pytest.approx(ce_logits(z[5:], y[5:]), rel=1e-12)


# ---------------------------------------------------------------- errors


def test_pattern_matching_nothing_names_it_and_lists_columns(logits_file: tuple[Path, Any, Any]) -> None:
    path, _, _ = logits_file
    r = run_cli("ce", path, "--pred-col", "Z_*", "--target-col", "label")
    assert r.code == 2 and "Traceback" not in r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert "'Z_*' matches no column" in line and "case-sensitive" in line
    assert "'z_0', 'z_1'" in line and "(23 in all)" in line


@pytest.mark.parametrize(
    ("spec", "said"),
    [("5-2", "ends before it starts"), ("10-99", "runs past the last column: there are 23 columns")],
)
def test_bad_ranges(logits_file: tuple[Path, Any, Any], spec: str, said: str) -> None:
    path, _, _ = logits_file
    r = run_cli("ce", path, "--pred-col", spec, "--target-col", "label")
    assert r.code == 2 and said in r.stderr and repr(spec) in r.stderr


def test_weight_col_pattern_must_be_one_column(tmp_path: Path) -> None:
    rng = np.random.default_rng(RNG_SEED + 4)
    p, t, w = rng.normal(size=20), rng.normal(size=20), rng.uniform(0.5, 2, size=20)
    path = tmp_path / "w.csv"
    pd.DataFrame({"pred": p, "target": t, "w_sample": w, "v_a": w, "v_b": w}).to_csv(path, index=False)
    report = losscli.evaluate("mse", str(path), pred_col="pred", target_col="target", weight_col="w_*")
    assert report.value == pytest.approx(float(np.sum(w * (p - t) ** 2) / np.sum(w)), rel=1e-12)
    assert columns_of(report, "weights")["columns"] == ["w_sample"]
    assert columns_of(report, "weights")["spec"] == "w_*"
    r = run_cli("mse", path, "--pred-col", "pred", "--target-col", "target", "--weight-col", "v_*")
    assert r.code == 2 and "names 2 columns ('v_a', 'v_b')" in r.stderr


# ---------------------------------------------------------------- names with , * -


def test_names_with_commas_stars_and_dashes_stay_reachable(tmp_path: Path) -> None:
    rng = np.random.default_rng(RNG_SEED + 5)
    cols = ["a,b", "x-1", "p*", "1-2", "c", "p_q", "y"]
    data = rng.normal(size=(15, len(cols)))
    path = tmp_path / "odd.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(cols)
        writer.writerows(data.tolist())
    y = data[:, 6]

    def mse(spec: str, target: str = "y") -> tuple[float, list[str]]:
        report = losscli.evaluate("mse", str(path), pred_col=spec, target_col=target)
        return report.value, columns_of(report)["columns"]

    for j, name in enumerate(cols[:4]):  # the whole spec is a name: that column, nothing else
        value, taken = mse(name)
        assert taken == [name] and value == pytest.approx(float(np.mean((data[:, j] - y) ** 2)))
    # in a list, a run of parts spelling a comma name is that name; names win over patterns
    report = losscli.evaluate("mse", str(path), pred_col="c,a,b,x-1", target_col="y,p_q,1-2")
    assert columns_of(report)["columns"] == ["c", "a,b", "x-1"]
    assert columns_of(report, "targets")["columns"] == ["y", "p_q", "1-2"]
    expected = np.mean((data[:, [4, 0, 1]] - data[:, [6, 5, 3]]) ** 2)
    assert report.value == pytest.approx(float(expected), rel=1e-12)
    # a glob that is no column's name still globs: p_* takes p_q, p? the two-character p*
    assert mse("p_*")[1] == ["p_q"]
    assert mse("p?")[1] == ["p*"]


# ---------------------------------------------------------------- formats


def test_headerless_csv_takes_ranges_and_refuses_globs(tmp_path: Path) -> None:
    rng = np.random.default_rng(RNG_SEED + 6)
    z = rng.normal(size=(25, 5))
    y = rng.integers(0, 3, size=25)
    path = tmp_path / "plain.csv"
    np.savetxt(path, np.column_stack([y, z]), delimiter=",", fmt="%.17g")
    report = losscli.evaluate("ce", str(path), pred_col="2-4", target_col="0", input="logits", header=False)
    assert columns_of(report)["columns"] == ["2", "3", "4"]
    assert report.value == pytest.approx(ce_logits(z[:, 1:4], y), rel=1e-12)
    r = run_cli("ce", path, "--pred-col", "z*", "--target-col", "0", "--no-header")
    assert r.code == 2 and "the file has no header" in r.stderr and "ranges such as 1-10" in r.stderr


def test_tsv_glob(tmp_path: Path) -> None:
    rng = np.random.default_rng(RNG_SEED + 7)
    p = rng.dirichlet(np.ones(4), size=30)
    y = rng.integers(0, 4, size=30)
    df = pd.DataFrame(p, columns=[f"prob_{c}" for c in range(4)])
    df.insert(0, "label", y)
    path = tmp_path / "p.tsv"
    df.to_csv(path, sep="\t", index=False)
    r = run_cli("ce", path, "--pred-col", "prob_[0-9]*", "--target-col", "label", "-f", "json")
    assert r.code == 0, r.stderr
    assert r.json()["value"] == pytest.approx(ce_probs(p, y), rel=1e-12)
    assert r.json()["columns"]["preds"]["columns"] == [f"prob_{c}" for c in range(4)]


def test_parquet_from_polars(tmp_path: Path) -> None:
    rng = np.random.default_rng(RNG_SEED + 8)
    pred, true = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    frame = pl.DataFrame(
        {
            "fold": rng.integers(0, 4, 40),
            **{f"pred_{k}": pred[:, k] for k in range(3)},
            **{f"true_{k}": true[:, k] for k in range(3)},
        }
    )
    path = tmp_path / "m.parquet"
    frame.write_parquet(path)
    ref = float(np.mean((pred - true) ** 2))
    report = losscli.evaluate("mse", str(path), pred_col="pred_*", target_col="4-")
    assert columns_of(report)["columns"] == ["pred_0", "pred_1", "pred_2"]
    assert columns_of(report, "targets")["columns"] == ["true_0", "true_1", "true_2"]
    assert report.value == pytest.approx(ref, rel=1e-12)
    report = losscli.evaluate("mse", str(path), pred_col="1-3", target_col="true_*")
    assert report.value == pytest.approx(ref, rel=1e-12)


def test_arrays_take_positions_and_ranges_only() -> None:
    rng = np.random.default_rng(RNG_SEED + 9)
    a, t = rng.normal(size=(12, 6)), rng.normal(size=(12, 3))
    report = losscli.evaluate("mse", a, t, pred_col="3-")
    assert report.value == pytest.approx(float(np.mean((a[:, 3:] - t) ** 2)), rel=1e-12)
    report = losscli.evaluate("mse", a, t, pred_col="5,0-1")
    assert report.value == pytest.approx(float(np.mean((a[:, [5, 0, 1]] - t) ** 2)), rel=1e-12)
    report = losscli.evaluate("mse", a, t, exclude_col="1-3")
    assert report.value == pytest.approx(float(np.mean((a[:, [0, 4, 5]] - t) ** 2)), rel=1e-12)
    with pytest.raises(UsageError, match="an array's columns have no names"):
        losscli.evaluate("mse", a, t, pred_col="p_*")


def test_help_and_readme_document_the_forms() -> None:
    r = run_cli("ce", "--help")
    flat = " ".join(r.stdout.split())
    assert "1-10" in flat and "'p_*'" in flat and "--exclude-col" in flat and "exact name" in flat
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "--exclude-col" in readme and "'p_*'" in readme


# ---------------------------------------------------------------- any spec, any header


class _Header(Reader):
    """Just a header: the column rules need nothing else."""

    display = "t.csv"
    delimited = True

    def __init__(self, names: list[str], index: int) -> None:
        self.column_names = names
        self.index_columns = tuple(range(index))

    @property
    def header_row(self) -> bool:
        return True

    def chunks(self, groups: Any, max_rows: int) -> Any:
        raise AssertionError("a spec reads no rows")


_NAME_CHARS = "ab_-*,?[]0123Id"
_names = st.lists(
    st.text(_NAME_CHARS, min_size=1, max_size=4)
    | st.sampled_from(["id", "row", "a_id", "PassengerId", "b-1"]),
    min_size=1,
    max_size=8,
    unique=True,
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(names=_names, index=st.integers(0, 1), spec=st.text(_NAME_CHARS + " ", max_size=12))
def test_any_spec_resolves_to_distinct_columns_or_a_usage_error(
    names: list[str], index: int, spec: str
) -> None:
    """Whatever the spec and the header: a UsageError, or each column at most once; the whole
    spec as a name is that column alone; every part that is a name is in the result; a
    range or glob never adds an index or id column that no part names."""
    reader = _Header(names, min(index, len(names) - 1))
    try:
        got = resolve_spec(reader, spec)
    except UsageError:
        return
    assert len(got) == len(set(got)) and all(0 <= j < len(names) for j in got)
    if spec in names:
        assert got == [names.index(spec)]
        return
    parts = [p.strip() for p in spec.split(",")]
    if not any("," in n for n in names):
        assert all(names.index(p) in got for p in parts if p in names)
        named = {names.index(p) for p in parts if p in names} | {
            position for p in parts if p not in names and (position := _position(p)) is not None
        }
        for j in set(got) - named:
            assert j not in reader.index_columns and not is_id_name(names[j])


def _position(part: str) -> int | None:
    """What a position is, as before patterns: whatever int() reads (``-0`` is 0)."""
    try:
        return int(part)
    except ValueError:
        return None


def test_perplexity_columns_take_a_pattern_that_comes_to_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(RNG_SEED + 10)
    lp = -rng.exponential(2.0, size=50)
    path = tmp_path / "lp.csv"
    pd.DataFrame({"doc_id": np.arange(50) // 10, "lp_token": lp, "lp_other": lp * 2}).to_csv(
        path, index=False
    )
    report = losscli.evaluate("perplexity", None, logprobs=str(path), pred_col="lp_t*")
    assert report.value == pytest.approx(float(np.exp(-np.mean(lp))), rel=1e-12)
    r = run_cli("perplexity", "--logprobs", path, "--pred-col", "lp_*")
    assert r.code == 2 and "names 2 columns ('lp_token', 'lp_other')" in r.stderr
