"""--group-by: per-group figures against pandas/numpy groupby references written here."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.conftest import run_cli

import losscli

REL = 1e-12
LANGS = np.array(["de", "en", "fr", "ja"], dtype=object)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=1e-300)


def frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lang = LANGS[rng.integers(0, 4, n)].copy()
    lang[rng.random(n) < 0.1] = None  # a null key is its own group
    return pd.DataFrame(
        {
            "pred": rng.normal(size=n),
            "target": rng.normal(size=n),
            "w": rng.random(n),
            "lang": pd.Categorical(lang),  # dictionary-encoded in Parquet
            "fold": rng.integers(0, 3, n),
            "flag": rng.random(n) < 0.5,
        }
    )


def by_key(report: Any) -> dict[Any, Any]:
    assert report.groups is not None
    return {tuple(g.key.values()) if len(g.key) > 1 else next(iter(g.key.values())): g for g in report.groups}


def reference(df: pd.DataFrame, col: str, loss: np.ndarray, w: np.ndarray | None = None) -> dict[Any, float]:
    """Weighted mean loss per key with numpy (a null key collected as None)."""
    keys = df[col].astype(object).where(df[col].notna(), None).to_numpy()
    out = {}
    for k in {*keys.tolist()}:
        m = np.array([x == k if k is not None else x is None for x in keys])
        ww = np.ones(m.sum()) if w is None else w[m]
        out[k] = float(np.sum(loss[m] * ww) / np.sum(ww))
    return out


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("chunk", [None, 7])
def test_mse_per_group_with_companions_and_null(tmp_path: Path, fmt: str, chunk: int | None) -> None:
    df = frame()
    path = tmp_path / f"d.{fmt}"
    df.to_parquet(path) if fmt == "parquet" else df.to_csv(path, index=False)
    r = losscli.evaluate(
        "mse", str(path), pred_col="pred", target_col="target", group_by="lang", chunk_size=chunk
    )
    err = df.pred.to_numpy() - df.target.to_numpy()
    mse, mae = reference(df, "lang", err**2), reference(df, "lang", np.abs(err))
    got = by_key(r)
    assert set(got) == set(mse)
    assert [g.key["lang"] for g in r.groups] == ["de", "en", "fr", "ja", None]  # sorted, null last
    for k, g in got.items():
        assert close(g.value, mse[k]) and close(g.figure_or_none("mae"), mae[k])
        assert close(g.figure_or_none("rmse"), math.sqrt(mse[k]))
        n = int((df.lang.isna() if k is None else df.lang == k).sum())
        assert g.n == n


@pytest.mark.parametrize("metric", ["mae", "huber"])
def test_weighted_means_per_group(tmp_path: Path, metric: str) -> None:
    df = frame(seed=1)
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    r = losscli.evaluate(
        metric, str(path), pred_col="pred", target_col="target", weight_col="w", group_by="lang"
    )
    err = np.abs(df.pred.to_numpy() - df.target.to_numpy())
    loss = err if metric == "mae" else np.where(err <= 1.0, 0.5 * err**2, err - 0.5)
    ref = reference(df, "lang", loss, df.w.to_numpy())
    for k, g in by_key(r).items():
        assert close(g.value, ref[k])


def test_integer_boolean_and_two_column_keys(tmp_path: Path) -> None:
    df = frame(seed=2)
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    sq = (df.pred - df.target) ** 2
    r = losscli.evaluate("mse", str(path), pred_col="pred", target_col="target", group_by="fold,flag")
    ref = sq.groupby([df.fold, df.flag]).mean()
    got = by_key(r)
    assert set(got) == {(int(a), bool(b)) for a, b in ref.index}
    for (a, b), v in ref.items():
        g = got[(int(a), bool(b))]
        assert type(g.key["fold"]) is int and type(g.key["flag"]) is bool
        assert close(g.value, float(v))


def test_bce_and_ce_groups(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 2000
    p = rng.uniform(0.01, 0.99, n)
    y = (rng.random(n) < p).astype(np.int64)
    g = rng.integers(0, 5, n)
    pq.write_table(pa.table({"prob": p, "label": y, "g": g}), tmp_path / "b.parquet")
    r = losscli.evaluate(
        "bce", str(tmp_path / "b.parquet"), pred_col="prob", target_col="label", group_by="g"
    )
    bce = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    for k, row in by_key(r).items():
        assert close(row.value, float(bce[g == k].mean()))
        assert close(row.figure_or_none("bits"), float(bce[g == k].mean()) / math.log(2))
    z = rng.normal(size=(n, 4))
    c = rng.integers(0, 4, n)
    c[:50] = -100  # ignored rows count in their group
    cols = {f"s{j}": z[:, j] for j in range(4)}
    pq.write_table(pa.table({**cols, "label": c, "g": g}), tmp_path / "c.parquet")
    r = losscli.evaluate(
        "ce",
        str(tmp_path / "c.parquet"),
        pred_col="s0,s1,s2,s3",
        target_col="label",
        group_by="g",
        input="logits",
    )
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    keep = c != -100
    nll = -logp[np.arange(n), np.where(keep, c, 0)]
    hit = z.argmax(axis=1) == c
    for k, row in by_key(r).items():
        m = (g == k) & keep
        assert close(row.value, float(nll[m].mean()))
        assert close(row.figure_or_none("perplexity"), math.exp(float(nll[m].mean())))
        assert close(row.figure_or_none("accuracy"), float(hit[m].mean()))
        assert row.n == int(m.sum()) and row.ignored == int(((g == k) & ~keep).sum())


def test_perplexity_per_token_and_per_sequence_keys(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    lengths = rng.integers(1, 9, 40)
    lp = [list(-rng.exponential(size=int(k))) for k in lengths]
    seq_lang = LANGS[rng.integers(0, 3, 40)]
    pq.write_table(pa.table({"lp": lp, "lang": list(seq_lang)}), tmp_path / "seq.parquet")
    r = losscli.evaluate(
        "perplexity", None, logprobs=str(tmp_path / "seq.parquet"), pred_col="lp", group_by="lang"
    )
    for k, row in by_key(r).items():
        tokens = np.concatenate([np.asarray(lp[i]) for i in range(40) if seq_lang[i] == k])
        assert close(row.figure_or_none("cross_entropy"), float(-tokens.mean()))
        assert close(row.value, math.exp(float(-tokens.mean())))
        assert row.n == len(tokens)
    flat = np.concatenate([np.asarray(x) for x in lp])
    tok_lang = LANGS[rng.integers(0, 4, len(flat))]
    pq.write_table(pa.table({"lp": flat, "lang": list(tok_lang)}), tmp_path / "tok.parquet")
    r = losscli.evaluate(
        "perplexity", None, logprobs=str(tmp_path / "tok.parquet"), pred_col="lp", group_by="lang"
    )
    for k, row in by_key(r).items():
        assert close(row.figure_or_none("cross_entropy"), float(-flat[tok_lang == k].mean()))


def test_groups_file_beside_npy_predictions(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 500
    p, t = rng.normal(size=n), rng.normal(size=n)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "t.npy", t)
    split = np.array(["train", "test"], dtype=object)[rng.integers(0, 2, n)]
    pd.DataFrame({"split": split}).to_csv(tmp_path / "g.csv", index=False)
    r = losscli.evaluate(
        "mse", str(tmp_path / "p.npy"), str(tmp_path / "t.npy"), groups=str(tmp_path / "g.csv")
    )
    for k, row in by_key(r).items():
        assert close(row.value, float(((p - t) ** 2)[split == k].mean()))


def test_group_column_is_never_a_prediction_by_rule(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [0.1, 0.7, 0.2], "b": [0.9, 0.3, 0.8], "label": [1, 0, 1], "g": [5, 6, 5]})
    df.to_parquet(tmp_path / "s.parquet")
    r = losscli.evaluate("ce", str(tmp_path / "s.parquet"), target_col="label", group_by="g", input="probs")
    assert r.columns["preds"]["columns"] == ["a", "b"]
    assert sorted(by_key(r)) == [5, 6]


def test_cli_outputs_max_groups_and_gates(tmp_path: Path) -> None:
    df = frame(seed=6)
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    base = ["mse", path, "--pred-col", "pred", "--target-col", "target", "--group-by", "lang"]
    out = run_cli(*base, "-f", "json")
    assert out.code == 0, out.stderr
    doc = out.json()
    assert [g["key"] for g in doc["groups"]] == [{"lang": x} for x in ["de", "en", "fr", "ja", None]]
    assert set(doc["groups"][0]) >= {"value", "n", "rmse", "mae", "status"}
    tsv = run_cli(*base, "-f", "tsv")
    head, *rows = list(csv.reader(io.StringIO(tsv.stdout), delimiter="\t"))
    assert head[:4] == ["metric", "output", "value", "n"] and head[-2:] == ["group", "group.lang"]
    assert rows[0][-2] == "all" and json.loads(rows[-1][-2]) == {"lang": None} and len(rows) == 6
    too_many = run_cli(*base, "--max-groups", "3")
    assert too_many.code == 3 and "'lang'" in too_many.stderr and "3" in too_many.stderr
    assert too_many.stdout == ""
    sq = (df.pred - df.target) ** 2
    worst = sq.groupby(df.lang.astype(object).fillna("null")).mean()
    ranked = worst.sort_values()
    cut = float(ranked.iloc[-2] + ranked.iloc[-1]) / 2  # exactly one group is above it
    failing = run_cli(*base, "--fail-group-above", cut)
    assert failing.code == 1 and "1 group" in failing.stderr
    assert f"lang={worst.idxmax()}" in failing.stderr
    assert run_cli(*base, "--fail-group-above", float(worst.max()) * (1 + 1e-9)).code == 0
    assert run_cli(*base, "--fail-group-below", float(worst.min()) * (1 - 1e-9)).code == 0
    assert run_cli(*base, "--fail-group-below", float(worst.max()) * (1 - 1e-9)).code == 1
    no_groups = run_cli("mse", path, "--pred-col", "pred", "--target-col", "target", "--fail-group-above", 1)
    assert no_groups.code == 2


def test_save_state_and_merge_carry_groups(tmp_path: Path) -> None:
    df = frame(n=4000, seed=7)
    df.iloc[:1700].to_parquet(tmp_path / "a.parquet")
    df.iloc[1700:].reset_index(drop=True).to_parquet(tmp_path / "b.parquet")
    opts = ["--pred-col", "pred", "--target-col", "target", "--group-by", "lang"]
    assert run_cli("mse", tmp_path / "a.parquet", *opts, "--save-state", tmp_path / "a.state").code == 0
    b = run_cli(
        "mse", tmp_path / "b.parquet", *opts, "--row-offset", 1700, "--save-state", tmp_path / "b.state"
    )
    assert b.code == 0
    merged = run_cli("merge", tmp_path / "b.state", tmp_path / "a.state", "-f", "json").json()
    sq = ((df.pred - df.target) ** 2).to_numpy()
    ref = reference(df, "lang", sq)
    assert len(merged["groups"]) == 5
    for g in merged["groups"]:
        assert close(g["value"], ref[g["key"]["lang"]])
    plain_opts = ["--pred-col", "pred", "--target-col", "target", "--save-state", tmp_path / "p.state"]
    plain = run_cli("mse", tmp_path / "a.parquet", *plain_opts)
    assert plain.code == 0
    refused = run_cli("merge", tmp_path / "a.state", tmp_path / "p.state")
    assert refused.code == 3 and "group_by" in refused.stderr


def test_python_frames_and_arrays_of_keys(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    n = 300
    p, t = rng.normal(size=n), rng.normal(size=n)
    lang = np.array(["a", "b", None], dtype=object)[rng.integers(0, 3, n)]
    sq = (p - t) ** 2
    df = pd.DataFrame({"pred": p, "target": t, "lang": lang})
    from_frame = losscli.evaluate("mse", df, pred_col="pred", target_col="target", group_by=["lang"])
    from_array = losscli.evaluate("mse", p, t, groups=lang, chunk_size=11)
    np.save(tmp_path / "lang.npy", np.where(lang == None, "none", lang).astype(str))  # noqa: E711
    from_npy = losscli.evaluate("mse", p, t, groups=str(tmp_path / "lang.npy"))
    for r in (from_frame, from_array):
        for g in r.groups or []:
            k = next(iter(g.key.values()))
            mask = np.array([x is None if k is None else x == k for x in lang])
            assert close(g.value, float(sq[mask].mean())) and g.n == int(mask.sum())
    assert [g.key for g in from_npy.groups or []] == [{"lang": "a"}, {"lang": "b"}, {"lang": "none"}]
