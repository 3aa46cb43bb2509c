"""compare perplexity --group-by: per-group paired tests clustered by (group, sequence).

Every figure is checked against a float64 reference written here from the raw inputs: the
clusters (a sequence's tokens in one group) summed in numpy, each model's cross-entropy and
delta = sum d / sum n per group, the cluster-robust ratio variance with Student's t (by
Simpson integration, ``test_compare``), one Poisson weight per (cluster, replicate), Holm over
groups and candidates. Inputs are made as tools make them: pyarrow Parquet with a list<double>
log-probs column and a per-sequence key (text with nulls, dictionary-encoded), (B, T, V) logits
with a per-token key file in which a sequence spans two groups, flat logits. Also: chunk sizes
and threads change nothing, saved halves merge to the whole, a group's figures are those of a
comparison of that group's sequences alone, and the gate names the failing group.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from losscli.compare.api import compare
from losscli.stats.poisson import poisson_weights
from test_compare import close, holm_ref, run_cli, t_ppf_ref, t_sf_ref
from test_compare_perplexity import log_softmax

LANGS = ("de", "en", None)


def write_lp(path, lps: list[np.ndarray], lang: list | None, dictionary: bool = False) -> None:
    columns: dict[str, pa.Array] = {"lp": pa.array([list(x) for x in lps], pa.list_(pa.float64()))}
    if lang is not None:
        keys = pa.array(lang, pa.string())
        columns["lang"] = keys.dictionary_encode() if dictionary else keys
    pq.write_table(pa.table(columns), path)


@pytest.fixture
def seqs(tmp_path):
    """30 sequences of 3-11 tokens, a language per sequence (de, en, null); model b is worse on
    en only; a's file holds the key, b's none (the keys are read once, from the baseline's)."""
    rng = np.random.default_rng(31)
    g = 30
    lengths = rng.integers(3, 12, size=g)
    lang = [LANGS[i % 3] for i in range(g)]
    hard = rng.normal(scale=0.6, size=g)  # a sequence's difficulty, shared by its tokens
    lp = {"a": [-np.exp(hard[i]) * rng.exponential(size=lengths[i]) for i in range(g)]}
    worse = np.array([0.3 if x == "en" else 0.0 for x in lang])
    noise = rng.normal(scale=0.1, size=g)
    for key in LANGS:  # no difference on average but in en
        noise[[x == key for x in lang]] -= noise[[x == key for x in lang]].mean()
    effect = noise + worse  # b's per-sequence scaling of a's NLL
    lp["b"] = [lp["a"][i] * np.exp(effect[i] + rng.normal(scale=0.05, size=lengths[i])) for i in range(g)]
    write_lp(tmp_path / "a.parquet", lp["a"], lang)
    write_lp(tmp_path / "b.parquet", lp["b"], None)
    return tmp_path, lp, lang


def clusters_of(lp: dict[str, list[np.ndarray]], key_of) -> dict:
    """(group key, sequence) -> (NLL sum per model, tokens); ``key_of(seq, pos)`` a token's key."""
    out: dict = {}
    for s in range(len(lp["a"])):
        for pos in range(len(lp["a"][s])):
            key = key_of(s, pos)
            y, n = out.setdefault((key, s), ([0.0] * len(lp), 0))
            out[(key, s)] = ([y[j] - float(lp[k][s][pos]) for j, k in enumerate(lp)], n + 1)
    return out


def group_ref(cl: dict, key) -> dict:
    """One group's reference figures from its clusters (sequences ascending)."""
    mine = sorted((s, y, n) for (k, s), (y, n) in cl.items() if k == key)
    ids = np.array([s for s, _, _ in mine])
    y = np.array([v for _, v, _ in mine])  # (G, K)
    n = np.array([float(c) for _, _, c in mine])
    g = len(n)
    out = {"ids": ids, "y": y, "n": n, "g": g, "tokens": int(n.sum())}
    out["ce"] = y.sum(axis=0) / n.sum()
    d = y[:, 1] - y[:, 0]
    delta = d.sum() / n.sum()
    se = math.sqrt(g / (g - 1) * np.sum((d - delta * n) ** 2)) / n.sum()
    out.update(d=d, delta=delta, se=se, p=min(1.0, 2 * t_sf_ref(abs(delta) / se, g - 1)))
    out["half"] = t_ppf_ref(0.975, g - 1) * se
    return out


def block(report, key):
    return next(b for b in report.groups if tuple(b.key.values()) == (key,))


def test_t_per_group_matches_numpy_reference_and_holm(seqs):
    d, lp, lang = seqs
    report = compare(
        "perplexity", None, [str(d / "a.parquet"), str(d / "b.parquet")], logprobs=True,
        pred_col="lp", group_by="lang", names=["A", "B"],
    )  # fmt: skip
    cl = clusters_of(lp, lambda s, pos: lang[s])
    refs = {key: group_ref(cl, key) for key in LANGS}
    assert [tuple(b.key.values()) for b in report.groups] == [("de",), ("en",), (None,)]
    for key, ref in refs.items():
        b = block(report, key)
        c = b.comparisons[0]
        assert c.n == ref["g"] == 10 and c.group == (key,)
        assert close(c.delta, ref["delta"])
        assert close((c.low + c.high) / 2, ref["delta"], 1e-10)
        assert math.isclose(c.high - c.low, 2 * ref["half"], rel_tol=1e-7)
        assert math.isclose(c.p_value, ref["p"], rel_tol=1e-7)
        for j, row in enumerate(b.models):  # each model's perplexity, cross-entropy and tokens
            assert close(row.value, math.exp(ref["ce"][j]))
            assert close(row.figures["cross_entropy"], ref["ce"][j])
            assert close(row.figures["bits_per_token"], ref["ce"][j] / math.log(2))
            assert row.n == ref["tokens"] and row.figures["sequences"] == 10
    adjusted = holm_ref([refs[k]["p"] for k in LANGS])
    for key, p in zip(LANGS, adjusted, strict=True):
        assert math.isclose(block(report, key).comparisons[0].p_adjusted, p, rel_tol=1e-7)
    assert block(report, "en").comparisons[0].verdict == "worse"
    assert block(report, "de").comparisons[0].verdict == "no significant difference"


def test_a_group_is_the_comparison_of_its_sequences_alone(seqs, tmp_path):
    """The strongest check: each group's delta, interval and p-value are those of an ungrouped
    comparison of that group's sequences only (written to files of their own)."""
    d, lp, lang = seqs
    files = [str(d / "a.parquet"), str(d / "b.parquet")]
    report = compare("perplexity", None, files, logprobs=True, pred_col="lp", group_by="lang")
    for key in LANGS:
        rows = [i for i, x in enumerate(lang) if x == key]
        sub = []
        for k in "ab":
            path = tmp_path / f"{k}_{key}.parquet"
            write_lp(path, [lp[k][i] for i in rows], None)
            sub.append(str(path))
        alone = compare("perplexity", None, sub, logprobs=True, pred_col="lp")
        a, g = alone.comparisons[0], block(report, key).comparisons[0]
        assert g.n == a.n
        for x, y in ((g.delta, a.delta), (g.low, a.low), (g.high, a.high), (g.p_value, a.p_value)):
            assert close(x, y, 1e-12)
        for mine, theirs in zip(block(report, key).models, alone.models, strict=True):
            assert close(mine.value, theirs.value) and mine.n == theirs.n
            assert close(mine.low, theirs.low) and close(mine.high, theirs.high)


@pytest.mark.parametrize("test", ["bootstrap", "permutation"])
def test_contiguous_group_resamples_as_its_sequences_alone(tmp_path, test):
    """Groups of contiguous sequences: the weights and signs follow the global sequence, so the
    second group's bootstrap/permutation figures equal those of its sequences alone at their
    --sequence-offset; and the bootstrap interval is the numpy reference's, one Poisson weight
    per (cluster, replicate)."""
    rng = np.random.default_rng(8)
    g = 24
    lengths = rng.integers(2, 9, size=g)
    lang = ["de"] * 11 + ["en"] * 13
    lp = {k: [-rng.exponential(1.0 + 0.3 * (k == "b"), size=m) for m in lengths] for k in "ab"}
    write_lp(tmp_path / "a.parquet", lp["a"], lang)
    write_lp(tmp_path / "b.parquet", lp["b"], None)
    for k in "ab":
        write_lp(tmp_path / f"{k}_en.parquet", lp[k][11:], None)
    files = [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")]
    opts = {"logprobs": True, "pred_col": "lp", "test": test, "resamples": 300, "seed": 4}
    report = compare("perplexity", None, files, group_by="lang", **opts)
    en = [str(tmp_path / "a_en.parquet"), str(tmp_path / "b_en.parquet")]
    alone = compare("perplexity", None, en, sequence_offset=11, **opts).comparisons[0]
    c = block(report, "en").comparisons[0]
    for x, y in (
        (c.delta, alone.delta),
        (c.low, alone.low),
        (c.high, alone.high),
        (c.p_value, alone.p_value),
    ):
        assert close(x, y, 1e-12)
    if test == "bootstrap":
        cl = clusters_of(lp, lambda s, pos: lang[s])
        for key in ("de", "en"):
            ref = group_ref(cl, key)
            w = poisson_weights(4, ref["ids"].astype(np.uint64), 300).astype(np.float64)
            reps = (w @ ref["d"]) / (w @ ref["n"])
            lo, hi = np.quantile(reps, [0.025, 0.975])
            c = block(report, key).comparisons[0]
            assert close(c.low, float(lo), 1e-10) and close(c.high, float(hi), 1e-10)
            below, above = int((reps <= 0).sum()), int((reps >= 0).sum())
            assert c.p_value == max(min(1.0, 2 * (min(below, above) + 1) / 301), 2.0 ** (1 - ref["g"]))


@pytest.fixture
def spanning(tmp_path):
    """(B, T, V) logits and ids, a per-token key file (CSV, a row per token) in which every
    third sequence changes group halfway: its tokens form a cluster in each group."""
    rng = np.random.default_rng(5)
    b, t, v = 21, 8, 6
    ids = rng.integers(0, v, size=(b, t))
    np.save(tmp_path / "ids.npy", ids)
    lp = {}
    for k, sharp in (("a", 1.0), ("b", 1.2)):
        x = rng.normal(size=(b, t, v)) + (sharp + rng.normal(scale=0.7, size=(b, 1, 1))) * np.eye(v)[ids]
        np.save(tmp_path / f"logits_{k}.npy", x)
        full = np.take_along_axis(log_softmax(x), ids[..., None], -1)[..., 0]
        lp[k] = [full[i] for i in range(b)]

    def key_of(s: int, pos: int) -> str:
        if s % 3 == 0:
            return "x" if pos < t // 2 else "y"
        return "x" if s % 2 else "y"

    with open(tmp_path / "keys.csv", "w") as fh:
        fh.write("part\n" + "".join(f"{key_of(s, p)}\n" for s in range(b) for p in range(t)))
    return tmp_path, lp, key_of


@pytest.mark.parametrize("test", ["t", "bootstrap", "permutation"])
def test_sequence_spanning_two_groups_and_chunking(spanning, test):
    d, lp, key_of = spanning
    reps = None if test == "t" else 250
    files = [str(d / "logits_a.npy"), str(d / "logits_b.npy")]

    def run(**more):
        return compare(
            "perplexity", str(d / "ids.npy"), files, groups=str(d / "keys.csv"), test=test,
            resamples=reps, **more,
        )  # fmt: skip

    report = run()
    cl = clusters_of(lp, key_of)
    refs = {key: group_ref(cl, key) for key in ("x", "y")}
    for key, ref in refs.items():
        c = block(report, key).comparisons[0]
        assert c.n == ref["g"]  # the split sequences count in both groups
        assert close(c.delta, ref["delta"])
        for row, ce in zip(block(report, key).models, ref["ce"], strict=True):
            assert close(row.value, math.exp(ce)) and row.n == ref["tokens"]
        if test == "t":
            assert math.isclose(c.p_value, ref["p"], rel_tol=1e-7)
            assert math.isclose(c.high - c.low, 2 * ref["half"], rel_tol=1e-7)
    assert refs["x"]["g"] + refs["y"]["g"] == 21 + 7
    for other in (run(chunk_size=5, threads=1), run(chunk_size=13, threads=2)):
        for key in ("x", "y"):
            a, b = block(report, key).comparisons[0], block(other, key).comparisons[0]
            for x, y in ((a.delta, b.delta), (a.low, b.low), (a.high, b.high), (a.p_value, b.p_value)):
                assert close(x, y, 1e-11)


def test_null_and_dictionary_keys(tmp_path):
    """A dictionary-encoded (pandas category) key column with nulls: null is its own group."""
    rng = np.random.default_rng(12)
    g = 18
    lang = ["fr", None, "it"] * 6
    lp = {k: [-rng.exponential(size=m) for m in rng.integers(2, 7, size=g)] for k in "ab"}
    lp["b"] = [lp["a"][i] * rng.uniform(0.9, 1.2) for i in range(g)]
    write_lp(tmp_path / "a.parquet", lp["a"], lang, dictionary=True)
    write_lp(tmp_path / "b.parquet", lp["b"], lang, dictionary=True)
    files = [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")]
    report = compare("perplexity", None, files, logprobs=True, pred_col="lp", group_by="lang")
    assert [tuple(b.key.values()) for b in report.groups] == [("fr",), ("it",), (None,)]
    cl = clusters_of(lp, lambda s, pos: lang[s])
    for key in ("fr", "it", None):
        ref = group_ref(cl, key)
        c = block(report, key).comparisons[0]
        assert close(c.delta, ref["delta"]) and c.n == 6
        assert math.isclose(c.p_value, ref["p"], rel_tol=1e-7)


def test_per_token_logprobs_with_seq_col_agree_with_list_column(seqs, tmp_path):
    """The same tokens as a row per token (CSV, --seq-col, the key repeated on each token)."""
    d, lp, lang = seqs
    for k in "ab":
        with open(tmp_path / f"{k}.csv", "w") as fh:
            fh.write("seq,lp,lang\n")
            for s, x in enumerate(lp[k]):
                fh.write("".join(f"{s},{float(v)!r},{lang[s] or ''}\n" for v in x))
    lists = compare(
        "perplexity", None, [str(d / "a.parquet"), str(d / "b.parquet")], logprobs=True,
        pred_col="lp", group_by="lang",
    )  # fmt: skip
    rows = compare(
        "perplexity", None, [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")], logprobs=True,
        pred_col="lp", seq_col="seq", group_by="lang", chunk_size=7,
    )  # fmt: skip
    assert rows.unit == "sequence"
    for key in LANGS:
        a, b = block(lists, key).comparisons[0], block(rows, key).comparisons[0]
        assert a.n == b.n
        for x, y in ((a.delta, b.delta), (a.low, b.low), (a.p_value, b.p_value)):
            assert close(x, y, 1e-11)


def test_flat_logits_compare_tokens_within_groups(tmp_path):
    rng = np.random.default_rng(9)
    n, v = 300, 5
    ids = rng.integers(0, v, size=n)
    np.save(tmp_path / "ids.npy", ids)
    losses = {}
    for k in "ab":
        x = rng.normal(size=(n, v))
        np.save(tmp_path / f"{k}.npy", x)
        losses[k] = -log_softmax(x)[np.arange(n), ids]
    keys = np.where(np.arange(n) % 4 == 0, "q", "r")
    with open(tmp_path / "keys.csv", "w") as fh:
        fh.write("k\n" + "".join(f"{x}\n" for x in keys))
    files = [str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]
    report = compare("perplexity", str(tmp_path / "ids.npy"), files, groups=str(tmp_path / "keys.csv"))
    assert report.unit == "example" and any("no sequence information" in x for x in report.notes)
    for key in ("q", "r"):
        diff = (losses["b"] - losses["a"])[keys == key]
        c = block(report, key).comparisons[0]
        assert c.n == len(diff) and close(c.delta, float(diff.mean()))
        se = float(np.std(diff, ddof=1)) / math.sqrt(len(diff))
        assert math.isclose(c.p_value, 2 * t_sf_ref(abs(diff.mean()) / se, len(diff) - 1), rel_tol=1e-7)


def lp_args(*files: str) -> list[str]:
    out = ["compare", "perplexity"]
    for f in files:
        out += ["--logprobs", f]
    return out


def test_cli_gate_names_the_group_and_formats(seqs, capsys):
    d, _lp, _lang = seqs
    args = [*lp_args(str(d / "a.parquet"), str(d / "b.parquet")), "--pred-col", "lp", "--group-by", "lang"]
    code, out, err = run_cli([*args, "--fail-if-worse", "-f", "json"], capsys)
    doc = json.loads(out)
    assert code == 1 and "b is worse than a in group lang=en" in err
    assert "lang=de" not in err.replace("lang=en", "")
    assert [g["key"] for g in doc["groups"]] == [{"lang": "de"}, {"lang": "en"}, {"lang": None}]
    assert doc["paired_unit"] == "sequence" and doc["groups"][1]["comparisons"][0]["n"] == 10
    code, out, _ = run_cli([*args, "-f", "tsv"], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0].endswith("group\tgroup.lang") and len(lines) == 1 + 2 * 4
    assert lines[3].split("\t")[5] == "10"  # a group row's n: its paired sequences
    code, out, _ = run_cli([*args, "-f", "table"], capsys)
    assert code == 0 and "group lang=en (10 paired sequences)" in out
    page = d / "r.html"
    code, _, _ = run_cli([*args, "--report", str(page)], capsys)
    assert code == 0 and "Per group" in page.read_text() and "lang" in page.read_text()
    code, out, err = run_cli([*args, "--max-groups", "2"], capsys)
    assert code == 3 and "--max-groups" in err and out == ""


def test_saved_halves_merge_to_the_whole(seqs, tmp_path, capsys):
    """Sequences 0-13 and 14-29 saved apart (the second at --sequence-offset 14; a group's
    clusters in both) merge to the whole comparison, bootstrap weights and all."""
    d, lp, lang = seqs
    for part, rows in (("1", slice(0, 14)), ("2", slice(14, 30))):
        write_lp(tmp_path / f"a{part}.parquet", lp["a"][rows], lang[rows])
        write_lp(tmp_path / f"b{part}.parquet", lp["b"][rows], None)
    common = ["--pred-col", "lp", "--group-by", "lang", "--test", "bootstrap", "--resamples", "300"]
    common += ["--name", "A", "--name", "B", "-f", "json"]
    code, whole, err = run_cli([*lp_args(str(d / "a.parquet"), str(d / "b.parquet")), *common], capsys)
    assert code == 0, err
    tokens_1 = sum(len(x) for x in lp["a"][:14])
    for part, extra in (("1", []), ("2", ["--sequence-offset", "14", "--row-offset", str(tokens_1)])):
        files = (str(tmp_path / f"a{part}.parquet"), str(tmp_path / f"b{part}.parquet"))
        state = str(tmp_path / f"{part}.state")
        code, _, err = run_cli([*lp_args(*files), *common, *extra, "--save-state", state], capsys)
        assert code == 0, err
    code, merged, err = run_cli(
        ["merge", str(tmp_path / "2.state"), str(tmp_path / "1.state"), "-f", "json"], capsys
    )
    assert code == 0, err
    assert "warning" not in err  # --sequence-offset and --row-offset (tokens): no overlap
    w, m = json.loads(whole), json.loads(merged)
    assert [g["key"] for g in w["groups"]] == [g["key"] for g in m["groups"]]
    for gw, gm in zip(w["groups"], m["groups"], strict=True):
        cw, cm = gw["comparisons"][0], gm["comparisons"][0]
        assert cw["n"] == cm["n"] and cw["verdict"] == cm["verdict"]
        for key in ("delta", "p_value", "p_adjusted"):
            assert close(cw[key], cm[key], 1e-11)
        assert all(close(a, b, 1e-11) for a, b in zip(cw["ci"], cm["ci"], strict=True))
        for mw, mm in zip(gw["models"], gm["models"], strict=True):
            assert close(mw["value"], mm["value"], 1e-11) and mw["n"] == mm["n"]


def test_sharded_logprobs_equal_the_single_files(seqs, tmp_path):
    d, lp, lang = seqs
    for k in "ab":
        (tmp_path / k).mkdir()
        for part, rows in (("0", slice(0, 17)), ("1", slice(17, 30))):
            write_lp(tmp_path / k / f"part-{part}.parquet", lp[k][rows], lang[rows] if k == "a" else None)
    opts = {"logprobs": True, "pred_col": "lp", "group_by": "lang", "test": "permutation", "resamples": 200}
    single = compare(
        "perplexity", None, [str(d / "a.parquet"), str(d / "b.parquet")], names=["a", "b"], **opts
    )
    sharded = compare(
        "perplexity", None, [str(tmp_path / "a"), str(tmp_path / "b")], names=["a", "b"], **opts
    )
    for key in LANGS:
        a, b = block(single, key).comparisons[0], block(sharded, key).comparisons[0]
        assert a.n == b.n
        for x, y in (
            (a.delta, b.delta),
            (a.low, b.low),
            (a.p_value, b.p_value),
            (a.p_adjusted, b.p_adjusted),
        ):
            assert close(x, y, 1e-11)
