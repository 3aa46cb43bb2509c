"""Issue 14 with issue 13: the HTML report's intervals (--ci), compare's --report, the Brier
score's interval, --fail-if's new keys, and state versions across the two.

References are numpy formulas written here: t intervals with quantiles tabulated from
scipy.stats.t.ppf, a dense numpy Poisson bootstrap over the stats core's weights (their
definition is tested in test_stats_core), and compare's paired t reference (test_compare:
Simpson-integrated t density). Pages are checked by parsing their HTML tables and, for compare,
in headless Chromium as test_html_report does.
"""

from __future__ import annotations

import json
import math
import subprocess
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import losscli
from losscli.state.files import load_state
from test_compare import holm_ref, paired_t_ref
from test_html_report import CHROMIUM, Balanced, png_pixels

from conftest import run_cli

T_975 = {  # scipy.stats.t.ppf(0.975, df)
    399: 1.965927295920882,
    499: 1.9647293909876886,
    599: 1.9639322489452784,
    999: 1.9623414611334493,
}


class Tables(HTMLParser):
    """Every <table id=...> as a list of rows of cell texts (header row first), and the text
    of every element with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.text: dict[str, str] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._ids: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ident = dict(attrs).get("id")
        if tag == "table" and ident:
            self._table = ident
            self.tables[ident] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []
        if ident and tag not in ("table", "svg", "g", "path", "figure"):
            self._ids.append((tag, ident))
            self.text[ident] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        if self._ids and self._ids[-1][0] == tag:
            self._ids.pop()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        for _, ident in self._ids:
            self.text[ident] += data


def parse(page: Path) -> Tables:
    t = Tables()
    t.feed(page.read_text(encoding="utf-8"))
    t.close()
    b = Balanced()
    b.feed(page.read_text(encoding="utf-8"))
    b.close()
    assert b.errors == [] and b.stack == [], b.errors
    return t


def shown(cell: str) -> list[float]:
    """The numbers of a cell ("0.48 - 0.51", "-0.27 - -0.11", "1,000")."""
    return [float(x.replace(",", "")) for x in cell.split(" - ")]


def t_interval(x: np.ndarray) -> list[float]:
    half = T_975[len(x) - 1] * np.std(x, ddof=1) / math.sqrt(len(x))
    return [float(x.mean() - half), float(x.mean() + half)]


def by_first(table: list[list[str]]) -> dict[str, dict[str, str]]:
    head = table[0]
    return {row[0]: dict(zip(head, row, strict=True)) for row in table[1:]}


@pytest.fixture
def binary(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(14)
    n = 1000
    p = rng.beta(0.9, 0.9, n)
    y = (rng.random(n) < p**1.3).astype(float)
    g = np.where(np.arange(n) < 600, "a", "b")
    pd.DataFrame({"pred": p, "target": y, "g": g}).to_csv(tmp_path / "d.csv", index=False)
    return tmp_path / "d.csv", p, y, g


def test_report_headline_and_group_tables_show_the_intervals(binary, tmp_path: Path) -> None:
    path, p, y, g = binary
    out = run_cli(
        "bce", path, "--ci", "--calibration", "--group-by", "g", "--report", tmp_path / "r.html", "-f", "json"
    )
    assert out.code == 0, out.stderr
    bce = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    brier = (p - y) ** 2
    doc = out.json()
    np.testing.assert_allclose(doc["ci"]["value"], t_interval(bce), rtol=1e-12)
    np.testing.assert_allclose(doc["ci"]["brier"], t_interval(brier), rtol=1e-12)
    page = parse(tmp_path / "r.html")
    summary = by_first(page.tables["summary"])
    column = "95% interval (t)"
    assert column in page.tables["summary"][0]
    np.testing.assert_allclose(shown(summary["BCE"][column]), t_interval(bce), rtol=1e-6)
    np.testing.assert_allclose(shown(summary["Brier"][column]), t_interval(brier), rtol=1e-6)
    assert summary["ECE"][column] == "" and summary["examples"][column] == ""  # not means: none
    assert shown(page.text["headline-interval"].split("interval ")[1]) == shown(summary["BCE"][column])
    assert page.text["interval-method"].startswith("intervals: t: mean")
    groups = by_first(page.tables["groups"])
    for key in ("a", "b"):
        sel = g == key
        np.testing.assert_allclose(shown(groups[key][column]), t_interval(bce[sel]), rtol=1e-6)
        assert groups[key]["n"] == f"{sel.sum():,}"
        row = next(r for r in doc["groups"] if r["key"]["g"] == key)
        np.testing.assert_allclose(row["ci"]["brier"], t_interval(brier[sel]), rtol=1e-12)
    plain = run_cli("bce", path, "--report", tmp_path / "plain.html", "-f", "json")
    assert plain.code == 0 and "interval" not in " ".join(parse(tmp_path / "plain.html").tables["summary"][0])


def test_brier_interval_bootstrap_ce_and_any_chunking(binary) -> None:
    _, p, y, _ = binary
    from losscli.stats.poisson import poisson_weights

    rep = losscli.evaluate("bce", p, y, calibration=True, bootstrap=300, seed=77)
    w = poisson_weights(77, np.arange(len(p), dtype=np.uint64), 300).astype(float)
    reps = (w @ ((p - y) ** 2)) / w.sum(axis=1)
    np.testing.assert_allclose(rep.ci["brier"], np.quantile(reps, [0.025, 0.975]), rtol=1e-12)
    for chunk, threads in ((37, 1), (250, 2)):
        again = losscli.evaluate("bce", p, y, calibration=True, ci=True, chunk_size=chunk, threads=threads)
        np.testing.assert_allclose(again.ci["brier"], t_interval((p - y) ** 2), rtol=1e-12)
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(500, 4)) * 2
    labels = rng.integers(0, 4, 500)
    soft = np.exp(logits - logits.max(axis=1, keepdims=True))
    soft /= soft.sum(axis=1, keepdims=True)
    multi = ((soft - np.eye(4)[labels]) ** 2).sum(axis=1)
    ce = losscli.evaluate("ce", logits, labels, calibration=True, ci=True, chunk_size=64)
    np.testing.assert_allclose(ce.ci["brier"], t_interval(multi), rtol=1e-12)
    assert math.isclose(ce.figure_or_none("brier"), float(multi.mean()), rel_tol=1e-12)


def test_fail_if_knows_quantiles_calibration_and_interval_ends(binary) -> None:
    path, p, y, _ = binary
    bce = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    high = t_interval((p - y) ** 2)[1]
    base = ("bce", path, "--ci", "--calibration", "-f", "value")
    fired = run_cli(*base, "--fail-if", f"brier_high > {high * (1 - 1e-9)!r}", "--fail-if", "p50 < 0")
    assert fired.code == 1 and "brier_high is" in fired.stderr and "p50" not in fired.stderr
    held = run_cli(*base, "--fail-if", f"brier_high > {high * (1 + 1e-9)!r}")
    assert held.code == 0, held.stderr
    top = run_cli(
        *base, "--fail-if", f"max >= {float(bce.max())!r}", "--fail-if", f"p99 > {float(bce.max())!r}"
    )
    assert top.code == 1 and "max is" in top.stderr and "p99" not in top.stderr  # max is exact
    conf, bins = p, np.minimum((p * 15).astype(int), 14)  # torchmetrics' bins; no p on an edge here
    gaps = [abs(conf[bins == b].mean() - y[bins == b].mean()) * (bins == b).mean() for b in np.unique(bins)]
    ece = float(np.sum(gaps))
    near = run_cli(
        *base, "--fail-if", f"ece > {ece * (1 - 1e-9)!r}", "--fail-if", f"ece > {ece * (1 + 1e-9)!r}"
    )
    assert near.code == 1 and near.stderr.count("fired") == 1
    bad = run_cli(*base, "--fail-if", "nope > 1")
    keys = bad.stderr.split("its keys: ")[1]
    assert bad.code == 2 and all(k in keys for k in ("p50", "p90", "p99", "max", "ece", "mce", "brier_low"))


@pytest.fixture
def models(tmp_path: Path) -> tuple[Path, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(7)
    n = 1000
    y = rng.normal(size=n)
    preds = {"a": y + rng.normal(size=n), "b": y + 0.85 * rng.normal(size=n), "c": y + rng.normal(size=n)}
    lang = np.where(np.arange(n) % 5 < 3, "de", "en")
    pd.DataFrame({"y": y, "lang": lang}).to_parquet(tmp_path / "y.parquet")
    for k, v in preds.items():
        pd.DataFrame({"pred": v}).to_parquet(tmp_path / f"{k}.parquet")
    return tmp_path, y, preds, lang


def _compare_page(d: Path, *extra: str) -> tuple[Path, dict]:
    files = [d / f"{k}.parquet" for k in "abc"]
    out = run_cli(
        "compare",
        "mse",
        d / "y.parquet",
        *files,
        "--target-col",
        "y",
        "--report",
        d / "c.html",
        "-f",
        "json",
        *extra,
    )
    assert out.code == 0, out.stderr
    return d / "c.html", out.json()


def test_compare_report_holds_models_comparisons_groups_and_chart(models) -> None:
    d, y, preds, lang = models
    page_path, doc = _compare_page(d, "--group-by", "lang")
    page = parse(page_path)
    text = page_path.read_text()
    assert "<script" not in text.lower() and 'src="' not in text and 'id="chart-deltas"' in text
    sq = {k: (v - y) ** 2 for k, v in preds.items()}
    models_t = by_first(page.tables["models"])
    for k in "abc":
        assert math.isclose(float(models_t[k]["MSE"]), float(sq[k].mean()), rel_tol=1e-6)
        np.testing.assert_allclose(shown(models_t[k]["95% interval"]), t_interval(sq[k]), rtol=1e-6)
        assert models_t[k]["n"] == "1,000" and models_t[k]["file"].endswith(f"{k}.parquet")
    comps = by_first(page.tables["comparisons"])
    raw = []
    for k in "bc":
        mean, lo, hi, p = paired_t_ref(sq[k] - sq["a"])
        raw.append(p)
        assert comps[k]["baseline"] == "a"
        assert math.isclose(float(comps[k]["delta"]), mean, rel_tol=1e-6)
        np.testing.assert_allclose(shown(comps[k]["interval of delta"]), [lo, hi], rtol=1e-6)
        assert math.isclose(float(comps[k]["p"]), p, rel_tol=1e-6)
    for k, adj in zip("bc", holm_ref(raw), strict=True):
        assert math.isclose(float(comps[k]["p adjusted"]), adj, rel_tol=1e-6)
    assert comps["b"]["verdict"] == "better" and comps["c"]["verdict"] == "not significant"
    groups = page.tables["group-comparisons"]
    assert groups[0][:3] == ["lang", "model", "delta"] and len(groups) == 5
    for row in groups[1:]:
        sel = lang == row[0]
        diff = sq[row[1]][sel] - sq["a"][sel]
        assert math.isclose(float(row[2]), float(diff.mean()), rel_tol=1e-6)
    assert doc["comparisons"][0]["model"] == "b"


def test_compare_report_of_merged_states_and_refusal(models) -> None:
    d, y, preds, _ = models
    for k in "abc":
        np.save(d / f"{k}.npy", preds[k])
    np.save(d / "y.npy", y)
    half = len(y) // 2
    for i, (lo, hi) in enumerate(((0, half), (half, len(y)))):
        for k in ("y", "a", "b"):
            np.save(d / f"{k}{i}.npy", (y if k == "y" else preds[k])[lo:hi])
        args = [
            "compare",
            "mse",
            d / f"y{i}.npy",
            d / f"a{i}.npy",
            d / f"b{i}.npy",
            "--name",
            "a",
            "--name",
            "b",
            "--row-offset",
            lo,
            "--save-state",
            d / f"s{i}.state",
        ]
        assert run_cli(*args).code == 0
    out = run_cli("merge", d / "s0.state", d / "s1.state", "--report", d / "m.html", "-f", "json")
    assert out.code == 0, out.stderr
    _, lo, hi, _ = paired_t_ref((preds["b"] - y) ** 2 - (preds["a"] - y) ** 2)
    comps = by_first(parse(d / "m.html").tables["comparisons"])
    np.testing.assert_allclose(shown(comps["b"]["interval of delta"]), [lo, hi], rtol=1e-6)
    wrong = run_cli("compare", "mse", d / "y.npy", d / "a.npy", d / "b.npy", "--report", d / "c.txt")
    assert wrong.code == 2 and ".html" in wrong.stderr and wrong.stdout == ""


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make test installs it)")
def test_compare_report_in_headless_chromium(models) -> None:
    d, y, preds, _ = models
    page, doc = _compare_page(d, "--fail-if-worse", "--margin", "0.05")
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1100,1400",
        "--enable-logging=stderr",
        "--v=0",
    ]
    shot = d / "shot.png"
    run = subprocess.run(
        [*args, f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert shot.exists(), run.stderr
    pixels = png_pixels(shot)
    drawn = sum(1 for b in pixels if b not in (0, 255, 1, 4)) / len(pixels)
    assert len(set(pixels)) > 64 and drawn > 0.01, "the screenshot is blank"
    assert [line for line in run.stderr.splitlines() if ":CONSOLE" in line] == []
    dom = subprocess.run([*args, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    delta = float(((preds["b"] - y) ** 2 - (preds["a"] - y) ** 2).mean())
    assert 'id="headline-value"' in dom.stdout and f"{delta:.7g}" in dom.stdout
    start = dom.stdout.index('id="chart-deltas"')
    assert "<svg" in dom.stdout[start : start + 400] and "margin 0.05" in dom.stdout
    assert doc["margin"] == 0.05


def test_state_versions_across_ci_and_sketches(binary, tmp_path: Path) -> None:
    """A --ci state is version 3 now; one main saved before version 3 (as 1) still loads."""
    path, p, y, _ = binary
    assert run_cli("bce", path, "--ci", "--save-state", tmp_path / "ci.state").code == 0

    def version(state: Path) -> int:
        with zipfile.ZipFile(state) as zf:
            return int(json.loads(zf.read("state.json"))["format_version"])

    assert version(tmp_path / "ci.state") == 3
    with zipfile.ZipFile(tmp_path / "ci.state") as src, zipfile.ZipFile(tmp_path / "old.state", "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "state.json":
                doc = json.loads(data)
                doc["format_version"] = 1  # as main wrote a --ci state before version 3
                data = json.dumps(doc).encode()
            dst.writestr(info, data)
    old = load_state(tmp_path / "old.state")
    assert old.tallies.ci is not None
    out = run_cli("merge", tmp_path / "old.state", "-f", "json")
    np.testing.assert_allclose(
        out.json()["ci"]["value"], t_interval(-(y * np.log(p) + (1 - y) * np.log1p(-p))), rtol=1e-12
    )
