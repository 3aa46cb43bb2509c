"""Language-model evaluation: every input shape against float64 references written here."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math

import numpy as np
import pytest

import losscli
from losscli.engine import choose_chunk_rows
from losscli.readers.memory import ArrayReader

import references as ref
from conftest import SAMPLES, run_cli

BIGRAM = SAMPLES / "bigram"


def corpus_ppl(z: np.ndarray, ids: np.ndarray, shift: bool, ignore: int = -100) -> tuple[float, int]:
    """exp(token-weighted mean NLL) over (B, T, V) logits, written with plain loops and fsum."""
    terms = []
    b_count, t_count = ids.shape
    for b in range(b_count):
        for t in range(t_count - (1 if shift else 0)):
            y = int(ids[b, t + 1] if shift else ids[b, t])
            if y == ignore:
                continue
            terms.append(-ref.log_softmax_row(z[b, t].astype(np.float64).tolist())[y])
    return math.exp(math.fsum(terms) / len(terms)), len(terms)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    rng = np.random.default_rng(4)
    b, t, v = 4, 9, 11
    z = rng.normal(0, 2.5, (b, t, v))
    ids = rng.integers(0, v, (b, t))
    ids[1, 6:] = -100  # right padding
    ids[3, :2] = -100  # a masked prompt
    d = tmp_path_factory.mktemp("batch")
    np.save(d / "z.npy", z)
    np.save(d / "ids.npy", ids)
    return d, z, ids


@pytest.mark.parametrize("shift", [False, True])
@pytest.mark.parametrize("chunk", [1, 5, 1000])
def test_batched_logits_with_padding(batch, shift: bool, chunk: int) -> None:
    d, z, ids = batch
    want, n = corpus_ppl(z, ids, shift)
    report = losscli.evaluate("perplexity", d / "z.npy", d / "ids.npy", shift=shift, chunk_size=chunk)
    assert report.value == pytest.approx(want, rel=1e-12)
    assert report.n == n
    assert report.figure("sequences") == 4
    padded = int(np.count_nonzero(ids[:, 1:] == -100)) if shift else int(np.count_nonzero(ids == -100))
    assert report.ignored == padded  # the shift's dropped last tokens are not "ignored"


def test_shift_on_flat_logits_needs_the_batch_shape(batch) -> None:
    d, z, ids = batch
    flat = d / "flat.npy"
    np.save(flat, z.reshape(-1, z.shape[-1]))
    # (N, V) logits with (B, T) ids: the ids' shape says where sequences end
    report = losscli.evaluate("perplexity", flat, d / "ids.npy", shift=True)
    assert report.value == pytest.approx(corpus_ppl(z, ids, True)[0], rel=1e-12)


def test_threads_and_shift(batch) -> None:
    d, _z, _ids = batch
    one = losscli.evaluate("perplexity", d / "z.npy", d / "ids.npy", shift=True, chunk_size=3, threads=1)
    two = losscli.evaluate("perplexity", d / "z.npy", d / "ids.npy", shift=True, chunk_size=3, threads=2)
    assert two.value == pytest.approx(one.value, rel=1e-12)
    assert two.figure("mean_sequence_perplexity") == pytest.approx(
        one.figure("mean_sequence_perplexity"), rel=1e-12
    )


def bigram_reference() -> tuple[float, list[float]]:
    """The bigram model's own probabilities, refitted here from train.txt: corpus and
    per-sequence perplexity of the held-out lines (each character predicts the next)."""
    train = (BIGRAM / "train.txt").read_text(encoding="utf-8")
    held = (BIGRAM / "heldout.txt").read_text(encoding="utf-8")
    vocab = sorted(set(train) | set(held))
    counts: dict[tuple[str, str], int] = {}
    for a, b in itertools.pairwise(train):
        counts[(a, b)] = counts.get((a, b), 0) + 1
    row_total = {a: sum(counts.get((a, b), 0) for b in vocab) for a in vocab}
    all_terms, per_seq = [], []
    for line in [x for x in held.split("\n") if x]:
        terms = [
            -math.log((counts.get((a, b), 0) + 0.5) / (row_total[a] + 0.5 * len(vocab)))
            for a, b in itertools.pairwise(line)
        ]
        all_terms += terms
        per_seq.append(math.exp(math.fsum(terms) / len(terms)))
    return math.exp(math.fsum(all_terms) / len(all_terms)), per_seq


@pytest.mark.parametrize(
    "args",
    [
        ["--logits", BIGRAM / "logits.npy", "--targets", BIGRAM / "input_ids.npy", "--shift"],
        ["--logits", BIGRAM / "bigram.npz", "--pred-col", "logits", "--target-col", "input_ids", "--shift"],
        [
            "--logits",
            BIGRAM / "bigram.parquet",
            "--pred-col",
            "logits",
            "--target-col",
            "input_ids",
            "--shift",
        ],
        ["--logprobs", BIGRAM / "logprobs.csv", "--seq-col", "sequence"],
        ["--logprobs", BIGRAM / "logprobs.parquet"],
        ["--logprobs", BIGRAM / "completions.jsonl"],
        ["--logprobs", BIGRAM / "chat.jsonl"],
    ],
    ids=[
        "npy-batched",
        "npz",
        "parquet-lists",
        "csv-logprobs",
        "parquet-logprobs",
        "jsonl-completions",
        "jsonl-chat",
    ],
)
def test_bigram_sample_in_every_shape(args) -> None:
    want, per_seq = bigram_reference()
    r = run_cli("perplexity", *args, "-f", "json")
    assert r.code == 0, r.stderr
    data = r.json()
    rel = 1e-6 if any("npy" in str(a) or "npz" in str(a) or "parquet" in str(a) for a in args[:2]) else 1e-12
    assert data["value"] == pytest.approx(want, rel=rel)
    assert data["sequences"] == 3
    assert data["mean_sequence_perplexity"] == pytest.approx(sum(per_seq) / 3, rel=rel)
    assert data["median_sequence_perplexity"] == pytest.approx(sorted(per_seq)[1], rel=rel)


def test_flat_logprobs_and_flat_logits_agree() -> None:
    want, _ = bigram_reference()
    a = losscli.evaluate("perplexity", None, logprobs=BIGRAM / "logprobs.npy")
    b = losscli.evaluate("perplexity", BIGRAM / "flat_logits.npy", BIGRAM / "flat_targets.npy")
    assert a.value == pytest.approx(want, rel=1e-12)
    assert b.value == pytest.approx(want, rel=1e-6)
    assert a.n == b.n


def test_jsonl_null_first_token_is_skipped_and_counted() -> None:
    data = run_cli("perplexity", "--logprobs", BIGRAM / "completions.jsonl", "-f", "json").json()
    assert data["ignored"] == 3  # one null per record


def test_fp16_logits_near_60000_are_finite_and_right(tmp_path) -> None:
    z = np.full((4, 8), 59000.0, dtype=np.float16)
    z[:, 0] = 60000.0  # finite in float16 (max 65504); exp would overflow in float16
    ids = np.array([0, 1, 0, 7])
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "ids.npy", ids)
    data = run_cli(
        "perplexity", "--logits", tmp_path / "z.npy", "--targets", tmp_path / "ids.npy", "-f", "json"
    ).json()
    want = math.exp(
        math.fsum(-ref.log_softmax_row(z[i].astype(np.float64).tolist())[int(ids[i])] for i in range(4)) / 4
    )
    assert data["status"] == "ok"
    assert data["value"] == pytest.approx(want, rel=1e-6)


def test_chunk_planning_keeps_a_128k_vocabulary_in_budget() -> None:
    from losscli.engine import DEFAULT_CHUNK_BYTES

    logits = ArrayReader(np.zeros((3, 128_000), dtype=np.float32), "logits")
    rows = choose_chunk_rows([logits], None)
    assert rows >= 1
    assert rows * 128_000 * 4 <= DEFAULT_CHUNK_BYTES
    f64 = ArrayReader(np.zeros((3, 256_000), dtype=np.float64), "logits")
    assert choose_chunk_rows([f64], None) * 256_000 * 8 <= max(DEFAULT_CHUNK_BYTES, 256_000 * 8)


def test_mean_of_sequence_perplexities_is_not_the_corpus_perplexity(tmp_path) -> None:
    # sequence 0: one token at p = 1/2 (perplexity 2); sequence 1: three tokens at p = 1/8 (8)
    path = tmp_path / "lp.csv"
    path.write_text(
        f"seq,logprob\n0,{math.log(0.5)!r}\n1,{math.log(0.125)!r}\n1,{math.log(0.125)!r}\n1,{math.log(0.125)!r}\n"
    )
    data = run_cli("perplexity", "--logprobs", path, "--seq-col", "seq", "-f", "json").json()
    assert data["value"] == pytest.approx(2 ** (10 / 4), rel=1e-12)  # exp((ln 2 + 9 ln 2) / 4)
    assert data["mean_sequence_perplexity"] == pytest.approx(5.0, rel=1e-12)
    assert data["median_sequence_perplexity"] == pytest.approx(5.0, rel=1e-12)
    assert data["sequences"] == 2 and data["n"] == 4


def test_bits_per_byte_and_word_perplexity(tmp_path) -> None:
    np.save(tmp_path / "lp.npy", np.full(8, -math.log(2.0)))  # 8 tokens of exactly one bit
    text = tmp_path / "t.txt"
    text.write_text("ab cd")  # 5 UTF-8 bytes, 2 words
    data = run_cli("perplexity", "--logprobs", tmp_path / "lp.npy", "--text", text, "-f", "json").json()
    assert data["bits_per_token"] == pytest.approx(1.0, rel=1e-15)
    assert data["bits_per_byte"] == pytest.approx(8 / 5, rel=1e-15)
    assert data["byte_perplexity"] == pytest.approx(2 ** (8 / 5), rel=1e-12)
    assert data["word_perplexity"] == pytest.approx(2**4, rel=1e-12)
    multibyte = tmp_path / "u.txt"
    multibyte.write_text("é日", encoding="utf-8")  # 2 + 3 bytes
    data = run_cli("perplexity", "--logprobs", tmp_path / "lp.npy", "--text", multibyte, "-f", "json").json()
    assert data["bits_per_byte"] == pytest.approx(8 / 5, rel=1e-15)
    data = run_cli(
        "perplexity", "--logprobs", tmp_path / "lp.npy", "--bytes", "4", "--words", "1", "-f", "json"
    ).json()
    assert data["bits_per_byte"] == pytest.approx(2.0, rel=1e-15)
    assert data["word_perplexity"] == pytest.approx(2.0**8, rel=1e-12)


def test_topk_accuracy(batch) -> None:
    d, z, ids = batch
    report = losscli.evaluate("perplexity", d / "z.npy", d / "ids.npy", topk=3)
    flat_z, flat_ids = z.reshape(-1, z.shape[-1]), ids.ravel()
    keep = flat_ids != -100
    rank = np.array([(row > row[y]).sum() for row, y in zip(flat_z[keep], flat_ids[keep], strict=True)])
    assert report.figure("top1_accuracy") == pytest.approx(float(np.mean(rank == 0)), abs=0)
    assert report.figure("topk_accuracy") == pytest.approx(float(np.mean(rank < 3)), abs=0)
    assert report.to_dict()["topk"] == 3


def test_per_example_has_sequence_and_position(batch) -> None:
    d, z, ids = batch
    r = run_cli(
        "perplexity", "--logits", d / "z.npy", "--targets", d / "ids.npy", "--shift", "--per-example", "-"
    )
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert list(rows[0]) == ["row", "sequence", "position", "token_position", "loss"]
    for row in rows:
        b, t = int(row["sequence"]), int(row["position"])
        assert int(row["row"]) == b * ids.shape[1] + t
        assert int(row["token_position"]) == t + 1  # the scored token of the shift
        want = -ref.log_softmax_row(z[b, t].tolist())[int(ids[b, t + 1])]
        assert float(row["loss"]) == pytest.approx(want, rel=1e-12)


def test_sequence_breakdown_in_json(batch) -> None:
    d, z, ids = batch
    data = run_cli("perplexity", "--logits", d / "z.npy", "--targets", d / "ids.npy", "-f", "json").json()
    rows = data["sequence_rows"]
    assert [r["sequence"] for r in rows] == [0, 1, 2, 3]
    assert rows[1]["tokens"] == 6 and rows[3]["tokens"] == 7
    worst = rows[0]["worst_tokens"][0]
    lp = [ref.log_softmax_row(z[0, t].tolist())[int(ids[0, t])] for t in range(ids.shape[1])]
    assert worst["logprob"] == pytest.approx(min(lp), rel=1e-12)
    assert worst["position"] == int(np.argmin(lp)) and worst["target"] == int(ids[0, worst["position"]])


def test_lm_errors(tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"token_logprobs": [null, -1.0]}\n{not json}\n')
    r = run_cli("perplexity", "--logprobs", bad)
    assert r.code == 3 and "line 2" in r.stderr and r.stdout == ""
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"text": "hi"}) + "\n")
    r = run_cli("perplexity", "--logprobs", odd)
    assert r.code == 3 and "token_logprobs" in r.stderr
    pos = tmp_path / "pos.npy"
    np.save(pos, np.array([-1.0, 0.5]))
    r = run_cli("perplexity", "--logprobs", pos)
    assert r.code == 3 and "above 0" in r.stderr
    r = run_cli("perplexity", "--logprobs", pos, "--logits", pos)
    assert r.code == 2
    r = run_cli("mse", pos, pos, "--shift")
    assert r.code == 2


def test_python_api_takes_batched_arrays(batch) -> None:
    _, z, ids = batch
    want, n = corpus_ppl(z, ids, True)
    report = losscli.evaluate("perplexity", z, ids, shift=True)
    assert report.value == pytest.approx(want, rel=1e-12) and report.n == n
    assert losscli.perplexity(z, ids) == pytest.approx(corpus_ppl(z, ids, False)[0], rel=1e-12)
    assert z.shape == (4, 9, 11)  # the caller's array is untouched


@pytest.mark.parametrize("chunk", [1, 4, 7, 64])
def test_flat_logits_are_one_sequence_with_its_worst_tokens(tmp_path, chunk: int) -> None:
    # (N, V) logits with no batch shape: one sequence; its worst tokens are the corpus's worst
    rng = np.random.default_rng(11)
    n, v = 50, 6
    z = rng.normal(0, 2, (n, v))
    ids = rng.integers(0, v, n)
    z[3, ids[3]] = -9.0  # the worst token, repeated at 30 and 9: ties go to the earlier position
    ids[[9, 30]] = ids[3]
    z[[9, 30]] = z[3]
    nll = [-ref.log_softmax_row(z[t].tolist())[int(ids[t])] for t in range(n)]
    report = losscli.evaluate("perplexity", z, ids, chunk_size=chunk, threads=2)
    (row,) = report.sequences
    assert row["tokens"] == n
    assert row["perplexity"] == pytest.approx(math.exp(math.fsum(nll) / n), rel=1e-12)
    want = sorted(range(n), key=lambda t: (-nll[t], t))[: len(row["worst_tokens"])]
    assert want == [3, 9, 30]
    assert [w["position"] for w in row["worst_tokens"]] == want
    assert [w["target"] for w in row["worst_tokens"]] == [int(ids[t]) for t in want]


def test_nan_logit_names_its_row(tmp_path) -> None:
    z = np.zeros((40, 5), dtype=np.float32)
    z[27, 3] = np.nan
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "ids.npy", np.zeros(40, dtype=np.int64))
    d = tmp_path
    r = run_cli("perplexity", "--logits", d / "z.npy", "--targets", d / "ids.npy", "--chunk-size", "16")
    assert r.code == 3 and "row 27" in r.stderr and "NaN" in r.stderr and r.stdout == ""


def test_single_sequence_worst_tokens_do_not_depend_on_arrival_order() -> None:
    # threads hand chunks over in any order: a later tie must give way to an earlier position
    from losscli.state.parts import SequenceStats

    stats = SequenceStats(1)
    for pos in (41, 30, 9, 3):
        stats.update(np.zeros(1, np.int64), np.array([pos]), np.array([5.0]), np.array([7]))
    assert stats.worst_pos[0].tolist() == [3, 9, 30]
    assert stats.tokens[0] == 4 and stats.nll[0] == 20.0
