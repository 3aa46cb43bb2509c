"""What losscli says about files it cannot read as they are, or reads with a choice worth
knowing: each message names the file, the place in the file's own terms, and the fix. Files are
written the way the tools that make them write them (pandas, servers' JSON, gzip/bzip2 pipes)."""

from __future__ import annotations

import bz2
import gzip
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli


def one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and result.stdout == "", result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# ---- JSON log-probs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "entry"),
    [
        ({"token_logprobs": [-0.5, "-1.0"]}, 'token_logprobs[1] is "-1.0"'),
        (
            {"logprobs": {"content": [{"logprob": -1}, {"logprob": True}]}},
            "logprobs.content[1].logprob is true",
        ),
        ([-0.5, False], "entry 1 is false"),
    ],
)
def test_a_log_prob_that_is_not_a_number_is_named_not_called_a_missing_shape(
    tmp_path: Path, record: object, entry: str
) -> None:
    path = tmp_path / "lp.jsonl"
    path.write_text(json.dumps({"token_logprobs": [-1.0]}) + "\n" + json.dumps(record) + "\n")
    result = run_cli("perplexity", "--logprobs", path)
    line = one_error_line(result)
    assert result.code == 3 and "line 2" in line and entry in line and "not a number or null" in line, line
    assert "looked for" not in line


def test_a_bad_log_prob_is_placed_by_line_and_token_not_by_a_made_up_column(tmp_path: Path) -> None:
    """JSON Lines with a blank line: the record on line 3 holds the bad value at token 2."""
    path = tmp_path / "lp.jsonl"
    path.write_text('{"logprobs": [-1, -2]}\n\n{"logprobs": [-1, null, 0.5]}\n')
    line = one_error_line(run_cli("perplexity", "--logprobs", path))
    assert "line 3, token 2 (row 4)" in line and "0.5 is above 0" in line and "column" not in line, line
    piped = one_error_line(run_cli("perplexity", "--logprobs", "-", stdin=path.read_bytes()))
    assert "<stdin>: record 2, token 2 (row 4)" in piped, piped  # a pipe cannot be re-read for lines


def test_a_probability_of_zero_is_said_as_such_not_as_an_overflow(tmp_path: Path) -> None:
    """llama.cpp's post-sampling probability 0 is a log-prob of -inf: an infinite loss."""
    path = tmp_path / "llama.json"
    probs = [{"id": 1, "token": "a", "prob": 0.0}, {"id": 2, "token": "b", "prob": 0.5}]
    path.write_text(json.dumps({"completion_probabilities": probs}))
    result = run_cli("perplexity", "--logprobs", path, "-f", "json")
    assert result.code == 0 and result.json()["status"] == "overflow"
    assert "probability of 0" in result.stderr and "overflow" not in result.stderr, result.stderr


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress])
def test_compressed_json_on_stdin_is_sniffed_from_what_it_decompresses_to(compress) -> None:  # type: ignore[no-untyped-def]
    records = [{"token_logprobs": [-0.5, -1.0]}, {"token_logprobs": [-2.0]}]
    data = compress("".join(json.dumps(r) + "\n" for r in records).encode())
    result = run_cli("perplexity", "--logprobs", "-", "-f", "json", stdin=data)
    assert result.code == 0, result.stderr
    assert result.json()["value"] == pytest.approx(math.exp(3.5 / 3), rel=1e-12)
    csv = run_cli(
        "perplexity", "--logprobs", "-", "-f", "json", stdin=gzip.compress(b"logprob\n-0.5\n-1.5\n")
    )
    assert csv.code == 0 and csv.json()["value"] == pytest.approx(math.exp(1.0), rel=1e-12), csv.stderr


# ---- the table shows what the input knows of a token ------------------------------------------


def test_the_table_shows_token_text_and_ids_with_a_header_that_says_which(tmp_path: Path) -> None:
    """vLLM prompt log-probs carry both: text with its id in brackets; the examples have text."""
    entries = [None, {"17": {"logprob": -1.5, "rank": 1, "decoded_token": " cat"}}]
    record = {"prompt_token_ids": [1, 17], "prompt_logprobs": entries}
    path = tmp_path / "vllm.jsonl"
    path.write_text(json.dumps(record) + "\n" + json.dumps(record) + "\n")
    result = run_cli("perplexity", "--logprobs", path, "-f", "table", env={"COLUMNS": "200"})
    assert result.code == 0, result.stderr
    assert "worst tokens (token position: token (id), log-prob)" in result.stdout
    assert "1: ' cat' (17), -1.5" in result.stdout
    example_rows = [line for line in result.stdout.splitlines() if "' cat'" in line and "1.5" in line]
    assert len(example_rows) == 4  # two sequence rows, two example rows (rows 1 and 3)
    assert "token" in result.stdout.split("Every example")[1]


