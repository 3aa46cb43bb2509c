"""One place for the format lists, compression detection and TSV detection (readers.formats)."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from losscli.readers import FORMATS, INPUT_FORMATS, open_reader
from losscli.readers.formats import detect_compression, format_from_name, sniff, tab_separated


@pytest.mark.parametrize(
    ("path", "head", "want"),
    [
        ("a.csv.gz", None, "gzip"),
        ("A.TSV.GZ", None, "gzip"),
        ("a.csv.bz2", None, "bz2"),
        ("a.csv.zst", None, "zstd"),
        ("a.csv.lz4", None, "lz4"),
        ("a.csv.br", None, "brotli"),
        ("a.csv", None, None),
        ("a.gzip", None, None),
        ("-", b"\x1f\x8b\x08\x00", "gzip"),
        ("-", b"BZh91AY", "bz2"),
        ("-", b"\x28\xb5\x2f\xfd\x00", "zstd"),
        ("-", b"\x04\x22\x4d\x18", "lz4"),
        ("-", b"0.5,1\n", None),
        ("a.csv.gz", b"0.5,1\n", "gzip"),  # the name decides before the bytes
    ],
)
def test_detect_compression(path: str, head: bytes | None, want: str | None) -> None:
    assert detect_compression(path, head) == want


@pytest.mark.parametrize(
    ("path", "first", "want"),
    [
        ("a.tsv", None, True),
        ("a.TAB", None, True),
        ("a.tsv.gz", None, True),
        ("a.csv", None, False),
        ("a.csv", "1\t2", True),  # tabs and no commas: tab-separated whatever the name
        ("a.csv", "1,2\t3", False),
        ("-", "x\ty", True),
        ("-", "x", False),
        ("a.txt", "0.5", False),
    ],
)
def test_tab_separated(path: str, first: str | None, want: bool) -> None:
    assert tab_separated(path, first) is want


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("x.csv", "csv"),
        ("x.txt", "csv"),
        ("x.tsv", "tsv"),
        ("x.tab.gz", "tsv"),
        ("x.csv.zst", "csv"),
        ("x.parquet", "parquet"),
        ("x.PQ", "parquet"),
        ("x.npy", "npy"),
        ("x.npz", "npz"),
        ("x.jsonl", "jsonl"),
        ("x.ndjson", "jsonl"),
        ("x.bin", None),
        ("-", "csv"),
    ],
)
def test_format_from_name(path: str, want: str | None) -> None:
    assert format_from_name(path) == want


def test_sniff_and_format_lists() -> None:
    buf = io.BytesIO()
    np.save(buf, np.zeros(2))
    assert sniff(buf.getvalue()[:8]) == "npy"
    assert sniff(b"PAR1\x15\x04") == "parquet"
    assert sniff(b"PK\x03\x04") == "npz"
    assert sniff(b"\x1f\x8b") is None
    assert FORMATS == ("csv", "tsv", "parquet", "npy", "npz", "jsonl", "json")
    assert INPUT_FORMATS == FORMATS  # --input-format jsonl/json: JSON log-probs on any name


def test_a_gzipped_tsv_is_read_by_its_name(tmp_path: Path) -> None:
    path = tmp_path / "p.tsv.gz"
    path.write_bytes(gzip.compress(b"a\tb\n0.5\t1.5\n2\t-1\n"))
    with open_reader(str(path)) as reader:
        assert list(reader.column_names) == ["a", "b"]
        got = next(reader.chunks([None], 10))[0]
    np.testing.assert_array_equal(got, [[0.5, 1.5], [2.0, -1.0]])


@pytest.mark.parametrize("fmt", INPUT_FORMATS)
def test_every_input_format_can_be_forced_on_a_file_of_any_name(tmp_path: Path, fmt: str) -> None:
    values = np.array([0.25, 0.5, 2.0])
    path = tmp_path / "data.bin"
    if fmt in ("csv", "tsv"):
        path.write_text("\n".join(map(str, values)) + "\n")
    elif fmt == "parquet":
        pq.write_table(pa.table({"x": values}), path)
    elif fmt == "npy":
        with open(path, "wb") as fp:
            np.save(fp, values)
    elif fmt == "jsonl":
        path.write_text(json.dumps({"token_logprobs": values.tolist()}) + "\n")
    elif fmt == "json":
        path.write_text(json.dumps([{"token": "t", "logprob": v} for v in values.tolist()]))
    else:
        with open(path, "wb") as fp:
            np.savez(fp, values)
    with open_reader(str(path), fmt) as reader:
        got = np.concatenate([np.array(c[0]) for c in reader.chunks([None], 2)])
    np.testing.assert_array_equal(got.ravel(), values)
