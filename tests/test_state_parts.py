"""The state's parts: exact plain-data round trips, checked loading, and merges that do not
depend on grouping or order. Expected values are computed here from the data, in float64 or
exact integer arithmetic, never copied from the program's output."""

from __future__ import annotations

import itertools
import math
import struct

import numpy as np
import pytest

from losscli.errors import EXIT_BAD_INPUT, InputError
from losscli.state import (
    CompensatedVector,
    EvalState,
    LossState,
    SequenceStats,
    StateFileError,
    StateMismatch,
    WorstExamples,
)
from losscli.state.seqstats import WORST_PER_SEQUENCE
from state_samples import (
    ODD_NAN,
    Data,
    array_bytes,
    binding,
    details_of,
    eval_state,
    make_data,
    plain_text,
    tallies,
)


def bits(x: float) -> bytes:
    return struct.pack(">d", x)


# ---- plain-data round trips -------------------------------------------------------------------


def test_compensated_vector_keeps_every_bit_of_both_terms() -> None:
    hi = [1e16, math.inf, -math.inf, ODD_NAN, -0.0, 5e-324]
    lo = [1.0, 0.0, -0.0, 2.5e-17, ODD_NAN, -5e-324]
    meta, arrays = CompensatedVector(hi, lo).to_plain()
    back = CompensatedVector.from_plain(meta, arrays)
    assert [bits(x) for x in back.hi] == [bits(x) for x in hi]
    assert [bits(x) for x in back.lo] == [bits(x) for x in lo]
    assert all(type(x) is float for x in back.hi + back.lo)


def test_worst_examples_keep_detail_types_and_float_bits() -> None:
    details = [
        (3, 2.5, "text", True, None, (1.0, math.nan, -math.inf)),
        (np.int64(4), np.float64(-0.0), "", False, None, (ODD_NAN,)),
    ]
    w = WorstExamples(5)
    w.offer(np.array([10, 11]), np.array([math.inf, -0.0]), details)  # a NaN loss is refused
    meta, arrays = w.to_plain()
    back = WorstExamples.from_plain(meta, arrays)
    assert back.capacity == 5 and back.rows.tolist() == w.rows.tolist()
    assert back.losses.tobytes() == w.losses.tobytes()
    for got, want in zip(back.details, w.details, strict=True):
        assert [type(c) for c in got] == [
            int if isinstance(c, np.integer) else float if isinstance(c, np.floating) else type(c)
            for c in want
        ]
        flat_got = [x for c in got for x in (c if isinstance(c, tuple) else (c,))]
        flat_want = [x for c in want for x in (c if isinstance(c, tuple) else (c,))]
        for g, v in zip(flat_got, flat_want, strict=True):
            assert bits(g) == bits(float(v)) if isinstance(g, float) else g == v


def test_worst_examples_of_capacity_zero_round_trip() -> None:
    meta, arrays = WorstExamples(0).to_plain()
    back = WorstExamples.from_plain(meta, arrays)
    assert back.capacity == 0 and len(back.rows) == 0 and back.candidates(np.ones(3)).size == 0


def test_loss_state_round_trip_is_exact() -> None:
    s = tallies(make_data(1), capacity=4)
    s.overflow, s.row_sum = True, ODD_NAN
    s.output_sums.add([1e-17, math.inf])  # non-zero compensation terms and a non-finite sum
    assert s.output_sums.lo[0] != 0.0
    meta, arrays = s.to_plain()
    back = LossState.from_plain(meta, arrays)
    assert bits(back.row_sum) == bits(ODD_NAN) and back.overflow and back.nulls == 1 and back.rows == 43
    assert [bits(x) for x in back.output_sums.lo] == [bits(x) for x in s.output_sums.lo]
    meta2, arrays2 = back.to_plain()
    assert meta2 == meta or str(meta2) == str(meta)  # NaN != NaN, so compare the text too
    assert {k: a.tobytes() for k, a in arrays2.items()} == {k: a.tobytes() for k, a in arrays.items()}
    assert back.sequences is not None and s.sequences is not None
    assert back.sequences.first == s.sequences.first and back.sequences.count == s.sequences.count


