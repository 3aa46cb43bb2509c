"""compare perplexity: paired tests clustered by sequence, against float64 references written
here (log-softmax in numpy, per-sequence sums, the cluster-robust ratio variance, a Poisson
bootstrap with one weight per sequence, exact sign-flip enumeration over sequences); the same
figures from logits and from log-probs, for any chunk size and thread count, over saved parts;
refusals on the CLI; and calibration (null uniformity, power) with correlated tokens."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from losscli.compare.api import compare
from losscli.compare.clusters import add_clusters
from losscli.compare.judge import compare_one
from losscli.compare.tallies import PairTallies
from losscli.stats.moments import RatioMoments
from losscli.stats.poisson import poisson_weights
from test_compare import close, run_cli, t_ppf_ref, t_sf_ref
from test_compare_calibration import KS_CRITICAL, RUNS, ks_distance, norm_cdf

B, T, V = 60, 12, 7


def log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


@pytest.fixture
def lm(tmp_path):
    """Two models' (B, T, V) float64 logits, ids with -100 padding (one sequence all padding),
    per-sequence quality that varies (tokens of a sequence are correlated), and their gathered
    log-probs with padding marked 1.0."""
    rng = np.random.default_rng(13)
    ids = rng.integers(0, V, size=(B, T))
    lengths = rng.integers(3, T + 1, size=B)
    lengths[5] = 0
    pad = np.arange(T)[None, :] >= lengths[:, None]
    ids[pad] = -100
    logits = {}
    for k, sharp in (("a", 1.0), ("b", 1.15)):
        quality = rng.normal(scale=0.8, size=(B, 1, 1))  # a sequence the model finds hard or easy
        x = rng.normal(size=(B, T, V))
        onehot = np.eye(V)[np.where(pad, 0, ids)]
        logits[k] = x + (sharp + quality) * onehot
        np.save(tmp_path / f"logits_{k}.npy", logits[k])
        lp = np.take_along_axis(log_softmax(logits[k]), np.where(pad, 0, ids)[..., None], -1)[..., 0]
        np.save(tmp_path / f"lp_{k}.npy", np.where(pad, 1.0, lp))
    np.save(tmp_path / "ids.npy", ids)
    nll = {}
    for k in "ab":
        lp = np.take_along_axis(log_softmax(logits[k]), np.where(pad, 0, ids)[..., None], -1)[..., 0]
        nll[k] = np.where(pad, 0.0, -lp).sum(axis=1)  # per-sequence NLL sums
    n = (~pad).sum(axis=1).astype(np.float64)
    return tmp_path, nll, n


def ratio_ref(y: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """sum y / sum n over sequences with tokens, and its cluster-robust standard error."""
    keep = n > 0
    y, n = y[keep], n[keep]
    g = len(y)
    r = y.sum() / n.sum()
    se = math.sqrt(g / (g - 1) * np.sum((y - r * n) ** 2)) / n.sum()
    return float(r), se


def paths(d, kind: str) -> list[str]:
    return [str(d / f"{kind}_{k}.npy") for k in "ab"]


def test_t_clustered_by_sequence_matches_numpy_reference(lm):
    d, nll, n = lm
    report = compare("perplexity", str(d / "ids.npy"), paths(d, "logits"), names=["A", "B"])
    diff = nll["b"] - nll["a"]
    delta, se = ratio_ref(diff, n)
    g = int((n > 0).sum())
    c = report.comparisons[0]
    assert report.unit == "sequence" and c.n == g
    assert close(c.delta, delta)
    half = t_ppf_ref(0.975, g - 1) * se
    assert math.isclose(c.high - c.low, 2 * half, rel_tol=1e-7)
    assert close((c.low + c.high) / 2, delta, 1e-10)
    assert math.isclose(c.p_value, 2 * t_sf_ref(abs(delta) / se, g - 1), rel_tol=1e-7)
    # a model's row: perplexity exp(sum NLL / tokens), its interval exp of cross-entropy's
    for row, k in zip(report.models, "ab", strict=True):
        ce, se_k = ratio_ref(nll[k], n)
        assert close(row.value, math.exp(ce)) and row.n == int(n.sum())
        lo, hi = ce - t_ppf_ref(0.975, g - 1) * se_k, ce + t_ppf_ref(0.975, g - 1) * se_k
        assert math.isclose(row.low, math.exp(lo), rel_tol=1e-7)
        assert math.isclose(row.high, math.exp(hi), rel_tol=1e-7)


def test_bootstrap_one_poisson_weight_per_sequence(lm):
    d, nll, n = lm
    report = compare(
        "perplexity", str(d / "ids.npy"), paths(d, "logits"), test="bootstrap", resamples=400, seed=5
    )
    diff = nll["b"] - nll["a"]
    w = poisson_weights(5, np.arange(B, dtype=np.uint64), 400).astype(np.float64)  # one per sequence
    reps = (w @ diff) / (w @ n)
    lo, hi = np.quantile(reps, [0.025, 0.975])
    c = report.comparisons[0]
    assert close(c.delta, ratio_ref(diff, n)[0])
    assert close(c.low, float(lo), 1e-10) and close(c.high, float(hi), 1e-10)
    below, above = int((reps <= 0).sum()), int((reps >= 0).sum())
    assert c.p_value == min(1.0, 2 * (min(below, above) + 1) / 401)
    ce = (w @ nll["a"]) / (w @ n)
    qlo, qhi = np.quantile(ce, [0.025, 0.975])
    assert close(report.models[0].low, math.exp(qlo), 1e-10)
    assert close(report.models[0].high, math.exp(qhi), 1e-10)


def test_permutation_flips_whole_sequences(tmp_path):
    """10 sequences: the exact p-value enumerates all 2^10 sign patterns of the per-sequence
    sums (not of the tokens); the sampled p is within 4 binomial standard errors."""
    rng = np.random.default_rng(21)
    g, t = 10, 8
    ids = rng.integers(0, V, size=(g, t))
    nll = {}
    for k, sharp in (("a", 1.0), ("b", 1.3)):
        x = rng.normal(size=(g, t, V)) + (sharp + rng.normal(scale=0.5, size=(g, 1, 1))) * np.eye(V)[ids]
        np.save(tmp_path / f"logits_{k}.npy", x)
        nll[k] = -np.take_along_axis(log_softmax(x), ids[..., None], -1)[..., 0].sum(axis=1)
    np.save(tmp_path / "ids.npy", ids)
    report = compare(
        "perplexity",
        str(tmp_path / "ids.npy"),
        paths(tmp_path, "logits"),
        test="permutation",
        resamples=20000,
    )
    diff = nll["b"] - nll["a"]
    signs = ((np.arange(2**g)[:, None] >> np.arange(g)) & 1) * 2 - 1
    exact = float(np.mean(np.abs(signs @ diff) >= abs(diff.sum()) - 1e-12))
    p = report.comparisons[0].p_value
    assert abs(p - exact) < 4 * math.sqrt(exact * (1 - exact) / 20000) + 1e-4


@pytest.mark.parametrize("test", ["t", "bootstrap", "permutation"])
def test_logprobs_chunks_and_threads_agree(lm, test):
    d, _nll, _n = lm
    reps = None if test == "t" else 300
    base = compare("perplexity", str(d / "ids.npy"), paths(d, "logits"), test=test, resamples=reps)
    others = [
        compare(
            "perplexity",
            str(d / "ids.npy"),
            paths(d, "logits"),
            test=test,
            resamples=reps,
            chunk_size=5,
            threads=1,
        ),
        compare(
            "perplexity",
            str(d / "ids.npy"),
            paths(d, "logits"),
            test=test,
            resamples=reps,
            chunk_size=37,
            threads=2,
        ),
        compare(
            "perplexity",
            None,
            paths(d, "lp"),
            logprobs=True,
            pad_value=1.0,
            test=test,
            resamples=reps,
            chunk_size=11,
        ),
    ]
    a = base.comparisons[0]
    for other in others:
        b = other.comparisons[0]
        for x, z in ((a.delta, b.delta), (a.low, b.low), (a.high, b.high), (a.p_value, b.p_value)):
            assert close(x, z, 1e-11)
        assert close(base.models[1].value, other.models[1].value, 1e-11)


def test_flat_logits_compare_tokens_with_a_note(tmp_path):
    rng = np.random.default_rng(4)
    n = 500
    ids = rng.integers(0, V, size=n)
    losses = {}
    for k in "ab":
        x = rng.normal(size=(n, V))
        np.save(tmp_path / f"logits_{k}.npy", x)
        losses[k] = -log_softmax(x)[np.arange(n), ids]
    np.save(tmp_path / "ids.npy", ids)
    report = compare("perplexity", str(tmp_path / "ids.npy"), paths(tmp_path, "logits"))
    diff = losses["b"] - losses["a"]
    c = report.comparisons[0]
    assert report.unit == "example" and c.n == n
    assert close(c.delta, float(diff.mean()))
    se = float(np.std(diff, ddof=1)) / math.sqrt(n)
    assert math.isclose(c.p_value, 2 * t_sf_ref(abs(diff.mean()) / se, n - 1), rel_tol=1e-7)
    assert any("no sequence information" in note for note in report.notes)


def test_cli_table_json_and_refusals(lm, capsys):
    d, nll, n = lm
    ids, (a, b) = str(d / "ids.npy"), paths(d, "logits")
    code, out, _ = run_cli(
        [
            "compare",
            "perplexity",
            "--targets",
            ids,
            "--logits",
            a,
            "--logits",
            b,
            "--name",
            "A",
            "--name",
            "B",
            "-f",
            "json",
        ],
        capsys,
    )
    doc = json.loads(out)
    assert code == 0 and doc["paired_unit"] == "sequence" and doc["metric"] == "perplexity"
    assert close(doc["comparisons"][0]["delta"], ratio_ref(nll["b"] - nll["a"], n)[0])
    code, out, _ = run_cli(
        [
            "compare",
            "perplexity",
            "--logprobs",
            paths(d, "lp")[0],
            "--logprobs",
            paths(d, "lp")[1],
            "--pad-value",
            "1.0",
            "-f",
            "table",
        ],
        capsys,
    )
    assert code == 0 and "nats of cross-entropy per token" in out and "paired sequences" in out
    code, _, err = run_cli(["compare", "perplexity", "--targets", ids, "--logits", a], capsys)
    assert code == 2 and "two models" in err
    code, _, err = run_cli(
        ["compare", "perplexity", "--targets", ids, "--logits", a, "--logprobs", b], capsys
    )
    assert code == 2 and "--logits" in err
    # a model that scores other tokens (its padding elsewhere): exit 3 naming its file
    lp = np.load(d / "lp_b.npy")
    lp[0, 0] = 1.0
    np.save(d / "lp_c.npy", lp)
    code, out, err = run_cli(
        [
            "compare",
            "perplexity",
            "--logprobs",
            paths(d, "lp")[0],
            "--logprobs",
            str(d / "lp_c.npy"),
            "--pad-value",
            "1.0",
        ],
        capsys,
    )
    assert code == 3 and "lp_c.npy" in err and "sequence 0" in err and out == ""
    np.save(d / "short.npy", np.load(d / "logits_b.npy")[:-1])
    code, out, err = run_cli(
        ["compare", "perplexity", "--targets", ids, "--logits", a, "--logits", str(d / "short.npy")], capsys
    )
    assert code == 3 and "short.npy" in err and out == ""


def test_saved_parts_merge_to_the_whole(lm, capsys):
    """Sequences 0-29 and 30-59 in separate files (the second with --row-offset in tokens),
    each saved, merge to the whole comparison, bootstrap weights following global sequences."""
    d, _nll, _n = lm
    ids = np.load(d / "ids.npy")
    for part, rows in (("p1", slice(0, 30)), ("p2", slice(30, B))):
        np.save(d / f"ids_{part}.npy", ids[rows])
        for k in "ab":
            np.save(d / f"logits_{k}_{part}.npy", np.load(d / f"logits_{k}.npy")[rows])
    common = ["--test", "bootstrap", "--resamples", "200", "-f", "json", "--name", "A", "--name", "B"]

    def args(part: str) -> list[str]:
        if not part:
            return [
                "--targets",
                str(d / "ids.npy"),
                "--logits",
                paths(d, "logits")[0],
                "--logits",
                paths(d, "logits")[1],
            ]
        return [
            "--targets",
            str(d / f"ids_{part}.npy"),
            "--logits",
            str(d / f"logits_a_{part}.npy"),
            "--logits",
            str(d / f"logits_b_{part}.npy"),
        ]

    code, whole, _ = run_cli(["compare", "perplexity", *args(""), *common], capsys)
    assert code == 0
    run_cli(["compare", "perplexity", *args("p1"), *common, "--save-state", str(d / "1.state")], capsys)
    code, _, err = run_cli(
        [
            "compare",
            "perplexity",
            *args("p2"),
            *common,
            "--row-offset",
            str(30 * T),
            "--save-state",
            str(d / "2.state"),
        ],
        capsys,
    )
    assert code == 0, err
    code, merged, err = run_cli(["merge", str(d / "2.state"), str(d / "1.state"), "-f", "json"], capsys)
    assert code == 0, err
    w, m = json.loads(whole)["comparisons"][0], json.loads(merged)["comparisons"][0]
    assert w["n"] == m["n"]
    for key in ("delta", "p_value"):
        assert close(w[key], m[key], 1e-11)
    assert close(w["ci"][0], m["ci"][0], 1e-11) and close(w["ci"][1], m["ci"][1], 1e-11)


# --- calibration: correlated tokens within sequences -------------------------------------------


def simulate(rng: np.random.Generator, g: int, shift: float) -> tuple[list[np.ndarray], np.ndarray]:
    """Per-sequence NLL sums of two models over g sequences of 5-20 tokens: each sequence has a
    difficulty shared by its tokens and by both models, and each model a per-sequence effect
    (so tokens of a sequence are correlated in the difference too)."""
    n = rng.integers(5, 21, size=g).astype(np.float64)
    hard = rng.exponential(size=g)
    sums = []
    for k in range(2):
        effect = rng.normal(scale=0.5, size=g) + (shift if k else 0.0)
        tokens = [hard[i] + effect[i] + rng.exponential(size=int(n[i])) for i in range(g)]
        sums.append(np.array([t.sum() for t in tokens]))
    return sums, n


def cluster_p(sums: list[np.ndarray], n: np.ndarray, test: str, resamples: int, seed: int) -> float:
    """The clustered p-value, the sequences counted in two parts (as merged states are)."""
    pairs = PairTallies(2, test, resamples, seed)
    pairs.ratios = [[RatioMoments() for _ in range(pairs.columns)]]
    half = len(n) // 2
    ids = np.arange(len(n), dtype=np.int64)
    for part in (slice(0, half), slice(half, None)):
        add_clusters(pairs, [s[part] for s in sums], n[part], ids[part])
    return compare_one(pairs, 0, 1, 0.95, None)[1]


@pytest.mark.parametrize(
    ("test", "g", "resamples"), [("t", 40, 0), ("bootstrap", 60, 199), ("permutation", 30, 199)]
)
def test_clustered_p_values_uniform_under_the_null(test, g, resamples):
    rng = np.random.default_rng(77)
    ps = [cluster_p(*simulate(rng, g, 0.0), test, resamples, seed=run) for run in range(RUNS)]
    assert ks_distance(np.array(ps)) < KS_CRITICAL


def test_per_token_p_values_are_not_uniform_on_clustered_data():
    """The check above can fail: treating the same correlated tokens as independent examples
    gives p-values far from uniform (too small)."""
    rng = np.random.default_rng(77)
    ps = []
    for _run in range(100):
        g = 40
        n = rng.integers(5, 21, size=g)
        effect = [rng.normal(scale=0.5, size=g) for _ in range(2)]
        d = np.concatenate(
            [
                effect[1][i] - effect[0][i] + rng.exponential(size=n[i]) - rng.exponential(size=n[i])
                for i in range(g)
            ]
        )
        se = float(np.std(d, ddof=1)) / math.sqrt(len(d))
        ps.append(2 * (1 - norm_cdf(abs(d.mean()) / se)))
    assert ks_distance(np.array(ps)) > 1.63 / math.sqrt(100)


@pytest.mark.parametrize(("test", "resamples"), [("t", 0), ("bootstrap", 199), ("permutation", 199)])
def test_clustered_power_of_a_known_difference(test, resamples):
    """A per-token shift of 0.3 nats with every sequence 10 tokens long: the per-sequence mean
    difference has sd s = sqrt(2 * 0.5^2 + 2 / 10) = 0.837 over g = 50 sequences, so the
    two-sided 5% test's power is Phi(0.3 sqrt(50) / s - 1.96) + Phi(-... - 1.96) = 0.73."""
    rng = np.random.default_rng(31)
    g, shift = 50, 0.3
    s = math.sqrt(2 * 0.25 + 2 / 10)
    lam = shift * math.sqrt(g) / s
    textbook = norm_cdf(lam - 1.959964) + norm_cdf(-lam - 1.959964)
    hits = 0
    for run in range(RUNS):
        n = np.full(g, 10.0)
        hard = rng.exponential(size=g)
        sums = []
        for k in range(2):
            effect = rng.normal(scale=0.5, size=g) + (shift if k else 0.0)
            sums.append(np.array([(hard[i] + effect[i] + rng.exponential(size=10)).sum() for i in range(g)]))
        hits += cluster_p(sums, n, test, resamples, seed=run) < 0.05
    assert abs(hits / RUNS - textbook) < 0.08
