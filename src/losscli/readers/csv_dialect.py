"""A delimited file's separator and decimal mark: given (--delimiter, --decimal) or detected.

European CSV, as ``df.to_csv(sep=";", decimal=",")`` (pandas) and ``write_csv(separator=";",
decimal_comma=True)`` (Polars) write it, separates fields with ``;`` because ``,`` is the
decimal mark. Detection reads what the reader peeked at (the first line and a sample of rows
below it, so a pipe loses nothing) and never guesses where the file cannot tell:

* the separator is ``;`` when it is the first line's only separator outside quotes (commas
  inside numbers such as ``1,5`` are decimal marks, not separators), as pandas' and Polars'
  readers can be told; tab as before (``.tsv`` names, or tabs and no commas); else ``,``.
* the decimal mark is ``,`` when, split by that separator, the sampled cells hold numbers
  written ``1,5`` / ``-0,25`` / ``1,5e-3`` and none written ``1.5``: a comma inside a cell
  is then never a separator (in a comma-separated file such a cell must have been quoted).
  Where ``;`` does not separate, cells that are all ``1,234`` could be thousands (US Excel
  quotes them so in a comma-separated file): not enough.
* a file of one column under a header, whose rows are all such numbers, is one column of
  decimal-comma numbers: read as ``,``-separated its rows would not match its header.

A headerless file whose every line is ``1,5`` is ambiguous (two columns, or one value 1.5?):
it is read as comma-separated, as always, and ``describe`` warns when another input of the run
was read with decimal commas, or when a line reads as a number no tool writes as an integer
(``0,05``: a column of ``05``; ``-0,25``: a column of ``-0``). What detection chose is said on
stderr (``describe``).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import LossCliError, UsageError
from .formats import tab_separated

_QUOTED = re.compile(r'"(?:[^"]|"")*"?')
_COMMA_NUMBER = re.compile(r"\s*[+-]?(?:\d+,\d*|,\d+)(?:[eE][+-]?\d+)?\s*")
_POINT_NUMBER = re.compile(r"\s*[+-]?(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?\s*")
_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
_THOUSANDS = re.compile(r"\s*[+-]?[1-9]\d{0,2},\d{3}\s*")  # 1,234: thousands (US Excel) or 1.234?
_TWO_INTEGERS = re.compile(r"\s*[+-]?\d+,\d+(?:[eE][+-]?\d+)?\s*")
_SEPARATORS = (",", ";", "\t")
#: added to "not a number" errors on a cell that a decimal comma would make a number
DECIMAL_HINT = "numbers with decimal commas? pass --decimal ,"


@dataclass(frozen=True)
class Dialect:
    """How a delimited file is read, and what detection said about it."""

    delimiter: str
    decimal: str
    #: what detection chose beyond plain CSV/TSV, for a stderr note (None: nothing to say)
    detected: str | None = None
    #: headerless lines that are all ``1,5``: read as two columns, could be decimal commas
    ambiguous: bool = False
    #: in an ambiguous file, a line that reads best as a decimal-comma number (``0,05``)
    evidence: str | None = None


def detect(
    path: str, first: str, lines: Sequence[str], delimiter: str | None, decimal: str | None
) -> Dialect:
    """The dialect of a file whose first non-blank line is ``first`` and whose sampled lines
    below it are ``lines``; ``delimiter``/``decimal`` as given (None: detect)."""
    bare = _QUOTED.sub("", first)
    one_column = False
    chose = delimiter
    if chose is None:
        chose = _separator(path, first, bare, decimal)
        if chose is None:  # no separator on the first line: a header above decimal commas?
            one_column = _one_decimal_column(bare, lines)
            chose = ";" if one_column else ","
    if decimal is not None and decimal == chose:  # given as a mark, detected as the separator
        raise UsageError(
            f"{path}: --decimal {decimal!r} is the separator this file's first line shows; a "
            f"decimal mark is what sits inside numbers (',' in 1,5): did you mean --delimiter {decimal!r}?"
        )
    mark = decimal
    if mark is None:
        mark = "," if _decimal_commas(first, lines, chose) else "."
    separated = delimiter is None and chose == ";" and ";" in bare  # not a one-column file
    said = _said(separated, decimal is None and mark == ",", one_column)
    ambiguous = delimiter is None and decimal is None and chose == "," and _all_pairs(first, lines)
    evidence = _odd_integers(first, lines) if ambiguous else None
    return Dialect(chose, mark, said, ambiguous, evidence)


def _separator(path: str, first: str, bare: str, decimal: str | None) -> str | None:
    """The separator the first line shows, or None when it shows none (one column, or
    ambiguous): tab as TSV detection says, ``;`` when it is the only separator."""
    if tab_separated(path, first) or _only_separator(bare, "\t"):
        return "\t"
    if decimal == ",":  # the comma is the decimal mark: it separates nothing
        return "\t" if "\t" in bare else ";"
    if _only_separator(bare, ";"):
        return ";"
    return None if not any(s in bare for s in _SEPARATORS) else ","


def _only_separator(bare: str, sep: str) -> bool:
    """``sep`` is in the (unquoted) line and no other separator is, but for commas inside
    fields that are decimal-comma numbers (a headerless ``1,5;2,5``)."""
    if sep not in bare or any(s in bare for s in _SEPARATORS if s not in (sep, ",")):
        return False
    return "," not in bare or all(_COMMA_NUMBER.fullmatch(f) for f in bare.split(sep) if "," in f)


def _one_decimal_column(bare: str, lines: Sequence[str]) -> bool:
    """A one-field first line above rows that are single numbers, some of them ``1,5`` and
    none ``1.5``: read with commas as separators, the rows would not match the header."""
    if not bare.strip() or any(p.fullmatch(bare) for p in (_COMMA_NUMBER, _POINT_NUMBER, _INTEGER)):
        return False  # a first line of data: ambiguous, not a header above numbers
    seen = False
    for line in lines:
        if _COMMA_NUMBER.fullmatch(line):
            seen = seen or not _THOUSANDS.fullmatch(line)
        elif line.strip() and not _INTEGER.fullmatch(line):
            return False
    return seen


def _decimal_commas(first: str, lines: Sequence[str], delimiter: str) -> bool:
    """Cells written ``1,5`` and none ``1.5`` in the sample split by ``delimiter``. In a
    comma-separated file only a quoted cell holds a comma (Polars' ``decimal_comma=True``
    quotes them): such files are looked at only when they have quotes."""
    text = [first, *lines]
    if delimiter == "," and not any('"' in line for line in text):
        return False
    if delimiter != "," and not any("," in line for line in text):
        return False
    commas = False
    thousands = delimiter != ";"  # a ";"-separated file writes no thousands commas
    try:
        for row in csv.reader(text, delimiter=delimiter):
            for cell in row:
                if "," in cell and _COMMA_NUMBER.fullmatch(cell):
                    commas = commas or not (thousands and _THOUSANDS.fullmatch(cell))
                elif "." in cell and _POINT_NUMBER.fullmatch(cell):
                    return False
    except csv.Error:
        return False
    return commas


def _all_pairs(first: str, lines: Sequence[str]) -> bool:
    """Every line is ``digits,digits``: two integer columns, or one of decimal-comma numbers."""
    rows = [line for line in (first, *lines) if line.strip()]
    return bool(rows) and all(_TWO_INTEGERS.fullmatch(line) for line in rows)


def _odd_integers(first: str, lines: Sequence[str]) -> str | None:
    """The first line ``a,b`` whose ``b`` has a leading zero or whose ``a`` is ``-0``: no tool
    writes such integers, every tool writes such decimals (``0,05``, ``-0,25``)."""
    for line in (first, *lines):
        head, _, tail = line.strip().partition(",")
        if (len(tail) > 1 and tail[0] == "0" and tail[1].isdigit()) or head.lstrip("+") == "-0":
            return line.strip()
    return None


def _said(separator: bool, commas: bool, one_column: bool) -> str | None:
    if one_column:
        return "read as one column of numbers with decimal commas (pass --decimal , to say so)"
    if separator and commas:
        return "read as ';'-separated with decimal commas (pass --delimiter ';' --decimal , to say so)"
    if separator:
        return "read as ';'-separated (pass --delimiter ';' to say so)"
    if commas:
        return "read with decimal commas (pass --decimal , to say so)"
    return None


def decimal_hint(text: str, decimal: str) -> str:
    """``"; " + DECIMAL_HINT`` for a cell that is a number written with a decimal comma in a
    file read with decimal points, else ''."""
    return f"; {DECIMAL_HINT}" if decimal == "." and _COMMA_NUMBER.fullmatch(text) else ""


def describe(readers: Sequence[Any], failed: bool = False) -> tuple[list[str], list[str]]:
    """(notes, warnings) about the CSV dialects of a run's inputs: what detection chose, one
    note per input; and, for an ambiguous input (see Dialect.ambiguous) beside one read with
    decimal commas, or with a line that reads best as one (or in a run that ``failed``), a
    warning naming the option."""
    dialects = [r for r in dict.fromkeys(readers) if getattr(r, "dialect", None) is not None]
    notes = [f"{r.display}: {r.dialect.detected}" for r in dialects if r.dialect.detected]
    commas = next((r for r in dialects if r.dialect.decimal == ","), None)
    warnings = []
    for r in dialects:
        d = r.dialect
        if not d.ambiguous or (commas is None and d.evidence is None and not failed):
            continue
        line = d.evidence or ",".join(r.first_fields)
        if commas is not None:
            why = f", but {commas.display} has decimal commas"
        elif d.evidence is not None:
            why = ", but such a line reads best as one number with a decimal comma"
        else:
            why = ""
        warnings.append(
            f"{r.display}: read as comma-separated ({line} is two columns){why}; "
            "if its commas are decimal marks, pass --decimal ,"
        )
    return notes, warnings


def refuse_one_number_lines(readers: Sequence[Any]) -> None:
    """A file read as comma-separated whose lines read best as one number with a decimal comma
    (``-2,529``, ``0,05``), with no other input to tell: the two readings give different numbers
    and neither is safe to guess, so the user says which (exit 2)."""
    from ..errors import AmbiguousInput

    dialects = [r for r in dict.fromkeys(readers) if getattr(r, "dialect", None) is not None]
    if any(r.dialect.decimal == "," for r in dialects):
        return  # another input has decimal commas: describe() warns with that reason
    for r in dialects:
        if r.dialect.ambiguous and r.dialect.evidence is not None:
            raise AmbiguousInput(
                f"lines like {r.dialect.evidence!r} read as one number with a decimal comma or as "
                "two comma-separated columns, and the file cannot tell: pass --decimal , (one "
                "column) or --delimiter , (two columns)",
                path=r.display,
            )


def add_hints(exc: LossCliError, readers: Sequence[Any]) -> None:
    """Add ``describe``'s warnings to the error a run ended with: a file read as two columns
    that may hold decimal commas is the likely cause of a shape or width error, and a run that
    fails prints no warnings."""
    hints = describe(readers, failed=True)[1]
    if "--decimal ," in str(exc):  # the error already names the option
        return
    if hints and exc.args and not any(h in str(exc) for h in hints):
        exc.args = (f"{exc.args[0]} ({'; '.join(hints)})", *exc.args[1:])
