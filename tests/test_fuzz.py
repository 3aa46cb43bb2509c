"""Fuzzed readers: arbitrary bytes in every format end in losscli's own error, or a result.

The short runs here are fixed-seed (the suite must be deterministic); `make fuzz` runs the same
target for a bounded time with fresh seeds and stores any crash in fuzz_corpus/, which the
first test replays forever after.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzzing import FORMATS, corpus_cases, mutate, run_target, seeds


@pytest.mark.parametrize(("fmt", "path"), corpus_cases(), ids=lambda v: getattr(v, "name", v))
def test_regression_corpus(tmp_path, fmt, path) -> None:
    run_target(fmt, path.read_bytes(), tmp_path)  # must not raise anything but LossCliError


@pytest.mark.parametrize("fmt", FORMATS)
def test_mutated_seeds_fixed_run(tmp_path, fmt: str) -> None:
    rng = random.Random(f"losscli-{fmt}")
    base = seeds()[fmt]
    assert run_target(fmt, base, tmp_path)[0] is None  # the seed itself scores
    for _ in range(300):
        run_target(fmt, mutate(rng, base), tmp_path)


@pytest.mark.parametrize("fmt", FORMATS)
@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes(tmp_path, fmt: str, data: bytes) -> None:
    run_target(fmt, data, tmp_path)
