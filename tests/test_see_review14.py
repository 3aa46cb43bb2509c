"""Fresh-eyes review of issue 14's "see the losses" figures, fixed here: weighted --per-class
(weights beside the row counts, confused pairs ranked by weight), each group's Brier score and
its interval, the reliability table's bin weights, the compare chart's title inside its SVG, and
the --group-by column named in the too-many-keys error. References are numpy, written here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from losscli.state.groups import GroupTallies
from test_report_intervals import T_975, binary, by_first, parse, shown, t_interval

from conftest import run_cli

__all__ = ["binary"]  # the fixture, imported for its use here

C = 4


def _classes(tmp: Path, n: int = 3000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities, class ids and weights (some 0), the pair 1 -> 3 made heavy so that the
    ranking by weight differs from the ranking by count."""
    rng = np.random.default_rng(1414)
    z = rng.normal(size=(n, C))
    y = rng.integers(0, C, n)
    z[np.arange(n), y] += 0.6
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    w = rng.uniform(0.2, 2.0, n)
    w[::9] = 0.0
    pred = p.argmax(axis=1)
    w[(y == 1) & (pred == 3)] *= 4.0
    np.save(tmp / "p.npy", p)
    np.save(tmp / "y.npy", y)
    np.save(tmp / "w.npy", w)
    return p, y, w


def _class_reference(p: np.ndarray, y: np.ndarray, w: np.ndarray, top: int) -> tuple[dict, list[dict]]:
    pred = p.argmax(axis=1)
    kept = w > 0
    loss = -np.log(p[np.arange(len(y)), y])
    weight = np.bincount(y, w, C)
    rows = {
        "support": np.bincount(y[kept], minlength=C),
        "weight": weight,
        "loss": np.bincount(y, w * loss, C) / weight,
        "accuracy": np.bincount(y, w * (pred == y), C) / weight,
        "mean_probability": (w @ p) / w.sum(),
    }
    counts = np.zeros((C, C), dtype=np.int64)
    np.add.at(counts, (y[kept], pred[kept]), 1)
    weights = np.zeros((C, C))
    np.add.at(weights, (y, pred), w)
    pairs = [(t, q) for t in range(C) for q in range(C) if t != q and weights[t, q] > 0]
    pairs.sort(key=lambda tq: (-weights[tq], tq[0], tq[1]))
    by_count = sorted(pairs, key=lambda tq: (-counts[tq], tq[0], tq[1]))
    assert by_count[:top] != pairs[:top], "the data should rank pairs differently by weight"
    ref = [
        {
            "target": t,
            "predicted": q,
            "count": int(counts[t, q]),
            "weight": weights[t, q],
            "share": weights[t, q] / weight[t],
        }
        for t, q in pairs[:top]
    ]
    return rows, ref


def _check_classes(doc: dict, rows: dict, pairs: list[dict]) -> None:
    got = doc["per_class"]
    assert [r["class"] for r in got] == list(range(C))
    for key, ref in rows.items():
        values = [r[key] for r in got]
        if key == "support":
            assert values == ref.tolist()
        else:
            np.testing.assert_allclose(values, ref, rtol=1e-12, atol=0)
    conf = doc["confusions"]
    assert [(c["target"], c["predicted"], c["count"]) for c in conf] == [
        (r["target"], r["predicted"], r["count"]) for r in pairs
    ]
    for key in ("weight", "share"):
        np.testing.assert_allclose([c[key] for c in conf], [r[key] for r in pairs], rtol=1e-12, atol=0)


