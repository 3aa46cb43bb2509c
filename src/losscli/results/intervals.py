"""The ``ci`` object of a report (and of each group's row): intervals of the headline and its
main companions.

Which figures get one: every per-example mean the state keeps moments of (the headline, and MSE
or MAE beside it), RMSE (the square root of MSE's interval, clipped at 0), and for perplexity
cross-entropy, bits per token and perplexity itself (exp of cross-entropy's interval). Accuracy,
counts and per-sequence figures get none. With --cluster-col every interval is the cluster
ratio estimator sum(w x) / sum(w) over clusters (cluster-robust variance, t(G-1); or a bootstrap
with one Poisson weight per cluster). Everything is computed from the state alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..state.evalstate import EvalState
from ..state.groups import GroupTallies, typed
from ..state.intervals import LOSS, IntervalTallies
from ..stats.intervals import Interval, mean_interval, percentile_interval, ratio_interval
from ..stats.moments import RatioMoments
from ..stats.poisson import BootstrapSums, key_identity

LN2 = math.log(2.0)
_NAN = Interval(math.nan, math.nan)


def ci_report(state: EvalState, figure_keys: set[str]) -> dict[str, Any] | None:
    """``{"level", "method", "<key>": [low, high], ...}``, or None when the run had no --ci."""
    options = state.header.metric_options.get("ci")
    ci = state.tallies.ci
    if options is None or ci is None:
        return None
    level, boot = float(options["level"]), int(options.get("bootstrap") or 0)
    seed, cluster = int(options.get("seed") or 0), options.get("cluster_col")
    perplexity = state.header.metric == "perplexity"
    if cluster is not None and ci.clusters is not None:
        y, n, ids = _by_cluster(ci.clusters, ci.names, None)
        method, found = _cluster_intervals(y, n, ids, ci.names, level, boot, seed, str(cluster))
        found = _derived(state, found)
    elif perplexity:
        method, ce = _token_interval(state, level, boot, seed)
        found = _derived(state, {LOSS: ce})
    else:
        method, found = _example_intervals(state, level, boot)
    return _ci_object(level, method, boot, seed, found, figure_keys)


def _ci_object(level: float, method: str, boot: int, seed: int, found: dict[str, Interval],
               figure_keys: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"level": level, "method": method}
    if boot:
        out["replicates"], out["seed"] = boot, seed
    for key, iv in found.items():
        if key in figure_keys or key == "value":
            out[key] = [_number(iv.low), _number(iv.high)]
    return out


def group_cis(state: EvalState, figure_keys: set[str]) -> list[dict[str, Any] | None] | None:
    """Each group's ``ci`` in the order of ``results.groups.group_rows`` (key order)."""
    options, ci, groups = state.header.metric_options.get("ci"), state.tallies.ci, state.tallies.groups
    if options is None or ci is None or groups is None:
        return None
    level, boot = float(options["level"]), int(options.get("bootstrap") or 0)
    seed, cluster = int(options.get("seed") or 0), options.get("cluster_col")
    order = groups.order()
    out: list[dict[str, Any] | None] = []
    if ci.clusters is not None:  # --cluster-col, or perplexity's groups clustered by sequence
        by_group: dict[Any, list[int]] = {}
        width = len(groups.columns)
        for i, key in enumerate(ci.clusters.keys):
            by_group.setdefault(typed(key[:width]), []).append(i)
        shown = str(cluster) if cluster is not None else "sequence"
        for g in order:
            rows = by_group.get(typed(groups.keys[g]), [])
            y, n, ids = _by_cluster(ci.clusters, ci.names, rows)
            method, found = _cluster_intervals(y, n, ids, ci.names, level, boot, seed, shown)
            out.append(_ci_object(level, method, boot, seed, _derived(state, found), figure_keys))
        return out
    if ci.groups is None:
        return None
    index = ci.groups.index()
    for g in order:
        at = index.get(typed(groups.keys[g]))
        if at is None:  # a group with no counted example
            out.append(None)
            continue
        method, found = _group_example_intervals(state, ci, at, level, boot)
        out.append(_ci_object(level, method, boot, seed, _derived(state, found), figure_keys))
    return out


def _example_method(state: EvalState, boot: int) -> str:
    if boot:
        return f"bootstrap: percentile, {boot} Poisson(1) replicates over examples"
    if state.header.binding and state.header.binding.weighted:
        return ("t: weighted mean -/+ t(n_eff-1) x weighted standard error, n_eff = "
                "(sum w)^2 / sum w^2 (Kish)")
    return "t: mean -/+ t(n-1) x standard error, from streamed moments"


def _example_intervals(state: EvalState, level: float, boot: int) -> tuple[str, dict[str, Interval]]:
    ci = state.tallies.ci
    assert ci is not None
    found: dict[str, Interval] = {}
    for j, name in enumerate(ci.names):
        if ci.boot is not None:
            found[name] = percentile_interval(ci.boot.ratios(j, len(ci.names)), level)
        else:
            found[name] = mean_interval(ci.moments[name], level)
    return _example_method(state, boot), _derived(state, found)


def _group_example_intervals(state: EvalState, ci: IntervalTallies, at: int, level: float,
                             boot: int) -> tuple[str, dict[str, Interval]]:
    groups = ci.groups
    assert groups is not None
    found: dict[str, Interval] = {}
    k = len(ci.names)
    for j, name in enumerate(ci.names):
        if boot and groups.boot is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                reps = groups.boot[at][:, j] / groups.boot[at][:, k]
            found[name] = percentile_interval(reps, level)
        else:
            found[name] = mean_interval(groups.moments(at, j), level)
    if state.header.metric == "perplexity":  # one flat sequence: tokens as independent
        return f"{_example_method(state, boot)} (tokens treated as independent)", found
    return _example_method(state, boot), found


