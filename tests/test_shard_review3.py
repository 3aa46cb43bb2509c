"""Sharded inputs as a new user met them (third review): hive keys used as data, --groups as
.npy shards, merge advice and notes, --input auto across shards, CSV shards without their header,
Polars' partitioned output, one wording for .npy errors, the table's file column. Inputs are
written by the real tools (pyarrow write_dataset, Polars partition_by, np.save, pandas to_csv);
references are numpy and pandas, written here."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from conftest import run_cli

REL = 1e-12


def _pa_hive(tmp_path: Path) -> tuple[Path, pa.Table]:
    """pyarrow's own hive output: a text key ``split`` in the folder names only."""
    rng = np.random.default_rng(31)
    n = 600
    table = pa.table(
        {
            "pred": rng.normal(size=n),
            "target": rng.normal(size=n),
            "split": rng.choice(["train", "test"], n),
        }
    )
    out = tmp_path / "pa_hive"
    ds.write_dataset(table, out, format="parquet", partitioning=["split"], partitioning_flavor="hive")
    return out, table


@pytest.mark.parametrize("option", ["--weight-col", "--pred-col"])
def test_a_text_hive_key_read_as_numbers_is_bad_data(tmp_path: Path, option: str) -> None:
    folder, _ = _pa_hive(tmp_path)
    cols = {"--pred-col": "pred", "--target-col": "target", option: "split"}
    args = [a for kv in cols.items() for a in kv]
    result = run_cli("mse", folder, *args)
    assert result.code == 3, result.stderr
    assert "column 'split'" in result.stderr and "not numbers" in result.stderr
    assert "internal error" not in result.stderr and result.stdout == ""


def test_a_text_hive_key_still_groups(tmp_path: Path) -> None:
    folder, table = _pa_hive(tmp_path)
    df = table.to_pandas()
    want = ((df["pred"] - df["target"]) ** 2).groupby(df["split"]).mean()
    result = run_cli(
        "mse", folder, "--pred-col", "pred", "--target-col", "target", "--group-by", "split", "-f", "json"
    )
    assert result.code == 0, result.stderr
    got = {g["key"]["split"]: g["value"] for g in result.json()["groups"]}
    assert got.keys() == set(want.index)
    assert all(math.isclose(got[k], want[k], rel_tol=REL) for k in got)


@pytest.mark.parametrize("split", [[], ["--split-rows", "10"]])
def test_a_null_hive_key_read_as_data_is_called_a_null(tmp_path: Path, split: list[str]) -> None:
    for year, n in (("2023", 40), ("__HIVE_DEFAULT_PARTITION__", 25), ("2024", 35)):
        folder = tmp_path / "hv" / f"year={year}"
        folder.mkdir(parents=True)
        table = pa.table({"pred": np.full(n, float(n)), "target": np.zeros(n)})
        pq.write_table(table, folder / "part-0.parquet")
    result = run_cli(
        "mse", tmp_path / "hv", "--pred-col", "pred", "--target-col", "target", "--weight-col", "year", *split
    )
    assert result.code == 3, result.stderr
    assert "year=__HIVE_DEFAULT_PARTITION__/part-0.parquet: row 0, column 'year'" in result.stderr
    assert "null value (a missing value)" in result.stderr and "nan is not" not in result.stderr
    assert "row 75 of the whole input" in result.stderr


def _npy_with_key_shards(tmp_path: Path) -> tuple[Path, Path, Path, pd.DataFrame]:
    """Predictions, targets and integer group keys, each as .npy shards written by np.save."""
    rng = np.random.default_rng(32)
    cuts = [0, 100, 4100, 9000]
    n = cuts[-1]
    df = pd.DataFrame(
        {"p": rng.normal(size=n), "t": rng.normal(size=n), "g": rng.integers(0, 4, n)}
    )
    folders = [tmp_path / name for name in ("npyp", "npyt", "gnpy")]
    for folder, col in zip(folders, "ptg", strict=True):
        folder.mkdir()
        for i in range(3):
            np.save(folder / f"s{i}.npy", df[col].to_numpy()[cuts[i] : cuts[i + 1]])
    return *folders, df  # type: ignore[return-value]


