"""Every model of a comparison treated alike: a row one model cannot score is skipped by all
(--nan skip), and a refusal names the model whose file does not fit the targets."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from ..options import Evaluation


def _finite_rows(a: NDArray[Any] | None) -> NDArray[np.bool_] | None:
    if a is None or a.dtype.kind != "f" or len(a) == 0:
        return None
    fin: NDArray[np.bool_] = np.isfinite(a)
    return fin if fin.ndim == 1 else np.asarray(fin.reshape(len(a), -1).all(axis=1), dtype=bool)


def skip_alike(models: Any, preds: list[NDArray[Any] | None], shared: list[NDArray[Any] | None]) -> None:
    """--nan skip: a row one model cannot score (a non-finite prediction) is skipped for every
    model, so each model's value and the deltas are on the same rows (targets and weights are
    shared, so every model skips their rows anyway). ``unpaired`` counts the rows some model
    could have scored and another not."""
    oks = [ok for ok in map(_finite_rows, preds) if ok is not None]
    bad = None if not oks else ~np.logical_and.reduce(oks)
    mask = bad if bad is not None and bad.any() else None
    for ev in models.evaluators:
        ev.also_skip = mask
    if mask is not None:
        usable = np.logical_or.reduce(oks) & mask
        for ok in map(_finite_rows, shared):
            if ok is not None:
                usable &= ok
        models.unpaired += int(np.count_nonzero(usable))


def blamed(exc: InputError, path: str | None, baseline: str | None) -> InputError:
    """A later model's refusal, when the baseline fit the same targets, is that model's fault:
    name its file (a column named in the message is the other file's)."""
    if path is None or exc.path == path:
        return exc
    detail = exc.detail.replace(f" (the predictions: {path})", "")  # named in front instead
    if exc.column is not None and exc.path != path:
        detail = f"column {exc.column} of {exc.path}: {detail}"
    detail += f" (the targets fit the baseline {baseline}: every model needs the same rows and columns)"
    return InputError(detail, path=path, row=exc.row)


def model_path(e: Evaluation) -> str | None:
    source = e.inputs.preds or e.inputs.logprobs
    return None if source is None else source.path
