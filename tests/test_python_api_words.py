"""The Python shortcuts: predictions first and unmistakably so, warnings raised, API words in errors."""

from __future__ import annotations

import inspect
import math
import warnings

import numpy as np
import pytest

import losscli

SHORTCUTS = ("mse", "mae", "bce", "cross_entropy")


@pytest.mark.parametrize("name", SHORTCUTS)
def test_shortcuts_take_preds_then_targets(name: str) -> None:
    fn = getattr(losscli, name)
    params = list(inspect.signature(fn).parameters)
    assert params[:2] == ["preds", "targets"]
    assert "y_pred" in params and "y_true" in params  # keyword aliases
    assert "preds" in (fn.__doc__ or "")


def _bce(p: list[float], y: list[float]) -> float:
    return math.fsum(-(t * math.log(q) + (1 - t) * math.log(1 - q)) for q, t in zip(p, y, strict=True)) / len(
        p
    )


def test_scikit_learn_keywords_give_the_right_answer() -> None:
    y_true, y_pred = [0, 1, 1, 0, 1], [0.2, 0.7, 0.9, 0.4, 0.6]
    want = _bce(y_pred, y_true)  # scikit-learn's log_loss(y_true, y_pred) on these: 0.3600...
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", losscli.LossCliWarning)
        assert losscli.bce(y_true=y_true, y_pred=y_pred) == pytest.approx(want, rel=1e-12)
        assert losscli.bce(y_pred, y_true) == pytest.approx(want, rel=1e-12)
        assert losscli.mse(y_true=[1.0, 2.0], y_pred=[1.5, 2.0]) == pytest.approx(0.125, rel=1e-15)


def test_arguments_in_scikit_learns_order_are_not_silent() -> None:
    # labels passed where the probabilities go: every log is clamped, and the caller hears of it
    with pytest.warns(losscli.LossCliWarning, match="clamped"):
        losscli.bce([0, 1, 1, 0, 1], [0.2, 0.7, 0.9, 0.4, 0.6], input="probs")


def test_assumed_input_kind_is_a_warning() -> None:
    with pytest.warns(losscli.LossCliWarning, match='input="auto" read the predictions as probs'):
        losscli.bce([0.2, 0.7], [0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", losscli.LossCliWarning)
        losscli.bce([0.2, 0.7], [0, 1], input="probs")  # said explicitly: no warning


def test_a_value_and_its_alias_together_are_refused() -> None:
    with pytest.raises(losscli.UsageError, match="preds or its alias y_pred"):
        losscli.mse([1.0], [1.0], y_pred=[2.0])
    with pytest.raises(losscli.UsageError, match="needs both preds and targets"):
        losscli.mse([1.0])


def test_api_errors_name_api_parameters() -> None:
    with pytest.raises(losscli.InputError) as caught:
        losscli.mse([1.0, float("nan")], [1.0, 2.0])
    assert 'nan="skip"' in str(caught.value) and "--" not in str(caught.value)
    with pytest.raises(losscli.UsageError) as usage:
        losscli.evaluate("mse", np.zeros((3, 3)))  # one input, no columns named
    assert "pred_col" in str(usage.value) and "--pred-col" not in str(usage.value)


def test_cli_keeps_option_names(tmp_path) -> None:
    from conftest import run_cli

    (tmp_path / "p.csv").write_text("y\n1\nnan\n")
    (tmp_path / "t.csv").write_text("y\n1\n2\n")
    r = run_cli("mse", tmp_path / "p.csv", tmp_path / "t.csv")
    assert r.code == 3 and "--nan skip" in r.stderr
