"""European CSV: ';'-separated files with decimal commas, as pandas and Polars write them.

Files are written by the real tools (pandas ``to_csv(sep=";", decimal=",")``, Polars
``write_csv(separator=";")`` with and without ``decimal_comma=True``) and scored against float64
references computed here from the arrays that were written. Sizes of 200 rows take the Python
parser, 30,000 rows (over 256 KB) pyarrow's.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

import losscli
from losscli.errors import UsageError

import references as ref
from conftest import run_cli

REL = 1e-12
SIZES = [200, 30_000]  # the Python parser (small files) and pyarrow's (over 256 KB)
NOTE_BOTH = "read as ';'-separated with decimal commas"


def _regression(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n) * 10
    return y + rng.normal(size=n), y


def _value(*args: object, stdin: bytes | None = None) -> tuple[float, str]:
    r = run_cli(*args, "-f", "json", stdin=stdin)
    assert r.code == 0, r.stderr
    return r.json()["value"], r.stderr


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("index", [True, False])
def test_pandas_one_file_mse(tmp_path: Path, n: int, index: bool) -> None:
    p, y = _regression(n)
    path = tmp_path / "eu.csv"
    pd.DataFrame({"y_pred": p, "y": y}).to_csv(path, sep=";", decimal=",", index=index)
    assert b"," in path.read_bytes() and b"." not in path.read_bytes()  # really decimal commas
    value, err = _value("mse", path)
    assert math.isclose(value, ref.mse(p, y), rel_tol=REL)
    assert f"{path}: {NOTE_BOTH}" in err


@pytest.mark.parametrize("n", SIZES)
def test_pandas_two_files_headered_one_column(tmp_path: Path, n: int) -> None:
    """One column under a header: its rows 1,5 cannot be two columns (the header has one)."""
    p, y = _regression(n)
    pd.DataFrame({"pred": p}).to_csv(tmp_path / "p.csv", sep=";", decimal=",", index=False)
    pd.DataFrame({"y": y}).to_csv(tmp_path / "t.csv", sep=";", decimal=",", index=False)
    value, err = _value("mae", tmp_path / "p.csv", tmp_path / "t.csv")
    assert math.isclose(value, ref.mae(p, y), rel_tol=REL)
    assert "read as one column of numbers with decimal commas" in err


@pytest.mark.parametrize("n", SIZES)
def test_pandas_headerless(tmp_path: Path, n: int) -> None:
    p, y = _regression(n)
    path = tmp_path / "h.csv"
    pd.DataFrame({"a": p, "b": y}).to_csv(path, sep=";", decimal=",", index=False, header=False)
    value, _ = _value("mse", path, "--pred-col", "0", "--target-col", "1")
    assert math.isclose(value, ref.mse(p, y), rel_tol=REL)


@pytest.mark.parametrize("n", SIZES)
def test_pandas_nan_skip(tmp_path: Path, n: int) -> None:
    p, y = _regression(n)
    p[[3, n // 2]] = np.nan  # pandas writes an empty cell
    path = tmp_path / "nan.csv"
    pd.DataFrame({"y_pred": p, "y": y}).to_csv(path, sep=";", decimal=",")
    r = run_cli("mse", path, "--nan", "skip", "-f", "json")
    assert r.code == 0, r.stderr
    keep = ~np.isnan(p)
    assert r.json()["skipped"] == 2
    assert math.isclose(r.json()["value"], ref.mse(p[keep], y[keep]), rel_tol=REL)
    refused = run_cli("mse", path)
    assert refused.code == 3 and "row 3" in refused.stderr


@pytest.mark.parametrize("n", SIZES)
def test_polars_semicolon_with_points(tmp_path: Path, n: int) -> None:
    """Polars' separator=';' keeps decimal points: ';' is detected, the decimal mark stays."""
    p, y = _regression(n)
    path = tmp_path / "pl.csv"
    pl.DataFrame({"y_pred": p, "y": y}).write_csv(path, separator=";")
    value, err = _value("mse", path)
    assert math.isclose(value, ref.mse(p, y), rel_tol=REL)
    assert "read as ';'-separated (pass --delimiter ';' to say so)" in err


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("separator", [";", ","])
def test_polars_decimal_comma(tmp_path: Path, n: int, separator: str) -> None:
    """Polars has a decimal-comma writer; with ',' as separator it quotes every number."""
    p, y = _regression(n)
    path = tmp_path / "plc.csv"
    pl.DataFrame({"y_pred": p, "y": y}).write_csv(path, separator=separator, decimal_comma=True)
    value, err = _value("mse", path)
    assert math.isclose(value, ref.mse(p, y), rel_tol=REL)
    assert "decimal commas" in err


