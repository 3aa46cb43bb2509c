"""Fresh-eyes findings on --ci and ``losscli compare`` (issue 13 review): each test holds a
float64 reference or the exact behaviour the review asked for, written here."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from losscli.cli import main


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(11)
    n = 200
    y = rng.normal(size=n)
    a, b = y + rng.normal(size=n), y + 0.9 * rng.normal(size=n)
    for name, v in (("y", y), ("a", a), ("b", b)):
        np.save(tmp_path / f"{name}.npy", v)
    return tmp_path, y, a, b


def test_compare_has_no_spurious_worst_rows_warning(pair, capsys):
    d, *_ = pair
    code, out, err = run_cli(
        ["compare", "mse", str(d / "y.npy"), str(d / "a.npy"), str(d / "b.npy"), "-f", "json"], capsys
    )
    assert code == 0 and "worst rows" not in err
    assert not any("worst rows" in w for w in json.loads(out)["warnings"])
