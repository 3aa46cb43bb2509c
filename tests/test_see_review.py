"""Fresh-eyes findings on issue 14 fixed here: --bins' range and its need of --calibration, and
rows of weight 0 (a row dropped, as scikit-learn's sample_weight) in the loss max and in the
per-class support. References are numpy and pandas, written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from conftest import run_cli


def _probs(tmp_path: Path) -> Path:
    path = tmp_path / "b.csv"
    pd.DataFrame({"prob": [0.2, 0.9, 0.6, 0.35], "label": [0, 1, 1, 0]}).to_csv(path, index=False)
    return path


def test_bins_beyond_ten_thousand_is_exit_2_before_reading(tmp_path: Path) -> None:
    res = run_cli(
        "bce",
        _probs(tmp_path),
        "--pred-col",
        "prob",
        "--target-col",
        "label",
        "--calibration",
        "--bins",
        "100000000",
    )
    assert res.code == 2 and res.stdout == ""
    assert "--bins must be at most 10,000" in res.stderr


def test_bins_without_calibration_is_refused_with_the_fix(tmp_path: Path) -> None:
    res = run_cli("bce", _probs(tmp_path), "--pred-col", "prob", "--target-col", "label", "--bins", "20")
    assert res.code == 2 and res.stdout == ""
    assert "add --calibration" in res.stderr
    ok = run_cli(
        "bce",
        _probs(tmp_path),
        "--pred-col",
        "prob",
        "--target-col",
        "label",
        "--calibration",
        "--bins",
        "20",
        "-f",
        "json",
    )
    assert ok.code == 0, ok.stderr


def test_a_row_of_weight_zero_sets_no_quantile_nor_the_max(tmp_path: Path) -> None:
    p = np.array([0.9, 0.8, 0.95, 0.5])
    y = np.array([1.0, 1.0, 1.0, 1.0])
    w = np.array([1.0, 2.0, 1.0, 0.0])  # the worst row (p = 0.5) weighs nothing
    path = tmp_path / "w.csv"
    pd.DataFrame({"prob": p, "label": y, "w": w}).to_csv(path, index=False)
    res = run_cli(
        "bce", path, "--pred-col", "prob", "--target-col", "label", "--weight-col", "w", "-f", "json"
    )
    assert res.code == 0, res.stderr
    losses = -np.log(p)
    want_max = float(np.percentile(losses, 100, method="inverted_cdf", weights=w))
    assert want_max == float(losses[:3].max())
    got = res.json()["quantiles"]
    assert abs(got["max"] - want_max) <= 1e-12 * want_max


def test_per_class_support_leaves_out_rows_of_weight_zero(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    n = 300
    probs = rng.dirichlet(np.ones(3), n)
    labels = rng.integers(0, 3, n)
    w = np.where(rng.random(n) < 0.4, 0.0, rng.uniform(0.5, 2, n))
    frame = pd.DataFrame(probs, columns=["p0", "p1", "p2"]).assign(label=labels, w=w)
    path = tmp_path / "ce.parquet"
    frame.to_parquet(path, index=False)
    res = run_cli(
        "ce",
        path,
        "--pred-col",
        "p0,p1,p2",
        "--target-col",
        "label",
        "--weight-col",
        "w",
        "--per-class",
        "-f",
        "json",
    )
    assert res.code == 0, res.stderr
    kept = frame[frame["w"] != 0]
    want = kept["label"].value_counts().sort_index()
    got = {row["class"]: row["support"] for row in res.json()["per_class"]}
    assert got == {int(k): int(v) for k, v in want.items()}


def test_report_ids_are_unique_and_every_reference_resolves(tmp_path: Path) -> None:
    """Two inline matplotlib charts number their ids alike (figure_1, axes_1, ...): the page
    must still have each id once, and every url(#id) / href="#id" must point at one of them."""
    import re

    import pytest

    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(8)
    p = rng.uniform(0.01, 0.99, 2000)
    path = tmp_path / "b.csv"
    pd.DataFrame({"prob": p, "label": (rng.random(2000) < p).astype(int)}).to_csv(path, index=False)
    page = tmp_path / "r.html"
    res = run_cli(
        "bce", path, "--pred-col", "prob", "--target-col", "label", "--calibration", "--report", page
    )
    assert res.code == 0, res.stderr
    html = page.read_text()
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert html.count("<svg") >= 2 and ids
    assert len(ids) == len(set(ids))
    refs = set(re.findall(r"url\(#([^)]+)\)", html)) | set(re.findall(r'href="#([^"]+)"', html))
    assert refs <= set(ids)


def test_ce_worst_rows_show_the_files_probability_not_the_clamped_one(tmp_path: Path) -> None:
    """p = 0 for the target is clamped at log 1e-44-ish (loss 100); p(target) is the file's 0."""
    path = tmp_path / "mc.csv"
    pd.DataFrame(
        {"a": [0.0, 0.7, 0.1], "b": [0.5, 0.2, 0.1], "c": [0.5, 0.1, 0.8], "label": [0, 0, 2]}
    ).to_csv(path, index=False)
    res = run_cli("ce", path, "--target-col", "label", "-f", "json")
    assert res.code == 0, res.stderr
    shown = {e["row"]: e["p(target)"] for e in res.json()["examples"]}
    assert shown == {0: 0.0, 1: 0.7, 2: 0.8}
    assert res.json()["clamped"] == 1


def test_a_terminal_per_class_table_shows_the_50_worst_classes(tmp_path: Path) -> None:
    """120 classes: the table names the 50 with the highest mean loss (pandas' reference), in
    class order; JSON keeps all 120."""
    from losscli.render.extra_tables import classes_table

    rng = np.random.default_rng(3)
    n, c = 3000, 120
    p, y = rng.dirichlet(np.ones(c), n), rng.integers(0, c, n)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    res = run_cli("ce", tmp_path / "p.npy", tmp_path / "y.npy", "--per-class", "-f", "json")
    assert res.code == 0, res.stderr
    rows = res.json()["per_class"]
    assert len(rows) == c
    loss = pd.Series(-np.log(p[np.arange(n), y])).groupby(y).mean()
    want = sorted(loss.sort_values(ascending=False).index[:50].tolist())
    table = classes_table(rows)
    assert table is not None and "the 50 of 120" in table.title
    assert [int(v) for v in table.columns[0].cells] == want


def test_the_report_headline_has_the_terminals_status_rows(tmp_path: Path) -> None:
    """input (detected), clamped: the rows the terminal's headline table ends with."""
    import re

    import pytest

    pytest.importorskip("matplotlib")
    path = tmp_path / "mc.csv"
    pd.DataFrame(
        {"a": [0.0, 0.7, 0.1], "b": [0.5, 0.2, 0.1], "c": [0.5, 0.1, 0.8], "label": [0, 0, 2]}
    ).to_csv(path, index=False)
    page = tmp_path / "r.html"
    assert run_cli("ce", path, "--target-col", "label", "--report", page).code == 0
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<tr>(.*?)</tr>", page.read_text(), flags=re.S)]
    assert any(c.startswith("inputprobsdetected") for c in cells), cells[:20]
    assert any(c.startswith("clamped1") for c in cells), cells[:20]
