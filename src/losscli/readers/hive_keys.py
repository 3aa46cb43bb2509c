"""A hive partition key that the file holds as a column too, as Polars writes it.

``pl.DataFrame.write_parquet(path, partition_by=[...])`` (and Polars' ``sink_parquet`` with a
partitioning) keeps the key columns in every file as well as in the folder names
(``lang=de/yr=2023/00000000.parquet`` holds columns ``lang`` and ``yr``). Such a column carries
the key: the file's own column is read (its type and its values), and no constant column is
added. It must be able to carry it: a text key in a string column, an integer key in an integer
column, checked from the Parquet footer; and its values must be the folder's, checked from the
row groups' statistics (min and max equal to the folder's value, no nulls unless the folder is
the null partition): nothing is decoded. A column of another type, or values that differ from
the folder's, is a true clash (pyarrow's datasets refuse it too): exit 3 naming both.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .base import Reader


def file_keeps_key(inner: Reader, key: str, value: Any) -> bool:
    """True when ``inner``'s column ``key`` carries the partition value ``value`` (so the file's
    column is read); an InputError when it holds other values; False when it cannot carry it
    (another type, or a format without a typed footer: CSV)."""
    types = getattr(inner, "_types", None)
    parquet = getattr(inner, "_file", None)
    if types is None or parquet is None:
        return False
    import pyarrow.types as pt

    t = types[list(inner.column_names).index(key)]
    if pt.is_dictionary(t):
        t = t.value_type
    text = pt.is_string(t) or pt.is_large_string(t)
    integer = pt.is_integer(t)
    # the null partition: a column of either type can hold its nulls
    fits = (text or integer) if value is None else (text if isinstance(value, str) else integer)
    if not fits:
        return False
    other = _other_value(parquet.metadata, key, value)
    if other is not None:
        raise InputError(
            f"holds {other} in its column {key!r}, but sits in the partition folder "
            f"{key}={'__HIVE_DEFAULT_PARTITION__' if value is None else value}: the file and its folder "
            "disagree; rename the column or the partition key",
            path=inner.display,
        )
    return True


def _other_value(meta: Any, key: str, value: Any) -> str | None:
    """A value of column ``key`` other than ``value`` that the row groups' statistics show
    (as it would be shown), or None when they show none (or say nothing)."""
    leaf = next((i for i in range(meta.num_columns) if meta.schema.column(i).path == key), None)
    if leaf is None:
        return None
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        if group.num_rows == 0:
            continue
        stats = group.column(leaf).statistics
        if stats is None:
            continue
        nulls = stats.null_count if stats.has_null_count else None
        if value is None:
            if nulls is not None and nulls < group.num_rows:
                return repr(stats.min) if stats.has_min_max else "values that are not null"
            continue
        if nulls:
            return "nulls"
        if stats.has_min_max:
            for seen in (stats.min, stats.max):
                if seen != value:
                    return repr(seen)
    return None
