"""Fresh-eyes findings on --ci and ``losscli compare`` (issue 13 review): each test holds a
float64 reference or the exact behaviour the review asked for, written here."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from losscli.cli import main


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(11)
    n = 200
    y = rng.normal(size=n)
    a, b = y + rng.normal(size=n), y + 0.9 * rng.normal(size=n)
    for name, v in (("y", y), ("a", a), ("b", b)):
        np.save(tmp_path / f"{name}.npy", v)
    return tmp_path, y, a, b


def test_compare_has_no_spurious_worst_rows_warning(pair, capsys):
    d, *_ = pair
    code, out, err = run_cli(
        ["compare", "mse", str(d / "y.npy"), str(d / "a.npy"), str(d / "b.npy"), "-f", "json"], capsys
    )
    assert code == 0 and "worst rows" not in err
    assert not any("worst rows" in w for w in json.loads(out)["warnings"])


def _save_parts(d, capsys, *extra_per_part):
    """Two halves of one comparison saved as states, part i run with extra_per_part[i]."""
    y, a, b = (np.load(d / f"{k}.npy") for k in "yab")
    half = len(y) // 2
    paths = []
    for i, rows in enumerate((slice(0, half), slice(half, None))):
        for k, v in (("y", y), ("a", a), ("b", b)):
            np.save(d / f"{k}{i}.npy", v[rows])
        path = str(d / f"s{i}.state")
        args = [
            "compare",
            "mse",
            str(d / f"y{i}.npy"),
            str(d / f"a{i}.npy"),
            str(d / f"b{i}.npy"),
            "--name",
            "A",
            "--name",
            "B",
            "--row-offset",
            str(i * half),
            "--save-state",
            path,
            *extra_per_part[i],
        ]
        run_cli(args, capsys)
        paths.append(path)
    return paths


def test_merge_refuses_parts_judged_differently(pair, capsys):
    """`merge h0 g1` and `merge g1 h0` must not differ: parts with another --ci-level, --margin
    or --fail-if-worse are refused (exit 3), whichever comes first."""
    d, *_ = pair
    for extra in (["--fail-if-worse"], ["--ci-level", "0.9"], ["--fail-if-worse", "--margin", "0.1"]):
        paths = _save_parts(d, capsys, [], extra)
        for order in (paths, paths[::-1]):
            code, out, err = run_cli(["merge", *order, "-f", "json"], capsys)
            assert code == 3 and out == "" and "run every part with the same" in err
    paths = _save_parts(d, capsys, ["--fail-if-worse"], ["--fail-if-worse"])
    assert (
        run_cli(["merge", *paths, "-f", "json"], capsys)[0]
        == run_cli(["merge", *paths[::-1], "-f", "json"], capsys)[0]
    )


def test_merge_of_parts_named_by_their_files_says_to_pass_name(pair, capsys):
    d, y, a, b = pair
    half = len(y) // 2
    paths = []
    for i, rows in enumerate((slice(0, half), slice(half, None))):
        for k, v in (("t", y), ("base", a), ("new", b)):
            np.save(d / f"p{i}_{k}.npy", v[rows])
        paths.append(str(d / f"p{i}.state"))
        run_cli(
            [
                "compare",
                "mse",
                *(str(d / f"p{i}_{k}.npy") for k in ("t", "base", "new")),
                "--row-offset",
                str(i * half),
                "--save-state",
                paths[-1],
            ],
            capsys,
        )
    code, out, err = run_cli(["merge", *paths], capsys)
    assert code == 3 and out == "" and "--name" in err and "p1_base" in err


def _npy(d, **arrays):
    for k, v in arrays.items():
        np.save(d / f"{k}.npy", np.asarray(v, dtype=np.float64))
    return [str(d / f"{k}.npy") for k in arrays]


@pytest.mark.parametrize(
    ("y", "a", "b"),
    [([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.99, 0.5, 0.999]), ([0.0], [1.0], [0.5])],
)
def test_bootstrap_gives_no_verdict_on_a_few_examples(tmp_path, capsys, y, a, b):
    """On n = 3 the exact paired sign-flip test cannot go below p = 2^(1-3) = 0.25; the
    percentile bootstrap said 0.002 "better". Below 10 paired examples: no p, no verdict, a
    warning naming --test t / permutation, and --fail-if-worse (A is the worse one) stays 0."""
    t, pa, pb = _npy(tmp_path, y=y, a=a, b=b)
    code, out, err = run_cli(
        ["compare", "mse", t, pb, pa, "--test", "bootstrap", "--fail-if-worse", "-f", "json"], capsys
    )
    doc = json.loads(out)
    c = doc["comparisons"][0]
    assert code == 0 and c["p_value"] is None and c["verdict"] == "too few to test"
    assert "--test t" in err and "permutation" in err and any("too few" in w for w in doc["warnings"])
    if len(y) == 1:  # one example: no interval, as the t interval has none
        assert c["ci"] == [None, None] and doc["models"][0]["ci"] == [None, None]
    _code, out, _ = run_cli(["compare", "mse", t, pb, pa, "--test", "permutation", "-f", "json"], capsys)
    perm = json.loads(out)["comparisons"][0]
    if len(y) == 1:  # one sign flip cannot reject anything: no test, as the t test on 1
        assert perm["p_value"] is None and perm["verdict"] == "too few to test"
    else:
        assert perm["p_value"] > 0.8 * 2.0 ** (1 - len(y))  # Monte Carlo


def test_bootstrap_p_is_floored_at_the_exact_sign_flip_bound(tmp_path, capsys):
    n = 10  # every difference -0.75: all 10000 replicates below 0, the raw p would be 2/10001
    t, pa, pb = _npy(tmp_path, y=np.zeros(n), a=np.ones(n), b=np.full(n, 0.5))
    _code, out, _ = run_cli(
        ["compare", "mse", t, pa, pb, "--test", "bootstrap", "--resamples", "10000", "-f", "json"], capsys
    )
    c = json.loads(out)["comparisons"][0]
    assert c["p_value"] == 2.0 ** (1 - n) and c["verdict"] == "better"


def test_ci_bootstrap_on_one_example_has_no_interval_and_warns_on_few(tmp_path, capsys):
    p1, y1 = _npy(tmp_path, p1=[1.0], y1=[0.0])
    code, out, err = run_cli(["mse", p1, y1, "--bootstrap", "200", "-f", "json"], capsys)
    doc = json.loads(out)
    assert doc["ci"]["value"] == [None, None] and doc["ci"]["rmse"] == [None, None]
    assert "unreliable" in err and "--bootstrap" in err
    p3, y3 = _npy(tmp_path, p3=[1.0, 2.0, 4.0], y3=[0.0, 0.0, 0.0])
    code, out, err = run_cli(["mse", p3, y3, "--bootstrap", "200", "-f", "json"], capsys)
    assert code == 0 and any("unreliable" in w for w in json.loads(out)["warnings"])


def test_nan_skip_pairs_every_model_on_the_same_rows(tmp_path, capsys):
    """y NaN at row 2, A at row 3, B at row 4: rows 0 and 1 remain for everyone; each model's
    value is its MSE there and delta = value_B - value_A; 2 rows differed between the models."""
    y = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    a = np.array([1.5, 2.0, 3.0, np.nan, 5.0])
    b = np.array([1.0, 2.5, 3.0, 4.0, np.nan])
    t, pa, pb = _npy(tmp_path, y=y, a=a, b=b)
    for extra in ([], ["--test", "bootstrap"], ["--threads", "2", "--chunk-size", "2"]):
        _code, out, err = run_cli(
            ["compare", "mse", t, pa, pb, "--nan", "skip", "-f", "json", *extra], capsys
        )
        doc = json.loads(out)
        keep = np.isfinite(y) & np.isfinite(a) & np.isfinite(b)
        va, vb = float(np.mean((a - y)[keep] ** 2)), float(np.mean((b - y)[keep] ** 2))
        (ma, mb), c = doc["models"], doc["comparisons"][0]
        assert (ma["value"], mb["value"], ma["n"], mb["n"], c["n"]) == (va, vb, 2, 2, 2)
        assert math.isclose(c["delta"], vb - va, abs_tol=1e-15)
        assert "2 row(s) could be scored for some models but not others" in err


def test_fail_if_on_an_interval_that_one_example_cannot_give(tmp_path, capsys):
    """n = 1: value_high exists for --ci but has no number; the README's rule: it fires (1)."""
    p1, y1 = _npy(tmp_path, p1=[1.0], y1=[0.0])
    code, out, err = run_cli(["mse", p1, y1, "--ci", "--fail-if", "value_high > 100"], capsys)
    assert code == 1 and "value_high" in err
    header, row = out.splitlines()[:2]
    cells = dict(zip(header.split("\t"), row.split("\t"), strict=True))
    assert (cells["value_low"], cells["value_high"]) == ("nan", "nan")  # as compare writes them
    code, out, err = run_cli(["mse", p1, y1, "--ci", "--fail-if", "value_hi > 100"], capsys)
    assert code == 2 and "value_low" in err and "value_high" in err


