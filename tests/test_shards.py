"""Directories, globs and hive partitions: a sharded input reports what the concatenated single
file reports (figures within 1e-12 of a float64 numpy reference, counts exact, the same worst
rows, with the shard and its own row added), whatever the layout, format and thread count."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

import losscli

from conftest import run_cli

N, SHARDS = 1200, 4


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


def frame(metric: str, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    if metric in ("mse", "mae", "huber"):
        return pd.DataFrame({"pred": rng.normal(size=N), "target": rng.normal(size=N)})
    if metric == "bce":
        return pd.DataFrame({"prob": rng.uniform(0.02, 0.98, N), "label": rng.integers(0, 2, N)})
    scores = rng.dirichlet(np.ones(3), N)
    return pd.DataFrame(
        {"p0": scores[:, 0], "p1": scores[:, 1], "p2": scores[:, 2], "label": rng.integers(0, 3, N)}
    )


def reference(metric: str, df: pd.DataFrame) -> float:
    """The metric in float64 numpy, written out here."""
    if metric in ("mse", "mae", "huber"):
        d = df["pred"].to_numpy() - df["target"].to_numpy()
        a = np.abs(d)
        per = {"mse": d * d, "mae": a, "huber": np.where(a <= 1.0, 0.5 * d * d, a - 0.5)}[metric]
        return float(np.mean(per))
    if metric == "bce":
        p, y = df["prob"].to_numpy(), df["label"].to_numpy()
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))
    p = df[["p0", "p1", "p2"]].to_numpy()
    return float(-np.mean(np.log(p[np.arange(N), df["label"].to_numpy()])))


def options(metric: str) -> dict[str, Any]:
    return {
        "mse": {"pred_col": "pred", "target_col": "target"},
        "mae": {"pred_col": "pred", "target_col": "target"},
        "huber": {"pred_col": "pred", "target_col": "target"},
        "bce": {"pred_col": "prob", "target_col": "label"},
        "ce": {"pred_col": "p0,p1,p2", "target_col": "label"},
    }[metric]


def write_shards(df: pd.DataFrame, folder: Path, fmt: str, shards: int = SHARDS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, part in enumerate(np.array_split(np.arange(len(df)), shards)):
        piece = df.iloc[part]
        path = folder / f"part-{i:05d}.{fmt}"
        if fmt == "parquet":
            piece.to_parquet(path, index=False)
        else:
            piece.to_csv(path, index=False, float_format="%.17g")
        out.append(path)
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-00000.crc").write_bytes(b"\x00")
    return out


def same_report(sharded: Any, single: Any) -> None:
    assert close(sharded.value, single.value)
    assert sharded.n == single.n and sharded.rows == single.rows
    for f in single.figures:
        g = sharded.figure(f.key)
        assert (g == f.value) if isinstance(f.value, int) else close(float(g), float(f.value)), f.key
    assert [(e.row, e.loss, e.detail) for e in sharded.examples] == [
        (e.row, e.loss, e.detail) for e in single.examples
    ]


@pytest.mark.parametrize("metric", ["mse", "mae", "huber", "bce", "ce"])
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_directory_reports_what_the_single_file_does(tmp_path: Path, metric: str, fmt: str) -> None:
    df = frame(metric)
    single = tmp_path / f"all.{fmt}"
    df.to_parquet(single, index=False) if fmt == "parquet" else df.to_csv(
        single, index=False, float_format="%.17g"
    )
    write_shards(df, tmp_path / "dir", fmt)
    one = losscli.evaluate(metric, str(single), **options(metric))
    report = losscli.evaluate(metric, str(tmp_path / "dir"), **options(metric))
    assert close(report.value, reference(metric, df))
    same_report(report, one)
    files = report.to_dict()["examples"]
    sizes = [len(p) for p in np.array_split(np.arange(N), SHARDS)]
    for e in files:  # the shard and its own row, from the row of the whole input
        shard = int(np.searchsorted(np.cumsum(sizes), e["row"], side="right"))
        assert e["file"] == str(tmp_path / "dir" / f"part-{shard:05d}.{fmt}")
        assert e["file_row"] == e["row"] - sum(sizes[:shard])


def test_a_glob_and_a_recursive_glob_made_absolute(tmp_path: Path) -> None:
    df = frame("mse")
    write_shards(df, tmp_path / "out" / "preds", "parquet")
    want = reference("mse", df)
    for pattern in ("out/preds/*.parquet", "out/**/*.parquet"):
        r = run_cli(
            "mse", pattern, "--pred-col", "pred", "--target-col", "target", "-f", "json", cwd=tmp_path
        )
        assert r.code == 0, r.stderr
        got = r.json()
        assert close(got["value"], want) and got["n"] == N
        assert all(e["file"].startswith(str(tmp_path)) for e in got["examples"])


def test_paired_npy_shards_of_preds_and_targets(tmp_path: Path) -> None:
    df = frame("mse")
    for role, col in (("p", "pred"), ("t", "target")):
        (tmp_path / role).mkdir()
        for i, part in enumerate(np.array_split(df[col].to_numpy(), SHARDS)):
            np.save(tmp_path / role / f"{i:03d}.npy", part)
    report = losscli.evaluate("mse", str(tmp_path / "p"), str(tmp_path / "t"))
    assert close(report.value, reference("mse", df)) and report.n == N


def test_sharded_preds_beside_one_targets_file(tmp_path: Path) -> None:
    """One sharded input and one single file: two streams of equal total length."""
    df = frame("mae")
    (tmp_path / "p").mkdir()
    for i, part in enumerate(np.array_split(df["pred"].to_numpy(), 3)):
        pd.DataFrame({"pred": part}).to_parquet(tmp_path / "p" / f"{i}.parquet", index=False)
    for name, write in (
        ("t.npy", lambda p: np.save(p, df["target"].to_numpy())),
        ("t.parquet", lambda p: df[["target"]].to_parquet(p, index=False)),
    ):
        write(tmp_path / name)
        report = losscli.evaluate("mae", str(tmp_path / "p"), str(tmp_path / name))
        assert close(report.value, reference("mae", df)) and report.n == N


def test_hive_partitions_written_by_pyarrow_and_pandas(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    df = frame("mse").assign(lang=rng.choice(["de", "en", "fr"], N), year=rng.choice([2023, 2024], N))
    ds.write_dataset(
        pa.Table.from_pandas(df, preserve_index=False),
        tmp_path / "a",
        format="parquet",
        partitioning=["lang", "year"],
        partitioning_flavor="hive",
    )
    df.to_parquet(tmp_path / "b", partition_cols=["year", "lang"], index=False)
    for folder in ("a", "b"):
        report = losscli.evaluate("mse", str(tmp_path / folder), pred_col="pred", target_col="target")
        assert close(report.value, reference("mse", df)) and report.n == N
        # the rule that takes every other column as predictions never takes a partition column
        ruled = losscli.evaluate("mse", str(tmp_path / folder), target_col="target")
        assert close(ruled.value, reference("mse", df))


def test_a_hive_key_is_a_typed_column_usable_by_column_options(tmp_path: Path) -> None:
    """year=2024 is an integer, as pyarrow's hive partitioning infers it: a weight column."""
    df = frame("mse").assign(w=np.repeat([1, 3, 2], N // 3))
    ds.write_dataset(
        pa.Table.from_pandas(df, preserve_index=False),
        tmp_path / "h",
        format="parquet",
        partitioning=["w"],
        partitioning_flavor="hive",
    )
    inferred = ds.dataset(tmp_path / "h", format="parquet", partitioning="hive").schema.field("w").type
    assert pa.types.is_integer(inferred)
    report = losscli.evaluate(
        "mse", str(tmp_path / "h"), pred_col="pred", target_col="target", weight_col="w"
    )
    d = df["pred"].to_numpy() - df["target"].to_numpy()
    assert close(report.value, float(np.average(d * d, weights=df["w"].to_numpy())))
    from losscli.shards import expand

    assert {type(s.partition[0][1]) for s in expand(tmp_path / "h", "PREDS").shards} == {int}


def test_hive_string_keys_and_inference_match_pyarrow(tmp_path: Path) -> None:
    from losscli.shards import expand

    df = pd.DataFrame({"pred": [1.0, 2.0, 3.0, 4.0], "target": [0.0] * 4, "k": ["x 1", "2", "x/3", "4"]})
    df["n"] = [1, 2, 3, 2**40]  # 2**40 is no int32: pyarrow reads the key as a string
    ds.write_dataset(
        pa.Table.from_pandas(df, preserve_index=False),
        tmp_path / "h",
        format="parquet",
        partitioning=["k", "n"],
        partitioning_flavor="hive",
    )
    schema = ds.dataset(tmp_path / "h", format="parquet", partitioning="hive").schema
    parts = [dict(s.partition) for s in expand(tmp_path / "h", "P").shards]
    values = {key: [p[key] for p in parts] for key in ("k", "n")}
    for key in ("k", "n"):
        assert pa.types.is_string(schema.field(key).type)
        assert all(isinstance(v, str) for v in values[key])
    assert sorted(values["k"]) == sorted(["x 1", "2", "x/3", "4"])  # percent-encoding undone


def test_threads_and_serial_agree_exactly(tmp_path: Path) -> None:
    df = frame("huber")
    write_shards(df, tmp_path / "d", "parquet", shards=7)
    serial = losscli.evaluate("huber", str(tmp_path / "d"), threads=1, **options("huber"))
    threaded = losscli.evaluate("huber", str(tmp_path / "d"), threads=4, **options("huber"))
    same_report(threaded, serial)
    assert close(serial.value, reference("huber", df))


def test_saved_states_of_separate_jobs_merge_to_the_whole(tmp_path: Path) -> None:
    df = frame("mse")
    write_shards(df, tmp_path / "d", "parquet")
    half = sum(len(p) for p in np.array_split(np.arange(N), SHARDS)[:2])
    common = ["--pred-col", "pred", "--target-col", "target", "-f", "json"]
    a = run_cli("mse", "d/part-0000[01].parquet", *common, "--save-state", "a.state", cwd=tmp_path)
    b = run_cli(
        "mse",
        "d/part-0000[23].parquet",
        *common,
        "--row-offset",
        half,
        "--save-state",
        "b.state",
        cwd=tmp_path,
    )
    assert a.code == 0 and b.code == 0, a.stderr + b.stderr
    merged = run_cli("merge", "a.state", "b.state", "-f", "json", cwd=tmp_path)
    whole = run_cli("mse", "d", *common, cwd=tmp_path)
    assert merged.code == 0, merged.stderr
    m, w = merged.json(), whole.json()
    assert close(m["value"], reference("mse", df)) and m["n"] == N
    assert close(m["value"], w["value"]) and m["examples"] == w["examples"]
    assert "warnings" not in m


def _perplexity_shards(tmp_path: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(5)
    seqs = [-rng.exponential(2.0, rng.integers(3, 40)) for _ in range(30)]
    return np.concatenate(seqs), seqs


def test_perplexity_parquet_list_shards(tmp_path: Path) -> None:
    flat, seqs = _perplexity_shards(tmp_path)
    (tmp_path / "d").mkdir()
    pd.DataFrame({"lp": seqs}).to_parquet(tmp_path / "all.parquet", index=False)
    for i, part in enumerate(np.array_split(np.arange(len(seqs)), 4)):
        pd.DataFrame({"lp": [seqs[j] for j in part]}).to_parquet(tmp_path / "d" / f"{i}.parquet", index=False)
    one = losscli.evaluate("perplexity", logprobs=str(tmp_path / "all.parquet"), pred_col="lp")
    report = losscli.evaluate("perplexity", logprobs=str(tmp_path / "d"), pred_col="lp")
    assert close(report.value, float(np.exp(-flat.mean()))) and report.n == len(flat)
    same_report(report, one)
    assert report.sequences == one.sequences


def test_perplexity_flat_logprobs_shards_are_one_stream(tmp_path: Path) -> None:
    flat, _ = _perplexity_shards(tmp_path)
    (tmp_path / "d").mkdir()
    np.save(tmp_path / "all.npy", flat)
    for i, part in enumerate(np.array_split(flat, 5)):
        np.save(tmp_path / "d" / f"{i}.npy", part)
    one = losscli.evaluate("perplexity", logprobs=str(tmp_path / "all.npy"))
    report = losscli.evaluate("perplexity", logprobs=str(tmp_path / "d"))
    assert close(report.value, float(np.exp(-flat.mean())))
    same_report(report, one)


def test_refusals_name_what_is_wrong(tmp_path: Path) -> None:
    df = frame("mse")
    write_shards(df, tmp_path / "d", "parquet")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "_SUCCESS").write_text("")
    r = run_cli("mse", tmp_path / "empty")
    assert r.code == 3 and "holds no data file" in r.stderr and "empty" in r.stderr
    r = run_cli("mse", str(tmp_path / "nothing-*.parquet"))
    assert r.code == 3 and "nothing-*.parquet" in r.stderr

    mixed = tmp_path / "mixed"
    write_shards(df.iloc[:10], mixed, "parquet", shards=2)
    df.iloc[:5].to_csv(mixed / "extra.csv", index=False)
    r = run_cli("mse", mixed, "--pred-col", "pred", "--target-col", "target")
    assert r.code == 2 and "more than one format" in r.stderr and "extra.csv" in r.stderr

    write_shards(df, tmp_path / "t3", "parquet", shards=3)
    r = run_cli("mse", tmp_path / "d", tmp_path / "t3", "--pred-col", "pred", "--target-col", "target")
    assert r.code == 3 and "4 shards" in r.stderr and "3" in r.stderr

    (tmp_path / "t4").mkdir()
    for i in range(SHARDS):  # as many shards, one of them a row short
        rows = 300 if i != 2 else 299
        pd.DataFrame({"target": np.zeros(rows)}).to_parquet(tmp_path / "t4" / f"{i}.parquet", index=False)
    r = run_cli("mse", tmp_path / "d", tmp_path / "t4", "--pred-col", "pred", "--target-col", "target")
    assert r.code == 3 and "part-00002.parquet" in r.stderr and "299" in r.stderr and "300" in r.stderr


def test_a_bad_shard_is_named_with_its_own_row(tmp_path: Path) -> None:
    df = frame("mse")
    paths = write_shards(df, tmp_path / "d", "csv")
    lines = paths[2].read_text().splitlines()
    lines[1 + 17] = "oops," + lines[1 + 17].split(",")[1]
    paths[2].write_text("\n".join(lines) + "\n")
    r = run_cli("mse", tmp_path / "d", "--pred-col", "pred", "--target-col", "target")
    assert r.code == 3, r.stderr
    assert str(paths[2]) in r.stderr and "17" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_a_shard_with_other_columns_is_refused(tmp_path: Path) -> None:
    df = frame("mse")
    paths = write_shards(df, tmp_path / "d", "parquet")
    pd.read_parquet(paths[1]).rename(columns={"target": "y"}).assign(target=0.0).to_parquet(
        paths[1], index=False
    )
    r = run_cli("mse", tmp_path / "d", "--pred-col", "pred", "--target-col", "target")
    assert r.code == 3 and str(paths[1]) in r.stderr and "same columns" in r.stderr


def test_a_file_named_like_a_glob_is_a_file(tmp_path: Path) -> None:
    df = frame("mse")
    path = tmp_path / "odd[1].parquet"
    df.to_parquet(path, index=False)
    report = losscli.evaluate("mse", str(path), pred_col="pred", target_col="target")
    assert close(report.value, reference("mse", df))
    assert os.path.exists(path)
