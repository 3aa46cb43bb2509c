"""Files as pandas, Polars, numpy and shells really write them (issue 9, items 3, 4 and 6).

Item 3: a missing value (pandas' ``""``, Polars' empty line or empty cell, a Parquet null)
is refused naming row and column, or dropped with its row in every input by --nan skip.
Item 4: pandas' default header ``0,1,...`` is a header, not a row of data.
Item 6: pipes, FIFOs, /dev/stdin and ``<(...)`` are read once, from their first byte.

Every expected value is a float64 reference computed here from the arrays that were written.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

import losscli
from losscli.errors import InputError
from losscli.readers import csv_reader
from losscli.readers.open import open_reader

from conftest import run_cli

BIG_ROWS = 30_000  # ~600 KB of repr floats: more than SMALL_FILE_BYTES, so pyarrow parses it
SIZES = {"small": 300, "big": BIG_ROWS}


def mse_ref(p: np.ndarray, t: np.ndarray) -> tuple[float, int]:
    """MSE over the rows where both values are present, and how many rows that is."""
    keep = ~np.isnan(p) & ~np.isnan(t)
    d = p[keep] - t[keep]
    return math.fsum((d * d).tolist()) / int(keep.sum()), int(keep.sum())


def with_holes(rng: np.random.Generator, n: int, rows: list[int]) -> np.ndarray:
    x = rng.normal(size=n)
    x[rows] = np.nan
    return x


def polars_column(name: str, x: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({name: [None if math.isnan(v) else v for v in x.tolist()]}, schema={name: pl.Float64})


def json_of(r: Any) -> dict[str, Any]:
    assert r.code == 0, r.stderr
    return dict(json.loads(r.stdout))


# ---------------------------------------------------------------- item 3: missing values


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("sep", [",", "\t"])
def test_pandas_one_column_nan_is_missing_not_a_blank_line(tmp_path: Path, size: str, sep: str) -> None:
    """pandas writes NaN in a one-column CSV as a line holding "": the row is missing, and the
    later rows stay aligned with the other file."""
    n = SIZES[size]
    rng = np.random.default_rng(3)
    p = with_holes(rng, n, [0, 5, n // 2])
    t = with_holes(rng, n, [9, n - 1])  # the last row too: "" at the very end is still a row
    ext = "csv" if sep == "," else "tsv"
    pd.DataFrame({"y_pred": p}).to_csv(tmp_path / f"p.{ext}", index=False, sep=sep)
    pd.DataFrame({"y_true": t}).to_csv(tmp_path / f"t.{ext}", index=False, sep=sep)
    assert '\n""\n' in (tmp_path / f"p.{ext}").read_text()
    want, kept = mse_ref(p, t)
    out = json_of(run_cli("mse", tmp_path / f"p.{ext}", tmp_path / f"t.{ext}", "--nan", "skip", "-f", "json"))
    assert out["n"] == kept == n - 5
    assert out["skipped"] == 5
    assert out["value"] == pytest.approx(want, rel=1e-12)
    report = losscli.evaluate("mse", tmp_path / f"p.{ext}", tmp_path / f"t.{ext}", nan="skip")
    assert (report.n, report.skipped) == (kept, 5)
    assert report.value == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("size", SIZES)
def test_polars_one_column_null_is_an_empty_line(tmp_path: Path, size: str) -> None:
    """Polars writes a null in a one-column CSV as an empty line, also right after the header."""
    n = SIZES[size]
    rng = np.random.default_rng(4)
    p = with_holes(rng, n, [0, 17, n - 2])
    t = with_holes(rng, n, [1, 17, n // 3])
    polars_column("y_pred", p).write_csv(tmp_path / "p.csv")
    polars_column("y_true", t).write_csv(tmp_path / "t.csv")
    assert (tmp_path / "p.csv").read_text().startswith("y_pred\n\n")
    want, kept = mse_ref(p, t)
    out = json_of(run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "--nan", "skip", "-f", "json"))
    assert (out["n"], out["skipped"]) == (kept, n - kept)
    assert out["value"] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("size", SIZES)
def test_pandas_and_polars_files_mix(tmp_path: Path, size: str) -> None:
    n = SIZES[size]
    rng = np.random.default_rng(5)
    p = with_holes(rng, n, [2, n // 2])
    t = with_holes(rng, n, [3, n // 2 + 1])
    pd.DataFrame({"y_pred": p}).to_csv(tmp_path / "p.csv", index=False)
    polars_column("y_true", t).write_csv(tmp_path / "t.csv")
    want, kept = mse_ref(p, t)
    out = json_of(run_cli("mae", tmp_path / "p.csv", tmp_path / "t.csv", "--nan", "skip", "-f", "json"))
    keep = ~np.isnan(p) & ~np.isnan(t)
    assert out["n"] == kept
    assert out["value"] == pytest.approx(math.fsum(np.abs(p[keep] - t[keep]).tolist()) / kept, rel=1e-12)
    del want


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("writer", ["pandas", "polars"])
def test_nan_error_names_the_missing_cell(tmp_path: Path, size: str, writer: str) -> None:
    n = SIZES[size]
    rng = np.random.default_rng(6)
    p = with_holes(rng, n, [n - 7])
    t = rng.normal(size=n)
    if writer == "pandas":
        pd.DataFrame({"y_pred": p}).to_csv(tmp_path / "p.csv", index=False)
    else:
        polars_column("y_pred", p).write_csv(tmp_path / "p.csv")
    pd.DataFrame({"y_true": t}).to_csv(tmp_path / "t.csv", index=False)
    r = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv")
    assert r.code == 3 and r.stdout == ""
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    for part in ("p.csv", f"row {n - 7}", "'y_pred'", "missing value", "empty cell", "--nan skip"):
        assert part in line, line
    with pytest.raises(InputError, match=f"row {n - 7}.*missing value"):
        losscli.evaluate("mse", tmp_path / "p.csv", tmp_path / "t.csv")


@pytest.mark.parametrize("size", SIZES)
def test_several_columns_empty_cells_are_missing_and_empty_lines_are_not_rows(
    tmp_path: Path, size: str
) -> None:
    """One file written by pandas (NaN as an empty cell), with blank lines added between rows:
    in a file of several columns a blank line holds no row."""
    n = SIZES[size]
    rng = np.random.default_rng(7)
    p = with_holes(rng, n, [4, n - 1])
    t = with_holes(rng, n, [8])
    text = pd.DataFrame({"y_pred": p, "y_true": t}).to_csv(index=False)
    lines = text.splitlines(keepends=True)
    lines.insert(n // 2, "\n")
    lines.insert(3, "\r\n")
    lines.insert(0, "\n")
    text = "".join(lines).replace("\n,", '\n"",', 1) + "\n\n"  # a quoted empty cell too
    (tmp_path / "both.csv").write_text(text)
    want, kept = mse_ref(p, t)
    out = json_of(run_cli("mse", tmp_path / "both.csv", "--nan", "skip", "-f", "json"))
    assert (out["n"], out["skipped"]) == (kept, 3)
    assert out["value"] == pytest.approx(want, rel=1e-12)
    r = run_cli("mse", tmp_path / "both.csv")
    assert r.code == 3 and "row 4" in r.stderr and "'y_pred'" in r.stderr and "missing value" in r.stderr


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("writer", ["pandas", "polars"])
def test_headerless_one_column_first_value_missing(tmp_path: Path, size: str, writer: str) -> None:
    """Without a header, pandas writes a first NaN as a first line "" and Polars a first null
    as a leading empty line: both are the first row, not a header or a gap."""
    n = SIZES[size]
    rng = np.random.default_rng(14)
    p = with_holes(rng, n, [0, 1, n // 2])
    t = with_holes(rng, n, [2])
    for name, x in (("p", p), ("t", t)):
        if writer == "pandas":
            pd.DataFrame({name: x}).to_csv(tmp_path / f"{name}.csv", index=False, header=False)
        else:
            polars_column(name, x).write_csv(tmp_path / f"{name}.csv", include_header=False)
    want, kept = mse_ref(p, t)
    out = json_of(run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "--nan", "skip", "-f", "json"))
    assert (out["n"], out["skipped"]) == (kept, 4)
    assert out["value"] == pytest.approx(want, rel=1e-12)


def test_trailing_empty_lines_hold_no_row(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("p\n1\n\n2\n\n\n\n")
    (tmp_path / "t.csv").write_text('t\n3\n5\n""\n')
    out = json_of(run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "--nan", "skip", "-f", "json"))
    # rows: (1, 3), (missing, 5), (2, missing): one row scored
    assert (out["n"], out["skipped"], out["value"]) == (1, 2, 4.0)


REPS = 30_000
CONTENTS = {  # (what starts the file, a body repeated REPS times after it)
    "pandas": ("y\n", '1.5\n""\n2.5\n3.0\n""\n'),
    "polars": ("y\n", "\n1.5\n\n\n2.5\n3.0\n"),
    "bom_crlf": ("\ufeff\r\n\r\ny\r\n", '1.5\r\n\r\n""\r\n2.5\r\n\r\n'),
    "headerless": ("\n\n", "1.5\n\n2.5\n3.5\n"),  # Polars, no header, two leading nulls
    "pandas_headerless": ('""\n', '1.5\n""\n2.25\n'),  # pandas header=False, first value NaN
    "two_columns": ("a,b\n\n", '1,2\n,3\n\n"",4\n5,""\n\n\n'),
    "tsv": ("a\tb\n", "1\t\n\n\t2\n3\t4\n"),
}
FIRST_ROWS = {  # the first repetition's values, by hand
    "pandas": [1.5, np.nan, 2.5, 3.0, np.nan],
    "polars": [np.nan, 1.5, np.nan, np.nan, 2.5, 3.0],
    "bom_crlf": [1.5, np.nan, np.nan, 2.5, np.nan],  # the body's last empty line is inside the file
    "headerless": [np.nan, np.nan, 1.5, np.nan, 2.5, 3.5],
    "pandas_headerless": [np.nan, 1.5, np.nan, 2.25],
    "two_columns": [[1, 2], [np.nan, 3], [np.nan, 4], [5, np.nan]],
    "tsv": [[1, np.nan], [np.nan, 2], [3, 4]],
}


# a lone "" is a one-field line: an error in a file of two columns, so only one-column files end so
PARSER_CASES = [
    (name, ending)
    for name in CONTENTS
    for ending in ["\n\n\n", '\n""', ""]
    if not (name in ("two_columns", "tsv") and ending == '\n""')
]


@pytest.mark.parametrize(("name", "ending"), PARSER_CASES)
def test_python_and_pyarrow_parsers_agree(
    tmp_path: Path, name: str, ending: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same bytes, repeated past SMALL_FILE_BYTES, through both parsers: the Python one
    (small files) and pyarrow's (large files, pipes), with blocks cut every few lines so that
    runs of empty lines straddle block ends."""
    start, body = CONTENTS[name]
    path = tmp_path / ("x.tsv" if name == "tsv" else "x.csv")
    path.write_bytes((start + body * REPS + ending).encode("utf-8"))
    assert path.stat().st_size > csv_reader.SMALL_FILE_BYTES
    width = len(np.atleast_2d(FIRST_ROWS[name])[0]) if name in ("two_columns", "tsv") else 1

    def read(small: bool) -> np.ndarray:
        reader = open_reader(str(path), nan="skip")
        monkeypatch.setattr(type(reader), "_small", lambda self: small)
        parts = [c[0].copy() for c in reader.chunks([list(range(width))], 4096)]
        reader.close()
        return np.concatenate(parts)

    python = read(True)
    monkeypatch.setattr(csv_reader, "FIRST_BLOCK", 64)  # tiny blocks: many block ends
    monkeypatch.setattr(csv_reader, "PARSE_BLOCK", 256)
    arrow = read(False)
    np.testing.assert_array_equal(python, arrow)  # NaN in the same places too
    want = FIRST_ROWS[name]
    np.testing.assert_array_equal(python[: len(want)], want)
    leading = {"headerless": 2, "pandas_headerless": 1}.get(name, 0)
    rows = (len(want) - leading) * REPS + leading
    if ending == '\n""':
        rows += 2  # an empty line with a row after it, and "" (also at the very end) are rows
    elif name == "bom_crlf":
        rows -= 1  # the last body's empty line ends the file: no row
    assert len(python) == rows


