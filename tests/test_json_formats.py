"""JSON log-probabilities beyond one JSON Lines shape: .json files (JSON Lines, one array, one
document), compressed JSON, JSON on stdin, vLLM's prompt_logprobs, llama.cpp server's
completion_probabilities (newer and older servers), and lists of {token, logprob} objects.

Fixtures follow the shapes the tools document (vLLM's RequestOutput and OpenAI-compatible
completions with prompt_logprobs; llama.cpp's tools/server/README.md). Every expected value is
computed here in float64 from the log-probabilities the fixture was built from (which entry is
the scored one is decided by the test's own bookkeeping, never by losscli).
"""

from __future__ import annotations

import bz2
import gzip
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import losscli
from losscli.errors import InputError, UsageError

from conftest import run_cli


def ppl(nats: list[float]) -> float:
    """exp(-mean log-prob) over the scored tokens, in float64 (math.fsum: exact sum)."""
    return math.exp(-math.fsum(nats) / len(nats))


def report(path: Path, **options: Any) -> dict[str, Any]:
    return losscli.evaluate("perplexity", None, logprobs=path, threads=1, **options).to_dict()


# ---- vLLM ---------------------------------------------------------------------------------


def vllm_record(ids: list[int], chosen: list[float], texts: list[str], k: int = 2) -> dict[str, Any]:
    """A vLLM RequestOutput as JSON: prompt_token_ids, and prompt_logprobs with None first, then
    a dict per position holding the prompt's own token and ``k`` alternatives (other ids, with
    higher log-probs so a reader that takes the best entry gets a different number)."""
    entries: list[Any] = [None]
    for t in range(1, len(ids)):
        entry = {str(ids[t]): {"logprob": chosen[t - 1], "rank": k + 1, "decoded_token": texts[t]}}
        for j in range(k):
            entry[str(10_000 + 100 * t + j)] = {
                "logprob": -0.01 * (j + 1),
                "rank": j + 1,
                "decoded_token": "x",
            }
        entries.append(entry)
    return {"request_id": "0", "prompt": "".join(texts), "prompt_token_ids": ids, "prompt_logprobs": entries}


SEQS = [
    ([1, 17, 23, 5], [-1.5, -0.25, -3.0], ["<s>", " the", " cat", " sat"]),
    ([1, 42, 7], [-0.75, -2.5], ["<s>", " a", " b"]),
]


def test_vllm_prompt_logprobs_score_the_prompt_token_and_ignore_the_first(tmp_path: Path) -> None:
    path = tmp_path / "vllm.jsonl"
    path.write_text("".join(json.dumps(vllm_record(*s)) + "\n" for s in SEQS))
    data = report(path)
    everything = [x for _, chosen, _ in SEQS for x in chosen]
    assert data["value"] == pytest.approx(ppl(everything), rel=1e-12)
    assert data["n"] == len(everything)
    assert data["ignored"] == len(SEQS)  # each prompt's first token: nothing predicts it
    rows = data["sequence_rows"]
    assert [r["tokens"] for r in rows] == [len(c) for _, c, _ in SEQS]
    for row, (_, chosen, _) in zip(rows, SEQS, strict=True):
        assert row["perplexity"] == pytest.approx(ppl(chosen), rel=1e-12)
    worst = rows[0]["worst_tokens"][0]
    assert worst == {
        "position": 3,  # the prompt token " sat": the null first token keeps its place
        "token_position": 3,
        "target": 5,
        "logprob": -3.0,
        "token": " sat",
    }  # prompt id 5
    by_row = {e["row"]: e["token"] for e in data["examples"]}
    assert by_row == {1: " the", 2: " cat", 3: " sat", 5: " a", 6: " b"}  # rows 0 and 4: the nulls


def test_vllm_openai_server_shape_and_a_single_entry_without_ids(tmp_path: Path) -> None:
    """The OpenAI-compatible server puts prompt_logprobs in choices[0]; with
    prompt_logprobs=0 each dict holds the prompt token alone, so no ids are needed."""
    chosen = [-0.5, -1.75, -0.125]
    entries: list[Any] = [None] + [
        {str(100 + t): {"logprob": v, "rank": 4, "decoded_token": f"t{t}"}} for t, v in enumerate(chosen)
    ]
    doc = {
        "id": "cmpl-1",
        "object": "text_completion",
        "choices": [{"index": 0, "text": "", "prompt_logprobs": entries}],
    }
    path = tmp_path / "server.json"
    path.write_text(json.dumps(doc, indent=2))  # one saved response, spread over lines
    data = report(path)
    assert data["value"] == pytest.approx(ppl(chosen), rel=1e-12)
    assert data["ignored"] == 1


