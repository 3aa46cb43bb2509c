"""The evaluation state: a self-contained, mergeable, saveable value.

``parts`` holds the mergeable pieces (compensated sums, counts, worst-K, per-sequence
statistics, in ``seqstats``); ``evalstate`` wraps them with the header every figure also needs
(the metric, its options, what it bound to on the first chunk, provenance); ``merge`` combines
two states or says why they cannot be; ``files`` saves and loads them (the format is documented
there); ``plain`` is the checked plain-data form both use.
"""

from .evalstate import FORMAT_VERSION, Binding, EvalState, Header, InputFile, PartSummary, Provenance
from .parts import CompensatedVector, Example, LossState, SequenceStats, WorstExamples
from .plain import StateFileError

__all__ = [
    "FORMAT_VERSION",
    "Binding",
    "CompensatedVector",
    "EvalState",
    "Example",
    "Header",
    "InputFile",
    "LossState",
    "PartSummary",
    "Provenance",
    "SequenceStats",
    "StateFileError",
    "StateMismatch",
    "WorstExamples",
]


def __getattr__(name: str) -> object:
    """``StateMismatch`` lives with the merge, imported only when a merge happens (it needs json)."""
    if name == "StateMismatch":
        from .merge import StateMismatch

        return StateMismatch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
