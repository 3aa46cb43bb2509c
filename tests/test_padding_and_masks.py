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


# ---- second fresh-eyes round ----------------------------------------------------------------------


def test_a_csv_mask_of_one_column_fits_and_a_wide_one_is_refused(tmp_path: Path) -> None:
    logits, ids, mask = _batch()
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "ids.npy", ids)
    pd.DataFrame({"attention_mask": mask.reshape(-1)}).to_csv(tmp_path / "flat.csv", index=False)
    pd.DataFrame(mask).to_csv(tmp_path / "wide.csv", index=False)
    base = ["perplexity", "--logits", tmp_path / "logits.npy", "--targets", tmp_path / "ids.npy"]
    for shift in (False, True):
        flags = ["--shift"] if shift else []
        result = run_cli(*base, "--mask", tmp_path / "flat.csv", *flags, "-f", "json")
        assert result.code == 0, result.stderr
        want, n = masked_nll(logits, ids, mask, shift)
        assert result.json()["cross_entropy"] == pytest.approx(want, rel=1e-12) and result.json()["n"] == n
    wide = run_cli(*base, "--mask", tmp_path / "wide.csv")
    assert wide.code == 3 and "table of 6 columns" in wide.stderr and "Traceback" not in wide.stderr


def test_a_dict_of_2d_arrays_is_a_batch_encoding() -> None:
    logits, ids, mask = _batch()
    report = losscli.evaluate("perplexity", logits, {"input_ids": ids, "attention_mask": mask}, shift=True)
    want, n = masked_nll(logits, ids, mask, True)
    assert report.to_dict()["cross_entropy"] == pytest.approx(want, rel=1e-12) and report.n == n
    assert losscli.perplexity(logits, ids, shift=True, mask=mask) == pytest.approx(math.exp(want), rel=1e-12)


def test_an_attention_mask_beside_gathered_log_probs_is_applied_or_said(tmp_path: Path) -> None:
    logits, ids, mask = _batch()
    top = logits.max(axis=-1, keepdims=True)
    logz = top + np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))
    lp = np.take_along_axis((logits - logz)[:, :-1], ids[:, 1:, None], axis=-1)[..., 0]  # HF's gather
    want, n = masked_nll(logits, ids, mask, True)
    table = pa.table({"logprobs": lp.tolist(), "attention_mask": mask[:, 1:].tolist()})
    pq.write_table(table, tmp_path / "lp.parquet")
    applied = run_cli("perplexity", "--logprobs", tmp_path / "lp.parquet", "-f", "json")
    assert applied.code == 0, applied.stderr
    assert applied.json()["cross_entropy"] == pytest.approx(want, rel=1e-12) and applied.json()["n"] == n
    np.savez(tmp_path / "lp.npz", logprobs=lp, attention_mask=mask)  # the mask of the ids, one wider
    said = run_cli("perplexity", "--logprobs", tmp_path / "lp.npz", "-f", "json")
    assert said.code == 0 and said.json()["n"] == lp.size
    assert any("attention_mask[:, 1:]" in w for w in said.json()["warnings"]), said.stderr


@pytest.mark.parametrize("case", ["late rows", "list column", "one pad a row", "-inf"])
def test_padding_runs_are_said_wherever_they_are(tmp_path: Path, case: str) -> None:
    rng = np.random.default_rng(8)
    lp = np.log(rng.uniform(0.01, 1.0, size=(6000 if case == "late rows" else 50, 8)))
    pad = -np.inf if case == "-inf" else 0.0
    if case == "late rows":
        lp[5000:, 5:] = pad  # sorted by length: the short rows come last
    elif case == "one pad a row":
        lp[:, -1] = pad  # F.pad(lp, (0, 1))
    else:
        lp[10:, 6:] = pad
    path = tmp_path / ("lp.parquet" if case == "list column" else "lp.npy")
    if case == "list column":
        pq.write_table(pa.table({"logprobs": lp.tolist()}), path)
    else:
        np.save(path, lp)
    result = run_cli("perplexity", "--logprobs", path, "-f", "json")
    assert result.code == 0
    said = [w for w in result.json().get("warnings", []) if "as padding does" in w]
    assert said, result.stderr
    assert ("pad with 1.0" in said[0]) if case == "-inf" else ("--pad-value 0" in said[0])


def test_mask_col_in_a_plain_array_points_at_mask_file(tmp_path: Path) -> None:
    logits, ids, _ = _batch()
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "ids.npy", ids)
    result = run_cli(
        "perplexity", "--logits", tmp_path / "logits.npy", "--targets", tmp_path / "ids.npy",
        "--mask-col", "attention_mask",
    )  # fmt: skip
    assert result.code == 2 and "--mask FILE" in result.stderr, result.stderr
