"""The fuzz target shared by the test suite (short, fixed seed) and `make fuzz` (time-bounded).

Arbitrary bytes are written as each format and run through the readers and the engine: any
exception other than losscli's own LossCliError is a failure. Seeds are small valid files, so
mutations (flipped, dropped, inserted and duplicated bytes, truncations) reach deep into each
parser instead of stopping at the magic bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import losscli
from losscli.errors import LossCliError

FORMATS = (
    "csv",
    "tsv",
    "csv.gz",
    "npy",
    "npz",
    "parquet",
    "jsonl",
    "json",
    "jsonl.gz",
    "vllm.jsonl",
    "llamacpp.json",
    "llamacpp-old.json",
    "eu.csv",
    "mask.npz",
    "padded.npy",
    "labels.npy",
)
CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"


def seeds() -> dict[str, bytes]:
    """One small valid file per format."""
    p = np.array([0.5, 1.25, -3.0, 2.0])
    y = np.array([0.0, 1.0, -2.5, 2.0])
    labels = ["spam", "ham", "ham", "spam"]  # text labels: ce's --classes, bce's --positive
    csv_text = "pred,target,label\n" + "".join(
        f"{a!r},{b!r},{c}\n" for a, b, c in zip(p.tolist(), y.tolist(), labels, strict=True)
    )
    out = {
        "csv": csv_text.encode(),
        "tsv": csv_text.replace(",", "\t").encode(),
        "csv.gz": gzip.compress(csv_text.encode()),
        # European CSV (pandas' to_csv(sep=";", decimal=",")): read detected and as told
        "eu.csv": csv_text.replace(",", ";").replace(".", ",").encode(),
    }
    buf = io.BytesIO()
    np.save(buf, np.stack([p, y], axis=1))
    out["npy"] = buf.getvalue()
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    np.savez(
        buf,
        pred=p,
        target=y,
        logits=rng.normal(size=(2, 4, 5)),
        ids=np.array([[0, 1, 2, -100], [4, 3, 2, 1]]),
    )
    out["npz"] = buf.getvalue()
    buf = io.BytesIO()
    pq.write_table(pa.table({"pred": p, "target": y, "label": labels}), buf)
    out["parquet"] = buf.getvalue()
    out["jsonl"] = (json.dumps({"token_logprobs": [None, -1.5, -0.25]}) + "\n").encode()
    out.update(json_seeds())
    out.update(token_seeds())
    return out


def token_seeds() -> dict[str, bytes]:
    """Language-model layouts with padding: logits, ids and a tokenizer's attention mask in one
    .npz (--mask-col); (B, T) gathered log-probs padded with 1.0 (--pad-value); and a .npy of
    class names (np.save of str labels) for ce's text labels."""
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    np.savez(
        buf,
        logits=rng.normal(size=(2, 4, 5)).astype(np.float32),
        input_ids=np.array([[3, 1, 2, 0], [4, 3, 0, 0]]),
        attention_mask=np.array([[1, 1, 1, 0], [1, 1, 0, 0]]),
    )
    out = {"mask.npz": buf.getvalue()}
    buf = io.BytesIO()
    np.save(buf, np.array([[-0.5, -1.25, 1.0], [-2.0, 1.0, 1.0]]))
    out["padded.npy"] = buf.getvalue()
    buf = io.BytesIO()
    np.save(buf, np.array(["spam", "ham", "ham", "spam"]))
    out["labels.npy"] = buf.getvalue()
    return out


def json_seeds() -> dict[str, bytes]:
    """The JSON shapes of the log-prob reader: an array of token objects, gzip, vLLM's
    prompt_logprobs, llama.cpp's completion_probabilities (newer and older servers)."""
    tokens = [
        {"token": "a", "logprob": -0.5},
        {"token": "b", "logprob": None},
        {"token": "c", "logprob": -2.0},
    ]
    vllm = {
        "prompt_token_ids": [1, 5, 7],
        "prompt_logprobs": [
            None,
            {"5": {"logprob": -1.5, "rank": 2, "decoded_token": " b"}, "9": {"logprob": -0.2, "rank": 1}},
            {"7": {"logprob": -0.25, "rank": 1, "decoded_token": " c"}},
        ],
    }
    new = {
        "content": "hi!",
        "completion_probabilities": [
            {
                "id": 3,
                "token": "hi",
                "logprob": -0.7,
                "top_logprobs": [{"id": 3, "token": "hi", "logprob": -0.7}],
            },
            {"id": 4, "token": "!", "prob": 0.25, "top_probs": [{"id": 4, "token": "!", "prob": 0.25}]},
        ],
    }
    old = {
        "content": "hi!",
        "completion_probabilities": [
            {"content": "hi", "probs": [{"tok_str": "yo", "prob": 0.5}, {"tok_str": "hi", "prob": 0.25}]},
            {"content": "!", "probs": [{"tok_str": "!", "prob": 0.0}]},
        ],
    }
    lines = (json.dumps(vllm) + "\n" + json.dumps(vllm) + "\n").encode()
    return {
        "json": json.dumps(tokens, indent=1).encode(),
        "jsonl.gz": gzip.compress((json.dumps({"token_logprobs": [-1.0, -0.5]}) + "\n").encode()),
        "vllm.jsonl": lines,
        "llamacpp.json": json.dumps([new, new], indent=1).encode(),
        "llamacpp-old.json": json.dumps(old).encode(),
    }


