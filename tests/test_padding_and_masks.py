"""Padding that is not marked, or marked ambiguously, is never scored silently: an attention
mask beside the ids is applied, a mask in another layout than the ids is read, and padding
runs in (B, T) log-probs without --pad-value are said. References are written here in numpy:
Hugging Face's masked causal-LM loss is cross_entropy over labels = ids.masked_fill(mask == 0,
-100), shifted by one."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import losscli

from conftest import run_cli

B, T, V = 3, 6, 11
PAD = 10  # the pad id is a real token id too (GPT-2 pads with its eos)


def _batch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(B, T, V)) * 2
    ids = rng.integers(0, V - 1, size=(B, T))
    mask = np.ones((B, T), dtype=np.int64)
    mask[1, :2] = 0  # left padding
    mask[2, 4:] = 0  # right padding
    ids[mask == 0] = PAD
    ids[0, 2] = PAD  # a real eos inside a sequence: scored
    return logits, ids, mask


def masked_nll(logits: np.ndarray, ids: np.ndarray, mask: np.ndarray, shift: bool) -> tuple[float, int]:
    """Mean NLL over unmasked targets, in float64 (log-sum-exp written out)."""
    if shift:
        logits, ids, mask = logits[:, :-1], ids[:, 1:], mask[:, 1:]
    top = logits.max(axis=-1, keepdims=True)
    logz = (top + np.log(np.exp(logits - top).sum(axis=-1, keepdims=True)))[..., 0]
    picked = np.take_along_axis(logits, ids[..., None], axis=-1)[..., 0]
    nll = (logz - picked)[mask == 1]
    return math.fsum(nll.tolist()) / len(nll), len(nll)


@pytest.mark.parametrize("shift", [False, True])
def test_an_attention_mask_beside_the_ids_is_applied_and_no_mask_scores_padding(
    tmp_path: Path, shift: bool
) -> None:
    logits, ids, mask = _batch()
    np.save(tmp_path / "logits.npy", logits)
    np.savez(tmp_path / "enc.npz", input_ids=ids, attention_mask=mask)
    args = [
        "perplexity",
        "--logits",
        tmp_path / "logits.npy",
        "--targets",
        tmp_path / "enc.npz",
        "-f",
        "json",
    ]
    args += ["--shift"] if shift else []
    result = run_cli(*args)
    assert result.code == 0, result.stderr
    want, n = masked_nll(logits, ids, mask, shift)
    data = result.json()
    assert data["cross_entropy"] == pytest.approx(want, rel=1e-12) and data["n"] == n
    assert data["columns"]["mask"]["columns"] == ["attention_mask"]
    assert "attention_mask" in result.stderr and "--no-mask" in result.stderr
    unmasked = run_cli(*args, "--no-mask").json()
    everything, n_all = masked_nll(logits, ids, np.ones_like(mask), shift)
    assert unmasked["cross_entropy"] == pytest.approx(everything, rel=1e-12) and unmasked["n"] == n_all


def test_an_attention_mask_column_of_a_parquet_table_is_applied(tmp_path: Path) -> None:
    logits, ids, mask = _batch()
    table = pa.table(
        {
            "logits": [row.tolist() for row in logits],
            "input_ids": ids.tolist(),
            "attention_mask": mask.tolist(),
        }
    )
    pq.write_table(table, tmp_path / "lm.parquet")
    result = run_cli(
        "perplexity", "--logits", tmp_path / "lm.parquet", "--pred-col", "logits",
        "--target-col", "input_ids", "--shift", "-f", "json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    want, n = masked_nll(logits, ids, mask, True)
    assert result.json()["cross_entropy"] == pytest.approx(want, rel=1e-12) and result.json()["n"] == n


def test_a_mask_as_a_parquet_list_column_fits_ids_of_shape_b_t(tmp_path: Path) -> None:
    logits, ids, mask = _batch()
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "ids.npy", ids)
    pd.DataFrame({"attention_mask": list(mask)}).to_parquet(tmp_path / "mask.parquet")
    result = run_cli(
        "perplexity", "--logits", tmp_path / "logits.npy", "--targets", tmp_path / "ids.npy",
        "--mask", tmp_path / "mask.parquet", "--shift", "-f", "json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    want, n = masked_nll(logits, ids, mask, True)
    assert result.json()["cross_entropy"] == pytest.approx(want, rel=1e-12) and result.json()["n"] == n
    pd.DataFrame({"attention_mask": [list(r[:4]) for r in mask]}).to_parquet(tmp_path / "short.parquet")
    short = run_cli(
        "perplexity", "--logits", tmp_path / "logits.npy", "--targets", tmp_path / "ids.npy",
        "--mask", tmp_path / "short.parquet",
    )  # fmt: skip
    assert short.code == 3 and "short.parquet" in short.stderr and "(3, 6)" in short.stderr, short.stderr


@pytest.mark.parametrize("kind", ["ndarray", "list", "bool"])
def test_the_python_mask_takes_arrays(kind: str) -> None:
    logits, ids, mask = _batch()
    given = {"ndarray": mask, "list": mask.tolist(), "bool": mask.astype(bool)}[kind]
    report = losscli.evaluate("perplexity", logits, ids, mask=given, shift=True)
    want, n = masked_nll(logits, ids, mask, True)
    assert report.to_dict()["cross_entropy"] == pytest.approx(want, rel=1e-12) and report.n == n


def test_the_table_shows_token_positions_under_shift(tmp_path: Path) -> None:
    """Under --shift, logits position t scores ids[t + 1]: the table shows t + 1, where the
    target is found in the ids."""
    logits, ids, _ = _batch()
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "ids.npy", ids)
    args = ["perplexity", "--logits", tmp_path / "logits.npy", "--targets", tmp_path / "ids.npy", "--shift"]
    data = run_cli(*args, "-f", "json").json()
    table = run_cli(*args, "-f", "table", env={"COLUMNS": "250"}).stdout
    assert "worst tokens (token position: target id, log-prob)" in table
    for row in data["sequence_rows"]:
        for w in row["worst_tokens"]:
            assert w["token_position"] == w["position"] + 1
            assert ids[row["sequence"], w["token_position"]] == w["target"]
        first = row["worst_tokens"][0]
        assert f"{first['token_position']}: {first['target']}, " in table


# ---- (B, T) log-probs ---------------------------------------------------------------------------


def _gathered(pad: float) -> tuple[np.ndarray, list[float]]:
    rng = np.random.default_rng(2)
    lp = -rng.exponential(size=(4, 5))
    lp[1, 3:] = pad  # right padding
    lp[3, 1:] = pad
    real = [v for (b, t), v in np.ndenumerate(lp) if not ((b == 1 and t >= 3) or (b == 3 and t >= 1))]
    return lp, real


@pytest.mark.parametrize("pad", [0.0, -100.0])
def test_unmarked_padding_runs_in_b_t_log_probs_are_said_with_the_option(tmp_path: Path, pad: float) -> None:
    lp, real = _gathered(pad)
    np.save(tmp_path / "lp.npy", lp)
    result = run_cli("perplexity", "--logprobs", tmp_path / "lp.npy", "-f", "json")
    assert result.code == 0
    assert any(f"--pad-value {pad:g}" in w for w in result.json()["warnings"]), result.stderr
    assert result.json()["n"] == lp.size  # scored as given, not guessed away
    marked = run_cli("perplexity", "--logprobs", tmp_path / "lp.npy", "--pad-value", pad, "-f", "json").json()
    assert marked["value"] == pytest.approx(math.exp(-math.fsum(real) / len(real)), rel=1e-12)
    assert marked["n"] == len(real)
    assert any("a real log-prob can take" in w for w in marked["warnings"])  # 0 and -100 are log-probs


def test_log_probs_without_padding_runs_give_no_padding_warning(tmp_path: Path) -> None:
    lp = -np.random.default_rng(4).exponential(size=(6, 5))
    np.save(tmp_path / "lp.npy", lp)
    result = run_cli("perplexity", "--logprobs", tmp_path / "lp.npy", "-f", "json")
    assert result.code == 0 and "warnings" not in result.json(), result.stderr
    positive = run_cli("perplexity", "--logprobs", tmp_path / "lp.npy", "--pad-value", "1", "-f", "json")
    assert "warnings" not in positive.json()
