"""The lesson's worked numbers, through the CLI, from the files in sample_data/."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import SAMPLES, run_cli


def test_exercise_1_mse_is_a_quarter() -> None:
    # (2.5-2)^2 = (3-3.5)^2 = (4.5-4)^2 = 0.25, so the mean is exactly 0.25.
    r = run_cli(
        "mse", SAMPLES / "exercise1_preds.csv", SAMPLES / "exercise1_targets.csv", "--format", "value"
    )
    assert r.code == 0, r.stderr
    assert float(r.stdout) == 0.25
    assert r.stdout == "0.25\n"


def test_exercise_1_rmse_companion() -> None:
    r = run_cli("mse", SAMPLES / "exercise1_preds.csv", SAMPLES / "exercise1_targets.csv", "--format", "json")
    data = r.json()
    assert data["rmse"] == 0.5
    assert data["n"] == 3


def test_exercise_1_mae() -> None:
    r = run_cli(
        "mae", SAMPLES / "exercise1_preds.csv", SAMPLES / "exercise1_targets.csv", "--format", "value"
    )
    assert float(r.stdout) == 0.5


def test_exercise_2_cross_entropy_at_07_and_01() -> None:
    r = run_cli("ce", SAMPLES / "exercise2_probs.csv", SAMPLES / "exercise2_targets.csv", "--format", "json")
    assert r.code == 0, r.stderr
    data = r.json()
    losses = {e["row"]: e["loss"] for e in data["examples"]}
    assert losses[0] == pytest.approx(-math.log(0.7), rel=1e-15)  # ~0.357
    assert losses[1] == pytest.approx(-math.log(0.1), rel=1e-15)  # ~2.303
    assert data["value"] == pytest.approx((-math.log(0.7) - math.log(0.1)) / 2, rel=1e-15)
    assert data["input"] == "probs" and data["input_detected"] is True


def test_exercise_3_perplexity_of_cross_entropy_2_3() -> None:
    r = run_cli(
        "perplexity",
        "--logits",
        SAMPLES / "exercise3_logits.npy",
        "--targets",
        SAMPLES / "exercise3_targets.npy",
        "--format",
        "json",
    )
    assert r.code == 0, r.stderr
    data = r.json()
    assert data["cross_entropy"] == pytest.approx(2.3, rel=1e-13)
    assert data["value"] == pytest.approx(math.exp(2.3), rel=1e-13)  # ~9.97
    assert data["bits_per_token"] == pytest.approx(2.3 / math.log(2), rel=1e-13)
    assert data["n"] == 4


def test_paris_example() -> None:
    r = run_cli(
        "perplexity",
        "--logits",
        SAMPLES / "paris_logits.npy",
        "--targets",
        SAMPLES / "paris_targets.npy",
        "--format",
        "json",
    )
    data = r.json()
    losses = [e["loss"] for e in sorted(data["examples"], key=lambda e: e["row"])]
    assert losses == pytest.approx([-math.log(0.15), -math.log(0.9), -math.log(0.01)], rel=1e-13)
    # The lesson rounds these to 1.9, 0.1 and 4.6.
    assert [round(x, 1) for x in losses] == [1.9, 0.1, 4.6]
    assert all(e["target"] == 15496 and e["predicted"] == 15496 for e in data["examples"])


@pytest.mark.parametrize("vocab", [2, 10, 50_000])
def test_uniform_logits_give_perplexity_v(tmp_path, vocab: int) -> None:
    logits = np.full((7, vocab), 3.25, dtype=np.float32)
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "ids.npy", np.arange(7) % vocab)
    r = run_cli(
        "perplexity", "--logits", tmp_path / "logits.npy", "--targets", tmp_path / "ids.npy", "-f", "value"
    )
    assert r.code == 0, r.stderr
    assert float(r.stdout) == pytest.approx(vocab, rel=1e-6)
