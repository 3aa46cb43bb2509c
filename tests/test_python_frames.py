"""The Python API reads tables by column name, as the same data in a Parquet file would be read:
pandas (default and named index), Polars, pyarrow Tables and RecordBatches, dicts of arrays,
objects with only the Arrow C stream or the interchange protocol; torch tensors as arrays.
Every value is checked against a float64 reference written here."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import losscli

REL = 1e-12
RNG = np.random.default_rng(1111)
N = 60
P = RNG.normal(size=N)
T = RNG.normal(size=N)
IDS = [f"r{i:03d}" for i in range(N)]


def mse_ref(p: Any, t: Any) -> float:
    d = np.asarray(p, dtype=np.float64) - np.asarray(t, dtype=np.float64)
    return float(np.mean(d * d))


def ce_ref(probs: np.ndarray, labels: np.ndarray) -> float:
    p = np.asarray(probs, dtype=np.float64)
    return float(-np.mean(np.log(p[np.arange(len(labels)), labels])))


class StreamOnly:
    """A foreign table that exposes nothing but the Arrow PyCapsule stream interface."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._table.__arrow_c_stream__(requested_schema)


class InterchangeOnly:
    """A foreign table that exposes nothing but the dataframe interchange protocol."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def __dataframe__(self, nan_as_null: bool = False, allow_copy: bool = True) -> Any:
        return self._table.__dataframe__(nan_as_null, allow_copy)


def as_kind(frame: pd.DataFrame, kind: str) -> Any:
    """``frame`` (default RangeIndex) as the caller's library of ``kind`` holds it."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return {
        "pandas": lambda: frame,
        "polars": lambda: pl.from_pandas(frame),
        "arrow": lambda: table,
        "batch": lambda: table.to_batches()[0],
        "dict": lambda: {c: frame[c].to_numpy() for c in frame.columns},
        "stream": lambda: StreamOnly(table),
        "interchange": lambda: InterchangeOnly(table),
    }[kind]()


KINDS = ["pandas", "polars", "arrow", "batch", "dict", "stream", "interchange"]


@pytest.mark.parametrize("kind", KINDS)
def test_one_frame_with_named_columns(kind: str) -> None:
    """The issue's call: one frame, its columns named by pred_col/target_col."""
    frame = as_kind(pd.DataFrame({"y_true": T, "score": P, "fold": np.arange(N) % 5}), kind)
    report = losscli.evaluate("mse", frame, pred_col="score", target_col="y_true")
    assert report.value == pytest.approx(mse_ref(P, T), rel=REL)
    cols = report.to_dict()["columns"]
    assert cols["preds"]["columns"] == ["score"] and cols["targets"]["columns"] == ["y_true"]


@pytest.mark.parametrize("kind", KINDS)
def test_one_frame_with_conventional_names(kind: str) -> None:
    frame = pd.DataFrame({"y_pred": P, "y_true": T})
    assert losscli.evaluate("mse", as_kind(frame, kind)).value == pytest.approx(mse_ref(P, T), rel=REL)
    preds, targets = as_kind(frame[["y_pred"]], kind), as_kind(frame[["y_true"]], kind)
    assert losscli.mae(preds, targets) == pytest.approx(float(np.mean(np.abs(P - T))), rel=REL)


@pytest.mark.parametrize("kind", KINDS)
def test_two_frames_pair_by_name_and_carry_ids(kind: str) -> None:
    """Two frames of two outputs in different orders meet by name; an id column is no output."""
    q = RNG.normal(size=N)
    u = RNG.normal(size=N)
    preds = as_kind(pd.DataFrame({"id": IDS, "price": P, "qty": q}), kind)
    targets = as_kind(pd.DataFrame({"id": IDS, "qty": u, "price": T}), kind)
    report = losscli.evaluate("mse", preds, targets, top=3)
    expected = (mse_ref(P, T) + mse_ref(q, u)) / 2
    assert report.value == pytest.approx(expected, rel=REL)
    data = report.to_dict()
    assert data["columns"]["ids"]["columns"] == ["id"]
    losses = ((P - T) ** 2 + (q - u) ** 2) / 2
    worst = int(np.argmax(losses))
    assert data["examples"][0]["id"] == IDS[worst]
    assert data["examples"][0]["loss"] == pytest.approx(losses[worst], rel=1e-9)


