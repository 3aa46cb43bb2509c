"""losscli compare: paired deltas, intervals and p-values against float64 references written
here (numpy, pandas), independent of chunking and threads; gates and refusals on the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from losscli.cli import main
from losscli.compare.api import compare
from losscli.stats.poisson import poisson_weights


def t_sf_ref(t: float, df: float) -> float:
    """P(T > t), t >= 0, by Simpson integration of Student's t density (not the core's betainc)."""
    logc = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    # substitute t = tan(u): a finite interval [atan(t), pi/2)
    u = np.linspace(math.atan(t), math.pi / 2, 200_001)[:-1]
    x = np.tan(u)
    f = np.exp(logc - (df + 1) / 2 * np.log1p(x * x / df)) / np.cos(u) ** 2
    h = u[1] - u[0]
    return float(h / 3 * (f[0] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum() + f[-1]))


def t_ppf_ref(p: float, df: float) -> float:
    lo, hi = 0.0, 50.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_sf_ref(mid, df) > 1 - p else (lo, mid)
    return (lo + hi) / 2


def holm_ref(p: list[float]) -> list[float]:
    m = len(p)
    order = np.argsort(p)
    out = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


@pytest.fixture
def three_models(tmp_path):
    rng = np.random.default_rng(7)
    n = 3000
    y = rng.normal(size=n)
    preds = {"a": y + rng.normal(size=n), "b": y + 0.93 * rng.normal(size=n), "c": y + rng.normal(size=n)}
    pd.DataFrame({"y": y}).to_csv(tmp_path / "y.csv", index=False)
    for k, v in preds.items():
        pd.DataFrame({"pred": v}).to_csv(tmp_path / f"{k}.csv", index=False)
        np.save(tmp_path / f"{k}.npy", v)
    np.save(tmp_path / "y.npy", y)
    return tmp_path, y, preds


def paired_t_ref(d: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    n = len(d)
    mean = float(np.mean(d))
    se = float(np.std(d, ddof=1)) / math.sqrt(n)
    p = 2 * t_sf_ref(abs(mean) / se, n - 1)
    half = t_ppf_ref(0.5 + level / 2, n - 1) * se
    return mean, mean - half, mean + half, p


def close(a: float, b: float, rel: float = 1e-12) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-15)


def test_t_test_matches_numpy_reference_and_holm(three_models, capsys):
    d, y, preds = three_models
    files = [str(d / f"{k}.csv") for k in "abc"]
    report = compare("mse", str(d / "y.csv"), files)
    raw = []
    for c, name in zip(report.comparisons, "bc", strict=True):
        diff = (preds[name] - y) ** 2 - (preds["a"] - y) ** 2
        mean, lo, hi, p = paired_t_ref(diff)
        assert close(c.delta, mean)
        assert math.isclose(c.low, lo, rel_tol=1e-9) and math.isclose(c.high, hi, rel_tol=1e-9)
        assert math.isclose(c.p_value, p, rel_tol=1e-7)
        assert c.n == len(y)
        raw.append(c.p_value)
    for c, adj in zip(report.comparisons, holm_ref(raw), strict=True):
        assert math.isclose(c.p_adjusted, adj, rel_tol=1e-12)
        assert c.verdict == (
            "no significant difference" if adj >= 0.05 else ("worse" if c.delta > 0 else "better")
        )
    assert report.adjustment == "holm"
    for m, name in zip(report.models, "abc", strict=True):
        assert close(m.value, float(np.mean((preds[name] - y) ** 2)))


def test_chunks_threads_and_formats_agree(three_models):
    d, _y, _preds = three_models
    files = [str(d / f"{k}.npy") for k in "abc"]
    base = compare("mse", str(d / "y.npy"), files, test="bootstrap", resamples=200)
    for ext, opts in (("csv", {"chunk_size": 7, "threads": 1}), ("npy", {"chunk_size": 101, "threads": 2})):
        other = compare(
            "mse",
            str(d / f"y.{ext}"),
            [str(d / f"{k}.{ext}") for k in "abc"],
            test="bootstrap",
            resamples=200,
            **opts,
        )
        for a, b in zip(base.comparisons, other.comparisons, strict=True):
            for x, z in ((a.delta, b.delta), (a.low, b.low), (a.high, b.high), (a.p_value, b.p_value)):
                assert close(x, z)


def test_bootstrap_matches_poisson_reference(three_models):
    d, y, preds = three_models
    files = [str(d / f"{k}.npy") for k in "ab"]
    report = compare("mae", str(d / "y.npy"), files, test="bootstrap", resamples=300, seed=11, chunk_size=500)
    diff = np.abs(preds["b"] - y) - np.abs(preds["a"] - y)
    w = poisson_weights(11, np.arange(len(y), dtype=np.uint64), 300).astype(np.float64)
    reps = (w @ diff) / w.sum(axis=1)
    lo, hi = np.quantile(reps, [0.025, 0.975])
    c = report.comparisons[0]
    assert close(c.low, float(lo), 1e-10) and close(c.high, float(hi), 1e-10)
    below, above = int((reps <= 0).sum()), int((reps >= 0).sum())
    assert c.p_value == min(1.0, 2 * (min(below, above) + 1) / 301)


def test_permutation_p_close_to_exact_enumeration(tmp_path):
    rng = np.random.default_rng(3)
    y = rng.normal(size=12)
    a, b = y + rng.normal(size=12), y + 0.5 * rng.normal(size=12)
    for name, v in (("y", y), ("a", a), ("b", b)):
        np.save(tmp_path / f"{name}.npy", v)
    report = compare(
        "mse",
        str(tmp_path / "y.npy"),
        [str(tmp_path / "a.npy"), str(tmp_path / "b.npy")],
        test="permutation",
        resamples=20000,
    )
    diff = (b - y) ** 2 - (a - y) ** 2
    signs = ((np.arange(4096)[:, None] >> np.arange(12)) & 1) * 2 - 1
    flipped = np.abs(signs @ diff)
    exact = float(np.mean(flipped >= abs(diff.sum()) - 1e-12))
    p = report.comparisons[0].p_value
    assert abs(p - exact) < 4 * math.sqrt(exact * (1 - exact) / 20000) + 1e-4


def test_weighted_delta_uses_effective_sample_size(three_models):
    d, y, preds = three_models
    w = np.random.default_rng(1).uniform(0.1, 3, size=len(y))
    np.save(d / "w.npy", w)
    report = compare("mse", str(d / "y.npy"), [str(d / "a.npy"), str(d / "b.npy")], weights=str(d / "w.npy"))
    diff = (preds["b"] - y) ** 2 - (preds["a"] - y) ** 2
    mean = float(np.sum(w * diff) / np.sum(w))
    n_eff = np.sum(w) ** 2 / np.sum(w * w)
    var = float(np.sum(w * (diff - mean) ** 2) / np.sum(w))
    se = math.sqrt(var / (n_eff - 1))
    c = report.comparisons[0]
    assert close(c.delta, mean)
    assert math.isclose(c.p_value, 2 * t_sf_ref(abs(mean) / se, n_eff - 1), rel_tol=1e-7)


def test_group_by_reads_keys_from_targets(tmp_path):
    rng = np.random.default_rng(5)
    n = 1200
    lang = rng.choice(["de", "en", "fr"], size=n)
    y = rng.normal(size=n)
    a = y + rng.normal(size=n)
    b = y + np.where(lang == "fr", 1.6, 1.0) * rng.normal(size=n)
    pd.DataFrame({"y": y, "lang": lang}).to_parquet(tmp_path / "y.parquet")
    pd.DataFrame({"pred": a}).to_parquet(tmp_path / "a.parquet")
    pd.DataFrame({"pred": b}).to_parquet(tmp_path / "b.parquet")
    report = compare(
        "mse",
        str(tmp_path / "y.parquet"),
        [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")],
        group_by="lang",
        target_col="y",
    )
    frame = pd.DataFrame({"lang": lang, "d": (b - y) ** 2 - (a - y) ** 2})
    ref = frame.groupby("lang")["d"].agg(["mean", "count"])
    assert report.groups is not None and [g.key["lang"] for g in report.groups] == ["de", "en", "fr"]
    raw = []
    for g in report.groups:
        c = g.comparisons[0]
        assert close(c.delta, float(ref.loc[g.key["lang"], "mean"]))
        raw.append(paired_t_ref(frame.d[frame.lang == g.key["lang"]].to_numpy())[3])
    for g, adj in zip(report.groups, holm_ref(raw), strict=True):
        assert math.isclose(g.comparisons[0].p_adjusted, adj, rel_tol=1e-7)
    assert report.groups[2].comparisons[0].verdict == "worse"


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_cli_gates(three_models, capsys):
    d, _y, _preds = three_models
    t, a, b = str(d / "y.npy"), str(d / "a.npy"), str(d / "b.npy")
    code, out, err = run_cli(["compare", "mse", t, b, a, "--fail-if-worse", "-f", "json"], capsys)
    doc = json.loads(out)
    assert doc["comparisons"][0]["verdict"] == "worse" and code == 1 and "a is worse than b" in err
    code, out, err = run_cli(["compare", "mse", t, a, b, "--fail-if-worse"], capsys)
    assert code == 0
    code, out, err = run_cli(
        ["compare", "mse", t, b, a, "--fail-if-worse", "--margin", "1.0", "-f", "json"], capsys
    )
    assert code == 0 and json.loads(out)["comparisons"][0]["noninferior"] is True
    code, out, err = run_cli(["compare", "mse", t, b, a, "--fail-if-worse", "--margin", "0.01"], capsys)
    assert code == 1 and "not shown within 0.01" in err
    code, out, err = run_cli(["compare", "mse", t, a, b, "--fail-if", "p_value < 0.05"], capsys)
    assert code == 1 and "fired" in err
    code, out, err = run_cli(["compare", "mse", t, a, b, "--fail-if", "pvalue < 0.05"], capsys)
    assert code == 2 and "p_value" in err and out == ""


def test_cli_row_count_mismatch_names_the_file(three_models, capsys):
    d, _y, preds = three_models
    np.save(d / "short.npy", preds["b"][:-1])
    code, out, err = run_cli(
        ["compare", "mse", str(d / "y.npy"), str(d / "a.npy"), str(d / "short.npy")], capsys
    )
    assert code == 3 and "short.npy has 2999 rows" in err and out == ""


def test_fail_if_on_a_metric_command(three_models, capsys):
    d, y, preds = three_models
    value = float(np.mean((preds["a"] - y) ** 2))
    args = ["mse", str(d / "a.npy"), str(d / "y.npy")]
    assert run_cli([*args, "--fail-if", f"value > {value * 0.99}"], capsys)[0] == 1
    assert run_cli([*args, "--fail-if", f"value > {value * 1.01}", "--fail-if", "n < 10"], capsys)[0] == 0
    code, out, _err = run_cli([*args, "--fail-if", "rmse >= 0", "--fail-if", "mae ~ 3"], capsys)
    assert code == 2 and out == ""


def test_saved_parts_merge_to_the_whole(tmp_path, capsys):
    """Two parts (the second with --row-offset), each saved, merge to the whole run's figures,
    per group too, for the bootstrap (whose weights follow each example's row)."""
    rng = np.random.default_rng(8)
    n = 900
    y = rng.normal(size=n)
    lang = rng.choice(["de", "en"], size=n)
    a, b = y + rng.normal(size=n), y + 0.9 * rng.normal(size=n)
    cut = 400
    for name, rows in (("all", slice(0, n)), ("p1", slice(0, cut)), ("p2", slice(cut, n))):
        pd.DataFrame({"y": y[rows], "lang": lang[rows]}).to_csv(tmp_path / f"y_{name}.csv", index=False)
        pd.DataFrame({"pred": a[rows]}).to_csv(tmp_path / f"a_{name}.csv", index=False)
        pd.DataFrame({"pred": b[rows]}).to_csv(tmp_path / f"b_{name}.csv", index=False)
    common = [
        "--name",
        "A",
        "--name",
        "B",
        "--test",
        "bootstrap",
        "--resamples",
        "150",
        "--group-by",
        "lang",
        "--target-col",
        "y",
        "-f",
        "json",
    ]

    def files(part: str) -> list[str]:
        return [str(tmp_path / f"{m}_{part}.csv") for m in ("y", "a", "b")]

    code, whole, _ = run_cli(["compare", "mse", *files("all"), *common], capsys)
    assert code == 0
    run_cli(["compare", "mse", *files("p1"), *common, "--save-state", str(tmp_path / "1.state")], capsys)
    run_cli(
        [
            "compare",
            "mse",
            *files("p2"),
            *common,
            "--row-offset",
            str(cut),
            "--save-state",
            str(tmp_path / "2.state"),
        ],
        capsys,
    )
    code, merged, _ = run_cli(
        ["merge", str(tmp_path / "2.state"), str(tmp_path / "1.state"), "-f", "json"], capsys
    )
    assert code == 0
    w, m = json.loads(whole), json.loads(merged)
    for x, z in zip(
        w["comparisons"] + [c for g in w["groups"] for c in g["comparisons"]],
        m["comparisons"] + [c for g in m["groups"] for c in g["comparisons"]],
        strict=True,
    ):
        for key in ("delta", "p_value", "p_adjusted"):
            assert close(x[key], z[key])
        assert close(x["ci"][0], z["ci"][0]) and close(x["ci"][1], z["ci"][1])
    assert close(w["comparisons"][0]["delta"], float(np.mean((b - y) ** 2 - (a - y) ** 2)))
    code, _, _ = run_cli(
        [
            "compare",
            "mse",
            *files("p2"),
            "--name",
            "A",
            "--name",
            "B",
            "--target-col",
            "y",
            "--save-state",
            str(tmp_path / "3.state"),
            "--row-offset",
            str(cut),
        ],
        capsys,
    )
    assert code == 0
    code, out, err = run_cli(["merge", str(tmp_path / "1.state"), str(tmp_path / "3.state")], capsys)
    assert code == 3 and "another comparison" in err and out == ""


def test_ce_ignore_index_and_nan_skip_pair_the_rows_every_model_scored(tmp_path):
    """ce with --ignore-index pairs the kept rows (the same for every model: they come from the
    targets); under --nan skip a row one model cannot score leaves the paired test, with a warning."""
    rng = np.random.default_rng(4)
    n, k = 500, 4
    labels = rng.integers(0, k, n)
    labels[::7] = -100
    la, lb = rng.normal(size=(n, k)), rng.normal(size=(n, k))
    lb[np.arange(n), np.where(labels >= 0, labels, 0)] += 0.5
    for name, v in (("y", labels), ("a", la), ("b", lb)):
        np.save(tmp_path / f"{name}.npy", v)

    def ce(logits: np.ndarray) -> np.ndarray:
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -logp[np.arange(n), np.where(labels >= 0, labels, 0)]

    kept = labels >= 0
    report = compare(
        "ce", str(tmp_path / "y.npy"), [str(tmp_path / "a.npy"), str(tmp_path / "b.npy")], chunk_size=64
    )
    d = (ce(lb) - ce(la))[kept]
    c = report.comparisons[0]
    assert c.n == int(kept.sum()) and close(c.delta, float(d.mean()), 1e-11)
    assert math.isclose(c.p_value, paired_t_ref(d)[3], rel_tol=1e-6)
    lb_nan = lb.copy()
    lb_nan[3, 1] = np.nan
    np.save(tmp_path / "b_nan.npy", lb_nan)
    report = compare(
        "ce",
        str(tmp_path / "y.npy"),
        [str(tmp_path / "a.npy"), str(tmp_path / "b_nan.npy")],
        nan="skip",
        chunk_size=64,
    )
    both = kept.copy()
    both[3] = False
    d = (ce(lb) - ce(la))[both]
    c = report.comparisons[0]
    assert c.n == int(both.sum()) and close(c.delta, float(d.mean()), 1e-11)
    assert any("scored for some models but not others" in w for w in report.warnings)
