"""Inputs made of shards: a directory or a glob, expanded to a list of files before anything
is planned.

Batch inference writes ``preds/part-00000.parquet ... part-01023.parquet``, often hive
partitioned (``lang=de/part-0.parquet``). An input argument that names a directory, or a glob
(``'preds/*.parquet'``, ``'preds/**/*.parquet'``) that is not itself a file, is a *sharded*
input: its files, made absolute, in lexicographic path order (as pyarrow datasets and Spark list
them). Hidden files and folders (``.x``, ``_x``: ``_SUCCESS``, ``_metadata``, ``.crc`` files)
are skipped, as pyarrow's ``ignore_prefixes`` does. Every shard of one input is of one format.

Hive partition folders (``key=value``) give each of their files constant columns, typed as
pyarrow's ``HivePartitioning`` infers them: a key whose values are all 32-bit integers is an
integer column, any other a string column; ``__HIVE_DEFAULT_PARTITION__`` is a null. Nothing here
opens a data file; ``engine.sharded`` evaluates the shards.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from typing import Any

from .errors import InputError, UsageError
from .readers.formats import TABLE, without_compression

#: what a glob pattern has that a plain path has not
_GLOB_CHARS = re.compile(r"[*?[]")
#: the null of hive partitioning (Hive, Spark and pyarrow write it for a null key)
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_INT32 = re.compile(r"[+-]?\d+")

Partition = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Shard:
    """One file of a sharded input and its hive partition values (key, value), in path order."""

    path: str  # absolute
    partition: Partition = ()


@dataclass(frozen=True)
class ShardList:
    """A sharded input as the user gave it, and its files."""

    given: str  # the directory or glob, as typed
    shards: tuple[Shard, ...]
    format: str | None  # the one format of its files by name; None: --input-format decides

    @property
    def paths(self) -> list[str]:
        return [s.path for s in self.shards]


def is_sharded(value: Any) -> bool:
    """A directory, or a glob that is not the name of an existing file; never stdin or an array."""
    if not isinstance(value, (str, os.PathLike)):
        return False
    path = os.fspath(value)
    if not isinstance(path, str) or path == "-":
        return False
    if os.path.isdir(path):
        return True
    return bool(_GLOB_CHARS.search(path)) and not os.path.exists(path)


def expand(value: str | os.PathLike[str], option: str, input_format: str | None = None) -> ShardList:
    """The files of a directory or glob, absolute, in lexicographic order, hidden ones skipped.

    Nothing found is exit 3 naming what was given; files of two formats is exit 2 naming one of
    each (unless ``input_format`` reads them all alike)."""
    given = os.fspath(value)
    if os.path.isdir(given):
        root = os.path.abspath(given)
        files = [p for p in _walk(root)]
    else:
        root = os.path.abspath(_glob_root(given))
        matched = glob.glob(given, recursive=True)
        files = [os.path.abspath(p) for p in matched if os.path.isfile(p)]
        files = [p for p in files if not _hidden(os.path.relpath(p, root))]
    files.sort()
    if not files:
        what = "the directory holds" if os.path.isdir(given) else "the glob matches"
        raise InputError(
            f"{option}: {what} no data file (hidden files such as _SUCCESS and .crc are skipped)",
            path=given,
        )
    fmt = input_format or _one_format(files, option, given)
    shards = _with_partitions(files, root)
    return ShardList(given, shards, fmt)


def _walk(root: str) -> list[str]:
    out = []
    for folder, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        out += [os.path.join(folder, n) for n in names if not n.startswith((".", "_"))]
    return out


def _hidden(relative: str) -> bool:
    return any(part.startswith((".", "_")) for part in relative.split(os.sep) if part not in ("", ".", ".."))


def shard_root(given: str) -> str:
    """The folder a sharded input's files are named under: the directory, or a glob's folder."""
    return os.path.abspath(given if os.path.isdir(given) else _glob_root(given))


def _glob_root(pattern: str) -> str:
    """The folder a glob starts from: its leading components without glob characters."""
    parts = pattern.split(os.sep)
    keep = []
    for part in parts[:-1]:
        if _GLOB_CHARS.search(part):
            break
        keep.append(part)
    return os.sep.join(keep) or (os.sep if pattern.startswith(os.sep) else ".")


def format_of(path: str) -> str | None:
    """The format a file's name says (compression suffixes aside), as ``readers.open`` reads it."""
    low = without_compression(path)
    return next((f.name for f in TABLE if low.endswith(f.suffixes)), None)