def test_logits_keep_the_target_id_header(tmp_path: Path) -> None:
    logits = np.log(np.array([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]] * 2))
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "ids.npy", np.array([[0, 2], [1, 1]]))
    result = run_cli(
        "perplexity", "--logits", tmp_path / "logits.npy", "--targets", tmp_path / "ids.npy",
        "-f", "table", env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert "worst tokens (token position: target id, log-prob)" in result.stdout
    assert f"1: 2, {math.log(0.1):.7g}" in result.stdout  # position 1, target id 2, log 0.1


# ---- classes ----------------------------------------------------------------------------------


def _scores(tmp_path: Path, labels: list[float]) -> Path:
    df = pd.DataFrame({"a": [0.2, 0.1], "b": [0.3, 0.8], "c": [0.5, 0.1], "y": labels})
    df.to_parquet(tmp_path / "p.parquet", index=False)
    return tmp_path / "p.parquet"


def test_classes_that_are_not_all_integers_match_labels_by_number(tmp_path: Path) -> None:
    """--classes 1,2,3.5 with a float label column (pandas writes 2 as 2.0): matched by value."""
    path = _scores(tmp_path, [3.5, 2.0])
    result = run_cli("ce", path, "--target-col", "y", "--classes", "1,2,3.5", "-f", "json")
    assert result.code == 0, result.stderr
    assert result.json()["value"] == pytest.approx(-(math.log(0.5) + math.log(0.8)) / 2, rel=1e-12)


def test_a_label_not_among_classes_given_is_named_never_read_as_a_position(tmp_path: Path) -> None:
    path = _scores(tmp_path, [3.0, 2.0])
    result = run_cli("ce", path, "--target-col", "y", "--classes", "1,2,3.5")
    line = one_error_line(result)
    assert result.code == 3 and "row 0" in line and "none of the classes" in line and "'3.5'" in line, line
    assert "pass --classes" not in line and "out of range" not in line


# ---- columns and CSV marks --------------------------------------------------------------------


def _pandas_files(tmp_path: Path) -> tuple[Path, Path]:
    preds = pd.DataFrame({"p": [0.5, 1.5, 2.0]})
    targets = pd.DataFrame({"y": [1.0, 1.0, 1.0]})
    preds.to_csv(tmp_path / "preds.csv")  # with pandas' index, as df.to_csv(path) writes it
    targets.to_csv(tmp_path / "targets.csv")
    return tmp_path / "preds.csv", tmp_path / "targets.csv"


@pytest.mark.parametrize("option", ["--pred-col", "--target-col", "--exclude-col"])
def test_an_empty_column_option_is_refused_before_reading(tmp_path: Path, option: str) -> None:
    preds, targets = _pandas_files(tmp_path)
    result = run_cli("mse", preds, targets, option, "")
    line = one_error_line(result)
    assert result.code == 2 and f"{option} is empty" in line, line


def test_naming_the_pandas_index_by_position_is_scored_as_asked_with_a_warning(tmp_path: Path) -> None:
    preds, targets = _pandas_files(tmp_path)
    result = run_cli("mse", preds, targets, "--pred-col", "0", "--target-col", "y", "-f", "json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["value"] == pytest.approx((1 + 0 + 1) / 3, rel=1e-12)  # the index 0, 1, 2 against 1
    assert any("pandas index" in w and "first data column is 1" in w for w in data["warnings"])
    assert "warning:" in result.stderr


def test_decimal_given_as_the_detected_separator_is_refused_with_the_fix(tmp_path: Path) -> None:
    df = pd.DataFrame({"p": [0.5, 1.25], "y": [1.0, 1.0]})
    df.to_csv(tmp_path / "eu.csv", sep=";", decimal=",", index=False)
    result = run_cli("mse", tmp_path / "eu.csv", "--pred-col", "p", "--target-col", "y", "--decimal", ";")
    line = one_error_line(result)
    assert result.code == 2 and "eu.csv" in line and "did you mean --delimiter ';'" in line, line


# ---- a .npy of class names --------------------------------------------------------------------


def test_an_npy_of_class_names_is_a_label_file_for_ce_and_bce(tmp_path: Path) -> None:
    """np.save of a list of str (dtype <U) or of bytes (|S, as h5py hands them out)."""
    probs = np.array([[0.1, 0.7, 0.2], [0.6, 0.2, 0.2], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])
    np.save(tmp_path / "probs.npy", probs)
    names = ["dog", "cat", "bird", "dog"]
    np.save(tmp_path / "y.npy", np.array(names))
    np.save(tmp_path / "y_bytes.npy", np.array([n.encode() for n in names]))
    classes = ["cat", "dog", "bird"]
    want = -sum(math.log(probs[i, classes.index(n)]) for i, n in enumerate(names)) / len(names)
    for labels in ("y.npy", "y_bytes.npy"):
        result = run_cli(
            "ce", tmp_path / "probs.npy", tmp_path / labels, "--classes", "cat,dog,bird", "-f", "json"
        )
        assert result.code == 0, result.stderr
        assert result.json()["value"] == pytest.approx(want, rel=1e-12)
    np.save(tmp_path / "p.npy", np.array([0.9, 0.2, 0.6]))
    np.save(tmp_path / "spam.npy", np.array(["spam", "ham", "spam"]))
    bce = run_cli("bce", tmp_path / "p.npy", tmp_path / "spam.npy", "--positive", "spam", "-f", "json")
    assert bce.code == 0, bce.stderr
    assert bce.json()["value"] == pytest.approx(
        -(math.log(0.9) + math.log(0.8) + math.log(0.6)) / 3, rel=1e-12
    )


def test_an_npy_of_text_where_numbers_are_needed_is_refused_in_one_line(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.array([0.9, 0.2]))
    np.save(tmp_path / "text.npy", np.array(["0.5", "1.5"]))
    np.save(tmp_path / "text2d.npy", np.array([["a", "b"], ["c", "d"]]))
    line = one_error_line(run_cli("mse", tmp_path / "p.npy", tmp_path / "text.npy"))
    assert "text.npy" in line and "holds text" in line, line
    line = one_error_line(run_cli("mse", tmp_path / "text2d.npy", tmp_path / "p.npy"))
    assert "text2d.npy" in line and "holds text" in line and "(2, 2)" in line, line


# ---- pandas indexes that disagree -------------------------------------------------------------


def _frames() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"y_pred": rng.normal(size=40), "y_true": rng.normal(size=40)})


