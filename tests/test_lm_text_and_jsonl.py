"""--text counts as lm-evaluation-harness does, and every documented JSON Lines shape is read.

The word count is checked against lm-eval's own expression written out here
(``len(re.split(r"\\s+", text))``), not against losscli's code.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from conftest import run_cli

NATS = [-0.5, -1.25, -2.0]  # one sequence of three token log-probabilities
WANT_PPL = math.exp(math.fsum(-x for x in NATS) / len(NATS))


def lm_eval_words(text: str) -> int:
    """lm-evaluation-harness's wikitext word count, verbatim."""
    return len(re.split(r"\s+", text))


@pytest.mark.parametrize(
    "text",
    [
        "the cat sat\n",  # a file ending in a newline: 4 "words" (the empty one after it)
        "  leading space and trailing  ",
        "one\n\ntwo\tthree\r\n",
        "no newline at the end",
        "\u00e9t\u00e9 \u65e5\u672c\u8a9e\u3000wide space\n",  # U+3000 is whitespace to re
    ],
)
def test_text_words_and_bytes_follow_lm_eval(tmp_path, text: str) -> None:
    np.save(tmp_path / "lp.npy", np.array(NATS))
    path = tmp_path / "t.txt"
    path.write_bytes(text.encode("utf-8"))
    data = run_cli("perplexity", "--logprobs", tmp_path / "lp.npy", "--text", path, "-f", "json").json()
    total_nll = math.fsum(-x for x in NATS)
    words, n_bytes = lm_eval_words(text), len(text.encode("utf-8"))
    assert data["word_perplexity"] == pytest.approx(math.exp(total_nll / words), rel=1e-12)
    assert data["bits_per_byte"] == pytest.approx(total_nll / (n_bytes * math.log(2)), rel=1e-12)


def test_text_ending_in_newline_counts_one_more_word_than_str_split(tmp_path) -> None:
    np.save(tmp_path / "lp.npy", np.array(NATS))
    path = tmp_path / "t.txt"
    path.write_text("a b c\n")
    data = run_cli("perplexity", "--logprobs", tmp_path / "lp.npy", "--text", path, "-f", "json").json()
    total_nll = math.fsum(-x for x in NATS)
    assert data["word_perplexity"] == pytest.approx(math.exp(total_nll / 4), rel=1e-12)  # not / 3


def test_byte_order_mark_is_not_text(tmp_path) -> None:
    np.save(tmp_path / "lp.npy", np.array(NATS))
    plain, marked = tmp_path / "plain.txt", tmp_path / "bom.txt"
    plain.write_bytes(b"ab cd\n")
    marked.write_bytes(b"\xef\xbb\xbfab cd\n")
    a = run_cli("perplexity", "--logprobs", tmp_path / "lp.npy", "--text", plain, "-f", "json").json()
    b = run_cli("perplexity", "--logprobs", tmp_path / "lp.npy", "--text", marked, "-f", "json").json()
    total_nll = math.fsum(-x for x in NATS)
    assert b["bits_per_byte"] == pytest.approx(total_nll / (6 * math.log(2)), rel=1e-12)  # 6 bytes, not 9
    assert a["bits_per_byte"] == b["bits_per_byte"] and a["word_perplexity"] == b["word_perplexity"]


def test_empty_text_is_refused(tmp_path) -> None:
    np.save(tmp_path / "lp.npy", np.array(NATS))
    (tmp_path / "e.txt").write_bytes(b"\xef\xbb\xbf")
    r = run_cli("perplexity", "--logprobs", tmp_path / "lp.npy", "--text", tmp_path / "e.txt")
    assert r.code == 3 and "e.txt" in r.stderr and "empty" in r.stderr and r.stdout == ""


def test_help_states_the_word_rule() -> None:
    r = run_cli("perplexity", "--help")
    assert "lm-evaluation" in r.stdout and "re.split" in r.stdout


def _content(lps: list[float]) -> list[dict[str, object]]:
    return [{"token": f"t{i}", "logprob": lp, "bytes": [116], "top_logprobs": []} for i, lp in enumerate(lps)]


# One record per documented shape (README, jsonl_reader's docstring), each holding NATS.
SHAPES = {
    "token_logprobs": {"token_logprobs": NATS},
    "logprobs.token_logprobs": {"text": "x", "logprobs": {"tokens": ["a", "b", "c"], "token_logprobs": NATS}},
    "choices[0].logprobs.token_logprobs": {
        "choices": [{"text": "x", "logprobs": {"token_logprobs": NATS, "top_logprobs": None}}]
    },
    "logprobs.content[].logprob": {"logprobs": {"content": _content(NATS)}},
    "choices[0].logprobs.content[].logprob": {
        "choices": [{"index": 0, "logprobs": {"content": _content(NATS)}, "finish_reason": "stop"}]
    },
    "logprobs (a plain list)": {"logprobs": NATS},
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_documented_jsonl_shape(tmp_path, shape: str) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(SHAPES[shape]) + "\n" + json.dumps(SHAPES[shape]) + "\n")
    data = run_cli("perplexity", "--logprobs", path, "-f", "json").json()
    assert data["n"] == 6 and data["sequences"] == 2
    assert data["value"] == pytest.approx(WANT_PPL, rel=1e-12)


def test_plain_list_of_booleans_is_not_log_probabilities(tmp_path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"logprobs": [True, False]}) + "\n")
    r = run_cli("perplexity", "--logprobs", path)
    assert r.code == 3 and "line 1" in r.stderr and r.stdout == ""
