"""--group-by over a directory of shards: by a hive partition key (typed as pyarrow infers it),
by a column of the files, and by both, against a pandas groupby reference; the shards merge to
the figures of the whole, per group."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli


def _data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 600
    return pd.DataFrame(
        {
            "pred": rng.normal(size=n),
            "target": rng.normal(size=n),
            "source": rng.choice(["web", "books"], n),
            "lang": rng.choice(["de", "en", "fr"], n),
            "year": rng.choice([2023, 2024], n),
        }
    )


def _reference(df: pd.DataFrame, keys: list[str]) -> dict[tuple[object, ...], tuple[float, float, int]]:
    err = df["pred"] - df["target"]
    frame = df.assign(se=err**2, ae=err.abs())
    out = {}
    for key, g in frame.groupby(keys):
        key = key if isinstance(key, tuple) else (key,)
        out[tuple(k.item() if hasattr(k, "item") else k for k in key)] = (g.se.mean(), g.ae.mean(), len(g))
    return out


@pytest.mark.parametrize("keys", [["lang"], ["year"], ["source"], ["lang", "source"]])
def test_group_by_a_partition_key_or_a_file_column_of_hive_shards(tmp_path: Path, keys: list[str]) -> None:
    df = _data()
    df.to_parquet(tmp_path / "preds", partition_cols=["lang", "year"])
    result = run_cli(
        "mse", tmp_path / "preds", "--pred-col", "pred", "--target-col", "target",
        "--group-by", ",".join(keys), "-f", "json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    want = _reference(df, keys)
    got = {tuple(g["key"][k] for k in keys): (g["value"], g["mae"], g["n"]) for g in result.json()["groups"]}
    assert set(got) == set(want)
    for key, (mse, mae, n) in want.items():
        assert got[key][0] == pytest.approx(mse, rel=1e-12) and got[key][1] == pytest.approx(mae, rel=1e-12)
        assert got[key][2] == n
    if keys == ["year"]:
        assert all(isinstance(k[0], int) for k in got)  # year=2024 is an integer, as pyarrow infers


def test_group_by_over_plain_shards_equals_the_single_file(tmp_path: Path) -> None:
    df = _data()
    folder = tmp_path / "shards"
    folder.mkdir()
    for k, start in enumerate(range(0, len(df), 120)):
        df.iloc[start : start + 120].to_parquet(folder / f"part-{k}.parquet", index=False)
    df.to_parquet(tmp_path / "whole.parquet", index=False)
    args = ["--pred-col", "pred", "--target-col", "target", "--group-by", "lang", "-f", "json"]
    sharded = run_cli("mse", folder, *args, "--threads", "2")
    whole = run_cli("mse", tmp_path / "whole.parquet", *args)
    assert sharded.code == 0 and whole.code == 0, sharded.stderr + whole.stderr
    for a, b in zip(sharded.json()["groups"], whole.json()["groups"], strict=True):
        assert a["key"] == b["key"] and a["n"] == b["n"]
        assert a["value"] == pytest.approx(b["value"], rel=1e-12)


def test_a_dictionary_key_whose_nulls_come_in_a_later_row_group(tmp_path: Path) -> None:
    """Batches of one dictionary map to codes through a cached lookup once every value has a
    code; a batch with nulls must still put them in the null group, not in the first key's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(2)
    n = 6000
    lang = rng.choice(["de", "en", "fr"], n).astype(object)
    lang[5000:5200] = None  # only in the last row groups
    pred, target = rng.normal(size=n), rng.normal(size=n)
    table = pa.table({"pred": pred, "target": target, "lang": pa.array(lang).dictionary_encode()})
    pq.write_table(table, tmp_path / "keys.parquet", row_group_size=1000)
    result = run_cli(
        "mse", tmp_path / "keys.parquet", "--pred-col", "pred", "--target-col", "target",
        "--group-by", "lang", "--chunk-size", "700", "-f", "json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    err = pd.Series((pred - target) ** 2)
    want = err.groupby(pd.Series(lang), dropna=False).agg(["mean", "size"])
    got = {g["key"]["lang"]: (g["value"], g["n"]) for g in result.json()["groups"]}
    assert set(got) == {"de", "en", "fr", None}
    for key, (mean, size) in want.iterrows():
        k = None if not isinstance(key, str) else key
        assert got[k][1] == size and got[k][0] == pytest.approx(mean, rel=1e-12)