@pytest.mark.parametrize(
    "engine", [[], ["--split-rows", "1000"], ["--engine", "dask", "--workers", "2", "--split-rows", "1000"]]
)
def test_groups_as_npy_shards_name_their_key_alike(tmp_path: Path, engine: list[str]) -> None:
    if "dask" in engine:
        pytest.importorskip("distributed")
    preds, targets, keys, df = _npy_with_key_shards(tmp_path)
    result = run_cli("mse", preds, targets, "--groups", keys, "-f", "json", *engine)
    assert result.code == 0, result.stderr
    want = ((df["p"] - df["t"]) ** 2).groupby(df["g"]).agg(["mean", "size"])
    groups = result.json()["groups"]
    assert [list(g["key"]) for g in groups] == [["s0"]] * len(want)  # the first shard's name
    got = {g["key"]["s0"]: (g["value"], g["n"]) for g in groups}
    assert got.keys() == set(want.index)
    for k, (value, n) in got.items():
        assert math.isclose(value, want.loc[k, "mean"], rel_tol=REL) and n == want.loc[k, "size"]


def test_a_dask_failure_outside_the_shards_tasks_is_the_real_error() -> None:
    """A merge task on the cluster that fails (states that do not merge) is reported as it is,
    not as 'no shard's task failed'."""
    pytest.importorskip("distributed")
    from losscli.engine.dask_engine import _Run
    from losscli.errors import InputError

    class Done:
        def exception(self) -> None:
            return None

    failed = InputError("cannot merge these states: the merge's own words")
    run = _Run.__new__(_Run)
    assert run._first_error([Done(), Done()], failed) is failed  # type: ignore[list-item]


@pytest.mark.parametrize(
    "engine", [[], ["--split-rows", "1000"], ["--engine", "dask", "--workers", "2", "--split-rows", "1000"]]
)
def test_a_bad_npy_value_is_worded_alike_however_the_shard_is_read(tmp_path: Path, engine: list[str]) -> None:
    if "dask" in engine:
        pytest.importorskip("distributed")
    rng = np.random.default_rng(33)
    (tmp_path / "p").mkdir()
    q = rng.normal(size=6000)
    q[1000 + 4321] = np.inf
    np.save(tmp_path / "p" / "a.npy", q[:1000])
    np.save(tmp_path / "p" / "b.npy", q[1000:])
    np.save(tmp_path / "t.npy", rng.normal(size=6000))
    result = run_cli("mse", tmp_path / "p", tmp_path / "t.npy", *engine)
    assert result.code == 3, result.stderr
    want = (
        f"losscli: error: {tmp_path / 'p' / 'b.npy'}: row 4321: inf is not a finite number "
        "(use --nan skip to drop such rows) (row 5321 of the whole input)"
    )
    assert result.stderr.strip() == want


def _spark_jobs(tmp_path: Path) -> tuple[Path, Path, int]:
    """Spark-like shards (1000, 700, 1300 rows); job 1 evaluates the first two, job 2 the third
    and forgets --row-offset. Returns both states and the rows job 1 read."""
    rng = np.random.default_rng(34)
    folder = tmp_path / "spark"
    folder.mkdir()
    sizes = (1000, 700, 1300)
    for i, n in enumerate(sizes):
        pq.write_table(
            pa.table({"prediction": rng.normal(size=n), "label": rng.normal(size=n)}),
            folder / f"part-{i:05d}-abc123-c000.snappy.parquet",
            compression="snappy",
        )
    (folder / "_SUCCESS").write_text("")
    s1, s2 = tmp_path / "s1.state", tmp_path / "s2.state"
    job1 = run_cli("mse", str(folder / "part-0000[01]-*.parquet"), "--save-state", s1)
    job2 = run_cli("mse", str(folder / "part-00002-*.parquet"), "--save-state", s2)
    assert job1.code == 0 and job2.code == 0, job1.stderr + job2.stderr
    return s1, s2, sizes[0] + sizes[1]


def test_merge_advises_the_whole_earlier_states_rows_as_the_offset(tmp_path: Path) -> None:
    s1, s2, job1_rows = _spark_jobs(tmp_path)
    for order in ((s1, s2), (s2, s1)):
        merged = run_cli("merge", *order, "-f", "json")
        assert merged.code == 0, merged.stderr
        advice = [line for line in merged.stderr.splitlines() if "--row-offset" in line]
        assert len(advice) == 1, merged.stderr  # one mistake, one warning
        assert f"--row-offset {job1_rows} " in advice[0]
        assert "rows 0..1299 " in advice[0]  # all the rows job 2 numbered again


def test_merge_says_a_note_every_shard_repeats_once(tmp_path: Path) -> None:
    s1, s2, _ = _spark_jobs(tmp_path)
    merged = run_cli("merge", s1, s2)
    assert merged.code == 0, merged.stderr
    notes = [line for line in merged.stderr.splitlines() if "rule: conventional name" in line]
    assert len(notes) == 1 and "(the same in 2 more shards)" in notes[0], merged.stderr
    assert "part-00000-abc123" in notes[0]


