"""`--save-state` and `losscli merge` through the real CLI, on files pandas and numpy write.

Evaluating two halves apart and merging their states must print what one run over the
concatenation prints: figures within 1e-12 (here: the float64 references computed in the test),
counts exact, worst rows identical and numbered as in the concatenation.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli

REL = 1e-12


def close(a: float, b: float) -> bool:
    return abs(a - b) <= REL * max(abs(a), abs(b))


@pytest.fixture
def halves(tmp_path: Path) -> tuple[Path, Path, Path, np.ndarray, np.ndarray]:
    """Two CSVs as pandas writes them (index column included) and their concatenation."""
    rng = np.random.default_rng(11)
    n = 300
    p, y = rng.normal(size=n) * 4, rng.normal(size=n)
    a, b, whole = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "whole.csv"
    frame = pd.DataFrame({"y_pred": p, "y_true": y})
    frame.iloc[:120].to_csv(a)
    frame.iloc[120:].reset_index(drop=True).to_csv(b)
    frame.to_csv(whole)
    return a, b, whole, p, y


def test_two_halves_merged_report_the_concatenation(tmp_path: Path, halves) -> None:
    a, b, whole, p, y = halves
    sa, sb = tmp_path / "a.state", tmp_path / "b.state"
    assert run_cli("mse", a, "--save-state", sa, "-f", "json").code == 0
    assert run_cli("mse", b, "--row-offset", 120, "--save-state", sb, "-f", "json").code == 0
    merged = run_cli("merge", sa, sb, "-f", "json")
    assert merged.code == 0, merged.stderr
    m = merged.json()
    one = run_cli("mse", whole, "-f", "json").json()
    err = p - y
    assert close(m["value"], float(np.mean(err**2)))
    assert close(m["mae"], float(np.mean(np.abs(err))))
    assert close(m["rmse"], math.sqrt(float(np.mean(err**2))))
    assert m["n"] == 300 == one["n"]
    assert [e["row"] for e in m["examples"]] == [e["row"] for e in one["examples"]]
    worst = np.argsort(-(err**2), kind="stable")[:10]
    assert [e["row"] for e in m["examples"]] == worst.tolist()
    assert [e["loss"] for e in m["examples"]] == [e["loss"] for e in one["examples"]]
    parts = m["provenance"]["parts"]
    assert [Path(part["inputs"][0]["path"]).name for part in parts] == ["a.csv", "b.csv"]
    assert all(part["inputs"][0]["size"] > 0 for part in parts)
    # merging in the other order changes nothing
    assert run_cli("merge", sb, sa, "-f", "json").json()["examples"] == m["examples"]


def test_every_output_option_works_on_merge(tmp_path: Path, halves) -> None:
    a, b, _, p, y = halves
    sa, sb, sm = tmp_path / "a.state", tmp_path / "b.state", tmp_path / "m.state"
    run_cli("mse", a, "--save-state", sa)
    run_cli("mse", b, "--row-offset", 120, "--save-state", sb)
    mse = float(np.mean((p - y) ** 2))
    r = run_cli("merge", sa, sb, "--format", "value", "--save-state", sm)
    assert r.code == 0 and close(float(r.stdout), mse)
    assert close(float(run_cli("merge", sm, "-f", "value").stdout), mse)  # the merged state, saved
    assert run_cli("merge", sa, sb, "--fail-above", mse / 2).code == 1
    assert run_cli("merge", sa, sb, "--fail-below", mse / 2).code == 0
    tsv = run_cli("merge", sa, sb, "-f", "tsv").stdout.splitlines()
    assert tsv[0].startswith("metric\toutput\tvalue\tn") and tsv[1].startswith("mse\tall\t")
    assert len(run_cli("merge", sa, sb, "-f", "json", "--top", 3).json()["examples"]) == 3


def test_a_state_is_saved_atomically_and_reloads_equal(tmp_path: Path, halves) -> None:
    a, *_ = halves
    s = tmp_path / "a.state"
    first = run_cli("mse", a, "-f", "json", "--save-state", s)
    assert zipfile.is_zipfile(s) and "state.json" in zipfile.ZipFile(s).namelist()
    again = run_cli("merge", s, "-f", "json")
    for key in ("value", "n", "mae", "rmse", "examples", "columns", "files"):
        assert again.json()[key] == first.json()[key], key
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".") or "tmp" in p.name] == []


@pytest.mark.parametrize(
    ("second", "field"),
    [
        (["mae"], "metric"),
        (["ce", "--ignore-index", "0"], "ignore_index"),
        (["bce", "--input", "logits"], "input"),
    ],
)
def test_incompatible_states_are_refused_naming_the_field(
    tmp_path: Path, second: list[str], field: str
) -> None:
    rng = np.random.default_rng(3)
    if second[0] in ("mae",):
        p = tmp_path / "p.npy"
        np.save(p, rng.normal(size=(20, 1)))
        first_cmd, second_cmd = ["mse", p, p], [second[0], p, p]
    elif second[0] == "ce":
        z, t = tmp_path / "z.npy", tmp_path / "t.npy"
        np.save(z, rng.normal(size=(20, 3)))
        np.save(t, rng.integers(0, 3, 20))
        first_cmd, second_cmd = ["ce", z, t], ["ce", z, t, *second[1:]]
    else:
        pr, t = tmp_path / "pr.npy", tmp_path / "t.npy"
        np.save(pr, rng.uniform(0.01, 0.99, 20))
        np.save(t, rng.integers(0, 2, 20).astype(float))
        first_cmd, second_cmd = ["bce", pr, t], ["bce", pr, t, *second[1:]]
    s1, s2 = tmp_path / "1.state", tmp_path / "2.state"
    assert run_cli(*first_cmd, "--save-state", s1).code == 0
    assert run_cli(*second_cmd, "--save-state", s2, "--row-offset", 20).code == 0
    r = run_cli("merge", s1, s2)
    assert r.code == 3 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and field in r.stderr, r.stderr


def test_outputs_that_differ_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    one, two = tmp_path / "one.npy", tmp_path / "two.npy"
    np.save(one, rng.normal(size=(10, 1)))
    np.save(two, rng.normal(size=(10, 2)))
    run_cli("mse", one, one, "--save-state", tmp_path / "1.state")
    run_cli("mse", two, two, "--save-state", tmp_path / "2.state")
    r = run_cli("merge", tmp_path / "1.state", tmp_path / "2.state")
    assert r.code == 3 and "outputs" in r.stderr and "1" in r.stderr and "2" in r.stderr


def test_corrupt_truncated_and_foreign_files_are_one_line_exit_3(tmp_path: Path, halves) -> None:
    a, *_ = halves
    good = tmp_path / "good.state"
    run_cli("mse", a, "--save-state", good)
    data = good.read_bytes()
    cut = tmp_path / "cut.state"
    cut.write_bytes(data[: len(data) // 2])
    text = tmp_path / "text.state"
    text.write_text("metric,value\nmse,0.5\n")
    npz = tmp_path / "arrays.npz"
    np.savez(npz, x=np.arange(3))
    for bad in (cut, text, npz, tmp_path / "missing.state"):
        r = run_cli("merge", good, bad)
        assert r.code == 3, (bad, r.stderr)
        assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1 and str(bad.name) in r.stderr
        assert "Traceback" not in r.stderr


def test_a_crafted_pickle_is_never_executed(tmp_path: Path, halves) -> None:
    """A state whose array member is a pickle that would create a file when unpickled."""
    a, *_ = halves
    good = tmp_path / "good.state"
    run_cli("mse", a, "--save-state", good)
    marker = tmp_path / "pwned"
    payload = np.array([_Boom(str(marker))], dtype=object)
    evil = tmp_path / "evil.state"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for name in src.namelist():
            if name.endswith(".npy"):
                import io

                buf = io.BytesIO()
                np.save(buf, payload, allow_pickle=True)
                dst.writestr(name, buf.getvalue())
            else:
                dst.writestr(name, src.read(name))
    r = run_cli("merge", evil)
    assert r.code == 3 and not marker.exists(), r.stderr


class _Boom:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.path, "w"))


def test_naming_a_state_twice_warns_and_counts_twice(tmp_path: Path, halves) -> None:
    a, _, _, p, y = halves
    s = tmp_path / "a.state"
    run_cli("mse", a, "--save-state", s)
    r = run_cli("merge", s, s, "-f", "json")
    assert r.code == 0 and "more than once" in r.stderr
    assert r.json()["n"] == 240
    assert close(r.json()["value"], float(np.mean((p[:120] - y[:120]) ** 2)))


def test_overlapping_rows_of_different_files_warn(tmp_path: Path, halves) -> None:
    a, b, *_ = halves
    run_cli("mse", a, "--save-state", tmp_path / "a.state")
    run_cli("mse", b, "--save-state", tmp_path / "b.state")  # forgot --row-offset
    r = run_cli("merge", tmp_path / "a.state", tmp_path / "b.state")
    assert r.code == 0 and "--row-offset" in r.stderr and "overlap" in r.stderr


def test_an_empty_part_is_valid_and_only_the_merged_result_is_judged(tmp_path: Path, halves) -> None:
    a, *_ = halves
    empty = tmp_path / "empty.csv"
    pd.DataFrame({"y_pred": [np.nan, np.nan], "y_true": [1.0, 2.0]}).to_csv(empty, index=False)
    r = run_cli("mse", empty, "--nan", "skip", "--save-state", tmp_path / "e.state", "-f", "json")
    assert r.code == 0 and r.json()["status"] == "empty" and r.json()["value"] is None
    assert run_cli("mse", empty, "--nan", "skip").code == 3  # without --save-state: nothing to score
    run_cli("mse", a, "--save-state", tmp_path / "a.state")
    m = run_cli("merge", tmp_path / "e.state", tmp_path / "a.state", "-f", "json")
    assert m.code == 0, m.stderr
    assert m.json()["n"] == 120 and m.json()["skipped"] == 2
    alone = run_cli("merge", tmp_path / "e.state")
    assert alone.code == 3 and "nothing was scored" in alone.stderr


def test_weights_summing_to_zero_are_judged_on_the_merge(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    p, y = rng.normal(size=10), rng.normal(size=10)
    for name, w in (("zero", np.zeros(10)), ("ones", np.ones(10))):
        pd.DataFrame({"y_pred": p, "y_true": y, "w": w}).to_csv(tmp_path / f"{name}.csv", index=False)
    z = run_cli("mse", tmp_path / "zero.csv", "--weight-col", "w", "--save-state", tmp_path / "z.state")
    assert z.code == 0, z.stderr
    run_cli(
        "mse",
        tmp_path / "ones.csv",
        "--weight-col",
        "w",
        "--row-offset",
        10,
        "--save-state",
        tmp_path / "o.state",
    )
    m = run_cli("merge", tmp_path / "z.state", tmp_path / "o.state", "-f", "json")
    assert m.code == 0 and close(m.json()["value"], float(np.mean((p - y) ** 2)))
    assert run_cli("merge", tmp_path / "z.state").code == 3


def test_perplexity_sequences_of_two_jsonl_parts_number_as_the_whole(tmp_path: Path) -> None:
    """Server log-probs split into two files: sequences keep their global numbers."""
    rng = np.random.default_rng(6)
    seqs = [(-rng.exponential(2.0, size=int(k))).tolist() for k in rng.integers(3, 9, 7)]

    def write(path: Path, rows: list[list[float]]) -> None:
        path.write_text("".join(json.dumps({"logprobs": r}) + "\n" for r in rows))

    write(tmp_path / "all.jsonl", seqs)
    write(tmp_path / "a.jsonl", seqs[:3])
    write(tmp_path / "b.jsonl", seqs[3:])
    tokens_a = sum(len(s) for s in seqs[:3])
    run_cli("perplexity", "--logprobs", tmp_path / "a.jsonl", "--save-state", tmp_path / "a.state")
    no_seq = run_cli("perplexity", "--logprobs", tmp_path / "b.jsonl", "--row-offset", tokens_a)
    assert no_seq.code == 2 and "--sequence-offset" in no_seq.stderr
    r = run_cli(
        "perplexity",
        "--logprobs",
        tmp_path / "b.jsonl",
        "--row-offset",
        tokens_a,
        "--sequence-offset",
        3,
        "--save-state",
        tmp_path / "b.state",
    )
    assert r.code == 0, r.stderr
    m = run_cli("merge", tmp_path / "b.state", tmp_path / "a.state", "-f", "json").json()
    whole = run_cli("perplexity", "--logprobs", tmp_path / "all.jsonl", "-f", "json").json()
    flat = np.concatenate([np.asarray(s) for s in seqs])
    assert close(m["cross_entropy"], float(-flat.mean())) and m["n"] == len(flat)
    assert m["sequence_rows"] == whole["sequence_rows"]
    assert m["sequences"] == 7


def test_save_state_into_a_missing_directory_is_refused_before_reading(tmp_path: Path) -> None:
    r = run_cli("mse", tmp_path / "nope.csv", "--save-state", tmp_path / "no" / "dir" / "s.state")
    assert r.code == 4 and "does not exist" in r.stderr  # the output is checked before the input


def test_shifted_and_unshifted_parts_do_not_merge(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    logits, ids = tmp_path / "l.npy", tmp_path / "i.npy"
    np.save(logits, rng.normal(size=(4, 6, 9)))
    np.save(ids, rng.integers(0, 9, (4, 6)))
    run_cli(
        "perplexity", "--logits", logits, "--targets", ids, "--shift", "--save-state", tmp_path / "s.state"
    )
    run_cli("perplexity", "--logits", logits, "--targets", ids, "--save-state", tmp_path / "u.state")
    r = run_cli("merge", tmp_path / "s.state", tmp_path / "u.state")
    assert r.code == 3 and "shift" in r.stderr and "u.state" in r.stderr


def test_a_refusal_names_the_state_that_does_not_fit(tmp_path: Path, halves) -> None:
    a, b, *_ = halves
    run_cli("mse", a, "--save-state", tmp_path / "a.state")
    run_cli("mse", b, "--row-offset", 120, "--save-state", tmp_path / "b.state")
    run_cli("mae", b, "--row-offset", 120, "--save-state", tmp_path / "odd.state")
    r = run_cli("merge", tmp_path / "a.state", tmp_path / "b.state", tmp_path / "odd.state")
    assert r.code == 3 and "odd.state" in r.stderr and "'mae'" in r.stderr and "a.state" in r.stderr


def test_a_state_of_an_unknown_metric_is_exit_3_naming_the_file(tmp_path: Path, halves) -> None:
    a, *_ = halves
    good = tmp_path / "good.state"
    run_cli("mse", a, "--save-state", good)
    odd = tmp_path / "odd.state"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(odd, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "state.json":
                data = data.replace(b'"metric":"mse"', b'"metric":"nosuch"')
                assert b"nosuch" in data
            dst.writestr(name, data)
    r = run_cli("merge", odd)
    assert r.code == 3 and "odd.state" in r.stderr and "nosuch" in r.stderr


@pytest.mark.parametrize("target", ["/dev/null", "-"])
def test_save_state_never_replaces_a_device_or_means_stdout(tmp_path: Path, halves, target: str) -> None:
    a, *_ = halves
    r = run_cli("mse", a, "--save-state", target)
    assert r.code in (2, 4) and r.stdout == ""
    assert Path("/dev/null").is_char_device()
    assert not (Path.cwd() / "-").exists()


def test_save_state_through_a_symlink_writes_its_target(tmp_path: Path, halves) -> None:
    a, *_ = halves
    real = tmp_path / "real.state"
    real.write_text("old")
    link = tmp_path / "link.state"
    link.symlink_to(real)
    assert run_cli("mse", a, "--save-state", link).code == 0
    assert link.is_symlink() and zipfile.is_zipfile(real)


def test_an_empty_part_has_no_figures_and_no_gate_passes(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    pd.DataFrame({"y_pred": [np.nan], "y_true": [1.0]}).to_csv(empty, index=False)
    r = run_cli("mse", empty, "--nan", "skip", "--save-state", tmp_path / "e.state", "-f", "json")
    assert r.code == 0 and r.json()["rmse"] is None and r.json()["mae"] is None and r.json()["rows"] == 1
    gated = run_cli("mse", empty, "--nan", "skip", "--save-state", tmp_path / "e.state", "--fail-above", 1)
    assert gated.code == 1 and "no value" in gated.stderr


def test_json_rows_is_the_next_parts_row_offset(tmp_path: Path) -> None:
    """A null log-probability keeps its row (ignored): ``rows`` counts every token read."""
    lines = [{"logprobs": [-0.5, None, -1.0]}, {"logprobs": [-2.0, -0.25]}]
    path = tmp_path / "lp.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    r = run_cli("perplexity", "--logprobs", path, "-f", "json").json()
    assert r["n"] == 4 and r["ignored"] == 1 and r["rows"] == 5


def test_top_beyond_what_the_parts_kept_is_said(tmp_path: Path, halves) -> None:
    a, b, _, p, y = halves
    run_cli("mse", a, "--top", 50, "--save-state", tmp_path / "a.state")
    run_cli("mse", b, "--row-offset", 120, "--save-state", tmp_path / "b.state")  # keeps 20
    r = run_cli("merge", tmp_path / "a.state", tmp_path / "b.state", "--top", 50, "-f", "json")
    assert r.code == 0 and "--top 50" in r.stderr
    worst = np.argsort(-((p - y) ** 2), kind="stable")[:20].tolist()
    assert [e["row"] for e in r.json()["examples"]] == worst  # the 20 the union can vouch for


def test_python_merge_takes_one_path_and_make_metric_still_works(tmp_path: Path, halves) -> None:
    import losscli
    from losscli import Evaluator, make_metric

    a, *_ = halves
    s = tmp_path / "a.state"
    run_cli("mse", a, "--save-state", s)
    assert losscli.merge(str(s)).n == 120
    ev = Evaluator(make_metric("mse"))
    ev.update([1.0, 2.0], [2.0, 2.0])
    assert ev.report().value == 0.5
    with pytest.raises(AttributeError, match="first_row"):
        ev.offset = 5


def test_the_readme_evaluator_example_merges_without_warnings() -> None:
    import losscli
    from losscli import Evaluator

    rng = np.random.default_rng(12)
    p, t = rng.normal(size=1000), rng.normal(size=1000)
    a = Evaluator("mse")
    a.update(p[:600], t[:600])
    b = Evaluator("mse")
    b.update(p[600:], t[600:], first_row=600)
    report = a.state.merge(b.state).report()
    assert report.warnings == [] and close(report.value, float(np.mean((p - t) ** 2)))
    assert report.examples[0].row == int(np.argmax((p - t) ** 2))
    with pytest.raises(losscli.UsageError, match="first chunk"):
        a.update(rng.normal(size=(3, 2)), rng.normal(size=(3, 2)))
    with pytest.raises(losscli.UsageError, match="weights"):
        a.update(p[:3], t[:3], np.ones(3))


def test_numpy_scalars_are_option_values_and_errors_use_python_words() -> None:
    import losscli
    from losscli import Evaluator

    p, t = np.array([0.0, 3.0]), np.array([0.2, 0.0])
    # errors 0.2 and 3.0 against delta 0.5: 0.5 * 0.04 and 0.5 * (3 - 0.25)
    assert close(losscli.huber(p, t, delta=np.float32(0.5)), (0.02 + 1.375) / 2)
    with pytest.raises(losscli.UsageError) as err:
        Evaluator("huber", delta=0)
    assert "--delta" not in str(err.value) and "delta" in str(err.value)


def test_a_part_reports_the_offsets_of_the_next_part(tmp_path: Path) -> None:
    lines = [{"logprobs": [-0.5, -1.0]}, {"logprobs": [None]}, {"logprobs": [-2.0, -0.25]}]
    path = tmp_path / "lp.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    r = run_cli("perplexity", "--logprobs", path, "-f", "json").json()
    assert r["sequences"] == 2 and r["sequences_read"] == 3 and r["rows"] == 5


def test_an_output_never_replaces_an_input(tmp_path: Path) -> None:
    p = tmp_path / "p.npy"
    np.save(p, np.arange(4.0))
    before = p.read_bytes()
    for option in ("--save-state", "--per-example"):
        name = p if option == "--save-state" else tmp_path / "p.csv"
        if option == "--per-example":
            pd.DataFrame({"y_pred": [1.0], "y_true": [2.0]}).to_csv(name, index=False)
            r = run_cli("mse", name, option, name)
        else:
            r = run_cli("mse", p, p, option, name)
        assert r.code == 2 and "also an input" in r.stderr
    assert p.read_bytes() == before


def test_errors_in_a_part_name_the_files_row_and_the_whole_datas(tmp_path: Path) -> None:
    p, t = tmp_path / "p.npy", tmp_path / "t.npy"
    np.save(p, np.array([0.1, 0.2, 0.3]))
    np.save(t, np.array([0.0, 1.7, 1.0]))  # 1.7 is no bce target
    r = run_cli("bce", p, t, "--row-offset", 1000)
    assert r.code == 3 and "row 1:" in r.stderr and "row 1001 of the whole input" in r.stderr


def test_odd_file_and_column_names_still_save(tmp_path: Path) -> None:
    odd = tmp_path / "bad\udcffname.npy"
    with open(os.fsencode(odd), "wb") as f:
        np.save(f, np.arange(3.0))
    np.save(tmp_path / "t.npy", np.arange(3.0) + 1)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "losscli",
            "mse",
            os.fsencode(odd),
            os.fsencode(tmp_path / "t.npy"),
            "--save-state",
            os.fsencode(tmp_path / "s.state"),
            "-f",
            "value",
        ],
        capture_output=True,
    )
    assert proc.returncode == 0 and float(proc.stdout) == 1.0, proc.stderr
    tab = tmp_path / "tab.csv"
    pd.DataFrame({"y\tpred": [1.0, 2.0], "y_true": [1.0, 4.0]}).to_csv(tab, index=False)
    r = run_cli(
        "mse", tab, "--pred-col", "y\tpred", "--target-col", "y_true", "--save-state", tmp_path / "s2.state"
    )
    assert r.code == 0, r.stderr
    assert close(float(run_cli("merge", tmp_path / "s2.state", "-f", "value").stdout), 2.0)


def test_an_overflowing_companion_is_said(tmp_path: Path) -> None:
    p, t = tmp_path / "p.npy", tmp_path / "t.npy"
    np.save(p, np.array([1e200, 0.0]))
    np.save(t, np.array([0.0, 0.0]))
    r = run_cli("mae", p, t, "-f", "json")
    assert r.code == 0 and close(r.json()["value"], 5e199)
    assert r.json()["mse"] is None and "overflowed" in r.stderr


def test_merge_refuses_pipes_and_names_gaps(tmp_path: Path, halves) -> None:
    a, b, *_ = halves
    run_cli("mse", a, "--save-state", tmp_path / "a.state")
    run_cli("mse", b, "--row-offset", 200, "--save-state", tmp_path / "b.state")  # should be 120
    r = run_cli("merge", "-", stdin=(tmp_path / "a.state").read_bytes())
    assert r.code == 3 and "not stdin" in r.stderr
    gap = run_cli("merge", tmp_path / "a.state", tmp_path / "b.state")
    assert gap.code == 0 and "rows 120..199 are in none of the parts" in gap.stderr
