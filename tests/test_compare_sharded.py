"""compare over directories and globs: every input sharded alike, paired shard by shard, gives
the comparison of the concatenated files (np.save shards, Parquet shards written by pandas,
shell-style globs); disagreeing shard counts or rows are exit 3 naming the file, a single file
beside sharded inputs exit 2."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from losscli.compare.api import compare
from test_compare import close, run_cli

CUTS = (0, 700, 1500, 2300)


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(23)
    n = CUTS[-1]
    y = rng.normal(size=n)
    arrays = {"y": y, "a": y + rng.normal(size=n), "b": y + 0.9 * rng.normal(size=n)}
    for name, v in arrays.items():
        np.save(tmp_path / f"{name}.npy", v)
        (tmp_path / name).mkdir()
        (tmp_path / f"{name}_pq").mkdir()
        for i, (lo, hi) in enumerate(itertools.pairwise(CUTS)):
            np.save(tmp_path / name / f"part-{i:05d}.npy", v[lo:hi])
            column = "y" if name == "y" else "pred"
            pd.DataFrame({column: v[lo:hi]}).to_parquet(tmp_path / f"{name}_pq" / f"part-{i:05d}.parquet")
    (tmp_path / "a" / "_SUCCESS").write_text("")  # what Spark leaves: skipped
    return tmp_path


def same(x, z, rel=1e-12):
    for a, b in zip(x.comparisons, z.comparisons, strict=True):
        for u, v in ((a.delta, b.delta), (a.low, b.low), (a.high, b.high), (a.p_value, b.p_value)):
            assert close(u, v, rel)
        assert a.n == b.n
    for a, b in zip(x.models, z.models, strict=True):
        assert close(a.value, b.value, rel) and a.n == b.n


@pytest.mark.parametrize("test", ["t", "bootstrap", "permutation"])
def test_directories_equal_the_concatenated_files(data, test):
    reps = None if test == "t" else 200
    whole = compare(
        "mse", str(data / "y.npy"), [str(data / "a.npy"), str(data / "b.npy")], test=test, resamples=reps
    )
    sharded = compare(
        "mse",
        str(data / "y"),
        [str(data / "a"), str(data / "b")],
        names=["a", "b"],
        test=test,
        resamples=reps,
    )
    same(whole, sharded, 1e-11)


def test_parquet_shards_and_globs(data):
    whole = compare("mae", str(data / "y.npy"), [str(data / "a.npy"), str(data / "b.npy")])
    globbed = compare(
        "mae",
        str(data / "y_pq" / "*.parquet"),
        [str(data / "a_pq" / "*.parquet"), str(data / "b_pq" / "*.parquet")],
        names=["a", "b"],
        target_col="y",
        pred_col="pred",
    )
    same(whole, globbed, 1e-11)


def test_perplexity_shards(tmp_path):
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 5, size=(30, 6))
    for d in ("ids", "la", "lb"):
        (tmp_path / d).mkdir()
    np.save(tmp_path / "ids.npy", ids)
    for i, (lo, hi) in enumerate(((0, 10), (10, 30))):
        np.save(tmp_path / "ids" / f"{i}.npy", ids[lo:hi])
    for k in ("la", "lb"):
        x = rng.normal(size=(30, 6, 5))
        np.save(tmp_path / f"{k}.npy", x)
        for i, (lo, hi) in enumerate(((0, 10), (10, 30))):
            np.save(tmp_path / k / f"{i}.npy", x[lo:hi])
    whole = compare(
        "perplexity",
        str(tmp_path / "ids.npy"),
        [str(tmp_path / "la.npy"), str(tmp_path / "lb.npy")],
        test="bootstrap",
        resamples=100,
    )
    sharded = compare(
        "perplexity",
        str(tmp_path / "ids"),
        [str(tmp_path / "la"), str(tmp_path / "lb")],
        names=["la", "lb"],
        test="bootstrap",
        resamples=100,
    )
    assert sharded.unit == "sequence" and sharded.comparisons[0].n == 30
    same(whole, sharded, 1e-11)


def test_refusals(data, capsys):
    y, a, b = str(data / "y"), str(data / "a"), str(data / "b")
    code, out, err = run_cli(["compare", "mse", y, a, str(data / "b.npy")], capsys)
    assert code == 2 and "sharded alike" in err and out == ""
    (data / "b" / "part-00003.npy").write_bytes((data / "b" / "part-00002.npy").read_bytes())
    code, out, err = run_cli(["compare", "mse", y, a, b], capsys)
    assert code == 3 and "4 shards" in err and str(data / "b") in err and out == ""
    (data / "b" / "part-00003.npy").unlink()
    np.save(data / "b" / "part-00001.npy", np.zeros(799))
    code, out, err = run_cli(["compare", "mse", y, a, b, "-f", "json"], capsys)
    assert code == 3 and "part-00001.npy" in err and out == ""
    code, out, _ = run_cli(
        ["compare", "mse", y, a, str(data / "a"), "--name", "x", "--name", "z", "-f", "json"], capsys
    )
    assert code == 0 and json.loads(out)["comparisons"][0]["delta"] == 0.0
