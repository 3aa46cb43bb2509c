"""Every bad input: exit 3 (or 2 for usage), one line on stderr naming file and place, no
traceback, and nothing on stdout that could be taken for a result."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

from conftest import run_cli, write_parquet


def assert_bad(r, code: int, *needles: str) -> None:
    assert r.code == code, (r.code, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("losscli: error: ")
    assert "Traceback" not in r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def files(tmp_path):
    np.save(tmp_path / "a3.npy", np.arange(3.0))
    np.save(tmp_path / "a4.npy", np.arange(4.0))
    np.save(tmp_path / "z.npy", np.zeros((3, 4)))
    return tmp_path


def test_missing_file(files) -> None:
    assert_bad(run_cli("mse", files / "nope.csv", files / "a3.npy"), 3, "nope.csv", "no such file")


def test_directory_as_file(files) -> None:
    """A directory is a sharded input (issue 12): its 3 .npy shards hold 10 rows, a3.npy 3."""
    assert_bad(run_cli("mse", files, files / "a3.npy"), 3, "10 rows in 3 shards", "a3.npy has 3")


def test_unreadable_file(files, monkeypatch) -> None:
    import builtins

    import losscli
    from losscli.errors import InputError

    path = files / "secret.csv"
    path.write_text("1\n")
    if os.geteuid() != 0:
        path.chmod(0)
        assert_bad(run_cli("mse", path, files / "a3.npy"), 3, "permission denied")
        return
    real_open = builtins.open

    def deny(file, *args, **kwargs):  # root reads any file, so simulate EACCES
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    with pytest.raises(InputError, match=r"secret\.csv: permission denied") as err:
        losscli.evaluate("mse", path, files / "a3.npy")
    assert err.value.exit_code == 3


def test_non_numeric_cell_names_row_and_column(files) -> None:
    path = files / "bad.csv"
    path.write_text("p,y\n1,2\n3,4\n5,abc\n")
    assert_bad(run_cli("mse", path), 3, "bad.csv", "row 2", "'y'", "'abc'", "line 4")


def test_bad_value_deep_in_a_big_csv(files) -> None:
    # far past pyarrow's first block: the message still names the exact row
    n = 300_000
    body = "".join(f"{i},{i}\n" for i in range(n))
    path = files / "deep.csv"
    path.write_text("p,y\n" + body + "1,x\n" + "2,2\n")
    assert_bad(run_cli("mse", path), 3, "deep.csv", f"row {n}", "'x'")


def test_ragged_row(files) -> None:
    path = files / "ragged.csv"
    path.write_text("p,y\n1,2\n3\n")
    assert_bad(run_cli("mse", path), 3, "ragged.csv", "row 1", "1 field")


def test_empty_cell(files) -> None:
    path = files / "hole.csv"
    path.write_text("p,y\n1,2\n,3\n")
    assert_bad(run_cli("mse", path), 3, "row 1", "'p'", "empty cell")


@pytest.mark.parametrize("content", ["", "p,y\n"])
def test_empty_input(files, content: str) -> None:
    path = files / "empty.csv"
    path.write_text(content)
    assert_bad(
        run_cli("mse", path, "--pred-col", "p", "--target-col", "y") if content else run_cli("mse", path),
        3,
        "empty.csv",
    )


def test_wrong_shape(files) -> None:
    assert_bad(run_cli("mse", files / "a3.npy", files / "z.npy"), 3, "z.npy", "4 value(s) per row")
    assert_bad(run_cli("ce", files / "a3.npy", files / "a3.npy"), 3, "a3.npy", "(N, C)")


def test_length_mismatch_known_up_front(files) -> None:
    assert_bad(
        run_cli("mse", files / "a3.npy", files / "a4.npy"), 3, "a3.npy has 3 rows", "a4.npy has 4 rows"
    )


def test_length_mismatch_found_at_end_of_stream(files) -> None:
    # CSV lengths are unknown until the end: the aligner counts the rest and names both.
    big = files / "long.csv"
    big.write_text("p\n" + "".join(f"{i}\n" for i in range(100_003)))
    np.save(files / "short.npy", np.zeros(100_000))
    assert_bad(
        run_cli("mse", big, files / "short.npy", "--chunk-size", "777"),
        3,
        "long.csv has 100003 rows",
        "short.npy has 100000 rows",
    )
    assert_bad(
        run_cli("mse", files / "short.npy", big), 3, "short.npy has 100000 rows", "long.csv has 100003 rows"
    )


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1e400"])
def test_nan_and_inf_are_errors_unless_skipped(files, bad: str) -> None:
    path = files / "nan.csv"
    path.write_text(f"p,y\n1,2\n{bad},3\n4,4\n")
    assert_bad(run_cli("mse", path), 3, "row 1", "'p'", "not a finite number")
    r = run_cli("mse", path, "--nan", "skip", "-f", "json")
    assert r.code == 0, r.stderr
    data = r.json()
    assert data["n"] == 2 and data["skipped"] == 1
    assert data["value"] == 0.5  # (1-2)^2 and (4-4)^2


def test_probability_outside_unit_interval(files) -> None:
    np.save(files / "p.npy", np.array([0.2, 1.5, 0.1]))
    np.save(files / "y.npy", np.array([0.0, 1.0, 1.0]))
    assert_bad(
        run_cli("bce", files / "p.npy", files / "y.npy", "--input", "probs"),
        3,
        "p.npy",
        "row 1",
        "1.5",
        "outside [0, 1]",
    )


def test_bce_target_outside_unit_interval(files) -> None:
    np.save(files / "y.npy", np.array([0.0, 1.0, 2.0]))
    assert_bad(run_cli("bce", files / "a3.npy", files / "y.npy"), 3, "y.npy", "row 2", "outside [0, 1]")


def test_class_id_out_of_range(files) -> None:
    np.save(files / "ids.npy", np.array([0, 5, 1]))
    assert_bad(
        run_cli("ce", files / "z.npy", files / "ids.npy", "--input", "logits"),
        3,
        "ids.npy",
        "row 1",
        "class id 5",
        "4 classes",
    )


def test_token_id_out_of_range(files) -> None:
    np.save(files / "ids.npy", np.array([0, 1, -3]))
    assert_bad(
        run_cli("perplexity", "--logits", files / "z.npy", "--targets", files / "ids.npy"), 3, "row 2", "-3"
    )


def test_fractional_class_id(files) -> None:
    (files / "ids.csv").write_text("label\n0\n1.5\n2\n")
    assert_bad(
        run_cli("ce", files / "z.npy", files / "ids.csv", "--input", "logits"),
        3,
        "ids.csv",
        "row 1",
        "whole number",
    )


def test_object_npy_is_never_unpickled(files) -> None:
    marker = files / "pwned"
    payload = np.array([1, "a", None], dtype=object)
    np.save(files / "obj.npy", payload, allow_pickle=True)
    assert_bad(run_cli("mse", files / "obj.npy", files / "a3.npy"), 3, "obj.npy", "never unpickles")
    assert not marker.exists()


def test_structured_npy(files) -> None:
    np.save(files / "rec.npy", np.zeros(3, dtype=[("a", "f8"), ("b", "f8")]))
    assert_bad(run_cli("mse", files / "rec.npy", files / "a3.npy"), 3, "structured")


def test_truncated_npy(files) -> None:
    data = (files / "a4.npy").read_bytes()
    (files / "t.npy").write_bytes(data[:-5])
    assert_bad(run_cli("mse", files / "t.npy", files / "a4.npy"), 3, "t.npy", "truncated")


def test_malformed_npy_header(files) -> None:
    (files / "m.npy").write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': nope}\n")
    assert_bad(run_cli("mse", files / "m.npy", files / "a3.npy"), 3, "m.npy", "not a valid .npy")


def test_npz_needs_a_key_and_lists_keys(files) -> None:
    np.savez(files / "multi.npz", logits=np.zeros((3, 2)), labels=np.zeros(3))
    assert_bad(run_cli("mse", files / "multi.npz", files / "a3.npy"), 3, "logits (3, 2)", "labels (3,)")
    assert_bad(
        run_cli("mse", files / "multi.npz", "--pred-col", "x", "--target-col", "labels"),
        3,
        "no array 'x'",
        "logits (3, 2)",
    )


def test_content_does_not_match_extension(files) -> None:
    write_parquet(files / "really.parquet", {"p": np.arange(3.0)})
    (files / "fake.npy").write_bytes((files / "really.parquet").read_bytes())
    assert_bad(run_cli("mse", files / "fake.npy", files / "a3.npy"), 3, "fake.npy", "parquet file", "rename")
    (files / "fake.csv").write_bytes((files / "a3.npy").read_bytes())
    assert_bad(run_cli("mse", files / "fake.csv", files / "a3.npy"), 3, "fake.csv", "npy")


@pytest.mark.parametrize("content", [b"", b"PAR", b"PAR1garbage-garbage", b"hello world, not parquet"])
def test_corrupt_parquet(files, content: bytes) -> None:
    (files / "c.parquet").write_bytes(content)
    assert_bad(run_cli("mse", files / "c.parquet", files / "a3.npy"), 3, "c.parquet")


def test_truncated_parquet_footer(files) -> None:
    write_parquet(files / "ok.parquet", {"p": np.arange(3.0)})
    data = (files / "ok.parquet").read_bytes()
    (files / "cut.parquet").write_bytes(data[: len(data) // 2])
    assert_bad(run_cli("mse", files / "cut.parquet", files / "a3.npy"), 3, "cut.parquet")


def test_corrupt_gzip_csv(files) -> None:
    good = gzip.compress(b"p,y\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(1000)))
    (files / "c.csv.gz").write_bytes(good[:40] + b"\x00" * 20 + good[60:])
    assert_bad(run_cli("mse", files / "c.csv.gz"), 3, "c.csv.gz")


def test_invalid_utf8_and_nul(files) -> None:
    (files / "u.csv").write_bytes(b"p,y\n1,2\n\xff\xfe,3\n")
    assert_bad(run_cli("mse", files / "u.csv"), 3, "u.csv")
    (files / "n.csv").write_bytes(b"p,y\n1,2\n3,\x004\n")
    assert_bad(run_cli("mse", files / "n.csv"), 3, "n.csv", "row 1")


def test_negative_weight(files) -> None:
    np.save(files / "w.npy", np.array([1.0, -1.0, 1.0]))
    assert_bad(
        run_cli("mse", files / "a3.npy", files / "a3.npy", "--weights", files / "w.npy"),
        3,
        "w.npy",
        "row 1",
        "negative",
    )


def test_weight_count_mismatch(files) -> None:
    assert_bad(
        run_cli("mse", files / "a3.npy", files / "a3.npy", "--weights", files / "a4.npy"),
        3,
        "a4.npy has 4 rows",
    )


def test_all_rows_ignored(files) -> None:
    np.save(files / "ids.npy", np.full(3, -100))
    assert_bad(
        run_cli("ce", files / "z.npy", files / "ids.npy", "--input", "logits"),
        3,
        "nothing was scored",
        "ignore index",
    )


@pytest.mark.parametrize(
    "args",
    [
        ["mse"],
        ["mse", "a.csv", "b.csv", "--format", "xml"],
        ["bce", "a.csv", "--input", "logprobs"],
        ["nosuchmetric"],
        ["mse", "a.csv", "--chunk-size", "x"],
    ],
)
def test_usage_errors_exit_2(args) -> None:
    r = run_cli(*args)
    assert r.code == 2
    assert r.stdout == ""
    assert "Traceback" not in r.stderr


def test_single_file_without_columns_is_a_usage_error(files) -> None:
    (files / "two.csv").write_text("a,b\n1,2\n")
    assert_bad(run_cli("mse", files / "two.csv"), 2, "--pred-col", "--target-col")