@pytest.mark.parametrize("n", SIZES)
def test_ce_wide_scores(tmp_path: Path, n: int) -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(size=(n, 3))
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 3, n)
    frame = pd.DataFrame(probs, columns=["p0", "p1", "p2"]).assign(label=labels)
    path = tmp_path / "ce.csv"
    frame.to_csv(path, sep=";", decimal=",", index=False)
    value, _ = _value("ce", path, "--target-col", "label", "--input", "probs")
    assert math.isclose(value, ref.ce_probs(probs, labels), rel_tol=1e-10)


@pytest.mark.parametrize("n", SIZES)
def test_bce(tmp_path: Path, n: int) -> None:
    rng = np.random.default_rng(3)
    prob = rng.uniform(0.02, 0.98, n)
    label = (rng.random(n) < prob).astype(float)
    path = tmp_path / "bce.csv"
    pd.DataFrame({"prob": prob, "label": label}).to_csv(path, sep=";", decimal=",")
    value, _ = _value("bce", path, "--pred-col", "prob", "--target-col", "label")
    assert math.isclose(value, ref.bce_probs(prob, label), rel_tol=REL)


@pytest.mark.parametrize("n", SIZES)
def test_quoted_cells_and_ids(tmp_path: Path, n: int) -> None:
    """Text ids that hold ';' are quoted by pandas; they pair rows across two files."""
    p, y = _regression(n)
    ids = [f"s;{i}" for i in range(n)]
    pd.DataFrame({"id": ids, "pred": p}).to_csv(tmp_path / "p.csv", sep=";", decimal=",", index=False)
    pd.DataFrame({"id": ids, "y": y}).to_csv(tmp_path / "t.csv", sep=";", decimal=",", index=False)
    assert b'"s;0"' in (tmp_path / "p.csv").read_bytes()
    r = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "-f", "json")
    assert r.code == 0, r.stderr
    assert math.isclose(r.json()["value"], ref.mse(p, y), rel_tol=REL)
    worst = int(np.argmax((p - y) ** 2))
    assert r.json()["examples"][0]["id"] == ids[worst]


@pytest.mark.parametrize("n", SIZES)
def test_tsv_with_decimal_commas(tmp_path: Path, n: int) -> None:
    p, y = _regression(n)
    path = tmp_path / "eu.tsv"
    pd.DataFrame({"y_pred": p, "y": y}).to_csv(path, sep="\t", decimal=",", index=False)
    given, _ = _value("mse", path, "--delimiter", "\\t", "--decimal", ",")
    detected, err = _value("mse", path)
    assert math.isclose(given, ref.mse(p, y), rel_tol=REL)
    assert detected == given and "read with decimal commas" in err
    txt = tmp_path / "eu.txt"  # the same bytes under a name that says nothing of tabs
    txt.write_bytes(path.read_bytes())
    assert _value("mse", txt, "--delimiter", "\t", "--decimal", ",")[0] == given


def test_gzip_and_stdin(tmp_path: Path) -> None:
    p, y = _regression(30_000)
    frame = pd.DataFrame({"y_pred": p, "y": y})
    gz = tmp_path / "eu.csv.gz"
    frame.to_csv(gz, sep=";", decimal=",", compression="gzip")
    expected = ref.mse(p, y)
    value, err = _value("mse", gz)
    assert math.isclose(value, expected, rel_tol=REL) and NOTE_BOTH in err
    piped, err = _value("mse", "-", stdin=gzip.decompress(gz.read_bytes()))
    assert piped == value and f"<stdin>: {NOTE_BOTH}" in err
    small = frame.head(50).to_csv(sep=";", decimal=",").encode()
    assert math.isclose(_value("mse", "-", stdin=small)[0], ref.mse(p[:50], y[:50]), rel_tol=REL)


