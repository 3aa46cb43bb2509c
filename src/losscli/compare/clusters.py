"""``compare perplexity``: paired tests clustered by sequence.

Tokens of one sequence are not independent (a model that loses the thread of a document is
wrong on many of its tokens at once), so a per-token test would claim far more certainty than
the data hold. The unit of the comparison is the sequence: for sequence g, y_kg is model k's
NLL summed over the tokens it scored and n_g their count, and the paired difference of a
candidate is d_g = y_kg - y_0g (the same tokens scored by both). Then

* delta = sum_g d_g / sum_g n_g, the difference of the two cross-entropies in nats per token
  (the ratio estimator), and the t test uses its cluster-robust variance
  G / (G - 1) * sum_g (d_g - delta n_g)^2 / (sum n)^2 with G - 1 degrees of freedom
  (``stats.RatioMoments``);
* ``--test bootstrap``: one Poisson(1) weight per sequence and replicate, a function of (seed,
  the sequence's global index, replicate): replicate r's delta is sum P d / sum P n;
* ``--test permutation``: one sign per sequence: T = sum d_g against sum s_g d_g.

These sums are taken from each model's per-sequence statistics (``state.seqstats``: NLL and
token counts per sequence, already in every perplexity state), after the run, so a sequence cut
across chunks, threads or ``--save-state`` parts is whole when it is counted: a merged
comparison recomputes its paired tallies from the merged states. Flat (N, V) logits with no
sequence information are one sequence: their tokens are compared one by one, with a note.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from ..sequences import SingleSequence
from ..state.evalstate import EvalState
from ..stats.moments import RatioMoments
from .tallies import Moments, PairTallies

F64 = NDArray[np.float64]
#: sequences per block of the resampling sums (bounds the (block, K) arrays)
BLOCK = 1 << 16
TOKEN_NOTE = (
    "no sequence information (flat (N, V) logits or one column of log-probs): tokens are compared "
    "as independent examples; give (B, T) arrays, a list column, JSON records or --seq-col to "
    "cluster the tests by sequence"
)


def by_sequence(plans: Sequence[Any], evaluators: Sequence[Any]) -> bool:
    """Give each model's evaluator its global sequence map; whether the comparison is clustered
    by sequence (perplexity with sequence information)."""
    from ..engine.plan import GlobalSequences

    if plans[0].metric.inputs != "tokens":
        return False
    for plan, ev in zip(plans, evaluators, strict=True):
        if plan.seqmap is not None:
            h = plan.header
            ev.seqmap = GlobalSequences(plan.seqmap, h.row_offset, h.sequence_offset)
    return all(p.seqmap is not None and not isinstance(p.seqmap, SingleSequence) for p in plans)


def cluster_pairs(states: Sequence[EvalState], test: str, resamples: int, seed: int) -> PairTallies:
    """The paired tallies of a perplexity comparison, from every model's per-sequence sums."""
    seqs = [s.tallies.sequences for s in states]
    if any(q is None for q in seqs):
        raise InputError("a perplexity state without per-sequence statistics cannot be compared by sequence")
    base = seqs[0]
    assert base is not None
    for i, q in enumerate(seqs[1:], start=1):
        assert q is not None
        _check_same_tokens(base.first, base.tokens, q.first, q.tokens, _label(states, i))
    keep = np.flatnonzero(base.tokens > 0)
    pairs = PairTallies(len(states), test, resamples, seed)
    pairs.ratios = [[RatioMoments() for _ in range(pairs.columns)]]
    for start in range(0, len(keep), BLOCK):
        at = keep[start : start + BLOCK]
        y = [q.nll[at] for q in seqs if q is not None]
        add_clusters(pairs, y, base.tokens[at].astype(np.float64), (at + base.first).astype(np.int64))
    return pairs


def _label(states: Sequence[EvalState], i: int) -> str:
    header = states[i].header
    return str(header.files.get("preds") or header.files.get("logprobs") or f"model {i + 1}")


def _check_same_tokens(
    first: int, tokens: NDArray[np.int64], other_first: int, other: NDArray[np.int64], label: str
) -> None:
    """Paired sequences must be the same tokens: the same count scored in every sequence."""
    if first == other_first and len(tokens) == len(other) and np.array_equal(tokens, other):
        return
    if first != other_first or len(tokens) != len(other):
        raise InputError(
            f"holds sequences {other_first}..{other_first + len(other) - 1}, the baseline "
            f"{first}..{first + len(tokens) - 1}: compare the same sequences",
            path=label,
        )
    g = int(np.flatnonzero(tokens != other)[0])
    raise InputError(
        f"scored {int(other[g])} tokens of sequence {first + g}, the baseline {int(tokens[g])}: "
        "compare needs the same tokens scored by every model (the same --ignore-index, mask, "
        "--pad-value and no --nan skip of some)",
        path=label,
    )


def add_clusters(pairs: PairTallies, y: list[F64], n: F64, ids: NDArray[np.int64], g: int = 0) -> None:
    """Count complete clusters of group ``g``: ``y[k]`` model k's NLL sums, ``n`` token counts
    (> 0), ``ids`` their identities (global sequence indices, ascending). Columns are each
    model's sums, then each candidate's differences."""
    m = pairs.models
    totals = np.empty((len(n), pairs.columns))
    for j, column in enumerate(y):
        totals[:, j] = column
        if j:
            np.subtract(column, y[0], out=totals[:, m + j - 1])
    # weighted moments of the per-sequence means with weights n: the means are the ratios, W the
    # tokens, mean * W the totals (what the permutation test's statistic is)
    chunk = Moments.of_chunk(totals / n[:, None], n, None, 1)
    if pairs.groups == 1:
        pairs.moments = pairs.moments.merge(chunk)
    else:
        _merge_row(pairs.moments, g, chunk)
    assert pairs.ratios is not None
    for j, ratio in enumerate(pairs.ratios[g]):
        ratio.update(np.ascontiguousarray(totals[:, j]), n)
    if pairs.test == "bootstrap":
        values = np.concatenate((totals, n[:, None]), axis=1)
        pairs.resampled[g] += _sums("bootstrap", pairs.seed, ids, values, pairs.resamples)
    elif pairs.test == "permutation":
        values = np.concatenate((totals[:, m:], n[:, None]), axis=1)
        pairs.resampled[g] += _sums("permutation", pairs.seed, ids, values, pairs.resamples)


def _merge_row(moments: Moments, g: int, chunk: Moments) -> None:
    """One group's moments (row ``g``) merged with a one-group ``chunk``, in place."""
    at = slice(g, g + 1)
    row = Moments(moments.n[at], moments.w[at], moments.w2[at], moments.mean[at], moments.m2[at])
    merged = row.merge(chunk)
    moments.n[at], moments.w[at], moments.w2[at] = merged.n, merged.w, merged.w2
    moments.mean[at], moments.m2[at] = merged.mean, merged.m2


def _sums(test: str, seed: int, ids: NDArray[np.int64], values: F64, resamples: int) -> F64:
    if test == "bootstrap":
        from .poisson import poisson_sums

        return poisson_sums(seed, ids, values, resamples)
    from .signs import flip_sums

    return flip_sums(seed, ids, values, resamples)