def test_empty_lines_between_repetitions_count_once(tmp_path: Path) -> None:
    """A one-column file's row count is the same through both parsers, blank runs included."""
    rows = ["1.0", "", "", "2.0", '""', "3.0"] * 50_000
    path = tmp_path / "y.csv"
    path.write_text("y\n" + "\n".join(rows) + "\n\n\n")
    want = sum(1 for r in rows)
    report = losscli.evaluate("mse", path, path, nan="skip")
    assert report.n + report.skipped == want
    assert report.skipped == 3 * 50_000


@pytest.mark.parametrize("writer", ["pandas", "polars"])
def test_parquet_nulls_are_missing_values(tmp_path: Path, writer: str) -> None:
    """pandas and Polars write NaN/None as Parquet nulls, in float and integer label columns."""
    rng = np.random.default_rng(8)
    n = 200
    probs = rng.dirichlet(np.ones(4), size=n)
    labels = rng.integers(0, 4, size=n).astype(float)
    labels[[3, 150]] = np.nan
    probs[10, 2] = np.nan
    cols = {f"p{j}": probs[:, j] for j in range(4)}
    path = tmp_path / "scores.parquet"
    if writer == "pandas":
        pd.DataFrame(
            {**cols, "label": pd.array([None if math.isnan(v) else int(v) for v in labels], "Int64")}
        ).to_parquet(path)
    else:
        pl.DataFrame(
            {**cols, "label": [None if math.isnan(v) else int(v) for v in labels]},
            schema={**{c: pl.Float64 for c in cols}, "label": pl.Int64},
        ).with_columns(pl.col("p2").fill_nan(None)).write_parquet(path)
    keep = ~np.isnan(labels) & ~np.isnan(probs).any(axis=1)
    idx = np.flatnonzero(keep)
    want = -math.fsum(np.log(probs[idx, labels[idx].astype(int)]).tolist()) / len(idx)
    out = json_of(
        run_cli("ce", path, "--target-col", "label", "--input", "probs", "--nan", "skip", "-f", "json")
    )
    assert (out["n"], out["skipped"]) == (n - 3, 3)
    assert out["value"] == pytest.approx(want, rel=1e-12)
    r = run_cli("ce", path, "--target-col", "label", "--input", "probs")
    assert r.code == 3 and r.stdout == ""
    assert (
        "row 3" in r.stderr
        and "'label'" in r.stderr
        and "missing value" in r.stderr
        and "--nan skip" in r.stderr
    )


