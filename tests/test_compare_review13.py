"""A fresh-eyes review of compare (perplexity --group-by and the code every metric shares).

Expectations come from float64 references written here (numpy; Student's t by Simpson
integration and Holm from ``test_compare``): the non-inferiority p-value from its own tail
(1e-21, not 0), comparisons too few to test (one example, one sequence, a group with none),
Holm families that count only comparisons with a p-value, the --margin message citing the
adjusted p that decided, null / "None" / "" keys told apart, length mismatches in tokens, and
perplexity parts merged without an overlap warning.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from test_compare import close, holm_ref, run_cli, t_ppf_ref, t_sf_ref
from test_compare_perplexity_groups import lp_args, write_lp


def _ni_ref(d: np.ndarray, margin: float) -> tuple[float, float, float]:
    """(delta, unadjusted upper end, one-sided p of H0 delta >= margin) of a paired t test."""
    n = len(d)
    delta = float(np.mean(d))
    se = float(np.std(d, ddof=1)) / math.sqrt(n)
    # P(T <= (delta - margin) / se) = P(T > (margin - delta) / se) by symmetry, integrated directly
    return delta, delta + t_ppf_ref(0.975, n - 1) * se, t_sf_ref((margin - delta) / se, n - 1)


def test_noninferiority_p_keeps_its_tail_and_its_holm_adjustment(tmp_path, capsys):
    """delta far below the margin: p ~ 1e-20 (1 - cdf gave 0.0); both candidates' p adjusted."""
    rng = np.random.default_rng(3)
    n = 40
    y = np.zeros(n)
    a = np.full(n, 1.0)
    b = a + 0.02 * rng.normal(size=n)  # squared loss a^2 = 1, b^2 ~ 1 +- 0.04
    c = a + 0.03 * rng.normal(size=n)
    for k, v in {"y": y, "a": a, "b": b, "c": c}.items():
        np.save(tmp_path / f"{k}.npy", v)
    margin = 0.2
    args = ["compare", "mse", *(str(tmp_path / f"{k}.npy") for k in "yabc"), "--fail-if-worse"]
    code, out, err = run_cli([*args, "--margin", str(margin), "-f", "json"], capsys)
    doc = json.loads(out)
    refs = [_ni_ref(p**2 - a**2, margin) for p in (b, c)]
    assert all(r[2] < 1e-15 for r in refs)  # a p that 1 - cdf rounds to 0
    adjusted = holm_ref([r[2] for r in refs])
    for cmp_, ref, adj in zip(doc["comparisons"], refs, adjusted, strict=True):
        assert close(cmp_["p_noninferiority"], ref[2], 1e-10)
        assert close(cmp_["p_noninferiority_adjusted"], adj, 1e-10) and cmp_["noninferior"] is True
    assert code == 0, err
    assert doc["adjustment"] == "holm"


def _npy(d, **arrays) -> list[str]:
    for k, v in arrays.items():
        np.save(d / f"{k}.npy", np.asarray(v, dtype=np.float64))
    return [str(d / f"{k}.npy") for k in arrays]


@pytest.mark.parametrize("test", ["t", "permutation"])
def test_one_example_is_too_few_to_test(tmp_path, capsys, test):
    """One paired example: 0 degrees of freedom (one sign flip): no p, verdict too few, warned;
    --fail-if-worse exits 0, --margin exits 1 saying why (not 'CI upper end +nan')."""
    y, a, b = _npy(tmp_path, y=[0.0], a=[0.5], b=[1.0])  # b is worse on its one example
    base = ["compare", "mse", y, a, b, "--test", test, "--fail-if-worse"]
    code, out, err = run_cli([*base, "-f", "json"], capsys)
    c = json.loads(out)["comparisons"][0]
    assert code == 0 and c["p_value"] is None and c["verdict"] == "too few to test"
    assert "too few paired examples to test (overall: 1; a paired test needs at least 2" in err
    code, out, err = run_cli([*base, "--margin", "0.1", "-f", "json"], capsys)
    assert code == 1 and "too few examples to test (1 paired)" in err and "nan" not in err