def test_a_model_that_does_not_fit_is_named(tmp_path, capsys):
    """The targets fit the baseline, so a model with 2 prediction columns is the odd file."""
    y = np.arange(6.0)
    pd.DataFrame({"y": y}).to_csv(tmp_path / "t.csv", index=False)
    pd.DataFrame({"pred": y + 1}).to_csv(tmp_path / "base.csv", index=False)
    pd.DataFrame({"pred": y, "pred2": y}).to_csv(tmp_path / "wide.csv", index=False)
    code, out, err = run_cli(
        [
            "compare",
            "mse",
            str(tmp_path / "t.csv"),
            str(tmp_path / "base.csv"),
            str(tmp_path / "wide.csv"),
            "--target-col",
            "y",
        ],
        capsys,
    )
    assert code == 3 and out == "" and err.startswith(f"losscli: error: {tmp_path / 'wide.csv'}:")
    assert len(err.strip().splitlines()) == 1


def test_compare_perplexity_with_short_ids_blames_the_ids(tmp_path, capsys):
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 5, (4, 6))
    np.save(tmp_path / "ids.npy", ids[:3])  # the short file
    for k in "ab":
        np.save(tmp_path / f"{k}.npy", rng.normal(size=(4, 6, 5)))
    code, out, err = run_cli(
        [
            "compare",
            "perplexity",
            "--targets",
            str(tmp_path / "ids.npy"),
            "--logits",
            str(tmp_path / "a.npy"),
            "--logits",
            str(tmp_path / "b.npy"),
        ],
        capsys,
    )
    assert code == 3 and out == "" and "ids.npy:" in err and "does not fit" not in err