def test_pandas_default_index_is_not_a_column() -> None:
    frame = pd.DataFrame({"a": P, "b": T})  # RangeIndex: df.to_parquet stores no column for it
    table = pa.Table.from_pandas(frame)
    assert "__index_level_0__" not in table.column_names
    assert losscli.evaluate("mse", frame, pred_col="a", target_col="b").value == pytest.approx(
        mse_ref(P, T), rel=REL
    )
    report = losscli.evaluate("mse", frame[["a"]], frame[["b"]])
    assert report.value == pytest.approx(mse_ref(P, T), rel=REL)


def test_pandas_named_index_is_not_data_and_labels_rows() -> None:
    frame = pd.DataFrame({"y_pred": P, "y_true": T}, index=pd.Index(IDS, name="sample_id"))
    report = losscli.evaluate("mse", frame, top=1)
    assert report.value == pytest.approx(mse_ref(P, T), rel=REL)
    data = report.to_dict()
    assert data["columns"]["ids"]["columns"] == ["sample_id"]
    assert data["examples"][0]["id"] == IDS[int(np.argmax((P - T) ** 2))]


def test_pandas_filtered_index_is_skipped_as_df_to_parquet_stores_it() -> None:
    """A filtered frame's index is no RangeIndex: stored as ``__index_level_0__`` and skipped."""
    frame = pd.DataFrame({"p": P, "t": T})
    kept = frame[frame["p"] > 0]
    preds, targets = kept[["p"]], kept[["t"]]
    report = losscli.evaluate("mse", preds, targets)
    assert report.value == pytest.approx(mse_ref(kept["p"], kept["t"]), rel=REL)
    assert report.to_dict()["columns"]["preds"]["columns"] == ["p"]


def test_pandas_missing_values_follow_nan_policy() -> None:
    p = P.copy()
    p[7] = np.nan
    frame = pd.DataFrame({"y_pred": p, "y_true": T})
    with pytest.raises(losscli.InputError, match=r'row 7.*nan="skip"'):
        losscli.evaluate("mse", frame)
    keep = ~np.isnan(p)
    skipped = losscli.evaluate("mse", frame, nan="skip")
    assert skipped.value == pytest.approx(mse_ref(p[keep], T[keep]), rel=REL)


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow", "dict"])
def test_ce_wide_scores_with_class_named_columns(kind: str) -> None:
    """``pd.DataFrame(clf.predict_proba(X), columns=clf.classes_)`` for classes 0..C-1 and a
    label column beside it: the label is the target, the class columns are the scores."""
    raw = RNG.uniform(0.05, 1.0, size=(N, 3))
    probs = raw / raw.sum(axis=1, keepdims=True)
    labels = RNG.integers(0, 3, N)
    frame = pd.DataFrame(probs, columns=np.arange(3))
    frame["label"] = labels
    source = as_kind(frame.rename(columns=str), kind) if kind != "pandas" else frame
    report = losscli.evaluate("ce", source, input="probs")
    assert report.value == pytest.approx(ce_ref(probs, labels), rel=1e-12)
    assert report.to_dict()["columns"]["preds"]["columns"] == ["0", "1", "2"]
    scores_only = as_kind(pd.DataFrame(probs, columns=["0", "1", "2"]), kind)
    assert losscli.cross_entropy(scores_only, labels, input="probs") == pytest.approx(
        ce_ref(probs, labels), rel=1e-12
    )


def test_ce_class_columns_in_another_order_map_by_name() -> None:
    raw = RNG.uniform(0.05, 1.0, size=(N, 3))
    probs = raw / raw.sum(axis=1, keepdims=True)
    labels = RNG.integers(0, 3, N)
    shuffled = pd.DataFrame(probs[:, [2, 0, 1]], columns=[2, 0, 1])
    report = losscli.evaluate("ce", shuffled, labels, input="probs")
    assert report.value == pytest.approx(ce_ref(probs, labels), rel=1e-12)


def test_dict_of_2d_scores_and_labels() -> None:
    raw = RNG.uniform(0.05, 1.0, size=(N, 4))
    probs = raw / raw.sum(axis=1, keepdims=True)
    labels = RNG.integers(0, 4, N)
    report = losscli.evaluate(
        "ce", {"scores": probs, "label": labels}, pred_col="scores", target_col="label", input="probs"
    )
    assert report.value == pytest.approx(ce_ref(probs, labels), rel=1e-12)


