"""Per-token log-probabilities out of one JSON record, in every shape servers write them.

A record is one sequence. What is looked for, in order (the first that is present decides):

* vLLM's ``prompt_logprobs`` when not null (see below): asked for, the prompt is what is scored.
* OpenAI-style lists of numbers (``token_logprobs``, ``logprobs.token_logprobs``,
  ``choices[0].logprobs.token_logprobs``, ``logprobs.content[].logprob``,
  ``choices[0].logprobs.content[].logprob``, a plain ``logprobs`` list); their token text
  (``tokens``, ``content[].token``) comes along when present.
* vLLM's ``prompt_logprobs`` (in the record, as ``LLM.generate``'s ``RequestOutput`` has it, or
  in ``choices[0]``, as its OpenAI-compatible server writes it): one entry per prompt token,
  null for the first (nothing predicts it), else a dict from token id (a string key in JSON)
  to ``{"logprob", "rank", "decoded_token"}``. The dict holds the prompt's own token and the
  top-k alternatives, so the scored entry is the one keyed by the prompt's token id
  (``prompt_token_ids`` in the same place); without those ids only a dict of exactly one entry
  (``prompt_logprobs=0``: the prompt token alone) says which token was scored.
* llama.cpp server's ``completion_probabilities``, one item per generated token: newer servers
  give the chosen token's ``logprob`` (``prob`` with ``post_sampling_probs``) with its ``id``
  and ``token``; older ones give ``content`` (the chosen token's text) and ``probs``, a list of
  ``{"tok_str", "prob"}`` in which the chosen token's probability is found by its text.
  Probabilities are logged (a probability of 0 is -inf: an infinite loss).
* A list of token objects ``{"token": ..., "logprob": ...}``, or a bare list of numbers.

A null log-probability (the first token of an echoed prompt, vLLM's first prompt position) is
not scored and is counted as ignored; it keeps its row, so the tokens after it keep theirs.
Anything else that is not as documented is an error naming the record and what is wrong.
"""

from __future__ import annotations

import json
import math
from array import array
from dataclasses import dataclass
from typing import Any

FIELD_PATHS = (
    "token_logprobs",
    "logprobs.token_logprobs",
    "choices[0].logprobs.token_logprobs",
    "logprobs.content[].logprob",
    "choices[0].logprobs.content[].logprob",
    "logprobs",
)
#: where the token text of each OpenAI-style path is, when the record has it
TEXT_PATHS = {
    "token_logprobs": "tokens",
    "logprobs.token_logprobs": "logprobs.tokens",
    "choices[0].logprobs.token_logprobs": "choices[0].logprobs.tokens",
    "logprobs.content[].logprob": "logprobs.content[].token",
    "choices[0].logprobs.content[].logprob": "choices[0].logprobs.content[].token",
}
#: every shape, for the message when a record has none of them
SHAPES = (
    ", ".join(FIELD_PATHS) + ", prompt_logprobs (vLLM), completion_probabilities (llama.cpp server), "
    'or a list of {"token", "logprob"} objects'
)


class RecordError(ValueError):
    """What is wrong with a record; the reader adds the file and the record's line."""


@dataclass
class Parsed:
    """One sequence: its log-probabilities (None: null, not scored) and, when the record
    carries them, each token's text."""

    values: list[float | None]
    tokens: list[str | None] | None = None
    ids: list[int | None] | None = None  # token ids (vLLM, newer llama.cpp), when known


def _walk(record: Any, path: str, numbers: bool = True) -> list[Any] | None:
    """The list at ``path`` in ``record``, or None when the record has no such list.

    ``key[]`` steps into a list and applies the rest of the path to each element; ``key[0]``
    takes its first element. Only after ``[]`` does a key reach inside list elements: a plain
    list found on the way (``{"logprobs": [-0.5, ...]}`` walked for ``logprobs.token_logprobs``)
    is not this path, so the next path gets its turn. ``numbers``: the list must hold numbers
    and nulls only.
    """
    node = record
    each = False  # after "[]": node is a list whose elements the remaining parts apply to
    for part in path.split("."):
        key = part.removesuffix("[]").removesuffix("[0]")
        if each:
            node = [item.get(key) if isinstance(item, dict) else None for item in node]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return None
        if part.endswith("[]"):
            if each or not isinstance(node, list):
                return None
            each = True
        elif part.endswith("[0]"):
            if each or not isinstance(node, list) or not node:
                return None
            node = node[0]
    if not isinstance(node, list):
        return None
    if numbers and not numbers_only(node):
        return None
    return node


NUMBER_TYPES = frozenset((int, float, type(None)))


def numbers_only(values: list[Any]) -> bool:
    """Every entry a JSON number or null (bool is its own type, so true/false are not): one
    pass in C over the types, the hot check of every record."""
    return set(map(type, values)) <= NUMBER_TYPES


