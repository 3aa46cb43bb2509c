"""Split, evaluate apart, merge in any tree: the same report as one run over all the data.

Hypothesis draws the data, the cut points (1-8 parts), the chunk size and thread count of each
part, and the shape of the merge tree. Every part is run through the public API with
``row_offset`` and ``save_state``, loaded back from its file, and merged; the merged report
must equal the single run's: every figure within 1e-12 relative, counts exact, the worst rows
and the per-sequence rows identical (their sums within 1e-12: a sequence cut across parts adds
its pieces in another order).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import losscli
from losscli.results.report import Report, build_report
from losscli.state import EvalState

REL = 1e-12
TOP = 5
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        a, b = float(a), float(b)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or abs(a - b) <= REL * max(abs(a), abs(b))
    return bool(a == b)


def assert_same_report(merged: Report, whole: Report) -> None:
    assert merged.n == whole.n
    assert (merged.ignored, merged.skipped, merged.clamped) == (whole.ignored, whole.skipped, whole.clamped)
    assert [f.key for f in merged.figures] == [f.key for f in whole.figures]
    for a, b in zip(merged.figures, whole.figures, strict=True):
        assert _close(a.value, b.value), (a.key, a.value, b.value)
    assert _close(merged.value, whole.value)
    for (na, va), (nb, vb) in zip(merged.per_output, whole.per_output, strict=True):
        assert na == nb and all(_close(va[k], vb[k]) for k in va)
    assert [(e.row, e.loss, e.detail) for e in merged.examples] == [
        (e.row, e.loss, e.detail) for e in whole.examples
    ]
    assert merged.breakdown == whole.breakdown
    assert len(merged.sequences) == len(whole.sequences)
    for a, b in zip(merged.sequences, whole.sequences, strict=True):
        assert (a["sequence"], a["tokens"], a["worst_tokens"]) == (
            b["sequence"],
            b["tokens"],
            b["worst_tokens"],
        )
        assert _close(a["nll"], b["nll"]) and _close(a["perplexity"], b["perplexity"])


def merge_tree(states: list[EvalState], splits: list[int]) -> EvalState:
    """Merge in the tree the drawn split points describe (left part, right part, recursively)."""
    if len(states) == 1:
        return states[0]
    cut = 1 + splits[0] % (len(states) - 1)
    rest = splits[1:] or [0]
    return merge_tree(states[:cut], rest).merge(merge_tree(states[cut:], rest[::-1]))


def data_for(metric: str, n: int, seed: int, weighted: bool) -> tuple[Any, Any, Any, int]:
    """Predictions, targets, weights and the rows per input row unit (T for token data)."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.0, 3.0, n) if weighted else None
    if metric in ("mse", "mae", "huber"):
        k = 1 + seed % 3
        shape = (n,) if k == 1 else (n, k)
        return rng.normal(size=shape) * 10, rng.normal(size=shape), w, 1
    if metric == "bce":
        return rng.uniform(0.001, 0.999, n), rng.integers(0, 2, n).astype(np.float64), w, 1
    if metric == "ce":
        return rng.normal(size=(n, 5)) * 3, rng.integers(0, 5, n), w, 1
    t = 4  # perplexity: n sequences of t tokens over a vocabulary of 7, some padding ignored
    ids = rng.integers(0, 7, (n, t))
    ids[rng.uniform(size=(n, t)) < 0.1] = -100
    tw = rng.uniform(0.0, 3.0, n * t) if weighted else None
    return rng.normal(size=(n, t, 7)) * 2, ids, tw, t  # float64: float32 is 1e-6 (test_chunking)


def run_part(
    metric: str, p: Any, t: Any, w: Any, offset: int, path: Path, chunk: int, threads: int
) -> EvalState:
    losscli.evaluate(
        metric,
        p,
        t,
        weights=w,
        row_offset=offset,
        save_state=str(path),
        top=TOP,
        chunk_size=chunk,
        threads=threads,
    )
    return EvalState.load(str(path))


METRICS = ["mse", "mae", "huber", "bce", "ce", "perplexity"]


@pytest.mark.parametrize("metric", METRICS)
@SETTINGS
@given(
    n=st.integers(1, 60),
    cuts=st.lists(st.integers(0, 60), min_size=0, max_size=7),
    splits=st.lists(st.integers(0, 100), min_size=1, max_size=8),
    chunk=st.sampled_from([1, 3, 16, 1000]),
    threads=st.sampled_from([1, 2]),
    weighted=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_parts_merged_in_any_tree_equal_one_run(
    tmp_path: Path,
    metric: str,
    n: int,
    cuts: list[int],
    splits: list[int],
    chunk: int,
    threads: int,
    weighted: bool,
    seed: int,
) -> None:
    p, t, w, per_row = data_for(metric, n, seed, weighted)
    bounds = sorted({0, n, *(c % (n + 1) for c in cuts)})
    whole = losscli.evaluate(metric, p, t, weights=w, top=TOP)
    states = []
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        wp = None if w is None else w[a * per_row : b * per_row]
        states.append(
            run_part(metric, p[a:b], t[a:b], wp, a * per_row, tmp_path / f"s{seed}-{i}.state", chunk, threads)
        )
    merged = merge_tree(states, splits)
    assert_same_report(build_report(merged, TOP), whole)


@pytest.mark.parametrize("metric", ["mse", "ce"])
def test_merge_order_does_not_change_the_report(tmp_path: Path, metric: str) -> None:
    p, t, _, _ = data_for(metric, 90, 7, False)
    bounds = [0, 10, 11, 50, 90]
    states = [
        run_part(metric, p[a:b], t[a:b], None, a, tmp_path / f"{i}.state", 7, 1)
        for i, (a, b) in enumerate(itertools.pairwise(bounds))
    ]
    whole = losscli.evaluate(metric, p, t, top=TOP)
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]):
        merged = states[order[0]]
        for i in order[1:]:
            merged = merged.merge(states[i])
        assert_same_report(build_report(merged, TOP), whole)
