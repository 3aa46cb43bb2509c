"""What a merge must say about its parts, and keep exact: sequences claimed by two parts, one
input counted twice, worst rows of parts saved with different capacities, implausible state
files, and merges of hundreds of parts. Expected texts and values are written out here from
the data (row ranges, sequence ids, sorted losses), never copied from the program's output."""

from __future__ import annotations

import dataclasses
import itertools
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import losscli
from losscli.errors import EXIT_BAD_INPUT, EXIT_OUTPUT, OutputError
from losscli.state import EvalState, InputFile, LossState, PartSummary, StateFileError, WorstExamples
from state_samples import eval_state, make_data, plain_text, tallies

SEQ_TAIL = (
    "their per-sequence rows are added together (a sequence cut between parts, or a wrong "
    "--sequence-offset): worst-token positions of the later part count from its own start; "
    "give --sequence-offset N (N = the sequences before the later part) or cut parts at "
    "sequence boundaries"
)


def seq_warning(first: int, last: int, a: str, b: str) -> str:
    return f"sequences {first}..{last} of parts {a} and {b} overlap: {SEQ_TAIL}"


def sequence_warnings(warnings: list[str]) -> list[str]:
    return [w for w in warnings if w.startswith("sequences ")]


# ---- 1. sequences claimed by two parts --------------------------------------------------------


def _perplexity_files(tmp_path: Path, sequences: int, t: int = 4, v: int = 5, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(sequences, t, v))
    ids = rng.integers(0, v, (sequences, t))
    return logits, ids


def _save_npy(tmp_path: Path, name: str, logits: np.ndarray, ids: np.ndarray) -> tuple[Path, Path]:
    lp, tp = tmp_path / f"{name}_logits.npy", tmp_path / f"{name}_ids.npy"
    np.save(lp, logits)
    np.save(tp, ids)
    return lp, tp


def test_a_sequence_offset_that_contradicts_the_row_offset_is_refused(tmp_path: Path) -> None:
    """64 sequences of 4 tokens in parts of 40 and 24: the second part starts at token 160, so
    --sequence-offset 20 (instead of 40) cannot be right; refused before anything is read."""
    t = 4
    logits, ids = _perplexity_files(tmp_path, 64, t)
    b = _save_npy(tmp_path, "b", logits[40:], ids[40:])
    with pytest.raises(losscli.UsageError, match="contradicts"):
        losscli.evaluate("perplexity", *b, row_offset=40 * t, sequence_offset=20)
    ok = losscli.evaluate("perplexity", *b, row_offset=40 * t, sequence_offset=40)
    assert min(r["sequence"] for r in ok.sequences) >= 40 and ok.sequences_read == 24


def test_a_forgotten_row_offset_on_equal_length_parts_warns_twice(tmp_path: Path) -> None:
    t = 4
    logits, ids = _perplexity_files(tmp_path, 10, t, seed=1)
    a = _save_npy(tmp_path, "a", logits[:6], ids[:6])
    b = _save_npy(tmp_path, "b", logits[6:], ids[6:])
    losscli.evaluate("perplexity", *a, save_state=str(tmp_path / "a.state"))
    losscli.evaluate("perplexity", *b, save_state=str(tmp_path / "b.state"))  # no --row-offset
    m = EvalState.load(tmp_path / "a.state").merge(EvalState.load(tmp_path / "b.state"))
    la, lb = m.header.files["preds"].split(" + ")
    assert sequence_warnings(m.header.warnings) == [seq_warning(0, 3, la, lb)]  # b holds 4 sequences
    rows = [w for w in m.header.warnings if w.startswith("rows ")]
    assert rows == [
        f"rows 0..{4 * t - 1} of parts {la} and {lb} overlap: worst rows are numbered as if they "
        f"were the same rows; evaluate the later part with --row-offset {6 * t} to number rows "
        "as in the concatenation"
    ]


