"""The bootstrap's example identities in a sharded run: (file, row within file).

An example's Poisson weights are a function of (seed, its identity, replicate). Unsharded, the
identity is the example's row in the input. Sharded (a directory or glob), it is the file that
names the rows (the predictions, or perplexity's log-probabilities, as ``results.rows`` names a
worst example's file) and the row within that file, so the interval does not depend on how many
rows come before a shard, on the engine, or on which worker read it; resharding the same data
changes it only within its sampling error. The file is keyed by its path under the sharded
input's root (the directory, or a glob's folder), so a copy of the data set elsewhere, or the
same data seen from a Dask worker's mount, gives the same weights. A single file beside shards
is read by row range ``span``, as is a part of a large shard cut by ``--split-rows``: its row is
``row - (row_offset - span start)``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from ..ci_options import Identity
from ..options import Evaluation
from ..shards import ShardPlan, shard_root
from ..stats.poisson import file_key

#: the roles whose file names a row, in order (as results.rows)
NAMING_ROLES = ("preds", "logprobs")


def shard_identity(
    shards: ShardPlan, i: int, row_offset: int, span: tuple[int, int] | None
) -> Identity | None:
    """The key of shard ``i``'s naming file and the shift from a global row to its own row."""
    for role in NAMING_ROLES:
        if role in shards.lists:
            listed = shards.lists[role]
            path = shards.inputs[i][role]
            name = os.path.relpath(path, shard_root(listed.given)).replace(os.sep, "/")
            part = shards.span(i)  # a part of a large shard (--split-rows) starts at its span
            return Identity(file_key(name), row_offset - (part[0] if part is not None else 0))
        if role in shards.singles:
            start = span[0] if span is not None else 0
            return Identity(file_key(os.path.basename(shards.singles[role])), row_offset - start)
    return None


def with_identity(evaluation: Evaluation, identity: Any) -> Evaluation:
    """The evaluation whose --ci options carry the shard's identity (no change without --ci)."""
    ci = evaluation.run.ci
    if ci is None or identity is None:
        return evaluation
    run = dataclasses.replace(evaluation.run, ci=dataclasses.replace(ci, identity=identity))
    return dataclasses.replace(evaluation, run=run)