@pytest.fixture
def lang_seqs(tmp_path):
    """de: 6 sequences, ja: 1, null: 5, and zz: one sequence with no tokens; b worse on none."""
    rng = np.random.default_rng(5)
    lang = ["de"] * 6 + ["ja"] + [None] * 5 + ["zz"]
    lengths = [int(x) for x in rng.integers(3, 9, size=len(lang) - 1)] + [0]
    lp = {"a": [-rng.exponential(size=k) for k in lengths]}
    lp["b"] = [x * np.exp(rng.normal(scale=0.1, size=len(x))) for x in lp["a"]]
    write_lp(tmp_path / "a.parquet", lp["a"], lang)
    write_lp(tmp_path / "b.parquet", lp["b"], None)
    return tmp_path, lp, lang


def _group_t(lp, lang, key) -> tuple[float, float]:
    """A group's clustered t test: (two-sided p, non-inferiority p at margin 0.5)."""
    idx = [i for i, k in enumerate(lang) if k == key]
    d = np.array([lp["a"][i].sum() - lp["b"][i].sum() for i in idx])  # NLL(b) - NLL(a)
    n = np.array([float(len(lp["a"][i])) for i in idx])
    g, delta = len(n), d.sum() / n.sum()
    se = math.sqrt(g / (g - 1) * np.sum((d - delta * n) ** 2)) / n.sum()
    return min(1.0, 2 * t_sf_ref(abs(delta) / se, g - 1)), t_sf_ref((0.5 - delta) / se, g - 1)


@pytest.mark.parametrize("test", ["t", "permutation", "bootstrap"])
def test_groups_too_few_to_test_are_outside_the_holm_family(lang_seqs, capsys, test):
    d, lp, lang = lang_seqs
    args = [*lp_args(str(d / "a.parquet"), str(d / "b.parquet")), "--group-by", "lang", "--test", test]
    code, out, err = run_cli([*args, "--fail-if-worse", "-f", "json"], capsys)
    doc = json.loads(out)
    groups = {g["key"]["lang"]: g for g in doc["groups"]}
    for key in ("ja", "zz"):
        c = groups[key]["comparisons"][0]
        assert c["p_value"] is None and c["verdict"] == "too few to test"
    assert code == 0, err
    assert "no paired sequences in group lang=zz" in err
    assert "lang=ja" in err and "too few" in err
    assert all("file" not in m for g in doc["groups"] for m in g["models"])
    assert doc["models"][0]["file"].endswith("a.parquet")
    if test == "t":  # bootstrap: de and null have fewer than 10 sequences; permutation: Monte Carlo
        raw = [_group_t(lp, lang, k)[0] for k in ("de", None)]
        adjusted = holm_ref(raw)
        for key, want in zip(("de", None), adjusted, strict=True):
            assert close(groups[key]["comparisons"][0]["p_adjusted"], want, 1e-10)
        assert "Holm-adjusted over the 2 group comparisons with a p-value (not the 2 too few" in err
        assert doc["adjustment"] == "holm"
    code, out, err = run_cli([*args, "-f", "table"], capsys)
    assert "group lang=ja (1 paired sequence)" in out and "group lang=null (5 paired sequences)" in out


def test_margin_failure_cites_the_holm_adjusted_p(tmp_path, capsys):
    """Three groups with the same differences (keys null, "None" and ""): each raw
    non-inferiority p is 0.02 < 0.025, its unadjusted upper end below the margin, and Holm
    makes it 0.06: each fails, the message citing the adjusted p, the level and the upper end
    labelled unadjusted; the keys read null, None and \"\" (JSON keeps null and "")."""
    rng = np.random.default_rng(11)
    n = 12
    a = 1.0 + rng.random(n)
    diff = 0.05 * rng.normal(size=n) + 0.01
    delta, _hi, _p = _ni_ref(diff, 0.0)
    se = float(np.std(diff, ddof=1)) / math.sqrt(n)
    margin = delta + t_ppf_ref(1 - 0.02, n - 1) * se  # raw p = 0.02 by construction
    keys = [None] * n + ["None"] * n + [""] * n
    y = np.zeros(3 * n)
    base = np.tile(a, 3)
    cand = np.tile(a + diff, 3)  # MAE: |pred - 0| = pred, so the difference is diff itself
    pd.DataFrame({"y": y, "g": pd.array(keys, dtype=object)}).to_parquet(tmp_path / "y.parquet")
    for k, v in (("a", base), ("b", cand)):
        pd.DataFrame({"pred": v}).to_parquet(tmp_path / f"{k}.parquet")
    files = [str(tmp_path / f) for f in ("y.parquet", "a.parquet", "b.parquet")]
    code, out, err = run_cli(
        [
            "compare",
            "mae",
            *files,
            "--target-col",
            "y",
            "--group-by",
            "g",
            "--fail-if-worse",
            "--margin",
            repr(margin),
            "-f",
            "json",
        ],
        capsys,
    )
    doc = json.loads(out)
    raw = [_ni_ref(diff, margin)[2]] * 3
    assert close(raw[0], 0.02, 1e-9)
    adjusted = holm_ref(raw)
    got = {g["key"]["g"]: g["comparisons"][0] for g in doc["groups"]}
    assert set(got) == {None, "None", ""}
    for c, want in zip(got.values(), adjusted, strict=True):
        assert close(c["p_noninferiority_adjusted"], want, 1e-9) and c["ci"][1] < margin
    assert code == 1
    lines = [line for line in err.splitlines() if "--margin" in line]
    shown = {"g=null", "g=None", 'g=""'}
    assert {next(s for s in shown if f"in group {s}:" in line) for line in lines} == shown
    for line in lines:
        assert f"non-inferiority p (Holm-adjusted) {adjusted[0]:.3g} is not below 0.025" in line
        assert "unadjusted CI upper end" in line