def test_eval_state_round_trip_is_exact() -> None:
    a = eval_state(make_data(2), notes=("a note",), warnings=("a warning",), text=(100, 20))
    b = EvalState.from_plain(*a.to_plain())
    assert plain_text(b) == plain_text(a) and array_bytes(b) == array_bytes(a)
    assert b.header.columns == {"preds": ["p0", "p1"], "rows": (1, 2.5)}  # the tuple stays a tuple
    assert b.header.binding == a.header.binding and b.header.provenance == a.header.provenance


# ---- checked loading --------------------------------------------------------------------------


def _plain() -> tuple[dict, dict]:
    return eval_state(make_data(3)).to_plain()


def _mutated(path: str, value: object) -> tuple[dict, dict]:
    meta, arrays = _plain()
    keys = path.split(".")
    node = meta
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last: int | str = int(keys[-1]) if isinstance(node, list) else keys[-1]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return meta, arrays


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("tallies.outputs", "2"),
        ("tallies.outputs", True),
        ("tallies.outputs", 0),
        ("tallies.outputs", 3),  # disagrees with the arrays' shape
        ("tallies.n", -1),
        ("tallies.n", 1.0),
        ("tallies.rows", None),
        ("tallies.overflow", 0),
        ("tallies.row_sum", "1.0"),
        ("tallies.row_sum", {"$float": "3ff0000000000000"}),  # finite floats are never tagged
        ("tallies.row_sum", {"$float": "zz"}),
        ("tallies.worst_capacity", 2),  # below the rows kept
        ("tallies.worst.capacity", 99),
        ("tallies.worst.details", "rows"),
        ("tallies.worst.details.0", [[[1]]]),
        ("tallies.worst.details.0", [{"$tuple": [{"$tuple": [1]}]}]),
        ("tallies.worst.details.0", [{"$x": 1}]),
        ("tallies.companions", {"bad name": {"size": 1}}),
        ("tallies.sequences.count", 5),
        ("tallies.sequences.first", -1),
        ("tallies.unexpected", 1),
        ("tallies.hits", KeyError),
        ("header.metric", 3),
        ("header.binding.outputs", 3),  # disagrees with the tallies
        ("header.binding.labels", "0,1"),
        ("header.binding.labels", [0.5]),
        ("header.provenance.inputs.0.mtime", "yesterday"),
        ("header.provenance.inputs.0.size", -5),
        ("header.provenance.parts", [{"version": "1"}]),
        ("header.files", {"preds": 3}),
        ("header.notes", "one"),
        ("header.text_bytes", 1.5),
        ("header.metric_options", [1]),
        ("header.columns", {"$tuple": [1]}),
        ("header", KeyError),
    ],
)
def test_from_plain_refuses_malformed_values(path: str, value: object) -> None:
    meta, arrays = _mutated(path, value)
    with pytest.raises(StateFileError) as err:
        EvalState.from_plain(meta, arrays)
    assert err.value.exit_code == EXIT_BAD_INPUT and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "change",
    [
        lambda a: a.update({"tallies.output_sums.terms": a["tallies.output_sums.terms"].astype(np.float32)}),
        lambda a: a.update({"tallies.worst.rows": a["tallies.worst.rows"].astype(np.float64)}),
        lambda a: a.update({"tallies.worst.rows": a["tallies.worst.rows"][:-1]}),
        lambda a: a.update({"tallies.sequences.worst_loss": a["tallies.sequences.worst_loss"][:, :2]}),
        lambda a: a.update({"tallies.sequences.tokens": -a["tallies.sequences.tokens"]}),
        lambda a: a.update({"tallies.hits.terms": np.zeros((2, 3))}),
        lambda a: a.update({"tallies.extra.terms": np.zeros((2, 1))}),
        lambda a: a.update({"tallies.worst.extra": np.zeros(1)}),
        lambda a: a.update({"other": np.zeros(1)}),
        lambda a: a.update({"tallies.weight_sum.terms": np.array(["x", "y"], dtype=object)}),
        lambda a: a.pop("tallies.sequences.nll"),
        lambda a: a.pop("tallies.companion.mae.terms"),
    ],
)
def test_from_plain_refuses_malformed_arrays(change) -> None:  # type: ignore[no-untyped-def]
    meta, arrays = _plain()
    change(arrays)
    with pytest.raises(StateFileError):
        EvalState.from_plain(meta, arrays)


