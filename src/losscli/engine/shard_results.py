"""What a sharded run adds to its merged state and writes beside it: one --per-example file
for every shard (in input order, each row with its shard and its row in it), a rule's note said
once rather than per shard, --max-groups over the whole input, and a file beside the shards
read by row range without a warning that its rows count twice. engine/sharded.py runs the
shards; this module is what their results need to read as one run's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..shards import ShardPlan
from ..state.evalstate import EvalState

if TYPE_CHECKING:
    from ..per_example import PerExampleWriter
    from .plan import Plan


class ShardOutput:
    """A sharded run's one --per-example file: opened by the first shard's plan (which says
    whether rows carry ids and sequence positions), written shard after shard in order, with
    each row's shard (``file``) and its row in that shard (``file_row``)."""

    def __init__(self, path: str, files: Sequence[str]) -> None:
        self.path, self.files = path, list(files)
        self.writer: PerExampleWriter | None = None

    def open(self, plan: Plan) -> None:
        if self.writer is not None:
            return
        from ..per_example import open_writer
        from .evaluator import IDS

        carry = IDS in plan.roles and not self.path.lower().endswith(".npy")
        extra = ("sequence", "position", "token_position") if plan.seqmap is not None else ()
        self.writer = open_writer(self.path, extra, carry, self.files)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


class ShardSink:
    """One shard's view of the run's writer: its rows get the shard and ``file_row``."""

    def __init__(self, output: ShardOutput, shard: int, row_offset: int) -> None:
        self.output, self.shard, self.row_offset = output, shard, row_offset

    def write(
        self,
        rows: NDArray[np.int64],
        losses: NDArray[np.float64],
        extra: dict[str, NDArray[Any]] | None = None,
        ids: NDArray[Any] | None = None,
    ) -> None:
        assert self.output.writer is not None, "opened by the shard's plan"
        here = {**(extra or {}), "file_row": rows - self.row_offset, "file": np.full(len(rows), self.shard)}
        self.output.writer.write(rows, losses, here, ids)


def shard_notes(notes: Sequence[str], shards: ShardPlan) -> list[str]:
    """Notes that every shard repeats with its own path (the same rule chose the same columns)
    said once, for the first shard, with how many others said the same: not 1,000 lines."""
    from ..state.overlaps import said_once

    return said_once(notes, (p for shard in shards.inputs for p in shard.values()), "shard")


def check_max_groups(merged: EvalState, options: Mapping[str, Any]) -> None:
    """--max-groups bounds the groups of the whole input, not of each shard: shards with a
    few keys each can add up to more."""
    groups = merged.tallies.groups
    limit = options.get("max_groups")
    from ..options import MAX_GROUPS_DEFAULT
    from ..readers.keys import TooManyGroups

    limit = MAX_GROUPS_DEFAULT if limit is None else limit
    if groups is not None and len(groups) > limit:
        shown = options.get("group_by") or "the --groups columns"
        raise TooManyGroups(
            f"--group-by {shown} has {len(groups):,} distinct keys across the shards, more than "
            f"--max-groups {limit:,}: group by a column with fewer values, or raise --max-groups"
        )


def shard_output(shards: ShardPlan, path: Any) -> ShardOutput | None:
    """--per-example for a sharded run: rows name the shards of the predictions (or of the
    first sharded input)."""
    if path is None:
        return None
    role = "preds" if "preds" in shards.roles else shards.roles[0]
    return ShardOutput(os.fspath(path), [shards.inputs[i][role] for i in range(len(shards))])
