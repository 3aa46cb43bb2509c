"""NumPy .npz archives: each array is a "column", read like a .npy from inside the zip.

A member is streamed (zip members cannot be read by offset), so there are no range readers
and no worker threads. Headers are parsed and vetted as for .npy (never unpickled) before
anything is allocated.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError, UsageError
from .base import Chunk, Group, Reader
from .numpy_reader import (
    MAX_DEFLATE_RATIO,
    ArrayHeader,
    ArrayStream,
    array_columns,
    flat_header,
    read_header,
    select_group,
    short_error,
    zip_errors,
)


class NpzReader(Reader):
    """A .npz archive. With one array it reads like that array's .npy; with several, each
    array is a "column" picked by its key (``--pred-col logits --target-col labels``)."""

    def __init__(self, path: str) -> None:
        import zipfile

        self.display = path
        try:
            self._zip = zipfile.ZipFile(path)
        except zip_errors() as exc:
            raise InputError(f"is not a valid .npz archive ({short_error(exc)})", path=path) from None
        self._infos = {
            info.filename[:-4]: info for info in self._zip.infolist() if info.filename.endswith(".npy")
        }
        if not self._infos:
            raise InputError("is a .npz archive with no arrays in it", path=path)
        self.keys = list(self._infos)
        self._headers = {k: self._peek_header(k) for k in self.keys}
        self.single = len(self.keys) == 1
        if self.single:
            h = self._headers[self.keys[0]]
            self.column_names = array_columns(h)
            self.row_shape = h.row_shape
        else:
            self.column_names = list(self.keys)
        rows = {h.rows for h in self._headers.values()}
        self.n_rows = rows.pop() if len(rows) == 1 else None
        self._open: list[IO[bytes]] = []

    def _peek_header(self, key: str) -> ArrayHeader:
        info = self._infos[key]
        display = f"{self.display}[{key}]"
        import zipfile  # already loaded by __init__

        try:
            with self._zip.open(info) as fp:
                header = read_header(fp, display, info.file_size)
        except zip_errors() as exc:
            raise InputError(f"cannot be read ({short_error(exc)})", path=display) from None
        # The sizes in a zip directory can lie; deflate cannot expand more than ~1032:1, so a
        # header that needs more than that is refused before anything is allocated.
        limit = info.compress_size * (1 if info.compress_type == zipfile.ZIP_STORED else MAX_DEFLATE_RATIO)
        if header.nbytes > limit:
            raise InputError(
                f"declares shape {header.shape} ({header.nbytes} bytes), more than its "
                f"{info.compress_size} stored bytes can hold",
                path=display,
            )
        return header

    def token_reader(self, column: int | None, keep_last: bool) -> tuple[Reader, tuple[int, ...]]:
        """One array (the single one, else the key at ``column``; the first when None) one token
        per row; the other arrays are read as they are."""
        key = self.keys[0] if (self.single or column is None) else self.keys[column]
        header, lead = flat_header(self._headers[key], f"{self.display}[{key}]", keep_last)
        view = self._view()
        view._headers = {**self._headers, key: header}
        if self.single:
            view.column_names = array_columns(header)
            view.row_shape = header.row_shape
        rows = {h.rows for h in view._headers.values()}
        view.n_rows = rows.pop() if len(rows) == 1 else None
        return view, lead

    def resolve(self, spec: str) -> int:
        """An array by key (or a column of the single array); a missing key lists those present."""
        if self.single or spec in self.keys:
            return super().resolve(spec)
        raise InputError(f"has no array {spec!r}; the arrays are {self.describe_keys()}", path=self.display)

    def resolve_many(self, spec: str, skip: Collection[int] = ()) -> list[int]:
        """Arrays by key, separated by commas: the keys of an archive are arrays, not columns,
        so no ranges or patterns over them (a single array's columns take them)."""
        if self.single:
            return super().resolve_many(spec, skip)
        return [self.resolve(part.strip()) for part in spec.split(",") if part.strip()]

    def describe_keys(self) -> str:
        return ", ".join(f"{k} {self._headers[k].shape}" for k in self.keys)

    def _stream(self, key: str) -> ArrayStream:
        header = self._headers[key]
        display = f"{self.display}[{key}]"
        try:
            fp = self._zip.open(self._infos[key])
        except zip_errors() as exc:
            raise InputError(f"cannot be read ({short_error(exc)})", path=display) from None
        self._open.append(fp)
        read_header(fp, display, None)  # skip past the header of this fresh handle
        return ArrayStream(fp, header, display, None)

    def chunks(self, groups: Sequence[Group], max_rows: int) -> Iterator[Chunk]:
        if self.single:
            stream = self._stream(self.keys[0])
            while stream.row < stream.header.rows:
                block = stream.read(max_rows)
                yield [select_group(block, g) for g in groups]
            return
        for g in groups:
            if g is None:
                raise InputError(
                    f"holds several arrays ({self.describe_keys()}); "
                    "name the one to use with --pred-col / --target-col",
                    path=self.display,
                )
        wanted = sorted({j for g in groups if g is not None for j in g})
        streams = {j: self._stream(self.keys[j]) for j in wanted}
        lengths = {self.keys[j]: s.header.rows for j, s in streams.items()}
        if len(set(lengths.values())) > 1:
            raise InputError(f"arrays have different lengths: {lengths}", path=self.display)
        total = next(iter(streams.values())).header.rows
        done = 0
        while done < total:
            blocks = {j: s.read(max_rows) for j, s in streams.items()}
            done += len(next(iter(blocks.values())))
            yield [_group_from_arrays(blocks, g) for g in groups]

    def close(self) -> None:
        """Close the archive and every member opened from it, by this reader or its views
        (which share the list of open members)."""
        if self.shares_files:
            return
        for fp in self._open:
            fp.close()
        self._open.clear()
        self._zip.close()


def _group_from_arrays(blocks: dict[int, NDArray[Any]], group: Group) -> NDArray[Any]:
    assert group is not None
    if len(group) == 1:
        return blocks[group[0]]
    cols = [blocks[j] for j in group]
    if any(c.ndim != 1 for c in cols):
        raise UsageError("only 1-D arrays can be combined into columns of one input")
    return np.stack(cols, axis=1)
