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


if __name__ == "__main__":
    main()
