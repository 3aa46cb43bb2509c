"""Rows of each shard, known before a sharded run: from Parquet footers and .npy headers, or
by reading CSV shards through when a single file beside them must be cut into row ranges.
Offsets known in advance let shards run concurrently and a file beside them be read by range.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..errors import InputError, UsageError
from ..metrics.base import MetricDef
from ..shards import ShardPlan, format_of


def known_rows(shards: ShardPlan, i: int, input_format: str | None) -> int | None:
    """Shard ``i``'s rows from metadata, the same in every sharded role (else exit 3), or None."""
    counts = {}
    for role, path in shards.inputs[i].items():
        n = _metadata_rows(path, input_format or format_of(path))
        if n is None:
            return None
        counts[role] = (path, n)
    if len({n for _, n in counts.values()}) > 1:
        (pa, na), (pb, nb) = list(counts.values())[:2]
        raise InputError(
            f"shard {i} of the inputs differs in length: {pa} has {na} rows, {pb} has {nb}; paired "
            "shards must have the same rows"
        )
    return next(iter(counts.values()))[1]


def read_counts(shards: ShardPlan, options: Mapping[str, Any]) -> list[int]:
    """Each shard's rows, counted by reading one column of it through with the reader its
    evaluation uses (header, separator and blank lines read alike), so a single file beside
    CSV shards can be read by row range. The shards are parsed twice; a shard whose reading
    then differs from its count is refused as a length mismatch, naming it, never misaligned."""
    from ..readers.open import open_reader

    role = shards.roles[0]
    counts = []
    for i in range(len(shards)):
        with open_reader(
            shards.inputs[i][role],
            options.get("fmt"),
            header=options.get("header"),
            delimiter=options.get("delimiter"),
            decimal=options.get("decimal"),
            nan="skip",  # a missing value is still a row
        ) as reader:
            counts.append(sum(len(c[0]) for c in reader.chunks([[0]], 1 << 16)))
    return counts


def _metadata_rows(path: str, fmt: str | None) -> int | None:
    """Rows a Parquet footer or a .npy header tells, without reading data; None otherwise."""
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        if fmt == "npy":
            from ..readers.numpy_reader import read_header

            with open(path, "rb") as fp:
                header = read_header(fp, path, os.fstat(fp.fileno()).st_size)
            return header.rows if header.shape else None
    except Exception:  # the reader says what is wrong when the shard is read
        return None
    return None


def metadata_counts(metric: MetricDef, shards: ShardPlan, fmt: str | None) -> list[int] | None:
    """Each shard's rows from metadata, for a metric that scores a row per example; else None."""
    if metric.inputs != "pair":
        return None
    counts = []
    for i in range(len(shards)):
        n = known_rows(shards, i, fmt)
        if n is None:
            return None
        counts.append(n)
    return counts


def row_range(counts: list[int] | None, i: int, base: int) -> tuple[int, int, int] | None:
    """Shard i's rows [start, stop) in a single file beside the shards (counted from its row
    0), and the rows of all the shards: where the file's rows must end."""
    if counts is None:
        return None
    start = sum(counts[:i])
    return start, start + counts[i], sum(counts)


def check_singles(shards: ShardPlan, total: int, fmt: str | None) -> None:
    """A single file beside sharded inputs must have as many rows as all the shards together."""
    for path in shards.singles.values():
        n = _metadata_rows(path, fmt or format_of(path))
        if n is not None and n != total:
            given = next(iter(shards.lists.values()))
            raise InputError(
                f"inputs differ in length: {given.given} has {total} rows in {len(shards)} shards, "
                f"{path} has {n}; one file beside sharded inputs needs a row per row of all the shards"
            )


def shard_counts(
    metric: MetricDef, shards: ShardPlan, options: Mapping[str, Any], read_csv: bool
) -> list[int] | None:
    """Each shard's rows when a run needs them in advance (a single file beside the shards is
    read by row range; concurrent shards need their offsets): from metadata, else, when
    ``read_csv``, by reading CSV shards through. A single file beside shards of unknown counts
    is refused with the fix; one of the wrong length, named."""
    fmt = options.get("fmt")
    counts = metadata_counts(metric, shards, fmt)
    if read_csv and shards.singles and counts is None and metric.inputs == "pair":
        counts = read_counts(shards, options)  # CSV shards: parsed twice
    if shards.singles and counts is None:
        raise UsageError(
            f"{next(iter(shards.singles.values()))} is one file beside sharded inputs whose row counts "
            "are not in their metadata: give it as shards too (a directory or glob paired shard by shard), "
            "or use Parquet/.npy shards"
        )
    if counts is not None:
        check_singles(shards, sum(counts), fmt)
    return counts
