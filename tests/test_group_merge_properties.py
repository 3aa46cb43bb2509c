"""Group tallies: parts of any sizes, merged in any tree (through the state file), equal the
single run: per-group figures within 1e-12 of a numpy reference and of the single run, counts
exact; and the blockwise bincount sum of a 1M-row group against math.fsum."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import losscli
from losscli.engine.grouping import group_sum
from losscli.results.report import build_report
from losscli.state import EvalState

REL = 1e-12
SETTINGS = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= REL * max(abs(a), abs(b))


def _tree(states: list[EvalState], shape: list[int]) -> EvalState:
    """Merge in a tree drawn by hypothesis: pick a pair, merge it, until one is left."""
    states = list(states)
    for s in shape:
        if len(states) == 1:
            break
        i = s % (len(states) - 1)
        states[i : i + 2] = [states[i].merge(states[i + 1])]
    while len(states) > 1:
        states[:2] = [states[0].merge(states[1])]
    return states[0]


@SETTINGS
@given(
    n=st.integers(1, 300),
    cuts=st.lists(st.integers(0, 300), max_size=6),
    chunk=st.integers(1, 64),
    shape=st.lists(st.integers(0, 10), max_size=8),
    seed=st.integers(0, 2**16),
    weighted=st.booleans(),
)
def test_parts_merged_in_any_tree_equal_one_run(
    tmp_path: Path, n: int, cuts: list[int], chunk: int, shape: list[int], seed: int, weighted: bool
) -> None:
    rng = np.random.default_rng(seed)
    keys = np.array(["a", "b", "c", None], dtype=object)[rng.integers(0, 4, n)]
    df = pd.DataFrame(
        {"pred": rng.normal(size=n) * 1e3, "target": rng.normal(size=n), "w": rng.random(n), "k": keys}
    )
    bounds = sorted({0, n, *[c for c in cuts if c < n]})
    opts: dict[str, Any] = {"pred_col": "pred", "target_col": "target", "group_by": "k", "chunk_size": chunk}
    if weighted:
        opts["weight_col"] = "w"
    states = []
    for j, (a, b) in enumerate(itertools.pairwise(bounds)):
        path = tmp_path / f"part{seed}_{j}.parquet"
        df.iloc[a:b].reset_index(drop=True).to_parquet(path)
        save = tmp_path / f"part{seed}_{j}.state"
        losscli.evaluate("mse", str(path), row_offset=a, save_state=str(save), **opts)
        states.append(EvalState.load(save))
    merged = build_report(_tree(states, shape))
    whole_path = tmp_path / f"whole{seed}.parquet"
    df.to_parquet(whole_path)
    whole = losscli.evaluate("mse", str(whole_path), **{**opts, "chunk_size": None})
    assert merged.groups is not None and whole.groups is not None
    assert [g.key for g in merged.groups] == [g.key for g in whole.groups]
    w = df.w.to_numpy() if weighted else np.ones(n)
    sq = ((df.pred - df.target) ** 2).to_numpy()
    for m, g in zip(merged.groups, whole.groups, strict=True):
        assert (m.n, m.ignored, m.skipped) == (g.n, g.ignored, g.skipped)
        for fm, fg in zip(m.figures, g.figures, strict=True):
            assert fm.key == fg.key and _close(float(fm.value), float(fg.value)), fm.key  # type: ignore[arg-type]
        k = g.key["k"]
        mask = np.array([x is None if k is None else x == k for x in keys])
        assert _close(g.value, float(np.sum(sq[mask] * w[mask]) / np.sum(w[mask])))


def test_blockwise_group_sums_of_a_million_rows_against_fsum() -> None:
    """One chunk-sized bincount per 65,536 rows, as the engine does, then fsum of the chunks'
    sums: each group's total within 1e-12 relative of math.fsum over its million values."""
    rng = np.random.default_rng(11)
    n, chunk = 2_000_000, 65_536
    codes = rng.integers(0, 2, n).astype(np.intp)
    values = rng.lognormal(0.0, 2.0, n)  # losses: non-negative, spread over orders of magnitude
    per_chunk = [group_sum(codes[s : s + chunk], values[s : s + chunk], 2) for s in range(0, n, chunk)]
    for g in range(2):
        exact = math.fsum(values[codes == g].tolist())
        ours = math.fsum(p[g] for p in per_chunk)  # the engine compensates across chunks
        assert abs(ours - exact) <= REL * exact
