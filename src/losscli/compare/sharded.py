"""``losscli compare`` over sharded inputs: directories and globs, paired shard by shard.

Batch inference writes one folder of shards per model (``preds_a/part-00000.parquet ...``) beside
the targets' folder. A comparison takes them when every input is sharded alike: the same number
of shards in each (each expanded as ``shards.expand`` does: absolute paths in lexicographic
order, hidden files skipped), shard i of the targets paired with shard i of every model, which
must have the same rows (exit 3 names the file that differs). Mixing single files with sharded
inputs is refused (exit 2): which rows would pair would be a guess.

Each shard is an ordinary comparison at its row offset (the rows of the shards before it; for
perplexity also its sequence offset), so every example keeps its place in the concatenation and
the bootstrap weights and permutation signs follow it; the shards' comparison states are then
merged as ``losscli merge`` merges saved parts. Shards run one after another, so memory stays
that of one shard's comparison.

Hive partition folders (``lang=de/part-0.parquet``) are group keys, as in a plain sharded run
(``readers.partitioned``): ``--group-by lang`` finds the key in the TARGETS shards' folders (the
keys are read from TARGETS), or in a sharded ``--groups`` input's. Only the keys' source gets
the partition columns: the targets and predictions are read as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError, UsageError
from ..options import Evaluation
from ..shards import Partition, expand, is_sharded

#: evaluation options that name an input file, sharded like the targets when given
FILE_OPTIONS = ("weights", "groups")


@dataclass
class ShardRun:
    """One shard of every input: the targets, every model's predictions, the file options."""

    targets: Any
    preds: list[Any]
    files: dict[str, Any]
    label: str
    #: hive partition values of the shard's group keys' file ("groups"), when it has any
    partitions: dict[str, Any] = field(default_factory=dict)


def shard_runs(targets: Any, preds: list[Any], options: dict[str, Any]) -> list[ShardRun] | None:
    """The comparison's shards, or None when no input is a directory or glob."""
    named: list[tuple[str, Any]] = [("TARGETS", targets)] + [
        (f"PREDS {i + 1}", p) for i, p in enumerate(preds)
    ]
    named += [
        (f"--{k}", options[k])
        for k in FILE_OPTIONS
        if options.get(k) is not None and options[k] is not targets
    ]
    named = [(what, v) for what, v in named if v is not None]
    sharded = [is_sharded(v) for _, v in named]
    if not any(sharded):
        return None
    if not all(sharded):
        one = next(str(v) for (_, v), s in zip(named, sharded, strict=True) if not s)
        many = next(str(v) for (_, v), s in zip(named, sharded, strict=True) if s)
        raise UsageError(
            f"{many} is a directory or glob but {one} is one file: give every input of a comparison "
            "sharded alike (shard i of each paired) or every input as one file"
        )
    fmt = options.get("fmt")
    lists = [expand(v, what, fmt) for what, v in named]
    count = len(lists[0].shards)
    for (what, v), found in zip(named[1:], lists[1:], strict=True):
        if len(found.shards) != count:
            raise InputError(
                f"{what} has {len(found.shards)} shards but {named[0][0]} ({lists[0].given}) has "
                f"{count}: every input needs one shard per part, paired in path order",
                path=str(v),
            )
    first = 0 if targets is not None else None  # log-probs have no targets
    runs = []
    for i in range(count):
        paths = {what: lst.shards[i].path for (what, _), lst in zip(named, lists, strict=True)}
        files = {k: paths[f"--{k}"] for k in FILE_OPTIONS if f"--{k}" in paths}
        if options.get("groups") is targets and first is not None:
            files["groups"] = paths["TARGETS"]
        shard_targets = paths["TARGETS"] if first is not None else None
        shard_preds = [paths[f"PREDS {j + 1}"] for j in range(len(preds))]
        label = f"shard {i + 1} ({shard_targets or shard_preds[0]})"
        # the --group-by keys' hive values: the --groups shard's own, else TARGETS' (the keys
        # are read from TARGETS); only there, so that the targets and predictions read as before
        where = "--groups" if "--groups" in paths else "TARGETS" if "groups" in files else None
        shard_of = {what: lst.shards[i] for (what, _), lst in zip(named, lists, strict=True)}
        partitions = {} if where is None else {"groups": shard_of[where].partition}
        runs.append(ShardRun(shard_targets, shard_preds, files, label, partitions))
    return runs


def compare_shards(
    runs: list[ShardRun], options: dict[str, Any], one: Callable[..., Any], tokens: bool
) -> Any:
    """Each shard compared at its offsets (``one(targets, preds, options)`` -> CompareState),
    then the shards' states merged."""
    from .state import merge_compare

    row = int(options.get("row_offset") or 0)
    sequence = int(options.get("sequence_offset") or 0)
    states = []
    for run in runs:
        opts = {**options, **run.files, "row_offset": row}
        if tokens:
            opts["sequence_offset"] = sequence
        state = one(run.targets, run.preds, opts, run.partitions)
        states.append(state)
        tallies = state.states[0].tallies
        row += int(tallies.rows)
        if tallies.sequences is not None:
            sequence += int(tallies.sequences.count)
    if len(states) == 1:
        return states[0]
    return merge_compare(states, [r.label for r in runs])


def with_partitions(evaluation: Evaluation, partitions: dict[str, Any]) -> Evaluation:
    """A model's evaluation with its group keys' source carrying its shard's hive partition
    values (constant columns after the file's own, as ``engine.sharded`` gives a plain run's)."""
    inputs = evaluation.inputs
    partition: Partition = tuple(partitions.get("groups") or ())
    if inputs.groups is None or not partition:
        return evaluation
    groups = dataclasses.replace(inputs.groups, partition=partition)
    return dataclasses.replace(evaluation, inputs=dataclasses.replace(inputs, groups=groups))
