"""A comparison's report: a row per model, a paired comparison per candidate, per group too.

Built from the models' states and the paired tallies alone (``build_compare_report``), like
``results.report.build_report`` for one evaluation. Lower loss is better for every metric
losscli has; delta = model - baseline in the metric's own units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..metrics import registry
from ..metrics.common import safe_exp
from ..results.report import build_report
from ..state.evalstate import EvalState
from ..stats.intervals import MIN_BOOTSTRAP_UNITS, Interval, floored
from .judge import (
    Comparison,
    Estimate,
    compare_one,
    family,
    model_estimate,
    settle,
    too_few,
)
from .tallies import PairTallies


@dataclass
class ModelRow:
    name: str
    file: str
    value: float
    low: float
    high: float
    n: int
    figures: dict[str, float | int | None] = field(default_factory=dict)


@dataclass
class GroupBlock:
    key: dict[str, Any]
    models: list[ModelRow]
    comparisons: list[Comparison]


@dataclass
class CompareReport:
    metric: str
    title: str
    headline: str
    test: str
    resamples: int
    seed: int
    level: float
    margin: float | None
    models: list[ModelRow]
    comparisons: list[Comparison]
    #: "holm" when any p-value of the report is Holm-adjusted (overall or per group)
    adjustment: str = "none"
    #: the overall comparisons' own adjustment (the table's "p (Holm)" of the first table)
    overall_adjustment: str = "none"
    #: the per-group comparisons' (one family over every group and candidate)
    group_adjustment: str = "none"
    groups: list[GroupBlock] | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: what one paired observation is: "example", or "sequence" (compare perplexity, clustered)
    unit: str = "example"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "command": "compare",
            "metric": self.metric,
            "test": self.test,
            "level": self.level,
            "lower_is_better": True,
            "adjustment": self.adjustment,
            "margin": self.margin,
            "paired_unit": self.unit,
            "models": [_model_dict(m) for m in self.models],
            "comparisons": [_comparison_dict(c) for c in self.comparisons],
        }
        if self.test != "t":
            out["resamples"], out["seed"] = self.resamples, self.seed
        if self.groups is not None:
            out["groups"] = [
                {
                    "key": g.key,
                    "models": [_model_dict(m) for m in g.models],
                    "comparisons": [_comparison_dict(c) for c in g.comparisons],
                }
                for g in self.groups
            ]
        out["warnings"] = list(self.warnings)
        return out


def _num(v: float | int | None) -> float | int | None:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v


def _model_dict(m: ModelRow) -> dict[str, Any]:
    """A model's row; ``file`` only where there is one (a group's rows name none: the model's
    file is in the top-level row of the same name)."""
    file = {"file": m.file} if m.file else {}
    return {
        "name": m.name,
        **file,
        "value": _num(m.value),
        "ci": [_num(m.low), _num(m.high)],
        "n": m.n,
        **{k: _num(v) for k, v in m.figures.items() if k not in ("value", "n")},
    }


def _comparison_dict(c: Comparison) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": c.model,
        "baseline": c.baseline,
        "delta": _num(c.delta),
        "ci": [_num(c.low), _num(c.high)],
        "p_value": _num(c.p_value),
        "p_adjusted": _num(c.p_adjusted),
        "test": c.test,
        "verdict": c.verdict,
        "n": c.n,
    }
    if c.noninferior is not None:
        out["p_noninferiority"] = _num(c.p_noninferiority)
        out["p_noninferiority_adjusted"] = _num(c.p_noninferiority_adjusted)
        out["noninferior"] = c.noninferior
    return out


def build_compare_report(
    names: list[str],
    states: list[EvalState],
    pairs: PairTallies,
    group_keys: list[tuple[Any, ...]] | None,
    level: float,
    margin: float | None,
    group_pairs: PairTallies | None = None,
) -> CompareReport:
    """Every figure of the comparison from the states and tallies (see the module docstring)."""
    definition = registry.get(states[0].header.metric)
    # top 0: a comparison keeps no worst rows, and asking for 10 would warn that none were kept
    reports = [build_report(s, 0, allow_empty=True) for s in states]
    models = []
    for i, (name, state, rep) in enumerate(zip(names, states, reports, strict=True)):
        est = _headline(definition.name, model_estimate(pairs, 0, i, level))
        figures = {f.key: f.value for f in rep.figures}
        models.append(
            ModelRow(name, state.header.files.get("preds", ""), rep.value, est.low, est.high, rep.n, figures)
        )
    comparisons = _comparisons(names, pairs, 0, level, margin, None)
    report = CompareReport(
        definition.name,
        definition.title,
        definition.headline_label,
        pairs.test,
        pairs.resamples,
        pairs.seed,
        level,
        margin,
        models,
        comparisons,
    )
    report.adjustment = report.overall_adjustment = settle(comparisons, level, margin)
    if pairs.ratios is not None:
        report.unit = "sequence"
    for rep in reports:
        report.warnings += [w for w in rep.warnings if w not in report.warnings]
    if group_keys is not None and group_pairs is not None:
        columns = list(states[0].header.metric_options.get("group_by") or [])
        report.groups = _groups(definition.name, names, group_pairs, group_keys, columns, level, margin)
        if group_pairs.ratios is not None:
            _sequence_figures(report.groups, states, group_pairs, group_keys)
        every = [c for g in report.groups for c in g.comparisons]
        report.group_adjustment = settle(every, level, margin)
        if report.group_adjustment == "holm":
            report.adjustment = "holm"
            tested = family(every)
            untested = f" (not the {len(every) - tested} too few to test)" if tested < len(every) else ""
            report.notes.append(
                f"per-group p-values are Holm-adjusted over the {tested} group comparisons with a "
                f"p-value{untested}"
            )
    every = comparisons + [c for g in report.groups or [] for c in g.comparisons]
    report.warnings += _too_few_warning(report, every)
    return report


def _too_few_warning(report: CompareReport, comparisons: list[Comparison]) -> list[str]:
    """Comparisons too few to test: why there is no p-value, where (overall, which groups), and
    what it means for the gates; a group with nothing paired in it says so."""
    few = [c for c in comparisons if c.too_few]
    if not few:
        return []
    from ..results.groups import key_text

    units = "sequences" if report.unit == "sequence" else "examples"
    columns = list(report.groups[0].key) if report.groups else []
    out = []
    empty = sorted({key_text(dict(zip(columns, c.group, strict=False))) for c in few if c.group and c.n == 0})
    if empty:
        out.append(f"no paired {units} in group {_listed(empty)}: nothing to compare there, not tested")
    few = [c for c in few if c.n > 0 or c.group is None]
    if not few:
        return out
    counts: dict[str, int] = {}  # where -> its fewest paired units (over the candidates)
    for c in few:
        place = (
            "overall" if c.group is None else "group " + key_text(dict(zip(columns, c.group, strict=False)))
        )
        counts[place] = min(c.n, counts.get(place, c.n))
    places = sorted(counts, key=lambda p: (p != "overall", p))
    where = _listed([f"{p}: {counts[p]}" for p in places])
    gates = (
        "--fail-if-worse does not fire on it (it cannot show a model worse); with --margin it does "
        "(non-inferiority cannot be shown)"
    )
    if report.test == "bootstrap":
        out.append(
            f"--test bootstrap: too few paired {units} ({where}; fewer than {MIN_BOOTSTRAP_UNITS}): "
            "a percentile bootstrap cannot support a verdict on so few: no p-value is given and "
            f"{gates}; use --test t or --test permutation (exact sign flips) on so few"
        )
    else:
        out.append(
            f"too few paired {units} to test ({where}; a paired test needs at least 2, "
            f"with 1 there are 0 degrees of freedom): no p-value or verdict is given and {gates}"
        )
    return out


def _listed(labels: list[str], shown: int = 10) -> str:
    """``a, b, c`` or ``a, b, ... (and 8 more)``."""
    more = f" (and {len(labels) - shown} more)" if len(labels) > shown else ""
    return ", ".join(labels[:shown]) + more


def _headline(metric: str, est: Estimate) -> Estimate:
    """A model's interval in its headline's terms: its low end clipped at 0 (a mean loss is
    never below), and perplexity's is exp of cross-entropy's (a monotone map of the interval
    the paired tallies give), so at least 1."""
    est = Estimate(est.value, *floored(Interval(est.low, est.high)))
    if metric != "perplexity":
        return est
    return Estimate(*(safe_exp(v) if not math.isnan(v) else v for v in (est.value, est.low, est.high)))


def _comparisons(
    names: list[str],
    pairs: PairTallies,
    g: int,
    level: float,
    margin: float | None,
    key: tuple[Any, ...] | None,
) -> list[Comparison]:
    out = []
    for c in range(1, pairs.models):
        est, p, p_ni = compare_one(pairs, g, c, level, margin)
        out.append(
            Comparison(
                names[c],
                names[0],
                int(pairs.moments.n[g]),
                est.value,
                est.low,
                est.high,
                p,
                pairs.test,
                p_noninferiority=p_ni,
                group=key,
                too_few=too_few(pairs, g, pairs.models + c - 1),
            )
        )
    return out


def _groups(
    metric: str,
    names: list[str],
    pairs: PairTallies,
    keys: list[tuple[Any, ...]],
    columns: list[str],
    level: float,
    margin: float | None,
) -> list[GroupBlock]:
    blocks = []
    order = sorted(range(len(keys)), key=lambda g: tuple((v is None, str(type(v)), v) for v in keys[g]))
    for g in order:
        if g >= pairs.groups:
            continue
        key = dict(zip(columns, keys[g], strict=False))
        rows = []
        for i, name in enumerate(names):
            est = _headline(metric, model_estimate(pairs, g, i, level))
            rows.append(ModelRow(name, "", est.value, est.low, est.high, int(pairs.moments.n[g])))
        blocks.append(GroupBlock(key, rows, _comparisons(names, pairs, g, level, margin, keys[g])))
    return blocks


def _sequence_figures(
    blocks: list[GroupBlock], states: list[EvalState], pairs: PairTallies, keys: list[tuple[Any, ...]]
) -> None:
    """compare perplexity by sequence: each group's model rows count tokens (as the overall
    rows do; the comparisons count (group, sequence) clusters) and carry the model's own figures
    of the group (cross-entropy, bits per token, ignored tokens: those of ``losscli perplexity
    --group-by``) and ``sequences``, the group's clusters."""
    from ..results.groups import group_rows
    from ..state.groups import typed

    place = {typed(k): g for g, k in enumerate(keys)}
    for i, state in enumerate(states):
        own = {typed(tuple(r.key.values())): r for r in group_rows(state)}
        for block in blocks:
            key = typed(tuple(block.key.values()))
            g, row, model = place[key], own.get(key), block.models[i]
            model.n = int(pairs.moments.w[g])
            if row is not None:
                model.figures = {f.key: f.value for f in row.figures if f.key not in ("value", "n")}
            model.figures["sequences"] = int(pairs.moments.n[g])
