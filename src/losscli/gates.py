"""``--fail-if EXPR``: a gate on any number of a report, as ``KEY OP NUMBER``.

An expression is one key, one of ``<``, ``<=``, ``>``, ``>=``, and a number (``inf`` and
``-inf`` too), nothing else: it is parsed, never evaluated as code. The keys are the report's
flat numbers, the columns of its CSV/TSV overall row (``value``, ``n``, ``rmse``, ``mae``,
``value_low``/``value_high`` with ``--ci``, ``ece``, ``mce``, ``brier`` with ``--calibration``,
``loss_p50`` ... ``loss_max``), also under the short names ``p50``, ``p90``, ``p99``, ``max``, and
with ``--ci`` every other interval's ends as ``KEY_low``/``KEY_high`` (``brier_high``, ``mae_low``);
``losscli compare`` has its own (see
``compare.report.gate_values``). The gate fires when the comparison holds; a key whose value is
missing (NaN: nothing was scored) fires too, as ``--fail-above`` does, since nothing was shown.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .errors import UsageError

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_EXPR = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(<=|>=|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Gate:
    key: str
    op: str
    threshold: float
    text: str

    def holds(self, value: float) -> bool:
        """True when the gate fires for ``value`` (a NaN value fires: there is no number)."""
        return math.isnan(value) or OPERATORS[self.op](value, self.threshold)


def parse_gate(text: str) -> Gate:
    """``'value_high > 0.5'`` -> Gate; a usage error (exit 2) for anything else."""
    m = _EXPR.match(text)
    if m is None:
        raise UsageError(
            f"--fail-if {text!r}: write KEY OP NUMBER with OP one of <, <=, >, >= "
            "(e.g. --fail-if 'value > 0.5')"
        )
    key, op, number = m.groups()
    try:
        threshold = float(number)
    except ValueError:
        raise UsageError(f"--fail-if {text!r}: {number!r} is not a number") from None
    if math.isnan(threshold):
        raise UsageError(f"--fail-if {text!r}: nan is not a threshold; give a number (or inf, -inf)")
    return Gate(key, op, threshold, text.strip())


def parse_gates(texts: Sequence[str]) -> list[Gate]:
    """Every --fail-if, checked before any input is read."""
    return [parse_gate(t) for t in texts]


def check_keys(gates: Sequence[Gate], values: Mapping[str, Sequence[float]]) -> None:
    """An unknown key is a usage error (exit 2) listing the keys this report has."""
    for gate in gates:
        if gate.key not in values:
            keys = ", ".join(sorted(values))
            raise UsageError(f"--fail-if {gate.text!r}: this report has no {gate.key!r}; its keys: {keys}")


def fired(gates: Sequence[Gate], values: Mapping[str, Sequence[float]]) -> list[str]:
    """The lines saying which gates fired (empty: none). A key may stand for several numbers
    (one per candidate model): the gate fires if any of them satisfies it."""
    check_keys(gates, values)
    out = []
    for gate in gates:
        hits = [v for v in values[gate.key] if gate.holds(v)]
        if hits:
            shown = ", ".join(_shown(v) for v in hits)
            out.append(f"--fail-if {gate.text!r} fired: {gate.key} is {shown}")
    return out


def report_values(report: object) -> dict[str, list[float]]:
    """A metric report's flat numbers: its CSV overall row's numeric cells, by column name."""
    from .render.machine import render_machine

    lines = render_machine(report, "tsv").splitlines()  # type: ignore[arg-type]
    header, first = lines[0].split("\t"), lines[1].split("\t")
    out: dict[str, list[float]] = {}
    for key, cell in zip(header, first, strict=False):
        try:
            out[key] = [float(cell)]
        except ValueError:
            continue  # text columns (metric, output, status)
    for short in ("p50", "p90", "p99", "max"):  # the quantiles' own names (JSON "quantiles")
        if f"loss_{short}" in out:
            out.setdefault(short, out[f"loss_{short}"])
    ci = getattr(report, "ci", None) or {}
    for key, ends in ci.items():  # --ci: every figure's interval, beside value_low/value_high
        if key != "value" and isinstance(ends, list) and len(ends) == 2:
            for end, v in zip(("low", "high"), ends, strict=True):
                out.setdefault(f"{key}_{end}", [math.nan if v is None else float(v)])
    return out


def _shown(v: float) -> str:
    """A count as a count (n is 3, not 3.0); any other number as repr, which round-trips."""
    return str(int(v)) if math.isfinite(v) and v.is_integer() and abs(v) < 2**53 else repr(v)
