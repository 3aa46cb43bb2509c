"""Sharded input at its edges, as a fresh-eyes review found them: a file beside the shards with
--per-example and --groups, --groups itself sharded, null hive keys used as data, --max-groups
over the whole input, a hive key that is also a column, shards whose named columns come in
another order, errors that give the row of the whole input, and one note per rule, not per
shard. References are numpy and pandas, written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli

SIZES = (70, 130, 100)


def _shards(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    rng = np.random.default_rng(11)
    folder = tmp_path / "preds"
    folder.mkdir()
    frames = []
    for k, n in enumerate(SIZES):
        df = pd.DataFrame({"pred": rng.normal(size=n), "target": rng.normal(size=n)})
        df.to_parquet(folder / f"part-{k}.parquet", index=False)
        frames.append(df.assign(lang=rng.choice(["de", "en", "fr"], n)))
    return folder, pd.concat(frames, ignore_index=True)


def _by_lang(whole: pd.DataFrame) -> dict[str, float]:
    err = (whole["pred"] - whole["target"]) ** 2
    return {str(k): float(v) for k, v in err.groupby(whole["lang"]).mean().items()}


@pytest.mark.parametrize("keys", ["csv", "parquet", "shards"])
def test_groups_file_beside_shards_or_sharded_alike(tmp_path: Path, keys: str) -> None:
    folder, whole = _shards(tmp_path)
    if keys == "shards":
        given = tmp_path / "keys"
        given.mkdir()
        start = 0
        for k, n in enumerate(SIZES):
            whole[["lang"]].iloc[start : start + n].to_parquet(given / f"k-{k}.parquet", index=False)
            start += n
    else:
        given = tmp_path / f"keys.{keys}"
        if keys == "csv":
            whole[["lang"]].to_csv(given, index=False)
        else:
            whole[["lang"]].to_parquet(given, index=False)
    result = run_cli(
        "mse", folder, "--pred-col", "pred", "--target-col", "target", "--groups", given, "-f", "json"
    )
    assert result.code == 0, result.stderr
    got = {g["key"]["lang"]: g["value"] for g in result.json()["groups"]}
    want = _by_lang(whole)
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-12)


def test_per_example_beside_one_file_and_no_false_overlap_warning(tmp_path: Path) -> None:
    folder, whole = _shards(tmp_path)
    whole[["target"]].to_parquet(tmp_path / "targets.parquet", index=False)
    out = tmp_path / "per.csv"
    result = run_cli(
        "mse", folder, tmp_path / "targets.parquet", "--pred-col", "pred", "--per-example", out, "-f", "json"
    )
    assert result.code == 0, result.stderr
    assert "was read by" not in result.stderr and "warnings" not in result.json()
    got = pd.read_csv(out)
    np.testing.assert_allclose(got["loss"], (whole["pred"] - whole["target"]) ** 2, rtol=1e-15)
    assert got["file_row"].tolist() == [r for n in SIZES for r in range(n)]


def test_a_null_hive_key_used_as_data_is_a_missing_value(tmp_path: Path) -> None:
    for year, preds in (("2024", [1.0, 2.0]), ("__HIVE_DEFAULT_PARTITION__", [3.0])):
        (tmp_path / "hv" / f"year={year}").mkdir(parents=True)
        pd.DataFrame({"pred": preds, "target": 0.0}).to_parquet(
            tmp_path / "hv" / f"year={year}" / "a.parquet"
        )
    args = ["mse", tmp_path / "hv", "--pred-col", "pred", "--target-col", "target", "--weight-col", "year"]
    refused = run_cli(*args)
    assert (
        refused.code == 3
        and "__HIVE_DEFAULT_PARTITION__" in refused.stderr
        and "Traceback" not in refused.stderr
    )
    skipped = run_cli(*args, "--nan", "skip", "-f", "json").json()
    assert skipped["value"] == pytest.approx(2.5, rel=1e-12) and skipped["skipped"] == 1


def test_max_groups_bounds_the_whole_input_not_each_shard(tmp_path: Path) -> None:
    folder = tmp_path / "mg"
    folder.mkdir()
    for i in range(3):  # two keys per shard, six in all
        keys = [f"k{2 * i + (j % 2)}" for j in range(10)]
        pd.DataFrame({"pred": 1.0, "target": 0.0, "k": keys}).to_parquet(folder / f"p{i}.parquet")
    args = ["mse", folder, "--pred-col", "pred", "--target-col", "target", "--group-by", "k"]
    refused = run_cli(*args, "--max-groups", "4")
    assert refused.code == 3 and "6 distinct keys" in refused.stderr, refused.stderr
    assert len(run_cli(*args, "--max-groups", "6", "-f", "json").json()["groups"]) == 6


def test_a_hive_key_that_is_also_a_column_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d" / "k=a").mkdir(parents=True)
    pd.DataFrame({"pred": [1.0], "target": [0.0], "k": ["z"]}).to_parquet(
        tmp_path / "d" / "k=a" / "p.parquet"
    )
    result = run_cli("mse", tmp_path / "d", "--pred-col", "pred", "--target-col", "target", "--group-by", "k")
    assert result.code == 3 and "'k'" in result.stderr and "rename" in result.stderr, result.stderr


def test_named_columns_in_another_order_are_read_by_name(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    pd.DataFrame({"pred": [1.0, 2.0], "target": [0.0, 1.0]}).to_parquet(tmp_path / "r" / "a.parquet")
    pd.DataFrame({"target": [0.0, 0.5], "pred": [3.0, 1.0]}).to_parquet(tmp_path / "r" / "b.parquet")
    named = run_cli("mse", tmp_path / "r", "--pred-col", "pred", "--target-col", "target", "-f", "json")
    assert named.code == 0 and named.json()["value"] == pytest.approx((1 + 1 + 9 + 0.25) / 4, rel=1e-12)
    by_rule = run_cli("mse", tmp_path / "r")
    assert by_rule.code == 3 and "read by name" in by_rule.stderr


def test_a_bad_cell_in_a_csv_shard_gives_the_row_of_the_whole_input(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.csv").write_text("pred,target\n1,2\n3,4\n")
    (tmp_path / "c" / "b.csv").write_text("pred,target\n1,2\noops,4\n")
    result = run_cli("mse", tmp_path / "c", "--pred-col", "pred", "--target-col", "target")
    assert (
        result.code == 3 and "b.csv: row 1" in result.stderr and "row 3 of the whole input" in result.stderr
    )


def test_a_rule_repeated_by_every_shard_is_one_note(tmp_path: Path) -> None:
    folder, _ = _shards(tmp_path)
    result = run_cli("mse", folder)
    assert result.code == 0
    notes = [line for line in result.stderr.splitlines() if "rule: conventional name" in line]
    assert len(notes) == 1 and "the same in 2 more shards" in notes[0], result.stderr