def _derived(state: EvalState, found: dict[str, Interval]) -> dict[str, Interval]:
    """RMSE from MSE's interval; perplexity's figures from cross-entropy's (``found["value"]``)."""
    if state.header.metric == "perplexity":
        ce = found[LOSS]
        return {"cross_entropy": ce, "bits_per_token": _scaled(ce, 1.0 / LN2), "value": _exp(ce)}
    mse_key = LOSS if state.header.metric == "mse" else "mse"
    if mse_key in found:
        lo, hi = found[mse_key]
        found["rmse"] = Interval(math.sqrt(max(lo, 0.0)), math.sqrt(max(hi, 0.0)))
    return found


def _by_cluster(clusters: GroupTallies, names: Sequence[str], rows: list[int] | None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cluster: sums of w*x per column (G, columns), of w (G,) and identities (G,) uint64.
    ``rows``: these rows of the cluster tallies (one group's); None: all, added up by cluster
    value across groups (a patient seen in two groups is one cluster overall)."""
    cols = [0, *range(2, 2 + len(names) - 1), 1]  # loss, companions, weight in GroupTallies' row
    idx = np.arange(len(clusters.keys)) if rows is None else np.asarray(rows, dtype=np.intp)
    sums = clusters.hi[idx][:, cols] + clusters.lo[idx][:, cols]
    values = [clusters.keys[i][-1] for i in idx.tolist()]
    if rows is None and len(clusters.columns) > 1:  # grouped: one cluster is in several groups
        index: dict[Any, int] = {}
        at = np.array([index.setdefault(typed((v,)), len(index)) for v in values], dtype=np.intp)
        merged = np.zeros((len(index), sums.shape[1]))
        np.add.at(merged, at, sums)
        firsts: dict[int, Any] = {}
        for v, a in zip(values, at.tolist(), strict=True):
            firsts.setdefault(a, v)
        values, sums = [firsts[a] for a in range(len(index))], merged
    ids = np.array([key_identity(v) for v in values], dtype=np.uint64)
    used = sums[:, -1] > 0
    return sums[used, :-1], sums[used, -1], ids[used]


def _cluster_intervals(y: np.ndarray, n: np.ndarray, ids: np.ndarray, names: Sequence[str],
                       level: float, boot: int, seed: int, column: str
                       ) -> tuple[str, dict[str, Interval]]:
    """Cluster ratio intervals of every column: t(G-1) with the cluster-robust variance, or a
    percentile bootstrap with one Poisson(1) weight per cluster."""
    g = int(n.shape[0])
    found: dict[str, Interval] = {}
    if boot:
        sums = BootstrapSums(seed, boot, len(names) + 1)
        if g:
            sums.update(ids, np.column_stack([y, n]))
        for j, name in enumerate(names):
            found[name] = percentile_interval(sums.ratios(j, len(names)), level) if g >= 2 else _NAN
        return (f"bootstrap: percentile, {boot} Poisson(1) replicates over {g} clusters "
                f"(clustered by {column})"), found
    for j, name in enumerate(names):
        r = RatioMoments()
        r.update(np.ascontiguousarray(y[:, j]), n)
        found[name] = ratio_interval(r, level)
    return (f"t: clustered by {column}, ratio estimator sum(w x)/sum(w) over {g} clusters, "
            "cluster-robust (linearised) variance, t(G-1)"), found


def _token_interval(state: EvalState, level: float, boot: int, seed: int) -> tuple[str, Interval]:
    """Cross-entropy's interval, clustered by sequence: sum NLL / sum tokens over sequences."""
    seqs, ci = state.tallies.sequences, state.tallies.ci
    assert ci is not None
    if seqs is not None:
        used = np.flatnonzero(seqs.tokens > 0)
        if used.size >= 2:
            nll, tokens = seqs.nll[used], seqs.tokens[used].astype(np.float64)
            if boot:
                sums = BootstrapSums(seed, boot, 2)
                sums.update((used + seqs.first).astype(np.uint64), np.stack([nll, tokens], axis=1))
                iv = percentile_interval(sums.ratios(0, 1), level)
                return (f"bootstrap: percentile, {boot} Poisson(1) replicates over {used.size} "
                        "sequences (clustered by sequence)"), iv
            r = RatioMoments()
            r.update(nll, tokens)
            return (f"t: clustered by sequence, ratio estimator sum(NLL)/sum(tokens) over "
                    f"{used.size} sequences, linearised variance, t(G-1)"), ratio_interval(r, level)
    note = "one sequence: tokens treated as independent"
    if boot:
        iv = percentile_interval(ci.boot.ratios(0, len(ci.names)), level) if ci.boot else _NAN
        return f"bootstrap: percentile, {boot} Poisson(1) replicates over tokens ({note})", iv
    return f"t: over tokens ({note})", mean_interval(ci.moments[LOSS], level)


def _scaled(iv: Interval, factor: float) -> Interval:
    return Interval(iv.low * factor, iv.high * factor)


def _exp(iv: Interval) -> Interval:
    def safe(x: float) -> float:
        return math.exp(x) if x < 709.0 else math.inf

    return Interval(safe(iv.low), safe(iv.high))


def _number(x: float) -> float | None:
    return x if math.isfinite(x) else None