def test_weighted_per_class_keeps_counts_and_adds_weights(tmp_path: Path) -> None:
    p, y, w = _classes(tmp_path)
    rows, pairs = _class_reference(p, y, w, 5)
    args = ["--per-class", "--input", "probs", "--top", "5", "--weights", tmp_path / "w.npy"]
    out = run_cli(
        "ce", tmp_path / "p.npy", tmp_path / "y.npy", *args, "--chunk-size", "700",
        "--report", tmp_path / "r.html", "-f", "json",
    )  # fmt: skip
    assert out.code == 0, out.stderr
    _check_classes(json.loads(out.stdout), rows, pairs)

    # two parts saved and merged: the confusion weights travel in the state
    half = len(y) // 2
    for i, (lo, hi) in enumerate(((0, half), (half, len(y)))):
        for name, a in (("p", p), ("y", y), ("w", w)):
            np.save(tmp_path / f"{name}{i}.npy", a[lo:hi])
        part = run_cli(
            "ce", tmp_path / f"p{i}.npy", tmp_path / f"y{i}.npy", "--per-class", "--input", "probs",
            "--weights", tmp_path / f"w{i}.npy", "--row-offset", lo, "--save-state", tmp_path / f"s{i}.state",
        )  # fmt: skip
        assert part.code == 0, part.stderr
    merged = run_cli("merge", tmp_path / "s0.state", tmp_path / "s1.state", "--top", "5", "-f", "json")
    assert merged.code == 0, merged.stderr
    _check_classes(json.loads(merged.stdout), rows, pairs)

    # the page and the terminal table say which columns are weighted
    tables = parse(tmp_path / "r.html").tables
    assert tables["classes"][0] == ["class", "support", "weight", "loss", "accuracy", "mean p"]
    np.testing.assert_allclose([shown(r[2])[0] for r in tables["classes"][1:]], rows["weight"], rtol=1e-6)
    assert tables["confusions"][0] == ["target", "predicted", "count", "weight", "share of target weight"]
    np.testing.assert_allclose(
        [shown(r[3])[0] for r in tables["confusions"][1:]], [r["weight"] for r in pairs], rtol=1e-6
    )
    text = run_cli(
        "ce", tmp_path / "p.npy", tmp_path / "y.npy", *args, "-f", "table", env={"COLUMNS": "200"}
    ).stdout
    assert "loss, accuracy, mean p weighted" in text and "share of target weight" in text
    head = next(line for line in text.splitlines() if "support" in line)
    assert head.index("support") < head.index("weight") < head.index("loss")


def test_unweighted_per_class_is_unchanged(tmp_path: Path) -> None:
    p, y, _ = _classes(tmp_path)
    out = run_cli(
        "ce", tmp_path / "p.npy", tmp_path / "y.npy", "--per-class", "--input", "probs", "-f", "json"
    )
    assert out.code == 0, out.stderr
    doc = json.loads(out.stdout)
    assert all("weight" not in r for r in doc["per_class"] + doc["confusions"])
    support = np.bincount(y, minlength=C)
    pred = p.argmax(axis=1)
    for c in doc["confusions"]:
        count = int(np.sum((y == c["target"]) & (pred == c["predicted"])))
        assert c["count"] == count and c["share"] == count / support[c["target"]]


def test_group_tallies_merge_without_a_brier_sum_drops_it() -> None:
    """A state saved before the groups kept their Brier sum merges with one that has it: the
    merged groups keep every other sum and no Brier (which would count only some parts)."""
    old = GroupTallies.empty(("g",), 1, ())
    new = GroupTallies.empty(("g",), 1, ("brier",))
    old.grow([("a",)])
    new.grow([("a",), ("b",)])
    old.add(np.array([[1.5, 2.0, 1.0, 0.0]]), np.array([[2, 0, 0]]))
    new.add(
        np.array([[0.25, 1.0, 0.125, 1.0, 0.0], [4.0, 3.0, 0.5, 2.0, 0.0]]), np.array([[1, 0, 0], [3, 0, 0]])
    )
    for merged in (old.merge(new), new.merge(old)):
        assert merged.companions == ()
        got = {k: (merged.hi[i] + merged.lo[i]).tolist() for i, k in enumerate(merged.keys)}
        assert got == {("a",): [1.75, 3.0, 2.0, 0.0], ("b",): [4.0, 3.0, 2.0, 0.0]}
    with pytest.raises(ValueError):
        old.merge(GroupTallies.empty(("g",), 1, ("mae",)))


