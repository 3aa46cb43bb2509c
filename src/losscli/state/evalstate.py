"""``EvalState``: everything a report is computed from, as one mergeable value.

A report is ``build_report(state)`` and nothing else, so a state saved on one machine and
loaded on another (or merged with the states of other parts of the data) gives the same
figures as the run that made it. The header says what was evaluated and how (the metric, the
options that change its numbers, what it settled on the first chunk, where the rows came from);
the tallies (``LossState``) hold the sums, counts, worst rows and per-sequence statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .parts import LossState

#: bump when the saved form changes meaning; ``load`` refuses versions it does not know
FORMAT_VERSION = 1


@dataclass(frozen=True)
class InputFile:
    """One input of a run, as it was when read: enough to tell a stale state from a fresh one."""

    role: str  # preds, targets, weights, logits, logprobs, text
    path: str  # absolute path, "-" for stdin, "<array>" for an array passed from Python
    size: int | None = None  # bytes; None for stdin and arrays
    mtime: float | None = None  # seconds since the epoch; None for stdin and arrays


@dataclass(frozen=True)
class Provenance:
    """Who made a state from what. A merged state keeps the provenance of each of its parts."""

    version: str  # losscli's version
    metric: str
    options: dict[str, Any]  # every option of the run that is not an output option, plain data
    inputs: tuple[InputFile, ...] = ()
    row_offset: int = 0
    parts: tuple[Provenance, ...] = ()  # non-empty only for a merged state


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
    labels: tuple[int, ...] | None = None  # ce: the class label of each score column, when named
    detail_columns: tuple[str, ...] = ()  # the breakdown's cells after row (and id)
    id_column: str | None = None  # the id column the worst rows carry, if any
    weighted: bool = False


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


@dataclass
class EvalState:
    """Header + tallies. ``merge`` is associative; ``save``/``load`` round-trip it exactly."""

    header: Header
    tallies: LossState
