"""What a run was asked to do, as frozen, typed values, validated before any file is opened.

``Evaluation`` is the whole request: the metric and its own options, the inputs (each a
``Source``: a path or an array, its format, its columns, its header), the run options (NaN
policy, chunking, threads, outputs) and, for perplexity, the language-model options. Building
one checks every option against the others and against the metric's declaration, so a typo in
an output name or an option another metric owns costs no reading and leaves no file behind.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from .ci_options import NAMES as CI_NAMES
from .ci_options import CIOptions, ci_options
from .errors import OutputError, UsageError

if TYPE_CHECKING:
    from .metrics.base import MetricDef

NanPolicy = Literal["error", "skip"]
NAN_POLICIES: tuple[str, ...] = get_args(NanPolicy)
#: torch's default ignore index; the one place it is written
IGNORE_INDEX_DEFAULT = -100
#: the breakdown lists every example when there are at most this many
BREAKDOWN_ALL_AT_MOST = 20
DEFAULT_TOP = 10

Role = Literal["preds", "targets", "weights", "logprobs", "mask", "groups"]
#: --max-groups' default: per-group state grows with the groups, so their number is bounded
MAX_GROUPS_DEFAULT = 10_000


@dataclass(frozen=True)
class Source:
    """One input: a path ("-" for stdin) or an array, and how to read it."""

    data: Any  # str | os.PathLike | array-like
    role: Role
    format: str | None = None  # --input-format: read whatever the extension says otherwise
    columns: str | None = None  # --pred-col / --target-col / --weight-col as given
    header: bool | None = None  # CSV: None detects
    delimiter: str | None = None  # CSV: the field separator; None detects (",", tab, ";")
    decimal: str | None = None  # CSV: the decimal mark; None detects ("," in ";"-separated files)
    #: a shard's hive partition values (key, value): constant columns after the file's own
    partition: tuple[tuple[str, Any], ...] = ()
    #: rows [start, stop) of a single file read beside a sharded input (see engine.sharded)
    rows: tuple[int, int] | None = None
    #: a sharded input's name for columns its files only number (a 1-D .npy of --groups keys):
    #: the first shard's, so every shard's state has the same key names and they merge
    name: str | None = None
    #: a single file beside sharded inputs: the rows of all the shards, where its rows must end
    rows_total: int | None = None

    @property
    def is_path(self) -> bool:
        return isinstance(self.data, (str, os.PathLike))

    @property
    def path(self) -> str | None:
        return os.fspath(self.data) if self.is_path else None


@dataclass(frozen=True)
class Inputs:
    """The inputs of one run; ``preds`` is the logits for perplexity."""

    preds: Source | None
    targets: Source | None = None
    weights: Source | None = None  # a --weights file
    logprobs: Source | None = None
    pred_col: str | None = None  # the predictions' (logits', log-probabilities') columns
    target_col: str | None = None  # the targets' columns: in TARGETS, or in PREDS without it
    weight_col: str | None = None  # in the --weights file, or in the preds' file without one
    exclude_col: str | None = None  # columns taken away from the predictions, however chosen
    groups: Source | None = None  # --groups FILE: group keys, row-aligned with the predictions

    def sources(self) -> list[Source]:
        return [
            s for s in (self.preds, self.targets, self.weights, self.logprobs, self.groups) if s is not None
        ]


@dataclass(frozen=True)
class RunOptions:
    nan: NanPolicy = "error"
    chunk_size: int | None = None  # rows; None: sized from the widest input
    threads: int | None = None  # None: two on a machine with two cores
    top: int = DEFAULT_TOP
    per_example: str | None = None
    row_offset: int = 0  # the global row of the first input row (for merging parts)
    save_state: str | None = None
    group_by: str | None = None  # --group-by: key column spec (in PREDS, or in --groups FILE)
    max_groups: int = MAX_GROUPS_DEFAULT
    ci: CIOptions | None = None  # --ci, --ci-level, --bootstrap, --seed (ci_options.py)


@dataclass(frozen=True)
class LMOptions:
    """Perplexity's layout and text options, typed (they arrive as the metric's options)."""

    shift: bool = False
    topk: int | None = None
    seq_col: str | None = None
    text: str | None = None
    n_bytes: int | None = None
    n_words: int | None = None
    sequence_offset: int | None = None
    ignore_index: int = IGNORE_INDEX_DEFAULT
    pad_value: float | None = None
    mask: Any = None  # --mask FILE (or, from Python, an array): an attention mask, 1 = real token
    mask_col: str | None = None  # its array or column (in --mask FILE, else in the ids' file)
    no_mask: bool = False  # --no-mask: an attention_mask beside the ids is not applied

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> LMOptions:
        return cls(**{k: v for k, v in options.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Evaluation:
    """One run, completely described and checked."""

    metric: str
    inputs: Inputs
    run: RunOptions = RunOptions()
    metric_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def lm(self) -> LMOptions | None:
        return LMOptions.of(self.metric_options) if self.metric == "perplexity" else None

    def merge_options(self, metric: MetricDef) -> dict[str, Any]:
        """The options two states must agree on to be merged."""
        return {o.name: self.metric_options.get(o.name, o.default) for o in metric.options if o.merge_key}

    def recorded_options(self) -> dict[str, Any]:
        """Every option that is not an output option, as plain data for provenance."""
        out: dict[str, Any] = {**self.metric_options, "nan": self.run.nan, "row_offset": self.run.row_offset}
        if out.get("mask") is not None and not isinstance(out["mask"], (str, os.PathLike)):
            out["mask"] = "<array>"  # a mask given from Python as an array: provenance, not data
        elif out.get("mask") is not None:
            out["mask"] = os.fspath(out["mask"])
        i = self.inputs
        for name, value in (
            ("pred_col", i.pred_col),
            ("target_col", i.target_col),
            ("weight_col", i.weight_col),
            ("exclude_col", i.exclude_col),
            ("group_by", self.run.group_by),
        ):
            if value is not None:
                out[name] = value
        first = i.sources()[0] if i.sources() else None
        if first is not None and first.format is not None:
            out["input_format"] = first.format
        if first is not None and first.header is not None:
            out["header"] = first.header
        for name in ("delimiter", "decimal"):
            value = getattr(first, name, None)
            if value is not None:
                out[name] = value
        return out


COMMON = (
    "weights",
    "pred_col",
    "target_col",
    "weight_col",
    "exclude_col",
    "chunk_size",
    "nan",
    "top",
    "per_example",
    "fmt",
    "progress",
    "threads",
    "header",
    "delimiter",
    "decimal",
    "row_offset",
    "save_state",
    "logprobs",
    "group_by",
    "groups",
    "max_groups",
    *CI_NAMES,
)


def build_evaluation(metric: MetricDef, preds: Any, targets: Any, kwargs: Mapping[str, Any]) -> Evaluation:
    """``evaluate``'s keywords -> a checked ``Evaluation``; every refusal is a UsageError (or an
    OutputError for an output that cannot be written), raised before anything is opened."""
    _refuse_foreign(metric, kwargs)
    kwargs = {**kwargs, **{k: column_spec(k, kwargs[k]) for k in COLUMN_OPTIONS if k in kwargs}}
    fmt, header = kwargs.get("fmt"), kwargs.get("header")
    delimiter, decimal = text_marks(kwargs.get("delimiter"), kwargs.get("decimal"))

    def source(data: Any, role: Role, columns: str | None) -> Source | None:
        return None if data is None else Source(data, role, fmt, columns, header, delimiter, decimal)

    weights, weight_col = kwargs.get("weights"), kwargs.get("weight_col")
    inputs = Inputs(
        source(preds, "preds", kwargs.get("pred_col")),
        source(targets, "targets", kwargs.get("target_col")),
        source(weights, "weights", weight_col) if weights is not None else None,
        source(kwargs.get("logprobs"), "logprobs", kwargs.get("pred_col")),
        kwargs.get("pred_col"),
        kwargs.get("target_col"),
        weight_col,
        kwargs.get("exclude_col"),
        source(kwargs.get("groups"), "groups", None) if kwargs.get("groups") is not None else None,
    )
    run = _run_options(kwargs)
    given = {o.name: o.normalize(kwargs[o.name]) for o in metric.options if o.name in kwargs}
    options = {**metric.defaults(), **given}
    for o in metric.options:
        options[o.name] = o.value_of(options[o.name])
    evaluation = Evaluation(metric.name, inputs, run, MappingProxyType(options))
    _check_inputs(evaluation)
    from .readers.open import check_read_once

    paths = [s.path for s in inputs.sources() if s.path is not None] + _text_paths(evaluation)
    check_read_once(paths)
    _refuse_output_over_input(run, paths)
    return evaluation


def _refuse_output_over_input(run: RunOptions, inputs: list[str]) -> None:
    """An output named like one of the run's inputs would replace it (the rename is atomic, the
    loss is not): refused before anything is read."""
    for option, output in (("--per-example", run.per_example), ("--save-state", run.save_state)):
        if output is None or output == "-" or not os.path.exists(output):
            continue
        for path in inputs:
            if path != "-" and os.path.exists(path) and os.path.samefile(output, path):
                raise UsageError(f"{option} {output} is also an input of this run: give another file name")


#: what a CSV's --delimiter or --decimal cannot be: the quote, line ends, and (for the
#: decimal mark) the characters numbers are written with
_NEVER_MARKS = {'"': "the quote character", "\n": "a line end", "\r": "a line end"}
_NUMBER_CHARS = "0123456789+-eE"


def text_marks(delimiter: Any, decimal: Any) -> tuple[str | None, str | None]:
    """--delimiter and --decimal checked (None: detect from the file). Each is one character;
    ``\\t`` (as a shell passes '\\t') and ``tab`` mean a tab. Refused before any file is opened:
    a quote or a line end, a decimal mark that is a digit, sign or exponent, and one character
    for both (pandas refuses that too)."""
    marks: list[str | None] = []
    for option, value in (("--delimiter", delimiter), ("--decimal", decimal)):
        if value is None:
            marks.append(None)
            continue
        if not isinstance(value, str):
            raise UsageError(f"{option} must be one character, not {value!r}")
        char = "\t" if value in ("\\t", "tab") else value
        if len(char) != 1:
            raise UsageError(f"{option} must be one character (or '\\t' for a tab), not {value!r}")
        if char in _NEVER_MARKS:
            raise UsageError(f"{option} cannot be {_NEVER_MARKS[char]}")
        if option == "--decimal" and char in _NUMBER_CHARS:
            raise UsageError(f"--decimal cannot be {char!r}: numbers are written with it; give ',' or '.'")
        marks.append(char)
    if marks[0] is not None and marks[0] == marks[1]:
        raise UsageError(f"--delimiter and --decimal are both {marks[0]!r}; they must differ")
    return marks[0], marks[1]


COLUMN_OPTIONS = ("pred_col", "target_col", "weight_col", "exclude_col", "group_by")


def column_spec(option: str, value: Any) -> str | None:
    """A column option from Python as the command line's text: a position (``1``) or a list of
    names and positions (``["a", 2]``) becomes ``"1"`` / ``"a,2"``; anything else is refused."""
    if isinstance(value, str) and not value.strip():  # `--pred-col "$UNSET"` in a script
        raise UsageError(
            f"--{option.replace('_', '-')} is empty: give a column name, a position, a glob "
            "('p_*') or a range ('1-10'); leave the option out to let losscli choose"
        )
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)) for v in value)
    ):
        return ",".join(str(v) for v in value)
    raise UsageError(
        f"--{option.replace('_', '-')} takes a column name, a position, or a list of them, "
        f"not {type(value).__name__} {value!r}"
    )


def _refuse_foreign(metric: MetricDef, kwargs: Mapping[str, Any]) -> None:
    """An option this metric does not have: name the metrics that do (``shift``: perplexity)."""
    from .metrics import registry

    own = {o.name for o in metric.options} | set(COMMON)
    given = [k for k, v in kwargs.items() if k not in own and v is not None and v is not False]
    if given:  # the other metrics are loaded only when there is something to look up
        defaults = {o.name: o.default for n in registry.names() for o in registry.get(n).options}
        # another metric's option at its default value (input="auto", ignore_index=-100) says nothing
        given = [k for k in given if not _is_default(kwargs[k], defaults.get(k, object()))]
    foreign = given
    if "logprobs" in kwargs and kwargs["logprobs"] is not None and metric.inputs != "tokens":
        foreign.insert(0, "logprobs")
    if not foreign:
        return
    owners = [n for n in registry.names() if registry.get(n).option(foreign[0]) is not None]
    if foreign[0] == "logprobs":
        owners = ["perplexity"]
    where = f"only for {', '.join(owners)}" if owners else "not an option of losscli"
    if foreign[0] in ("logits", "predictions", "ids", "labels", "input_ids"):  # a role's other name
        where += "; give predictions (logits) and targets (token ids) as the first two arguments"
    raise UsageError(f"{', '.join(foreign)}: {where}")


def _is_default(value: Any, default: Any) -> bool:
    """``value`` is the option's default (an array or tensor never is: comparing it would be
    elementwise)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return bool(value == default)
    return value is default


