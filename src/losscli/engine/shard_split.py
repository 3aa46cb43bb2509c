"""Large shards cut into parts at their row groups, so one big file is not one task.

Batch inference often writes a few very large Parquet files rather than many small ones. A run
whose tasks are whole shards then has as many tasks as files: two 40 GB files keep two of a
cluster's workers busy and the rest idle. A shard of at least ``2 * SPLIT_ROWS`` rows is read
as parts of about ``SPLIT_ROWS`` rows each (``--split-rows``), cut at its row-group boundaries (a .npy file at
any row), each part an ordinary evaluation of that row range of every file of the shard at its
own row offset (``ShardPlan.spans``). The parts' states merge like the shards' states, so the
result is the same as for the whole shard: sums exact to the last compensated bit, counts and
worst rows identical, rows still named by their file and their row in it.

Only when the row counts are known from metadata (Parquet footers, .npy headers) and the
metric scores a row per example, i.e. exactly when shards run concurrently; never with
``--per-example``, whose rows are written shard by shard in order.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from typing import Any

from ..shards import ShardPlan, format_of

#: rows of a part of a large shard (about 64 MB of float64 predictions and targets)
SPLIT_ROWS = 1 << 22


def split_shards(
    shards: ShardPlan, counts: list[int] | None, options: Mapping[str, Any], size: int = SPLIT_ROWS
) -> tuple[ShardPlan, list[int] | None]:
    """``shards`` with every shard of at least ``2 * size`` rows cut into parts of about
    ``size`` rows (``--split-rows``; 0: none), and the parts' row counts."""
    if counts is None or shards.spans or size <= 0 or not any(n >= 2 * size for n in counts):
        return shards, counts
    inputs, partitions, spans, rows = [], [], [], []
    for i, n in enumerate(counts):
        cuts = _cuts(shards.inputs[i], n, options.get("fmt"), size) if n >= 2 * size else None
        if cuts is None:
            cuts = [0, n]
        for start, stop in itertools.pairwise(cuts):
            inputs.append(shards.inputs[i])
            partitions.append(shards.partitions[i])
            spans.append(None if (start, stop) == (0, n) else (start, stop))
            rows.append(stop - start)
    split = dataclasses.replace(
        shards, inputs=tuple(inputs), partitions=tuple(partitions), spans=tuple(spans)
    )
    return split, rows


def _cuts(files: Mapping[str, str], rows: int, fmt: str | None, size: int) -> list[int] | None:
    """Where to cut a shard of ``rows`` rows: at the row groups of its Parquet files (the
    first one's; the others' are read from the row group holding each cut), gathered into
    parts of at least ``size`` rows; anywhere in .npy files; None: not cut."""
    kinds = {fmt or format_of(p) for p in files.values()}
    if not kinds <= {"parquet", "npy"}:
        return None
    parquet = [p for p in files.values() if (fmt or format_of(p)) == "parquet"]
    if parquet:
        bounds = _row_group_starts(parquet[0])
        if bounds is None:
            return None
    else:
        bounds = list(range(0, rows, size))
    cuts = [0]
    for b in bounds[1:]:
        if b - cuts[-1] >= size and rows - b >= size // 2:
            cuts.append(b)
    cuts.append(rows)
    return cuts if len(cuts) > 2 else None


def _row_group_starts(path: str) -> list[int] | None:
    """The first row of each row group of a Parquet file; None if the footer cannot be read
    (the shard's reader then says what is wrong)."""
    try:
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path).metadata
    except Exception:
        return None
    starts, row = [], 0
    for g in range(meta.num_row_groups):
        starts.append(row)
        row += meta.row_group(g).num_rows
    return starts