def test_ambiguous_file_is_read_as_today_with_a_warning(tmp_path: Path) -> None:
    """Lines of 1,5 with no ';': two columns 1 and 5, unless --decimal , says otherwise; the
    other input, read with decimal commas, makes that worth a warning."""
    p = np.array([1.5, 2.25, 3.75, 4.5])
    y = np.array([1.0, 2.5, 3.25, 5.5])
    pd.DataFrame({"pred": p}).to_csv(tmp_path / "p.csv", sep=";", decimal=",", index=False)
    (tmp_path / "t.csv").write_text("".join(f"{v}\n".replace(".", ",") for v in y))
    alone = run_cli("mse", tmp_path / "t.csv", "--pred-col", "0", "--target-col", "1", "-f", "json")
    assert alone.code == 0, alone.stderr
    assert alone.json()["value"] == ref.mse(np.array([1, 2, 3, 5.0]), np.array([0, 5, 25, 5.0]))
    assert "warning" not in alone.stderr
    mixed = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "-f", "json")  # 1 and 2 values
    assert mixed.code == 3 and len(mixed.stderr.strip().splitlines()) == 1
    assert "t.csv: read as comma-separated (1,0 is two columns), but " in mixed.stderr
    assert "p.csv has decimal commas; if its commas are decimal marks, pass --decimal ," in mixed.stderr
    value, _ = _value("mse", tmp_path / "p.csv", tmp_path / "t.csv", "--decimal", ",")
    assert value == ref.mse(p, y)


def test_ambiguous_file_with_a_leading_zero_is_refused_until_the_user_says(tmp_path: Path) -> None:
    """'0,05' reads best as one number, '1,5' as either: two readings, two different results, so
    losscli asks (exit 2) instead of guessing; either option settles it."""
    path = tmp_path / "a.csv"
    path.write_text("1,5\n0,05\n2,25\n")
    r = run_cli("mse", path, "--pred-col", "0", "--target-col", "1", "-f", "json")
    assert r.code == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    assert "'0,05'" in r.stderr and "--decimal ," in r.stderr and "--delimiter ," in r.stderr
    two = run_cli("mse", path, "--pred-col", "0", "--target-col", "1", "--delimiter", ",", "-f", "json")
    assert two.code == 0 and two.json()["value"] == ref.mse(np.array([1, 0, 2.0]), np.array([5, 5, 25.0]))
    assert "warning" not in two.stderr
    one = run_cli("mse", path, path, "--decimal", ",", "-f", "json")
    assert one.code == 0 and one.json()["value"] == 0.0 and one.json()["n"] == 3


def test_mixed_decimal_marks_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text("pred;y\n1.5;2\n1,5;3\n")
    r = run_cli("mse", path)
    assert r.code == 3
    assert "'1,5' is not a number (line 3); numbers with decimal commas? pass --decimal ," in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_given_marks_are_not_announced(tmp_path: Path) -> None:
    p, y = _regression(100)
    path = tmp_path / "eu.csv"
    pd.DataFrame({"y_pred": p, "y": y}).to_csv(path, sep=";", decimal=",", index=False)
    value, err = _value("mse", path, "--delimiter", ";", "--decimal", ",")
    assert math.isclose(value, ref.mse(p, y), rel_tol=REL) and "read as" not in err
    with_point = run_cli("mse", path, "--delimiter", ";", "--decimal", ".")
    assert with_point.code == 3 and "is not a number" in with_point.stderr


def test_ordinary_csv_unchanged(tmp_path: Path) -> None:
    p, y = _regression(300)
    path = tmp_path / "plain.csv"
    pd.DataFrame({"y_pred": p, "y": y}).to_csv(path, index=False)
    value, err = _value("mse", path)
    assert math.isclose(value, ref.mse(p, y), rel_tol=REL)
    assert "read as" not in err and "decimal" not in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--delimiter", ";;"], "--delimiter must be one character"),
        (["--decimal", ""], "--decimal must be one character"),
        (["--delimiter", '"'], "--delimiter cannot be the quote character"),
        (["--decimal", "\n"], "--decimal cannot be a line end"),
        (["--decimal", "5"], "--decimal cannot be '5'"),
        (["--delimiter", ",", "--decimal", ","], "--delimiter and --decimal are both ','"),
    ],
)
def test_bad_options(tmp_path: Path, args: list[str], words: str) -> None:
    missing = tmp_path / "never-opened.csv"  # refused before any file is opened
    r = run_cli("mse", missing, *args)
    assert r.code == 2, r.stderr
    assert words in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_python_api(tmp_path: Path) -> None:
    p, y = _regression(500)
    path = tmp_path / "eu.csv"
    pd.DataFrame({"y_pred": p, "y": y}).to_csv(path, sep=";", decimal=",")
    report = losscli.evaluate("mse", str(path), delimiter=";", decimal=",")
    assert math.isclose(report.value, ref.mse(p, y), rel_tol=REL)
    assert report.to_dict()["provenance"]["options"]["delimiter"] == ";"
    detected = losscli.evaluate("mse", str(path))
    assert detected.value == report.value
    assert any('delimiter=";" decimal=","' in n for n in detected.notes)
    with pytest.raises(UsageError, match="delimiter and decimal are both"):
        losscli.evaluate("mse", str(path), delimiter=",", decimal=",")


