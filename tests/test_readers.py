"""Readers on valid but unusual inputs: each must give the right answer."""

from __future__ import annotations

import numpy as np
import pytest

import losscli
from losscli.readers.open import open_reader

import references as ref
from conftest import run_cli, write_parquet

P = np.array([1.5, -2.25, 3.0, 0.125])
Y = np.array([1.0, -2.0, 2.0, 0.5])
WANT = ref.mse(P, Y)


def _value(*args, **kw) -> float:
    return losscli.evaluate("mse", *args, **kw).value


def test_headerless_csv_by_index(tmp_path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("".join(f"{a!r},{b!r}\n" for a, b in zip(P.tolist(), Y.tolist(), strict=True)))
    assert open_reader(str(path)).column_names == ["0", "1"]
    assert _value(path, pred_col="0", target_col="1") == pytest.approx(WANT, rel=1e-15)


def test_bom_crlf_quotes_and_trailing_blank_lines(tmp_path) -> None:
    body = "\ufeffpred,target\r\n" + "".join(
        f'"{a!r}",{b!r}\r\n' for a, b in zip(P.tolist(), Y.tolist(), strict=True)
    )
    path = tmp_path / "odd.csv"
    path.write_bytes((body + "\r\n\r\n").encode("utf-8"))
    assert open_reader(str(path)).column_names == ["pred", "target"]
    assert _value(path) == pytest.approx(WANT, rel=1e-15)


def test_tsv_and_tsv_on_stdin(tmp_path) -> None:
    text = "pred\ttarget\n" + "".join(f"{a!r}\t{b!r}\n" for a, b in zip(P.tolist(), Y.tolist(), strict=True))
    (tmp_path / "t.tsv").write_text(text)
    assert _value(tmp_path / "t.tsv") == pytest.approx(WANT, rel=1e-15)
    r = run_cli("mse", "-", "-f", "value", stdin=text.encode())
    assert r.code == 0, r.stderr
    assert float(r.stdout) == pytest.approx(WANT, rel=1e-15)


def test_integer_columns(tmp_path) -> None:
    (tmp_path / "i.csv").write_text("pred,target\n1,2\n3,3\n10,4\n")
    assert _value(tmp_path / "i.csv") == pytest.approx((1 + 0 + 36) / 3, rel=1e-15)
    write_parquet(
        tmp_path / "i.parquet",
        {"pred": np.array([1, 3, 10], np.int32), "target": np.array([2, 3, 4], np.int8)},
    )
    assert _value(tmp_path / "i.parquet") == pytest.approx((1 + 0 + 36) / 3, rel=1e-15)


def test_float16_and_float32_columns(tmp_path) -> None:
    p16 = P.astype(np.float16)
    np.save(tmp_path / "p16.npy", p16)
    np.save(tmp_path / "y32.npy", Y.astype(np.float32))
    want = ref.mse(p16.astype(np.float64), Y.astype(np.float32).astype(np.float64))
    assert _value(tmp_path / "p16.npy", tmp_path / "y32.npy") == pytest.approx(want, rel=1e-6)


def test_big_endian_and_fortran_npy(tmp_path) -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, (37, 5))
    t = rng.integers(0, 5, 37)
    np.save(tmp_path / "be.npy", z.astype(">f8"))
    np.save(tmp_path / "f.npy", np.asfortranarray(z))
    np.save(tmp_path / "t.npy", t.astype(">i8"))
    want = ref.ce_logits(z, t)
    assert losscli.evaluate(
        "ce", tmp_path / "be.npy", tmp_path / "t.npy", chunk_size=8
    ).value == pytest.approx(want, rel=1e-12)
    assert losscli.evaluate(
        "ce", tmp_path / "f.npy", tmp_path / "t.npy", chunk_size=8
    ).value == pytest.approx(want, rel=1e-12)


