"""--ci per group (--group-by), clustered by a column (--cluster-col), and over shards, where an
example's bootstrap identity is (file, row within file).

References are written here with pandas and numpy: per-group t intervals, the cluster-robust
ratio variance from per-cluster sums (pandas groupby), and dense Poisson bootstraps whose weight
matrix is ``poisson_weights`` of the identities the README defines (the weight function itself
is checked against its specification in test_stats_core.py). The t quantile is losscli's
``t_ppf``, checked there against mpmath.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.conftest import run_cli

from losscli.stats import example_ids, file_key, key_identity, poisson_weights, t_ppf

COLS = ("--pred-col", "pred", "--target-col", "target")
B = 200


def t_interval(x: np.ndarray, level: float = 0.95) -> list[float]:
    half = t_ppf(0.5 + level / 2, len(x) - 1) * np.std(x, ddof=1) / math.sqrt(len(x))
    return [x.mean() - half, x.mean() + half]


def boot_interval(w: np.ndarray, y: np.ndarray, n: np.ndarray, level: float = 0.95) -> list[float]:
    """Percentile interval of the replicate ratios (W @ y) / (W @ n), W: (B, items)."""
    reps = (w @ y) / (w @ n)
    lo, hi = np.quantile(reps, [0.5 - level / 2, 0.5 + level / 2])
    return [float(lo), float(hi)]


def cluster_interval(y: np.ndarray, n: np.ndarray, level: float = 0.95) -> list[float]:
    g, r = len(y), y.sum() / n.sum()
    se = math.sqrt(g / (g - 1) * np.sum((y - r * n) ** 2)) / n.sum()
    half = t_ppf(0.5 + level / 2, g - 1) * se
    return [r - half, r + half]


def frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    patient = rng.integers(0, 150, n)
    effect = rng.normal(size=150)[patient]  # errors correlated within a patient
    target = rng.normal(size=n)
    return pd.DataFrame(
        {
            "pred": target + effect + rng.standard_t(5, size=n),
            "target": target,
            "g": rng.choice(["a", "b", "c"], n),
            "patient": patient,
        }
    )


def js(*args: Any) -> dict[str, Any]:
    r = run_cli(*args, "-f", "json")
    assert r.code == 0, r.stderr
    return r.json()  # type: ignore[no-any-return]


def close(a: Any, b: Any) -> None:
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-12, atol=0)


def test_each_group_gets_its_t_interval_in_json_and_tsv(tmp_path: Path) -> None:
    df = frame()
    df.to_parquet(tmp_path / "d.parquet", index=False)
    out = js("mse", tmp_path / "d.parquet", *COLS, "--ci", "--group-by", "g")
    sq = (df["pred"] - df["target"]).to_numpy() ** 2
    ab = np.sqrt(sq)
    for row, (key, part) in zip(out["groups"], df.groupby("g"), strict=True):
        assert row["key"] == {"g": key}
        d = (part["pred"] - part["target"]).to_numpy()
        close(row["ci"]["value"], t_interval(d * d))
        close(row["ci"]["mae"], t_interval(np.abs(d)))
        close(row["ci"]["rmse"], np.sqrt(t_interval(d * d)))
    close(out["ci"]["value"], t_interval(sq))
    close(out["ci"]["mae"], t_interval(ab))
    tsv = run_cli("mse", tmp_path / "d.parquet", *COLS, "--ci", "--group-by", "g", "-f", "tsv").stdout
    table = pd.read_csv(pd.io.common.StringIO(tsv), sep="\t", keep_default_na=False)
    groups = table[table["group"] != "all"]
    close(groups[["value_low", "value_high"]].to_numpy(float), [g["ci"]["value"] for g in out["groups"]])


def test_group_bootstrap_is_a_dense_numpy_bootstrap_per_group(tmp_path: Path) -> None:
    df = frame(1200)
    df.to_parquet(tmp_path / "d.parquet", index=False)
    out = js("mae", tmp_path / "d.parquet", *COLS, "--bootstrap", str(B), "--group-by", "g")
    w = poisson_weights(13, example_ids(0, len(df)), B).astype(float)
    for row, (_, part) in zip(out["groups"], df.groupby("g"), strict=True):
        idx = part.index.to_numpy()
        x = np.abs(part["pred"] - part["target"]).to_numpy()
        close(row["ci"]["value"], boot_interval(w[:, idx], x, np.ones(len(x))))
        assert row["ci"]["method"].startswith("bootstrap") and row["ci"]["seed"] == 13


@pytest.mark.parametrize("extra", [(), ("--bootstrap", str(B)), ("--cluster-col", "patient")])
def test_group_intervals_merge_over_chunks_threads_and_parts(tmp_path: Path, extra: tuple[str, ...]) -> None:
    df = frame()
    df.to_parquet(tmp_path / "d.parquet", index=False)
    cut = 1234
    df.iloc[:cut].to_parquet(tmp_path / "a.parquet", index=False)
    df.iloc[cut:].to_parquet(tmp_path / "b.parquet", index=False)
    args = ("mse", *COLS, "--ci", "--group-by", "g", *extra)
    whole = js(args[0], tmp_path / "d.parquet", *args[1:])
    for more in (("--chunk-size", "97"), ("--chunk-size", "1000", "--threads", "2")):
        other = js(args[0], tmp_path / "d.parquet", *args[1:], *more)
        for a, b in zip([whole, *whole["groups"]], [other, *other["groups"]], strict=True):
            close(a["ci"]["value"], b["ci"]["value"])
    saved = []
    for name, offset in (("a", 0), ("b", cut)):
        state = tmp_path / f"{name}.state"
        part = tmp_path / f"{name}.parquet"
        r = run_cli(args[0], part, *args[1:], "--row-offset", offset, "--save-state", state)
        assert r.code == 0, r.stderr
        saved.append(state)
    merged = js("merge", *saved)
    for a, b in zip([whole, *whole["groups"]], [merged, *merged["groups"]], strict=True):
        close(a["ci"]["value"], b["ci"]["value"])
        assert a["ci"]["method"] == b["ci"]["method"]


def test_cluster_col_is_the_cluster_robust_ratio_interval(tmp_path: Path) -> None:
    df = frame()
    df.to_parquet(tmp_path / "d.parquet", index=False)
    df.to_csv(tmp_path / "d.csv", index=False)
    df["sq"] = (df["pred"] - df["target"]) ** 2
    df["one"] = 1.0
    sums = df.groupby("patient")[["sq", "one"]].sum()
    ref = cluster_interval(sums["sq"].to_numpy(), sums["one"].to_numpy())
    for path in ("d.parquet", "d.csv"):
        out = js("mse", tmp_path / path, *COLS, "--ci", "--cluster-col", "patient")
        close(out["ci"]["value"], ref)
        assert "clustered by patient" in out["ci"]["method"] and "150 clusters" in out["ci"]["method"]
    naive = t_interval(df["sq"].to_numpy())  # correlated errors: the clustered interval is wider
    assert ref[1] - ref[0] > 1.3 * (naive[1] - naive[0])
    out = js("mse", tmp_path / "d.parquet", *COLS, "--ci", "--cluster-col", "patient", "--group-by", "g")
    for row, (_, part) in zip(out["groups"], df.groupby("g"), strict=True):
        s = part.groupby("patient")[["sq", "one"]].sum()
        close(row["ci"]["value"], cluster_interval(s["sq"].to_numpy(), s["one"].to_numpy()))


def test_cluster_bootstrap_weighs_each_cluster_once(tmp_path: Path) -> None:
    df = frame()
    df.to_parquet(tmp_path / "d.parquet", index=False)
    df.to_csv(tmp_path / "d.csv", index=False)
    df["sq"] = (df["pred"] - df["target"]) ** 2
    df["one"] = 1.0
    sums = df.groupby("patient")[["sq", "one"]].sum()
    ids = np.array([key_identity(str(v)) for v in sums.index], dtype=np.uint64)
    w = poisson_weights(13, ids, B).astype(float)
    ref = boot_interval(w, sums["sq"].to_numpy(), sums["one"].to_numpy())
    for path in ("d.parquet", "d.csv"):  # 7 in Parquet and "7" in a CSV are one cluster identity
        out = js("mse", tmp_path / path, *COLS, "--bootstrap", str(B), "--cluster-col", "patient")
        close(out["ci"]["value"], ref)


def test_clusters_spanning_parts_and_shards_merge_by_key(tmp_path: Path) -> None:
    df = frame()
    df.to_parquet(tmp_path / "d.parquet", index=False)
    (tmp_path / "shards").mkdir()
    for i in range(4):  # every patient is in several shards
        df.iloc[i * 750 : (i + 1) * 750].to_parquet(tmp_path / "shards" / f"part-{i}.parquet", index=False)
    for extra in (("--ci",), ("--bootstrap", str(B))):
        args = (*COLS, *extra, "--cluster-col", "patient")
        whole = js("mse", tmp_path / "d.parquet", *args)
        sharded = js("mse", tmp_path / "shards", *args)
        close(whole["ci"]["value"], sharded["ci"]["value"])


def test_more_clusters_than_max_clusters_is_exit_3(tmp_path: Path) -> None:
    df = frame()
    df.to_parquet(tmp_path / "d.parquet", index=False)
    few = ("--ci", "--cluster-col", "patient", "--max-clusters", "100")
    r = run_cli("mse", tmp_path / "d.parquet", *COLS, *few)
    assert r.code == 3 and "--max-clusters" in r.stderr and "Traceback" not in r.stderr and r.stdout == ""
    (tmp_path / "s").mkdir()
    for i in range(2):  # 80 patients in each shard, 150 in all
        part = df[(df["patient"] < 80) if i == 0 else (df["patient"] >= 70)]
        part.to_parquet(tmp_path / "s" / f"p{i}.parquet", index=False)
    r = run_cli("mse", tmp_path / "s", *COLS, *few)
    assert r.code == 3 and "across the shards" in r.stderr and "--max-clusters" in r.stderr
    r = run_cli("mse", tmp_path / "d.parquet", *COLS, "--cluster-col", "patient")
    assert r.code == 2 and "--ci" in r.stderr


def _shards(folder: Path, df: pd.DataFrame, sizes: list[int]) -> list[tuple[str, int, int]]:
    """Parquet shards of ``df`` (pandas, as batch inference writes them); (name, start, rows)."""
    folder.mkdir()
    out, start = [], 0
    for i, n in enumerate(sizes):
        name = f"part-{i:05d}.parquet"
        df.iloc[start : start + n].to_parquet(folder / name, index=False)
        out.append((name, start, n))
        start += n
    return out


def _file_row_reference(df: pd.DataFrame, files: list[tuple[str, int, int]]) -> list[float]:
    ids = np.concatenate([example_ids(0, n, file_key(name)) for name, _, n in files])
    w = poisson_weights(13, ids, B).astype(float)
    x = ((df["pred"] - df["target"]) ** 2).to_numpy()
    return boot_interval(w, x, np.ones(len(x)))


def test_sharded_bootstrap_identity_is_file_and_row(tmp_path: Path) -> None:
    df = frame(2500)
    files = _shards(tmp_path / "five", df, [400, 700, 300, 600, 500])
    ref = _file_row_reference(df, files)
    runs = [("--chunk-size", "97"), ("--chunk-size", "1000", "--threads", "2"), ("--threads", "1")]
    for more in runs:
        out = js("mse", tmp_path / "five", *COLS, "--bootstrap", str(B), *more)
        close(out["ci"]["value"], ref)
    glob = js("mse", str(tmp_path / "five" / "*.parquet"), *COLS, "--bootstrap", str(B))
    close(glob["ci"]["value"], ref)  # the glob's folder is the root: the same file names
    three = _shards(tmp_path / "three", df, [800, 900, 800])
    other = js("mse", tmp_path / "three", *COLS, "--bootstrap", str(B))
    close(other["ci"]["value"], _file_row_reference(df, three))
    low, high = ref
    assert other["ci"]["value"] != ref  # resharded: other weights ...
    assert abs(other["ci"]["value"][0] - low) < 0.3 * (high - low)  # ... within sampling error
    assert abs(other["ci"]["value"][1] - high) < 0.3 * (high - low)


def test_a_file_beside_shards_is_named_by_its_own_rows(tmp_path: Path) -> None:
    df = frame(1500)
    df[["pred"]].to_parquet(tmp_path / "preds.parquet", index=False)
    (tmp_path / "t").mkdir()
    for i in range(3):
        df[["target"]].iloc[i * 500 : (i + 1) * 500].to_parquet(tmp_path / "t" / f"t{i}.parquet", index=False)
    out = js("mse", tmp_path / "preds.parquet", tmp_path / "t", *COLS, "--bootstrap", str(B))
    close(out["ci"]["value"], _file_row_reference(df, [("preds.parquet", 0, len(df))]))


def test_perplexity_groups_are_clustered_by_sequence(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    b, t, v = 45, 20, 9
    z = rng.normal(size=(b, t, v)) * 2
    ids = rng.integers(0, v, size=(b, t))
    ids[rng.random((b, t)) < 0.2] = -100
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "g.npy", np.repeat(np.arange(b) % 3, t))  # a key per token, one per sequence
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    keep = ids != -100
    nll = -np.take_along_axis(logp, np.where(keep, ids, 0)[..., None], -1)[..., 0] * keep
    y, n = nll.sum(1), keep.sum(1).astype(float)
    for chunk in ("7", "1000"):
        inputs = ("--logits", tmp_path / "z.npy", "--targets", tmp_path / "ids.npy")
        out = js("perplexity", *inputs, "--groups", tmp_path / "g.npy", "--ci", "--chunk-size", chunk)
        for k, row in enumerate(out["groups"]):
            sel = np.arange(b) % 3 == k
            ce = cluster_interval(y[sel], n[sel])
            close(row["ci"]["cross_entropy"], ce)
            close(row["ci"]["value"], np.exp(ce))
            assert "clustered by sequence" in row["ci"]["method"] and "15 clusters" in row["ci"]["method"]