def test_parquet_two_files_nulls_at_different_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    p = with_holes(rng, 500, [1, 250])
    t = with_holes(rng, 500, [2, 499])
    pd.DataFrame({"y_pred": p}).to_parquet(tmp_path / "p.parquet")
    polars_column("y_true", t).write_parquet(tmp_path / "t.parquet")
    want, kept = mse_ref(p, t)
    report = losscli.evaluate("mse", tmp_path / "p.parquet", tmp_path / "t.parquet", nan="skip")
    assert (report.n, report.skipped) == (kept, 4)
    assert report.value == pytest.approx(want, rel=1e-12)


# ---------------------------------------------------------------- item 4: pandas' default header


@pytest.mark.parametrize("sep", [",", "\t"])
@pytest.mark.parametrize("size", SIZES)
def test_pandas_default_header_one_column(tmp_path: Path, sep: str, size: str) -> None:
    n = SIZES[size]
    rng = np.random.default_rng(10)
    p, t = rng.normal(5, 3, size=n), rng.normal(5, 3, size=n)
    ext = "csv" if sep == "," else "tsv"
    pd.DataFrame(p).to_csv(tmp_path / f"p.{ext}", index=False, sep=sep)
    pd.DataFrame(t).to_csv(tmp_path / f"t.{ext}", index=False, sep=sep)
    assert (tmp_path / f"p.{ext}").read_text().startswith("0\n")
    want, _ = mse_ref(p, t)
    out = json_of(run_cli("mse", tmp_path / f"p.{ext}", tmp_path / f"t.{ext}", "-f", "json"))
    assert out["n"] == n
    assert out["value"] == pytest.approx(want, rel=1e-12)
    assert "warnings" not in out  # the file says it: floats below 0 are a header