def test_big_endian_arrays_are_read_as_native() -> None:
    meta, arrays = _plain()
    arrays = {k: a.astype(a.dtype.newbyteorder(">")) for k, a in arrays.items()}
    back = EvalState.from_plain(meta, arrays)
    assert array_bytes(back) == array_bytes(EvalState.from_plain(*_plain()))


# ---- per-sequence statistics ------------------------------------------------------------------


def reference_sequences(datas: list[Data]) -> dict[int, tuple[int, float, list[tuple[float, int, int]]]]:
    """Per global sequence: tokens, NLL sum (fsum) and worst tokens (loss desc, position asc)."""
    tokens: dict[int, list[tuple[float, int, int]]] = {}
    for d in datas:
        for s, p, loss, t in zip(d.tok_seq, d.tok_pos, d.tok_loss, d.tok_target, strict=True):
            tokens.setdefault(int(s), []).append((float(loss), int(p), int(t)))
    out = {}
    for s, toks in tokens.items():
        worst = sorted(toks, key=lambda x: (-x[0], x[1]))[:WORST_PER_SEQUENCE]
        out[s] = (len(toks), math.fsum(x[0] for x in toks), worst)
    return out


def check_sequences(stats: SequenceStats, datas: list[Data], exact_nll: bool = False) -> None:
    want = reference_sequences(datas)
    assert stats.first == min(want) and stats.end == max(want) + 1
    for g in range(stats.first, stats.end):
        i = g - stats.first
        count, nll, worst = want.get(g, (0, 0.0, []))
        assert int(stats.tokens[i]) == count
        assert stats.nll[i] == (nll if exact_nll else pytest.approx(nll, rel=1e-15, abs=1e-300))
        got = [
            (float(loss), int(p), int(t))
            for loss, p, t in zip(stats.worst_loss[i], stats.worst_pos[i], stats.worst_target[i], strict=True)
            if loss > -np.inf
        ]
        # ties of loss and position (same token twice) may keep either target: compare the rest
        assert [(x[0], x[1]) for x in got] == [(x[0], x[1]) for x in worst]


def _stats(d: Data, first: int | None = None) -> SequenceStats:
    lo = int(d.tok_seq.min()) if first is None else first
    s = SequenceStats(int(d.tok_seq.max()) + 1 - lo, lo)
    for cut in np.array_split(np.arange(len(d.tok_seq)), 3):  # in chunks, as the engine feeds it
        s.update(d.tok_seq[cut], d.tok_pos[cut], d.tok_loss[cut], d.tok_target[cut])
    return s


def test_update_takes_global_sequence_ids() -> None:
    d = make_data(4, seqs=(1000, 7))
    s = _stats(d)
    assert s.first == 1000 and s.count == 7
    check_sequences(s, [d])


@pytest.mark.parametrize("ranges", [((0, 5), (8, 4)), ((0, 6), (3, 6)), ((2, 3), (0, 10)), ((5, 5), (5, 5))])
def test_merge_covers_the_union_of_both_ranges(ranges: tuple[tuple[int, int], tuple[int, int]]) -> None:
    da, db = make_data(5, seqs=ranges[0]), make_data(6, seqs=ranges[1])
    a, b = _stats(da, ranges[0][0]), _stats(db, ranges[1][0])
    for merged in (a.merge(b), b.merge(a)):
        lo = min(ranges[0][0], ranges[1][0])
        hi = max(ranges[0][0] + ranges[0][1], ranges[1][0] + ranges[1][1])
        assert (merged.first, merged.count) == (lo, hi - lo)
        check_sequences(merged, [da, db])
        assert merged.nll.tobytes() == a.merge(b).nll.tobytes()  # a + b == b + a exactly
    assert a.count == ranges[0][1] and int(a.tokens.sum()) == len(da.tok_seq)  # inputs untouched


def test_merge_with_an_empty_part_adds_no_range() -> None:
    d = make_data(7, seqs=(50, 4))
    s = _stats(d)
    for empty in (SequenceStats(0, 0), SequenceStats(0, 1000)):
        for merged in (s.merge(empty), empty.merge(s)):
            assert (merged.first, merged.count) == (50, 4)
            assert merged.nll is not s.nll
            check_sequences(merged, [d], exact_nll=False)
    both_empty = SequenceStats(0, 9).merge(SequenceStats(0, 3))
    assert (both_empty.first, both_empty.count) == (3, 0)