def _one_format(files: list[str], option: str, given: str) -> str | None:
    seen: dict[str | None, str] = {}
    for path in files:
        seen.setdefault(format_of(path), path)
    if len(seen) > 1:
        (a, pa), (b, pb) = list(seen.items())[:2]
        raise UsageError(
            f"{option} {given}: its files are of more than one format ({pa} is {a or 'of no known format'}, "
            f"{pb} is {b or 'of no known format'}); give a glob that matches one format "
            "('dir/**/*.parquet'), or --input-format to read them all as one"
        )
    return next(iter(seen))


def _with_partitions(files: list[str], root: str) -> tuple[Shard, ...]:
    """Each file with the hive ``key=value`` folders between ``root`` and it, typed per key."""
    import urllib.parse  # here: only hive folders need it, and it pulls in ipaddress (~10 ms)

    raw: list[list[tuple[str, str | None]]] = []
    for path in files:
        folders = os.path.relpath(os.path.dirname(path), root).split(os.sep)
        pairs = []
        for part in folders:
            key, eq, value = part.partition("=")
            if eq and key:
                text = urllib.parse.unquote(value)
                pairs.append((urllib.parse.unquote(key), None if text == HIVE_NULL else text))
        raw.append(pairs)
    keys = list(dict.fromkeys(k for pairs in raw for k, _ in pairs))
    if not keys:
        return tuple(Shard(p) for p in files)
    integer = {k: all(v is None or _is_int32(v) for pairs in raw for kk, v in pairs if kk == k) for k in keys}
    out = []
    for path, pairs in zip(files, raw, strict=True):
        values = dict(pairs)
        missing = [k for k in keys if k not in values]
        if missing:
            raise UsageError(
                f"{path}: has no {missing[0]}=... folder, which other files of this input have; "
                "every file of a hive-partitioned input must sit under the same partition keys"
            )
        typed = tuple((k, _typed(values[k], integer[k])) for k in keys)
        out.append(Shard(path, typed))
    return tuple(out)


def _is_int32(text: str) -> bool:
    return bool(_INT32.fullmatch(text)) and -(2**31) <= int(text) < 2**31


def _typed(value: str | None, integer: bool) -> Any:
    return None if value is None else int(value) if integer else value


@dataclass(frozen=True)
class ShardPlan:
    """Every input of a run, shard by shard: ``inputs[i][role]`` is shard i's path of that role
    (a single file repeats in every shard, read by the row range ``ranges[i][role]``)."""

    roles: tuple[str, ...]  # the sharded roles
    inputs: tuple[dict[str, str], ...]
    partitions: tuple[dict[str, Partition], ...]
    lists: dict[str, ShardList]
    singles: dict[str, str]  # role -> a single file beside the shards
    #: rows [start, stop) of shard i's files that shard i reads (a large file cut into parts at
    #: its row groups, see engine.shard_split); empty, or None for a shard: the whole files
    spans: tuple[tuple[int, int] | None, ...] = ()

    def span(self, i: int) -> tuple[int, int] | None:
        return self.spans[i] if self.spans else None

    def __len__(self) -> int:
        return len(self.inputs)


def plan_shards(given: dict[str, Any], input_format: str | None) -> ShardPlan | None:
    """The shards of each input (role -> path or glob as given); None when no input is sharded.

    Two sharded inputs must have as many shards (exit 3 naming both counts); their shards pair
    in order. Row counts are checked when the shards are read."""
    option = {
        "preds": "PREDS",
        "targets": "TARGETS",
        "weights": "--weights",
        "logprobs": "--logprobs",
        "mask": "--mask",
        "groups": "--groups",
    }
    lists = {
        role: expand(value, option.get(role, role), input_format)
        for role, value in given.items()
        if value is not None and is_sharded(value)
    }
    if not lists:
        return None
    counts = {role: len(sl.shards) for role, sl in lists.items()}
    if len(set(counts.values())) > 1:
        (ra, na), (rb, nb) = [(r, n) for r, n in counts.items()][:2]
        raise InputError(
            f"{lists[ra].given} has {na} shards but {lists[rb].given} has {nb}: sharded inputs are "
            "paired shard by shard, so they must have as many shards"
        )
    n = next(iter(counts.values()))
    singles = {
        role: os.path.abspath(os.fspath(v)) if os.fspath(v) != "-" else "-"
        for role, v in given.items()
        if v is not None and role not in lists and isinstance(v, (str, os.PathLike))
    }
    inputs = tuple({role: sl.shards[i].path for role, sl in lists.items()} for i in range(n))
    partitions = tuple({role: sl.shards[i].partition for role, sl in lists.items()} for i in range(n))
    return ShardPlan(tuple(lists), inputs, partitions, lists, singles)
