"""``EvalState``: everything a report is computed from, as one mergeable value.

A report is ``build_report(state)`` and nothing else, so a state saved on one machine and
loaded on another (or merged with the states of other parts of the data) gives the same
figures as the run that made it. The header says what was evaluated and how (the metric, the
options that change its numbers, what it settled on the first chunk, where the rows came from);
the tallies (``LossState``) hold the sums, counts, worst rows and per-sequence statistics.

Every class here has ``to_plain`` / ``from_plain`` (JSON values; ``EvalState`` also numeric
arrays), checked field by field on the way in (see ``plain``); ``merge`` is in ``merge`` and
``save`` / ``load`` in ``files``, which documents the file format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .parts import LossState
from .plain import (
    Arrays,
    Meta,
    StateFileError,
    decode_float,
    encode,
    encode_float,
    fields,
    malformed,
    prefixed,
    under,
    want_bool,
    want_dict,
    want_int,
    want_opt_int,
    want_opt_str,
    want_plain_text,
    want_str,
    want_str_map,
    want_strs,
)

if TYPE_CHECKING:
    from os import PathLike

    from ..results.report import Report

#: bump when the saved form changes meaning; ``load`` refuses versions it does not know.
#: 2 added ``tallies.groups`` (--group-by); a state without groups is still written as 1
#: 3 added ``tallies.ci`` (--ci interval tallies), ``tallies.sketch``/``group_sketches`` (quantiles),
#: ``tallies.calibration`` and ``tallies.per_class`` (every run keeps a sketch, so new states are 3).
#: A reader accepts every key at every version it knows, so a ``--ci`` state saved before
#: version 3 existed (main wrote it as 1 or 2) still loads.
FORMAT_VERSION = 3

#: the tallies' keys that need version 3
_VERSION_3_KEYS = frozenset({"ci", "sketch", "group_sketches", "calibration", "per_class"})


def saved_version(tallies: Meta) -> int:
    """The format version a state's tallies need: the oldest that knows all their keys."""
    if _VERSION_3_KEYS & set(tallies):
        return 3
    return 2 if "groups" in tallies else 1


@dataclass(frozen=True)
class InputFile:
    """One input of a run, as it was when read: enough to tell a stale state from a fresh one."""

    role: str  # preds, targets, weights, logits, logprobs, text
    path: str  # absolute path, "-" for stdin, "<array>" for an array passed from Python
    size: int | None = None  # bytes; None for stdin and arrays
    mtime: float | None = None  # seconds since the epoch; None for stdin and arrays
    #: rows [start, stop) of the file this part read, when it read a range of it (one file cut
    #: into parts by row groups, or a single file beside shards); None: the whole file
    span: tuple[int, int] | None = None

    def to_plain(self) -> Meta:
        mtime = None if self.mtime is None else encode_float(self.mtime)
        out: Meta = {"role": self.role, "path": self.path, "size": self.size, "mtime": mtime}
        if self.span is not None:  # written only when set: states of whole files read as before
            out["span"] = list(self.span)
        return out

    @classmethod
    def from_plain(cls, raw: Any, where: str) -> InputFile:
        fields(raw, where, {"role", "path", "size", "mtime"}, frozenset({"span"}))
        mtime = None if raw["mtime"] is None else decode_float(raw["mtime"], f"{where}.mtime")
        span = raw.get("span")
        if span is not None:
            if not isinstance(span, list) or len(span) != 2:
                raise malformed(f"{where}.span", "a list [start, stop]", span)
            start, stop = (want_int(v, f"{where}.span") for v in span)
            if stop < start:
                raise malformed(f"{where}.span", "a list [start, stop] with start <= stop", span)
            span = (start, stop)
        return cls(
            want_str(raw["role"], f"{where}.role"),
            want_str(raw["path"], f"{where}.path"),
            want_opt_int(raw["size"], f"{where}.size"),
            mtime,
            span,
        )


