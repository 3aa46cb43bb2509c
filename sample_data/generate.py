"""Regenerate every file in sample_data/ (deterministic: same bytes on every run).

    python sample_data/generate.py

The exercise files carry the lesson's own numbers (shared/seed/loss-functions-lesson.txt);
the others are small, realistic-looking data sets for `make demo`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    lines = [",".join(header)] + [
        ",".join(repr(v) if isinstance(v, float) else str(v) for v in r) for r in rows
    ]
    path.write_text("\n".join(lines) + "\n")


def logits_with_target_probability(p_target: list[float], vocab: int, target: list[int]) -> np.ndarray:
    """log-probabilities whose softmax puts p_target on the target and spreads the rest evenly."""
    out = np.empty((len(p_target), vocab))
    for i, (p, t) in enumerate(zip(p_target, target, strict=True)):
        out[i, :] = math.log((1.0 - p) / (vocab - 1))
        out[i, t] = math.log(p)
    return out


def main() -> None:
    # Exercise 1: predictions [2.5, 3.0, 4.5], true values [2.0, 3.5, 4.0]; MSE = 0.25.
    write_csv(HERE / "exercise1_preds.csv", ["prediction"], [[2.5], [3.0], [4.5]])
    write_csv(HERE / "exercise1_targets.csv", ["target"], [[2.0], [3.5], [4.0]])

    # Exercise 2: the correct class gets p = 0.7, then p = 0.1; CE = -log 0.7, -log 0.1.
    write_csv(HERE / "exercise2_probs.csv", ["cat", "dog", "bird"], [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]])
    write_csv(HERE / "exercise2_targets.csv", ["label"], [[0], [0]])

    # Exercise 3: token cross-entropies averaging 2.3 nats; perplexity = exp(2.3).
    ces = [1.3, 2.3, 3.3, 2.3]
    targets = [3, 14, 15, 92]
    np.save(
        HERE / "exercise3_logits.npy",
        logits_with_target_probability([math.exp(-c) for c in ces], 100, targets),
    )
    np.save(HERE / "exercise3_targets.npy", np.array(targets, dtype=np.int64))

    # "The capital of France is" -> " Paris" (id 15496) over 50,000 tokens, at p = 0.15, 0.9, 0.01.
    paris = [0.15, 0.9, 0.01]
    np.save(HERE / "paris_logits.npy", logits_with_target_probability(paris, 50_000, [15496] * 3))
    np.save(HERE / "paris_targets.npy", np.full(3, 15496, dtype=np.int64))

    rng = np.random.default_rng(20261128)

    # Regression: house prices (in $1000s) and a model's predictions, in Parquet.
    n = 500
    size = rng.uniform(50, 250, n)
    price = 40 + 2.1 * size + rng.normal(0, 25, n)
    predicted = 45 + 2.0 * size + rng.normal(0, 10, n)
    predicted[rng.choice(n, 5, replace=False)] += rng.normal(0, 150, 5)  # a few bad misses
    pq.write_table(
        pa.table(
            {
                "house_id": np.arange(n),
                "size_m2": size.round(1),
                "price": price.round(2),
                "predicted_price": predicted.round(2),
            }
        ),
        HERE / "houses.parquet",
    )

    # Binary classification: spam probabilities in CSV.
    n = 300
    label = (rng.random(n) < 0.3).astype(int)
    logit = np.where(label == 1, 1.8, -1.8) + rng.normal(0, 1.4, n)
    prob = 1 / (1 + np.exp(-logit))
    write_csv(
        HERE / "spam.csv",
        ["message_id", "prob", "label"],
        [[i, round(float(p), 6), int(y)] for i, (p, y) in enumerate(zip(prob, label, strict=True))],
    )

    # Multi-class: digit logits (N, 10) as float32, labels as int64.
    n = 1000
    labels = rng.integers(0, 10, n)
    logits = rng.normal(0, 1.0, (n, 10)).astype(np.float32)
    logits[np.arange(n), labels] += rng.normal(3.0, 1.5, n).astype(np.float32)
    np.save(HERE / "digits_logits.npy", logits)
    np.save(HERE / "digits_labels.npy", labels.astype(np.int64))


def bigram_model() -> tuple[list[str], np.ndarray, list[np.ndarray]]:
    """A character-level bigram model fitted on bigram/train.txt (add-1/2 smoothing).

    Returns the vocabulary, log P(next | current) as a (V, V) matrix, and the held-out
    sequences (one per line of bigram/heldout.txt) as arrays of character ids.
    """
    d = HERE / "bigram"
    train = (d / "train.txt").read_text(encoding="utf-8")
    held = (d / "heldout.txt").read_text(encoding="utf-8")
    vocab = sorted(set(train) | set(held))
    index = {c: i for i, c in enumerate(vocab)}
    ids = np.array([index[c] for c in train])
    counts = np.zeros((len(vocab), len(vocab)))
    np.add.at(counts, (ids[:-1], ids[1:]), 1.0)
    smoothed = counts + 0.5
    log_p = np.log(smoothed / smoothed.sum(axis=1, keepdims=True))
    sequences = [np.array([index[c] for c in line]) for line in held.split("\n") if line]
    return vocab, log_p, sequences


def bigram_samples() -> None:
    """The held-out passage scored by the bigram model, in every shape losscli reads."""
    import json

    d = HERE / "bigram"
    vocab, log_p, sequences = bigram_model()
    v = len(vocab)
    t_max = max(len(s) for s in sequences)
    # Batched, Hugging Face style: logits at position t predict the id at t + 1 (--shift),
    # padding marked -100 in the ids (and zero logits, which are never scored).
    batched = np.zeros((len(sequences), t_max, v), dtype=np.float32)
    labels = np.full((len(sequences), t_max), -100, dtype=np.int64)
    for b, s in enumerate(sequences):
        batched[b, : len(s)] = log_p[s]
        labels[b, : len(s)] = s
    np.save(d / "logits.npy", batched)
    np.save(d / "input_ids.npy", labels)
    np.savez(d / "bigram.npz", logits=batched, input_ids=labels)
    pq.write_table(
        pa.table(
            {
                "logits": pa.array(
                    [log_p[s].astype(np.float32).tolist() for s in sequences],
                    type=pa.list_(pa.list_(pa.float32())),
                ),
                "input_ids": pa.array([s.tolist() for s in sequences], type=pa.list_(pa.int64())),
            }
        ),
        d / "bigram.parquet",
    )
    # Already shifted and flat: (N, V) logits of every predicting position and its next id.
    flat_logits = np.concatenate([log_p[s[:-1]] for s in sequences]).astype(np.float32)
    flat_targets = np.concatenate([s[1:] for s in sequences])
    np.save(d / "flat_logits.npy", flat_logits)
    np.save(d / "flat_targets.npy", flat_targets)
    # Gathered log-probabilities, as an inference server returns them.
    lps = [log_p[s[:-1], s[1:]] for s in sequences]
    np.save(d / "logprobs.npy", np.concatenate(lps))
    rows = [[b, t + 1, float(lp)] for b, seq_lp in enumerate(lps) for t, lp in enumerate(seq_lp)]
    write_csv(d / "logprobs.csv", ["sequence", "position", "logprob"], rows)
    pq.write_table(pa.table({"logprobs": pa.array([x.tolist() for x in lps])}), d / "logprobs.parquet")
    with open(d / "completions.jsonl", "w", encoding="utf-8") as fp:  # echo=True style: first is null
        for s, seq_lp in zip(sequences, lps, strict=True):
            text = "".join(vocab[i] for i in s)
            fp.write(json.dumps({"text": text, "token_logprobs": [None, *seq_lp.tolist()]}) + "\n")
    with open(d / "chat.jsonl", "w", encoding="utf-8") as fp:  # chat-completions style
        for s, seq_lp in zip(sequences, lps, strict=True):
            content = [
                {"token": vocab[i], "logprob": lp}
                for i, lp in zip(s[1:].tolist(), seq_lp.tolist(), strict=True)
            ]
            fp.write(json.dumps({"choices": [{"logprobs": {"content": content}}]}) + "\n")


def compare_samples() -> None:
    """Two models of one task for `losscli compare`: review ratings (1-5 stars) of 1,000
    reviews in three languages. model_b is clearly better than model_a; model_a_retrained is
    model_a retrained with another seed: its MSE differs a little, not significantly."""
    rng = np.random.default_rng(20261201)
    n = 1000
    lang = rng.choice(["de", "en", "fr"], n, p=[0.3, 0.5, 0.2])
    quality = rng.normal(0, 1, n)
    rating = np.clip(np.round(3 + 1.2 * quality + rng.normal(0, 0.5, n)), 1, 5)
    shared = rng.normal(0, 0.6, n)  # what both versions of model A get wrong alike
    model_a = 3 + 1.1 * quality + shared + rng.normal(0, 0.35, n)
    model_a_retrained = 3 + 1.1 * quality + shared + rng.normal(0, 0.35, n)
    model_b = 3 + 1.15 * quality + 0.8 * shared + rng.normal(0, 0.3, n)
    write_csv(HERE / "ratings_targets.csv", ["review_id", "rating", "lang"],
              [[i, int(r), g] for i, (r, g) in enumerate(zip(rating, lang, strict=True))])
    for name, pred in (("model_a", model_a), ("model_a_retrained", model_a_retrained), ("model_b", model_b)):
        write_csv(HERE / f"ratings_{name}.csv", ["review_id", "predicted_rating"],
                  [[i, round(float(p), 4)] for i, p in enumerate(pred)])


if __name__ == "__main__":
    main()
    bigram_samples()
    compare_samples()
