"""State files: an evaluation's state saved to disk, safe to load from an untrusted source.

Format (``format_version`` 1; 2 with per-group tallies; 3 with intervals, sketches, calibration)
------------------------------------------------------------------------------------------------
A ZIP archive (``np.load`` lists it like an ``.npz``) holding:

* ``state.json``: UTF-8 JSON, one object::

      {"format": "losscli-state", "format_version": 1,
       "header": {metric, metric_options, provenance, binding, row_offset, sequence_offset,
                  files, columns, notes, warnings, text_bytes, text_words},
       "tallies": {outputs, worst_capacity, n, ignored, skipped, clamped, rows, nulls,
                   counts_correct, overflow, row_sum_row, row_sum, output_sums, weight_sum,
                   hits, companions, worst, sequences[, groups]}}

  ``provenance`` is {version, metric, options, inputs: [{role, path, size, mtime, span?}], row_offset,
  parts: [provenance...], summary}; a merged state lists its parts, each with a ``summary``
  {rows, files, notes, warnings, text_bytes, text_words, sequences: null or {first, count}, the
  part's range of global sequence ids}; an unmerged state's summary is null. ``binding`` is null
  for a part that saw no data, else {input_kind, input_detected, outputs, classes, output_names,
  labels, detail_columns, id_column, weighted}. ``worst`` is {capacity, details: one list of
  cells per kept row}. ``sequences`` is null or {count, first}. Every key is required; no other
  key is allowed. A finite float is a JSON number (shortest text that reads back bit for bit);
  JSON has no NaN or infinity, so a non-finite float is ``{"$float": "<16 hex digits of its
  IEEE-754 bits>"}``; a tuple is ``{"$tuple": [...]}``.

  Values must be plausible, else the file is refused: every integer in int64's range and counts
  >= 0; ``weight_sum`` totals >= 0 (0 when all weights were zero, inf when they overflowed); no
  NaN among the worst rows' losses or the sequences' worst-token losses; no string of the
  header (keys included) holding a control character (U+0000-001F, U+007F-009F), which would
  forge or restyle terminal output when notes, warnings or file names are printed (so a state
  whose column names hold one is not saved either).

* one ``.npy`` member per numeric array (NumPy format 1.0 or 2.0, native byte order when
  written, any order read), named by its place in the tallies:

  =========================================  ===========  ==============================
  member                                     dtype        shape
  =========================================  ===========  ==============================
  ``tallies.output_sums.terms.npy``          float64      (2, outputs): high, low terms
  ``tallies.weight_sum.terms.npy``           float64      (2, 1)
  ``tallies.hits.terms.npy``                 float64      (2, 2): top-1, top-k hits
  ``tallies.companion.NAME.terms.npy``       float64      (2, 1), one per companion
  ``tallies.worst.rows.npy``                 int64        (kept,): global row numbers
  ``tallies.worst.losses.npy``               float64      (kept,)
  ``tallies.sequences.nll.npy``              float64      (count,) (only with sequences)
  ``tallies.sequences.tokens.npy``           int64        (count,)
  ``tallies.sequences.worst_loss.npy``       float64      (count, 3): -inf = empty slot
  ``tallies.sequences.worst_pos.npy``        int64        (count, 3)
  ``tallies.sequences.worst_target.npy``     int64        (count, 3): -1 = unknown
  ``tallies.groups.hi.npy``                  float64      (groups, width): high terms
  ``tallies.groups.lo.npy``                  float64      (groups, width): low terms
  ``tallies.groups.counts.npy``              int64        (groups, 3): n, ignored, skipped
  ``tallies.groups.overflow.npy``            bool         (groups,)
  =========================================  ===========  ==============================

  ``groups`` (format version 2, only in the state of a ``--group-by`` run; a state without it
  is written as version 1) is {columns: the group-by column names, outputs, companions: names,
  keys: one list per group of the key's values as plain JSON (text, integer, boolean, number,
  null for a null key), in key order (nulls last)}. A group's row of ``width`` = outputs + 1 +
  companions + 2 sums holds its outputs' (weighted) loss sums, its weight sum (the count when
  unweighted), each companion's sum, then its weighted top-1 and top-k hits.

  Each sum is kept as two terms (compensated summation), so a loaded state continues, and
  merges, exactly as the one saved. Per-sequence statistics stay binary arrays (88 bytes a
  sequence), not JSON text. Arrays are stored uncompressed: deflate halves random float data at
  best and made saving two million sequences 15 times slower (3.4 s instead of 0.2 s); only
  ``state.json`` is deflated. Members carry a fixed date, so one state always gives the same bytes.

Why no pickle: unpickling runs code named in the file, so a state file from someone else could
do anything. Every member is read with ``allow_pickle=False``; only dtype kinds b, i, u and f
are accepted (no object arrays, no structured dtypes); each array's header is checked against
the member's size before any memory is allocated; JSON is parsed strictly (no NaN literals,
no duplicate keys) and checked field by field. Anything else (a truncated or corrupt archive,
an unknown member, a wrong dtype or shape) is refused with one line naming the file (exit 3).

``ci`` (format version 3, only with ``--ci``) holds the interval tallies (state/intervals.py:
  moments, Poisson bootstrap sums, per-cluster and per-group sums); a ``--ci`` state saved by a
  losscli that predates version 3 says 1 or 2 and still loads.

``sketch`` (format version 3) is {weighted, offset, max} with arrays ``counts`` (int64 per
  bucket) and, weighted, ``weights`` (float64): the quantile sketch (state/sketch.py);
  ``group_sketches`` is {columns, keys, sketches: [one sketch's meta per key]} with arrays
  ``<i>.counts``/``<i>.weights`` per group (state/group_sketch.py).

``per_class`` (format version 3, ce --per-class) is {classes} with arrays ``support`` (int64
  rows per class), ``hi``/``lo`` (classes, 4) sums, ``confusion`` (classes, classes) int64 row
  counts and, from a weighted run, ``confusion_hi``/``confusion_lo`` (classes, classes) float64:
  the confusion weights (state/classes.py). A group's ``companions`` end with ``brier`` when the
  run has ``--calibration`` (the group's Brier sum; a part without it merges, dropping it).

Versioning: ``format_version`` grows by one whenever the saved form changes meaning (a key
added, removed or reinterpreted). A reader refuses a newer version with "upgrade losscli" and
reads every older version it knows (1 to 3). A state is written with the oldest version that
knows all its keys (``saved_version``); every run keeps a quantile sketch now, so a new state is 3.
Saving writes a temporary file in the same directory, fsyncs it and renames it over the
target, so a reader never sees half a state.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zipfile
import zlib
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..atomic_file import write_atomically
from ..errors import OutputError
from .evalstate import FORMAT_VERSION, EvalState, saved_version
from .plain import Arrays, StateFileError, control_character_at

if TYPE_CHECKING:
    from os import PathLike

FORMAT_NAME = "losscli-state"
JSON_MEMBER = "state.json"
MAX_JSON_BYTES = 256 << 20  # far above any real header; refuses a zip bomb in place of JSON
NUMERIC_KINDS = "biuf"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the same state always gives the same bytes
# everything a damaged archive or array header can raise while being read
_CORRUPT = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    NotImplementedError,
    RuntimeError,
    SyntaxError,
    zlib.error,
    struct.error,
    MemoryError,
    OSError,
)


def save_state(state: EvalState, path: str | PathLike[str]) -> None:
    """Write ``state`` to ``path`` atomically; ``OutputError`` (exit 4) leaves nothing behind."""
    meta, arrays = state.to_plain()  # before any file exists: a bug here creates nothing
    bad = control_character_at(meta["header"], "header")
    if bad is not None:  # load would refuse it: say so now, not when the state is merged
        raise OutputError(
            f"{os.fspath(path)}: cannot save the state: {bad} holds a control character, "
            "which a state file may not contain"
        )
    # the oldest version that knows every key: a file without groups or sketches reads in older versions
    version = saved_version(meta["tallies"])
    doc = {"format": FORMAT_NAME, "format_version": version, **meta}
    text = json.dumps(doc, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()
    target = os.fspath(path)
    write_atomically(target, lambda fh: _write_zip(fh, text, arrays), f"{target}: cannot write the state")


def _write_zip(fh: IO[bytes], text: bytes, arrays: Arrays) -> None:
    with zipfile.ZipFile(fh, "w") as zf:
        info = zipfile.ZipInfo(JSON_MEMBER, _FIXED_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, text)
        for name, a in arrays.items():
            if a.dtype.kind not in NUMERIC_KINDS:
                raise TypeError(f"state array {name} has dtype {a.dtype}: only numbers are saved")
            member = zipfile.ZipInfo(f"{name}.npy", _FIXED_TIME)  # stored: see the module docstring
            with zf.open(member, "w", force_zip64=a.nbytes > 1 << 30) as out:
                np.lib.format.write_array(out, np.ascontiguousarray(a), allow_pickle=False)


def load_state(path: str | PathLike[str]) -> EvalState:
    """Read a state file. Any problem is one ``StateFileError`` line naming the file (exit 3)."""
    name = os.fspath(path)
    try:
        fh = open(name, "rb")  # noqa: SIM115 (closed below, after the errors are mapped)
    except OSError as e:
        raise StateFileError(f"cannot read the state file: {e.strerror or e}", path=name) from None
    try:
        with fh:
            return _load(fh)
    except StateFileError as e:
        raise StateFileError(e.detail, path=name) from None
    except _CORRUPT as e:
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        raise StateFileError(f"corrupt or truncated state file ({reason})", path=name) from None


def _load(fh: IO[bytes]) -> EvalState:
    if not zipfile.is_zipfile(fh):
        raise StateFileError("not a losscli state file (not a ZIP archive, or truncated)")
    fh.seek(0)
    with zipfile.ZipFile(fh) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise StateFileError("corrupt state file: a member appears twice")
        if JSON_MEMBER not in names:
            raise StateFileError(f"not a losscli state file (no {JSON_MEMBER} in the archive)")
        for info in infos:
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise StateFileError(f"member {info.filename} is compressed in a way losscli does not read")
        doc = _read_json(zf, zf.getinfo(JSON_MEMBER))
        arrays: dict[str, NDArray[Any]] = {}
        for info in infos:
            if info.filename == JSON_MEMBER:
                continue
            if not info.filename.endswith(".npy"):
                raise StateFileError(f"not a valid losscli state: unknown member {info.filename!r}")
            arrays[info.filename[: -len(".npy")]] = _read_array(zf, info)
    meta = {k: v for k, v in doc.items() if k not in ("format", "format_version")}
    return EvalState.from_plain(meta, arrays)


def _read_json(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> dict[str, Any]:
    """The parsed header, after its format name and version are checked."""
    if info.file_size > MAX_JSON_BYTES:
        raise StateFileError(f"not a valid losscli state: {JSON_MEMBER} is {info.file_size} bytes")
    try:
        doc = json.loads(
            zf.read(info).decode("utf-8"), parse_constant=_no_constant, object_pairs_hook=_unique
        )
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = " ".join(str(e).split())[:120]
        raise StateFileError(f"not a valid losscli state: {JSON_MEMBER} is not JSON ({reason})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise StateFileError(f"not a losscli state file ({JSON_MEMBER} does not say format {FORMAT_NAME!r})")
    version = doc.get("format_version")
    if type(version) is not int or version < 1:
        raise StateFileError(f"not a valid losscli state: format_version is {version!r}")
    if version > FORMAT_VERSION:
        raise StateFileError(
            f"format version {version} is newer than this losscli reads ({FORMAT_VERSION}): upgrade losscli"
        )
    return doc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return out


def _read_array(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> NDArray[Any]:
    """One ``.npy`` member: header checked (numeric dtype, size matches) before data is read."""
    where = f"array {info.filename}"
    with zf.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise StateFileError(f"not a valid losscli state: {where} is in NumPy format {version}")
        data_at = member.tell()
    if dtype.kind not in NUMERIC_KINDS or dtype.hasobject or dtype.fields is not None:
        raise StateFileError(f"not a valid losscli state: {where} holds {dtype}, not plain numbers")
    if data_at + math.prod(shape) * dtype.itemsize != info.file_size:
        raise StateFileError(f"corrupt state file: {where} is not as long as its header says")
    with zf.open(info) as member:
        array = np.lib.format.read_array(member, allow_pickle=False)
        if member.read(1):  # reaching the end also makes zipfile check the member's CRC
            raise StateFileError(f"corrupt state file: {where} is longer than its header says")
    return np.asarray(array)
