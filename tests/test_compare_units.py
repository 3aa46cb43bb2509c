"""The paired unit counted alike everywhere: compare perplexity's CSV/TSV ``n`` and ``--fail-if
'n ...'`` count sequences as JSON ``comparisons[].n`` does; each group's table names its own n."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd

from test_compare import run_cli
from test_compare_perplexity import lm, paths  # noqa: F401  (lm: a fixture)


def test_perplexity_n_is_sequences_in_csv_json_and_gates(lm, capsys):  # noqa: F811
    d, _, n = lm
    sequences = int(np.count_nonzero(n > 0))  # an all-padding sequence is not a paired unit
    assert n.sum() > sequences + 1  # so tokens and sequences differ
    a, b = paths(d, "lp")
    base = ["compare", "perplexity", "--logprobs", a, "--logprobs", b, "--pad-value", "1.0"]
    code, out, err = run_cli([*base, "-f", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["comparisons"][0]["n"] == sequences
    code, out, err = run_cli([*base, "-f", "csv"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["n"]) for r in rows] == [sequences, sequences]
    code, out, err = run_cli([*base, "-f", "tsv"], capsys)
    assert [int(r["n"]) for r in csv.DictReader(io.StringIO(out), delimiter="\t")] == [sequences] * 2
    code, _, err = run_cli([*base, "-f", "json", "--fail-if", f"n < {sequences + 1}"], capsys)
    assert code == 1, err
    code, _, err = run_cli([*base, "-f", "json", "--fail-if", f"n < {sequences}"], capsys)
    assert code == 0, err


def test_group_tables_name_their_own_n(tmp_path, capsys):
    rng = np.random.default_rng(8)
    size = 400
    lang = rng.choice(["de", "en", "fr"], size=size, p=[0.5, 0.3, 0.2])
    y = rng.normal(size=size)
    pd.DataFrame({"y": y, "lang": lang}).to_parquet(tmp_path / "y.parquet")
    for k in "ab":
        pd.DataFrame({"pred": y + rng.normal(size=size)}).to_parquet(tmp_path / f"{k}.parquet")
    files = [str(tmp_path / f"{k}.parquet") for k in ("y", "a", "b")]
    code, out, err = run_cli(
        ["compare", "mse", *files, "--group-by", "lang", "--target-col", "y", "-f", "table"], capsys
    )
    assert code == 0, err
    counts = pd.Series(lang).value_counts()
    for key in ("de", "en", "fr"):
        assert f"group lang={key} ({counts[key]:,} paired examples)" in out
    assert f"over {size:,} paired examples in all" in " ".join(out.split())