def _run_options(kwargs: Mapping[str, Any]) -> RunOptions:
    nan = kwargs.get("nan", "error")
    if nan not in NAN_POLICIES:
        raise UsageError(f"--nan must be one of {', '.join(NAN_POLICIES)}, not {nan}")
    top = kwargs.get("top", DEFAULT_TOP)
    if top is None or top < 0:
        raise UsageError("--top must be 0 or more")
    chunk_size = kwargs.get("chunk_size")
    if chunk_size is not None and chunk_size < 1:
        raise UsageError("--chunk-size must be at least 1 row")
    threads = kwargs.get("threads")
    if threads is not None and threads < 1:
        raise UsageError("--threads must be at least 1")
    row_offset = kwargs.get("row_offset") or 0
    if row_offset < 0:
        raise UsageError("--row-offset must be 0 or more")
    per_example = kwargs.get("per_example")
    if per_example is not None:
        from .per_example import output_kind

        per_example = os.fspath(per_example)
        output_kind(per_example)
        if per_example != "-":
            per_example = output_path(per_example, "--per-example")
    save_state = kwargs.get("save_state")
    if save_state is not None:
        save_state = output_path(os.fspath(save_state), "--save-state")
    max_groups = kwargs.get("max_groups")
    max_groups = MAX_GROUPS_DEFAULT if max_groups is None else max_groups
    if isinstance(max_groups, bool) or not isinstance(max_groups, int) or max_groups < 1:
        raise UsageError(f"--max-groups must be a whole number of at least 1, not {max_groups!r}")
    return RunOptions(
        cast(NanPolicy, nan),
        chunk_size,
        threads,
        top,
        per_example,
        row_offset,
        save_state,
        kwargs.get("group_by"),
        max_groups,
        ci_options(kwargs),
    )


