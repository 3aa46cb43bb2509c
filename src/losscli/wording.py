"""Messages in the caller's words: ``--nan skip`` on the command line, ``nan="skip"`` in Python.

The library writes every message once, naming command-line options, because most people meet
losscli in a terminal. A Python caller who passed ``input="auto"`` should not be told to "pass
--input logits": ``in_api_words`` rewrites option names into ``evaluate``'s parameters at the
API's edge, so no message site needs to know who called.
"""

from __future__ import annotations

import re

#: options whose parameter has another name in ``evaluate``
RENAMED = {"input-format": "fmt", "bytes": "n_bytes", "words": "n_words", "logits": "preds"}
#: flags, which are booleans in Python
FLAGS = {"shift": "shift=True", "header": "header=True", "no-header": "header=False"}

_NOT_AFTER = r"(?<![\w-])"  # "--x" inside a word or a path is not an option
#: options whose value is a choice, quoted in Python ("--nan skip" -> 'nan="skip"'). Only the real
#: choices: any word would also catch prose ("--input must be one of" -> 'input="must" be one of').
CHOICES = {"nan": ("error", "skip"), "input": ("auto", "probs", "logits", "logprobs")}
_CHOICE = re.compile(
    _NOT_AFTER
    + "(?:"
    + "|".join(rf"--({name})(?:\s+|=)({'|'.join(values)})\b" for name, values in CHOICES.items())
    + ")"
)
#: --delimiter ';' / --decimal , -> delimiter=";" / decimal=","
_MARK = re.compile(_NOT_AFTER + r"--(delimiter|decimal)(?:\s+|=)'?([^'\s])'?(?=[\s)]|$)")
_NUMBER = re.compile(_NOT_AFTER + r"--(ignore-index|top|topk|threads|chunk-size)(?:\s+|=)(-?\d+)\b")
_OPTION = re.compile(_NOT_AFTER + r"--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")


def parameter(option: str) -> str:
    """``pred-col`` -> ``pred_col``: the keyword of ``evaluate`` that an option maps to."""
    return RENAMED.get(option, option.replace("-", "_"))


def in_api_words(text: str) -> str:
    """``use --nan skip`` -> ``use nan="skip"``; ``--pred-col`` -> ``pred_col``."""
    text = _CHOICE.sub(lambda m: '{}="{}"'.format(*(g for g in m.groups() if g is not None)), text)
    text = _MARK.sub(lambda m: f'{m[1]}="{m[2]}"', text)
    text = _NUMBER.sub(lambda m: f"{parameter(m[1])}={m[2]}", text)
    return _OPTION.sub(lambda m: FLAGS.get(m[1]) or parameter(m[1]), text)
