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


@pytest.mark.parametrize("shift", [False, True])
def test_npz_keys_mask_col_in_the_ids_file(tmp_path: Path, shift: bool) -> None:
    logits, ids, mask = _batch()
    np.save(tmp_path / "logits.npy", logits)
    np.savez(tmp_path / "batch.npz", input_ids=ids, attention_mask=mask)
    args = ["--logits", tmp_path / "logits.npy", "--targets", tmp_path / "batch.npz"]
    args += ["--target-col", "input_ids", "--mask-col", "attention_mask"]
    _check(_run(*args, *(["--shift"] if shift else [])), _reference(logits, ids, mask, shift))


def test_npz_one_file_holding_everything(tmp_path: Path) -> None:
    logits, ids, mask = _batch()
    np.savez(tmp_path / "all.npz", logits=logits, input_ids=ids, attention_mask=mask)
    path = tmp_path / "all.npz"
    args = ["--logits", path, "--pred-col", "logits", "--target-col", "input_ids"]
    _check(_run(*args, "--mask-col", "attention_mask", "--shift"), _reference(logits, ids, mask, True))


@pytest.mark.parametrize("shift", [False, True])
def test_parquet_list_columns(tmp_path: Path, shift: bool) -> None:
    """Unpadded sequences as list columns, the mask a list column of the ids' file."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    logits, ids, mask = _batch()
    lens = [6, 5, 6]  # lists of their own lengths; masks still drop tokens inside them
    table = pa.table(
        {
            "input_ids": [ids[b, : lens[b]].tolist() for b in range(3)],
            "attention_mask": [mask[b, : lens[b]].tolist() for b in range(3)],
        }
    )
    pq.write_table(table, tmp_path / "ids.parquet")
    flat = np.concatenate([logits[b, : lens[b]] for b in range(3)])
    np.save(tmp_path / "logits.npy", flat)
    terms = [
        _reference(logits[b : b + 1, : lens[b]], ids[b : b + 1, : lens[b]], mask[b : b + 1, : lens[b]], shift)
        for b in range(3)
    ]
    n = sum(t[1] for t in terms)
    want = (sum(t[0] * t[1] for t in terms) / n, n, sum(t[2] for t in terms))
    args = ["--logits", tmp_path / "logits.npy", "--targets", tmp_path / "ids.parquet"]
    args += ["--target-col", "input_ids", "--mask-col", "attention_mask"]
    _check(_run(*args, *(["--shift"] if shift else [])), want)


def test_eos_equal_to_pad_real_eos_is_scored(tmp_path: Path) -> None:
    """GPT-2 pads with its eos id: the mask, not the id, says what is padding."""
    rng = np.random.default_rng(3)
    vocab = EOS + 1
    ids = np.array([[10, EOS, 20, EOS], [30, 40, EOS, EOS]])
    mask = np.array([[1, 1, 1, 1], [1, 1, 1, 0]])  # the eos at [1, 2] is real, [1, 3] is padding
    logits = rng.normal(0, 1, (2, 4, vocab)).astype(np.float32)
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "mask.npy", mask)
    args = [
        "--logits",
        tmp_path / "logits.npy",
        "--targets",
        tmp_path / "ids.npy",
        "--mask",
        tmp_path / "mask.npy",
    ]
    want = _reference(logits, ids, mask, True)
    assert want[1:] == (5, 1)  # 6 shifted labels: the three real eos are scored, the pad is not
    _check(_run(*args, "--shift"), want)


def test_flat_mask_and_bool_mask(tmp_path: Path) -> None:
    logits, ids, mask = _batch()
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "mask.npy", mask.ravel().astype(bool))
    args = [
        "--logits",
        tmp_path / "logits.npy",
        "--targets",
        tmp_path / "ids.npy",
        "--mask",
        tmp_path / "mask.npy",
    ]
    _check(_run(*args, "--shift"), _reference(logits, ids, mask, True))


def test_mask_shape_mismatch_exit_3(tmp_path: Path) -> None:
    logits, ids, mask = _batch()
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "mask.npy", mask[:, :5])
    args = [
        "--logits",
        tmp_path / "logits.npy",
        "--targets",
        tmp_path / "ids.npy",
        "--mask",
        tmp_path / "mask.npy",
    ]
    result = _run(*args)
    assert result.code == 3, result.stderr
    assert "mask.npy" in result.stderr and "Traceback" not in result.stderr
    np.save(tmp_path / "mask.npy", mask.reshape(6, 3))  # same count, other (B, T)
    result = _run(*args)
    assert result.code == 3 and "mask.npy" in result.stderr


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("bad", [2, 0.5, -1])
def test_mask_values_other_than_0_1_exit_3(tmp_path: Path, bad: float, threads: str) -> None:
    logits, ids, mask = _batch()
    m = mask.astype(np.float64)
    m[2, 1] = bad
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "mask.npy", m)
    args = [
        "--logits",
        tmp_path / "logits.npy",
        "--targets",
        tmp_path / "ids.npy",
        "--mask",
        tmp_path / "mask.npy",
    ]
    result = _run(*args, "--shift", "--threads", threads, "--chunk-size", "4")
    assert result.code == 3, result.stderr
    assert "mask.npy" in result.stderr and "not 0 or 1" in result.stderr


@pytest.mark.parametrize("shift", [False, True])
@pytest.mark.parametrize("shape", ["batched", "lists"])
def test_token_position_is_the_scored_token_in_the_ids(tmp_path: Path, shift: bool, shape: str) -> None:
    """worst_tokens[].token_position and --per-example's token_position index the original
    ids (t + 1 under --shift): ids[sequence][token_position] is the scored target."""
    logits, ids, _ = _batch()
    if shape == "batched":
        np.save(tmp_path / "logits.npy", logits)
        np.save(tmp_path / "ids.npy", ids)
        targets: list[Any] = ["--targets", tmp_path / "ids.npy"]
    else:
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        pq.write_table(pa.table({"input_ids": [r.tolist() for r in ids]}), tmp_path / "ids.parquet")
        np.save(tmp_path / "logits.npy", logits.reshape(-1, V))
        targets = ["--targets", tmp_path / "ids.parquet", "--target-col", "input_ids"]
    flag = ["--shift"] if shift else []
    doc = _run("--logits", tmp_path / "logits.npy", *targets, *flag).json()
    seen = 0
    for row in doc["sequence_rows"]:
        for w in row["worst_tokens"]:
            b, t, tp = row["sequence"], w["position"], w["token_position"]
            assert tp == t + (1 if shift else 0)
            assert w["target"] == ids[b, tp]
            seen += 1
    assert seen > 0
    out = run_cli("perplexity", "--logits", tmp_path / "logits.npy", *targets, *flag, "--per-example", "-")
    lines = out.stdout.strip().splitlines()
    header = lines[0].split(",")
    assert header[:4] == ["row", "sequence", "position", "token_position"]
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    for r in rows:
        b, t, tp = int(r["sequence"]), int(r["position"]), int(r["token_position"])
        assert tp == t + (1 if shift else 0)
        lg = logits[b, t].astype(np.float64)
        want = np.log(np.exp(lg - lg.max()).sum()) + lg.max() - lg[ids[b, tp]]
        assert float(r["loss"]) == pytest.approx(want, rel=1e-6)
    assert len(rows) == ids.size - (3 if shift else 0)


def test_python_keywords_and_provenance(tmp_path: Path) -> None:
    """``mask=`` / ``mask_col=`` are evaluate's keywords; the mask file is recorded as an input."""
    import losscli

    logits, ids, mask = _batch()
    np.save(tmp_path / "logits.npy", logits)
    np.savez(tmp_path / "batch.npz", input_ids=ids, attention_mask=mask)
    report = losscli.evaluate(
        "perplexity",
        tmp_path / "logits.npy",
        tmp_path / "batch.npz",
        target_col="input_ids",
        mask=str(tmp_path / "batch.npz"),
        mask_col="attention_mask",
        shift=True,
    )
    loss, n, ignored = _reference(logits, ids, mask, True)
    assert report.figure("cross_entropy") == pytest.approx(loss, rel=1e-6)
    assert (report.figure("n"), report.figure("ignored")) == (n, ignored)
    doc = report.to_dict()
    roles = [f["role"] for f in doc["provenance"]["inputs"]]
    assert "mask" in roles
