"""Plain results: what was computed, named so it cannot be mistaken, and its JSON form.

``build_report(state)`` is the only way to a ``Report``: every figure is a function of the
``EvalState`` (through its metric's declaration), never of per-chunk values or of the run that
made it, so a saved or merged state reports exactly what one run over all the data would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..metrics import registry
from ..metrics.base import Figure
from ..metrics.checks import PROB_SUM_WARN
from ..metrics.common import safe_exp
from ..options import BREAKDOWN_ALL_AT_MOST, DEFAULT_TOP
from ..state.evalstate import EvalState
from ..state.parts import Example
from .groups import GroupRow, group_rows
from .quantiles import json_quantiles, json_tree, missing_warning, quantiles_of

# an output with no error on this many rows or more is more likely a row number or id than a prediction
SUSPICIOUS_ROWS = 10


@dataclass
class Report:
    metric: str
    value: float
    n: int
    figures: list[Figure]
    per_output: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    breakdown: str = "worst"  # "all" when every example is listed, in row order
    detail_columns: tuple[str, ...] = ()
    input_kind: str | None = None
    input_detected: bool = False
    weighted: bool = False
    ignored: int = 0
    skipped: int = 0
    clamped: int = 0
    files: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    sequences: list[dict[str, Any]] = field(default_factory=list)  # per-sequence breakdown
    sequence_breakdown: str = "all"  # or "worst": the highest-perplexity sequences
    columns: dict[str, Any] = field(default_factory=dict)  # per role: columns used, chosen how
    notes: list[str] = field(default_factory=list)  # what a rule chose (stderr notes, not warnings)
    id_column: str | None = None  # the id column examples carry (Example.id), if any
    token_text: dict[int, str] | None = None  # row -> token text (JSON log-probs that have it)
    title: str = ""  # the metric's title, for the table
    interpretation: str | None = None  # a line relating the headline to a baseline
    per_output_labels: tuple[tuple[str, str], ...] = ()  # (key, header) of per-output figures
    provenance: dict[str, Any] = field(default_factory=dict)
    #: (file, row in it) of each example, for a state of several parts (shards, merged states)
    example_files: list[tuple[str, int]] | None = None
    #: the folder every part's file is under: the table shows files relative to it
    files_root: str | None = None

    empty: bool = False  # a saved part with nothing scored (or only zero weights): no value
    rows: int = 0  # input rows read, scored or not: the --row-offset of the part after this one
    #: perplexity: sequences read, scored or not: the --sequence-offset of the part after this one
    sequences_read: int | None = None
    #: --group-by: one row per group, sorted by key (None: the run was not grouped)
    groups: list[GroupRow] | None = None
    #: the per-example losses' quantiles (results/quantiles.py); None: a state without a sketch
    quantiles: dict[str, Any] | None = None
    #: bce/ce --calibration: {bins, ece, mce, brier, reliability: [per bin]} (state.calibration)
    calibration: dict[str, Any] | None = None
    #: ce --per-class: one row per class, and the most confused pairs (state.classes)
    per_class: list[dict[str, Any]] | None = None
    confusions: list[dict[str, Any]] | None = None
    #: the state itself, for what is drawn from it (histogram, --report); never serialised
    state: EvalState | None = field(default=None, repr=False, compare=False)
    #: --ci: {"level", "method", "<figure key>": [low, high], ...} (results/intervals.py)
    ci: dict[str, Any] | None = None

    @property
    def status(self) -> str:
        if self.empty:
            return "empty"
        return "ok" if math.isfinite(self.value) else "overflow"

    def figure_or_none(self, key: str) -> float | int | None:
        return next((f.value for f in self.figures if f.key == key), None)

    def figure(self, key: str) -> float | int | None:
        for f in self.figures:
            if f.key == key:
                return f.value
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: non-finite numbers become null and ``status`` says why."""
        out: dict[str, Any] = {"metric": self.metric, "value": _json_number(self.value), "n": self.n}
        for f in self.figures:
            if f.key not in out:
                out[f.key] = _json_number(f.value)
        out["status"] = self.status
        if self.ci is not None:
            out["ci"] = self.ci
        if self.input_kind is not None:
            out["input"] = self.input_kind
            out["input_detected"] = self.input_detected
        out["weighted"] = self.weighted
        out["ignored"] = self.ignored
        out["skipped"] = self.skipped
        out["clamped"] = self.clamped
        out["rows"] = self.rows
        if self.sequences_read is not None:
            out["sequences_read"] = self.sequences_read
        if self.per_output:
            out["outputs"] = [
                {"output": name, **{k: _json_number(v) for k, v in vals.items()}}
                for name, vals in self.per_output
            ]
        if self.groups is not None:
            out["groups"] = [group_dict(g, self.ci is not None) for g in self.groups]
        out["quantiles"] = json_quantiles(self.quantiles)
        if self.calibration is not None:
            out["calibration"] = json_tree(self.calibration)
        if self.per_class is not None:
            out["per_class"], out["confusions"] = json_tree(self.per_class), json_tree(self.confusions)
        out["breakdown"] = self.breakdown
        files = self.example_files
        out["examples"] = [
            {
                "row": e.row,
                **({} if files is None else {"file": files[i][0], "file_row": files[i][1]}),
                **({"id": _json_value(e.id)} if self.id_column is not None else {}),
                "loss": _json_number(e.loss),
                **{col: _json_value(v) for col, v in zip(self.detail_columns, e.detail, strict=False)},
                **({} if self.token_text is None else {"token": self.token_text.get(e.row)}),
            }
            for i, e in enumerate(self.examples)
        ]
        if self.sequences:
            out["sequence_breakdown"] = self.sequence_breakdown
            out["sequence_rows"] = [{k: _json_row_value(v) for k, v in row.items()} for row in self.sequences]
        out["files"] = self.files
        out["columns"] = self.columns
        if self.warnings:
            out["warnings"] = self.warnings
        out["provenance"] = self.provenance
        return out