def test_a_sequence_cut_between_csv_parts_warns_that_positions_restart(tmp_path: Path) -> None:
    """Sequence 1 has tokens in both parts: summed as it should be, but its positions in the
    second part start at 0 again (in the whole file the -4.0 token is at position 2)."""
    (tmp_path / "a.csv").write_text("seq,logprob\n0,-1.0\n1,-2.0\n1,-3.0\n")
    (tmp_path / "b.csv").write_text("seq,logprob\n1,-4.0\n1,-0.5\n2,-1.5\n")
    a_csv, b_csv = str(tmp_path / "a.csv"), str(tmp_path / "b.csv")  # the labels: paths as given
    losscli.evaluate("perplexity", None, logprobs=a_csv, seq_col="seq", save_state=str(tmp_path / "a.state"))
    losscli.evaluate(
        "perplexity",
        None,
        logprobs=b_csv,
        seq_col="seq",
        row_offset=3,
        sequence_offset=1,
        save_state=str(tmp_path / "b.state"),
    )
    report = losscli.merge([tmp_path / "a.state", tmp_path / "b.state"])
    assert sequence_warnings(report.warnings) == [seq_warning(1, 1, a_csv, b_csv)]
    one = report.sequences[1]
    assert one["tokens"] == 4 and one["nll"] == pytest.approx((2.0 + 3.0 + 4.0 + 0.5) / 4, rel=1e-15)
    assert one["worst_tokens"][0]["position"] == 0  # what the warning says: 2 in the whole file


def test_parts_of_one_flat_token_stream_do_not_warn(tmp_path: Path) -> None:
    """Flat (N, V) logits are one sequence cut anywhere; positions run on across parts."""
    rng = np.random.default_rng(2)
    logits, ids = rng.normal(size=(30, 6)), rng.integers(0, 6, 30)
    a = _save_npy(tmp_path, "a", logits[:12], ids[:12])
    b = _save_npy(tmp_path, "b", logits[12:], ids[12:])
    losscli.evaluate("perplexity", *a, save_state=str(tmp_path / "a.state"))
    losscli.evaluate("perplexity", *b, row_offset=12, save_state=str(tmp_path / "b.state"))
    report = losscli.merge([tmp_path / "a.state", tmp_path / "b.state"], top=5)
    assert report.warnings == []
    nll = -(logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)))[np.arange(30), ids]
    (seq,) = report.sequences
    assert seq["tokens"] == 30 and seq["nll"] == pytest.approx(nll.mean(), rel=1e-12)
    worst = np.argsort(-nll, kind="stable")[:3]
    assert [w["position"] for w in seq["worst_tokens"]] == worst.tolist()  # global positions


def test_sequence_ranges_that_only_touch_do_not_warn() -> None:
    a = eval_state(make_data(70, rows=40, row_offset=0, seqs=(0, 5)), "a.csv")
    b = eval_state(make_data(71, rows=40, row_offset=43, seqs=(5, 5)), "b.csv")
    ra, rb = a.tallies.sequences, b.tallies.sequences
    assert ra is not None and rb is not None and ra.end <= rb.first  # the data's ranges touch at most
    assert a.merge(b).header.warnings == []


def test_the_part_summary_keeps_the_sequence_range_through_a_save(tmp_path: Path) -> None:
    a = eval_state(make_data(72, row_offset=0, seqs=(3, 4)), "a.csv")
    b = eval_state(make_data(73, rows=10, row_offset=43, seqs=(100, 2)), "b.csv")
    b.tallies.sequences = None
    m = a.merge(b)
    m.save(tmp_path / "m.state")
    back = EvalState.load(tmp_path / "m.state")
    got = [p.summary.sequences if p.summary else "missing" for p in back.header.provenance.parts]
    seqs = a.tallies.sequences
    assert seqs is not None and got == [(seqs.first, seqs.count), None]
    assert PartSummary.from_plain(PartSummary(sequences=(7, 2)).to_plain(), "s").sequences == (7, 2)


# ---- 2. one input counted twice ---------------------------------------------------------------