@pytest.mark.parametrize("metric", ["bce", "ce"])
def test_an_input_kind_detected_in_the_first_shard_is_still_a_guess(tmp_path: Path, metric: str) -> None:
    """The first shard holds probabilities, the second logits: exit 2 with the --input hint, as
    a chunk that contradicts --input auto in one file gets, naming the shard and the first."""
    rng = np.random.default_rng(35)
    folder = tmp_path / metric
    folder.mkdir()
    n = 500
    if metric == "bce":
        first = {"pred": rng.uniform(0.01, 0.99, n), "target": rng.integers(0, 2, n)}
        second = {"pred": rng.normal(size=n) * 3, "target": rng.integers(0, 2, n)}
        cols = ["--pred-col", "pred", "--target-col", "target"]
    else:
        probs, logits = rng.dirichlet(np.ones(3), n), rng.normal(size=(n, 3)) * 3
        first = {**{f"p{k}": probs[:, k] for k in range(3)}, "label": rng.integers(0, 3, n)}
        second = {**{f"p{k}": logits[:, k] for k in range(3)}, "label": rng.integers(0, 3, n)}
        cols = ["--pred-col", "p0,p1,p2", "--target-col", "label"]
    pq.write_table(pa.table(first), folder / "a.parquet")
    pq.write_table(pa.table(second), folder / "b.parquet")
    for engine in ([], ["--threads", "1"]):
        result = run_cli(metric, folder, *cols, *engine)
        assert result.code == 2, result.stderr
        line = result.stderr.strip()
        assert line.startswith(f"losscli: error: {folder / 'b.parquet'}: row "), line
        assert f"from the first shard ({folder / 'a.parquet'})" in line and "--input logits" in line
        assert result.stdout == ""
    given = run_cli(metric, folder, *cols, "--input", "probs")  # given, not guessed: bad data
    assert given.code == 3 and "--input auto" not in given.stderr, given.stderr


@pytest.mark.parametrize("rows", [800, 9500])
def test_a_groups_csv_of_the_wrong_length_beside_shards_says_its_length(tmp_path: Path, rows: int) -> None:
    preds, targets, _, df = _npy_with_key_shards(tmp_path)
    keys = pd.DataFrame({"fold": np.resize(df["g"].to_numpy(), rows)})
    keys.to_csv(tmp_path / "keys.csv", index=False)
    result = run_cli("mse", preds, targets, "--groups", tmp_path / "keys.csv")
    assert result.code == 3, result.stderr
    short = "ends after 800 rows, but the shards have 9,000"
    said = short if rows < 9000 else "has more rows than the shards' 9,000"
    assert f"{tmp_path / 'keys.csv'}: {said}" in result.stderr, result.stderr
    assert "has 700 rows" not in result.stderr and result.stdout == ""


def test_a_targets_csv_longer_than_the_shards_is_not_cut_silently(tmp_path: Path) -> None:
    preds, _, _, df = _npy_with_key_shards(tmp_path)
    longer = np.concatenate([df["t"].to_numpy(), [0.5, 0.25]])
    pd.DataFrame({"t": longer}).to_csv(tmp_path / "t.csv", index=False)
    result = run_cli("mse", preds, tmp_path / "t.csv")
    assert result.code == 3 and "more rows than the shards' 9,000" in result.stderr, result.stderr
    pd.DataFrame({"t": df["t"]}).to_csv(tmp_path / "t.csv", index=False)  # the right length
    good = run_cli("mse", preds, tmp_path / "t.csv", "-f", "json")
    assert good.code == 0, good.stderr
    want = float(np.mean((df["p"].to_numpy() - df["t"].to_numpy()) ** 2))
    assert math.isclose(good.json()["value"], want, rel_tol=REL)


@pytest.mark.parametrize("named", [True, False])
def test_csv_shards_with_the_header_in_the_first_only_say_so(tmp_path: Path, named: bool) -> None:
    """pandas to_csv(header=(i == 0)): the later parts' first line is data."""
    rng = np.random.default_rng(36)
    folder = tmp_path / "csvhdr"
    folder.mkdir()
    for i in range(3):
        part = pd.DataFrame({"pred": rng.normal(size=300), "target": rng.normal(size=300)})
        part.to_csv(folder / f"part{i}.csv", index=False, header=(i == 0))
    cols = ["--pred-col", "pred", "--target-col", "target"] if named else []
    result = run_cli("mse", folder, *cols)
    assert result.code == 3, result.stderr
    first = (folder / "part1.csv").read_text().splitlines()[0].split(",")
    line = result.stderr.strip()
    head = f"losscli: error: {folder / 'part1.csv'}: its first line holds numbers ({first[0]}, "
    assert line.startswith(head), line
    assert "where the first shard has column names" in line and "needs its header line" in line
    assert "no column" not in line and result.stdout == ""