def test_vllm_several_entries_without_ids_is_refused_naming_the_line(tmp_path: Path) -> None:
    record = vllm_record(*SEQS[0])
    del record["prompt_token_ids"]
    path = tmp_path / "v.jsonl"
    path.write_text(json.dumps(vllm_record(*SEQS[1])) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(InputError, match=r"line 2: prompt_logprobs\[1\] has 3 entries .*prompt_token_ids"):
        report(path)


def test_vllm_missing_prompt_token_entry_is_refused(tmp_path: Path) -> None:
    record = vllm_record(*SEQS[0])
    del record["prompt_logprobs"][2]["23"]
    path = tmp_path / "v.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(
        InputError, match=r"line 1: prompt_logprobs\[2\] has no entry for the prompt's token id 23"
    ):
        report(path)


def test_vllm_ids_and_entries_of_different_lengths_are_refused(tmp_path: Path) -> None:
    record = vllm_record(*SEQS[0])
    record["prompt_token_ids"] = record["prompt_token_ids"][:-1]
    path = tmp_path / "v.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(InputError, match="prompt_token_ids has 3 ids but prompt_logprobs has 4"):
        report(path)


def test_a_top_level_array_of_vllm_records(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps([vllm_record(*s) for s in SEQS]))
    data = report(path)
    assert data["value"] == pytest.approx(ppl([x for _, c, _ in SEQS for x in c]), rel=1e-12)
    assert data["sequences"] == 2


# ---- llama.cpp server ------------------------------------------------------------------------


def llama_new(chosen: list[float | None], texts: list[str], prob: bool = False) -> dict[str, Any]:
    """Newer servers: one item per generated token with its id, token, logprob (or prob with
    post_sampling_probs) and top_logprobs (top_probs)."""
    items = []
    for t, (v, text) in enumerate(zip(chosen, texts, strict=True)):
        key, top = ("prob", "top_probs") if prob else ("logprob", "top_logprobs")
        alt = {"id": 999, "token": "zz", "bytes": [122, 122], key: 0.5 if prob else -0.05}
        items.append({"id": t + 1, "token": text, "bytes": list(text.encode()), key: v, top: [alt]})
    return {"content": "".join(texts), "stop": True, "completion_probabilities": items}


def test_llama_cpp_newer_logprobs(tmp_path: Path) -> None:
    chosen = [-0.3, -2.25, -1.0]
    path = tmp_path / "l.json"
    path.write_text(json.dumps(llama_new(chosen, [" Hel", "lo", "!"])))
    data = report(path)
    assert data["value"] == pytest.approx(ppl(chosen), rel=1e-12)
    assert data["ignored"] == 0
    assert data["sequence_rows"][0]["worst_tokens"][0] == {
        "position": 1,
        "token_position": 1,  # no shift: the same token
        "target": 2,  # the item's id
        "logprob": -2.25,
        "token": "lo",
    }


def test_llama_cpp_post_sampling_probabilities_are_logged(tmp_path: Path) -> None:
    probs = [0.5, 0.125, 1.0]
    path = tmp_path / "l.jsonl"
    path.write_text(json.dumps(llama_new(list(probs), ["a", "b", "c"], prob=True)) + "\n")
    data = report(path)
    assert data["value"] == pytest.approx(ppl([math.log(p) for p in probs]), rel=1e-12)


def test_llama_cpp_probability_zero_is_an_infinite_loss(tmp_path: Path) -> None:
    path = tmp_path / "l.json"
    path.write_text(json.dumps(llama_new([0.5, 0.0], ["a", "b"], prob=True)))
    data = report(path)
    assert data["value"] is None and data["status"] == "overflow"  # inf: null in JSON
    assert data["sequence_rows"][0]["worst_tokens"][0] == {
        "position": 1,
        "token_position": 1,
        "target": 2,
        "logprob": None,
        "token": "b",
    }


def test_llama_cpp_null_logprob_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "l.json"
    path.write_text(json.dumps(llama_new([-1.0, None, -2.0], ["a", "b", "c"])))
    data = report(path)
    assert data["value"] == pytest.approx(ppl([-1.0, -2.0]), rel=1e-12)
    assert data["ignored"] == 1


def llama_old(chosen: list[str], probs: list[list[tuple[str, float]]]) -> dict[str, Any]:
    """Older servers: content (the chosen token) and probs [{tok_str, prob}] per token."""
    items = [
        {"content": c, "probs": [{"tok_str": s, "prob": p} for s, p in alts]}
        for c, alts in zip(chosen, probs, strict=True)
    ]
    return {"content": "".join(chosen), "completion_probabilities": items}


