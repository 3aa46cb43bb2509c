"""huber: PyTorch's HuberLoss (reduction mean), added through the metric registry alone.

Every expected value is computed here, independently of losscli: a float64 reference with
``np.where``, hand sums of exactly representable numbers, and two limits of the formula (a
delta above every error gives half the MSE). torch itself is not needed (it was checked once,
outside the suite, to agree to the last bit or two for several deltas).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import losscli
from losscli import Evaluator, UsageError, evaluate, make_metric

from conftest import run_cli

REL = 1e-12


def ref_losses(p: np.ndarray, t: np.ndarray, delta: float) -> np.ndarray:
    """Per-element Huber losses in float64, written from torch's documentation."""
    e = np.asarray(p, dtype=np.float64) - np.asarray(t, dtype=np.float64)
    a = np.abs(e)
    return np.where(a < delta, 0.5 * e * e, delta * (a - 0.5 * delta))


def ref_huber(p: np.ndarray, t: np.ndarray, delta: float, w: np.ndarray | None = None) -> float:
    """Mean over rows (weighted: sum(w l) / sum(w)) of each row's mean over its outputs."""
    losses = ref_losses(p, t, delta)
    rows = losses.mean(axis=1) if losses.ndim == 2 else losses
    if w is None:
        return float(math.fsum(rows) / len(rows))
    w = np.asarray(w, dtype=np.float64)
    return float(math.fsum(w * rows) / math.fsum(w))


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=0.0)


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    """Errors spread over both branches for every delta below (|e| up to ~10)."""
    rng = np.random.default_rng(20240610)
    t = rng.normal(0.0, 1.0, 3000)
    return t + rng.standard_t(2, 3000), t


# --- the formula, exactly ------------------------------------------------------------------


def test_hand_computed_value_both_branches() -> None:
    # delta 1: e = 0.5 -> 0.125, -1 (boundary) -> 0.5, 3 -> 2.5, -0.25 -> 0.03125
    value = losscli.huber([0.0, 0.0, 0.0, 0.0], [0.5, -1.0, 3.0, -0.25])
    assert value == (0.125 + 0.5 + 2.5 + 0.03125) / 4 == 0.7890625


@pytest.mark.parametrize("delta", [0.5, 0.25, 1.0, 2.0, 3.0, 1024.0])
def test_at_abs_error_equal_delta_both_branches_give_half_delta_squared(delta: float) -> None:
    # |e| == delta exactly (dyadic numbers): 0.5 delta^2 from either branch, exactly
    r = evaluate("huber", [delta, -delta, 0.0], [0.0, 0.0, delta], delta=delta, top=3)
    assert [e.loss for e in sorted(r.examples, key=lambda e: e.row)] == [0.5 * delta * delta] * 3
    assert r.value == 0.5 * delta * delta


def test_boundary_and_both_sides_with_delta_half() -> None:
    # delta 0.5: e = 0.5 -> 0.125; 0.25 -> 0.03125; 1.5 -> 0.5 (1.5 - 0.25) = 0.625;
    # -2.5 -> 0.5 (2.5 - 0.25) = 1.125; mean 1.90625 / 4, all exact in binary
    value = losscli.huber([1.5, 1.25, 2.5, -1.5], [1.0, 1.0, 1.0, 1.0], delta=0.5)
    assert value == 0.4765625


def test_one_ulp_either_side_of_delta() -> None:
    # just below delta the quadratic branch, just above the linear one (torch's |e| < delta)
    delta = 1.0
    below, above = np.nextafter(delta, 0.0), np.nextafter(delta, 2.0)
    r = evaluate("huber", [below, above], [0.0, 0.0], delta=delta, top=2)
    losses = [e.loss for e in sorted(r.examples, key=lambda e: e.row)]
    assert losses[0] == 0.5 * below * below
    assert losses[1] == delta * (above - 0.5 * delta)


def test_large_delta_is_half_mse_and_small_delta_tends_to_delta_times_mae(data) -> None:
    p, t = data
    e = p - t
    big = float(np.abs(e).max()) * 2
    assert close(losscli.huber(p, t, delta=big), 0.5 * math.fsum(e * e) / len(e))
    tiny = 1e-9
    got = losscli.huber(p, t, delta=tiny)
    assert math.isclose(got, tiny * math.fsum(np.abs(e)) / len(e), rel_tol=1e-6)


