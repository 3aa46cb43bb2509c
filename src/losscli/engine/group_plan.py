"""Where ``--group-by`` keys come from: columns of the predictions' input (or of ``--groups
FILE``), resolved like any column spec, and the reader that turns them into group codes.

Parquet files and in-memory tables hand their key columns to a stream of their own that
decodes only those columns and encodes them with pyarrow (``readers.keys.ArrowKeys``); a
perplexity file with a row per sequence (list columns) repeats each row's key over its tokens.
CSV key columns are parsed as text in the same pass as the numbers (as id columns are), and
other formats (.npy, .npz) give their values; both are encoded per chunk in ``Streams.feed``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..columns import whole_file
from ..errors import UsageError
from ..options import Evaluation, Source
from ..readers.base import Reader
from ..readers.keys import ArrowKeys, KeyTable, SequenceKeys
from ..sequences import ListSequences, SequenceMap
from .evaluator import GROUP_KEY, GROUPS
from .runners import Role


@dataclass
class GroupPlan:
    """The key table, the roles that stream the keys, and how the JSON ``columns`` shows them."""

    table: KeyTable
    roles: dict[str, Role] = field(default_factory=dict)
    json: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


def group_columns(reader: Reader, spec: str | None) -> list[int]:
    """The key columns ``spec`` names in ``reader`` (every data column of a --groups file
    when no spec is given)."""
    if spec is not None:
        return reader.resolve_many(spec)
    choice = whole_file(reader)
    return choice.positions()


def key_names(reader: Reader, columns: list[int], name: str | None = None) -> list[str]:
    """The keys' names in the report: the column names, or the --groups file's name when its
    columns are only numbered (a 1-D .npy of labels; ``name``: a sharded input's, for every
    shard)."""
    if reader.named():
        return [reader.column_names[j] for j in columns]
    stem = name or os.path.splitext(os.path.basename(reader.display))[0] or "group"
    return [stem] if len(columns) == 1 else [f"{stem}.{j}" for j in columns]


def key_phrases(reader: Reader, columns: list[int]) -> list[str]:
    """Each key column as an error names it: its name, or its position ('column 0') when the
    file's columns are only numbered (``key_names`` then keys the report by the file's stem,
    which names no column)."""
    if reader.named():
        return [repr(reader.column_names[j]) for j in columns]
    return [f"column {j}" for j in columns]


def plan_groups(
    evaluation: Evaluation,
    main: Reader,
    opened: Callable[[Source], Reader],
    data_roles: dict[str, Role],
    seqmap: SequenceMap | None,
) -> GroupPlan | None:
    """The group keys' roles, or None without --group-by / --groups."""
    run, source = evaluation.run, evaluation.inputs.groups
    if run.group_by is None and source is None:
        return None
    reader = main if source is None else opened(source)
    if getattr(reader, "sequence_records", False):
        raise UsageError(
            f"{reader.display}: --group-by reads a column of a table (CSV, Parquet, .npy/.npz); "
            "JSON log-probabilities have none: give the keys in --groups FILE, a row per token"
        )
    columns = group_columns(reader, run.group_by)
    if not columns:
        raise UsageError(f"{reader.display}: --groups FILE has no column to group by")
    names = key_names(reader, columns, None if source is None else source.name)
    option = "--group-by" if source is None else "--groups"
    table = KeyTable(names, run.max_groups, reader.display, key_phrases(reader, columns), option)
    plan = GroupPlan(table, json={"file": reader.display, "columns": names})
    return key_roles(plan, reader, columns, data_roles, seqmap)


def plan_clusters(
    evaluation: Evaluation, main: Reader, data_roles: dict[str, Role], seqmap: SequenceMap | None
) -> GroupPlan | None:
    """--cluster-col: the cluster column of the predictions' input, coded like a group key
    (roles ``CLUSTERS`` / ``CLUSTER_KEY``); None without it."""
    from .ci import CLUSTER_KEY, CLUSTERS, ClusterTable

    ci = evaluation.run.ci
    if ci is None or ci.cluster_col is None:
        return None
    if getattr(main, "sequence_records", False):
        raise UsageError(
            f"{main.display}: --cluster-col reads a column of a table (CSV, Parquet, .npy/.npz); "
            "JSON log-probabilities have none"
        )
    columns = main.resolve_many(ci.cluster_col)
    if len(columns) != 1:
        raise UsageError(
            f"--cluster-col {ci.cluster_col!r} names {len(columns)} columns of {main.display}; name one"
        )
    name = key_names(main, columns)[0]
    table = ClusterTable([name], ci.max_clusters, main.display, key_phrases(main, columns))
    plan = GroupPlan(table, json={"column": name})
    return key_roles(plan, main, columns, data_roles, seqmap, (CLUSTERS, CLUSTER_KEY), "--cluster-col")


def key_roles(
    plan: GroupPlan,
    reader: Reader,
    columns: list[int],
    data_roles: dict[str, Role],
    seqmap: SequenceMap | None,
    names: tuple[str, str] = (GROUPS, GROUP_KEY),
    option: str = "--group-by",
) -> GroupPlan:
    """The roles that stream ``columns`` of ``reader`` as codes of ``plan.table``: ``names``
    are the role of a coded stream and the prefix of raw key columns (coded per chunk)."""
    table = plan.table
    from ..readers.partitioned import PartitionedReader, RowRangeReader

    # Parquet files and in-memory tables (and their token views) decode their own key columns;
    # a hive partition's key is no column of the file: it comes as the reader's constant column,
    # and a file beside shards is read by its row range: both through the reader itself
    wrapped = isinstance(reader, RowRangeReader) or (
        isinstance(reader, PartitionedReader) and any(j >= reader.width for j in columns)
    )
    arrow = hasattr(reader, "_types") and not wrapped
    if arrow:
        keys = ArrowKeys(reader, columns, table)
        per_sequence = bool(getattr(reader, "_tokens", None))
        if per_sequence and any(reader.is_list(j) for j in columns):  # type: ignore[attr-defined]
            raise UsageError(
                f"{reader.display}: {option} names a list column; its keys are one value per "
                "row (a sequence's key) or per token, not lists"
            )
        if per_sequence:
            if not isinstance(seqmap, ListSequences):
                raise UsageError(f"{reader.display}: per-sequence group keys need list columns")
            plan.roles[names[0]] = Role(SequenceKeys(keys, seqmap.lengths), [0], reader.display)
            shown = ", ".join(repr(n) for n in table.columns)
            plan.note = f"{reader.display}: {option} keys {shown} are per sequence, for each of its tokens"
        else:
            plan.roles[names[0]] = Role(keys, [0], reader.display)
        return plan
    _raw_roles(plan, reader, columns, data_roles, names[1])
    return plan


def _raw_roles(
    plan: GroupPlan, reader: Reader, columns: list[int], data_roles: dict[str, Role], prefix: str
) -> None:
    """CSV (text keys, one pass with the numbers) and arrays (their values) as they are read."""
    from ..readers.ids import open_ids

    used = {j for r in data_roles.values() if r.reader is reader and r.group is not None for j in r.group}
    for i, j in enumerate(columns):
        if reader.delimited:
            if j in used:
                raise UsageError(
                    f"{reader.display}: --group-by {reader.column_names[j]!r} is also a data column; "
                    "a CSV column is read either as numbers or as group keys: copy it to a column "
                    "of its own (or give the keys in --groups FILE)"
                )
            plan.table.text_columns.add(i)
        plan.roles[f"{prefix}{i}"] = Role(*open_ids(reader, j), reader.display)