def test_llama_cpp_older_probs_take_the_chosen_tokens_probability(tmp_path: Path) -> None:
    record = llama_old([" yes", " no"], [[(" maybe", 0.6), (" yes", 0.3)], [(" no", 0.875), ("?", 0.125)]])
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(record) + "\n" + json.dumps(record) + "\n")
    data = report(path)
    assert data["value"] == pytest.approx(ppl([math.log(0.3), math.log(0.875)] * 2), rel=1e-12)
    assert [r["tokens"] for r in data["sequence_rows"]] == [2, 2]
    assert data["sequence_rows"][0]["worst_tokens"][0]["token"] == " yes"


def test_llama_cpp_older_chosen_token_not_among_probs_is_refused(tmp_path: Path) -> None:
    record = llama_old([" yes", " no"], [[(" yes", 0.3)], [("?", 0.125)]])
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(
        InputError, match=r"line 1: completion_probabilities\[1\]: the chosen token ' no'.*n_probs"
    ):
        report(path)


def test_llama_cpp_item_missing_its_probability_is_refused(tmp_path: Path) -> None:
    record = llama_new([-1.0, -2.0], ["a", "b"])
    del record["completion_probabilities"][1]["logprob"]
    path = tmp_path / "l.json"
    path.write_text(json.dumps([record]))
    with pytest.raises(
        InputError, match=r"element \[0\] of the top-level array: completion_probabilities\[1\] has no"
    ):
        report(path)


# ---- token objects, arrays, documents, compression --------------------------------------------


def test_a_top_level_list_of_token_objects_is_one_sequence(tmp_path: Path) -> None:
    items = [
        {"token": "a", "logprob": -0.5},
        {"token": "b", "logprob": None},
        {"token": "c", "logprob": -4.0},
    ]
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(items))
    data = report(path)
    assert data["value"] == pytest.approx(ppl([-0.5, -4.0]), rel=1e-12)
    assert data["ignored"] == 1 and data["sequences"] == 1
    assert data["sequence_rows"][0]["worst_tokens"][0] == {
        "position": 2,  # "c", after the null "b"
        "token_position": 2,
        "target": None,
        "logprob": -4.0,
        "token": "c",
    }


def test_a_token_object_without_logprob_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps([{"token": "a", "logprob": -0.5}, {"token": "b"}]))
    with pytest.raises(InputError, match=r"token 1 .* has no \"logprob\""):
        report(path)


def test_json_lines_in_a_json_file_and_a_broken_line(tmp_path: Path) -> None:
    path = tmp_path / "lines.json"
    path.write_text('{"token_logprobs": [null, -1.0, -2.0]}\n\n{"token_logprobs": [-0.5]}\n')
    data = report(path)
    assert data["value"] == pytest.approx(ppl([-1.0, -2.0, -0.5]), rel=1e-12)
    assert data["ignored"] == 1
    path.write_text('{"token_logprobs": [-1.0]}\n{"token_logprobs": [-0.5]}\n{"token_logprobs": [-0.5,\n')
    with pytest.raises(InputError, match="line 3 is not valid JSON"):
        report(path)


def test_an_array_broken_inside_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('[\n {"token_logprobs": [-1.0]},\n {"token_logprobs": [-0.5,]}\n]\n')
    with pytest.raises(InputError, match="line 3 is not valid JSON"):
        report(path)


def test_a_record_of_no_known_shape_names_the_shapes(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"token_logprobs": [-1.0]}\n{"text": "hello"}\n')
    with pytest.raises(
        InputError, match=r"line 2 has no token log-probabilities; looked for .*prompt_logprobs"
    ):
        report(path)