def test_a_merge_that_would_be_mostly_gap_is_refused() -> None:
    near, far = SequenceStats(3, 0), SequenceStats(2, 10**12)
    with pytest.raises(InputError, match=r"0\.\.2 and 1000000000000\.\.1000000000001\) are so far apart"):
        near.merge(far)
    assert near.merge(SequenceStats(2, 100)).count == 102  # a real gap between shards is fine


def test_sequence_merge_is_associative_and_commutative() -> None:
    datas = [make_data(10 + i, seqs=r) for i, r in enumerate([(0, 6), (4, 6), (20, 3)])]
    parts = [_stats(d) for d in datas]
    results = []
    for x, y, z in itertools.permutations(parts):
        results += [x.merge(y).merge(z), x.merge(y.merge(z))]
    for r in results:
        check_sequences(r, datas)
        for name in ("tokens", "worst_loss", "worst_pos"):
            assert getattr(r, name).tobytes() == getattr(results[0], name).tobytes()


def test_sequence_stats_round_trip_with_first() -> None:
    s = _stats(make_data(8, seqs=(123, 9)))
    back = SequenceStats.from_plain(*s.to_plain())
    assert (back.first, back.count) == (123, 9)
    for name in ("nll", "tokens", "worst_loss", "worst_pos", "worst_target"):
        assert getattr(back, name).tobytes() == getattr(s, name).tobytes()


# ---- LossState.merge --------------------------------------------------------------------------


def test_loss_state_merge_adds_rows_and_nulls_and_ors_overflow() -> None:
    a, b = tallies(make_data(20)), tallies(make_data(21, row_offset=40))
    a.overflow = True
    m = a.merge(b)
    assert (m.rows, m.nulls, m.overflow) == (86, 2, True)
    assert b.merge(tallies(make_data(22))).overflow is False


def test_loss_state_merge_does_not_share_sequences() -> None:
    a = tallies(make_data(23))
    b = LossState(2, 6)
    m = b.merge(a)
    assert m.sequences is not None and a.sequences is not None and m.sequences is not a.sequences
    m.sequences.nll[:] = 0
    assert a.sequences.nll.any()


# ---- EvalState.merge --------------------------------------------------------------------------


def three_states(text_for_all: bool = True) -> tuple[list[Data], list[EvalState]]:
    datas = [
        make_data(31, rows=40, row_offset=0, seqs=(0, 6)),
        make_data(32, rows=30, row_offset=43, seqs=(6, 5)),  # each part read 3 rows it did not score
        make_data(33, rows=50, row_offset=76, seqs=(9, 6)),  # shares sequences 9, 10 with the 2nd
    ]
    states = [
        eval_state(datas[0], "a.csv", notes=("n1", "shared"), warnings=("w1",), text=(100, 10)),
        eval_state(datas[1], "b.csv", notes=("shared", "n2"), text=(200, 20) if text_for_all else None),
        eval_state(datas[2], "c.csv", notes=("n3",), warnings=("w3", "w1"), text=(300, 30)),
    ]
    return datas, states


def all_groupings(states: list[EvalState]) -> list[EvalState]:
    out = []
    for x, y, z in itertools.permutations(states):
        out += [x.merge(y).merge(z), x.merge(y.merge(z))]
    return out


@pytest.mark.parametrize("text_for_all", [True, False])
def test_eval_state_merge_is_associative_and_commutative(text_for_all: bool) -> None:
    datas, states = three_states(text_for_all)
    before = [plain_text(s) for s in states]
    results = all_groupings(states)
    assert [plain_text(s) for s in states] == before  # merging leaves its operands alone
    ref_text, ref_arrays = plain_text(results[0]), results[0].to_plain()[1]
    for r in results:
        assert plain_text(r) == ref_text
        arrays = r.to_plain()[1]
        assert arrays.keys() == ref_arrays.keys()
        for name, a in arrays.items():
            if name.endswith(".terms"):  # hi + lo: the totals agree, the split may not
                np.testing.assert_allclose(a.sum(axis=0), ref_arrays[name].sum(axis=0), rtol=1e-15)
            elif name == "tallies.sequences.nll":
                np.testing.assert_allclose(a, ref_arrays[name], rtol=1e-15)
            else:
                assert a.tobytes() == ref_arrays[name].tobytes(), name
    check_against_single_run(results[0], datas)