@dataclass(frozen=True)
class PartSummary:
    """What a merge must still know of each part once the tallies are summed.

    A merged state keeps one per part (in ``Provenance.summary`` of each of its parts), so its
    files, notes, warnings and overlap checks are computed from the parts themselves, and merging
    in any grouping or order gives the same header.
    """

    rows: int = 0  # input rows the part read (its tallies' ``rows``)
    files: dict[str, str] = field(default_factory=dict)  # the part's Header.files
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    text_bytes: int | None = None
    text_words: int | None = None
    #: (first, count): the global sequence ids of the part's per-sequence statistics, None
    #: without them; two parts of different data must not share one (see state.overlaps)
    sequences: tuple[int, int] | None = None

    def to_plain(self) -> Meta:
        out: Meta = {"rows": self.rows, "files": dict(self.files)}
        out.update(notes=list(self.notes), warnings=list(self.warnings))
        out.update(text_bytes=self.text_bytes, text_words=self.text_words)
        seqs = self.sequences
        out["sequences"] = None if seqs is None else {"first": seqs[0], "count": seqs[1]}
        return out

    @classmethod
    def from_plain(cls, raw: Any, where: str) -> PartSummary:
        fields(raw, where, {"rows", "files", "notes", "warnings", "text_bytes", "text_words", "sequences"})
        seqs = raw["sequences"]
        if seqs is not None:
            fields(seqs, f"{where}.sequences", {"first", "count"})
            seqs = (
                want_int(seqs["first"], f"{where}.sequences.first"),
                want_int(seqs["count"], f"{where}.sequences.count"),
            )
        return cls(
            want_int(raw["rows"], f"{where}.rows"),
            want_str_map(raw["files"], f"{where}.files"),
            tuple(want_strs(raw["notes"], f"{where}.notes")),
            tuple(want_strs(raw["warnings"], f"{where}.warnings")),
            want_opt_int(raw["text_bytes"], f"{where}.text_bytes"),
            want_opt_int(raw["text_words"], f"{where}.text_words"),
            seqs,
        )


@dataclass(frozen=True)
class Provenance:
    """Who made a state from what. A merged state keeps the provenance of each of its parts."""

    version: str  # losscli's version
    metric: str
    options: dict[str, Any]  # every option of the run that is not an output option, plain data
    inputs: tuple[InputFile, ...] = ()
    row_offset: int = 0
    parts: tuple[Provenance, ...] = ()  # non-empty only for a merged state
    summary: PartSummary | None = None  # set on each of a merged state's parts (see PartSummary)

    def to_plain(self) -> Meta:
        return {
            "version": self.version,
            "metric": self.metric,
            "options": encode(self.options),
            "inputs": [i.to_plain() for i in self.inputs],
            "row_offset": self.row_offset,
            "parts": [p.to_plain() for p in self.parts],
            "summary": None if self.summary is None else self.summary.to_plain(),
        }

    @classmethod
    def from_plain(cls, raw: Any, where: str = "provenance") -> Provenance:
        fields(raw, where, {"version", "metric", "options", "inputs", "row_offset", "parts", "summary"})
        for key in ("inputs", "parts"):
            if not isinstance(raw[key], list):
                raise malformed(f"{where}.{key}", "a list", raw[key])
        summary = raw["summary"]
        return cls(
            want_str(raw["version"], f"{where}.version"),
            want_str(raw["metric"], f"{where}.metric"),
            want_dict(raw["options"], f"{where}.options"),
            tuple(InputFile.from_plain(v, f"{where}.inputs[{i}]") for i, v in enumerate(raw["inputs"])),
            want_int(raw["row_offset"], f"{where}.row_offset"),
            tuple(Provenance.from_plain(v, f"{where}.parts[{i}]") for i, v in enumerate(raw["parts"])),
            None if summary is None else PartSummary.from_plain(summary, f"{where}.summary"),
        )


