"""Mergeable float64 state: compensated sums, counts and the worst examples.

The state is a monoid. ``merge`` is associative and commutative (up to the last bits of the
compensation term, far below 1e-12 relative), so chunks can be reduced in any grouping: by one
thread in order, by several threads, or later by a distributed engine. The result does not
depend on how the input was cut into chunks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .calibration import CalibrationTally
from .classes import ClassTally
from .plain import (
    NAME,
    Arrays,
    Meta,
    StateFileError,
    decode_detail,
    decode_float,
    encode_cell,
    encode_float,
    expect_members,
    fields,
    prefixed,
    take,
    under,
    want_bool,
    want_int,
)
from .seqstats import WORST_PER_SEQUENCE, SequenceStats
from .sketch import LossSketch, merge_sketches

if TYPE_CHECKING:
    from .groups import GroupTallies
    from .intervals import IntervalTallies

__all__ = [
    "WORST_PER_SEQUENCE",
    "CompensatedVector",
    "Example",
    "LossState",
    "SequenceStats",
    "WorstExamples",
]

F64 = NDArray[np.float64]


def _two_sum(a: float, b: float) -> tuple[float, float]:
    """Knuth's error-free two-sum, a + b == s + e exactly, in plain floats (it runs once per
    chunk, where numpy's call overhead would cost more than the arithmetic)."""
    s = a + b
    if s - s != 0.0:  # inf or nan: there is no finite error term
        return s, 0.0
    bp = s - a
    return s, (a - (s - bp)) + (b - bp)


@dataclass
class CompensatedVector:
    """A few running sums (one per output), each carried as hi + lo with two-sum.

    Plain Python floats: k is small and ``add`` runs once per chunk, where numpy's per-call
    overhead would cost more than the arithmetic.
    """

    hi: list[float]
    lo: list[float]

    @classmethod
    def zeros(cls, k: int) -> CompensatedVector:
        return cls([0.0] * k, [0.0] * k)

    def add(self, values: Sequence[float] | NDArray[Any]) -> None:
        for j, v in enumerate(values):
            self.hi[j], err = _two_sum(self.hi[j], float(v))
            self.lo[j] += err

    def add1(self, value: float) -> None:
        """``add([value])`` for the common single-output case."""
        self.hi[0], err = _two_sum(self.hi[0], value)
        self.lo[0] += err

    def merge(self, other: CompensatedVector) -> CompensatedVector:
        out = CompensatedVector(list(self.hi), [a + b for a, b in zip(self.lo, other.lo, strict=True)])
        out.add(other.hi)
        return out

    def total(self) -> F64:
        return np.array([h + lo for h, lo in zip(self.hi, self.lo, strict=True)], dtype=np.float64)

    def to_plain(self) -> tuple[Meta, Arrays]:
        """``{"size": k}`` and ``terms``, a (2, k) float64 array: the high parts, then the low."""
        terms = np.array([self.hi, self.lo], dtype=np.float64).reshape(2, len(self.hi))
        return {"size": len(self.hi)}, {"terms": terms}

    @classmethod
    def from_plain(cls, meta: Any, arrays: Arrays, where: str = "sums") -> CompensatedVector:
        k = want_int(fields(meta, where, {"size"})["size"], f"{where}.size")
        expect_members(arrays, {"terms"}, where)
        terms = take(arrays, "terms", np.float64, (2, k), where)
        return cls(terms[0].tolist(), terms[1].tolist())


@dataclass(frozen=True)
class Example:
    """One scored row kept for the breakdown table."""

    row: int
    loss: float
    detail: tuple[Any, ...]
    id: Any = None  # the row's value in the input's id column, when it has one


