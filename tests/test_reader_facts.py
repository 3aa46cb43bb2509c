"""What every reader says about itself (read by engine and api without getattr), and passes.

Every reader has the same facts with defaults on ``Reader``: a CSV says it is delimited and
whether its first row was a header, JSON Lines that its records are sequences; the rest keep
the defaults. A file reads whole on every pass; a pipe refuses a second pass.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from losscli.errors import InputError
from losscli.readers import open_reader
from losscli.readers.memory import ArrayReader
from losscli.readers.numpy_reader import NpyReader


def test_reader_facts_have_defaults_on_every_reader(tmp_path: Path) -> None:
    """engine and api read these without getattr/hasattr: every reader has them."""
    (tmp_path / "h.csv").write_text("a,b\n1.5,2\n")
    (tmp_path / "n.csv").write_text("1.5,2\n3,4\n")
    (tmp_path / "lp.jsonl").write_text(json.dumps({"token_logprobs": [None, -1.0]}) + "\n")
    pq.write_table(pa.table({"x": [1.0]}), tmp_path / "x.parquet")
    np.save(tmp_path / "x.npy", np.zeros(3))
    with (
        open_reader(str(tmp_path / "h.csv")) as headed,
        open_reader(str(tmp_path / "n.csv")) as bare,
        open_reader(str(tmp_path / "lp.jsonl")) as jl,
        open_reader(str(tmp_path / "x.parquet")) as pqr,
        open_reader(str(tmp_path / "x.npy")) as npy,
    ):
        arr = ArrayReader(np.zeros(3), "a")
        assert (headed.delimited, headed.header_row, headed.ids_as_text) == (True, True, True)
        assert (bare.delimited, bare.header_row) == (True, False)
        for r in (jl, pqr, npy, arr):
            assert (r.delimited, r.header_row, r.header_guessed, r.blank_tail, r.ids_as_text) == (
                False,
                False,
                False,
                0,
                False,
            )
        assert [r.sequence_records for r in (headed, jl, pqr, npy, arr)] == [False, True, False, False, False]
        assert jl.nulls == 0  # counted once read
        assert jl.list_lengths(0).tolist() == [2] and jl.nulls == 1  # a null keeps its row


def test_an_npy_file_reads_whole_on_every_pass(tmp_path: Path) -> None:
    values = np.arange(7.0)
    np.save(tmp_path / "v.npy", values)
    with open_reader(str(tmp_path / "v.npy")) as reader:
        for _ in range(2):
            got = np.concatenate([np.array(c[0]) for c in reader.chunks([None], 3)])
            np.testing.assert_array_equal(got, values)


def test_an_npy_pipe_refuses_a_second_pass(tmp_path: Path) -> None:
    buf = io.BytesIO()
    np.save(buf, np.arange(4.0))
    buf.seek(0)
    reader = NpyReader("-", stream=buf)  # type: ignore[arg-type]
    got = np.concatenate([np.array(c[0]) for c in reader.chunks([None], 3)])
    np.testing.assert_array_equal(got, np.arange(4.0))
    with pytest.raises(InputError, match="can be read only once"):
        list(reader.chunks([None], 3))