@pytest.mark.parametrize(
    "name,compress",
    [("a.jsonl.gz", gzip.compress), ("a.json.gz", gzip.compress), ("a.json.bz2", bz2.compress)],
)
def test_compressed_json(tmp_path: Path, name: str, compress: Any) -> None:
    text = (
        json.dumps([vllm_record(*s) for s in SEQS])
        if ".json." in name
        else json.dumps(vllm_record(*SEQS[0])) + "\n"
    )
    path = tmp_path / name
    path.write_bytes(compress(text.encode()))
    data = report(path)
    chosen = [x for _, c, _ in SEQS for x in c] if ".json." in name else SEQS[0][1]
    assert data["value"] == pytest.approx(ppl(chosen), rel=1e-12)


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_input_format_reads_json_under_any_name(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "lp.txt"
    path.write_text(json.dumps([{"token": "a", "logprob": -1.0}, {"token": "b", "logprob": -3.0}]))
    result = run_cli("perplexity", "--logprobs", path, "--input-format", fmt, "-f", "json")
    assert result.code == 0, result.stderr
    assert result.json()["value"] == pytest.approx(ppl([-1.0, -3.0]), rel=1e-12)


# ---- stdin, errors, null targets -------------------------------------------------------------


@pytest.mark.parametrize("as_array", [False, True])
def test_json_on_stdin_is_sniffed_by_its_first_byte(as_array: bool) -> None:
    records = [vllm_record(*s) for s in SEQS]
    text = json.dumps(records) if as_array else "".join(json.dumps(r) + "\n" for r in records)
    result = run_cli("perplexity", "--logprobs", "-", "-f", "json", stdin=("\n  " + text).encode())
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["value"] == pytest.approx(ppl([x for _, c, _ in SEQS for x in c]), rel=1e-12)
    assert data["ignored"] == 2
    assert [r["tokens"] for r in data["sequence_rows"]] == [3, 2]


def test_broken_record_on_the_command_line_exits_3_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "v.jsonl"
    bad = vllm_record(*SEQS[0])
    bad["prompt_logprobs"][1]["17"]["logprob"] = "high"
    path.write_text(json.dumps(vllm_record(*SEQS[1])) + "\n" + json.dumps(bad) + "\n")
    result = run_cli("perplexity", "--logprobs", path)
    assert result.code == 3
    assert f"{path}: line 2: prompt_logprobs[1]['17'].logprob is 'high', not a number" in result.stderr
    assert "Traceback" not in result.stderr


def test_json_read_as_csv_says_it_is_json(tmp_path: Path) -> None:
    path = tmp_path / "lp.csv"
    path.write_text(json.dumps([{"token": "a", "logprob": -1.0}]))
    result = run_cli("perplexity", "--logprobs", path)
    assert result.code == 3
    assert "looks like JSON, not CSV" in result.stderr and 'logprob": -1.0' not in result.stderr


def test_json_as_predictions_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"token": "a", "logprob": -1.0}]))
    with pytest.raises(UsageError, match="JSON holds per-token log-probabilities"):
        losscli.evaluate("mse", path, path)


def test_gathered_logprobs_without_ids_have_a_null_target(tmp_path: Path) -> None:
    lp = np.array([-0.5, -2.0, -1.0])
    np.save(tmp_path / "lp.npy", lp)
    data = report(tmp_path / "lp.npy")
    worst = data["sequence_rows"][0]["worst_tokens"]
    assert [w["target"] for w in worst] == [None, None, None]
    assert "token" not in worst[0]  # a .npy carries no token text


def test_the_table_names_only_what_the_input_knows_of_a_token(tmp_path: Path) -> None:
    """Log-probs with neither text nor ids: position and log-prob, and a header that says so."""
    path = tmp_path / "lp.jsonl"
    path.write_text('{"token_logprobs": [-0.5, -2.0]}\n{"token_logprobs": [-1.0]}\n')
    result = run_cli("perplexity", "--logprobs", path, "-f", "table", env={"COLUMNS": "200"})
    assert result.code == 0, result.stderr
    assert "1: -2; 0: -0.5" in result.stdout and "?" not in result.stdout
    assert "(token position: log-prob)" in result.stdout and "target id" not in result.stdout


def test_a_top_level_array_of_numbers_is_one_sequence(tmp_path: Path) -> None:
    path = tmp_path / "lp.json"
    path.write_text("[-1.0, null, -2.0, -0.5]")
    data = report(path)
    assert data["value"] == pytest.approx(ppl([-1.0, -2.0, -0.5]), rel=1e-12)
    assert data["ignored"] == 1 and data["sequences"] == 1


def test_json_nested_too_deeply_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match="too deeply"):
        report(path)


def test_pretty_printed_documents_one_after_another(tmp_path: Path) -> None:
    """What ``jq . a.json b.json`` writes: each document over many lines."""
    path = tmp_path / "jq.json"
    path.write_text("".join(json.dumps(vllm_record(*s), indent=2) + "\n" for s in SEQS))
    data = report(path)
    assert data["value"] == pytest.approx(ppl([x for _, c, _ in SEQS for x in c]), rel=1e-12)
    assert [r["tokens"] for r in data["sequence_rows"]] == [3, 2]
    first = json.dumps(vllm_record(*SEQS[0]), indent=2)
    bad = vllm_record(*SEQS[1])
    bad["prompt_logprobs"][2]["7"]["logprob"] = None
    del bad["prompt_logprobs"][2]["7"]["logprob"]
    path.write_text(first + "\n" + json.dumps(bad, indent=2) + "\n")
    start = first.count("\n") + 2  # the line the second document starts on
    with pytest.raises(InputError, match=rf"line {start}: prompt_logprobs\[2\]\['7'\] has no \"logprob\""):
        report(path)


