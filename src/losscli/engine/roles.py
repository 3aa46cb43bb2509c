"""Which columns of which file play which role, and the id columns that travel with rows.

Two files: each takes the named columns or every data column. One file: the named columns, a
label beside "every other column", or well-known names. A pandas index is never data; an id
column goes with each example into the breakdown and is checked against the other files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..columns import (
    RULE_EVERY,
    RULE_ID_NAME,
    RULE_NAME,
    RULE_WHOLE,
    USER,
    Choice,
    find_id,
    others,
    whole_file,
)
from ..errors import UsageError
from ..metrics.checks import PREDS, TARGETS
from ..readers.base import Reader
from ..readers.colspec import shown_columns
from ..readers.ids import open_ids
from .evaluator import IDS, TARGET_IDS, WEIGHT_IDS, WEIGHTS
from .pairing import PRED_INDEX, TARGET_INDEX
from .runners import Role

PRED_NAMES = (
    "pred",
    "preds",
    "prediction",
    "predictions",
    "y_pred",
    "yhat",
    "y_hat",
    "output",
    "score",
    "scores",
    "prob",
    "probs",
    "probability",
    "logit",
    "logits",
)
TARGET_NAMES = ("target", "targets", "y", "y_true", "label", "labels", "truth", "actual", "class", "ids")


def _file_choice(reader: Reader, spec: str | None, taken: tuple[int, ...] = ()) -> Choice:
    """A file's columns for one role: the named ones (a range or glob skips those ``taken``),
    else every data column."""
    if spec is not None:
        return Choice(reader, reader.resolve_many(spec, taken), USER, spec=spec)
    return whole_file(reader, taken)


def resolve_roles(
    by_name: bool,
    preds: Reader,
    targets: Reader | None,
    pred_col: str | None,
    target_col: str | None,
    exclude: tuple[int, ...] = (),
) -> tuple[Choice, Choice]:
    """Which columns are predictions and which are targets, and how each was chosen.

    Two files: each takes the named column, or every data column it holds. One file: the
    named columns; a target column alone means "every other data column is a prediction" (a
    wide CSV of class scores plus a label); with neither, well-known names (pred/target,
    y_pred/y_true, ...) are recognised. Data columns never include a pandas index, nor an
    id-like column unless nothing else is left (see ``columns``). ``exclude``: the weight column.
    ``by_name``: a lone prediction column may be found by its name (not for class scores, which
    are every other column).
    """
    if targets is not None:
        return _file_choice(preds, pred_col, exclude), _file_choice(targets, target_col)
    t_idx = preds.resolve_many(target_col, exclude) if target_col else None
    t_how = USER
    if t_idx is None:
        guess = preds.guess(TARGET_NAMES)
        t_idx, t_how = ([guess] if guess is not None else None), RULE_NAME
    p_choice = None
    if pred_col:  # a range or glob of predictions skips the targets and weights
        p_idx = preds.resolve_many(pred_col, sorted(set(t_idx or ()) | set(exclude)))
        p_choice = Choice(preds, p_idx, USER, spec=pred_col)
    if p_choice is None and t_idx is not None:
        taken = tuple(sorted(set(t_idx) | set(exclude)))
        guess = None if not by_name else preds.guess(PRED_NAMES)
        p_choice = Choice(preds, [guess], RULE_NAME) if guess is not None and guess not in taken else None
        p_choice = p_choice or others(preds, taken)
    if t_idx is None or p_choice is None or not p_choice.group:
        raise UsageError(
            f"{preds.display}: one file was given, so say which columns hold what with "
            f"--pred-col and --target-col (columns: {', '.join(preds.column_names[:20])}), "
            "or pass the targets as a second file"
        )
    return p_choice, Choice(preds, t_idx, t_how, spec=target_col if t_how == USER else None)


def exclude_columns(choice: Choice, spec: str | None) -> Choice:
    """--exclude-col: the predictions' columns, whoever chose them, minus those ``spec`` names
    (resolved in the predictions' file, in the same forms as --pred-col)."""
    if spec is None:
        return choice
    reader = choice.reader
    removed = set(reader.resolve_many(spec))
    chosen = choice.positions()
    kept = [j for j in chosen if j not in removed]
    if not kept:
        raise UsageError(
            f"{reader.display}: --exclude-col {spec!r} leaves no prediction column (it removes "
            f"{shown_columns(reader, chosen)}); exclude fewer columns or name the predictions "
            "with --pred-col"
        )
    excluded = [j for j in chosen if j in removed]
    return replace(choice, group=kept, excluded=excluded, exclude_spec=spec)


def weight_column(reader: Reader, spec: str) -> list[int]:
    """--weight-col: one column, however it is named (a glob must match exactly one)."""
    cols = reader.resolve_many(spec)
    if len(cols) != 1:
        raise UsageError(
            f"{reader.display}: --weight-col {spec!r} names {len(cols)} columns "
            f"({shown_columns(reader, cols)}); weights are one column: name exactly one"
        )
    return cols


def _used(choices: dict[str, Choice], reader: Reader) -> list[int]:
    """Every column of ``reader`` some role reads as data."""
    used: set[int] = set()
    for c in choices.values():
        if c.reader is reader:
            used |= set(range(len(reader.column_names))) if c.group is None else set(c.group)
    return sorted(used)


@dataclass
class IdPlan:
    """The id column(s) found, the roles that stream them, and how to describe them."""

    roles: dict[str, Role]
    column: str | None = None
    json: dict[str, Any] | None = None
    note: str | None = None
    warning: str | None = None  # files whose id column could not be matched, so were not checked


def plan_ids(choices: dict[str, Choice]) -> IdPlan:
    """Find an id column in the predictions', targets' and weights' files. Its values go with
    each example into the breakdown and --per-example; every other file holding the same id
    column (same name, any case) must agree row by row, which the engine checks as it streams."""
    checked = {TARGETS: TARGET_IDS, WEIGHTS: WEIGHT_IDS}
    found: list[tuple[str, Reader, int]] = []
    for role in (PREDS, TARGETS, WEIGHTS):
        reader = choices[role].reader if role in choices else None
        if reader is None or any(reader is r for _, r, _ in found):
            continue
        j = find_id(reader, _used(choices, reader))
        if j is not None:
            found.append((role, reader, j))
    if not found:
        return IdPlan({})
    _, main, j = found[0]
    name = main.column_names[j]
    roles = {IDS: Role(*open_ids(main, j), main.display)}
    against: list[dict[str, Any]] = []
    unmatched: list[str] = []
    for role, other, k in found[1:]:
        if other.column_names[k].lower() != name.lower():
            unmatched.append(other.display)
            continue
        roles[checked[role]] = Role(*open_ids(other, k), other.display)
        against.append({"file": other.display, "columns": [other.column_names[k]]})
    info = {"file": main.display, "columns": [name], "chosen_by": RULE_ID_NAME, "checked_against": against}
    note = f"rows carry ids from {main.display} column {main.header_text(j)!r}"
    if against:
        note += f", checked row by row against {' and '.join(str(a['file']) for a in against)}"
    warning = None
    if unmatched:
        warning = (
            f"the rows of {' and '.join(unmatched)} were not checked against the ids of {main.display}: "
            f"its id column has another name than {name!r}; rename it to check that the files are in "
            "the same order"
        )
    return IdPlan(roles, name, info, note, warning)


def weight_choice(preds: Reader, weights: Reader | None, weight_col: str | None) -> Choice:
    """--weight-col in the predictions' file, or a --weights file (its column, or all of it)."""
    reader = preds if weights is None else weights
    if weight_col is None:
        return Choice(preds, None, USER) if weights is None else whole_file(weights)
    return Choice(reader, weight_column(reader, weight_col), USER, spec=weight_col)


def engine_roles(
    choices: dict[str, Choice], planned: dict[str, Role] | None
) -> tuple[dict[str, Role], IdPlan]:
    """The engine's roles: the chosen columns (a language-model plan's own for preds and
    targets), plus the id streams when a file has an id column (not for token data)."""
    roles = {name: Role(c.reader, c.group, c.reader.display) for name, c in choices.items()}
    if planned is not None:
        return {**planned, **{k: v for k, v in roles.items() if k == WEIGHTS}}, IdPlan({})
    ids = plan_ids(choices)
    return {**roles, **ids.roles, **(index_pair(choices) if not ids.roles else {})}, ids


def index_pair(choices: dict[str, Choice]) -> dict[str, Role]:
    """The predictions' and targets' pandas index columns, when two files each carry one (and
    no id column does the checking): streamed so the engine can compare them row by row
    (``Evaluator._check_index``), never scored and never shown."""
    preds, targets = choices.get(PREDS), choices.get(TARGETS)
    if preds is None or targets is None or preds.reader is targets.reader:
        return {}
    p_index, t_index = preds.reader.index_columns, targets.reader.index_columns
    if not p_index or len(p_index) != len(t_index):
        return {}
    roles = {}
    for level, (j, k) in enumerate(zip(p_index, t_index, strict=True)):  # a MultiIndex: every level
        roles[f"{PRED_INDEX}{level}"] = Role(*open_ids(preds.reader, j), preds.reader.display)
        roles[f"{TARGET_INDEX}{level}"] = Role(*open_ids(targets.reader, k), targets.reader.display)
    return roles


def columns_report(choices: dict[str, Choice], ids: IdPlan) -> tuple[dict[str, Any], list[str]]:
    """The JSON ``columns`` object, and the one note line when a rule chose anything."""
    columns: dict[str, Any] = {role: c.to_json() for role, c in choices.items()}
    columns["ids"] = ids.json
    by_file: dict[str, list[str]] = {}
    for role, c in choices.items():
        said = by_file.setdefault(c.reader.display, [])
        said.extend(p for p in c.note(role) if p not in said)
    parts = [f"{file}: {', '.join(said)}" for file, said in by_file.items() if said]
    if ids.note is not None:
        parts.append(ids.note)
    return columns, (["; ".join(parts)] if parts else [])


def index_warnings(choices: dict[str, Choice]) -> list[str]:
    """A pandas index the user named (``--pred-col 0``: positions count the index too) is
    scored as asked, but never silently: row labels are almost never predictions."""
    out = []
    for role, c in choices.items():
        width = getattr(c.reader, "width", len(c.reader.column_names))  # hive keys come after it
        index = [j for j in c.positions() if j in c.reader.index_columns and j < width]
        named = index if c.chosen_by == USER else []
        if named:
            shown = ", ".join(f"{j} ({c.reader.header_text(j)!r})" for j in named)
            out.append(
                f"{c.reader.display}: the {role} columns named by {c.spec!r} include column {shown}, "
                "the file's pandas index (row labels); positions count every column of the file, "
                f"the index too, so the first data column is {_first_data(c)}"
            )
    return out


def _first_data(c: Choice) -> int:
    return next((j for j in range(len(c.reader.column_names)) if j not in c.reader.index_columns), 0)


def plan_choice(role: Role, spec: str | None) -> Choice:
    """A language-model role as the JSON ``columns`` object describes it."""
    reader, group = role.reader, role.group
    if spec is not None:
        return Choice(reader, group, USER, spec=spec)
    if group is None:
        return Choice(reader, None, RULE_EVERY if reader.delimited else RULE_WHOLE)
    index = list(reader.index_columns)
    if index and sorted(group) == [j for j in range(len(reader.column_names)) if j not in index]:
        return Choice(reader, group, RULE_EVERY, index)  # the whole file but its pandas index
    return Choice(reader, group, RULE_NAME)


def output_names_of(choices: dict[str, Choice], count: int) -> list[str]:
    """Per-output labels: the predictions' column names (else the targets'), else 0, 1, ..."""
    for role in (PREDS, TARGETS):
        names = choices[role].names() if choices[role].reader.named() else None
        if names is not None and len(names) == count:
            return names
    return [str(j) for j in range(count)]