def is_number(v: Any) -> bool:
    """A JSON number (``true``/``false`` parse as bool, a subclass of int, and are not)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _texts(record: Any, path: str, n: int) -> list[str | None] | None:
    """Token text at ``TEXT_PATHS[path]``, when it is a list of ``n`` strings (else None)."""
    text_path = TEXT_PATHS.get(path)
    found = None if text_path is None else _walk(record, text_path, numbers=False)
    if found is None or len(found) != n:
        return None
    return [t if isinstance(t, str) else None for t in found]


def token_logprobs(record: Any) -> list[float | None] | None:
    """The list of token log-probabilities in one record (None: none of the shapes)."""
    try:
        parsed = parse_record(record)
    except RecordError:
        return None
    return None if parsed is None else parsed.values


def parse_record(record: Any) -> Parsed | None:
    """One record's sequence, from the first shape it has (see the module's docstring); None
    when it has none. Raises RecordError when a shape is there but broken."""
    if isinstance(record, dict):  # prompt log-probs asked for: the prompt is what is scored
        for holder, where in ((record, ""), (_first_choice(record), "choices[0].")):
            if isinstance(holder, dict) and holder.get("prompt_logprobs") is not None:
                return _vllm(holder, where)
    for path in FIELD_PATHS:
        found = _walk(record, path, numbers=False)
        if found is None:
            continue
        if numbers_only(found):
            return Parsed(found, _texts(record, path, len(found)))
        _refuse_scalars(found, path)  # a list of objects or lists is another shape: go on
    if isinstance(record, dict) and "completion_probabilities" in record:
        return _llama_cpp(record["completion_probabilities"])
    if isinstance(record, list) and all(isinstance(item, dict) for item in record) and record:
        return _token_objects(record)
    if isinstance(record, list) and record and numbers_only(record):
        return Parsed(record)  # a bare list of log-probabilities
    if isinstance(record, list) and any(is_number(v) for v in record):
        _refuse_scalars(record, "")
    return None


def _refuse_scalars(found: list[Any], path: str) -> None:
    """A log-prob list holding a scalar that is not a number (``"-0.5"``, ``true``) is broken,
    not another shape: say which entry, rather than that the record has no log-probs."""
    for t, v in enumerate(found):
        if v is not None and not isinstance(v, (dict, list)) and not is_number(v):
            if not path:
                entry = f"entry {t}"
            else:
                entry = path.replace("[]", f"[{t}]", 1) if "[]" in path else f"{path}[{t}]"
            shown = json.dumps(v)  # as the file spells it: "x", true
            raise RecordError(
                f"{entry} is {shown if len(shown) <= 40 else shown[:37] + '...'}, not a number or null"
            )


def _first_choice(record: dict[str, Any]) -> Any:
    choices = record.get("choices")
    return choices[0] if isinstance(choices, list) and choices else None


def _logprob(value: Any, what: str) -> float | None:
    """A log-probability as the record has it: a number, or null."""
    if value is None:
        return None
    if not is_number(value):
        raise RecordError(f"{what} is {_shown(value)}, not a number")
    return float(value)


def _probability(value: Any, what: str) -> float | None:
    """A probability, logged: 0 is -inf (an infinite loss, counted as such)."""
    if value is None:
        return None
    if not is_number(value) or not 0.0 <= float(value) <= 1.0:
        raise RecordError(f"{what} is {_shown(value)}, not a probability between 0 and 1")
    return math.log(value) if value > 0 else -math.inf


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _vllm(holder: dict[str, Any], where: str) -> Parsed:
    """vLLM's prompt_logprobs: the entry keyed by each prompt token's own id."""
    entries = holder["prompt_logprobs"]
    name = f"{where}prompt_logprobs"
    if not isinstance(entries, list):
        raise RecordError(f"{name} is {_shown(entries)}, not a list (one entry per prompt token)")
    ids = holder.get("prompt_token_ids")
    if ids is not None and (not isinstance(ids, list) or len(ids) != len(entries)):
        size = len(ids) if isinstance(ids, list) else _shown(ids)
        raise RecordError(
            f"{where}prompt_token_ids has {size} ids but {name} has {len(entries)} entries; "
            "they must match one to one"
        )
    values: list[float | None] = []
    texts: list[str | None] = []
    token_ids: list[int | None] = []
    for t, entry in enumerate(entries):
        if entry is None:  # the first prompt token: nothing predicts it
            values.append(None)
            texts.append(None)
            token_ids.append(None)
            continue
        if not isinstance(entry, dict) or not entry:
            raise RecordError(f"{name}[{t}] is {_shown(entry)}, not null or a dict from token id to log-prob")
        if ids is not None:
            key = str(ids[t])
            if key not in entry:
                raise RecordError(
                    f"{name}[{t}] has no entry for the prompt's token id {ids[t]} "
                    f"(prompt_token_ids[{t}]); it has {', '.join(list(entry)[:5])}"
                )
        elif len(entry) == 1:
            key = next(iter(entry))
        else:
            raise RecordError(
                f"{name}[{t}] has {len(entry)} entries and the record has no prompt_token_ids to say "
                "which is the prompt's token; keep vLLM's prompt_token_ids next to prompt_logprobs "
                "(or request prompt_logprobs=0)"
            )
        item = entry[key]
        if not isinstance(item, dict) or "logprob" not in item:
            raise RecordError(f'{name}[{t}][{key!r}] has no "logprob"')
        values.append(_logprob(item["logprob"], f"{name}[{t}][{key!r}].logprob"))
        text = item.get("decoded_token")
        texts.append(text if isinstance(text, str) else None)
        token_ids.append(_token_id(key))
    return Parsed(values, texts, token_ids)


def _token_id(value: Any) -> int | None:
    """A token id as JSON has it (a number, or a dict key's digits); None when it is not one."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 62:
        return value
    return None


def _llama_cpp(items: Any) -> Parsed:
    """llama.cpp server's completion_probabilities, newer (``logprob``/``prob``) and older
    (``content`` + ``probs``) items alike."""
    if not isinstance(items, list):
        raise RecordError(f"completion_probabilities is {_shown(items)}, not a list (one item per token)")
    values: list[float | None] = []
    texts: list[str | None] = []
    token_ids: list[int | None] = []
    for t, item in enumerate(items):
        what = f"completion_probabilities[{t}]"
        if not isinstance(item, dict):
            raise RecordError(f"{what} is {_shown(item)}, not an object")
        if "logprob" in item:
            values.append(_logprob(item["logprob"], f"{what}.logprob"))
            text = item.get("token")
        elif "prob" in item:  # post_sampling_probs
            values.append(_probability(item["prob"], f"{what}.prob"))
            text = item.get("token")
        elif "probs" in item and "content" in item:  # older servers
            text = item["content"]
            values.append(_chosen_probability(item["probs"], text, what))
        else:
            raise RecordError(
                f'{what} has no "logprob" or "prob" (newer llama.cpp servers) and no '
                '"content" with "probs" (older ones)'
            )
        texts.append(text if isinstance(text, str) else None)
        token_ids.append(_token_id(item.get("id")))
    return Parsed(values, texts, token_ids)


def _chosen_probability(probs: Any, content: Any, what: str) -> float | None:
    """Older llama.cpp: the probability of the chosen token (``content``) among ``probs``."""
    if not isinstance(probs, list):
        raise RecordError(f"{what}.probs is {_shown(probs)}, not a list")
    for j, alt in enumerate(probs):
        if isinstance(alt, dict) and alt.get("tok_str") == content:
            return _probability(alt.get("prob"), f"{what}.probs[{j}].prob")
    raise RecordError(
        f"{what}: the chosen token {_shown(content)} is not among its {len(probs)} probs, so its "
        "probability is unknown; ask the server for more with a larger n_probs"
    )


def _token_objects(items: list[dict[str, Any]]) -> Parsed | None:
    """A list of ``{"token", "logprob"}`` objects (None when the objects have no logprob)."""
    if not any("logprob" in item for item in items):
        return None
    values: list[float | None] = []
    texts: list[str | None] = []
    for t, item in enumerate(items):
        if "logprob" not in item:
            raise RecordError(f'token {t} ({_shown(item)}) has no "logprob"')
        values.append(_logprob(item["logprob"], f"token {t}'s logprob"))
        text = item.get("token")
        texts.append(text if isinstance(text, str) else None)
    return Parsed(values, texts)


class TokenTexts:
    """The text and id of every token (rows in order, nulls included), when the records
    carry them, kept compactly (one UTF-8 blob, an end offset and an id per token: 16 bytes a
    token plus the text), so the worst tokens of a report can show what they were. Nothing is
    stored until a record carries either; a token without text has a flag, without id -1."""

    def __init__(self) -> None:
        self._blob = bytearray()
        self._ends = array("q")
        self._missing = bytearray()  # 1: the record had no text for this token
        self._ids = array("q")  # -1: no id
        self._before = 0  # tokens before the first that has a text or an id
        self.any = False

    def add(self, parsed: Parsed) -> None:
        """One sequence's tokens' text and ids (aligned with its values)."""
        values, tokens, ids = parsed.values, parsed.tokens, parsed.ids
        if not self.any:  # nothing stored until a record carries text or ids: only counted
            if all(t is None for t in tokens or ()) and all(i is None for i in ids or ()):
                self._before += len(values)
                return
            self.any = True
            self._ends.extend([0] * self._before)
            self._missing.extend(b"\x01" * self._before)
            self._ids.extend([-1] * self._before)
        for j in range(len(values)):
            text = tokens[j] if tokens is not None else None
            if text is not None:
                self._blob += text.encode("utf-8", "surrogatepass")
            self._ends.append(len(self._blob))
            self._missing.append(text is None)
            token_id = ids[j] if ids is not None else None
            self._ids.append(-1 if token_id is None else token_id)

    def get(self, row: int) -> str | None:
        """The text of token ``row`` (0-based in this file), None when unknown."""
        if not 0 <= row < len(self._ends) or self._missing[row]:
            return None
        start = self._ends[row - 1] if row else 0
        return self._blob[start : self._ends[row]].decode("utf-8", "replace")

    def token_id(self, row: int) -> int | None:
        """The id of token ``row``, None when unknown."""
        if not 0 <= row < len(self._ids) or self._ids[row] < 0:
            return None
        return int(self._ids[row])