def test_each_group_has_its_brier_score_and_interval(binary, tmp_path: Path) -> None:
    path, p, y, g = binary
    out = run_cli(
        "bce", path, "--ci", "--calibration", "--group-by", "g", "--report", tmp_path / "r.html", "-f", "json"
    )
    assert out.code == 0, out.stderr
    doc = json.loads(out.stdout)
    sq = (p - y) ** 2
    refs = {k: sq[g == k] for k in ("a", "b")}
    assert {len(v) - 1 for v in refs.values()} <= set(T_975)
    for grp in doc["groups"]:
        x = refs[grp["key"]["g"]]
        np.testing.assert_allclose(grp["brier"], x.mean(), rtol=1e-12, atol=0)
        np.testing.assert_allclose(grp["ci"]["brier"], t_interval(x), rtol=1e-9)
    groups = by_first(parse(tmp_path / "r.html").tables["groups"])
    for key, x in refs.items():
        np.testing.assert_allclose(shown(groups[key]["Brier"]), [x.mean()], rtol=1e-6)
        np.testing.assert_allclose(shown(groups[key]["Brier 95% interval (t)"]), t_interval(x), rtol=1e-6)
    table = run_cli("bce", path, "--ci", "--calibration", "--group-by", "g", "-f", "table",
                    env={"COLUMNS": "250"}).stdout  # fmt: skip
    section = table[table.index("Per group") :]
    assert "Brier" in section and "Brier interval" in section
    tsv = pd.read_csv(
        pd.io.common.StringIO(run_cli("bce", path, "--calibration", "--group-by", "g", "-f", "tsv").stdout),
        sep="\t",
        keep_default_na=False,
    )
    rows = tsv[tsv["group.g"] != ""].set_index("group.g")
    for key, x in refs.items():
        np.testing.assert_allclose(float(rows.loc[key, "brier"]), x.mean(), rtol=1e-12, atol=0)


def test_weighted_group_brier_of_ce_and_of_soft_bce(tmp_path: Path) -> None:
    """Weighted: sum w b / sum w per group, ce's b = sum_c (p_c - onehot_c)^2; bce with soft
    labels b = (p - y)^2; one group holding every row gives the overall Brier."""
    p, y, w = _classes(tmp_path)
    grp = np.arange(len(y)) % 3
    np.save(tmp_path / "g.npy", grp)
    onehot = np.eye(C)[y]
    b = ((p - onehot) ** 2).sum(axis=1)
    out = run_cli(
        "ce", tmp_path / "p.npy", tmp_path / "y.npy", "--input", "probs", "--weights", tmp_path / "w.npy",
        "--groups", tmp_path / "g.npy", "--calibration", "--chunk-size", "500", "-f", "json",
    )  # fmt: skip
    assert out.code == 0, out.stderr
    doc = json.loads(out.stdout)
    got = [grp_["brier"] for grp_ in doc["groups"]]
    ref = [np.sum(w[grp == k] * b[grp == k]) / np.sum(w[grp == k]) for k in range(3)]
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)

    rng = np.random.default_rng(6)
    ps, ys = rng.uniform(0.01, 0.99, 900), rng.uniform(0, 1, 900)
    pd.DataFrame({"p": ps, "y": ys, "one": 1}).to_csv(tmp_path / "soft.csv", index=False)
    soft = run_cli("bce", tmp_path / "soft.csv", "--pred-col", "p", "--target-col", "y", "--group-by", "one",
                   "--calibration", "-f", "json")  # fmt: skip
    assert soft.code == 0, soft.stderr
    sdoc = json.loads(soft.stdout)
    np.testing.assert_allclose(sdoc["groups"][0]["brier"], np.mean((ps - ys) ** 2), rtol=1e-12, atol=0)
    np.testing.assert_allclose(sdoc["brier"], np.mean((ps - ys) ** 2), rtol=1e-12, atol=0)


