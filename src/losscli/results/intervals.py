"""The ``ci`` object of a report: intervals of the headline and its main companions.

Which figures get one: every per-example mean the state keeps moments of (the headline, and MSE
or MAE beside it), RMSE (the square root of MSE's interval, clipped at 0), and for perplexity
cross-entropy, bits per token and perplexity itself (exp of cross-entropy's interval). Accuracy,
counts and per-sequence figures get none. Everything is computed from the state alone.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..state.evalstate import EvalState
from ..state.intervals import LOSS
from ..stats.intervals import Interval, mean_interval, percentile_interval, ratio_interval
from ..stats.moments import RatioMoments
from ..stats.poisson import BootstrapSums

LN2 = math.log(2.0)


def ci_report(state: EvalState, figure_keys: set[str]) -> dict[str, Any] | None:
    """``{"level", "method", "<key>": [low, high], ...}``, or None when the run had no --ci."""
    options = state.header.metric_options.get("ci")
    ci = state.tallies.ci
    if options is None or ci is None:
        return None
    level, boot = float(options["level"]), int(options.get("bootstrap") or 0)
    if state.header.metric == "perplexity":
        method, ce = _token_interval(state, level, boot, int(options.get("seed") or 0))
        found = {"cross_entropy": ce, "bits_per_token": _scaled(ce, 1.0 / LN2), "value": _exp(ce)}
    else:
        method, found = _example_intervals(state, level, boot)
    out: dict[str, Any] = {"level": level, "method": method}
    if boot:
        out["replicates"], out["seed"] = boot, int(options.get("seed") or 0)
    for key, iv in found.items():
        if key in figure_keys or key == "value":
            out[key] = [_number(iv.low), _number(iv.high)]
    return out


def _example_intervals(state: EvalState, level: float, boot: int) -> tuple[str, dict[str, Interval]]:
    ci = state.tallies.ci
    assert ci is not None
    weighted = bool(state.header.binding and state.header.binding.weighted)
    found: dict[str, Interval] = {}
    for j, name in enumerate(ci.names):
        if ci.boot is not None:
            found[name] = percentile_interval(ci.boot.ratios(j, len(ci.names)), level)
        else:
            found[name] = mean_interval(ci.moments[name], level)
    mse_key = LOSS if state.header.metric == "mse" else "mse"
    if mse_key in found:
        lo, hi = found[mse_key]
        found["rmse"] = Interval(math.sqrt(max(lo, 0.0)), math.sqrt(max(hi, 0.0)))
    if boot:
        method = f"bootstrap: percentile, {boot} Poisson(1) replicates over examples"
    else:
        method = "t: mean -/+ t(n-1) x standard error, from streamed moments"
        if weighted:
            method = ("t: weighted mean -/+ t(n_eff-1) x weighted standard error, n_eff = "
                      "(sum w)^2 / sum w^2 (Kish)")
    return method, found


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


_NAN = Interval(math.nan, math.nan)


def _scaled(iv: Interval, factor: float) -> Interval:
    return Interval(iv.low * factor, iv.high * factor)


def _exp(iv: Interval) -> Interval:
    def safe(x: float) -> float:
        return math.exp(x) if x < 709.0 else math.inf

    return Interval(safe(iv.low), safe(iv.high))


def _number(x: float) -> float | None:
    return x if math.isfinite(x) else None