@dataclass
class Binding:
    """What the metric settled on its first chunk and which columns it read.

    States whose bindings differ in a field that changes the numbers (input kind, outputs,
    classes, class labels, output names, weighted) cannot be merged.
    """

    input_kind: str | None = None  # probs / logits / logprobs; None for regression
    input_detected: bool = False  # --input auto decided it
    outputs: int = 1
    classes: int = 0  # ce: score columns; perplexity: the vocabulary (logit columns); else 0
    output_names: tuple[str, ...] = ()  # per-output labels when outputs > 1
    #: ce: the class of each score column, when not its position (named columns, --classes)
    labels: tuple[int | str, ...] | None = None
    detail_columns: tuple[str, ...] = ()  # the breakdown's cells after row (and id)
    id_column: str | None = None  # the id column the worst rows carry, if any
    weighted: bool = False

    def to_plain(self) -> Meta:
        return {
            "input_kind": self.input_kind,
            "input_detected": self.input_detected,
            "outputs": self.outputs,
            "classes": self.classes,
            "output_names": list(self.output_names),
            "labels": None if self.labels is None else list(self.labels),
            "detail_columns": list(self.detail_columns),
            "id_column": self.id_column,
            "weighted": self.weighted,
        }

    @classmethod
    def from_plain(cls, raw: Any, where: str = "binding") -> Binding:
        fields(raw, where, set(cls.__dataclass_fields__))
        labels = raw["labels"]
        if labels is not None:
            if not isinstance(labels, list):
                raise malformed(f"{where}.labels", "a list of integers or strings", labels)
            labels = tuple(  # class names (text) or integer class labels
                v if isinstance(v, str) else want_int(v, f"{where}.labels[{i}]", None)
                for i, v in enumerate(labels)
            )
        return cls(
            want_opt_str(raw["input_kind"], f"{where}.input_kind"),
            want_bool(raw["input_detected"], f"{where}.input_detected"),
            want_int(raw["outputs"], f"{where}.outputs", 1),
            want_int(raw["classes"], f"{where}.classes"),
            tuple(want_strs(raw["output_names"], f"{where}.output_names")),
            labels,
            tuple(want_strs(raw["detail_columns"], f"{where}.detail_columns")),
            want_opt_str(raw["id_column"], f"{where}.id_column"),
            want_bool(raw["weighted"], f"{where}.weighted"),
        )


@dataclass
class Header:
    """The part of a state that is not a sum: identity, options, binding, provenance."""

    metric: str
    #: the metric's own options that must agree for a merge (ignore_index, topk, delta, ...)
    metric_options: dict[str, Any]
    provenance: Provenance
    binding: Binding | None = None  # None: no chunk was seen (a valid, empty part)
    row_offset: int = 0  # the global row of this part's first row (--row-offset)
    sequence_offset: int = 0  # perplexity: the global index of this part's first sequence
    files: dict[str, str] = field(default_factory=dict)  # role -> how the file is named in messages
    columns: dict[str, Any] = field(default_factory=dict)  # the JSON ``columns`` object
    notes: list[str] = field(default_factory=list)  # what a rule chose
    warnings: list[str] = field(default_factory=list)  # found while planning or reading
    text_bytes: int | None = None  # perplexity: bytes of the evaluated text
    text_words: int | None = None  # perplexity: words of the evaluated text

    def to_plain(self) -> Meta:
        return {
            "metric": self.metric,
            "metric_options": encode(self.metric_options),
            "provenance": self.provenance.to_plain(),
            "binding": None if self.binding is None else self.binding.to_plain(),
            "row_offset": self.row_offset,
            "sequence_offset": self.sequence_offset,
            "files": dict(self.files),
            "columns": encode(self.columns),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "text_bytes": self.text_bytes,
            "text_words": self.text_words,
        }

    @classmethod
    def from_plain(cls, raw: Any, where: str = "header") -> Header:
        """Checked field by field; no string anywhere in it may hold a control character."""
        fields(raw, where, set(cls.__dataclass_fields__))
        want_plain_text(raw, where)
        binding = raw["binding"]
        return cls(
            want_str(raw["metric"], f"{where}.metric"),
            want_dict(raw["metric_options"], f"{where}.metric_options"),
            Provenance.from_plain(raw["provenance"], f"{where}.provenance"),
            None if binding is None else Binding.from_plain(binding, f"{where}.binding"),
            want_int(raw["row_offset"], f"{where}.row_offset"),
            want_int(raw["sequence_offset"], f"{where}.sequence_offset"),
            want_str_map(raw["files"], f"{where}.files"),
            want_dict(raw["columns"], f"{where}.columns"),
            want_strs(raw["notes"], f"{where}.notes"),
            want_strs(raw["warnings"], f"{where}.warnings"),
            want_opt_int(raw["text_bytes"], f"{where}.text_bytes"),
            want_opt_int(raw["text_words"], f"{where}.text_words"),
        )