def test_weighted_reliability_table_shows_each_bin_weight(tmp_path: Path) -> None:
    rng = np.random.default_rng(77)
    n, bins = 2000, 10
    k = rng.integers(0, bins, n)
    p = (k + rng.uniform(0.05, 0.95, n)) / bins  # no value near an edge
    y = (rng.random(n) < p).astype(float)
    w = rng.uniform(0.0, 3.0, n)
    pd.DataFrame({"p": p, "y": y, "w": w}).to_csv(tmp_path / "d.csv", index=False)
    args = ["bce", tmp_path / "d.csv", "--pred-col", "p", "--target-col", "y", "--weight-col", "w",
            "--calibration", "--bins", str(bins)]  # fmt: skip
    out = run_cli(*args, "--report", tmp_path / "r.html", "-f", "json")
    assert out.code == 0, out.stderr
    weight = np.bincount(k, w, bins)
    rel = json.loads(out.stdout)["calibration"]["reliability"]
    np.testing.assert_allclose([r["weight"] for r in rel], weight, rtol=1e-12, atol=0)
    np.testing.assert_allclose(
        [r["observed"] for r in rel], np.bincount(k, w * y, bins) / weight, rtol=1e-12, atol=0
    )
    table = parse(tmp_path / "r.html").tables["reliability"]
    assert table[0] == ["bin", "count", "weight", "confidence", "observed", "gap"]
    assert [shown(r[1])[0] for r in table[1:]] == np.bincount(k, minlength=bins).tolist()
    np.testing.assert_allclose([shown(r[2])[0] for r in table[1:]], weight, rtol=1e-6)
    text = run_cli(*args, "-f", "table", env={"COLUMNS": "200"}).stdout
    head = next(line for line in text.splitlines() if "confidence bin" in line)
    cells = [c.strip() for c in head.strip("┃ ").split("┃")]
    assert cells == ["confidence bin", "count", "weight", "confidence", "observed", "gap"]
    unweighted = run_cli("bce", tmp_path / "d.csv", "--pred-col", "p", "--target-col", "y", "--calibration",
                         "--bins", str(bins), "-f", "table", env={"COLUMNS": "200"})  # fmt: skip
    head = next(line for line in unweighted.stdout.splitlines() if "confidence bin" in line)
    assert "weight" not in head


def _texts_inside(page: Path) -> list[str]:
    """Every chart's unrotated text elements: each lies within its SVG's viewBox (the baseline
    minus the font size at or below the top, the baseline above the bottom); their texts."""
    found = []
    svgs = re.findall(r"<svg.*?</svg>", page.read_text(encoding="utf-8"), flags=re.S)
    assert svgs
    for svg in svgs:
        box = [float(v) for v in re.search(r'viewBox="([^"]+)"', svg).group(1).split()]
        for m in re.finditer(
            r'<text style="font-size: ([0-9.]+)px[^"]*" x="[^"]*" y="([-0-9.e]+)" '
            r'transform="rotate\((-?[0-9.]+) [^>]*>([^<]*)<',
            svg,
        ):
            size, y, angle, text = float(m[1]), float(m[2]), float(m[3]), m[4]
            if angle == 0:
                assert y - size >= box[1] and y <= box[1] + box[3], (text, y, size, box)
                found.append(text)
    return found


