"""Token views: a reader read one token per row is a NEW reader; the one it came from is untouched.

Every expectation here is computed from the arrays the test wrote (numpy reshapes, Python list
lengths), not from the program's output.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from losscli.errors import InputError, UsageError
from losscli.lm import plan_logits, plan_logprobs
from losscli.readers import Reader, TokenView, open_reader, token_view
from losscli.readers.memory import ArrayReader
from losscli.sequences import ListSequences, PeriodicSequences, SingleSequence

ROOT = Path(__file__).resolve().parent.parent
B, T, V = 3, 4, 5
LENGTHS = [3, 1, 4]


def read_whole(reader: Reader, groups: list[Any], rows: int = 2) -> list[np.ndarray]:
    """Every chunk of ``reader`` concatenated, one array per group (copies: chunks are reused)."""
    parts: list[list[np.ndarray]] = [[] for _ in groups]
    for chunk in reader.chunks(groups, rows):
        for k, a in enumerate(chunk):
            parts[k].append(np.array(a, copy=True))
    return [np.concatenate(p) if p else np.empty(0) for p in parts]


def snapshot(reader: Reader, groups: list[Any]) -> dict[str, Any]:
    """What a reader says about itself and what it reads, to compare before and after a view."""
    return {
        "n_rows": reader.n_rows,
        "row_shape": reader.row_shape,
        "columns": list(reader.column_names),
        "data": read_whole(reader, groups),
    }


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert {k: v for k, v in a.items() if k != "data"} == {k: v for k, v in b.items() if k != "data"}
    for x, y in zip(a["data"], b["data"], strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.fixture
def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "logits": rng.standard_normal((B, T, V)).astype(np.float32),
        "ids": rng.integers(0, V, (B, T)),
        "flat": rng.standard_normal((B * T, V)),
        "flat_ids": rng.integers(0, V, B * T),
    }


def list_table(rng: np.random.Generator) -> tuple[pa.Table, list[list[list[float]]], list[list[int]]]:
    logits = [[list(map(float, rng.standard_normal(V))) for _ in range(n)] for n in LENGTHS]
    ids = [list(map(int, rng.integers(0, V, n))) for n in LENGTHS]
    table = pa.table({"logits": logits, "labels": ids, "score": [0.5, 1.5, 2.5]})
    return table, logits, ids


def npy(key: str) -> Callable[[Path, dict[str, np.ndarray]], Reader]:
    def make(tmp: Path, arrays: dict[str, np.ndarray]) -> Reader:
        np.save(tmp / f"{key}.npy", arrays[key])
        return open_reader(str(tmp / f"{key}.npy"))

    return make


def npz_single(key: str) -> Callable[[Path, dict[str, np.ndarray]], Reader]:
    def make(tmp: Path, arrays: dict[str, np.ndarray]) -> Reader:
        np.savez(tmp / "one.npz", arrays[key])
        return open_reader(str(tmp / "one.npz"))

    return make


def npz_pair(tmp: Path, arrays: dict[str, np.ndarray]) -> Reader:
    np.savez(tmp / "pair.npz", logits=arrays["logits"], labels=arrays["ids"])
    return open_reader(str(tmp / "pair.npz"))


def in_memory(key: str) -> Callable[[Path, dict[str, np.ndarray]], Reader]:
    return lambda tmp, arrays: ArrayReader(arrays[key], key)


ARRAY_CASES = {
    # name: (make, column, keep_last, original's groups, key of the array, expected lead)
    "npy logits (B,T,V)": (npy("logits"), None, True, [None], "logits", (B, T)),
    "npy ids (B,T)": (npy("ids"), None, False, [None], "ids", (B, T)),
    "npy flat logits (N,V)": (npy("flat"), None, True, [None], "flat", (B * T,)),
    "npy flat ids (N,)": (npy("flat_ids"), None, False, [None], "flat_ids", (B * T,)),
    "npz one array of logits": (npz_single("logits"), None, True, [None], "logits", (B, T)),
    "npz one array of ids": (npz_single("ids"), None, False, [None], "ids", (B, T)),
    "npz logits key": (npz_pair, 0, True, [[0]], "logits", (B, T)),
    "npz labels key": (npz_pair, 1, False, [[1]], "ids", (B, T)),
    "in-memory logits": (in_memory("logits"), None, True, [None], "logits", (B, T)),
    "in-memory ids": (in_memory("ids"), None, False, [None], "ids", (B, T)),
}


@pytest.mark.parametrize("name", list(ARRAY_CASES))
def test_array_token_view_is_a_new_reader_and_the_original_reads_as_before(
    tmp_path: Path, arrays: dict[str, np.ndarray], name: str
) -> None:
    make, column, keep_last, groups, key, lead = ARRAY_CASES[name]
    reader = make(tmp_path, arrays)
    with reader:
        before = snapshot(reader, groups)
        view = token_view(reader, column, keep_last)
        assert view.reader is not reader
        assert view.lead == lead
        after = snapshot(reader, groups)
        assert_same(before, after)
        # the view: one token per row, in C order, as numpy's reshape lays them out
        want = arrays[key].reshape(-1, arrays[key].shape[-1]) if keep_last else arrays[key].reshape(-1)
        (got,) = read_whole(view.reader, [None] if column is None else [[column]])
        np.testing.assert_array_equal(got, want)
        if column is None:  # one array: the view's shape is the tokens'
            assert (view.reader.n_rows, view.reader.row_shape) == (len(want), want.shape[1:])
        # reading the view did not disturb the original either
        assert_same(before, snapshot(reader, groups))


def test_parquet_list_columns_view_their_tokens_and_leave_the_file_reader_alone(tmp_path: Path) -> None:
    table, logits, ids = list_table(np.random.default_rng(3))
    pq.write_table(table, tmp_path / "lists.parquet")
    with open_reader(str(tmp_path / "lists.parquet")) as reader:
        before = {"n_rows": reader.n_rows, "columns": list(reader.column_names)}
        (score_before,) = read_whole(reader, [[2]])
        lv = token_view(reader, 0, keep_last=True)
        tv = token_view(reader, 1, keep_last=False)
        assert (lv.lead, tv.lead) == ((), ())
        assert lv.lists and tv.lists and lv.batched is None
        (got_logits,) = read_whole(lv.reader, [[0]])
        (got_ids,) = read_whole(tv.reader, [[1]])
        np.testing.assert_array_equal(got_logits, np.array([row for seq in logits for row in seq]))
        np.testing.assert_array_equal(got_ids, np.array([t for seq in ids for t in seq]))
        assert tv.lengths().tolist() == LENGTHS
        assert lv.reader.n_rows is None  # tokens are counted as they are read
        # the original: still one row per sequence, its scalar column as it was
        assert before == {"n_rows": 3, "columns": ["logits", "labels", "score"]}
        assert {"n_rows": reader.n_rows, "columns": list(reader.column_names)} == before
        (score_after,) = read_whole(reader, [[2]])
        np.testing.assert_array_equal(score_after, score_before)
        np.testing.assert_array_equal(score_after, [0.5, 1.5, 2.5])


@pytest.mark.parametrize("column", [2, None])
def test_parquet_column_that_is_not_a_list_is_a_flat_table(tmp_path: Path, column: int | None) -> None:
    table, _, _ = list_table(np.random.default_rng(4))
    pq.write_table(table, tmp_path / "t.parquet")
    with open_reader(str(tmp_path / "t.parquet")) as reader:
        view = token_view(reader, column, keep_last=False)
        assert view.reader is reader and view.lead is None and not view.lists


def test_csv_and_jsonl_are_already_one_token_per_row(tmp_path: Path) -> None:
    (tmp_path / "lp.csv").write_text("logprob\n-0.5\n-1.25\n")
    rec = [{"token_logprobs": [None, -0.5, -0.25]}, {"token_logprobs": [-2.0]}]
    (tmp_path / "lp.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rec))
    with open_reader(str(tmp_path / "lp.csv")) as csv_reader, open_reader(str(tmp_path / "lp.jsonl")) as jl:
        null = np.finfo(np.float64).max  # a null keeps its row, marked for the scorer to ignore
        for reader, want in ((csv_reader, [-0.5, -1.25]), (jl, [null, -0.5, -0.25, -2.0])):
            view = token_view(reader, 0, keep_last=False)
            assert view.reader is reader and view.lead is None
            (got,) = read_whole(reader, [[0]])
            np.testing.assert_array_equal(got, want)
        assert jl.sequence_records and not csv_reader.sequence_records
        assert jl.list_lengths(0).tolist() == [3, 1] and jl.nulls == 1


def test_views_compose_for_one_file_holding_logits_and_ids(
    tmp_path: Path, arrays: dict[str, np.ndarray]
) -> None:
    with npz_pair(tmp_path, arrays) as reader:
        lv = token_view(reader, 0, keep_last=True)
        tv = token_view(lv.reader, 1, keep_last=False)
        got_l, got_t = read_whole(tv.reader, [[0], [1]])
        np.testing.assert_array_equal(got_l, arrays["logits"].reshape(-1, V))
        np.testing.assert_array_equal(got_t, arrays["ids"].reshape(-1))
        assert tv.reader.n_rows == B * T
        assert reader.n_rows == B  # (B, T, V) beside (B, T): B rows each, as the file holds them
        (orig_ids,) = read_whole(reader, [[1]])
        np.testing.assert_array_equal(orig_ids, arrays["ids"])


def test_npy_view_keeps_range_readers_and_closing_it_closes_nothing(
    tmp_path: Path, arrays: dict[str, np.ndarray]
) -> None:
    np.save(tmp_path / "l.npy", arrays["logits"])
    reader = open_reader(str(tmp_path / "l.npy"))
    view = token_view(reader, None, keep_last=True)
    ranges = view.reader.range_reader()
    assert ranges is not None  # worker threads read .npy token views by pread
    (block,) = ranges.read([None], 5, 9)
    np.testing.assert_array_equal(block, arrays["logits"].reshape(-1, V)[5:9])
    view.reader.close()
    (again,) = read_whole(reader, [None])  # the reader's file is still open
    np.testing.assert_array_equal(again, arrays["logits"])
    reader.close()
    reader.close()  # twice is safe


def test_errors_of_the_old_reshape_are_kept(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", np.arange(4.0))
    np.save(tmp_path / "f.npy", np.asfortranarray(np.ones((3, 2))))
    with open_reader(str(tmp_path / "v.npy")) as r, pytest.raises(InputError, match=r"logits need \(N, V\)"):
        token_view(r, None, keep_last=True)
    with open_reader(str(tmp_path / "f.npy")) as r, pytest.raises(InputError, match="Fortran-ordered"):
        token_view(r, None, keep_last=False)
    with pytest.raises(UsageError, match=r"logits need \(N, V\)"):
        token_view(ArrayReader(np.arange(3.0), "a"), None, keep_last=True)


def test_plans_leave_the_readers_they_were_given_untouched(
    tmp_path: Path, arrays: dict[str, np.ndarray]
) -> None:
    np.save(tmp_path / "l.npy", arrays["logits"])
    np.save(tmp_path / "i.npy", arrays["ids"])
    with open_reader(str(tmp_path / "l.npy")) as lr, open_reader(str(tmp_path / "i.npy")) as ir:
        before = (snapshot(lr, [None]), snapshot(ir, [None]))
        plan = plan_logits(lr, ir, None, None, None)
        assert isinstance(plan.seqmap, PeriodicSequences)
        assert (plan.seqmap.sequences, plan.seqmap.length) == (B, T)
        assert plan.roles["preds"].reader is not lr and plan.roles["targets"].reader is not ir
        assert plan.roles["preds"].reader.n_rows == B * T
        assert_same(before[0], snapshot(lr, [None]))
        assert_same(before[1], snapshot(ir, [None]))


def test_logprob_plans_from_lists_records_and_flat_columns(tmp_path: Path) -> None:
    lps = [[-0.5, -1.0, -0.25], [-2.0], [-0.125, -0.5, -1.5, -3.0]]
    pq.write_table(pa.table({"lp": lps}), tmp_path / "lists.parquet")
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"token_logprobs": [None, *s]}) + "\n" for s in lps))
    pq.write_table(pa.table({"lp": [v for s in lps for v in s]}), tmp_path / "flat.parquet")
    with open_reader(str(tmp_path / "lists.parquet")) as r:
        plan = plan_logprobs(r, None, None)
        assert isinstance(plan.seqmap, ListSequences) and plan.seqmap.lengths.tolist() == LENGTHS
        assert plan.roles["preds"].group is None and plan.nulls == 0
        assert r.n_rows == 3  # the file reader still counts sequences
    with open_reader(str(tmp_path / "c.jsonl")) as r:
        plan = plan_logprobs(r, "ignored for JSON Lines", "ignored too")
        with_nulls = [n + 1 for n in LENGTHS]  # each record's null first token keeps its row
        assert isinstance(plan.seqmap, ListSequences) and plan.seqmap.lengths.tolist() == with_nulls
        assert plan.nulls == 3 and plan.roles["preds"].reader is r
    with open_reader(str(tmp_path / "flat.parquet")) as r:
        plan = plan_logprobs(r, None, None)
        assert isinstance(plan.seqmap, SingleSequence) and plan.seqmap.tokens == 8
        assert plan.roles["preds"].reader is r


def test_token_view_is_a_frozen_value() -> None:
    view = token_view(ArrayReader(np.zeros((2, 3, 4)), "a"), None, keep_last=True)
    assert isinstance(view, TokenView) and view.batched == (2, 3)
    with pytest.raises(AttributeError):
        view.lead = ()  # type: ignore[misc]
    with pytest.raises(ValueError, match="not a list column"):
        view.lengths()


READER_CLASSES = {
    "NpyReader",
    "NpzReader",
    "ArrayReader",
    "ParquetReader",
    "JsonlReader",
    "CsvReader",
    "ParquetIds",
}


def test_no_isinstance_on_concrete_readers_outside_readers() -> None:
    """The LM layout (and everything else outside readers/) asks readers for capabilities."""
    offenders = []
    for path in sorted((ROOT / "src" / "losscli").rglob("*.py")):
        if "readers" in path.relative_to(ROOT / "src" / "losscli").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance":
                names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                names |= {n.attr for n in ast.walk(node.args[1]) if isinstance(n, ast.Attribute)}
                if names & READER_CLASSES:
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
    lm = (ROOT / "src" / "losscli" / "lm.py").read_text()
    assert not READER_CLASSES & set(lm.replace("(", " ").replace(",", " ").split())