def test_npz_single_and_multi(tmp_path) -> None:
    np.savez(tmp_path / "one.npz", P)
    np.savez_compressed(tmp_path / "y.npz", Y)
    assert _value(tmp_path / "one.npz", tmp_path / "y.npz") == pytest.approx(WANT, rel=1e-15)
    np.savez(tmp_path / "both.npz", yhat=P, y=Y)
    assert _value(tmp_path / "both.npz", pred_col="yhat", target_col="y", chunk_size=3) == pytest.approx(
        WANT, rel=1e-15
    )


def test_parquet_multiple_row_groups_and_fixed_size_list(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(2)
    z = rng.normal(0, 1, (50, 3))
    t = rng.integers(0, 3, 50)
    arr = pa.FixedSizeListArray.from_arrays(pa.array(z.ravel()), 3)
    pq.write_table(pa.table({"scores": arr, "label": t}), tmp_path / "f.parquet", row_group_size=7)
    report = losscli.evaluate("ce", tmp_path / "f.parquet", pred_col="scores", target_col="label")
    assert report.value == pytest.approx(ref.ce_logits(z, t), rel=1e-12)


def test_unknown_extension_is_sniffed(tmp_path) -> None:
    np.save(tmp_path / "p.npy", P)
    (tmp_path / "p.npy").rename(tmp_path / "p.data")
    (tmp_path / "y.txt").write_text("".join(f"{v!r}\n" for v in Y.tolist()))
    assert _value(tmp_path / "p.data", tmp_path / "y.txt") == pytest.approx(WANT, rel=1e-15)


def test_csv_reads_in_bounded_chunks(tmp_path) -> None:
    # a file much larger than one pyarrow block arrives as many chunks, none larger than asked
    n = 200_000
    (tmp_path / "big.csv").write_text("a\n" + "".join(f"{i}\n" for i in range(n)))
    reader = open_reader(str(tmp_path / "big.csv"))
    sizes = [len(c[0]) for c in reader.chunks([None], 5000)]
    assert sum(sizes) == n and max(sizes) <= 5000 and len(sizes) >= 40


def test_csv_blocks_parsed_concurrently_keep_order_and_rows(tmp_path, monkeypatch) -> None:
    # tiny blocks: dozens of them, PARSE_AHEAD parsed at once, buffers reused from the free list
    from losscli.readers import csv_reader

    monkeypatch.setattr(csv_reader, "SMALL_FILE_BYTES", 0)
    monkeypatch.setattr(csv_reader, "FIRST_BLOCK", 1 << 10)
    monkeypatch.setattr(csv_reader, "PARSE_BLOCK", 8 << 10)
    rng = np.random.default_rng(7)
    n = 20_000
    p, y = rng.normal(0, 3, n), rng.normal(0, 3, n)
    lines = "".join(f"{a!r},{b!r}\n" for a, b in zip(p.tolist(), y.tolist(), strict=True))
    (tmp_path / "many.csv").write_text("pred,target\n" + lines)
    got = losscli.evaluate("mse", tmp_path / "many.csv", pred_col="pred", target_col="target", chunk_size=777)
    assert got.n == n
    assert got.value == pytest.approx(ref.mse(p, y), rel=1e-12)
    # rows keep their file order across blocks: the worst rows and their values line up
    want_rows = np.argsort(-((p - y) ** 2), kind="stable")[: len(got.examples)]
    assert [e.row for e in got.examples] == want_rows.tolist()
    assert all(e.detail == (p[e.row], y[e.row]) for e in got.examples)
    # a bad cell in a late block is reported at its own row, after the blocks before it
    bad = lines.splitlines()
    bad[n - 30] = "1.0,oops"
    (tmp_path / "late.csv").write_text("pred,target\n" + "\n".join(bad) + "\n")
    with pytest.raises(losscli.InputError, match=rf"row {n - 30}\b.*'target'"):
        losscli.evaluate("mse", tmp_path / "late.csv", pred_col="pred", target_col="target")