def test_table_says_intervals_are_not_holm_adjusted(pair, capsys):
    d, _y, _a, b = pair
    np.save(d / "c.npy", b + 0.01)
    files = [str(d / f"{k}.npy") for k in ("y", "a", "b", "c")]
    _code, out, _ = run_cli(["compare", "mse", *files, "-f", "table"], capsys)
    text = " ".join(out.split())
    assert "Holm-adjusted" in text and "intervals are not" in text
    _code, out, _ = run_cli(["compare", "mse", *files, "-f", "json"], capsys)
    c = json.loads(out)["comparisons"]
    p = sorted(x["p_value"] for x in c)  # raw and adjusted both kept: Holm of two is 2 p_min
    assert min(x["p_adjusted"] for x in c) == min(1.0, 2 * p[0])


def t975_df2() -> float:
    """Student t's 0.975 quantile at 2 degrees of freedom, closed form (2p-1)/sqrt(2p(1-p))."""
    p = 0.975
    return (2 * p - 1) / math.sqrt(2 * p * (1 - p))


def test_t_intervals_of_losses_are_clipped_at_zero(tmp_path, capsys):
    """3 examples: MSE's t interval reaches below 0; it is clipped there like RMSE's (and MAE's),
    the high end untouched; compare's model rows alike."""
    y, a = np.zeros(3), np.array([1.0, 0.001, 0.5])
    b = np.array([0.2, 0.3, 0.1])
    t, pa, pb = _npy(tmp_path, y=y, a=a, b=b)
    _code, out, _ = run_cli(["mse", pa, t, "--ci", "-f", "json"], capsys)
    ci = json.loads(out)["ci"]
    for key, x in (("value", (a - y) ** 2), ("mae", np.abs(a - y))):
        half = t975_df2() * float(np.std(x, ddof=1)) / math.sqrt(3)
        assert float(np.mean(x)) - half < 0  # the unclipped interval reaches below 0
        assert ci[key][0] == 0.0 and math.isclose(ci[key][1], float(np.mean(x)) + half, rel_tol=1e-12)
    assert ci["rmse"][0] == 0.0
    _code, out, _ = run_cli(["compare", "mse", t, pa, pb, "-f", "json"], capsys)
    m = json.loads(out)["models"][0]
    x = (a - y) ** 2
    half = t975_df2() * float(np.std(x, ddof=1)) / math.sqrt(3)
    assert m["ci"][0] == 0.0 and math.isclose(m["ci"][1], float(np.mean(x)) + half, rel_tol=1e-12)


def test_one_default_seed_for_ci_and_compare(pair, capsys):
    d, *_ = pair
    y, a, b = (str(d / f"{k}.npy") for k in "yab")
    _code, out, _ = run_cli(["mse", a, y, "--bootstrap", "100", "-f", "json"], capsys)
    seed = json.loads(out)["ci"]["seed"]
    _code, out, _ = run_cli(
        ["compare", "mse", y, a, b, "--test", "bootstrap", "--resamples", "50", "-f", "json"], capsys
    )
    assert json.loads(out)["seed"] == seed == 13


