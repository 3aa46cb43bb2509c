"""Invariants of the numbers, as property tests (derandomised; see conftest.py).

Promise: results agree to 1e-12 relative across chunk sizes, row orders, file formats and merge
orders (compensated float64 sums), exactly where the arithmetic is exact.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import losscli
from losscli.engine import Evaluator
from losscli.state.parts import LossState

from conftest import single_file

REL = 1e-12
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
dyadic = st.integers(-4096, 4096).map(lambda k: k / 16)  # exact in float64 sums and shifts


def pairs(elements=finite, min_size=1, max_size=60):
    return st.integers(min_size, max_size).flatmap(
        lambda n: st.tuples(
            hnp.arrays(np.float64, n, elements=elements), hnp.arrays(np.float64, n, elements=elements)
        )
    )


def close(a: float, b: float, rel: float = REL) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


@given(pairs(), st.integers(1, 17))
def test_chunk_size_does_not_matter(py, chunk) -> None:
    p, y = py
    for metric in ("mse", "mae"):
        assert close(
            losscli.evaluate(metric, p, y, chunk_size=chunk).value, losscli.evaluate(metric, p, y).value
        )


@given(pairs(), st.randoms(use_true_random=False))
def test_row_order_does_not_matter(py, rnd) -> None:
    p, y = py
    perm = np.array(rnd.sample(range(len(p)), len(p)))
    for metric in ("mse", "mae"):
        assert close(losscli.evaluate(metric, p[perm], y[perm]).value, losscli.evaluate(metric, p, y).value)


@given(pairs(max_size=20))
def test_file_format_does_not_matter(tmp_path_factory, py) -> None:
    p, y = py
    d = tmp_path_factory.mktemp("fmt")
    values = set()
    for fmt in ("csv", "parquet", "npy"):
        values.add(losscli.evaluate("mse", single_file(d, fmt, "p", p), single_file(d, fmt, "y", y)).value)
    assert max(values) - min(values) <= REL * max(abs(v) for v in values)


def _state(p: np.ndarray, y: np.ndarray, offset: int) -> LossState:
    ev = Evaluator("mse")
    ev.update(p, y, first_row=offset)
    assert ev.tallies is not None
    return ev.tallies


@given(pairs(min_size=4), st.data())
def test_merge_associative_and_commutative(py, data) -> None:
    p, y = py
    n = len(p)
    cuts = sorted(data.draw(st.lists(st.integers(1, n - 1), min_size=1, max_size=3, unique=True)))
    bounds = [0, *cuts, n]
    parts = [_state(p[a:b], y[a:b], a) for a, b in itertools.pairwise(bounds)]
    whole = _state(p, y, 0)
    order = data.draw(st.permutations(range(len(parts))))
    merged = parts[order[0]]
    for i in order[1:]:
        merged = merged.merge(parts[i])
    nested = parts[-1]  # right-nested: p0 + (p1 + (p2 + p3))
    for part in reversed(parts[:-1]):
        nested = part.merge(nested)
    for s in (merged, nested):
        assert s.n == whole.n
        # a few ulps: the compensated sums are exact up to the last bits of the lo terms
        assert abs(s.mean() - whole.mean()) <= 4 * np.spacing(abs(whole.mean()))
        assert [e.row for e in s.worst.examples()] == [e.row for e in whole.worst.examples()]


@given(pairs(), st.floats(0.001, 1000))
def test_weights(py, scale) -> None:
    p, y = py
    n = len(p)
    plain = losscli.evaluate("mse", p, y).value
    assert close(losscli.evaluate("mse", p, y, weights=np.ones(n)).value, plain)
    w = np.arange(n) % 3 + 1.0
    weighted = losscli.evaluate("mse", p, y, weights=w).value
    reps = w.astype(int)
    assert close(weighted, losscli.evaluate("mse", np.repeat(p, reps), np.repeat(y, reps)).value, 1e-12)
    assert close(losscli.evaluate("mse", p, y, weights=w * scale).value, weighted, 1e-12)
    if n > 1:
        zero = np.ones(n)
        zero[0] = 0.0
        assert close(
            losscli.evaluate("mse", p, y, weights=zero).value, losscli.evaluate("mse", p[1:], y[1:]).value
        )


def test_weight_count_mismatch_is_an_error() -> None:
    with pytest.raises(losscli.InputError, match="differ in length"):
        losscli.evaluate("mse", np.zeros(3), np.zeros(3), weights=np.ones(4))


@given(pairs(elements=dyadic), dyadic)
def test_symmetry_and_shift(py, c) -> None:
    p, y = py
    for metric in ("mse", "mae"):
        assert losscli.evaluate(metric, p, y).value == losscli.evaluate(metric, y, p).value
    assert losscli.evaluate("mse", p + c, y + c).value == losscli.evaluate("mse", p, y).value
    assert losscli.evaluate("mse", p[:, None], y[:, None]).value == losscli.evaluate("mse", p, y).value


quarters = st.integers(-32, 32).map(lambda k: k / 4)


@pytest.mark.parametrize(("dtype", "shift"), [(np.float64, 1e7), (np.float32, 1024.0), (np.float16, 256.0)])
@given(data=st.data())
def test_ce_invariant_to_adding_a_constant_to_a_row(dtype, shift, data) -> None:
    n, c = data.draw(st.integers(1, 8)), data.draw(st.integers(2, 6))
    z = data.draw(hnp.arrays(np.float64, (n, c), elements=quarters))
    t = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, c - 1)))
    bump = data.draw(hnp.arrays(np.float64, (n, 1), elements=st.sampled_from([0.0, shift, -shift])))
    base = losscli.evaluate("ce", z.astype(dtype), t, input="logits").value
    moved = losscli.evaluate("ce", (z + bump).astype(dtype), t, input="logits").value  # exact in dtype
    assert close(moved, base, 1e-12 if dtype == np.float64 else 1e-6)


@given(hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(-15, 15)), st.data())
def test_bce_logits_equals_bce_of_sigmoid(x, data) -> None:
    y = data.draw(hnp.arrays(np.float64, len(x), elements=st.floats(0, 1)))
    from_logits = losscli.evaluate("bce", x, y, input="logits").value
    from_probs = losscli.evaluate("bce", 1 / (1 + np.exp(-x)), y, input="probs").value
    assert close(from_logits, from_probs, 1e-9)


def test_bce_extreme_logits_are_finite_and_non_negative() -> None:
    x = np.array([100.0, -100.0, 1000.0, -1000.0])
    for y in (np.array([1.0, 0.0, 1.0, 0.0]), np.array([0.0, 1.0, 0.0, 1.0]), np.full(4, 0.5)):
        report = losscli.evaluate("bce", x, y, input="logits")
        assert math.isfinite(report.value) and report.value >= 0
        assert all(math.isfinite(e.loss) and e.loss >= 0 for e in report.examples)


@given(st.integers(2, 300))
def test_uniform_logits_give_perplexity_v(v) -> None:
    assert close(losscli.perplexity(np.zeros((3, v)), np.arange(3) % v), float(v), 1e-12)


def test_mean_of_ten_million_copies() -> None:
    v = 0.1
    report = losscli.evaluate("mae", np.full(10**7, v), np.zeros(10**7))
    assert abs(report.value - v) <= 4 * np.spacing(v)


def test_mean_nll_above_709_gives_inf_perplexity_with_log_perplexity(tmp_path) -> None:
    np.save(tmp_path / "lp.npy", np.full(3, -800.0))
    report = losscli.evaluate("perplexity", None, logprobs=tmp_path / "lp.npy")
    assert report.value == math.inf and report.status == "overflow"
    assert report.figure("cross_entropy") == 800.0
    data = report.to_dict()
    assert data["value"] is None and data["cross_entropy"] == 800.0
