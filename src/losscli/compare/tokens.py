"""``losscli compare perplexity --targets IDS --logits A --logits B ...`` (or ``--logprobs A
--logprobs B ...``): perplexity's inputs are options, so a model is one repeated option."""

from __future__ import annotations

from typing import Any

import click

from ..cli_options import column_options, group_options, metric_option, reading_options
from ..errors import UsageError

HELP = """Is model B better than model A, by perplexity? Paired tests clustered by sequence.

\b
  losscli compare perplexity --targets ids.npy --logits a.npy --logits b.npy
  losscli compare perplexity --logprobs a.jsonl --logprobs b.jsonl --name A --name B
  losscli compare perplexity --targets ids.npy --logits a.npy --logits b.npy --shift
  losscli compare perplexity --logprobs a.parquet --logprobs b.parquet --group-by lang

The first model is the baseline; every input is streamed once, in step, and must have the same
number of tokens (exit 3 names the file that differs). delta = model - baseline is the
difference of cross-entropies in nats per token (lower is better). Tokens of one sequence are
not independent, so the unit of every test is the sequence ((B, T) arrays, list columns, JSON
records, --seq-col): delta is sum(NLL differences) / sum(tokens) over sequences, the t test uses
its cluster-robust variance (G - 1 degrees of freedom), the bootstrap gives each sequence one
Poisson weight and the permutation test one sign. Flat (N, V) logits have no sequences: tokens
are then compared one by one (said in a note). Every model must score the same tokens.

With --group-by COL (a column of the baseline's log-probs or logits file, a key per sequence or
per token, or --groups FILE, a row per token) every group gets its own tests, Holm-adjusted over
groups and candidates; a group's unit is the (group, sequence) cluster, the tokens of one
sequence in that group. The other models' files need no key column."""


def tokens_command(definition: Any) -> click.Command:
    """The compare command of a token metric (perplexity)."""
    from .command import build_command, compare_options, run_compare

    params: list[click.Parameter] = [
        click.Option(
            ["--targets", "targets"],
            metavar="IDS",
            help="Token ids (N,) or (B, T), shared by every model's --logits.",
        ),
        click.Option(
            ["--logits", "logits"],
            metavar="FILE",
            multiple=True,
            help="A model's logits (N, V) or (B, T, V); once per model, the baseline first.",
        ),
        click.Option(
            ["--logprobs", "logprobs"],
            metavar="FILE",
            multiple=True,
            help="Instead of --logits: a model's log-probabilities of the target tokens (as "
            "losscli perplexity --logprobs reads them); once per model, the baseline first.",
        ),
    ]
    params += [metric_option(o) for o in definition.options]

    def command(**opts: Any) -> int:
        logits, logprobs = opts.pop("logits"), opts.pop("logprobs")
        if bool(logits) == bool(logprobs):
            raise UsageError("give --logits once per model (with --targets) or --logprobs once per model")
        if logprobs:
            if opts.get("targets") is not None:
                raise UsageError("--logprobs need no --targets: give --logprobs once per model alone")
            opts["logprobs"] = True
        return run_compare(definition.name, list(logits or logprobs), opts)

    options = [
        *column_options(),
        *group_options("the baseline's --logprobs or --logits file"),
        *reading_options(),
        *compare_options(),
    ]
    refused = ("per_example", "weights", "weight_col", "exclude_col")
    return build_command(definition, command, params, options, refused, HELP)
