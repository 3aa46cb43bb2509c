"""Loss quantiles (issue 14): the sketch against numpy's exact ``percentile(method="inverted_cdf")``,
over chunkings, threads, shards, groups and saved/merged states; JSON, TSV, table and histogram."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

import losscli
from losscli.state.evalstate import EvalState
from losscli.state.sketch import RELATIVE_ERROR, LossSketch

from conftest import run_cli

PS = (50, 90, 99)


def exact(losses: np.ndarray, weights: np.ndarray | None = None) -> list[float]:
    """The float64 reference: numpy's inverted_cdf percentiles, then the exact maximum (of the
    rows that weigh something: numpy's weighted percentile 100)."""
    qs = [float(np.percentile(losses, p, method="inverted_cdf", weights=weights)) for p in PS]
    top = losses.max() if weights is None else losses[weights > 0].max()
    return [*qs, float(top)]


def close(got: list[float], want: list[float], bound: float = RELATIVE_ERROR) -> bool:
    return all(abs(g - w) <= bound * abs(w) * (1 + 1e-12) for g, w in zip(got, want, strict=True))


def of(report: losscli.Report) -> list[float]:
    q = report.quantiles
    assert q is not None
    return [q["p50"], q["p90"], q["p99"], q["max"]]


def test_the_stated_bound_is_within_one_percent() -> None:
    assert RELATIVE_ERROR < 0.01


@pytest.mark.parametrize("seed", range(12))
def test_sketch_matches_numpy_inverted_cdf(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5000))
    spread = float(rng.uniform(0.01, 30))
    x = np.exp(rng.normal(0, spread, n))
    x[rng.random(n) < 0.05] = 0.0  # exact zeros (a perfect prediction)
    x[rng.random(n) < 0.01] = 1e-300  # tiny losses
    weights = rng.integers(0, 4, n).astype(np.float64) if seed % 2 else None
    if weights is not None and weights.sum() == 0:
        weights[0] = 1.0
    sketch = LossSketch()
    for a in range(0, n, 333):
        sketch.add(x[a : a + 333], None if weights is None else weights[a : a + 333])
    got = [*sketch.quantiles(), sketch.max]
    assert close(got, exact(x, weights)), (got, exact(x, weights))


def test_zero_negative_zero_and_negative_losses() -> None:
    x = np.array([-0.0, 0.0, 0.0, -2.5, 1e-300, 3.0, 7.0, -1e-5])
    sketch = LossSketch()
    sketch.add(x, None)
    got = [*sketch.quantiles(), sketch.max]
    assert close(got, exact(x))
    assert sketch.quantiles((40,))[0] == 0.0  # -0.0 and 0.0 alike: one bucket that reports 0


def test_merge_is_exact_and_order_free() -> None:
    rng = np.random.default_rng(3)
    parts = [rng.exponential(s, 1000) for s in (0.1, 10.0, 1000.0)]
    sk = []
    for p in parts:
        s = LossSketch()
        s.add(p, None)
        sk.append(s)
    a = sk[0].merge(sk[1]).merge(sk[2])
    b = sk[2].merge(sk[0].merge(sk[1]))
    whole = LossSketch()
    whole.add(np.concatenate(parts), None)
    for m in (a, b):
        assert m.quantiles() == whole.quantiles() and m.max == whole.max
        assert np.array_equal(m.counts[np.flatnonzero(m.counts)], whole.counts[np.flatnonzero(whole.counts)])