def test_threads_and_small_chunks_give_the_same_value() -> None:
    n = 5000
    p, t = RNG.normal(size=n), RNG.normal(size=n)
    batches = [
        pa.record_batch({"y_pred": p[i : i + 700], "y_true": t[i : i + 700]}) for i in range(0, n, 700)
    ]
    table = pa.Table.from_batches(batches)  # several chunks, sliced across their boundaries
    for threads in (1, 2):
        report = losscli.evaluate("mse", table, chunk_size=333, threads=threads)
        assert report.value == pytest.approx(mse_ref(p, t), rel=1e-12)


def test_frames_as_weights() -> None:
    w = RNG.uniform(0.1, 2.0, N)
    report = losscli.evaluate("mse", {"y": P}, {"y": T}, weights=pd.DataFrame({"weight": w}))
    assert report.value == pytest.approx(float(np.sum(w * (P - T) ** 2) / np.sum(w)), rel=1e-12)


def test_text_column_chosen_as_data_is_refused_naming_it() -> None:
    frame = pd.DataFrame({"y_pred": ["a"] * 3, "y_true": [1.0, 2.0, 3.0]})
    with pytest.raises(losscli.InputError, match=r"'y_pred'.*not numbers"):
        losscli.evaluate("mse", frame)


def test_dict_columns_of_different_lengths_are_a_usage_error() -> None:
    with pytest.raises(losscli.UsageError, match="'a' has 3 rows, 'b' has 2"):
        losscli.evaluate("mse", {"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0]})


@pytest.mark.parametrize(
    ("obj", "name"),
    [({1.0, 2.0}, "set"), (object(), "object"), (b"1.0", "bytes"), (iter([1.0]), "list_iterator")],
)
def test_unsupported_objects_name_their_type(obj: Any, name: str) -> None:
    with pytest.raises(losscli.UsageError, match=rf"preds: cannot read a {name}\b"):
        losscli.mse(obj, [1.0])


def test_a_custom_class_is_named_with_its_module() -> None:
    class Thing:
        pass

    with pytest.raises(losscli.UsageError, match=r"targets: cannot read a .*Thing; pass a path"):
        losscli.evaluate("mse", [1.0], Thing())


def test_arrays_and_lists_read_as_before() -> None:
    assert losscli.mse([2.5, 3.0, 4.5], [2.0, 3.5, 4.0]) == pytest.approx(0.25, rel=REL)
    assert losscli.mse(pd.Series(P), pl.Series(T)) == pytest.approx(mse_ref(P, T), rel=REL)
    assert losscli.mse(pa.array(P), pa.chunked_array([T[:10], T[10:]])) == pytest.approx(
        mse_ref(P, T), rel=REL
    )
    with pytest.raises(losscli.UsageError, match="expected a numeric array"):
        losscli.mse(["a", "b"], [1.0, 2.0])


def test_numpy_only_callers_import_neither_pandas_nor_polars() -> None:
    code = (
        "import losscli, sys\n"
        "losscli.mse([1.0], [2.0])\n"
        "losscli.evaluate('mse', {'y_pred': [1.0, 2.0], 'id': ['a', 'b']}, {'y_true': [1.0, 3.0]})\n"
        "print('pandas' in sys.modules, 'polars' in sys.modules, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


def test_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    p32 = torch.tensor(P, dtype=torch.float32, requires_grad=True)
    t32 = torch.tensor(T, dtype=torch.float32)
    ref32 = mse_ref(p32.detach().numpy(), t32.numpy())
    assert losscli.mse(p32, t32) == pytest.approx(ref32, rel=1e-12)
    bf = p32.to(torch.bfloat16)  # keeps requires_grad through the cast
    ref_bf = mse_ref(bf.detach().float().numpy(), t32.numpy())
    assert losscli.mse(bf, t32) == pytest.approx(ref_bf, rel=1e-12)
    half = p32.detach().half()
    ref_half = mse_ref(half.float().numpy(), t32.numpy())
    assert losscli.mse(half, t32) == pytest.approx(ref_half, rel=1e-6)
    logits = torch.randn(N, 5, generator=torch.Generator().manual_seed(3)).to(torch.bfloat16).requires_grad_()
    labels = torch.randint(0, 5, (N,), generator=torch.Generator().manual_seed(4))
    x = logits.detach().float().numpy().astype(np.float64)
    x = x - x.max(axis=1, keepdims=True)
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    ref_ce = float(-np.mean(logp[np.arange(N), labels.numpy()]))
    assert losscli.cross_entropy(logits, labels, input="logits") == pytest.approx(ref_ce, rel=1e-6)
    frame = {"y_pred": p32, "y_true": t32}
    assert losscli.evaluate("mse", frame).value == pytest.approx(ref32, rel=1e-12)


class ArrayCapsuleOnly:
    """A foreign record batch that exposes nothing but ``__arrow_c_array__``."""

    def __init__(self, batch: pa.RecordBatch) -> None:
        self._batch = batch

    def __arrow_c_array__(self, requested_schema: Any = None) -> Any:
        return self._batch.__arrow_c_array__(requested_schema)


def test_an_arrow_array_capsule_of_a_batch_is_a_table() -> None:
    batch = pa.record_batch({"y_true": T, "y_pred": P})
    assert losscli.evaluate("mse", ArrayCapsuleOnly(batch)).value == pytest.approx(mse_ref(P, T), rel=REL)
    with pytest.raises(losscli.UsageError, match="ArrayCapsuleOnly gives an Arrow array that is not a table"):
        losscli.mse(ArrayCapsuleOnly(pa.array(P)), T)  # type: ignore[arg-type]


FRAME_DTYPES = ["float64", "float32", "float16", "int64", "int8", "uint16", "bool"]


@given(
    n=st.integers(0, 40),
    dtypes=st.tuples(st.sampled_from(FRAME_DTYPES), st.sampled_from(FRAME_DTYPES)),
    kind=st.sampled_from(["pandas", "polars", "arrow", "dict", "stream"]),
    missing=st.one_of(st.none(), st.integers(0, 39)),
    nan=st.sampled_from(["error", "skip"]),
    chunk=st.integers(1, 17),
    threads=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=60, deadline=None)
def test_random_frames_give_the_reference_or_a_losscli_error(
    n: int,
    dtypes: tuple[str, str],
    kind: str,
    missing: int | None,
    nan: str,
    chunk: int,
    threads: int,
    seed: int,
) -> None:
    """Any dtype, length, missing value, chunking and threading: the float64 reference, or a
    LossCliError (an empty input, a refused missing value); never another exception."""
    rng = np.random.default_rng(seed)
    cols = {}
    for name, dtype in zip(("y_pred", "y_true"), dtypes, strict=True):
        values = rng.integers(0, 2, n) if dtype == "bool" else rng.integers(0, 50, n)
        cols[name] = values.astype(dtype)
    frame = pd.DataFrame(cols)
    if missing is not None and missing < n:
        frame["y_pred"] = frame["y_pred"].astype("float64")
        frame.loc[missing, "y_pred"] = np.nan
    source = as_kind(frame, kind)
    p = frame["y_pred"].to_numpy(dtype=np.float64)
    t = frame["y_true"].to_numpy(dtype=np.float64)
    try:
        report = losscli.evaluate("mse", source, nan=nan, chunk_size=chunk, threads=threads)
    except losscli.LossCliError as exc:
        refused_missing = missing is not None and missing < n and nan == "error"
        empty = n == 0 or (missing is not None and n == 1 and missing == 0)
        assert refused_missing or empty, str(exc)
        return
    keep = ~np.isnan(p)
    assert report.value == pytest.approx(mse_ref(p[keep], t[keep]), rel=1e-9, abs=1e-12)


def test_column_options_take_positions_and_lists_from_python() -> None:
    import pandas as pd

    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.5, 2.0, 2.0], "w": [1.0, 1.0, 2.0]})
    e2 = (df["a"] - df["b"]) ** 2
    assert losscli.evaluate("mse", df, pred_col="a", target_col=1).value == pytest.approx(
        e2.mean(), rel=1e-15
    )
    weighted = losscli.evaluate("mse", df, pred_col=["a"], target_col="b", weight_col=2).value
    assert weighted == pytest.approx(float((e2 * df["w"]).sum() / df["w"].sum()), rel=1e-15)
    with pytest.raises(losscli.UsageError, match="set"):
        losscli.evaluate("mse", df, pred_col={"a"}, target_col="b")