@dataclass
class WorstExamples:
    """The ``capacity`` highest-loss rows; ties go to the earlier row, so the set is unique.

    Uniqueness makes merge exactly associative and the breakdown independent of chunking.
    """

    capacity: int
    rows: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    losses: F64 = field(default_factory=lambda: np.empty(0))
    details: list[tuple[Any, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._floor = self._lowest_kept()

    def _lowest_kept(self) -> float:
        if len(self.rows) < self.capacity or len(self.rows) == 0:  # capacity 0 keeps nothing
            return -math.inf
        return float(self.losses.min())

    def threshold(self) -> float:
        """Losses at or below this cannot enter (ties lose to earlier rows)."""
        return self._floor

    def candidates(self, losses: F64) -> NDArray[np.intp]:
        """Positions in ``losses`` (in row order) that would enter the set, at most capacity."""
        if self.capacity == 0:
            return np.empty(0, dtype=np.intp)
        thr = self.threshold()
        if thr != -math.inf and len(losses) and losses.max() <= thr:  # most chunks, once the set is full:
            return np.empty(0, dtype=np.intp)  # one read-only pass instead of a compare and a scan
        idx = np.arange(len(losses)) if thr == -math.inf else np.flatnonzero(losses > thr)
        if len(idx) > self.capacity:
            vals = losses[idx]
            kth = np.partition(vals, len(vals) - self.capacity)[len(vals) - self.capacity]
            above = idx[vals > kth]
            ties = idx[vals == kth][: self.capacity - len(above)]
            idx = np.sort(np.concatenate([above, ties]))
        return idx

    def offer(self, rows: NDArray[np.int64], losses: F64, details: Sequence[tuple[Any, ...]]) -> None:
        """Merge new (row, loss, detail) triples in, keeping the unique top ``capacity``."""
        all_rows = np.concatenate([self.rows, np.asarray(rows, dtype=np.int64)])
        all_losses = np.concatenate([self.losses, np.asarray(losses, dtype=np.float64)])
        all_details = [*self.details, *details]
        order = np.lexsort((all_rows, -all_losses))[: self.capacity]
        self.rows = all_rows[order]
        self.losses = all_losses[order]
        self.details = [all_details[i] for i in order]
        self._floor = self._lowest_kept()

    def merge(self, other: WorstExamples) -> WorstExamples:
        """The worst rows of both, as many as the smaller capacity: a part that kept 20 rows
        may have dropped its 21st worst, so only the 20 worst of the union are known."""
        out = WorstExamples(min(self.capacity, other.capacity), self.rows, self.losses, self.details)
        out.offer(other.rows, other.losses, other.details)  # keeps the top ``capacity`` of both
        return out

    def examples(self) -> list[Example]:
        """Worst first."""
        return [
            Example(int(r), float(v), d) for r, v, d in zip(self.rows, self.losses, self.details, strict=True)
        ]

    def to_plain(self) -> tuple[Meta, Arrays]:
        """``{"capacity", "details"}`` (one list of cells per row) and ``rows``, ``losses``."""
        details = [[encode_cell(c) for c in d] for d in self.details]
        return {"capacity": self.capacity, "details": details}, {"rows": self.rows, "losses": self.losses}

    @classmethod
    def from_plain(cls, meta: Any, arrays: Arrays, where: str = "worst") -> WorstExamples:
        fields(meta, where, {"capacity", "details"})
        capacity = want_int(meta["capacity"], f"{where}.capacity")
        raw = meta["details"]
        if not isinstance(raw, list) or len(raw) > capacity:
            raise StateFileError(
                f"not a valid losscli state: {where}.details should be a list of at most {capacity} rows"
            )
        details = [decode_detail(d, f"{where}.details[{i}]") for i, d in enumerate(raw)]
        expect_members(arrays, {"rows", "losses"}, where)
        rows = take(arrays, "rows", np.int64, (len(details),), where)
        losses = take(arrays, "losses", np.float64, (len(details),), where)
        if len(rows) and int(rows.min()) < 0:
            raise StateFileError(f"not a valid losscli state: {where}.rows holds a negative row")
        if np.isnan(losses).any():  # the engine scores finite inputs only: a NaN was made by hand
            raise StateFileError(f"not a valid losscli state: {where}.losses holds NaN")
        return cls(capacity, rows, losses, details)


@dataclass
class LossState:
    """Sufficient statistics of a weighted mean loss over k outputs.

    ``output_sums[j]`` is sum_i w_i * loss_ij and ``weight_sum`` is sum_i w_i (the example
    count when unweighted). The metric value is mean_j(output_sums[j] / weight_sum), which
    is scikit-learn's uniform average over outputs with sample_weight.
    """

    outputs: int
    worst_capacity: int = 20
    output_sums: CompensatedVector = field(init=False)
    weight_sum: CompensatedVector = field(init=False)
    n: int = 0
    ignored: int = 0
    skipped: int = 0
    clamped: int = 0
    counts_correct: bool = False
    worst: WorstExamples = field(init=False)
    companion_sums: dict[str, CompensatedVector] = field(default_factory=dict)
    # weighted top-1 and top-k hits, so accuracies weigh rows as the loss does (= counts unweighted)
    hits: CompensatedVector = field(init=False)
    sequences: SequenceStats | None = None
    # probabilities: the row whose sum is furthest from 1 (-1: none seen) and that sum
    row_sum_row: int = -1
    row_sum: float = 1.0
    rows: int = 0  # input rows read: scored, ignored and skipped alike
    nulls: int = 0  # perplexity: null log-probabilities (JSON Lines), also counted in ``ignored``
    overflow: bool = False  # some finite inputs gave a loss that overflowed float64 to inf
    groups: GroupTallies | None = None  # --group-by: per-group sums (state.groups)
    #: the per-example losses' quantile sketch (None: a state saved before sketches existed)
    sketch: LossSketch | None = None
    #: --group-by: each group's sketch, by key (state.group_sketch)
    group_sketches: Any = None
    calibration: CalibrationTally | None = None  # bce/ce --calibration (state.calibration)
    per_class: ClassTally | None = None  # ce --per-class (state.classes)
    ci: IntervalTallies | None = None  # --ci: moments and bootstrap sums (state.intervals)

    def note_row_sum(self, row: int, value: float) -> None:
        """Keep the row sum furthest from 1; ties go to the earlier row (chunking-independent)."""
        dev, mine = abs(value - 1.0), abs(self.row_sum - 1.0)
        if self.row_sum_row < 0 or dev > mine or (dev == mine and row < self.row_sum_row):
            self.row_sum_row, self.row_sum = row, value

    def weights_sum_to_zero(self) -> bool:
        """Every counted example had weight 0: the weighted mean is 0/0, not a number."""
        return self.n > 0 and float(self.weight_sum.total()[0]) == 0.0

    def companion(self, name: str) -> CompensatedVector:
        """The running weighted sum of a per-example companion (MAE beside MSE, ...)."""
        if name not in self.companion_sums:
            self.companion_sums[name] = CompensatedVector.zeros(1)
        return self.companion_sums[name]

    def companion_mean(self, name: str) -> float:
        w = float(self.weight_sum.total()[0])
        return float(self.companion_sums[name].total()[0]) / w if w else math.nan

    def __post_init__(self) -> None:
        self.output_sums = CompensatedVector.zeros(self.outputs)
        self.weight_sum = CompensatedVector.zeros(1)
        self.hits = CompensatedVector.zeros(2)
        self.worst = WorstExamples(self.worst_capacity)
        self.sketch = LossSketch()

    def merge(self, other: LossState) -> LossState:
        if other.outputs != self.outputs:
            raise ValueError("cannot merge states with different numbers of outputs")
        out = LossState(self.outputs, min(self.worst_capacity, other.worst_capacity))  # as worst
        out.output_sums = self.output_sums.merge(other.output_sums)
        out.weight_sum = self.weight_sum.merge(other.weight_sum)
        out.n = self.n + other.n
        out.ignored = self.ignored + other.ignored
        out.skipped = self.skipped + other.skipped
        out.clamped = self.clamped + other.clamped
        out.counts_correct = self.counts_correct or other.counts_correct
        out.worst = self.worst.merge(other.worst)
        out.hits = self.hits.merge(other.hits)
        out.row_sum_row, out.row_sum = self.row_sum_row, self.row_sum
        if other.row_sum_row >= 0:
            out.note_row_sum(other.row_sum_row, other.row_sum)
        if self.sequences is not None and other.sequences is not None:
            out.sequences = self.sequences.merge(other.sequences)
        elif self.sequences is not None or other.sequences is not None:
            out.sequences = (self.sequences or other.sequences).copy()  # type: ignore[union-attr]
        out.rows = self.rows + other.rows
        out.nulls = self.nulls + other.nulls
        out.overflow = self.overflow or other.overflow
        out.groups = _merge_groups(self.groups, other.groups)
        out.sketch = merge_sketches(self.sketch, other.sketch)
        out.group_sketches = _merge_group_sketches(self.group_sketches, other.group_sketches)
        out.calibration = _merge_group_sketches(self.calibration, other.calibration)
        out.per_class = _merge_group_sketches(self.per_class, other.per_class)
        if self.ci is not None or other.ci is not None:
            from .intervals import merge_intervals

            out.ci = merge_intervals(self.ci, other.ci)
        for name in sorted(set(self.companion_sums) | set(other.companion_sums)):
            zero = CompensatedVector.zeros(1)
            out.companion_sums[name] = self.companion_sums.get(name, zero).merge(
                other.companion_sums.get(name, zero)
            )
        return out

    def with_groups(self, groups: GroupTallies | None) -> LossState:
        """This state with ``groups`` as its per-group tallies (for a caller that builds them)."""
        self.groups = groups
        return self

    def accuracy(self, k: int = 0) -> float:
        """Top-1 (k=0) or top-k (k=1) accuracy, weighted like the loss."""
        w = float(self.weight_sum.total()[0])
        return float(self.hits.total()[k]) / w if w else math.nan

    def per_output(self) -> F64:
        """The weighted mean loss of each output (NaN before any example is counted)."""
        w = float(self.weight_sum.total()[0])
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.output_sums.total() / w

    def mean(self) -> float:
        """Headline value: the uniform average over outputs of the weighted mean loss."""
        per = self.per_output()
        return float(np.mean(per)) if per.size else math.nan

    def to_plain(self) -> tuple[Meta, Arrays]:
        """(JSON meta, numeric arrays): exact, every float bit kept (see state.files)."""
        return loss_state_to_plain(self)

    @classmethod
    def from_plain(cls, meta: Any, arrays: Arrays, where: str = "tallies") -> LossState:
        """The state ``to_plain`` described; ``StateFileError`` on anything malformed."""
        return loss_state_from_plain(meta, arrays, where)


def _merge_groups(a: GroupTallies | None, b: GroupTallies | None) -> GroupTallies | None:
    """Both parts' groups; a part without groups (an empty part that saw no chunk) adds none."""
    if a is None or b is None:
        return a if b is None else b
    return a.merge(b)


def _merge_group_sketches(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return a if b is None else b
    return a.merge(b)


#: LossState's integer counts, as named in its plain form
_COUNTS = ("n", "ignored", "skipped", "clamped", "rows", "nulls")
_SUMS = ("output_sums", "weight_sum", "hits")


def loss_state_to_plain(state: LossState) -> tuple[Meta, Arrays]:
    """The plain form of ``LossState`` (see state.files for the layout)."""
    meta: Meta = {"outputs": state.outputs, "worst_capacity": state.worst_capacity}
    meta.update({name: getattr(state, name) for name in _COUNTS})
    meta["counts_correct"], meta["overflow"] = state.counts_correct, state.overflow
    meta["row_sum_row"], meta["row_sum"] = state.row_sum_row, encode_float(state.row_sum)
    arrays: Arrays = {}
    parts: list[tuple[str, Any]] = [(name, getattr(state, name)) for name in _SUMS]
    parts += [(f"companion.{name}", vec) for name, vec in state.companion_sums.items()]
    parts += [("worst", state.worst), ("sequences", state.sequences)]
    if state.groups is not None:  # the key exists only with --group-by: older files stay as they were
        parts.append(("groups", state.groups))
    parts += [(key, part) for key, part in _sketch_parts(state) if part is not None]
    if state.ci is not None:  # likewise only with --ci
        parts.append(("ci", state.ci))
    meta["companions"] = {}
    for key, part in parts:
        if part is None:
            meta[key] = None
            continue
        if key.startswith("companion.") and not NAME.fullmatch(key[len("companion.") :]):
            raise ValueError(f"companion name {key!r} cannot be saved: letters, digits and _ only")
        sub_meta, sub_arrays = part.to_plain()
        arrays.update(prefixed(key, sub_arrays))
        if key.startswith("companion."):
            meta["companions"][key[len("companion.") :]] = sub_meta
        else:
            meta[key] = sub_meta
    return meta, arrays


_LOSS_KEYS = {
    *["outputs", "worst_capacity", "counts_correct", "overflow", "row_sum_row", "row_sum"],
    *_COUNTS,
}
_LOSS_KEYS |= {"companions", "worst", "sequences", *_SUMS}


def loss_state_from_plain(meta: Any, arrays: Arrays, where: str = "tallies") -> LossState:
    """Check and rebuild a ``LossState``; every array is accounted for, none allocated anew."""
    optional = {"groups", "ci", *SKETCH_KEYS} & (set(meta) if isinstance(meta, dict) else set())
    fields(meta, where, _LOSS_KEYS | optional)
    outputs = want_int(meta["outputs"], f"{where}.outputs", 1)
    capacity = want_int(meta["worst_capacity"], f"{where}.worst_capacity")
    companions = meta["companions"]
    if not isinstance(companions, dict) or not all(NAME.fullmatch(k) for k in companions):
        raise StateFileError(f"not a valid losscli state: {where}.companions should map names to sums")
    known = {*_SUMS, "worst", *(f"companion.{k}" for k in companions)}
    if meta["sequences"] is not None:
        known.add("sequences")
    if meta.get("groups") is not None:
        known.add("groups")
    known |= {k for k in SKETCH_KEYS if meta.get(k) is not None}
    if meta.get("ci") is not None:
        known.add("ci")
    for name in arrays:
        if name.rsplit(".", 1)[0] not in known:
            raise StateFileError(f"not a valid losscli state: unknown array {where}.{name}")
    out = LossState(1, 0)  # small on purpose: every field is replaced by a checked one below
    out.outputs, out.worst_capacity = outputs, capacity
    for name in _COUNTS:
        setattr(out, name, want_int(meta[name], f"{where}.{name}"))
    accounted = out.n + out.skipped + out.ignored - out.nulls  # --shift's dropped tokens: neither
    if accounted > out.rows or out.nulls > out.ignored:
        raise StateFileError(
            f"not a valid losscli state: {where} counts more scored, skipped and ignored rows "
            f"({accounted}) than rows read ({out.rows}), or more null log-probabilities than ignored"
        )
    out.counts_correct = want_bool(meta["counts_correct"], f"{where}.counts_correct")
    out.overflow = want_bool(meta["overflow"], f"{where}.overflow")
    out.row_sum_row = want_int(meta["row_sum_row"], f"{where}.row_sum_row", -1)
    out.row_sum = decode_float(meta["row_sum"], f"{where}.row_sum")
    for name, size in zip(_SUMS, (outputs, 1, 2), strict=True):
        vec = CompensatedVector.from_plain(meta[name], under(name, arrays), f"{where}.{name}")
        _want_size(vec, size, f"{where}.{name}")
        setattr(out, name, vec)
    total = float(out.weight_sum.total()[0])
    if not total >= 0.0:  # weights are >= 0: 0 (all weights zero) and inf (overflow) are genuine
        raise StateFileError(f"not a valid losscli state: {where}.weight_sum totals {total}, not >= 0")
    for name, sub in companions.items():
        key = f"companion.{name}"
        out.companion_sums[name] = CompensatedVector.from_plain(sub, under(key, arrays), f"{where}.{key}")
        _want_size(out.companion_sums[name], 1, f"{where}.{key}")
    out.worst = WorstExamples.from_plain(meta["worst"], under("worst", arrays), f"{where}.worst")
    if out.worst.capacity != capacity:
        raise StateFileError(f"not a valid losscli state: {where}.worst.capacity differs from worst_capacity")
    if meta["sequences"] is not None:
        seq_arrays = under("sequences", arrays)
        out.sequences = SequenceStats.from_plain(meta["sequences"], seq_arrays, f"{where}.sequences")
    if meta.get("groups") is not None:
        from .groups import GroupTallies

        group_arrays = under("groups", arrays)
        out.groups = GroupTallies.from_plain(meta["groups"], group_arrays, f"{where}.groups")
    _sketches_from_plain(out, meta, arrays, where)
    if meta.get("ci") is not None:
        from .intervals import IntervalTallies

        out.ci = IntervalTallies.from_plain(meta["ci"], under("ci", arrays), f"{where}.ci")
    return out


#: the optional keys of the quantile sketches (format version 3)
SKETCH_KEYS = ("sketch", "group_sketches", "calibration", "per_class")


def _sketch_parts(state: LossState) -> list[tuple[str, Any]]:
    return [
        ("sketch", state.sketch),
        ("group_sketches", state.group_sketches),
        ("calibration", state.calibration),
        ("per_class", state.per_class),
    ]


def _sketches_from_plain(out: LossState, meta: Meta, arrays: Arrays, where: str) -> None:
    """The sketches, when the file has them; a file from before them reads with none."""
    out.sketch = None
    if meta.get("sketch") is not None:
        out.sketch = LossSketch.from_plain(meta["sketch"], under("sketch", arrays), f"{where}.sketch")
    if meta.get("calibration") is not None:
        raw, sub = meta["calibration"], under("calibration", arrays)
        out.calibration = CalibrationTally.from_plain(raw, sub, f"{where}.calibration")
    if meta.get("per_class") is not None:
        raw, sub = meta["per_class"], under("per_class", arrays)
        out.per_class = ClassTally.from_plain(raw, sub, f"{where}.per_class")
    if meta.get("group_sketches") is not None:
        from .group_sketch import GroupSketches

        raw = meta["group_sketches"]
        sub = under("group_sketches", arrays)
        out.group_sketches = GroupSketches.from_plain(raw, sub, f"{where}.group_sketches")


def _want_size(vec: CompensatedVector, size: int, where: str) -> None:
    if len(vec.hi) != size:
        raise StateFileError(f"not a valid losscli state: {where} should hold {size} sums, not {len(vec.hi)}")
