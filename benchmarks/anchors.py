"""The scripts people would otherwise write, one per (workload, tool), run as separate processes.

    python benchmarks/anchors.py W1 numpy-chunked DATA_DIR

Each prints the figures it computed (so the harness can check they agree with losscli's), and
nothing else. They are deliberately the straightforward, idiomatic versions.
"""

from __future__ import annotations

import sys
from pathlib import Path


def numpy_whole_regression(d: Path) -> list[float]:
    import numpy as np

    p, y = np.load(d / "w1_pred.npy"), np.load(d / "w1_target.npy")
    diff = p - y
    return [float(np.mean(diff * diff)), float(np.mean(np.abs(diff)))]


def numpy_chunked_regression(d: Path) -> list[float]:
    import numpy as np

    p = np.load(d / "w1_pred.npy", mmap_mode="r")
    y = np.load(d / "w1_target.npy", mmap_mode="r")
    sq = ab = 0.0
    step = 1 << 20
    for i in range(0, len(p), step):
        diff = p[i : i + step] - y[i : i + step]
        ab += float(np.abs(diff).sum())
        sq += float(np.dot(diff, diff))
    return [sq / len(p), ab / len(p)]


def torch_regression(d: Path) -> list[float]:
    import numpy as np
    import torch
    import torch.nn.functional as F

    p = torch.from_numpy(np.load(d / "w1_pred.npy"))
    y = torch.from_numpy(np.load(d / "w1_target.npy"))
    return [F.mse_loss(p, y).item(), F.l1_loss(p, y).item()]


def sklearn_regression(d: Path) -> list[float]:
    import numpy as np
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    p, y = np.load(d / "w1_pred.npy"), np.load(d / "w1_target.npy")
    return [float(mean_squared_error(y, p)), float(mean_absolute_error(y, p))]


def duckdb_table(path: Path) -> list[float]:
    import duckdb

    src = (
        f"read_csv('{path}', header=true, columns={{'pred': 'DOUBLE', 'target': 'DOUBLE'}})"
        if path.suffix == ".csv"
        else f"read_parquet('{path}')"
    )
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    row = con.execute(
        f"SELECT avg((pred - target) * (pred - target)), avg(abs(pred - target)) FROM {src}"
    ).fetchone()
    assert row is not None
    return [float(row[0]), float(row[1])]


def polars_table(path: Path) -> list[float]:
    import polars as pl

    lf = (
        pl.scan_csv(path, schema={"pred": pl.Float64, "target": pl.Float64})
        if path.suffix == ".csv"
        else pl.scan_parquet(str(path))
    )
    d = pl.col("pred") - pl.col("target")
    out = lf.select((d * d).mean().alias("mse"), d.abs().mean().alias("mae")).collect()
    return [float(out["mse"][0]), float(out["mae"][0])]


def dask_dataframe(folder: Path) -> list[float]:
    """dask.dataframe on a LocalCluster of 2 single-threaded worker processes started here (its
    start-up is part of the time, as losscli --engine dask --workers 2 starts its own)."""
    import logging

    import dask
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster),
    ):
        df = dd.read_parquet(str(folder / "*.parquet"), columns=["pred", "target"])
        d = df.pred - df.target
        mse, mae = dask.compute((d**2).mean(), d.abs().mean())
    return [float(mse), float(mae)]


def pandas_csv(path: Path) -> list[float]:
    import pandas as pd

    df = pd.read_csv(path, dtype={"pred": "float64", "target": "float64"}, engine="c")
    diff = df["pred"] - df["target"]
    return [float((diff * diff).mean()), float(diff.abs().mean())]


def pyarrow_read(path: Path) -> list[float]:
    import numpy as np
    import pyarrow as pa

    if path.suffix == ".csv":
        import pyarrow.csv as pacsv

        t = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(column_types={"pred": pa.float64(), "target": pa.float64()}),
        )
    else:
        import pyarrow.parquet as pq

        t = pq.read_table(path)
    diff = t["pred"].to_numpy() - t["target"].to_numpy()
    return [float(np.mean(diff * diff)), float(np.mean(np.abs(diff)))]


def pyarrow_stream_csv(path: Path) -> list[float]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    sq = ab = 0.0
    n = 0
    opts = pacsv.ConvertOptions(column_types={"pred": pa.float64(), "target": pa.float64()})
    for batch in pacsv.open_csv(path, convert_options=opts):
        diff = batch.column(0).to_numpy() - batch.column(1).to_numpy()
        sq += float(np.dot(diff, diff))
        ab += float(np.abs(diff).sum())
        n += len(diff)
    return [sq / n, ab / n]


def numpy_whole_bce(d: Path) -> list[float]:
    import numpy as np

    p, y = np.load(d / "w4_prob.npy"), np.load(d / "w4_label.npy")
    return [float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))]


def numpy_chunked_bce(d: Path) -> list[float]:
    import numpy as np

    p = np.load(d / "w4_prob.npy", mmap_mode="r")
    y = np.load(d / "w4_label.npy", mmap_mode="r")
    total = 0.0
    step = 1 << 20
    for i in range(0, len(p), step):
        pc, yc = p[i : i + step], y[i : i + step]
        total -= float(np.sum(yc * np.log(pc) + (1 - yc) * np.log1p(-pc), dtype=np.float64))
    return [total / len(p)]