@pytest.mark.parametrize("sep", [",", "\t"])
def test_pandas_default_header_scores_and_integer_labels(tmp_path: Path, sep: str) -> None:
    """The issue's ce case: (N, C) probabilities and integer labels, both written by
    ``pd.DataFrame(arr).to_csv(index=False)``. The labels file alone cannot tell (a row 0
    above integer rows); the scores file has the same kind of header, so it decides."""
    rng = np.random.default_rng(11)
    n, c = 100, 3
    probs = rng.dirichlet(np.ones(c), size=n)
    labels = rng.integers(0, c, size=n)
    labels[0] = 2  # so the first data row is a class the header row "0" is not
    ext = "csv" if sep == "," else "tsv"
    pd.DataFrame(probs).to_csv(tmp_path / f"probs.{ext}", index=False, sep=sep)
    pd.DataFrame(labels).to_csv(tmp_path / f"labels.{ext}", index=False, sep=sep)
    want = -math.fsum(np.log(probs[np.arange(n), labels]).tolist()) / n
    r = run_cli("ce", tmp_path / f"probs.{ext}", tmp_path / f"labels.{ext}", "-f", "json")
    out = json_of(r)
    assert out["n"] == n
    assert out["value"] == pytest.approx(want, rel=1e-12)
    assert f"labels.{ext}" in r.stderr and "--no-header" in r.stderr  # the guess is announced
    assert any("header" in w for w in out["warnings"])
    report = losscli.evaluate("ce", tmp_path / f"probs.{ext}", tmp_path / f"labels.{ext}")
    assert report.n == n and report.value == pytest.approx(want, rel=1e-12)


