"""Faults and the hostile inputs not covered in test_errors.py: each ends in one line and a
documented exit code, and leaves no partial output behind."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import losscli
from losscli.readers.open import open_reader
from test_errors import assert_bad

from conftest import run_cli


def test_csv_row_longer_than_the_parse_block(tmp_path) -> None:
    width = 700_000  # ~4.9 MB per line: longer than pyarrow's 4 MB parse unit
    row = ",".join(["1.5"] * width)
    path = tmp_path / "wide.csv"
    path.write_text(f"{row}\n{row}\n")
    report = losscli.evaluate("mae", path, pred_col="0", target_col="1")
    assert report.value == 0.0 and report.n == 2


def test_file_size_limit_mid_write_leaves_nothing(tmp_path) -> None:
    n = 200_000
    np.save(tmp_path / "p.npy", np.arange(n, dtype=np.float64))
    np.save(tmp_path / "y.npy", np.zeros(n))
    out = tmp_path / "losses.csv"
    out.write_text("old\n")
    cmd = (
        f"ulimit -f 64; {sys.executable} -m losscli mse {tmp_path}/p.npy {tmp_path}/y.npy "
        f"--per-example {out} -f value"
    )
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 4, proc.stderr
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "losses.csv" in proc.stderr
    assert out.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["losses.csv", "p.npy", "y.npy"]


def test_output_beside_a_file_is_exit_4(tmp_path) -> None:
    (tmp_path / "afile").write_text("x")
    np.save(tmp_path / "p.npy", np.zeros(3))
    r = run_cli("mse", tmp_path / "p.npy", tmp_path / "p.npy", "--per-example", tmp_path / "afile" / "l.csv")
    assert r.code == 4 and r.stdout == "" and "cannot write" in r.stderr


def test_input_that_shrinks_while_read(tmp_path) -> None:
    path = tmp_path / "p.npy"
    np.save(path, np.arange(1000, dtype=np.float64))
    reader = open_reader(str(path))
    chunks = reader.chunks([None], 100)
    next(chunks)
    with open(path, "r+b") as fp:
        fp.truncate(128 + 8 * 300)
    with pytest.raises(losscli.InputError, match="ended early at row 300"):
        for _ in chunks:
            pass
    reader.close()


def test_oversized_npy_header(tmp_path) -> None:
    body = b"{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }" + b" " * 2_000_000 + b"\n"
    (tmp_path / "h.npy").write_bytes(b"\x93NUMPY\x02\x00" + struct.pack("<I", len(body)) + body)
    np.save(tmp_path / "y.npy", np.zeros(3))
    assert_bad(run_cli("mse", tmp_path / "h.npy", tmp_path / "y.npy"), 3, "h.npy", "not a valid .npy")


def test_npz_member_declaring_a_huge_shape_is_refused_before_allocating(tmp_path) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    with zipfile.ZipFile(tmp_path / "huge.npz", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("arr_0.npy", header.getvalue() + b"\x00" * 64)
    np.save(tmp_path / "y.npy", np.zeros(3))
    r = run_cli("mse", tmp_path / "huge.npz", tmp_path / "y.npy")
    assert_bad(r, 3, "huge.npz")


def test_corrupt_parquet_pages(tmp_path) -> None:
    pq.write_table(
        pa.table({"p": np.arange(5000.0), "y": np.arange(5000.0)}),
        tmp_path / "ok.parquet",
        compression="snappy",
    )
    data = bytearray((tmp_path / "ok.parquet").read_bytes())
    middle = len(data) // 3
    data[middle : middle + 64] = bytes(64)  # zero a stretch of column data, keep the footer
    (tmp_path / "bad.parquet").write_bytes(bytes(data))
    r = run_cli("mse", tmp_path / "bad.parquet", "--pred-col", "p", "--target-col", "y")
    if r.code == 0:  # zeroed bytes that happened to decode are still valid numbers
        assert r.stdout
    else:
        assert_bad(r, 3, "bad.parquet")


def test_float16_parquet_column(tmp_path) -> None:
    p = np.array([0.5, 1.5, -2.0], dtype=np.float16)
    pq.write_table(pa.table({"p": pa.array(p), "y": pa.array(np.zeros(3))}), tmp_path / "h.parquet")
    assert losscli.evaluate(
        "mae", tmp_path / "h.parquet", pred_col="p", target_col="y"
    ).value == pytest.approx(4 / 3)


def test_nul_bytes_and_1e400_in_a_big_csv(tmp_path) -> None:
    rows = "".join(f"{i},{i}\n" for i in range(40_000))
    (tmp_path / "inf.csv").write_text("p,y\n" + rows + "1e400,1\n")
    assert_bad(run_cli("mse", tmp_path / "inf.csv"), 3, "row 40000", "'p'", "not a finite number")
    (tmp_path / "nul.csv").write_bytes(b"p,y\n" + rows.encode() + b"1,\x002\n")
    assert_bad(run_cli("mse", tmp_path / "nul.csv"), 3, "nul.csv", "row 40000")


def test_read_only_directory_is_exit_4(tmp_path, monkeypatch) -> None:
    from losscli import per_example
    from losscli.errors import OutputError

    np.save(tmp_path / "p.npy", np.zeros(3))

    def read_only(*args, **kwargs):  # root writes anywhere, so simulate EACCES/EROFS
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(per_example, "_create_temp", read_only)
    with pytest.raises(OutputError, match="cannot write here") as err:
        losscli.evaluate("mse", tmp_path / "p.npy", tmp_path / "p.npy", per_example=str(tmp_path / "l.csv"))
    assert err.value.exit_code == 4
    assert not (tmp_path / "l.csv").exists()