@pytest.fixture
def shards(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    p, y = rng.normal(size=240), rng.normal(size=240)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for path, part in ((a, slice(0, 120)), (b, slice(120, 240))):
        lines = [f"{float(u)!r},{float(v)!r}\n" for u, v in zip(p[part], y[part], strict=True)]
        path.write_text("y_pred,y_true\n" + "".join(lines))
    return a, b, p, y


def test_a_copy_of_a_state_is_counted_twice_with_a_warning(tmp_path: Path, shards: Any) -> None:
    a, _, p, y = shards
    losscli.evaluate("mse", str(a), save_state=str(tmp_path / "s0.state"))
    shutil.copy(tmp_path / "s0.state", tmp_path / "copy.state")
    report = losscli.merge([tmp_path / "s0.state", tmp_path / "copy.state"])
    want = f"{a.resolve()} was read by two parts (rows 0.. and 0..): its rows count twice"
    assert report.warnings == [want]
    assert report.n == 240
    assert report.value == pytest.approx(float(np.mean((p[:120] - y[:120]) ** 2)), rel=1e-12)


def test_one_shard_evaluated_at_two_row_offsets_is_counted_twice_with_a_warning(
    tmp_path: Path, shards: Any
) -> None:
    a, b, *_ = shards
    losscli.evaluate("mse", str(a), save_state=str(tmp_path / "a0.state"))
    losscli.evaluate("mse", str(a), row_offset=120, save_state=str(tmp_path / "a120.state"))
    losscli.evaluate("mse", str(b), row_offset=240, save_state=str(tmp_path / "b.state"))
    paths = [tmp_path / n for n in ("b.state", "a120.state", "a0.state")]
    report = losscli.merge(paths)
    assert report.warnings == [
        f"{a.resolve()} was read by two parts (rows 0.. and 120..): its rows count twice"
    ]
    assert report.n == 360


def test_a_state_named_three_times_says_three_times(tmp_path: Path, shards: Any) -> None:
    a, *_ = shards
    s = tmp_path / "s.state"
    losscli.evaluate("mse", str(a), save_state=str(s))
    report = losscli.merge([s, s, s])
    want = f"{a.resolve()} was read by 3 parts (rows 0.., 0.. and 0..): its rows count 3 times"
    assert want in report.warnings and report.n == 360
    assert sum("was read by" in w for w in report.warnings) == 1  # one line per file, not per pair


def test_parts_of_different_files_and_one_file_in_two_roles_do_not_warn(tmp_path: Path, shards: Any) -> None:
    a, b, *_ = shards  # each part reads its CSV as preds and as targets: one file, one part
    losscli.evaluate("mse", str(a), save_state=str(tmp_path / "a.state"))
    losscli.evaluate("mse", str(b), row_offset=120, save_state=str(tmp_path / "b.state"))
    assert losscli.merge([tmp_path / "a.state", tmp_path / "b.state"]).warnings == []


def test_parts_from_arrays_are_not_one_file_but_their_rows_may_overlap(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    p, y = rng.normal(size=50), rng.normal(size=50)
    losscli.evaluate("mse", p[:20], y[:20], save_state=str(tmp_path / "a.state"))
    losscli.evaluate("mse", p[20:], y[20:], row_offset=20, save_state=str(tmp_path / "b.state"))
    losscli.evaluate("mse", p[20:], y[20:], save_state=str(tmp_path / "forgot.state"))
    assert losscli.merge([tmp_path / "a.state", tmp_path / "b.state"]).warnings == []
    a, forgot = (EvalState.load(tmp_path / f"{n}.state") for n in ("a", "forgot"))
    label = a.header.files["preds"]
    assert a.merge(forgot).header.warnings == [
        f"rows 0..19 of parts {label} (from row 0) and {label} (from row 0) overlap: worst rows are "
        "numbered as if they were the same rows; evaluate the later part with --row-offset 20 to "
        "number rows as in the concatenation"
    ]


def test_a_file_changed_between_runs_is_another_input() -> None:
    """Same path, another modification time: not the same rows twice, but overlapping rows."""
    d = make_data(74, rows=10, seqs=(0, 3))
    old, new = eval_state(d, "a.csv"), eval_state(d, "a.csv")
    changed = (InputFile("preds", "/data/a.csv", 1005, 1.8e9),)
    new.header.provenance = dataclasses.replace(new.header.provenance, inputs=changed)
    seqs = old.tallies.sequences
    assert seqs is not None
    both = "parts a.csv (from row 0) and a.csv (from row 0) overlap"
    assert old.merge(new).header.warnings == [
        f"rows 0..12 of {both}: worst rows are numbered as if they were the same rows; evaluate "
        "the later part with --row-offset 13 to number rows as in the concatenation",  # 10 + 3 rows
        f"sequences {seqs.first}..{seqs.end - 1} of {both}: {SEQ_TAIL}",
    ]


# ---- 3. worst rows of parts saved with different capacities ---------------------------------


def _worst(capacity: int, rows: list[int], losses: list[float]) -> WorstExamples:
    w = WorstExamples(capacity)
    w.offer(np.array(rows, dtype=np.int64), np.array(losses), [(r,) for r in rows])
    return w


def test_worst_examples_merge_keeps_only_what_every_part_guarantees() -> None:
    rows_a, loss_a = list(range(10)), [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 0.5, 6.0, 4.0]
    rows_b, loss_b = list(range(10, 16)), [8.5, 0.1, 9.5, 4.5, 7.5, 6.5]
    a, b = _worst(5, rows_a, loss_a), _worst(3, rows_b, loss_b)
    # b dropped its 4th worst (6.5): only the 3 worst of the union are known for sure
    union = sorted(zip(loss_a + loss_b, rows_a + rows_b, strict=True), key=lambda x: (-x[0], x[1]))[:3]
    for m in (a.merge(b), b.merge(a)):
        assert m.capacity == 3
        assert m.rows.tolist() == [r for _, r in union] and m.losses.tolist() == [v for v, _ in union]
        assert m.details == [(r,) for _, r in union]
    empty = WorstExamples(2)
    for m in (a.merge(empty), empty.merge(a)):
        assert m.capacity == 2 and m.rows.tolist() == [2, 6]  # losses 9.0 and 8.0


def test_loss_state_merge_takes_the_smaller_capacity() -> None:
    a, b = tallies(make_data(75), capacity=8), tallies(make_data(76, row_offset=43), capacity=3)
    for m in (a.merge(b), b.merge(a), a.merge(LossState(2, 3))):
        assert m.worst_capacity == m.worst.capacity == 3 and len(m.worst.rows) == 3


def test_an_empty_part_merges_with_its_own_capacity() -> None:
    full = eval_state(make_data(77, outputs=3, row_offset=10), "full.csv")
    empty = eval_state(make_data(78, rows=0, outputs=1), "empty.csv", tallied=LossState(1, 2))
    empty.header.binding = None
    want = sorted(zip(-full.tallies.worst.losses, full.tallies.worst.rows, strict=True))[:2]
    for m in (full.merge(empty), empty.merge(full)):
        assert m.tallies.worst_capacity == m.tallies.worst.capacity == 2
        assert m.tallies.worst.rows.tolist() == [int(r) for _, r in want]


def test_parts_saved_with_different_tops_give_the_worst_rows_of_the_smaller(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    p, y = rng.normal(size=200) * 3, rng.normal(size=200)
    losscli.evaluate("mse", p[:100], y[:100], top=50, save_state=str(tmp_path / "a.state"))
    losscli.evaluate("mse", p[100:], y[100:], top=5, row_offset=100, save_state=str(tmp_path / "b.state"))
    caps = [EvalState.load(tmp_path / f"{n}.state").tallies.worst_capacity for n in "ab"]
    assert caps == [50, 20]  # a part keeps max(top, 20) rows
    report = losscli.merge([tmp_path / "a.state", tmp_path / "b.state"], top=50)
    loss = (p - y) ** 2
    order = sorted(range(200), key=lambda i: (-loss[i], i))[:20]
    assert [e.row for e in report.examples] == order
    assert [e.loss for e in report.examples] == [float(loss[i]) for i in order]


# ---- 4. implausible values are refused on load ------------------------------------------------


def _merged_plain() -> tuple[dict, dict]:
    a = eval_state(make_data(80), "a.csv")
    b = eval_state(make_data(81, row_offset=43, seqs=(6, 6)), "b.csv")
    return a.merge(b).to_plain()


def _set(meta: dict, path: str, value: object) -> None:
    keys = path.split(".")
    node: Any = meta
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    node[int(keys[-1]) if isinstance(node, list) else keys[-1]] = value


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        *[(f"tallies.{c}", -1, f"tallies.{c}") for c in ("n", "ignored", "skipped", "clamped", "rows")],
        ("tallies.nulls", -1, "tallies.nulls"),
        *[(f"tallies.{c}", 2**63, f"tallies.{c}") for c in ("n", "rows", "nulls")],
        ("tallies.rows", 2**63 - 1, None),  # the largest int64 is a count (n <= rows holds)
        ("tallies.n", 10**6, "rows read"),  # more scored than read
        ("header.row_offset", 2**63, "header.row_offset"),
        ("header.binding.labels", [-(2**63) - 1], "header.binding.labels[0]"),
        ("header.notes", ["fine", "forged\nlosscli: all good"], "header.notes[1]"),
        ("header.warnings", ["\x1b[2Jcleared"], "header.warnings[0]"),
        ("header.files", {"preds": "a.csv\r"}, "header.files.preds"),
        ("header.files", {"pre\x1bds": "a.csv"}, "header.files (a key)"),
        ("header.columns", {"preds": ["ok", "bell\x07"]}, "header.columns.preds[1]"),
        ("header.metric_options", {"k": "\x9bc"}, "header.metric_options.k"),  # a C1 control
        ("header.provenance.parts.0.inputs.0.path", "/x\n", "header.provenance.parts[0].inputs[0].path"),
        ("header.provenance.parts.1.summary.notes", ["\x7f"], "header.provenance.parts[1].summary.notes[0]"),
        ("header.notes", ["tab\tand unicode \u00e9\u2028"], "header.notes[0]"),
        ("header.provenance.parts.0.summary.sequences", {"first": -1, "count": 2}, "sequences.first"),
        ("header.provenance.parts.0.summary.sequences", {"first": 0}, "sequences lacks 'count'"),
        ("header.provenance.parts.0.summary.sequences", [0, 6], "summary.sequences should be an object"),
    ],
)
def test_implausible_header_and_counts_are_refused(path: str, value: object, named: str | None) -> None:
    meta, arrays = _merged_plain()
    _set(meta, path, value)
    if named is None:
        assert EvalState.from_plain(meta, arrays).tallies.rows == 2**63 - 1
        return
    with pytest.raises(StateFileError) as err:
        EvalState.from_plain(meta, arrays)
    message = str(err.value)
    assert named in message and "\n" not in message and err.value.exit_code == EXIT_BAD_INPUT


def _set_array(arrays: dict, name: str, at: tuple, value: float) -> None:
    arrays[name] = arrays[name].copy()
    arrays[name][at] = value


@pytest.mark.parametrize(
    ("name", "at", "value", "named"),
    [
        ("tallies.weight_sum.terms", (0, 0), -1.0, "tallies.weight_sum totals -"),
        ("tallies.weight_sum.terms", (0, 0), math.nan, "tallies.weight_sum totals nan"),
        ("tallies.weight_sum.terms", (0, 0), -math.inf, "tallies.weight_sum totals -inf"),
        ("tallies.worst.losses", (2,), math.nan, "tallies.worst.losses holds NaN"),
        ("tallies.worst.rows", (0,), -3, "tallies.worst.rows holds a negative row"),
        ("tallies.sequences.worst_loss", (1, 0), math.nan, "tallies.sequences.worst_loss holds NaN"),
    ],
)
def test_implausible_arrays_are_refused(name: str, at: tuple, value: float, named: str) -> None:
    meta, arrays = _merged_plain()
    _set_array(arrays, name, at, value)
    with pytest.raises(StateFileError, match=named.replace(".", r"\.")):
        EvalState.from_plain(meta, arrays)


@pytest.mark.parametrize("total", [0.0, -0.0, math.inf])
def test_genuine_weight_sums_load(total: float) -> None:
    """All weights zero sum to 0; weights too large for float64 sum to inf: both happen."""
    meta, arrays = _merged_plain()
    arrays["tallies.weight_sum.terms"] = np.array([[total], [0.0]])
    back = EvalState.from_plain(meta, arrays)
    assert back.tallies.weight_sum.total()[0] == total


def test_a_state_file_with_a_control_character_is_refused(tmp_path: Path) -> None:
    import json
    import zipfile

    good = tmp_path / "good.state"
    eval_state(make_data(82), notes=("a note",)).save(good)
    bad = tmp_path / "bad.state"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "state.json":
                doc = json.loads(data)
                doc["header"]["notes"] = ["\x1b]0;owned\x07"]
                data = json.dumps(doc).encode()
            out.writestr(info.filename, data)
    with pytest.raises(StateFileError) as err:
        EvalState.load(bad)
    assert str(err.value) == f"{bad}: not a valid losscli state: header.notes[0] holds a control character"


def test_a_state_that_could_not_be_loaded_is_not_saved(tmp_path: Path) -> None:
    s = eval_state(make_data(83))
    s.header.columns = {"preds": ["y\npred"]}
    with pytest.raises(OutputError) as err:
        s.save(tmp_path / "s.state")
    assert err.value.exit_code == EXIT_OUTPUT
    assert "header.columns.preds[0] holds a control character" in str(err.value)
    assert list(tmp_path.iterdir()) == []


# ---- 5. merges of hundreds of parts -----------------------------------------------------------


def many_parts(count: int, rows: int = 4) -> list[EvalState]:
    """``count`` CSV shards in order, each with its own note and warning (two shared by all)."""
    out = []
    for i in range(count):
        d = make_data(1000 + i, rows=rows, row_offset=i * (rows + 3), seqs=(6 * i, 6))
        notes = (f"shard{i:03}.csv: column y_pred chosen", "a note every part has")
        warnings = (f"shard{i:03}.csv: 1 row skipped", "a warning every part has")
        out.append(eval_state(d, f"shard{i:03}.csv", notes=notes, warnings=warnings))
    return out


def balanced(states: list[EvalState]) -> EvalState:
    while len(states) > 1:
        paired = [a.merge(b) for a, b in zip(states[::2], states[1::2], strict=False)]
        states = paired + states[len(paired) * 2 :]
    return states[0]


def test_a_merge_of_300_parts_names_a_few_and_counts_the_rest() -> None:
    parts = many_parts(300)
    m = balanced(parts)
    h = m.header
    three = "shard000.csv + shard001.csv + shard002.csv"
    assert h.files == {"preds": f"{three} + 297 more", "targets": "targets.csv"}
    # distinct notes in part order: shard000's, the shared one, shard001's, ...: 301 in all
    assert h.notes == [
        "shard000.csv: column y_pred chosen",
        "a note every part has",
        "shard001.csv: column y_pred chosen",
        "shard002.csv: column y_pred chosen",
        "shard003.csv: column y_pred chosen",
        "... and 296 more notes from other parts",
    ]
    assert h.warnings == [
        "shard000.csv: 1 row skipped",
        "a warning every part has",
        "shard001.csv: 1 row skipped",
        "shard002.csv: 1 row skipped",
        "shard003.csv: 1 row skipped",
        "... and 296 more warnings from other parts",
    ]
    assert len(h.provenance.parts) == 300 and m.tallies.n == 300 * 4
    rng = np.random.default_rng(9)
    shuffled = [parts[i] for i in rng.permutation(300)]
    one_by_one = shuffled[0]
    for s in shuffled[1:]:  # alternate sides
        odd = len(one_by_one.header.provenance.parts) % 2
        one_by_one = s.merge(one_by_one) if odd else one_by_one.merge(s)
    assert one_by_one.header.to_plain() == h.to_plain()


def test_many_overlapping_parts_list_five_pairs_and_count_the_rest() -> None:
    """12 parts of different files all at row 0 and sequences 0..2: C(12, 2) = 66 pairs each."""
    parts = [eval_state(make_data(2000 + i, rows=5, seqs=(0, 3)), f"p{i:02}.csv") for i in range(12)]
    for s in parts:
        assert s.tallies.sequences is not None
        assert (s.tallies.sequences.first, s.tallies.sequences.count) == (0, 3)
    w = balanced(parts).header.warnings
    pairs = list(itertools.combinations(range(12), 2))[:5]
    rows = [
        f"rows 0..7 of parts p{i:02}.csv and p{j:02}.csv overlap: worst rows are numbered as if they "
        "were the same rows; evaluate the later part with --row-offset 8 to number rows as in the "
        "concatenation"  # 5 + 3 rows each
        for i, j in pairs
    ]
    seqs = [seq_warning(0, 2, f"p{i:02}.csv", f"p{j:02}.csv") for i, j in pairs]
    assert w == [
        *rows,
        "... and 61 more pairs of parts whose rows overlap",
        *seqs,
        "... and 61 more pairs of parts whose sequences overlap",
    ]


def test_the_new_warnings_do_not_depend_on_grouping() -> None:
    a = eval_state(make_data(90, row_offset=0, seqs=(0, 6)), "a.csv", notes=("na",))
    b = eval_state(make_data(91, row_offset=30, seqs=(4, 6)), "b.csv", warnings=("wb",))  # rows 30..42 shared
    c = eval_state(make_data(92, rows=10, row_offset=100, seqs=(20, 2)), "c.csv")
    c.tallies.worst = WorstExamples(3)  # a smaller capacity
    c.tallies.worst_capacity = 3
    states = [a, b, c, a]  # a twice: read by two parts
    texts = set()
    for order in itertools.permutations(range(4)):
        x, y, z, u = (states[i] for i in order)
        for m in (x.merge(y).merge(z).merge(u), x.merge(y).merge(z.merge(u)), x.merge(y.merge(z.merge(u)))):
            texts.add(plain_text(m))
            assert m.tallies.worst.capacity == 3
    assert len(texts) == 1
    m = a.merge(b).merge(c).merge(a)
    kinds = [w.split(" ")[0] for w in m.header.warnings]
    # a and its copy overlap b alike: the same text once per kind
    assert kinds == ["wb", "/data/a.csv", "rows", "sequences"]


def test_pipes_are_not_one_file_even_at_one_path() -> None:
    """``<(zcat a.gz)`` and ``<(zcat b.gz)`` are both /dev/fd/63, with no size: other data."""
    parts = []
    for i in range(2):
        s = eval_state(make_data(95 + i, rows=5, seqs=(3 * i, 3)), f"p{i}")
        pipe = (InputFile("preds", "/dev/fd/63"),)
        s.header.provenance = dataclasses.replace(s.header.provenance, inputs=pipe)
        parts.append(s)
    warnings = parts[0].merge(parts[1]).header.warnings
    assert [w[:36] for w in warnings] == ["rows 0..7 of parts p0 and p1 overlap"]


def test_a_file_read_by_five_parts_lists_three_starts() -> None:
    a = eval_state(make_data(97, rows=5), "a.csv")
    later = [eval_state(make_data(97, rows=5, row_offset=8 * k), "a.csv") for k in (1, 2, 3, 4)]
    m = balanced([later[2], a, *later[:2], later[3]])
    assert m.header.warnings == [
        "/data/a.csv was read by 5 parts (rows 0.., 8.., 16.. and 2 more): its rows count 5 times"
    ]
    assert m.tallies.n == 25