def test_ambiguous_file_alone_is_data_with_a_warning(tmp_path: Path) -> None:
    """Integer values whose first row is 0: data, unless told; stderr says how to force."""
    (tmp_path / "p.csv").write_text("0\n3\n5\n")
    (tmp_path / "t.csv").write_text("1.0\n2.0\n4.0\n")  # no header, certain: cannot vouch for one
    r = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "-f", "json")
    out = json_of(r)
    assert (out["n"], out["value"]) == (3, (1 + 1 + 1) / 3)
    assert "p.csv" in r.stderr and "--header" in r.stderr and "warning" in r.stderr
    r = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "--header", "-f", "json")
    # --header applies to every input: t.csv loses its first row too
    assert json_of(r)["n"] == 2 and json_of(r)["value"] == ((3 - 2) ** 2 + (5 - 4) ** 2) / 2
    assert "warning" not in r.stderr


def test_header_options_force_either_reading(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("0\n0.5\n1.5\n")  # a header by the rule
    (tmp_path / "t.csv").write_text("0\n1\n1\n")  # ambiguous: the other file has a header
    out = json_of(run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "-f", "json"))
    assert (out["n"], out["value"]) == (2, (0.25 + 0.25) / 2)
    out = json_of(run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "--no-header", "-f", "json"))
    assert (out["n"], out["value"]) == (3, (0 + 0.25 + 0.25) / 3)
    assert "warnings" not in out
    report = losscli.evaluate("mse", tmp_path / "p.csv", tmp_path / "t.csv", header=False)
    assert (report.n, report.value) == (3, (0 + 0.25 + 0.25) / 3)
    report = losscli.evaluate("mse", tmp_path / "p.csv", tmp_path / "t.csv", header=True)
    assert (report.n, report.value, report.warnings) == (2, 0.25, [])
    for command in ("mse", "mae", "bce", "ce", "perplexity"):
        assert "--no-header" in run_cli(command, "--help").stdout