def group_dict(g: GroupRow, with_ci: bool = False) -> dict[str, Any]:
    """A group as JSON: its key, then the same figure keys as the top level."""
    out: dict[str, Any] = {"key": {k: _json_value(v) for k, v in g.key.items()}}
    out["value"], out["n"] = _json_number(g.value), g.n
    for f in g.figures:
        if f.key not in out:
            out[f.key] = _json_number(f.value)
    out.update(status=g.status, ignored=g.ignored, skipped=g.skipped)
    out["quantiles"] = json_quantiles(g.quantiles)
    if with_ci:  # --ci: every group has the key, null where nothing was counted
        out["ci"] = g.ci
    return out


def _json_number(v: float | int | None) -> float | int | None:
    if v is None:
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _example_text(state: EvalState) -> dict[int, str] | None:
    """Row -> token text of the worst examples; None when the input has no token text."""
    known = state.token_text
    if known is None or not (known.rows or known.positions):
        return None
    return known.rows


def _json_row_value(v: Any) -> Any:
    """A sequence row's value: its worst tokens' log-probs may be -inf (a probability of 0)."""
    if isinstance(v, list):
        return [{k: _json_value(x) for k, x in w.items()} if isinstance(w, dict) else w for w in v]
    return _json_value(v)


def _json_value(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_json_number(x) for x in v]
    if isinstance(v, float):
        return _json_number(v)
    return v