def output_path(path: str, option: str) -> str:
    """Where an output file will be written (through a symbolic link, to its target), checked
    before any input is read: its directory exists, and it is not a directory, a device, a pipe
    or a socket. Outputs are written to a temporary file and renamed over the target, which
    would replace a device node (``/dev/full`` as root) or a pipe with a regular file."""
    if path == "-":
        raise UsageError(f"{option} needs a file name: stdout carries the report")
    target = os.path.realpath(path) if os.path.islink(path) else path
    if os.path.isdir(target):
        raise OutputError(f"{option} {path}: is a directory; give a file name")
    if os.path.exists(target) and not os.path.isfile(target):
        raise OutputError(
            f"{option} {path}: is not a regular file (a device, pipe or socket); give a file name"
        )
    parent = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(parent):
        raise OutputError(f"{option} {path}: cannot write here: directory {parent} does not exist")
    return target


def _check_inputs(evaluation: Evaluation) -> None:
    inputs, lm = evaluation.inputs, evaluation.lm
    if lm is None:
        if inputs.preds is None:
            raise UsageError(f"{evaluation.metric} needs predictions")
        return
    if inputs.exclude_col is not None:
        raise UsageError("--exclude-col: only for metrics that score prediction columns, not perplexity")
    if (inputs.logprobs is None) == (inputs.preds is None):
        if inputs.logprobs is None:
            raise UsageError("give logits (with targets) or --logprobs: there is nothing to score")
        raise UsageError("give either logits (with targets) or --logprobs, not both")
    if inputs.logprobs is not None and (lm.shift or lm.topk is not None):
        raise UsageError("--shift and --topk need logits; log-probabilities are already gathered")
    if inputs.logprobs is None and lm.pad_value is not None:
        raise UsageError(
            "--pad-value marks padding in --logprobs; with logits, mark it in the targets with --ignore-index"
        )
    if lm.no_mask and (lm.mask is not None or lm.mask_col):
        raise UsageError(
            "--no-mask says not to apply an attention mask, and --mask/--mask-col name one: give one"
        )
    for name, value in (("--bytes", lm.n_bytes), ("--words", lm.n_words)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be at least 1")


def _text_paths(evaluation: Evaluation) -> list[str]:
    """Paths read besides the inputs (--text, --mask), for the read-once check and provenance."""
    lm = evaluation.lm
    if lm is None:
        return []
    return [os.fspath(p) for p in (lm.text, lm.mask) if isinstance(p, (str, os.PathLike))]
