"""Large shards cut into parts at their row groups (``--split-rows``): the same report as the
whole shards, rows still named by their file and their row in it, hive keys kept, a file beside
the shards read by the parts' ranges, and a saved state that merges without a false "read twice"
warning (and with a true one). References are numpy and pandas, written here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import run_cli

#: (lang, rows) of the hive shards; row groups of 100 rows, parts of about 128 rows
SHARDS = (("de", 1000), ("fr", 730))
COLS = ("--pred-col", "pred", "--target-col", "target")


def _hive(tmp_path: Path, row_group: int = 100) -> tuple[Path, pd.DataFrame]:
    rng = np.random.default_rng(5)
    root = tmp_path / "preds"
    frames = []
    for lang, n in SHARDS:
        df = pd.DataFrame(
            {
                "pred": rng.normal(size=n),
                "target": rng.normal(size=n),
                "src": rng.choice(["a", "b", "c"], n),
            }
        )
        folder = root / f"lang={lang}"
        folder.mkdir(parents=True)
        path = folder / "part-0.parquet"
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=row_group)
        frames.append(df.assign(lang=lang, file=str(path), file_row=np.arange(n)))
    return root, pd.concat(frames, ignore_index=True)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-12 * max(1.0, abs(b))


def _parts(out: dict[str, object]) -> list[dict[str, object]]:
    return out["provenance"]["parts"]  # type: ignore[index,return-value]


def test_split_hive_shards_match_numpy_per_group_and_worst_rows(tmp_path: Path) -> None:
    root, whole = _hive(tmp_path)
    res = run_cli(
        "mse", root, *COLS, "--group-by", "lang,src", "--split-rows", "128", "--top", "5", "-f", "json"
    )
    assert res.code == 0, res.stderr
    out = res.json()
    assert len(_parts(out)) > len(SHARDS)  # the shards were cut
    err = whole["pred"].to_numpy() - whole["target"].to_numpy()
    assert out["n"] == len(whole)
    assert _close(out["value"], float(np.mean(err**2)))
    assert _close(out["mae"], float(np.mean(np.abs(err))))
    grouped = pd.Series(err**2).groupby([whole["lang"], whole["src"]]).agg(["mean", "size"])
    got = {(g["key"]["lang"], g["key"]["src"]): (g["value"], g["n"]) for g in out["groups"]}
    assert got.keys() == set(grouped.index)
    for key, row in grouped.iterrows():
        assert _close(got[key][0], float(row["mean"])) and got[key][1] == int(row["size"])
    order = np.lexsort((np.arange(len(err)), -(err**2)))[:5]  # worst first, ties to the earlier row
    assert [e["row"] for e in out["examples"]] == [int(i) for i in order]
    assert [e["file"] for e in out["examples"]] == [whole["file"].iloc[i] for i in order]
    assert [e["file_row"] for e in out["examples"]] == [int(whole["file_row"].iloc[i]) for i in order]


def test_split_equals_unsplit_and_never_cutting(tmp_path: Path) -> None:
    root, _ = _hive(tmp_path)
    runs = [run_cli("mae", root, *COLS, "--split-rows", n, "-f", "json") for n in ("128", "0", "1000000")]
    for r in runs:
        assert r.code == 0, r.stderr
    split, never, big = (r.json() for r in runs)
    assert len(_parts(never)) == len(_parts(big)) == len(SHARDS) < len(_parts(split))
    assert split["n"] == never["n"] and split["examples"] == never["examples"]
    assert _close(split["value"], never["value"]) and _close(split["mse"], never["mse"])


def test_cuts_fall_on_row_groups(tmp_path: Path) -> None:
    root, _ = _hive(tmp_path)
    out = run_cli("mse", root, *COLS, "--split-rows", "250", "-f", "json").json()
    spans = [p["inputs"][0].get("span") for p in _parts(out)]
    cut = [s for s in spans if s is not None]
    assert cut, spans
    assert all(s[0] % 100 == 0 and (s[1] % 100 == 0 or s[1] in (1000, 730)) for s in cut)
    # parts of at least 250 rows; a file's last part at least half that (never a sliver)
    assert all(s[1] - s[0] >= (125 if s[1] in (1000, 730) else 250) for s in cut)


@pytest.mark.parametrize(
    ("metric", "extra"),
    [("bce", ("--input", "probs")), ("huber", ()), ("ce", ("--input", "probs"))],
)
def test_other_pair_metrics_over_split_npy_shards(
    tmp_path: Path, metric: str, extra: tuple[str, ...]
) -> None:
    rng = np.random.default_rng(9)
    preds, targets = tmp_path / "p", tmp_path / "t"
    preds.mkdir()
    targets.mkdir()
    ps, ts = [], []
    for k, n in enumerate((900, 1300)):
        if metric == "bce":
            p, t = rng.uniform(0.01, 0.99, n), rng.integers(0, 2, n).astype(np.float64)
        elif metric == "ce":
            p = rng.dirichlet(np.ones(4), n)
            t = rng.integers(0, 4, n)
        else:
            p, t = rng.normal(size=n) * 2, rng.normal(size=n)
        np.save(preds / f"part-{k}.npy", p)
        np.save(targets / f"part-{k}.npy", t)
        ps.append(p)
        ts.append(t)
    p, t = np.concatenate(ps), np.concatenate(ts)
    res = run_cli(metric, preds, targets, *extra, "--split-rows", "256", "-f", "json")
    assert res.code == 0, res.stderr
    out = res.json()
    assert len(_parts(out)) > 2
    if metric == "bce":
        want = -np.mean(t * np.log(p) + (1 - t) * np.log1p(-p))
    elif metric == "ce":
        want = -np.mean(np.log(p[np.arange(len(t)), t]))
    else:
        e = np.abs(p - t)
        want = np.mean(np.where(e <= 1.0, 0.5 * e * e, e - 0.5))
    assert _close(out["value"], float(want))
    assert out["n"] == len(t)


def test_a_file_beside_split_shards_is_read_by_their_ranges(tmp_path: Path) -> None:
    root, whole = _hive(tmp_path)
    beside = tmp_path / "weights.npy"
    w = np.random.default_rng(3).uniform(0.5, 2.0, len(whole))
    np.save(beside, w)
    res = run_cli("mse", root, *COLS, "--weights", beside, "--split-rows", "128", "-f", "json")
    assert res.code == 0, res.stderr
    out = res.json()
    err = whole["pred"].to_numpy() - whole["target"].to_numpy()
    assert _close(out["value"], float(np.sum(w * err**2) / np.sum(w)))
    assert not out.get("warnings")  # the file was read once, by ranges


def test_a_saved_split_state_merges_without_a_false_warning(tmp_path: Path) -> None:
    root, whole = _hive(tmp_path)
    state = tmp_path / "s.state"
    res = run_cli("mse", root, *COLS, "--split-rows", "128", "--save-state", state, "-f", "json")
    assert res.code == 0, res.stderr
    alone = run_cli("merge", state, "-f", "json")
    assert alone.code == 0 and "read by" not in alone.stderr
    assert alone.json()["value"] == res.json()["value"]
    twice = run_cli("merge", state, state, "-f", "json")
    assert "count twice" in twice.stderr  # the same ranges read again: a real overlap, said
    err = whole["pred"].to_numpy() - whole["target"].to_numpy()
    assert _close(twice.json()["value"], float(np.mean(err**2)))  # the mean of doubled rows


def test_split_rows_needs_shards(tmp_path: Path) -> None:
    path = tmp_path / "one.parquet"
    pd.DataFrame({"pred": [1.0, 2.0], "target": [1.5, 2.0]}).to_parquet(path, index=False)
    res = run_cli("mse", path, *COLS, "--split-rows", "10")
    assert res.code == 2 and res.stdout == ""
    assert "--split-rows" in res.stderr and "Traceback" not in res.stderr


def test_state_span_is_checked_when_loaded(tmp_path: Path) -> None:
    """A crafted span (stop before start) is refused like any malformed state."""
    import zipfile

    root, _ = _hive(tmp_path)
    state = tmp_path / "s.state"
    assert run_cli("mse", root, *COLS, "--split-rows", "128", "--save-state", state).code == 0
    with zipfile.ZipFile(state) as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(members["state.json"])
    text = json.dumps(meta)
    assert '"span": [' in text
    members["state.json"] = text.replace('"span": [0, 200]', '"span": [200, 0]', 1).encode()
    bad = tmp_path / "bad.state"
    with zipfile.ZipFile(bad, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    res = run_cli("merge", bad)
    assert res.code != 0 and "span" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("bad", ["nan", "null"])
def test_a_bad_value_in_a_later_part_names_the_files_own_row(tmp_path: Path, bad: str) -> None:
    """A part starts at row 700 of its file: the error still says row 750 of that file."""
    folder = tmp_path / "d"
    folder.mkdir()
    pq.write_table(pa.table({"pred": np.zeros(500), "target": np.zeros(500)}), folder / "0.parquet")
    pred = pa.array([0.0] * 750 + [None if bad == "null" else float("nan")] + [0.0] * 249)
    pq.write_table(
        pa.table({"pred": pred, "target": np.zeros(1000)}), folder / "a.parquet", row_group_size=100
    )
    for split in ("128", "0"):
        res = run_cli("mse", folder, *COLS, "--split-rows", split)
        assert res.code == 3 and res.stdout == ""
        assert f"{folder / 'a.parquet'}: row 750, column 'pred'" in res.stderr, res.stderr
        assert "(row 1250 of the whole input)" in res.stderr


def test_a_bad_value_in_a_file_beside_shards_names_its_own_row(tmp_path: Path) -> None:
    """The single file beside the shards is the continuation of them: its row 1400 is row 1400."""
    folder = tmp_path / "p"
    folder.mkdir()
    np.save(folder / "a.npy", np.zeros(600))
    np.save(folder / "b.npy", np.zeros(900))
    targets = np.zeros(1500)
    targets[1400] = np.nan
    np.save(tmp_path / "t.npy", targets)
    for split in ("128", "0"):
        res = run_cli("mse", folder, tmp_path / "t.npy", "--split-rows", split)
        assert res.code == 3 and res.stdout == ""
        assert f"{tmp_path / 't.npy'}: row 1400" in res.stderr, res.stderr
        assert "(row 1400 of the whole input)" in res.stderr


def test_bootstrap_interval_is_the_same_with_or_without_cutting(tmp_path: Path) -> None:
    """An example's bootstrap identity is (file, row within file): cutting a file into parts
    must not change any example's weights, so the interval is the unsplit run's (1e-12)."""
    root, _ = _hive(tmp_path)
    runs = [
        run_cli("mse", root, *COLS, "--bootstrap", "200", "--split-rows", n, "-f", "json")
        for n in ("128", "0")
    ]
    for r in runs:
        assert r.code == 0, r.stderr
    split, whole = (r.json() for r in runs)
    assert len(_parts(split)) > len(_parts(whole))
    for a, b in zip(split["ci"]["value"], whole["ci"]["value"], strict=True):
        assert _close(a, b)
