"""compare over hive-partitioned shards: a partition folder's key (``lang=de/``) in the TARGETS
shards' folders is a --group-by key, as in a plain sharded run; each group's paired t test and
Holm's adjustment match a pandas/numpy float64 reference written here."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from test_compare import close, holm_ref, paired_t_ref, run_cli


def _write(tmp_path, preds_layout: str):
    """Targets written by pandas with ``partition_cols=["lang"]`` (the key only in the folder
    names); each model's predictions one shard per targets shard, in the same path order, flat
    (``part-0.parquet``...) or in the same hive folders."""
    rng = np.random.default_rng(31)
    n = 900
    lang = rng.choice(["de", "en", "fr"], size=n)
    pd.DataFrame({"y": rng.normal(size=n), "lang": lang}).to_parquet(tmp_path / "y", partition_cols=["lang"])
    rows = []  # what each targets shard holds, read back in path order
    for i, key in enumerate(["de", "en", "fr"]):
        files = sorted((tmp_path / "y" / f"lang={key}").glob("*.parquet"))
        assert len(files) == 1
        y = pd.read_parquet(files[0])["y"].to_numpy(dtype=np.float64)
        noise = {"fr": 1.5, "de": 1.0, "en": 1.0}[key]
        a = y + rng.normal(size=len(y))
        b = y + noise * rng.normal(size=len(y))
        for name, v in (("a", a), ("b", b)):
            folder = tmp_path / name / (f"lang={key}" if preds_layout == "hive" else "")
            folder.mkdir(parents=True, exist_ok=True)
            pd.DataFrame({"pred": v}).to_parquet(folder / f"part-{i}.parquet")
        rows.append(pd.DataFrame({"lang": key, "y": y, "a": a, "b": b}))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("preds_layout", ["flat", "hive"])
def test_hive_key_of_targets_groups_a_comparison(tmp_path, capsys, preds_layout):
    frame = _write(tmp_path, preds_layout)
    code, out, err = run_cli(
        [
            "compare",
            "mse",
            str(tmp_path / "y"),
            str(tmp_path / "a"),
            str(tmp_path / "b"),
            "--group-by",
            "lang",
            "--format",
            "json",
        ],
        capsys,
    )
    assert code == 0, err
    got = json.loads(out)
    frame["d"] = (frame.b - frame.y) ** 2 - (frame.a - frame.y) ** 2
    overall = paired_t_ref(frame.d.to_numpy())
    assert close(got["comparisons"][0]["delta"], overall[0])
    groups = got["groups"]
    assert [g["key"] for g in groups] == [{"lang": k} for k in ("de", "en", "fr")]
    raw = []
    for g in groups:
        d = frame.d[frame.lang == g["key"]["lang"]].to_numpy()
        mean, low, high, p = paired_t_ref(d)
        c = g["comparisons"][0]
        assert c["n"] == len(d)
        assert close(c["delta"], mean)
        assert math.isclose(c["ci"][0], low, rel_tol=1e-7) and math.isclose(c["ci"][1], high, rel_tol=1e-7)
        assert math.isclose(c["p_value"], p, rel_tol=1e-7)
        mse_a = float(np.mean((frame.a - frame.y)[frame.lang == g["key"]["lang"]] ** 2))
        assert close(g["models"][0]["value"], mse_a)
        raw.append(p)
    for g, adj in zip(groups, holm_ref(raw), strict=True):
        assert math.isclose(g["comparisons"][0]["p_adjusted"], adj, rel_tol=1e-7)
    assert groups[2]["comparisons"][0]["verdict"] == "worse"


def test_plain_metric_with_hive_preds_and_targets(tmp_path, capsys):
    """Both inputs in the same hive folders (a batch job mirroring its input's layout): the
    partition key is on both sides as an index (compared, never read as a number), and
    --group-by takes it; per-group mse against pandas."""
    frame = _write(tmp_path, "hive")
    code, out, err = run_cli(
        ["mse", str(tmp_path / "a"), str(tmp_path / "y"), "--group-by", "lang", "--format", "json"], capsys
    )
    assert code == 0, err
    got = json.loads(out)
    ref = ((frame.a - frame.y) ** 2).groupby(frame.lang).agg(["mean", "count"])
    assert close(got["value"], float(np.mean((frame.a - frame.y) ** 2)))
    for g in got["groups"]:
        key = g["key"]["lang"]
        assert close(g["value"], float(ref.loc[key, "mean"])) and g["n"] == ref.loc[key, "count"]
