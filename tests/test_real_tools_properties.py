"""Files as pandas and Polars write them: an index, an id column or a missing value never moves a figure.

For every metric, the same data is written as users' tools write it (pandas ``to_csv`` with its
index, ``to_parquet`` after a filter, a Kaggle-style ``id`` column, NaN written as ``""`` or an
empty field) and scored in one-file and two-file mode; the figure must equal a float64 reference
computed here on the clean rows alone (with ``nan="skip"`` where a value is missing).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import losscli

import references as ref

REL = 1e-12
METRICS = ("mse", "mae", "bce", "ce")
CLASSES = ("cat", "dog", "bird")


def _frames(metric: str, rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predictions and targets of ``n`` rows, with the column names people give them."""
    if metric in ("mse", "mae"):
        return pd.DataFrame({"y_pred": rng.normal(3, 2, n)}), pd.DataFrame({"y_true": rng.normal(3, 2, n)})
    if metric == "bce":
        return (
            pd.DataFrame({"y_pred": rng.uniform(0.02, 0.98, n)}),
            pd.DataFrame({"y_true": rng.integers(0, 2, n).astype(np.float64)}),
        )
    z = rng.normal(0, 2, (n, len(CLASSES)))
    proba = np.exp(z - z.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    # predict_proba columns are named after the classes; class ids are positions here
    return pd.DataFrame(proba, columns=[f"p_{c}" for c in CLASSES]), pd.DataFrame(
        {"label": rng.integers(0, len(CLASSES), n)}
    )


def _reference(metric: str, preds: pd.DataFrame, targets: pd.DataFrame) -> float:
    p, t = preds.to_numpy(np.float64), targets.to_numpy(np.float64)
    if metric == "mse":
        return ref.mse(p[:, 0], t[:, 0])
    if metric == "mae":
        return ref.mae(p[:, 0], t[:, 0])
    if metric == "bce":
        return ref.bce_probs(p[:, 0], t[:, 0])
    return ref.ce_probs(p, t[:, 0].astype(np.int64))


def _write(df: pd.DataFrame, path: Path, fmt: str, index: bool) -> Path:
    if fmt == "parquet":
        df.to_parquet(path.with_suffix(".parquet"), index=index)
        return path.with_suffix(".parquet")
    if fmt == "polars":  # Polars has no index: its files never hold one
        pl.from_pandas(df).write_csv(path.with_suffix(".csv"))
        return path.with_suffix(".csv")
    sep = "\t" if fmt == "tsv" else ","
    out = path.with_suffix("." + fmt)
    df.to_csv(out, sep=sep, index=index)
    return out


def _ends_missing(df: pd.DataFrame) -> bool:
    """A one-column frame whose last value is missing."""
    return df.shape[1] == 1 and bool(df.iloc[-1].isna().all())


def _evaluate(metric: str, files: list[Path], **options: object) -> losscli.Report:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return losscli.evaluate(metric, *files, **options)  # type: ignore[arg-type]


@settings(max_examples=150)
@given(
    metric=st.sampled_from(METRICS),
    fmt=st.sampled_from(["csv", "tsv", "parquet", "polars"]),
    variant=st.sampled_from(["index", "id", "string_id", "missing", "filtered"]),
    two_files=st.booleans(),
    n=st.integers(3, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_real_files_score_like_the_clean_reference(
    tmp_path_factory: pytest.TempPathFactory,
    metric: str,
    fmt: str,
    variant: str,
    two_files: bool,
    n: int,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    tmp = tmp_path_factory.mktemp("real")
    preds, targets = _frames(metric, rng, n)
    options: dict[str, object] = {}
    index = variant in ("index", "filtered")
    clean_p, clean_t = preds, targets
    if variant == "filtered":  # pandas keeps the surviving row labels: an index column in the file
        keep = rng.random(n) < 0.7
        keep[0] = True
        preds, targets = preds[keep], targets[keep]
        clean_p, clean_t = preds, targets
    if variant in ("id", "string_id"):
        ids = np.arange(1000, 1000 + n)
        id_col = ids if variant == "id" else np.array([f"s{i:05d}" for i in ids])
        preds = preds.assign(id=id_col)[["id", *preds.columns]]
        targets = targets.assign(id=id_col)[["id", *targets.columns]]
    if variant == "missing":
        holes = rng.choice(n, size=max(1, n // 5), replace=False)
        preds = preds.astype(np.float64)
        preds.iloc[holes[: len(holes) // 2 + 1], 0] = np.nan
        targets = targets.astype(np.float64)
        targets.iloc[holes[len(holes) // 2 :], 0] = np.nan
        ok = ~(preds.isna().any(axis=1).to_numpy() | targets.isna().any(axis=1).to_numpy())
        if not ok.any():
            return
        clean_p, clean_t = preds[ok], targets[ok]
        options["nan"] = "skip"
    if metric == "ce" and not two_files:
        options["target_col"] = "label"
    want = _reference(metric, clean_p, clean_t)
    if two_files:
        files = [_write(preds, tmp / "preds", fmt, index), _write(targets, tmp / "targets", fmt, index)]
    else:
        both = pd.concat([preds, targets.drop(columns=["id"], errors="ignore")], axis=1)
        files = [_write(both, tmp / "data", fmt, index)]
    if two_files and fmt == "polars" and _ends_missing(preds) != _ends_missing(targets):
        # Polars writes a null in the last row of a one-column CSV as an empty last line, which
        # holds no row: the files then differ in length, and the refusal says why
        with pytest.raises(losscli.InputError, match="ends with 1 empty line"):
            _evaluate(metric, files, **options)
        return
    report = _evaluate(metric, files, **options)
    assert report.n == len(clean_p)
    assert math.isclose(report.value, want, rel_tol=REL), (report.value, want)
