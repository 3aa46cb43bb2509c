"""Gathered log-probabilities of shape (B, T) (issue 11): a 2-D array is B sequences of T
tokens, and --pad-value marks the padding of ragged sequences. References are float64 sums
written here over log-probs gathered with numpy from random logits."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import losscli
from losscli.errors import UsageError

from conftest import run_cli

B, T, V = 5, 7, 13
PAD = 1.0
#: tokens per sequence: one full, one of a single token, the rest in between
LENGTHS = (7, 1, 4, 6, 3)


def gathered(seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """(B, T) log-probs: log_softmax of random logits gathered at random ids, in float64 (the
    test's own), and a float32 copy padded after each sequence's length, as a model gives it."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 3.0, (B, T, V))
    ids = rng.integers(0, V, (B, T))
    shifted = z - z.max(axis=-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    lp = np.take_along_axis(logp, ids[..., None], axis=-1)[..., 0]
    padded = lp.astype(np.float32)
    for b, n in enumerate(LENGTHS):
        padded[b, n:] = PAD
    return lp, padded


def reference(padded: np.ndarray) -> dict[str, object]:
    """Corpus perplexity, per-sequence perplexities and counts, from the unpadded tokens only,
    in float64 with math.fsum (the float32 values as stored are what is scored)."""
    seqs = [[-float(x) for x in padded[b, :n]] for b, n in enumerate(LENGTHS)]
    flat = [x for s in seqs for x in s]
    per_seq = [math.exp(math.fsum(s) / len(s)) for s in seqs]
    return {
        "value": math.exp(math.fsum(flat) / len(flat)),
        "n": len(flat),
        "ignored": B * T - len(flat),
        "per_seq": per_seq,
        "mean_seq": math.fsum(per_seq) / len(per_seq),
        "median_seq": float(np.median(per_seq)),
    }


def check(out: dict, ref: dict) -> None:
    assert out["value"] == pytest.approx(ref["value"], rel=1e-9)
    assert out["n"] == ref["n"] and out["ignored"] == ref["ignored"]
    assert out["sequences"] == B
    assert out["mean_sequence_perplexity"] == pytest.approx(ref["mean_seq"], rel=1e-9)
    assert out["median_sequence_perplexity"] == pytest.approx(ref["median_seq"], rel=1e-9)
    rows = out["sequence_rows"]
    assert [r["sequence"] for r in rows] == list(range(B))
    assert [r["tokens"] for r in rows] == list(LENGTHS)
    assert [r["perplexity"] for r in rows] == pytest.approx(ref["per_seq"], rel=1e-9)


def cli_json(*args: object) -> dict:
    r = run_cli("perplexity", *args, "--format", "json")
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bt")
    _, padded = gathered()
    np.save(d / "lp.npy", padded)
    np.savez(d / "lp.npz", padded)  # one array under numpy's own key, arr_0
    np.savez(d / "named.npz", logprobs=padded, other=np.zeros(3))
    return d, padded


@pytest.mark.parametrize("name", ["lp.npy", "lp.npz", "named.npz"])
def test_padded_file_is_b_sequences_of_t_tokens(files, name):
    d, padded = files
    check(cli_json("--logprobs", d / name, "--pad-value", PAD), reference(padded))


@pytest.mark.parametrize("threads", ["1", "2"])
def test_chunks_split_sequences_and_padding(files, threads):
    """Chunks of 4 tokens cut sequences and runs of padding: the same figures."""
    d, padded = files
    out = cli_json("--logprobs", d / "lp.npy", "--pad-value", PAD, "--chunk-size", 4, "--threads", threads)
    check(out, reference(padded))


def test_in_memory_array(files):
    _, padded = files
    ref = reference(padded)
    report = losscli.evaluate("perplexity", logprobs=padded, pad_value=PAD)
    check(report.to_dict(), ref)
    # a float64 torch-like copy: the same positions are padding
    report64 = losscli.evaluate("perplexity", logprobs=padded.astype(np.float64), pad_value=PAD)
    assert report64.value == pytest.approx(ref["value"], rel=1e-9)


def test_unpadded_array_without_pad_value(tmp_path):
    """No padding: every one of the B*T tokens is scored, in B sequences of T; a --pad-value
    that occurs nowhere changes nothing."""
    lp, _ = gathered(seed=3)
    np.save(tmp_path / "full.npy", lp)
    nll = [-float(x) for x in lp.ravel()]
    per_seq = [math.exp(-math.fsum(lp[b].tolist()) / T) for b in range(B)]
    for extra in ((), ("--pad-value", 0.5)):
        out = cli_json("--logprobs", tmp_path / "full.npy", *extra)
        assert out["value"] == pytest.approx(math.exp(math.fsum(nll) / (B * T)), rel=1e-12)
        assert (out["n"], out["ignored"], out["sequences"]) == (B * T, 0, B)
        assert [r["tokens"] for r in out["sequence_rows"]] == [T] * B
        assert [r["perplexity"] for r in out["sequence_rows"]] == pytest.approx(per_seq, rel=1e-12)
    report = losscli.evaluate("perplexity", logprobs=lp)
    assert report.value == pytest.approx(math.exp(math.fsum(nll) / (B * T)), rel=1e-12)


def test_zero_as_pad_value(tmp_path):
    """0.0 may be given (it is refused nowhere) and then every 0.0 is padding, as documented."""
    lp = np.array([[-1.0, -2.0, 0.0], [-0.5, 0.0, 0.0]])
    out = cli_json("--logprobs", _save(tmp_path, lp), "--pad-value", 0.0)
    assert out["value"] == pytest.approx(math.exp((1.0 + 2.0 + 0.5) / 3), rel=1e-12)
    assert (out["n"], out["ignored"]) == (3, 3)
    assert [r["tokens"] for r in out["sequence_rows"]] == [2, 1]


def _save(d, arr: np.ndarray):
    path = d / "x.npy"
    np.save(path, arr)
    return path


def test_padding_without_pad_value_is_refused_with_the_fix(files):
    d, _ = files
    r = run_cli("perplexity", "--logprobs", d / "lp.npy")
    assert r.code == 3 and r.stdout == ""
    assert "above 0" in r.stderr and "--pad-value" in r.stderr and "Traceback" not in r.stderr


def test_positive_log_prob_besides_padding_still_refused(tmp_path):
    lp = np.array([[-1.0, 0.5, PAD], [-0.5, -0.25, PAD]])
    r = run_cli("perplexity", "--logprobs", _save(tmp_path, lp), "--pad-value", PAD)
    assert r.code == 3 and "row 1" in r.stderr and "0.5" in r.stderr, r.stderr


@pytest.mark.parametrize("value", ["nan", "-inf", "inf"])
def test_pad_value_nan_or_infinite_refused(files, value):
    d, _ = files
    r = run_cli("perplexity", "--logprobs", d / "lp.npy", "--pad-value", value)
    assert r.code == 2 and r.stdout == "" and "--pad-value" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    with pytest.raises(UsageError, match="pad_value must be a finite number"):
        losscli.evaluate("perplexity", logprobs=np.zeros((2, 2)) - 1, pad_value=float(value))


def test_pad_value_needs_logprobs(tmp_path):
    z = np.zeros((2, 3, 4))
    ids = np.zeros((2, 3), dtype=np.int64)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "ids.npy", ids)
    r = run_cli(
        "perplexity", "--logits", tmp_path / "z.npy", "--targets", tmp_path / "ids.npy", "--pad-value", 1
    )
    assert r.code == 2 and "--ignore-index" in r.stderr, r.stderr


def test_two_column_csv_keeps_table_meaning(tmp_path):
    """A CSV with named columns is a table: its columns are not T positions of B sequences."""
    path = tmp_path / "lp.csv"
    path.write_text("a,b\n-1.0,-0.5\n-2.0,-0.25\n-0.125,-4.0\n")
    r = run_cli("perplexity", "--logprobs", path)
    assert r.code == 2 and "--pred-col" in r.stderr, r.stderr
    out = cli_json("--logprobs", path, "--pred-col", "b")
    assert out["value"] == pytest.approx(math.exp((0.5 + 0.25 + 4.0) / 3), rel=1e-12)
    assert out["n"] == 3 and out.get("sequences", 1) == 1


def test_help_documents_pad_value():
    r = run_cli("perplexity", "--help")
    text = " ".join(r.stdout.split())
    assert r.code == 0 and "--pad-value V" in text
    assert "B sequences of T tokens" in text and "never occur as a real log-prob" in text