@pytest.mark.parametrize("delta", [0.1, 0.5, 1.0, 1.35, 2.0, 7.25])
def test_against_float64_reference_for_several_deltas(data, delta: float) -> None:
    p, t = data
    r = evaluate("huber", p, t, delta=delta)
    assert close(r.value, ref_huber(p, t, delta))
    e = p - t
    assert close(r.figure("mse"), math.fsum(e * e) / len(e))
    assert close(r.figure("rmse"), math.sqrt(math.fsum(e * e) / len(e)))
    assert close(r.figure("mae"), math.fsum(np.abs(e)) / len(e))
    assert r.figure("delta") == delta
    assert r.n == len(p)


def test_float32_inputs_scored_in_float64() -> None:
    rng = np.random.default_rng(3)
    p = rng.normal(0, 3, 500).astype(np.float32)
    t = rng.normal(0, 1, 500).astype(np.float32)
    # the reference widens the stored float32 values first, then does everything in float64
    assert close(losscli.huber(p, t, delta=1.5), ref_huber(p.astype(np.float64), t.astype(np.float64), 1.5))


# --- multi-output and weights ----------------------------------------------------------------


def test_multi_output_uniform_average_and_per_output_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    t = rng.normal(0, 1, (400, 3))
    p = t + rng.normal(0, [0.3, 1.0, 4.0], (400, 3))  # one output mostly quadratic, one linear
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "t.npy", t)
    r = run_cli("huber", tmp_path / "p.npy", tmp_path / "t.npy", "--delta", "0.75", "-f", "json")
    assert r.code == 0, r.stderr
    out = r.json()
    per_output = [ref_huber(p[:, j], t[:, j], 0.75) for j in range(3)]
    assert [o["output"] for o in out["outputs"]] == ["0", "1", "2"]
    for row, want in zip(out["outputs"], per_output, strict=True):
        assert close(row["value"], want)
    assert close(out["value"], math.fsum(per_output) / 3)
    assert close(out["value"], ref_huber(p, t, 0.75))
    e = p - t
    assert close(out["mse"], math.fsum((e * e).ravel()) / e.size)
    assert close(out["mae"], math.fsum(np.abs(e).ravel()) / e.size)


def test_weights_give_sum_w_l_over_sum_w(tmp_path: Path, data) -> None:
    p, t = data
    w = np.random.default_rng(2).uniform(0, 3, len(p))
    want = ref_huber(p, t, 1.25, w)
    assert close(losscli.huber(p, t, w, delta=1.25), want)
    assert close(losscli.huber(p, t, sample_weight=w, delta=1.25), want)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "t.npy", t)
    np.save(tmp_path / "w.npy", w)
    r = run_cli("huber", tmp_path / "p.npy", tmp_path / "t.npy", "--weights", tmp_path / "w.npy",
                "--delta", "1.25", "-f", "json")  # fmt: skip
    assert r.code == 0, r.stderr
    assert r.json()["weighted"] is True
    assert close(r.json()["value"], want)


def test_integer_weight_is_a_repeated_row() -> None:
    p, t = [0.0, 0.0, 0.0], [0.5, 3.0, -2.0]
    weighted = losscli.huber(p, t, [2, 1, 3])
    repeated = losscli.huber([0.0] * 6, [0.5, 0.5, 3.0, -2.0, -2.0, -2.0])
    assert weighted == repeated == (2 * 0.125 + 2.5 + 3 * 1.5) / 6


def test_weighted_multi_output() -> None:
    rng = np.random.default_rng(8)
    t = rng.normal(0, 1, (300, 2))
    p = t + rng.normal(0, 2, (300, 2))
    w = rng.uniform(0.1, 2, 300)
    r = evaluate("huber", p, t, weights=w, delta=0.5)
    assert close(r.value, ref_huber(p, t, 0.5, w))
    for (_, vals), j in zip(r.per_output, range(2), strict=True):
        assert close(vals["value"], ref_huber(p[:, j], t[:, j], 0.5, w))


# --- the command line ----------------------------------------------------------------------


def test_cli_csv_written_by_pandas(tmp_path: Path, data) -> None:
    p, t = data
    pd.DataFrame({"prediction": p}).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({"target": t}).to_csv(tmp_path / "t.csv", index=False)
    r = run_cli("huber", tmp_path / "p.csv", tmp_path / "t.csv", "--delta", "0.5", "-f", "json")
    assert r.code == 0, r.stderr
    out = r.json()
    # pandas writes floats with repr's shortest round trip, so the file holds these exact values
    assert out["metric"] == "huber"
    assert close(out["value"], ref_huber(p, t, 0.5))
    e = p - t
    assert close(out["mse"], math.fsum(e * e) / len(e))
    assert close(out["rmse"], math.sqrt(math.fsum(e * e) / len(e)))
    assert close(out["mae"], math.fsum(np.abs(e)) / len(e))
    assert out["n"] == len(p)
    assert out["provenance"]["options"]["delta"] == 0.5


