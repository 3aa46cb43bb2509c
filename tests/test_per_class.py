"""ce --per-class (issue 14): per-class rows and confused pairs against a float64 numpy/pandas
reference, merged parts, class labels, and the 1,000-class limit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli


def _data(tmp: Path, n: int = 3000, c: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)) * 1.5
    y = rng.integers(0, c, n)
    logits[np.arange(n), y] += 1.0
    np.save(tmp / "z.npy", logits)
    np.save(tmp / "y.npy", y)
    return logits, y


def reference(logits: np.ndarray, y: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(len(y)), y])
    pred = p.argmax(axis=1)
    df = pd.DataFrame({"y": y, "loss": loss, "hit": (pred == y).astype(float), "pred": pred})
    per = df.groupby("y").agg(support=("loss", "size"), loss=("loss", "mean"), accuracy=("hit", "mean"))
    per["mean_probability"] = p.mean(axis=0)[per.index]
    pairs = df[df.pred != df.y].groupby(["y", "pred"]).size().rename("count").reset_index()
    pairs = pairs.sort_values(["count", "y", "pred"], ascending=[False, True, True])
    pairs["share"] = pairs["count"] / per.loc[pairs.y, "support"].to_numpy()
    return per, pairs


def test_per_class_against_pandas(tmp_path: Path) -> None:
    logits, y = _data(tmp_path)
    doc = run_cli("ce", tmp_path / "z.npy", tmp_path / "y.npy", "--per-class", "--chunk-size", "700",
                  "--format", "json").json()  # fmt: skip
    per, pairs = reference(logits, y)
    assert [r["class"] for r in doc["per_class"]] == list(per.index)
    for r, (_, ref) in zip(doc["per_class"], per.iterrows(), strict=True):
        assert r["support"] == ref.support
        for key in ("loss", "accuracy", "mean_probability"):
            assert r[key] == pytest.approx(ref[key], rel=1e-12)
    top = pairs.head(10)
    assert [(p["target"], p["predicted"], p["count"]) for p in doc["confusions"]] == list(
        zip(top.y, top.pred, top["count"], strict=True)
    )
    assert [p["share"] for p in doc["confusions"]] == pytest.approx(list(top.share), rel=1e-12)


def test_parts_merge_and_labels(tmp_path: Path) -> None:
    logits, y = _data(tmp_path, 2000, 3, 1)
    labels = np.array([10, 20, 30])[y]  # scikit-learn's classes_ that are not positions
    np.save(tmp_path / "y.npy", labels)
    np.save(tmp_path / "z1.npy", logits[:900])
    np.save(tmp_path / "y1.npy", labels[:900])
    np.save(tmp_path / "z2.npy", logits[900:])
    np.save(tmp_path / "y2.npy", labels[900:])
    opts = ["--per-class", "--classes", "10,20,30"]
    assert (
        run_cli("ce", tmp_path / "z1.npy", tmp_path / "y1.npy", *opts, "--save-state", tmp_path / "a.s").code
        == 0
    )
    b = run_cli("ce", tmp_path / "z2.npy", tmp_path / "y2.npy", *opts, "--row-offset", 900,
                "--save-state", tmp_path / "b.s")  # fmt: skip
    assert b.code == 0
    merged = run_cli("merge", tmp_path / "a.s", tmp_path / "b.s", "--format", "json").json()
    whole = run_cli("ce", tmp_path / "z.npy", tmp_path / "y.npy", *opts, "--format", "json").json()
    assert [r["class"] for r in merged["per_class"]] == [10, 20, 30]
    assert [r["support"] for r in merged["per_class"]] == [r["support"] for r in whole["per_class"]]
    assert merged["confusions"] == whole["confusions"]
    per, _ = reference(logits, y)
    got = [r["loss"] for r in merged["per_class"]]
    assert got == pytest.approx(list(per["loss"]), rel=1e-12)
    table = run_cli("ce", tmp_path / "z.npy", tmp_path / "y.npy", *opts, "--format", "table").stdout
    assert "Per class (3)" in table and "most confused pairs" in table


def test_more_than_1000_classes_is_a_usage_error(tmp_path: Path) -> None:
    np.save(tmp_path / "z.npy", np.zeros((4, 1001), dtype=np.float32))
    np.save(tmp_path / "y.npy", np.array([0, 1, 2, 3]))
    out = run_cli("ce", tmp_path / "z.npy", tmp_path / "y.npy", "--per-class")
    assert out.code == 2 and "1,000 classes" in out.stderr and "perplexity" in out.stderr
    assert out.stdout == ""