def test_rmse_and_ce_companion_intervals_are_gateable(tmp_path, capsys):
    rng = np.random.default_rng(5)
    n, k = 400, 4
    labels, logits = rng.integers(0, k, n), rng.normal(size=(n, k))
    (pl, _yl) = _npy(tmp_path, logits=logits, labels=labels.astype(np.float64))
    np.save(tmp_path / "labels.npy", labels)
    z = logits - logits.max(axis=1, keepdims=True)
    x = -(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))[np.arange(n), labels]
    _code, out, _ = run_cli(["ce", pl, str(tmp_path / "labels.npy"), "--ci", "-f", "json"], capsys)
    ci = json.loads(out)["ci"]
    lo, hi = ci["value"]
    assert math.isclose(lo + hi, 2 * float(np.mean(x)), rel_tol=1e-12)  # centred on the mean
    assert np.allclose(ci["perplexity"], np.exp([lo, hi]), rtol=1e-12, atol=0)
    assert np.allclose(ci["bits"], np.array([lo, hi]) / math.log(2), rtol=1e-12, atol=0)
    args = ["ce", pl, str(tmp_path / "labels.npy"), "--ci"]
    assert run_cli([*args, "--fail-if", f"perplexity_high > {math.exp(hi) * 0.999}"], capsys)[0] == 1
    assert run_cli([*args, "--fail-if", f"perplexity_high > {math.exp(hi) * 1.001}"], capsys)[0] == 0
    y, p = rng.normal(size=n), rng.normal(size=n)
    py, pp = _npy(tmp_path, yr=y, pr=p)
    e2 = (p - y) ** 2
    _code, out, _ = run_cli(["mse", pp, py, "--ci", "-f", "json"], capsys)
    rmse_high = math.sqrt(json.loads(out)["ci"]["value"][1])
    assert rmse_high > math.sqrt(float(np.mean(e2)))
    assert run_cli(["mse", pp, py, "--ci", "--fail-if", f"rmse_high > {rmse_high * 0.999}"], capsys)[0] == 1
    assert run_cli(["mse", pp, py, "--ci", "--fail-if", f"rmse_high > {rmse_high * 1.001}"], capsys)[0] == 0


def test_permutation_p_is_never_below_the_exact_tests_floor(tmp_path, capsys):
    """On 3 examples whose differences all favour B, the exact sign-flip test's p is 2/2^3 =
    0.25 (only the identity and the all-flipped pattern are as extreme); Monte Carlo sign flips
    must not report less."""
    _npy(tmp_path, y=[0.0, 0.0, 0.0], a=[1.0, 1.0, 1.0], b=[0.99, 0.5, 0.999])
    code, out, err = run_cli(
        [
            "compare",
            "mse",
            str(tmp_path / "y.npy"),
            str(tmp_path / "a.npy"),
            str(tmp_path / "b.npy"),
            "--test",
            "permutation",
            "-f",
            "json",
        ],
        capsys,
    )
    assert code == 0, err
    (comparison,) = json.loads(out)["comparisons"]
    assert comparison["p_value"] >= 0.25 - 1e-12
    assert comparison["verdict"] != "better"


def test_merge_names_a_missing_state_file_as_missing(pair, capsys, tmp_path):
    d, *_ = pair
    saved = tmp_path / "s0.state"
    args = [
        "compare",
        "mse",
        str(d / "y.npy"),
        str(d / "a.npy"),
        str(d / "b.npy"),
        "--save-state",
        str(saved),
    ]
    assert run_cli([*args, "-f", "json"], capsys)[0] == 0
    code, out, err = run_cli(["merge", str(saved), str(tmp_path / "missing.state")], capsys)
    assert code == 3 and out == ""
    assert "missing.state: cannot read the state file" in err and "corrupt" not in err


def test_a_width_mismatch_names_the_predictions_file_too(tmp_path, capsys):
    """A baseline (or a plain run's predictions) with 2 columns against 1 target column: the
    message is the targets', and it names the predictions' file, which may be the one at fault."""
    y = np.arange(6.0)
    pd.DataFrame({"y": y}).to_csv(tmp_path / "t.csv", index=False)
    pd.DataFrame({"pred": y, "pred2": y}).to_csv(tmp_path / "wide.csv", index=False)
    pd.DataFrame({"pred": y + 1}).to_csv(tmp_path / "other.csv", index=False)
    for args in (
        ["mse", str(tmp_path / "wide.csv"), str(tmp_path / "t.csv"), "--target-col", "y"],
        [
            "compare",
            "mse",
            str(tmp_path / "t.csv"),
            str(tmp_path / "wide.csv"),
            str(tmp_path / "other.csv"),
            "--target-col",
            "y",
        ],
    ):
        code, out, err = run_cli(args, capsys)
        assert code == 3 and out == "", err
        assert f"(the predictions: {tmp_path / 'wide.csv'})" in err, err
        assert len(err.strip().splitlines()) == 1