def check_against_single_run(merged: EvalState, datas: list[Data]) -> None:
    """The merged tallies are those of all the data at once, computed here from the data."""
    t = merged.tallies
    losses = np.concatenate([d.losses for d in datas])
    w = np.concatenate([d.weights for d in datas])
    for j in range(losses.shape[1]):
        want = math.fsum((losses[:, j] * w).tolist()) / math.fsum(w.tolist())
        assert t.per_output()[j] == pytest.approx(want, rel=1e-14)
    assert t.n == len(losses) and t.rows == len(losses) + 3 * len(datas)
    rows = np.concatenate([np.arange(len(d.losses)) + d.row_offset for d in datas])
    per_row = losses.mean(axis=1)
    order = sorted(range(len(rows)), key=lambda i: (-per_row[i], rows[i]))[: t.worst.capacity]
    assert t.worst.rows.tolist() == [int(rows[i]) for i in order]
    by_row = {d.row_offset + i: details_of(d, i) for d in datas for i in range(len(d.losses))}
    assert t.worst.details == [by_row[int(rows[i])] for i in order]
    assert t.sequences is not None
    check_sequences(t.sequences, datas)


def test_merged_header_comes_from_the_parts() -> None:
    datas, (a, b, c) = three_states(text_for_all=False)
    m = c.merge(a).merge(b)
    h = m.header
    assert [p.inputs[0].path for p in h.provenance.parts] == ["/data/a.csv", "/data/b.csv", "/data/c.csv"]
    assert h.provenance.inputs == () and h.provenance.row_offset == 0 and h.provenance.summary is None
    assert h.provenance.options == {"nan": "error", "chunk_rows": 1000}  # "file" differs between parts
    assert h.files == {"preds": "a.csv + b.csv + c.csv", "targets": "targets.csv"}
    assert h.columns == a.header.columns and h.row_offset == 0 and h.sequence_offset == 0
    assert h.notes == ["n1", "shared", "n2", "n3"]
    # b.csv covers sequences 6..10 and c.csv 9..14 (their data's lowest and highest ids)
    lo_c = int(datas[2].tok_seq.min())
    hi_b = int(datas[1].tok_seq.max())
    shared = f"sequences {lo_c}..{hi_b} of parts b.csv and c.csv overlap"
    assert h.warnings[:2] == ["w1", "w3"] and len(h.warnings) == 4
    assert h.warnings[2].startswith(shared) and "--text" in h.warnings[3]
    assert h.text_bytes is None and h.text_words is None
    _, (a, b, c) = three_states(text_for_all=True)
    m = b.merge(c).merge(a)
    assert (m.header.text_bytes, m.header.text_words) == (600, 60)
    assert m.header.warnings[:2] == ["w1", "w3"] and len(m.header.warnings) == 3


def test_input_detected_is_true_when_any_part_detected() -> None:
    a = eval_state(make_data(40), bound=binding(input_detected=True))
    b = eval_state(make_data(41, row_offset=40), "b.csv")
    assert a.merge(b).header.binding.input_detected is True  # type: ignore[union-attr]
    assert b.merge(a).header.binding.input_detected is True  # type: ignore[union-attr]
    assert b.merge(b).header.binding.input_detected is False  # type: ignore[union-attr]


def test_overlapping_parts_of_different_inputs_warn_with_the_offset_to_use() -> None:
    a = eval_state(make_data(50, rows=40, row_offset=0), "a.csv")
    d = eval_state(make_data(51, rows=30, row_offset=25), "d.csv")
    want = (
        "rows 25..42 of parts a.csv and d.csv overlap: worst rows are numbered as if they were the "
        "same rows; evaluate the later part with --row-offset 43 to number rows as in the concatenation"
    )  # a read 40 + 3 rows (43), d starts at 25: rows 25..42 are claimed twice
    assert want in a.merge(d).header.warnings and want in d.merge(a).header.warnings


