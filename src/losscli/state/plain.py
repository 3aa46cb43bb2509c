"""Plain data: how state parts become JSON values plus numeric arrays, and are checked coming back.

Every part of a state has ``to_plain() -> (meta, arrays)``: ``meta`` is JSON (dicts, lists, str,
int, bool, None and finite floats) and ``arrays`` maps member names to numeric numpy arrays. A
state file is untrusted input, so ``from_plain`` checks every value's type, every array's dtype
and shape, and refuses anything else with a ``StateFileError`` (an ``InputError``: exit 3). The
checks here are the only way values get into a part, so a part never holds a wrongly typed field.

Floats keep their exact bits: a finite float is a JSON number (Python writes the shortest text
that reads back as the same float, -0.0 included), and a non-finite one, which JSON cannot
spell, is ``{"$float": "<16 hex digits of its IEEE-754 bits>"}`` so even a NaN's payload
survives. A tuple is ``{"$tuple": [...]}`` so it comes back a tuple, not a list.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError

Meta = dict[str, Any]
Arrays = dict[str, NDArray[Any]]

_FLOAT_TAG = "$float"
_TUPLE_TAG = "$tuple"
_HEX16 = re.compile(r"[0-9a-f]{16}")
#: member names the format uses (and companion names must fit in one)
NAME = re.compile(r"[A-Za-z0-9_]+")
#: every integer of a state is an int64 somewhere (numpy arrays, sums of counts)
INT_LIMIT = 2**63
#: C0 and C1 control characters and DEL: a newline or ESC in a note would forge or restyle
#: terminal output when the state's header is printed, and losscli never writes one
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class StateFileError(InputError):
    """A state (file or plain data) is malformed, truncated, not a state, or of an unknown version."""


def malformed(where: str, expected: str, value: Any) -> StateFileError:
    """One line: which field, what it should be, what it is (shortened)."""
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return StateFileError(f"not a valid losscli state: {where} should be {expected}, not {shown}")


# ---- encoding -------------------------------------------------------------------------------


def encode_float(x: float) -> Any:
    """A JSON number when finite, else the tagged bit pattern (see the module docstring)."""
    x = float(x)
    if math.isfinite(x):
        return x
    return {_FLOAT_TAG: struct.pack(">d", x).hex()}


def encode(value: Any) -> Any:
    """Plain Python data (scalars, tuples, lists, str-keyed dicts) as JSON, types kept."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return encode_float(float(value))
    if isinstance(value, tuple):
        return {_TUPLE_TAG: [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str) or k.startswith("$"):
                raise TypeError(f"state keys must be strings not starting with '$', not {k!r}")
            out[k] = encode(v)
        return out
    raise TypeError(f"{type(value).__name__} is not plain data and cannot go into a state")


def decode_float(raw: Any, where: str) -> float:
    if isinstance(raw, float):
        return raw
    if isinstance(raw, dict) and set(raw) == {_FLOAT_TAG}:
        bits = raw[_FLOAT_TAG]
        if isinstance(bits, str) and _HEX16.fullmatch(bits):
            value: float = struct.unpack(">d", bytes.fromhex(bits))[0]
            if not math.isfinite(value):
                return value
    raise malformed(where, "a float", raw)


def decode(raw: Any, where: str) -> Any:
    """The inverse of ``encode``; refuses anything ``encode`` cannot have written."""
    if raw is None or isinstance(raw, (bool, int, str, float)):
        return raw
    if isinstance(raw, list):
        return [decode(v, f"{where}[{i}]") for i, v in enumerate(raw)]
    if isinstance(raw, dict):
        if _FLOAT_TAG in raw:
            return decode_float(raw, where)
        if _TUPLE_TAG in raw:
            items = raw[_TUPLE_TAG]
            if set(raw) != {_TUPLE_TAG} or not isinstance(items, list):
                raise malformed(where, "a tuple", raw)
            return tuple(decode(v, f"{where}[{i}]") for i, v in enumerate(items))
        if any(k.startswith("$") for k in raw):
            raise malformed(where, "plain data", raw)
        return {k: decode(v, f"{where}.{k}") for k, v in raw.items()}
    raise malformed(where, "plain data", raw)


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def encode_cell(value: Any) -> Any:
    """A worst row's cell: a scalar, or a tuple of scalars (one number per output). Anything
    else (a Parquet timestamp or decimal id) is kept as its text, as the reports show it."""
    value = _native(value)
    if is_scalar(value):
        return encode(value)
    if isinstance(value, tuple):
        items = [_native(v) for v in value]
        return {_TUPLE_TAG: [encode(v) if is_scalar(v) else str(v) for v in items]}
    return str(value)


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def decode_detail(raw: Any, where: str) -> tuple[Any, ...]:
    """The inverse of ``[encode_cell(c) for c in detail]``."""
    if not isinstance(raw, list):
        raise malformed(where, "a list of cells", raw)
    cells = tuple(decode(c, f"{where}[{i}]") for i, c in enumerate(raw))
    for i, cell in enumerate(cells):
        ok = is_scalar(cell) or (isinstance(cell, tuple) and all(is_scalar(c) for c in cell))
        if not ok:
            raise malformed(f"{where}[{i}]", "a scalar or a tuple of scalars", cell)
    return cells


# ---- checking JSON values -------------------------------------------------------------------


def fields(raw: Any, where: str, required: set[str], optional: frozenset[str] = frozenset()) -> Meta:
    """A JSON object with exactly these keys (optional ones may be missing)."""
    if not isinstance(raw, dict):
        raise malformed(where, "an object", raw)
    missing = required - set(raw)
    extra = set(raw) - required - optional
    if missing:
        raise StateFileError(f"not a valid losscli state: {where} lacks {sorted(missing)[0]!r}")
    if extra:
        raise StateFileError(f"not a valid losscli state: {where} has an unknown key {sorted(extra)[0]!r}")
    return raw


def want_int(raw: Any, where: str, minimum: int | None = 0) -> int:
    """An int (not a bool) in int64's range, at least ``minimum`` unless that is None."""
    low = -INT_LIMIT if minimum is None else minimum
    if type(raw) is not int or not low <= raw < INT_LIMIT:
        expected = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise malformed(where, f"{expected} below 2**63", raw)
    return raw


def want_opt_int(raw: Any, where: str, minimum: int | None = 0) -> int | None:
    return None if raw is None else want_int(raw, where, minimum)


def want_bool(raw: Any, where: str) -> bool:
    if not isinstance(raw, bool):
        raise malformed(where, "true or false", raw)
    return raw


def want_str(raw: Any, where: str) -> str:
    if not isinstance(raw, str):
        raise malformed(where, "a string", raw)
    return raw


def want_opt_str(raw: Any, where: str) -> str | None:
    return None if raw is None else want_str(raw, where)


def want_strs(raw: Any, where: str) -> list[str]:
    if not isinstance(raw, list):
        raise malformed(where, "a list of strings", raw)
    return [want_str(v, f"{where}[{i}]") for i, v in enumerate(raw)]


def want_str_map(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise malformed(where, "an object of strings", raw)
    return {k: want_str(v, f"{where}.{k}") for k, v in raw.items()}


def control_character_at(raw: Any, where: str) -> str | None:
    """The place of the first string (key or value) in a JSON value that holds a control
    character, or None. One walk over the whole header, on load and before a save."""
    if isinstance(raw, str):
        return where if CONTROL.search(raw) else None
    if isinstance(raw, list):
        items: Any = ((f"{where}[{i}]", v) for i, v in enumerate(raw))
    elif isinstance(raw, dict):
        for key in raw:
            if CONTROL.search(key):
                return f"{where} (a key)"
        items = ((f"{where}.{k}", v) for k, v in raw.items())
    else:
        return None
    for place, value in items:
        found = control_character_at(value, place)
        if found is not None:
            return found
    return None


def want_plain_text(raw: Any, where: str) -> None:
    """Refuse a header holding a control character anywhere (see ``CONTROL``)."""
    found = control_character_at(raw, where)
    if found is not None:
        raise StateFileError(f"not a valid losscli state: {found} holds a control character")


def want_dict(raw: Any, where: str) -> dict[str, Any]:
    value = decode(raw, where)
    if not isinstance(value, dict):
        raise malformed(where, "an object", raw)
    return value


# ---- arrays ---------------------------------------------------------------------------------


def prefixed(prefix: str, arrays: Arrays) -> Arrays:
    return {f"{prefix}.{name}": a for name, a in arrays.items()}


def under(prefix: str, arrays: Arrays) -> Arrays:
    """The members named ``prefix.*``, with the prefix taken off."""
    head = prefix + "."
    return {name[len(head) :]: a for name, a in arrays.items() if name.startswith(head)}


def expect_members(arrays: Arrays, names: set[str], where: str) -> None:
    """Exactly these members: a missing one is truncation, an extra one is not ours."""
    missing, extra = names - set(arrays), set(arrays) - names
    if missing:
        raise StateFileError(f"not a valid losscli state: array {where}.{sorted(missing)[0]} is missing")
    if extra:
        raise StateFileError(f"not a valid losscli state: unknown array {where}.{sorted(extra)[0]}")


def take(arrays: Arrays, name: str, dtype: type[Any], shape: tuple[int, ...], where: str) -> NDArray[Any]:
    """The member as a native-order array of exactly this dtype and shape."""
    a = arrays[name]
    want = np.dtype(dtype)
    if not isinstance(a, np.ndarray) or a.dtype.kind != want.kind or a.dtype.itemsize != want.itemsize:
        got = getattr(a, "dtype", type(a).__name__)
        raise StateFileError(f"not a valid losscli state: array {where}.{name} should be {want}, not {got}")
    if a.shape != shape:
        raise StateFileError(
            f"not a valid losscli state: array {where}.{name} should have shape {shape}, not {a.shape}"
        )
    return np.ascontiguousarray(a, dtype=want)