def _regression(tmp: Path, n: int = 30_000, seed: int = 0) -> tuple[Path, Path, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = rng.normal(size=n)
    p = t + rng.standard_t(2, size=n) * 0.3
    p[::97] = t[::97]  # some exact predictions: zero losses
    np.save(tmp / "p.npy", p)
    np.save(tmp / "t.npy", t)
    return tmp / "p.npy", tmp / "t.npy", (p - t) ** 2


def test_chunking_and_threads_do_not_change_the_quantiles(tmp_path: Path) -> None:
    p, t, losses = _regression(tmp_path)
    runs = [
        losscli.evaluate("mse", str(p), str(t), chunk_size=c, threads=k)
        for c, k in ((1000, 1), (4096, 2), (65536, 2))
    ]
    assert close(of(runs[0]), exact(losses))
    assert of(runs[0]) == of(runs[1]) == of(runs[2])


def test_weighted_quantiles(tmp_path: Path) -> None:
    p, t, losses = _regression(tmp_path, 5000, 1)
    w = np.random.default_rng(1).integers(0, 5, len(losses)).astype(np.float64)
    np.save(tmp_path / "w.npy", w)
    r = losscli.evaluate("mse", str(p), str(t), weights=str(tmp_path / "w.npy"))
    assert close(of(r), exact(losses, w))


def test_shards_and_saved_parts_merge_to_the_one_run_figures(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 40_000
    table = pa.table(
        {
            "pred": rng.normal(size=n),
            "target": rng.normal(size=n),
            "lang": rng.choice(["de", "en", "fr"], n),
        }
    )
    ds.write_dataset(table, tmp_path / "data", format="parquet", partitioning=["lang"],
                     partitioning_flavor="hive")  # fmt: skip
    one = losscli.evaluate("mse", table, pred_col="pred", target_col="target", group_by="lang")
    cols = {"pred_col": "pred", "target_col": "target"}
    sharded = losscli.evaluate("mse", str(tmp_path / "data"), **cols, group_by="lang")
    losses = (table["pred"].to_numpy() - table["target"].to_numpy()) ** 2
    assert close(of(one), exact(losses)) and of(one) == of(sharded)
    lang = table["lang"].to_numpy(zero_copy_only=False)
    assert sharded.groups is not None
    for g in sharded.groups:
        mine = losses[lang == g.key["lang"]]
        assert g.quantiles is not None
        got = [g.quantiles[k] for k in ("p50", "p90", "p99", "max")]
        assert close(got, exact(mine)), g.key
    # two parts saved and merged
    half = n // 2
    a, b = table.slice(0, half), table.slice(half)
    losscli.evaluate("mse", a, pred_col="pred", target_col="target", save_state=str(tmp_path / "a.state"))
    losscli.evaluate("mse", b, **cols, row_offset=half, save_state=str(tmp_path / "b.state"))
    merged = losscli.merge([str(tmp_path / "b.state"), str(tmp_path / "a.state")])
    assert of(merged) == of(one)


def test_perplexity_quantiles_are_per_token(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(64, 20)) * 3
    ids = rng.integers(0, 20, 64)
    np.save(tmp_path / "l.npy", logits)
    np.save(tmp_path / "i.npy", ids)
    r = losscli.evaluate("perplexity", str(tmp_path / "l.npy"), str(tmp_path / "i.npy"))
    m = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(axis=1)) + m[:, 0]
    nll = lse - logits[np.arange(64), ids]
    assert close(of(r), exact(nll))
    assert r.quantiles is not None and r.quantiles["of"] == "per-token loss (nats)"


def test_json_tsv_and_an_old_state(tmp_path: Path) -> None:
    p, t, losses = _regression(tmp_path, 2000)
    doc = run_cli("mse", p, t, "--format", "json").json()
    q = doc["quantiles"]
    assert close([q["p50"], q["p90"], q["p99"], q["max"]], exact(losses))
    assert q["relative_error"] == RELATIVE_ERROR
    tsv = run_cli("mse", p, t).stdout.splitlines()
    head, row = tsv[0].split("\t"), tsv[1].split("\t")
    assert head[-4:] == ["loss_p50", "loss_p90", "loss_p99", "loss_max"]
    assert [float(v) for v in row[-4:]] == [q["p50"], q["p90"], q["p99"], q["max"]]
    # a state saved before sketches existed: no quantiles, said so
    assert run_cli("mse", p, t, "--save-state", tmp_path / "s.state").code == 0
    state = EvalState.load(tmp_path / "s.state")
    state.tallies.sketch = None
    state.save(tmp_path / "old.state")
    out = run_cli("merge", tmp_path / "old.state", tmp_path / "s.state", "--format", "json")
    assert out.code == 0 and out.json()["quantiles"] is None
    assert "without loss quantiles" in out.stderr


def test_histogram_only_on_a_terminal(tmp_path: Path) -> None:
    from test_contracts import _on_a_terminal

    p, t, _ = _regression(tmp_path, 2000)
    shown = _on_a_terminal(["mse", p, t], 100)
    assert "Distribution of the per-example losses (log-spaced bins" in shown
    assert "█" in shown
    assert "Distribution" not in _on_a_terminal(["mse", p, t, "--no-plot"], 100)
    piped = run_cli("mse", p, t, "--format", "table")
    assert piped.code == 0 and "loss p99" in piped.stdout and "Distribution" not in piped.stdout


def test_histogram_bins_hold_every_example() -> None:
    from losscli.render.histogram import display_bins

    x = np.concatenate([np.zeros(5), np.geomspace(1e-6, 10, 200)])
    s = LossSketch()
    s.add(x, None)
    edges, mass, log, _ = display_bins(s)
    assert log and edges[0] == (0.0, 0.0) and mass[0] == 5 and mass.sum() == len(x)
    lin = LossSketch()
    lin.add(np.linspace(1.0, 2.0, 50), None)
    _, mass2, log2, _ = display_bins(lin)
    assert not log2 and mass2.sum() == 50
    assert math.isclose(json.loads(json.dumps(float(mass.sum()))), 205)


def _bins_of(x: np.ndarray) -> tuple[list[tuple[float, float]], np.ndarray, bool, int]:
    from losscli.render.histogram import display_bins

    s = LossSketch()
    s.add(x, None)
    return display_bins(s)


@pytest.mark.parametrize("value", [1.2039728043259361, 0.6931471805599453, 3e-5, 250.0])
@pytest.mark.parametrize("n", [1, 7])
def test_histogram_of_equal_losses_holds_the_value(value: float, n: int) -> None:
    """All losses equal (or one example): the one bin contains the value, label included."""
    edges, mass, _, _ = _bins_of(np.full(n, value))
    inside = [(lo, hi) for (lo, hi), m in zip(edges, mass, strict=True) if m]
    assert len(inside) == 1 and inside[0][0] <= value <= inside[0][1]
    lo, hi = inside[0]
    assert float(f"{lo:.4g}") <= value <= float(f"{hi:.4g}")  # as the terminal labels it


def test_histogram_zeros_and_a_tiny_outlier() -> None:
    """Linear bins give exact zeros a bin of their own; one 1e-200 beside losses in 1-2 goes to a
    tail bin, the rest spread over the bins (numpy's histogram of the same range as reference)."""
    x = np.concatenate([np.zeros(4), np.linspace(1.0, 2.0, 400)])
    edges, mass, log, aside = _bins_of(x)
    assert not log and aside == 1 and edges[0] == (0.0, 0.0) and mass[0] == 4
    y = np.concatenate([[1e-200], np.linspace(1.0, 2.0, 400)])
    edges, mass, log, aside = _bins_of(y)
    assert aside == 1 and mass[0] == 1 and edges[0][0] <= 1e-200 * 1.004 and mass.sum() == 401
    ref, _ = np.histogram(y[1:], bins=len(edges) - 1, range=(y[1:].min(), y[1:].max()))
    assert max(mass[1:]) <= ref.max() + 8  # spread like numpy's bins, not one bar
    assert not log