def mutate(rng: random.Random, data: bytes, max_ops: int = 6) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, max_ops)):
        op = rng.choice(("flip", "set", "delete", "insert", "truncate", "duplicate"))
        if not b and op != "insert":
            op = "insert"
        i = rng.randrange(len(b)) if b else 0
        if op == "flip":
            b[i] ^= 1 << rng.randrange(8)
        elif op == "set":
            b[i] = rng.choice((0, 0xFF, 0x7F, 0x80, ord(","), ord("\n"), ord('"'), ord("e"), ord("-")))
        elif op == "delete":
            del b[i : i + rng.randint(1, 8)]
        elif op == "insert":
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == "truncate":
            del b[i:]
        else:
            j = rng.randrange(len(b))
            b[i:i] = b[j : j + rng.randint(1, 64)]
    return bytes(b)


def run_target(fmt: str, data: bytes, directory: Path) -> list[LossCliError | None]:
    """Run the readers and engine on ``data`` as ``fmt``, every way it can be read; return
    each attempt's LossCliError, or None where it scored.

    Anything else propagates: that is the failure the fuzzer looks for.
    """
    path = directory / f"fuzz.{fmt}"
    path.write_bytes(data)
    outcomes: list[LossCliError | None] = []
    for attempt in _attempts(fmt, path):
        try:
            attempt()
            outcomes.append(None)
        except LossCliError as exc:
            outcomes.append(exc)
    return outcomes


def _attempts(fmt: str, path: Path) -> list[Any]:
    """The ways a file of this format is read: as a regression table, and as language-model
    input (log-probabilities, or logits with --shift), so the token paths are fuzzed too."""
    if "json" in fmt:  # JSON holds log-probabilities only
        return [lambda: losscli.evaluate("perplexity", None, logprobs=path, threads=1)]
    if fmt in ("mask.npz", "padded.npy", "labels.npy"):
        return _token_attempts(fmt, path)
    cols = ("0", "1") if fmt == "npy" else ("pred", "target")
    runs = [
        lambda: losscli.evaluate("mse", path, pred_col=cols[0], target_col=cols[1], chunk_size=3, threads=1)
    ]
    if fmt == "eu.csv":
        runs.append(
            lambda: losscli.evaluate(
                "mse", path, pred_col=cols[0], target_col=cols[1], delimiter=";", decimal=",", threads=1
            )
        )
    if fmt not in ("npy", "npz"):  # text labels: read as text, matched to classes
        runs.append(
            lambda: losscli.evaluate(
                "ce", path, pred_col="pred,target", target_col="label", classes="ham,spam", threads=1
            )
        )
        runs.append(
            lambda: losscli.evaluate("bce", path, pred_col="pred", target_col="label", positive="spam")
        )
    if fmt in ("npy", "npz", "parquet"):
        runs.append(
            lambda: losscli.evaluate(
                "perplexity", None, logprobs=path, pred_col=None if fmt != "parquet" else "pred", threads=1
            )
        )
    if fmt == "npz":
        runs.append(
            lambda: losscli.evaluate(
                "perplexity", path, pred_col="logits", target_col="ids", shift=True, threads=1, chunk_size=2
            )
        )
    return runs


def _token_attempts(fmt: str, path: Path) -> list[Any]:
    if fmt == "mask.npz":
        return [
            lambda shift=shift: losscli.evaluate(
                "perplexity",
                path,
                pred_col="logits",
                target_col="input_ids",
                mask_col="attention_mask",
                shift=shift,
                threads=1,
                chunk_size=3,
            )
            for shift in (False, True)
        ]
    if fmt == "padded.npy":
        return [
            lambda: losscli.evaluate(
                "perplexity", None, logprobs=path, pad_value=1.0, threads=1, chunk_size=2
            )
        ]
    probs = np.array([[0.25, 0.75], [0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])
    return [lambda: losscli.evaluate("ce", probs, path, classes="ham,spam", threads=1, chunk_size=3)]


def corpus_cases() -> list[tuple[str, Path]]:
    """Every input that once crashed a reader, kept as a regression test: fuzz_corpus/FMT/NAME."""
    return [(d.name, f) for d in sorted(CORPUS.iterdir()) if d.is_dir() for f in sorted(d.iterdir())]
