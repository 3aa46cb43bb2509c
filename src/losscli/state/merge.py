"""Merging two evaluation states: refuse what cannot be combined, combine the rest exactly.

Two states merge when they measured the same thing the same way: the same metric, the same
metric options (ignore index, top-k, delta, ...) and the same binding (input kind, outputs,
classes, class labels, output names, weights, breakdown columns, id column). A part that saw no
chunk (binding None) is an empty part: it merges with anything of the same metric and options.

The tallies are merged by ``LossState.merge``. Everything in the header that depends on more
than one part (files, notes, warnings, the text's size, and what ``overlaps`` finds: a file read
twice, overlapping rows or sequences) is computed from the list of parts, which a merged state
keeps in ``provenance.parts`` with a ``PartSummary`` each. So merging in any grouping and order
gives the same state (the float sums up to the last bits of their compensation, far below 1e-12
relative), and a merged state's notes and warnings are always those of its parts plus what the
merge itself found (capped: a merge of hundreds of parts prints a few lines, not hundreds).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from .. import __version__
from ..errors import InputError
from .evalstate import Binding, EvalState, Header, PartSummary, Provenance
from .overlaps import capped, files_label, overlap_warnings, said_once, summary
from .parts import CompensatedVector, LossState

#: binding fields that must agree: each changes what the numbers mean
BINDING_FIELDS = (
    "input_kind",
    "outputs",
    "classes",
    "labels",
    "output_names",
    "weighted",
    "detail_columns",
    "id_column",
)
TEXT_SOME_PARTS = (
    "--text was given for only some parts: the text's bytes and words are not reported for the merged state"
)


class StateMismatch(InputError):
    """Two states that cannot be merged: names the field that differs and both values (exit 3)."""

    def __init__(self, what: str, first: Any, second: Any) -> None:
        self.field, self.first, self.second = what, first, second
        if isinstance(first, bool) and isinstance(second, bool):  # a flag: said in words
            on, off = ("the first", "the second") if first else ("the second", "the first")
            detail = f"{what} is on in {on} state and off in {off}; give every part the same options"
        else:
            detail = f"{what} differs ({_shown(first)} and {_shown(second)})"
        super().__init__(f"cannot merge these states: {detail}")


def _shown(value: Any) -> str:
    return "not given" if value is None else repr(value)


def merge_states(a: EvalState, b: EvalState) -> EvalState:
    """The state of both evaluations together; ``StateMismatch`` when they cannot be combined."""
    check_mergeable(a.header, b.header)
    leaves = sorted([*leaves_of(a), *leaves_of(b)], key=PartOrder)
    first, second = (b, a) if PartOrder(leaves_of(b)[0]) < PartOrder(leaves_of(a)[0]) else (a, b)
    header = Header(  # values both sides agree on are taken from ``first``: order-independent
        metric=a.header.metric,
        metric_options=dict(first.header.metric_options),
        provenance=Provenance(
            version=__version__,
            metric=a.header.metric,
            options=_shared_options(leaves),
            inputs=(),
            row_offset=min(a.header.row_offset, b.header.row_offset),
            parts=tuple(leaves),
        ),
        binding=_merged_binding(first.header.binding, second.header.binding),
        row_offset=min(a.header.row_offset, b.header.row_offset),
        sequence_offset=min(a.header.sequence_offset, b.header.sequence_offset),
        files=_files(leaves),
        columns=copy.deepcopy(first.header.columns),
    )
    summaries = [summary(leaf) for leaf in leaves]
    paths = (i.path for leaf in leaves for i in leaf.inputs)
    notes = said_once((n for s in summaries for n in s.notes), paths, "shard")  # as a sharded run says
    header.notes = capped(notes, "notes from other parts")
    parts_said = capped((w for s in summaries for w in s.warnings), "warnings from other parts")
    header.warnings = _distinct([*parts_said, *overlap_warnings(leaves), *_text(header, summaries)])
    return EvalState(header, _merged_tallies(first, second))


def check_mergeable(a: Header, b: Header) -> None:
    """Raise ``StateMismatch`` on the first field that differs."""
    if a.metric != b.metric:
        raise StateMismatch("metric", a.metric, b.metric)
    missing = "(not set)"
    for key in sorted(set(a.metric_options) | set(b.metric_options)):
        x, y = a.metric_options.get(key, missing), b.metric_options.get(key, missing)
        # an option not given (None) is the same as one a state saved before it existed
        unset = x in (missing, None) and y in (missing, None)
        if not unset and not _same(x, y):
            raise StateMismatch(f"metric option {key}", x, y)
    if a.binding is None or b.binding is None:
        return
    for name in BINDING_FIELDS:
        x, y = getattr(a.binding, name), getattr(b.binding, name)
        if x != y:
            raise StateMismatch(name.replace("_", " "), x, y)


def _same(x: Any, y: Any) -> bool:
    """Equal, where a NaN option equals a NaN option (else a state could not merge with itself)."""
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return bool(x == y)


def leaves_of(state: EvalState) -> list[Provenance]:
    """The parts a state is made of; a state that was not merged is its own only part."""
    prov = state.header.provenance
    if prov.parts:
        return list(prov.parts)
    h, seqs = state.header, state.tallies.sequences
    own = PartSummary(
        rows=state.tallies.rows,
        files=dict(h.files),
        notes=tuple(h.notes),
        warnings=tuple(h.warnings),
        text_bytes=h.text_bytes,
        text_words=h.text_words,
        sequences=None if seqs is None else (seqs.first, seqs.count),
    )
    return [dataclasses.replace(prov, row_offset=h.row_offset, summary=own)]


class PartOrder:
    """Sort key of a part: row offset, input paths, then everything else (compared as canonical
    JSON, only when the first two tie). A total order, so the parts list and all that follows
    from it do not depend on the order or grouping of merges."""

    __slots__ = ("_everything", "head", "leaf")

    def __init__(self, leaf: Provenance) -> None:
        self.leaf = leaf
        self.head = (leaf.row_offset, tuple(i.path for i in leaf.inputs))
        self._everything: str | None = None

    def everything(self) -> str:
        if self._everything is None:
            self._everything = json.dumps(self.leaf.to_plain(), sort_keys=True)
        return self._everything

    def __lt__(self, other: PartOrder) -> bool:
        if self.head != other.head:
            return self.head < other.head
        return self.everything() < other.everything()


def _distinct(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _shared_options(leaves: Sequence[Provenance]) -> dict[str, Any]:
    """The run options every part agrees on (the others differ between parts, so none applies)."""
    first = leaves[0].options
    return {k: v for k, v in first.items() if all(k in p.options and _same(p.options[k], v) for p in leaves)}


def _files(leaves: Sequence[Provenance]) -> dict[str, str]:
    """Per role, the distinct names of the parts' files in part order, joined by " + " (the
    first few, then " + N more": a merge of 300 shards is named on one line)."""
    names: dict[str, dict[str, None]] = {}  # dicts as ordered sets
    for leaf in leaves:
        for role, label in summary(leaf).files.items():
            names.setdefault(role, {})[label] = None
    return {role: files_label(list(labels)) for role, labels in names.items()}


def _text(header: Header, summaries: Sequence[PartSummary]) -> list[str]:
    """Sum the text's bytes and words when every part had ``--text``; warn when only some did."""
    sizes = [s.text_bytes for s in summaries]
    words = [s.text_words for s in summaries]
    header.text_bytes = None if None in sizes else sum(x or 0 for x in sizes)
    header.text_words = None if None in words else sum(x or 0 for x in words)
    some = any(x is not None for x in sizes) and None in sizes
    return [TEXT_SOME_PARTS] if some else []


