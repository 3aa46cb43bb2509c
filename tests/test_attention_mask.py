"""Attention masks for perplexity (--mask, --mask-col): padding is not scored and is counted as
ignored, as transformers' ``labels.masked_fill(mask == 0, -100)`` does. Every expected value is
a float64 numpy reference written here, never the program's output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import run_cli

EOS = 50256  # GPT-2: the pad id is the eos id
V = 7


def _batch(eos: int = 5) -> tuple[Any, Any, Any]:
    """Logits (B, T, V) float32, ids (B, T), mask (B, T): right-padded with the eos id, one
    real eos inside the first sequence."""
    rng = np.random.default_rng(11)
    ids = np.array([[1, eos, 3, 2, 4, 6], [2, 3, eos, eos, eos, eos], [4, 1, 0, 2, eos, eos]])
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 0, 0]])
    logits = rng.normal(0, 2, (3, 6, V)).astype(np.float32)
    return logits, ids, mask


def _reference(logits: Any, ids: Any, mask: Any, shift: bool) -> tuple[float, int, int]:
    """The Hugging Face loss (mean NLL), tokens scored, tokens ignored, in float64."""
    lg = logits.astype(np.float64)
    if shift:
        lg, labels, keep = lg[:, :-1], ids[:, 1:], mask[:, 1:] == 1
    else:
        labels, keep = ids, mask == 1
    m = lg.max(-1, keepdims=True)
    logp = lg - m - np.log(np.exp(lg - m).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, labels[..., None], -1)[..., 0]
    return float(nll[keep].mean()), int(keep.sum()), int((~keep).sum())


def _run(*args: Any) -> Any:
    return run_cli("perplexity", *args, "--format", "json")


def _check(result: Any, ref: tuple[float, int, int]) -> dict[str, Any]:
    assert result.code == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    loss, n, ignored = ref
    assert doc["cross_entropy"] == pytest.approx(loss, rel=1e-6)
    assert doc["n"] == n
    assert doc["ignored"] == ignored
    return doc


@pytest.mark.parametrize("shift", [False, True])
@pytest.mark.parametrize("threads", ["1", "2"])
def test_npy_mask_matches_hf_loss(tmp_path: Path, shift: bool, threads: str) -> None:
    logits, ids, mask = _batch()
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "mask.npy", mask)
    args = ["--logits", tmp_path / "logits.npy", "--targets", tmp_path / "ids.npy"]
    args += ["--mask", tmp_path / "mask.npy", "--threads", threads, "--chunk-size", "4"]
    _check(_run(*args, *(["--shift"] if shift else [])), _reference(logits, ids, mask, shift))