def test_g_format_data_starting_at_zero_is_not_taken_for_a_header(tmp_path: Path) -> None:
    """np.savetxt(fmt="%g") writes 0 as "0" and 1.5 as "1.5": a first row 0 is data there."""
    p = np.array([0.0, 1.5, 2.0, 3.25])
    t = np.array([0.5, 1.0, 2.0, 3.0])
    np.savetxt(tmp_path / "p.csv", p, fmt="%g")
    np.savetxt(tmp_path / "t.csv", t, fmt="%g")
    r = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv", "-f", "json")
    want, _ = mse_ref(p, t)
    assert json_of(r)["n"] == 4 and json_of(r)["value"] == pytest.approx(want, rel=1e-15)
    assert "p.csv" in r.stderr and "--header" in r.stderr


# ---------------------------------------------------------------- item 6: pipes


ROWS = 100_000  # ~2 MB of CSV: far more than any sniff or peek buffer


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """100,000 predictions and targets in every streaming format; the float64 MSE."""
    d = tmp_path_factory.mktemp("pipes")
    rng = np.random.default_rng(12)
    p, t = rng.normal(size=ROWS), rng.normal(size=ROWS)
    for name, x in (("p", p), ("t", t)):
        text = f"{name}\n" + "".join(f"{v!r}\n" for v in x.tolist())
        (d / f"{name}.csv").write_text(text)
        (d / f"{name}.tsv").write_text(text)
        (d / f"{name}.csv.gz").write_bytes(gzip.compress(text.encode()))
        np.save(d / f"{name}.npy", x)
    want, _ = mse_ref(p, t)
    return d, want


def shell(command: str, timeout: float = 90) -> tuple[int, str, str]:
    """Run ``command`` in bash (for ``<(...)`` and pipes); a hang fails the test after ``timeout``."""
    proc = subprocess.run(["bash", "-c", command], capture_output=True, timeout=timeout)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


LOSSCLI = f"{sys.executable} -m losscli"


@pytest.mark.parametrize("ext", ["csv", "tsv", "npy"])
def test_process_substitution(pair: tuple[Path, float], ext: str) -> None:
    d, want = pair
    code, out, err = shell(f"{LOSSCLI} mse <(cat {d}/p.{ext}) <(cat {d}/t.{ext}) -f json")
    assert code == 0, err
    assert json.loads(out)["n"] == ROWS
    assert json.loads(out)["value"] == pytest.approx(want, rel=1e-12)


def test_process_substitution_of_compressed_csv(pair: tuple[Path, float]) -> None:
    """``<(gzip -c ...)`` has no name to say it is compressed: the gzip magic does."""
    d, want = pair
    code, out, err = shell(f"{LOSSCLI} mse <(gzip -c {d}/p.csv) <(zcat {d}/t.csv.gz) -f json")
    assert code == 0, err
    assert (json.loads(out)["n"], json.loads(out)["value"]) == (ROWS, pytest.approx(want, rel=1e-12))


@pytest.mark.parametrize("arg", ["/dev/stdin", "-"])
@pytest.mark.parametrize("ext", ["csv", "npy", "csv.gz"])
def test_cat_into_stdin(pair: tuple[Path, float], arg: str, ext: str) -> None:
    d, want = pair
    code, out, err = shell(f"cat {d}/p.{ext} | {LOSSCLI} mse {arg} {d}/t.npy -f json")
    assert code == 0, err
    assert (json.loads(out)["n"], json.loads(out)["value"]) == (ROWS, pytest.approx(want, rel=1e-12))