@dataclass
class TokenText:
    """The text (and id) of the worst tokens, for the run that read it (JSON log-probs of
    servers that write token text). Kept in memory only: not saved with the state, not merged; a report
    from a saved or merged state shows no token text."""

    rows: dict[int, str] = field(default_factory=dict)  # global row -> text (worst examples)
    positions: dict[tuple[int, int], str] = field(default_factory=dict)  # (sequence, position)
    #: token ids the file gives (vLLM's prompt ids, llama.cpp's ids), by (sequence, position)
    ids: dict[tuple[int, int], int] = field(default_factory=dict)


@dataclass
class EvalState:
    """Header + tallies. ``merge`` is associative; ``save``/``load`` round-trip it exactly."""

    header: Header
    tallies: LossState
    token_text: TokenText | None = field(default=None, compare=False, repr=False)

    def to_plain(self) -> tuple[Meta, Arrays]:
        """``({"header": ..., "tallies": ...}, arrays named "tallies.*")``: exact, see state.files."""
        meta, arrays = self.tallies.to_plain()
        return {"header": self.header.to_plain(), "tallies": meta}, prefixed("tallies", arrays)

    @classmethod
    def from_plain(cls, meta: Any, arrays: Arrays) -> EvalState:
        """Check and rebuild; ``StateFileError`` (exit 3) names the first malformed field."""
        fields(meta, "state", {"header", "tallies"})
        for name in arrays:
            if not name.startswith("tallies."):
                raise StateFileError(f"not a valid losscli state: unknown array {name}")
        header = Header.from_plain(meta["header"])
        tallies = LossState.from_plain(meta["tallies"], under("tallies", arrays))
        if header.binding is not None and header.binding.outputs != tallies.outputs:
            raise StateFileError(
                f"not a valid losscli state: the binding has {header.binding.outputs} outputs "
                f"but the tallies {tallies.outputs}"
            )
        return cls(header, tallies)

    def merge(self, other: EvalState) -> EvalState:
        """The state of both evaluations together (see state.merge); ``StateMismatch`` when they
        cannot be combined (different metric, options, bindings)."""
        from .merge import merge_states

        return merge_states(self, other)

    def report(self, top: int = 10) -> Report:
        """``build_report(self)``: the report of this evaluation (a convenience for Python users;
        the state itself knows no metric, so the import is here, not at the top)."""
        from ..results.report import build_report

        return build_report(self, top)

    def save(self, path: str | PathLike[str]) -> None:
        """Write atomically (see state.files); ``OutputError`` (exit 4) when it cannot be written."""
        from .files import save_state

        save_state(self, path)

    @classmethod
    def load(cls, path: str | PathLike[str]) -> EvalState:
        """Read a state file; ``StateFileError`` (exit 3, one line naming the file) on any problem."""
        from .files import load_state

        return load_state(path)
