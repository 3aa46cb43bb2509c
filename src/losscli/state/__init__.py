"""The evaluation state: a self-contained, mergeable, saveable value.

``parts`` holds the mergeable pieces (compensated sums, counts, worst-K, per-sequence
statistics); ``evalstate`` wraps them with the header every figure also needs (the metric, its
options, what it bound to on the first chunk, provenance); ``files`` saves and loads it.
"""

from .evalstate import EvalState, Header, Provenance
from .parts import CompensatedVector, Example, LossState, SequenceStats, WorstExamples

__all__ = [
    "CompensatedVector",
    "EvalState",
    "Example",
    "Header",
    "LossState",
    "Provenance",
    "SequenceStats",
    "WorstExamples",
]