def _merged_binding(a: Binding | None, b: Binding | None) -> Binding | None:
    if a is None or b is None:
        kept = a or b
        return None if kept is None else dataclasses.replace(kept)
    return dataclasses.replace(a, input_detected=a.input_detected or b.input_detected)


def _merged_tallies(first: EvalState, second: EvalState) -> LossState:
    """``LossState.merge``; an empty part's tallies are first shaped like the other's outputs."""
    x, y = first.tallies, second.tallies
    if x.outputs != y.outputs:
        if first.header.binding is None:
            x = _reshaped(x, y.outputs, second)
        elif second.header.binding is None:
            y = _reshaped(y, x.outputs, first)
    if x.outputs != y.outputs:  # bindings agree but the tallies do not: a state made by hand
        raise StateMismatch("outputs", x.outputs, y.outputs)
    return x.merge(y)


def _reshaped(empty: LossState, outputs: int, other: EvalState) -> LossState:
    """The tallies of a part that saw no chunk, with ``outputs`` (zero) sums instead of its own."""
    if any(empty.output_sums.hi) or any(empty.output_sums.lo):
        raise StateMismatch("outputs", empty.outputs, other.tallies.outputs)
    out = dataclasses.replace(empty, outputs=outputs)  # __post_init__ makes fresh zero sums...
    for name in ("weight_sum", "hits", "worst", "sequences", "companion_sums"):
        setattr(out, name, getattr(empty, name))  # ...and these are the empty part's own again
    out.output_sums = CompensatedVector.zeros(outputs)
    return out