def test_the_table_shows_token_text_where_the_file_has_it(tmp_path: Path) -> None:
    path = tmp_path / "lp.jsonl"  # JSON Lines of token-object lists: one sequence a line
    lines = [
        [{"token": "a", "logprob": -0.5}, {"token": "bb", "logprob": -2.0}],
        [{"token": "c", "logprob": -1.0}],
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = run_cli("perplexity", "--logprobs", path, "-f", "table", env={"COLUMNS": "200"})
    assert result.code == 0, result.stderr
    assert "1: 'bb', -2" in result.stdout and "0: 'c', -1" in result.stdout


# ---- a null keeps its row ----------------------------------------------------------------------

#: OpenAI echo: the first token has no log-prob (null); a null can also come mid-sequence
NULL_RECORDS = [
    {"tokens": ["<s>", "The", " cat", " sat"], "token_logprobs": [None, -1.25, None, -3.5]},
    {"tokens": ["<s>", " on", " mats"], "token_logprobs": [None, -0.5, -2.0]},
]


def _null_reference() -> tuple[list[float], list[tuple[int, int, int, str, float]]]:
    """Scored log-probs, and (row, sequence, position, text, log-prob) of every scored token,
    counted by hand over the records with nulls in their places."""
    scored, where, row = [], [], 0
    for s, rec in enumerate(NULL_RECORDS):
        for p, (text, lp) in enumerate(zip(rec["tokens"], rec["token_logprobs"], strict=True)):
            if lp is not None:
                scored.append(lp)
                where.append((row, s, p, text, lp))
            row += 1
    return scored, where


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_a_null_keeps_its_row_so_later_tokens_keep_their_rows_positions_and_text(
    tmp_path: Path, how: str
) -> None:
    scored, where = _null_reference()
    text = "".join(json.dumps(r) + "\n" for r in NULL_RECORDS)
    path = tmp_path / "echo.jsonl"
    path.write_text(text)
    per_example = tmp_path / "per.csv"
    args = ["perplexity", "--logprobs", "-" if how == "stdin" else path, "-f", "json"]
    result = run_cli(*args, "--per-example", per_example, stdin=text.encode() if how == "stdin" else None)
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["value"] == pytest.approx(ppl(scored), rel=1e-12)
    assert (data["n"], data["ignored"], data["rows"]) == (4, 3, 7)
    assert sorted((e["row"], e["token"], e["log-prob"]) for e in data["examples"]) == [
        (r, t, lp) for r, _, _, t, lp in where
    ]
    worst = {
        (row["sequence"], w["position"]): w["token"]
        for row in data["sequence_rows"]
        for w in row["worst_tokens"]
    }
    assert worst == {(s, p): t for _, s, p, t, _ in where}
    lines = per_example.read_text().splitlines()
    assert lines[0] == "row,sequence,position,token_position,loss"
    got = [tuple(float(x) for x in line.split(",")) for line in lines[1:]]
    assert got == [(r, s, p, p, -lp) for r, s, p, _, lp in where]


def test_nulls_are_ignored_not_skipped_under_nan_skip_and_beside_pad_value(tmp_path: Path) -> None:
    """--nan skip drops NaN log-probs (skipped); a null is not NaN: it stays an ignored token.
    --pad-value's padding and nulls are both ignored."""
    path = tmp_path / "lp.jsonl"
    path.write_text('{"logprobs": [null, -0.5, NaN, 1.0]}\n{"logprobs": [-2.0, null]}\n')
    data = report(path, nan="skip", pad_value=1.0)
    assert data["value"] == pytest.approx(ppl([-0.5, -2.0]), rel=1e-12)
    assert (data["n"], data["ignored"], data["skipped"], data["rows"]) == (2, 3, 1, 6)


def test_a_value_that_is_the_null_mark_is_refused_not_taken_for_a_null(tmp_path: Path) -> None:
    path = tmp_path / "lp.jsonl"
    path.write_text('{"logprobs": [null, -0.5]}\n{"logprobs": [-1.0, 1.7976931348623157e308]}\n')
    result = run_cli("perplexity", "--logprobs", path)
    assert result.code == 3 and result.stdout == ""
    assert "row 3" in result.stderr and "not a log-probability" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
