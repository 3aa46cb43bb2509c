"""--per-example on sharded input: one file, rows in input order, each with its shard (``file``;
``shard`` in .npy) and its row within that shard (``file_row``), the loss of a float64 numpy
reference; and a .npy per-example file of any column count is readable by numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli

SIZES = (4, 1, 6)


def _shards(tmp_path: Path, fmt: str) -> tuple[Path, list[Path], pd.DataFrame]:
    rng = np.random.default_rng(9)
    folder = tmp_path / "preds"
    folder.mkdir()
    paths, frames = [], []
    for k, n in enumerate(SIZES):
        df = pd.DataFrame({"pred": rng.normal(size=n), "target": rng.normal(size=n)})
        path = folder / f"part-{k:05d}.{fmt}"
        if fmt == "parquet":
            df.to_parquet(path, index=False)
        else:
            df.to_csv(path, index=False)
        paths.append(path)
        frames.append(df)
    return folder, paths, pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("out", ["csv", "parquet", "npy"])
def test_per_example_rows_name_their_shard_and_row_within_it(tmp_path: Path, fmt: str, out: str) -> None:
    folder, paths, whole = _shards(tmp_path, fmt)
    target = tmp_path / f"per.{out}"
    result = run_cli("mse", folder, "--pred-col", "pred", "--target-col", "target", "--per-example", target)
    assert result.code == 0, result.stderr
    shard_of = np.repeat(np.arange(len(SIZES)), SIZES)
    file_row = np.concatenate([np.arange(n) for n in SIZES])
    want_loss = (whole["pred"].to_numpy() - whole["target"].to_numpy()) ** 2
    if out == "npy":
        rec = np.load(target)
        assert rec.dtype.names == ("row", "shard", "file_row", "loss")
        got_shard = rec["shard"]
        rows, rows_in, loss = rec["row"], rec["file_row"], rec["loss"]
    else:
        got = pd.read_csv(target) if out == "csv" else pd.read_parquet(target)
        assert list(got.columns) == ["row", "file", "file_row", "loss"]
        names = [str(p) for p in paths]
        got_shard = np.array([names.index(str(f)) for f in got["file"]])
        rows, rows_in, loss = got["row"].to_numpy(), got["file_row"].to_numpy(), got["loss"].to_numpy()
    np.testing.assert_array_equal(rows, np.arange(len(whole)))
    np.testing.assert_array_equal(got_shard, shard_of)
    np.testing.assert_array_equal(rows_in, file_row)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-15, atol=0)


def test_a_failed_sharded_run_leaves_no_per_example_file(tmp_path: Path) -> None:
    folder, paths, _ = _shards(tmp_path, "csv")
    paths[2].write_text("pred,target\n1.0,2.0\nnope,1.0\n")
    target = tmp_path / "per.csv"
    result = run_cli("mse", folder, "--pred-col", "pred", "--target-col", "target", "--per-example", target)
    assert result.code == 3 and "part-00002.csv" in result.stderr
    assert not target.exists() and list(tmp_path.iterdir()) == [folder]


def test_a_per_example_npy_with_sequence_columns_reads_back(tmp_path: Path) -> None:
    """row, sequence, position, token_position and loss: a header longer than 128 bytes once
    held a placeholder row count that the final count outgrew, corrupting the file."""
    rng = np.random.default_rng(1)
    lp = -rng.exponential(size=(3, 40))
    np.save(tmp_path / "lp.npy", lp)
    target = tmp_path / "per.npy"
    result = run_cli("perplexity", "--logprobs", tmp_path / "lp.npy", "--per-example", target)
    assert result.code == 0, result.stderr
    rec = np.load(target)
    assert rec.dtype.names == ("row", "sequence", "position", "token_position", "loss")
    np.testing.assert_array_equal(rec["row"], np.arange(lp.size))
    np.testing.assert_array_equal(rec["sequence"], np.repeat(np.arange(3), 40))
    np.testing.assert_array_equal(rec["position"], np.tile(np.arange(40), 3))
    np.testing.assert_array_equal(rec["loss"], -lp.ravel())


def test_text_size_of_sharded_perplexity_is_the_whole_texts_counted_once(tmp_path: Path) -> None:
    import math
    import re

    rng = np.random.default_rng(2)
    folder = tmp_path / "lp"
    folder.mkdir()
    scored: list[float] = []
    for k in range(3):
        seqs = [list(-rng.exponential(size=int(rng.integers(2, 6)))) for _ in range(3)]
        scored += [v for s in seqs for v in s]
        pd.DataFrame({"logprobs": seqs}).to_parquet(folder / f"p{k}.parquet")
    text = "Hello world, this is the held-out text.\n"
    (tmp_path / "text.txt").write_text(text)
    n_bytes, n_words = len(text.encode()), len(re.split(r"\s+", text))
    nll = -math.fsum(scored)
    result = run_cli(
        "perplexity", "--logprobs", folder, "--pred-col", "logprobs", "--text", tmp_path / "text.txt",
        "--save-state", tmp_path / "all.state", "-f", "json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["bits_per_byte"] == pytest.approx(nll / (n_bytes * math.log(2)), rel=1e-12)
    assert data["word_perplexity"] == pytest.approx(math.exp(nll / n_words), rel=1e-12)
    merged = run_cli("merge", tmp_path / "all.state", "-f", "json").json()
    assert merged["bits_per_byte"] == pytest.approx(data["bits_per_byte"], rel=1e-12)


def test_the_table_names_each_worst_examples_shard_and_row_in_it(tmp_path: Path) -> None:
    folder, paths, whole = _shards(tmp_path, "parquet")
    result = run_cli(
        "mse", folder, "--pred-col", "pred", "--target-col", "target", "--top", "3", "-f", "table",
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.code == 0, result.stderr
    losses = (whole["pred"].to_numpy() - whole["target"].to_numpy()) ** 2
    starts = np.concatenate([[0], np.cumsum(SIZES)])
    table = result.stdout.split("xample")[-1]  # every example is listed when there are 20 or fewer
    for row in np.argsort(-losses)[:3]:
        shard = int(np.searchsorted(starts, row, side="right")) - 1
        line = next(x for x in table.splitlines() if x.strip("│ ").startswith(f"{row} "))
        assert paths[shard].name in line and f" {row - starts[shard]} " in line, line


@pytest.mark.parametrize(
    ("shard_fmt", "single_fmt"), [("csv", "csv"), ("csv", "parquet"), ("parquet", "parquet")]
)
def test_one_file_beside_shards_is_their_continuation(
    tmp_path: Path, shard_fmt: str, single_fmt: str
) -> None:
    """CSV shards are counted by reading them through; a Parquet file of many row groups is
    read from the group holding each shard's first row (ranges not on group boundaries)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(6)
    folder = tmp_path / "preds"
    folder.mkdir()
    sizes = (250, 130, 410, 95)
    preds = []
    for k, n in enumerate(sizes):
        df = pd.DataFrame({"pred": rng.normal(size=n)})
        if shard_fmt == "csv":
            df.to_csv(folder / f"part-{k}.csv", index=False)
        else:
            df.to_parquet(folder / f"part-{k}.parquet", index=False)
        preds.append(df["pred"].to_numpy())
    pred = np.concatenate(preds)
    target = rng.normal(size=len(pred))
    single = tmp_path / f"targets.{single_fmt}"
    if single_fmt == "csv":
        pd.DataFrame({"target": target}).to_csv(single, index=False)
    else:
        pq.write_table(pa.table({"target": target}), single, row_group_size=100)
    result = run_cli("mse", folder, single, "-f", "json")
    assert result.code == 0, result.stderr
    d = pred - target
    assert result.json()["value"] == pytest.approx(float(np.mean(d * d)), rel=1e-12)
    assert result.json()["mae"] == pytest.approx(float(np.mean(np.abs(d))), rel=1e-12)
    assert result.json()["n"] == len(pred)