def test_two_files_whose_pandas_indexes_disagree_are_refused(tmp_path: Path) -> None:
    """Each frame shuffled before to_csv(path): position pairs the wrong rows."""
    df = _frames()
    df[["y_pred"]].sample(frac=1, random_state=0).to_csv(tmp_path / "p.csv")
    df[["y_true"]].sample(frac=1, random_state=1).to_csv(tmp_path / "t.csv")
    line = one_error_line(run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv"))
    assert "row 0" in line and "pandas index" in line and "sort_index()" in line, line


def test_a_fresh_index_beside_a_split_index_pairs_by_position(tmp_path: Path) -> None:
    """pd.DataFrame(model.predict(X_test)) beside y_test: scikit-learn pairs them by position."""
    test = _frames().sample(frac=1, random_state=2)
    pd.DataFrame({"y_pred": test.y_pred.to_numpy()}).to_csv(tmp_path / "p.csv")
    test[["y_true"]].to_csv(tmp_path / "t.csv")
    want = float(np.mean((test.y_pred.to_numpy() - test.y_true.to_numpy()) ** 2))
    for a, b in (("p.csv", "t.csv"), ("t.csv", "p.csv")):
        result = run_cli("mse", tmp_path / a, tmp_path / b, "-f", "json")
        assert result.code == 0, result.stderr
        assert result.json()["value"] == pytest.approx(want, rel=1e-12)


def test_dataframes_with_disagreeing_indexes_are_refused_in_python() -> None:
    import losscli

    df = _frames()
    a, b = df[["y_pred"]].sample(frac=1, random_state=0), df[["y_true"]].sample(frac=1, random_state=1)
    with pytest.raises(losscli.InputError, match="pandas index"):
        losscli.evaluate("mse", a, b)
    want = float(np.mean((df.y_pred - df.y_true) ** 2))
    assert losscli.evaluate("mse", a, b.loc[a.index]).value == pytest.approx(want, rel=1e-12)


# ---- guesses said --------------------------------------------------------------------------------


def test_a_positive_class_no_label_matches_is_said(tmp_path: Path) -> None:
    pd.DataFrame({"prob": [0.9, 0.6], "label": ["spam", "spam"]}).to_csv(tmp_path / "s.csv", index=False)
    result = run_cli("bce", tmp_path / "s.csv", "--positive", "Spam", "-f", "json")
    assert result.code == 0
    assert result.json()["value"] == pytest.approx(-(math.log(0.1) + math.log(0.4)) / 2, rel=1e-12)
    assert any("'Spam' never occurs" in w for w in result.json()["warnings"]), result.stderr
    right = run_cli("bce", tmp_path / "s.csv", "--positive", "spam", "-f", "json").json()
    assert "warnings" not in right


def test_a_range_that_takes_a_non_score_column_as_logits_is_said(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=30)
    df = pd.DataFrame(probs, columns=[f"p_{j}" for j in range(4)])
    df["fold"] = rng.integers(0, 5, size=30)
    df["label"] = rng.integers(0, 4, size=30)
    df.to_csv(tmp_path / "wide.csv", index=False)
    result = run_cli("ce", tmp_path / "wide.csv", "--pred-col", "0-", "--target-col", "label", "-f", "json")
    assert result.code == 0
    assert any("--pred-col '0-'" in w and "logits" in w for w in result.json()["warnings"]), result.stderr


def test_a_sequence_id_column_left_unused_is_said(tmp_path: Path) -> None:
    rows = pd.DataFrame({"seq": [0, 0, 1, 1, 1], "logprob": [-0.5, -1.0, -0.25, -2.0, -0.75]})
    rows.to_csv(tmp_path / "lp.csv", index=False)
    result = run_cli("perplexity", "--logprobs", tmp_path / "lp.csv", "-f", "json")
    assert result.code == 0
    assert any("--seq-col seq" in w for w in result.json()["warnings"]), result.stderr
    split = run_cli("perplexity", "--logprobs", tmp_path / "lp.csv", "--seq-col", "seq", "-f", "json")
    assert split.json()["sequences"] == 2 and "warnings" not in split.json()


def test_multiindex_frames_in_different_orders_are_refused(tmp_path: Path) -> None:
    df = _frames()
    index = pd.MultiIndex.from_arrays([df.index % 2, df.index])
    p, y = df[["y_pred"]].set_axis(index), df[["y_true"]].set_axis(index)
    p.sample(frac=1, random_state=3).to_csv(tmp_path / "p.csv")
    y.to_csv(tmp_path / "y.csv")
    line = one_error_line(run_cli("mse", tmp_path / "p.csv", tmp_path / "y.csv"))
    assert "pandas index (" in line, line  # both levels shown


def test_series_in_different_orders_are_refused_and_aligned_ones_score() -> None:
    import losscli

    df = _frames()
    shuffled = df.sample(frac=1, random_state=4)
    with pytest.raises(losscli.InputError, match="pandas index"):
        losscli.mse(shuffled["y_pred"], df["y_true"].sort_index(ascending=False))
    want = float(np.mean((df.y_pred - df.y_true) ** 2))
    assert losscli.mse(shuffled["y_pred"], df["y_true"].loc[shuffled.index]) == pytest.approx(want, rel=1e-12)


def test_an_idx_column_is_an_id_checked_row_by_row(tmp_path: Path) -> None:
    df = _frames()
    df.index.name = "idx"
    df[["y_pred"]].sample(frac=1, random_state=5).to_csv(tmp_path / "p.csv")
    df[["y_true"]].to_csv(tmp_path / "y.csv")
    line = one_error_line(run_cli("mse", tmp_path / "p.csv", tmp_path / "y.csv"))
    assert "has id" in line and "different orders" in line, line


def test_a_role_given_under_another_name_is_said_in_python() -> None:
    import losscli

    with pytest.raises(losscli.UsageError, match="first two arguments"):
        losscli.evaluate("perplexity", logits=np.zeros((2, 3)), targets=np.zeros(2, dtype=int))
    with pytest.raises(losscli.UsageError, match="nothing to score"):
        losscli.evaluate("perplexity", targets=np.zeros(2, dtype=int))