def test_plain_group_gate_and_table_tell_null_from_text(tmp_path, capsys):
    keys = [None, None, "None", "None", "", ""]
    pd.DataFrame(
        {"p": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "y": np.zeros(6), "g": pd.array(keys, dtype=object)}
    ).to_parquet(tmp_path / "d.parquet")
    args = ["mse", str(tmp_path / "d.parquet"), "--pred-col", "p", "--target-col", "y", "--group-by", "g"]
    code, _out, err = run_cli([*args, "--fail-group-above", "0", "-f", "json"], capsys)
    assert code == 1 and "g=null" in err and "g=None" in err and 'g=""' in err
    _code, out, _err = run_cli([*args, "-f", "table"], capsys)
    assert '""' in out and "null" in out


def test_token_count_mismatch_names_each_input_once_in_tokens(lang_seqs, capsys):
    d, lp, _lang = lang_seqs
    write_lp(d / "short.parquet", [*lp["b"][:-2], lp["b"][-2][:-1], lp["b"][-1]], None)
    code, out, err = run_cli(
        [*lp_args(str(d / "a.parquet"), str(d / "short.parquet")), "--group-by", "lang"], capsys
    )
    tokens = sum(len(x) for x in lp["a"])
    assert code == 3 and out == ""
    assert err.count("a.parquet has") == 1 and f"a.parquet has {tokens} tokens" in err
    assert f"short.parquet has {tokens - 1} tokens" in err and "--per-example" in err


def test_help_says_where_a_shifted_token_key_is_taken(capsys):
    for cmd in (["perplexity", "--help"], ["compare", "perplexity", "--help"]):
        _code, out, _ = run_cli(cmd, capsys)
        assert "logit position t" in " ".join(out.split())


def test_too_few_warning_gives_each_group_its_own_count(tmp_path: Any, capsys: Any) -> None:
    """Groups of 5 and 1 paired examples under --test bootstrap (fewer than 10 each): the warning
    gives each its count; and compare's --help says the keys are TARGETS' columns."""
    rng = np.random.default_rng(12)
    g = ["five"] * 5 + ["solo"] + ["big"] * 40
    y = rng.normal(size=len(g))
    pd.DataFrame({"y": y, "g": g}).to_parquet(tmp_path / "t.parquet")
    for name, scale in (("a", 1.0), ("b", 1.3)):
        pd.DataFrame({"pred": y + rng.normal(size=len(g)) * scale}).to_parquet(tmp_path / f"{name}.parquet")
    files = [str(tmp_path / f"{name}.parquet") for name in ("t", "a", "b")]
    args = ["compare", "mse", *files,
            "--pred-col", "pred", "--target-col", "y", "--group-by", "g", "--test", "bootstrap",
            "--resamples", "200", "-f", "json"]  # fmt: skip
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert "too few paired examples (group g=five: 5, group g=solo: 1; fewer than 10)" in " ".join(
        err.split()
    )
    code, out, _ = run_cli(["compare", "mse", "--help"], capsys)
    assert code == 0 and "of TARGETS, or of --groups FILE" in " ".join(out.split())