def test_weights_and_logprobs_files(tmp_path: Path) -> None:
    """The other tables a run reads: a --weights file and perplexity's --logprobs."""
    p, y = _regression(300)
    w = np.random.default_rng(4).uniform(0.1, 2.0, 300)
    pd.DataFrame({"y_pred": p, "y": y}).to_csv(tmp_path / "py.csv", sep=";", decimal=",", index=False)
    pd.DataFrame({"w": w}).to_csv(tmp_path / "w.csv", sep=";", decimal=",", index=False)
    value, _ = _value("mse", tmp_path / "py.csv", "--weights", tmp_path / "w.csv")
    assert math.isclose(value, ref.mse(p, y, w), rel_tol=REL)
    lp = -np.random.default_rng(5).exponential(2.0, 400)
    pd.DataFrame({"logprob": lp}).to_csv(tmp_path / "lp.csv", sep=";", decimal=",", index=False)
    ppl, err = _value("perplexity", "--logprobs", tmp_path / "lp.csv")
    assert math.isclose(ppl, math.exp(-math.fsum(lp) / len(lp)), rel_tol=REL)
    assert "lp.csv: read as one column of numbers with decimal commas" in err


def test_thousands_groups_are_not_decimal_commas(tmp_path: Path) -> None:
    """ "1,234" quoted in a comma CSV (US Excel's thousands) is not taken for 1.234: refused,
    as before, with the option named."""
    path = tmp_path / "us.csv"
    path.write_text('pred,y\n"1,234",2\n"2,000",3\n')
    r = run_cli("mse", path)
    assert r.code == 3 and "'1,234' is not a number" in r.stderr and "--decimal ," in r.stderr
    eu = tmp_path / "eu.csv"  # the same values where ';' separates: decimal commas
    eu.write_text("pred;y\n1,234;2\n2,000;3\n")
    assert _value("mse", eu)[0] == ref.mse(np.array([1.234, 2.0]), np.array([2.0, 3.0]))


def test_ambiguous_file_named_in_the_error_it_causes(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("y\n1\n2\n")
    (tmp_path / "t.csv").write_text("1,5\n2,5\n")  # two columns: a width error names the option
    r = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv")
    assert r.code == 3 and len(r.stderr.strip().splitlines()) == 1
    assert "t.csv: read as comma-separated (1,5 is two columns); if its commas" in r.stderr
    assert _value("mse", tmp_path / "p.csv", tmp_path / "t.csv", "--decimal", ",")[0] == 0.25


def test_headerless_one_column_pandas_files_are_not_read_as_two_columns(tmp_path: Path) -> None:
    """`to_csv(sep=";", decimal=",", header=False, index=False)` of one column: every line is
    '-2,529...' or '0,13...', which must not become two integer columns silently."""
    p, y = _regression(50)
    pd.DataFrame(p).to_csv(tmp_path / "p.csv", sep=";", decimal=",", header=False, index=False)
    pd.DataFrame(y).to_csv(tmp_path / "y.csv", sep=";", decimal=",", header=False, index=False)
    r = run_cli("mse", tmp_path / "p.csv", tmp_path / "y.csv", "-f", "json")
    if r.code == 0:  # detected as one decimal-comma column
        assert math.isclose(r.json()["value"], ref.mse(p, y), rel_tol=REL)
    else:
        assert r.code == 2 and "--decimal ," in r.stderr and r.stdout == ""
    given = run_cli("mse", tmp_path / "p.csv", tmp_path / "y.csv", "--decimal", ",", "-f", "json")
    assert math.isclose(given.json()["value"], ref.mse(p, y), rel_tol=REL)