def torch_bce(d: Path) -> list[float]:
    import numpy as np
    import torch
    import torch.nn.functional as F

    p = torch.from_numpy(np.load(d / "w4_prob.npy"))
    y = torch.from_numpy(np.load(d / "w4_label.npy"))
    return [F.binary_cross_entropy(p, y).item()]


def sklearn_bce(d: Path) -> list[float]:
    import numpy as np
    from sklearn.metrics import log_loss

    p, y = np.load(d / "w4_prob.npy"), np.load(d / "w4_label.npy")
    return [float(log_loss(y, p, labels=[0, 1]))]


def numpy_whole_ppl(d: Path) -> list[float]:
    import numpy as np

    z = np.load(d / "w5_logits.npy")
    t = np.load(d / "w5_ids.npy")
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
    ce = float(np.mean(lse - z[np.arange(len(t)), t]))
    return [float(np.exp(ce)), ce]


def numpy_chunked_ppl(d: Path) -> list[float]:
    import numpy as np

    z = np.load(d / "w5_logits.npy", mmap_mode="r")
    t = np.load(d / "w5_ids.npy")
    total = 0.0
    step = 256
    for i in range(0, len(t), step):
        zc = z[i : i + step]
        m = zc.max(axis=1, keepdims=True)
        lse = np.log(np.exp(zc - m).sum(axis=1)) + m[:, 0]
        total += float(np.sum(lse - zc[np.arange(len(zc)), t[i : i + step]], dtype=np.float64))
    ce = total / len(t)
    return [float(np.exp(ce)), ce]


def torch_ppl(d: Path) -> list[float]:
    import numpy as np
    import torch
    import torch.nn.functional as F

    z = torch.from_numpy(np.load(d / "w5_logits.npy"))
    t = torch.from_numpy(np.load(d / "w5_ids.npy"))
    ce = F.cross_entropy(z, t).item()
    return [float(np.exp(ce)), ce]


def polars_group_by(path: Path) -> list[float]:
    """W6G: MSE and MAE per lang, Polars' group_by over W6's shards (sorted by key)."""
    import polars as pl

    d = pl.col("pred") - pl.col("target")
    out = (
        pl.scan_parquet(path)
        .group_by("lang")
        .agg((d * d).mean().alias("mse"), d.abs().mean().alias("mae"))
        .sort("lang")
        .collect()
    )
    return [float(v) for pair in zip(out["mse"], out["mae"], strict=True) for v in pair]


ANCHORS = {
    ("W6G", "polars"): lambda d: polars_group_by(d / "w6" / "*.parquet"),
    ("W1", "numpy-whole"): lambda d: numpy_whole_regression(d),
    ("W1", "numpy-chunked"): lambda d: numpy_chunked_regression(d),
    ("W1", "torch"): lambda d: torch_regression(d),
    ("W1", "sklearn"): lambda d: sklearn_regression(d),
    ("W2", "duckdb"): lambda d: duckdb_table(d / "w2.csv"),
    ("W2", "polars"): lambda d: polars_table(d / "w2.csv"),
    ("W2", "pandas"): lambda d: pandas_csv(d / "w2.csv"),
    ("W2", "pyarrow-read"): lambda d: pyarrow_read(d / "w2.csv"),
    ("W2", "pyarrow-stream"): lambda d: pyarrow_stream_csv(d / "w2.csv"),
    ("W3", "duckdb"): lambda d: duckdb_table(d / "w3.parquet"),
    ("W3", "polars"): lambda d: polars_table(d / "w3.parquet"),
    ("W3", "pyarrow-read"): lambda d: pyarrow_read(d / "w3.parquet"),
    ("W4", "numpy-whole"): lambda d: numpy_whole_bce(d),
    ("W4", "numpy-chunked"): lambda d: numpy_chunked_bce(d),
    ("W4", "torch"): lambda d: torch_bce(d),
    ("W4", "sklearn"): lambda d: sklearn_bce(d),
    ("W5", "numpy-whole"): lambda d: numpy_whole_ppl(d),
    ("W5", "numpy-chunked"): lambda d: numpy_chunked_ppl(d),
    ("W5", "torch"): lambda d: torch_ppl(d),
    # W6: the engines people point at a directory of shards, given the glob
    ("W6", "polars"): lambda d: polars_table(d / "w6" / "*.parquet"),
    ("W6", "duckdb"): lambda d: duckdb_table(d / "w6" / "*.parquet"),
    # W6D: the same shards on a local Dask cluster of 2 single-threaded worker processes
    ("W6D", "dask-dataframe"): lambda d: dask_dataframe(d / "w6"),
}


if __name__ == "__main__":  # LocalCluster's worker processes re-import this module (spawn)
    workload, tool, data_dir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    print(" ".join(repr(v) for v in ANCHORS[(workload, tool)](data_dir)))
