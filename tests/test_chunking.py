"""Results do not depend on how the input is cut: chunk size, reader boundaries, merge order."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import losscli
from losscli.engine import Evaluator
from losscli.state.parts import LossState

from conftest import run_cli, single_file, write_csv, write_parquet


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    n = 3000
    y = rng.normal(0, 1e3, n)
    return {
        "p": y + rng.standard_cauchy(n),  # heavy tails: a few huge errors
        "y": y,
        "z": rng.normal(0, 5, (n, 7)),
        "t": rng.integers(0, 7, n),
        "prob": rng.random(n),
        "lab": (rng.random(n) < 0.5).astype(float),
    }


@pytest.mark.parametrize("metric", ["mse", "mae", "bce", "ce", "perplexity"])
def test_chunk_size_one_equals_default(data, metric: str) -> None:
    if metric in ("mse", "mae"):
        args = (data["p"], data["y"])
    elif metric == "bce":
        args = (data["prob"], data["lab"])
    else:
        args = (data["z"], data["t"])
    default = losscli.evaluate(metric, *args)
    for size in (1, 7, 1000):
        other = losscli.evaluate(metric, *args, chunk_size=size)
        assert abs(other.value - default.value) <= 1e-12 * abs(default.value), size
        assert other.n == default.n
        assert [e.row for e in other.examples] == [e.row for e in default.examples]


def test_chunk_size_through_cli_files(tmp_path, data) -> None:
    pf = write_csv(tmp_path / "p.csv", {"p": data["p"]})
    tf = single_file(tmp_path, "npy", "y", data["y"])
    values = set()
    for size in ("1", "13", "100000"):
        r = run_cli("mse", pf, tf, "--chunk-size", size, "-f", "value")
        assert r.code == 0, r.stderr
        values.add(float(r.stdout))
    lo, hi = min(values), max(values)
    assert (hi - lo) <= 1e-12 * hi


def test_alignment_across_different_boundaries(tmp_path, data) -> None:
    # Parquet row groups of 333, a CSV read in pyarrow blocks, and .npy chunks of 250: the
    # aligner must pair row i with row i everywhere.
    p, y = data["p"], data["y"]
    pf = write_parquet(tmp_path / "p.parquet", {"p": p}, row_group_size=333)
    tf = write_csv(tmp_path / "y.csv", {"y": y})
    wf = single_file(tmp_path, "npy", "w", np.arange(len(p)) % 5 + 1.0)
    got = losscli.evaluate("mae", pf, tf, weights=wf, chunk_size=250).value
    w = np.arange(len(p)) % 5 + 1.0
    want = math.fsum(w * np.abs(p - y)) / math.fsum(w)
    assert got == pytest.approx(want, rel=1e-12)


def test_row_order_does_not_matter(data) -> None:
    perm = np.random.default_rng(3).permutation(len(data["y"]))
    a = losscli.evaluate("ce", data["z"], data["t"]).value
    b = losscli.evaluate("ce", data["z"][perm], data["t"][perm]).value
    assert b == pytest.approx(a, rel=1e-12)


def _state(metric: str, p: np.ndarray, t: np.ndarray, offset: int = 0) -> LossState:
    ev = Evaluator(metric)
    ev.update(p, t, first_row=offset)
    assert ev.tallies is not None
    return ev.tallies


@pytest.mark.parametrize("metric", ["mse", "ce"])
def test_merge_is_associative_and_commutative(data, metric: str) -> None:
    p, t = (data["p"], data["y"]) if metric == "mse" else (data["z"], data["t"])
    cuts = [0, 500, 501, 1700, len(t)]
    parts = [_state(metric, p[a:b], t[a:b], a) for a, b in itertools.pairwise(cuts)]
    whole = _state(metric, p, t)
    left = parts[0].merge(parts[1]).merge(parts[2]).merge(parts[3])
    right = parts[0].merge(parts[1].merge(parts[2].merge(parts[3])))
    shuffled = parts[3].merge(parts[1]).merge(parts[0].merge(parts[2]))
    for s in (left, right, shuffled):
        assert s.n == whole.n
        assert abs(s.mean() - whole.mean()) <= 4 * np.spacing(abs(whole.mean()))
        # the worst-examples set is unique (ties go to the earlier row), so merging rebuilds it
        assert [e.row for e in s.worst.examples()] == [e.row for e in whole.worst.examples()]


def test_compensation_survives_cancellation_across_chunks() -> None:
    from losscli.state.parts import CompensatedVector

    acc = CompensatedVector.zeros(1)
    for v in (1e16, 1.0, -1e16):  # one value per chunk
        acc.add(np.array([v]))
    assert acc.total()[0] == 1.0


def test_mean_of_many_copies_is_the_value() -> None:
    v = 0.1
    report = losscli.evaluate("mae", np.full(10**6, v), np.zeros(10**6), chunk_size=9999)
    assert abs(report.value - v) <= 2 * np.spacing(v)


def test_two_worker_threads_match_one(tmp_path, data) -> None:
    np.save(tmp_path / "z.npy", data["z"])
    np.save(tmp_path / "t.npy", data["t"])
    np.save(tmp_path / "p.npy", data["p"])
    np.save(tmp_path / "y.npy", data["y"])
    for metric, a, b in (("ce", "z", "t"), ("mse", "p", "y")):
        one = losscli.evaluate(metric, tmp_path / f"{a}.npy", tmp_path / f"{b}.npy", chunk_size=37, threads=1)
        two = losscli.evaluate(metric, tmp_path / f"{a}.npy", tmp_path / f"{b}.npy", chunk_size=37, threads=2)
        assert two.value == pytest.approx(one.value, rel=1e-12)
        assert two.n == one.n
        assert [e.row for e in two.examples] == [e.row for e in one.examples]


def test_two_worker_threads_report_the_first_bad_row(tmp_path) -> None:
    p = np.zeros(5000)
    p[4321] = np.nan
    p[1234] = np.inf
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", np.zeros(5000))
    with pytest.raises(losscli.InputError, match="row 1234"):
        losscli.evaluate("mse", tmp_path / "p.npy", tmp_path / "y.npy", chunk_size=10, threads=2)


def test_big_quoted_csv_takes_the_block_path(tmp_path) -> None:
    rng = np.random.default_rng(9)
    n = 40_000  # > 256 KB, so pyarrow parses it in blocks
    p, y = rng.normal(size=n), rng.normal(size=n)
    lines = ["pred,target"] + [f'"{a!r}",{b!r}' for a, b in zip(p.tolist(), y.tolist(), strict=True)]
    path = tmp_path / "q.csv"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 256 << 10
    assert losscli.evaluate("mae", path).value == pytest.approx(math.fsum(np.abs(p - y)) / n, rel=1e-12)