def test_cli_one_csv_file_with_named_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame({"yhat": [1.5, 1.25, 2.5, -1.5], "y": [1.0, 1.0, 1.0, 1.0]})
    frame.to_csv(tmp_path / "r.csv", index=False)
    r = run_cli("huber", tmp_path / "r.csv", "--pred-col", "yhat", "--target-col", "y",
                "--delta", "0.5", "-f", "value")  # fmt: skip
    assert r.code == 0, r.stderr
    assert float(r.stdout) == 0.4765625


def test_cli_npy_default_delta_is_one(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.zeros(4))
    np.save(tmp_path / "t.npy", np.array([0.5, -1.0, 3.0, -0.25]))
    r = run_cli("huber", tmp_path / "p.npy", tmp_path / "t.npy", "-f", "json")
    assert r.code == 0, r.stderr
    assert r.json()["value"] == 0.7890625
    assert r.json()["delta"] == 1.0


def test_cli_table_title(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.array([2.5, 3.0, 4.5]))
    np.save(tmp_path / "t.npy", np.array([2.0, 3.5, 4.0]))
    r = run_cli("huber", tmp_path / "p.npy", tmp_path / "t.npy", "-f", "table")
    assert r.code == 0, r.stderr
    assert r.stdout.lstrip().startswith("Huber loss")
    assert "MSE" in r.stdout and "MAE" in r.stdout


@pytest.mark.parametrize("delta", ["0", "0.0", "-1", "-0.5", "nan", "inf"])
def test_cli_delta_not_positive_is_a_usage_error(tmp_path: Path, delta: str) -> None:
    np.save(tmp_path / "p.npy", np.zeros(3))
    np.save(tmp_path / "t.npy", np.ones(3))
    out = tmp_path / "losses.csv"
    r = run_cli("huber", tmp_path / "p.npy", tmp_path / "t.npy", f"--delta={delta}", "--per-example", out)
    assert r.code == 2
    assert "--delta" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert r.stdout == ""
    assert not out.exists()  # refused before anything was created


@pytest.mark.parametrize("delta", [0, 0.0, -1.0])
def test_python_delta_not_positive_is_a_usage_error(delta: float) -> None:
    with pytest.raises(UsageError, match="greater than 0"):
        losscli.huber([1.0], [0.0], delta=delta)
    with pytest.raises(UsageError, match="greater than 0"):
        Evaluator("huber", delta=delta)
    with pytest.raises(UsageError, match="greater than 0"):
        make_metric("huber", delta=delta)


def test_help_lists_huber() -> None:
    r = run_cli("--help")
    assert r.code == 0
    assert any(line.split()[:1] == ["huber"] for line in r.stdout.splitlines())
    h = run_cli("huber", "--help")
    assert h.code == 0
    assert "--delta" in h.stdout and "HuberLoss" in h.stdout


@pytest.mark.parametrize("extra", [["--chunk-size", "1"], ["--chunk-size", "7"], ["--threads", "2"]])
def test_independent_of_chunk_size(tmp_path: Path, extra: list[str]) -> None:
    rng = np.random.default_rng(4)
    t = rng.normal(0, 1, (700, 2))
    p = t + rng.normal(0, 1.5, (700, 2))
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "t.npy", t)
    base = run_cli("huber", tmp_path / "p.npy", tmp_path / "t.npy", "-f", "json", "--delta", "0.8")
    other = run_cli("huber", tmp_path / "p.npy", tmp_path / "t.npy", "-f", "json", "--delta", "0.8", *extra)
    assert base.code == other.code == 0, base.stderr + other.stderr
    a, b = base.json(), other.json()
    for key in ("value", "mse", "rmse", "mae"):
        assert close(a[key], b[key])
    assert [o["value"] for o in a["outputs"]] == pytest.approx([o["value"] for o in b["outputs"]], rel=REL)
    assert [(e["row"], e["loss"]) for e in a["examples"]] == [(e["row"], e["loss"]) for e in b["examples"]]
    assert close(a["value"], ref_huber(p, t, 0.8))