def test_a_state_merged_with_itself_counts_twice_and_says_so() -> None:
    a = eval_state(make_data(52), "a.csv")
    m = a.merge(a)
    # the file-read-twice warning only: no overlap of rows or sequences on top of it
    assert m.header.warnings == ["/data/a.csv was read by two parts (rows 0.. and 0..): its rows count twice"]
    assert m.tallies.n == 2 * a.tallies.n
    assert m.tallies.weight_sum.total()[0] == pytest.approx(2 * a.tallies.weight_sum.total()[0], rel=1e-15)
    assert len(m.header.provenance.parts) == 2 and m.header.files["preds"] == "a.csv"


def test_an_empty_part_merges_with_a_multi_output_part() -> None:
    d = make_data(53, outputs=3, row_offset=10)
    full = eval_state(d, "full.csv")
    empty_tallies = LossState(1, 6)
    empty_tallies.rows = 0
    empty = eval_state(make_data(54, rows=0, outputs=1), "empty.csv", tallied=empty_tallies, warnings=("e",))
    empty.header.binding = None
    for m in (full.merge(empty), empty.merge(full)):
        assert m.header.binding == full.header.binding
        assert m.tallies.outputs == 3 and m.tallies.n == full.tallies.n
        np.testing.assert_array_equal(m.tallies.per_output(), full.tallies.per_output())
        assert m.header.warnings == ["e"] and len(m.header.provenance.parts) == 2
    both = empty.merge(empty)
    assert both.header.binding is None and both.tallies.n == 0


def test_an_unbound_part_with_sums_of_other_outputs_is_refused() -> None:
    full = eval_state(make_data(55, outputs=3))
    odd = eval_state(make_data(56, outputs=1), "odd.csv")
    odd.header.binding = None
    with pytest.raises(StateMismatch, match="outputs differs"):
        full.merge(odd)


@pytest.mark.parametrize(
    ("change", "field", "first", "second"),
    [
        ({"metric": "mae"}, "metric", "'mse'", "'mae'"),
        ({"options": {"ignore_index": 0, "topk": 5}}, "metric option ignore_index", "-100", "0"),
        ({"options": {"ignore_index": -100, "topk": 3}}, "metric option topk", "5", "3"),
        (
            {"options": {"ignore_index": -100, "topk": 5, "delta": 1.0}},
            "metric option delta",
            "'(not set)'",
            "1.0",
        ),
        ({"bound": {"input_kind": "logits"}}, "input kind", "not given", "'logits'"),
        ({"bound": {"classes": 4}}, "classes", "0", "4"),
        ({"bound": {"labels": (1, 2)}}, "labels", "not given", "(1, 2)"),
        ({"bound": {"output_names": ("u", "v")}}, "output names", "('y0', 'y1')", "('u', 'v')"),
        ({"bound": {"weighted": False}}, "weighted", "True", "False"),
        ({"bound": {"id_column": "id"}}, "id column", "not given", "'id'"),
        ({"bound": {"detail_columns": ("x",)}}, "detail columns", "('pred', 'target')", "('x',)"),
        ({"bound": {"outputs": 3}}, "outputs", "2", "3"),
    ],
)
def test_refusals_name_the_field_and_both_values(change: dict, field: str, first: str, second: str) -> None:
    a = eval_state(make_data(60))
    kwargs: dict = {}
    if "metric" in change:
        kwargs["metric"] = change["metric"]
    if "options" in change:
        kwargs["options"] = change["options"]
    if "bound" in change:
        kwargs["bound"] = binding(**change["bound"])
    data = make_data(61, row_offset=40, outputs=change.get("bound", {}).get("outputs", 2))
    b = eval_state(data, "b.csv", **kwargs)
    with pytest.raises(StateMismatch) as err:
        a.merge(b)
    if {first, second} == {"True", "False"}:  # a flag is said in words, not as Python booleans
        on, off = ("first", "second") if first == "True" else ("second", "first")
        want = f"{field} is on in the {on} state and off in the {off}; give every part the same options"
    else:
        want = f"{field} differs ({first} and {second})"
    assert str(err.value) == f"cannot merge these states: {want}"
    assert isinstance(err.value, InputError) and err.value.exit_code == EXIT_BAD_INPUT
    assert err.value.field == field


def test_nan_options_do_not_stop_a_state_merging_with_itself() -> None:
    a = eval_state(make_data(62), options={"delta": math.nan})
    assert a.merge(a).tallies.n == 2 * a.tallies.n