def build_report(state: EvalState, top: int = DEFAULT_TOP, allow_empty: bool = False) -> Report:
    """The report of ``state``: its metric's figures, breakdowns and warnings.

    "Nothing was scored" and "the weights sum to zero" are judged here, on the final (merged)
    state, never on a part: ``allow_empty`` reports such a part (status ``empty``, no value)
    instead of refusing it, for a run that saves its state to be merged.
    """
    metric = registry.get(state.header.metric)
    h, t = state.header, state.tallies
    if t.n == 0 and not allow_empty:
        raise InputError(_nothing_scored(state), path=h.files.get("preds"))
    no_weight = t.weights_sum_to_zero()
    if no_weight and not allow_empty:
        raise InputError(
            f"the weights sum to zero over the {t.n} scored rows, so there is no weighted mean",
            path=h.files.get("weights"),
            column=_weight_column(state),
        )
    binding = h.binding
    examples, breakdown = _examples(state, top)
    seq_rows, seq_kind = sequence_rows(state, top, BREAKDOWN_ALL_AT_MOST)
    report = Report(
        metric=metric.name,
        value=metric.value(state) if t.n and not no_weight else math.nan,
        n=t.n,
        figures=metric.figures(state),
        per_output=_per_output(state),
        examples=examples,
        breakdown=breakdown,
        detail_columns=binding.detail_columns if binding else (),
        input_kind=binding.input_kind if binding else None,
        input_detected=binding.input_detected if binding else False,
        weighted=binding.weighted if binding else False,
        ignored=t.ignored,
        skipped=t.skipped,
        clamped=t.clamped,
        files=dict(h.files),
        warnings=[*h.warnings, *_warnings(state)],
        sequences=seq_rows,
        sequence_breakdown=seq_kind,
        token_text=_example_text(state),
        columns=h.columns,
        notes=list(h.notes),
        id_column=binding.id_column if binding else None,
        title=metric.title,
        per_output_labels=(("value", metric.headline_label), *((c.key, c.label) for c in metric.per_output)),
        provenance=h.provenance.to_plain(),
        empty=t.n == 0 or no_weight,
        rows=t.rows,
        sequences_read=None if t.sequences is None else t.sequences.count,
        groups=group_rows(state) if t.groups is not None else None,
    )
    if report.empty:  # no value: its companions are not numbers either (JSON null, TSV nan)
        report.figures = [
            Figure(f.key, f.label, math.nan, f.meaning, f.in_table) if isinstance(f.value, float) else f
            for f in report.figures
        ]
    kept = t.worst.capacity
    if breakdown == "worst" and top > kept and len(report.examples) < min(top, t.n):
        report.warnings.append(
            f"the state keeps only its {kept} worst rows (the --top of the runs that saved it), so "
            f"{len(report.examples)} are shown, not {top}; save the parts with --top {top} to see more"
        )
    report.quantiles, report.state = quantiles_of(t.sketch, metric.name), state
    if t.sketch is None:
        report.warnings.append(missing_warning())
    report.calibration = None if t.calibration is None or report.empty else t.calibration.figures()
    if t.per_class is not None and not report.empty:
        from .classes import class_rows

        report.per_class, report.confusions = class_rows(state, top)
    report.interpretation = metric.interpretation(report) if t.n and not report.empty else None
    if t.ci is not None and not report.empty:
        from .intervals import ci_report, ci_warnings

        report.ci = ci_report(state, {f.key for f in report.figures})
        report.warnings += ci_warnings(state)
        if report.groups:
            from .intervals import group_cis

            for row, ci in zip(report.groups, group_cis(state, {f.key for f in report.figures}) or [],
                               strict=False):
                row.ci = ci
    from .rows import files_root, row_files

    report.example_files = row_files(state, [e.row for e in report.examples])
    report.files_root = files_root(state) if report.example_files is not None else None
    return report


def _per_output(state: EvalState) -> list[tuple[str, dict[str, float]]]:
    """One row per output of a multi-output metric: its value and the metric's per-output figures."""
    t, binding = state.tallies, state.header.binding
    if t.outputs <= 1 or binding is None:
        return []
    metric = registry.get(state.header.metric)
    names = binding.output_names or tuple(str(j) for j in range(t.outputs))
    rows = []
    for name, v in zip(names, t.per_output(), strict=True):
        vals = {"value": float(v)}
        for col in metric.per_output:
            vals[col.key] = col.of_value(float(v))
        rows.append((name, vals))
    return rows


def _examples(state: EvalState, top: int) -> tuple[list[Example], str]:
    """The worst rows (every row, in order, when there are few), ids taken out of the details."""
    examples = state.tallies.worst.examples()
    binding = state.header.binding
    if binding is not None and binding.id_column is not None:  # the engine put each id first
        examples = [Example(e.row, e.loss, e.detail[1:], e.detail[0]) for e in examples]
    if state.tallies.n <= BREAKDOWN_ALL_AT_MOST:
        return sorted(examples, key=lambda e: e.row), "all"
    return examples[:top], "worst"