@pytest.mark.parametrize("candidates", [1, 2, 6])
def test_compare_chart_title_is_inside_the_svg(tmp_path: Path, candidates: int) -> None:
    rng = np.random.default_rng(candidates)
    t = rng.normal(size=300)
    np.save(tmp_path / "t.npy", t)
    preds = []
    for i in range(candidates + 1):
        np.save(tmp_path / f"m{i}.npy", t + rng.normal(size=300) * (1 + i / 10))
        preds.append(tmp_path / f"m{i}.npy")
    out = run_cli("compare", "mse", tmp_path / "t.npy", *preds, "--report", tmp_path / "r.html")
    assert out.code in (0, 1), out.stderr
    texts = _texts_inside(tmp_path / "r.html")
    assert "95% intervals of the deltas" in texts


def test_too_many_keys_names_the_column_not_the_file_stem(tmp_path: Path) -> None:
    p, y, _ = _classes(tmp_path)
    np.save(tmp_path / "cp.npy", p)
    out = run_cli("ce", tmp_path / "cp.npy", tmp_path / "y.npy", "--input", "probs", "--per-class",
                  "--group-by", "0", "--max-groups", "50")  # fmt: skip
    assert out.code == 3 and out.stdout == ""
    assert "cp.npy" in out.stderr and "--group-by column 0 has more than 50" in out.stderr
    assert "'cp'" not in out.stderr and "Traceback" not in out.stderr
    pd.DataFrame(
        {"p": p[:, 0] * 0.99, "y": (y == 0).astype(float), "key": [f"k{i}" for i in range(len(y))]}
    ).to_csv(tmp_path / "b.csv", index=False)
    named = run_cli("bce", tmp_path / "b.csv", "--pred-col", "p", "--target-col", "y", "--group-by", "key",
                    "--max-groups", "50")  # fmt: skip
    assert named.code == 3 and "--group-by 'key' has more than 50" in named.stderr
    clusters = run_cli("ce", tmp_path / "cp.npy", tmp_path / "y.npy", "--input", "probs", "--ci",
                       "--cluster-col", "1", "--max-clusters", "50")  # fmt: skip
    assert clusters.code == 3 and "--cluster-col column 1 has more than 50" in clusters.stderr


def test_compare_chart_keeps_long_model_names_inside_the_svg(tmp_path: Path) -> None:
    """Tick labels end at their x (text-anchor end) and the x label is centred: at about 0.6 em a
    character (DejaVu Sans averages less), every one starts and ends inside the viewBox."""
    rng = np.random.default_rng(11)
    t = rng.normal(size=300)
    np.save(tmp_path / "t.npy", t)
    names = ["baseline-model-with-a-rather-long-name", "candidate-B-v2.1-finetuned-on-more-data", "C"]
    preds = []
    for i, _ in enumerate(names):
        np.save(tmp_path / f"m{i}.npy", t + rng.normal(size=300) * (1 + i / 10))
        preds.append(tmp_path / f"m{i}.npy")
    flags = [arg for name in names for arg in ("--name", name)]
    out = run_cli("compare", "mse", tmp_path / "t.npy", *preds, *flags, "--report", tmp_path / "r.html")
    assert out.code in (0, 1), out.stderr
    svg = re.findall(r"<svg.*?</svg>", (tmp_path / "r.html").read_text(encoding="utf-8"), flags=re.S)[-1]
    box = [float(v) for v in re.search(r'viewBox="([^"]+)"', svg).group(1).split()]
    seen = []
    for m in re.finditer(
        r'<text style="font-size: ([0-9.]+)px;[^"]*text-anchor: (end|middle|start)" x="([-0-9.e]+)" '
        r'y="[-0-9.e]+" transform="rotate\((-?[0-9.]+) [^>]*>([^<]*)<',
        svg,
    ):
        size, anchor, x, angle, text = float(m[1]), m[2], float(m[3]), float(m[4]), m[5]
        if angle != 0:
            continue
        width = 0.6 * size * len(text)
        left = x - width if anchor == "end" else x - width / 2 if anchor == "middle" else x
        assert left >= box[0] and left + width <= box[0] + box[2], (text, left, width, box)
        seen.append(text)
    assert names[1] in seen