def test_polars_partitioned_output_keeps_its_key_columns(tmp_path: Path) -> None:
    """Polars writes the keys into the files too: read from the file, as pyarrow would."""
    rng = np.random.default_rng(37)
    n = 3000
    df = pl.DataFrame(
        {
            "yhat": rng.normal(size=n),
            "y": rng.normal(size=n),
            "lang": rng.choice(["de", "en"], n),
            "yr": rng.choice([2023, 2024], n),
        }
    )
    df.write_parquet(tmp_path / "plhive", partition_by=["lang", "yr"])
    result = run_cli("mse", tmp_path / "plhive", "--group-by", "lang,yr", "-f", "json")
    assert result.code == 0, result.stderr
    frame = df.to_pandas()
    err = (frame["yhat"] - frame["y"]) ** 2
    out = result.json()
    assert out["n"] == n and math.isclose(out["value"], float(err.mean()), rel_tol=REL)
    want = err.groupby([frame["lang"], frame["yr"]]).agg(["mean", "size"])
    got = {(g["key"]["lang"], g["key"]["yr"]): (g["value"], g["n"]) for g in out["groups"]}
    assert got.keys() == set(want.index)
    for k, (value, count) in got.items():
        assert math.isclose(value, want.loc[k, "mean"], rel_tol=REL) and count == want.loc[k, "size"]


@pytest.mark.parametrize(
    ("folder", "column", "said"),
    [("k=1", pa.array([5, 5]), "holds 5 in its column 'k'"), ("k=x", pa.array([1, 1]), "another type")],
)
def test_a_key_column_that_disagrees_with_its_folder_is_refused(
    tmp_path: Path, folder: str, column: pa.Array, said: str
) -> None:
    (tmp_path / "d" / folder).mkdir(parents=True)
    table = pa.table({"pred": [1.0, 2.0], "target": [0.0, 0.0], "k": column})
    pq.write_table(table, tmp_path / "d" / folder / "p.parquet")
    result = run_cli("mse", tmp_path / "d", "--pred-col", "pred", "--target-col", "target")
    assert result.code == 3 and said in result.stderr and "rename" in result.stderr, result.stderr


@pytest.mark.parametrize("top", [1, 5])
def test_the_table_tells_hive_files_of_one_name_apart(tmp_path: Path, top: int) -> None:
    """Every pyarrow hive file is part-0.parquet: the table shows its partition folder too,
    relative to the folder of all the shards (whichever partitions the worst rows are in);
    JSON keeps the absolute path."""
    folder, table = _pa_hive(tmp_path)
    df = table.to_pandas()
    args = ("mse", folder, "--pred-col", "pred", "--target-col", "target", "--top", str(top))
    shown = run_cli(*args, "-f", "table", env={"COLUMNS": "200"})
    assert shown.code == 0, shown.stderr
    data = run_cli(*args, "-f", "json").json()
    for example in data["examples"]:
        path = Path(example["file"])
        assert path.is_absolute() and path.parent.parent == folder
        relative = f"{path.parent.name}/{path.name}"  # split=test/part-0.parquet
        line = next(x for x in shown.stdout.splitlines() if x.strip("│ ").startswith(f"{example['row']} "))
        assert f" {relative} " in line, line
    # the worst rows as a reference: the shards in path order (split=test first)
    order = pd.concat([df[df["split"] == s] for s in ("test", "train")], ignore_index=True)
    losses = ((order["pred"] - order["target"]) ** 2).to_numpy()
    assert [e["row"] for e in data["examples"]] == list(np.argsort(-losses, kind="stable")[:top])


def test_the_readme_says_per_example_is_not_for_dask(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    dask = readme.split("### Running on a Dask cluster")[1].split("\n### ")[0]
    line = next((x for x in dask.split("\n- ") if "--per-example" in x), "")
    assert "exit 2" in line and "--engine local" in line, dask
    folder, _ = _pa_hive(tmp_path)
    args = ("mse", folder, "--pred-col", "pred", "--target-col", "target")
    result = run_cli(*args, "--engine", "dask", "--per-example", tmp_path / "per.csv")
    assert result.code == 2 and "--engine local" in result.stderr, result.stderr