def _warnings(state: EvalState) -> list[str]:
    """What the tallies say about the data: overflow, clamped logs, rows off 1, an exact output."""
    t, binding = state.tallies, state.header.binding
    out = []
    if t.outputs > 1 and t.n >= SUSPICIOUS_ROWS:
        per = _per_output(state)
        exact = [n for n, vals in per if vals["value"] == 0.0]
        if exact and len(exact) < len(per):
            out.append(
                f"output {exact[0]!r} has no error on any row: if it is a row number or an id "
                "that both inputs hold, it is being scored as an output; name the data columns "
                "with --pred-col/--target-col"
            )
    if t.overflow:
        if math.isinf(t.mean()) and binding is not None and binding.input_kind == "logprobs":
            # not an overflow: a log-prob of -inf (a probability of 0, as llama.cpp reports it)
            out.append(
                "some log-probabilities are -inf (a probability of 0): their loss is infinite, so is the mean"
            )
        elif math.isinf(t.mean()):
            out.append("some losses overflowed float64 to inf; the mean is inf")
        else:
            out.append(
                "some per-example values overflowed float64 to inf: companions shown as inf (JSON null)"
            )
    if t.clamped:
        out.append(
            f"{t.clamped} example(s) had a probability of 0 (or 1) where the target needs "
            "the opposite; their log was clamped at -100, as torch does"
        )
    if t.row_sum_row >= 0 and abs(t.row_sum - 1.0) > PROB_SUM_WARN:
        kind = binding.input_kind if binding else None
        what = "probabilities" if kind == "probs" else "probabilities (exp of the log-probabilities)"
        out.append(
            f"the {what} in a row do not sum to 1: row {t.row_sum_row} sums to "
            f"{t.row_sum:.6g} (off by {abs(t.row_sum - 1.0):.2g}, the most of any row); "
            "scored as given, not renormalised"
        )
    return out


def _nothing_scored(state: EvalState) -> str:
    """Why no row was counted, naming every reason that removed rows."""
    t = state.tallies
    reasons = []
    by_index = t.ignored - t.nulls
    if by_index:
        ignore_index = state.header.metric_options.get("ignore_index")
        reasons.append(f"{by_index} row(s) have the ignore index {ignore_index}")
    if t.nulls:
        reasons.append(f"{t.nulls} log-probabilities are null")
    if t.skipped:
        reasons.append(f"{t.skipped} row(s) held NaN or inf and were skipped")
    if not reasons:
        return "nothing was scored: no rows"
    return "nothing was scored: every row was left out (" + "; ".join(reasons) + ")"


def _weight_column(state: EvalState) -> str | None:
    """The weights column's name for a message, when the weights are one column of a table."""
    info = state.header.columns.get("weights")
    if not isinstance(info, dict) or info.get("chosen_by") != "user":
        return None
    cols = info.get("columns")
    return repr(cols[0]) if isinstance(cols, list) and len(cols) == 1 else None


def sequence_rows(state: EvalState, top: int, show_all_at_most: int) -> tuple[list[dict[str, Any]], str]:
    """Every sequence when there are few, else the ``top`` with the highest perplexity."""
    seq = state.tallies.sequences
    if seq is None:
        return [], "all"
    scored = np.flatnonzero(seq.tokens > 0)
    kind = "all"
    if len(scored) > show_all_at_most:
        with np.errstate(over="ignore", invalid="ignore"):
            mean = seq.nll[scored] / seq.tokens[scored]
        order = np.lexsort((scored, -mean))[:top]
        scored, kind = scored[order], "worst"
    rows = []
    first = getattr(seq, "first", 0)
    known = state.token_text
    texts = known.positions if known is not None and (known.positions or known.rows) else None
    ids = known.ids if known is not None else {}
    shift = int(bool(state.header.metric_options.get("shift")))  # the scored token is t + 1
    for s in scored.tolist():
        tokens = int(seq.tokens[s])
        mean_nll = float(seq.nll[s]) / tokens
        worst: list[dict[str, Any]] = []
        for loss, p, t in zip(seq.worst_loss[s], seq.worst_pos[s], seq.worst_target[s], strict=True):
            if not loss > -np.inf:  # an empty slot
                continue
            # -1 is the state's "unknown" (gathered log-probs carry no ids): null, never -1
            target = int(t) if t >= 0 else ids.get((first + s, int(p)))
            entry: dict[str, Any] = {"position": int(p), "token_position": int(p) + shift}
            entry["target"] = target
            entry["logprob"] = -float(loss)
            if texts is not None:  # the input carries token text (JSON of vLLM, llama.cpp, ...)
                entry["token"] = texts.get((first + s, int(p)))
            worst.append(entry)
        rows.append(
            {
                "sequence": first + s,
                "tokens": tokens,
                "nll": mean_nll,
                "perplexity": safe_exp(mean_nll),
                "worst_tokens": worst,
            }
        )
    return rows, kind