def test_nan_is_an_error_or_skipped(tmp_path: Path) -> None:
    p = np.array([0.0, np.nan, 0.0, 0.0])
    t = np.array([0.5, 0.0, 3.0, -0.25])
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "t.npy", t)
    r = run_cli("huber", tmp_path / "p.npy", tmp_path / "t.npy")
    assert r.code == 3 and "Traceback" not in r.stderr
    skipped = run_cli("huber", tmp_path / "p.npy", tmp_path / "t.npy", "--nan", "skip", "-f", "json")
    assert skipped.code == 0, skipped.stderr
    assert skipped.json()["skipped"] == 1
    assert skipped.json()["value"] == (0.125 + 2.5 + 0.03125) / 3


# --- the Python shortcut -------------------------------------------------------------------


def test_shortcut_keywords_and_aliases(data) -> None:
    p, t = data
    want = ref_huber(p, t, 2.0)
    assert close(losscli.huber(p, t, delta=2.0), want)
    assert close(losscli.huber(y_pred=p, y_true=t, delta=2.0), want)
    assert losscli.huber(p.tolist(), t.tolist()) == losscli.huber(p, t)
    assert isinstance(losscli.huber(p, t), float)
    assert "huber" in dir(losscli)
    with pytest.raises(UsageError):
        losscli.huber(p, t, y_pred=p)


def test_evaluator_halves_equal_the_whole(data) -> None:
    p, t = data
    whole = Evaluator("huber", delta=0.5)
    whole.update(p, t)
    halves = Evaluator("huber", delta=0.5)
    halves.update(p[:1234], t[:1234])
    halves.update(p[1234:], t[1234:])
    assert close(halves.report().value, whole.report().value)
    assert close(whole.report().value, ref_huber(p, t, 0.5))


# --- saved states: delta is a merge key ----------------------------------------------------


def _halves(tmp_path: Path, p: np.ndarray, t: np.ndarray, cut: int) -> list[Path]:
    paths = []
    for name, rows in (("a", slice(None, cut)), ("b", slice(cut, None))):
        np.save(tmp_path / f"p{name}.npy", p[rows])
        np.save(tmp_path / f"t{name}.npy", t[rows])
        paths += [tmp_path / f"p{name}.npy", tmp_path / f"t{name}.npy"]
    return paths


def test_merged_halves_equal_the_whole(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    t = rng.normal(0, 1, (500, 2))
    p = t + rng.normal(0, 2, (500, 2))
    pa, ta, pb, tb = _halves(tmp_path, p, t, 180)
    a = run_cli("huber", pa, ta, "--delta", "0.5", "--save-state", tmp_path / "a.state", "-f", "value")
    b = run_cli("huber", pb, tb, "--delta", "0.5", "--row-offset", "180",
                "--save-state", tmp_path / "b.state", "-f", "value")  # fmt: skip
    assert a.code == b.code == 0, a.stderr + b.stderr
    merged = run_cli("merge", tmp_path / "b.state", tmp_path / "a.state", "-f", "json")
    assert merged.code == 0, merged.stderr
    m = merged.json()
    assert m["metric"] == "huber" and m["delta"] == 0.5 and m["n"] == 500
    assert close(m["value"], ref_huber(p, t, 0.5))
    for row, j in zip(m["outputs"], range(2), strict=True):
        assert close(row["value"], ref_huber(p[:, j], t[:, j], 0.5))
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "t.npy", t)
    whole = run_cli("huber", tmp_path / "p.npy", tmp_path / "t.npy", "--delta", "0.5", "-f", "json").json()
    worst = [(e["row"], e["loss"]) for e in whole["examples"]]
    assert [(e["row"], e["loss"]) for e in m["examples"]] == worst


def test_states_of_different_deltas_do_not_merge(tmp_path: Path) -> None:
    p, t = np.arange(6.0), np.zeros(6)
    pa, ta, pb, tb = _halves(tmp_path, p, t, 3)
    a = run_cli("huber", pa, ta, "--save-state", tmp_path / "a.state", "-f", "value")
    b = run_cli("huber", pb, tb, "--delta", "2", "--save-state", tmp_path / "b.state", "-f", "value")
    assert a.code == b.code == 0, a.stderr + b.stderr
    r = run_cli("merge", tmp_path / "a.state", tmp_path / "b.state")
    assert r.code == 3
    assert "delta" in r.stderr and "1.0" in r.stderr and "2.0" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