def test_stdin_redirected_from_a_file(pair: tuple[Path, float]) -> None:
    d, want = pair
    code, out, err = shell(f"{LOSSCLI} mse /dev/stdin {d}/t.csv -f json < {d}/p.csv")
    assert code == 0, err
    assert (json.loads(out)["n"], json.loads(out)["value"]) == (ROWS, pytest.approx(want, rel=1e-12))


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Callable[[str, bytes], Path]]:
    """Named FIFOs fed by writer threads; the threads are joined (with a timeout) at the end."""
    writers: list[tuple[threading.Thread, Path]] = []

    def make(name: str, data: bytes) -> Path:
        path = tmp_path / name
        os.mkfifo(path)

        def write() -> None:
            try:
                with open(path, "wb") as fp:  # blocks until losscli opens the FIFO
                    fp.write(data)
            except BrokenPipeError:
                pass

        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        writers.append((thread, path))
        return path

    yield make
    for thread, path in writers:
        if thread.is_alive():  # never opened by losscli: open it here so the writer ends
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            thread.join(timeout=1)
            os.close(fd)
        thread.join(timeout=5)
        assert not thread.is_alive()


@pytest.mark.parametrize("ext", ["csv", "tsv", "csv.gz", "npy"])
def test_named_fifo_every_streaming_format(pair: tuple[Path, float], fifo: Any, ext: str) -> None:
    d, want = pair
    p = fifo(f"p.{ext}", (d / f"p.{ext}").read_bytes())
    t = fifo(f"t.{ext}", (d / f"t.{ext}").read_bytes())
    code, text, err = shell(f"{LOSSCLI} mse {p} {t} -f json", timeout=60)
    assert code == 0, err
    assert (json.loads(text)["n"], json.loads(text)["value"]) == (ROWS, pytest.approx(want, rel=1e-12))


def test_named_fifo_jsonl_logprobs(fifo: Any) -> None:
    rng = np.random.default_rng(13)
    seqs = [(-rng.exponential(size=int(k))).tolist() for k in rng.integers(1, 400, size=300)]
    data = "".join(json.dumps({"token_logprobs": [None, *s]}) + "\n" for s in seqs).encode()
    flat = [v for s in seqs for v in s]
    want = math.exp(-math.fsum(flat) / len(flat))
    path = fifo("lp.jsonl", data)
    code, text, err = shell(f"{LOSSCLI} perplexity --logprobs {path} -f json", timeout=60)
    assert code == 0, err
    out = json.loads(text)
    assert out["n"] == len(flat)
    assert out["value"] == pytest.approx(want, rel=1e-12)
    saved = path.parent / "saved.jsonl"
    saved.write_bytes(data)
    code, text, err = shell(f"{LOSSCLI} perplexity --logprobs <(cat {saved}) -f json")
    assert code == 0, err
    assert json.loads(text)["value"] == pytest.approx(want, rel=1e-12)


def test_python_api_reads_a_fifo(pair: tuple[Path, float], fifo: Any) -> None:
    """In a subprocess with a timeout: a FIFO opened twice would block the test forever."""
    d, want = pair
    path = fifo("p.csv", (d / "p.csv").read_bytes())
    code = (
        f"import losscli; r = losscli.evaluate('mse', {str(path)!r}, {str(d / 't.npy')!r}); "
        "print(r.n, repr(r.value))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    n, value = proc.stdout.decode().split()
    assert (int(n), float(value)) == (ROWS, pytest.approx(want, rel=1e-12))


@pytest.mark.parametrize("kind", ["parquet", "npz"])
def test_parquet_and_npz_from_a_pipe_need_a_seekable_file(tmp_path: Path, kind: str) -> None:
    x = np.arange(10.0)
    if kind == "parquet":
        pd.DataFrame({"p": x, "t": x + 1}).to_parquet(tmp_path / "x.parquet")
    else:
        np.savez(tmp_path / "x.npz", p=x, t=x + 1)
    src = tmp_path / f"x.{kind}"
    for command in (
        f"{LOSSCLI} mse <(cat {src}) --pred-col p --target-col t",
        f"cat {src} | {LOSSCLI} mse - --pred-col p --target-col t",
    ):
        code, out, err = shell(command, timeout=60)
        assert code == 3, err
        assert out == "" and "needs a seekable file" in err and "save it to a file" in err
        assert err.count("\n") == 1 and "Traceback" not in err
