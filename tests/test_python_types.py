"""The Python API's names and types: make_metric takes evaluate's keywords, the docstring and the
README list every keyword once, and inputs are typed for a type checker (not ``Any``)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import losscli


def test_make_metric_takes_evaluates_names_and_refuses_others() -> None:
    from losscli.metrics.ce import CEScorer

    assert isinstance(losscli.make_metric("ce", input="logits"), CEScorer)
    with pytest.raises(losscli.UsageError, match=r"input_kind: not an option of ce \(its options: input,"):
        losscli.make_metric("ce", input_kind="logits")
    with pytest.raises(losscli.UsageError, match=r"^input must be one of"):
        losscli.make_metric("ce", input="logit")


def test_every_keyword_is_documented_once_in_the_docstring_and_the_readme() -> None:
    """``evaluate``'s docstring and the README's list name every keyword build_evaluation takes."""
    import re
    from pathlib import Path

    from losscli.api import run_evaluation
    from losscli.metrics import registry
    from losscli.options import COMMON

    keywords = set(COMMON) | {o.name for n in registry.names() for o in registry.get(n).options}
    doc = (run_evaluation.__doc__ or "").split("Options,")[1]
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("Its keywords are the command line") : readme.index("Errors\nare `losscli")]
    for name in sorted(keywords):
        assert len(re.findall(rf"``{name}``", doc)) == 1, name
        assert len(re.findall(rf"`{name}`", section)) == 1, name


def test_inputs_are_typed_not_any() -> None:
    from typing import get_args, get_type_hints

    from losscli.api import run_evaluation
    from losscli.metrics.mse import mse
    from losscli.metrics.shortcuts import SupportsArrowStream

    for function in (mse, run_evaluation):
        hint = get_type_hints(function)["preds"]
        members = get_args(hint)
        assert Any not in members and SupportsArrowStream in members and str in members


def test_a_type_checker_accepts_sources_and_refuses_a_set(tmp_path: Any) -> None:
    pytest.importorskip("mypy")
    snippet = tmp_path / "caller.py"
    snippet.write_text(
        "import numpy as np\n"
        "from pathlib import Path\n"
        "import losscli\n"
        "a = np.zeros(3)\n"
        "x: float = losscli.mse(a, [1.0, 2.0, 3.0])\n"
        "y: float = losscli.cross_entropy(Path('s.npy'), 'l.npy', input='logits')\n"
        "r: losscli.Report = losscli.evaluate('mse', {'y_pred': a, 'y_true': a})\n"
        "s = losscli.make_metric('ce', input='logits')\n"
        "losscli.mse({1, 2}, a)\n",
        encoding="utf-8",
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "c"),
            str(snippet),
        ],
        capture_output=True,
        text=True,
    )
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and "caller.py:9:" in errors[0] and '"set[int]"' in errors[0], out.stdout
