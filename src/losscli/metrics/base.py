"""What a metric is: a declaration (``MetricDef``) and a chunk scorer (``Scorer``).

The declaration is everything the rest of losscli asks of a metric: its command name, title,
headline, options, the figures it reports (as functions of an ``EvalState`` alone) and its
``--help`` text. The CLI's commands, the API's shortcuts, JSON keys and table titles all come
from these declarations through ``registry``; nothing else names a metric.

The scorer is the torchmetrics-style ``_update``: it binds to the first chunk's shapes (and
settles ``--input auto``), then turns each aligned chunk into per-example losses with the pure
kernels. Problems are ``DataProblem`` with chunk-local rows; the engine adds files and rows.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from .checks import PREDS, TARGETS, check_finite

if TYPE_CHECKING:
    from ..results.report import Report
    from ..state.evalstate import EvalState


@dataclass
class MetricChunk:
    """Per-example losses of one chunk, before weights and masks are applied by the engine."""

    losses: NDArray[np.float64]
    elements: NDArray[np.float64] | None = None  # (rows, k) per-output losses when k > 1
    companions: dict[str, NDArray[np.float64]] | None = None  # other per-example means, by name
    keep: NDArray[np.bool_] | None = None  # False for ignored rows (ignore_index)
    clamped: int = 0
    correct: NDArray[np.bool_] | None = None  # per-row top-1 hit, when the metric has one
    correct_k: NDArray[np.bool_] | None = None  # per-row top-k hit, with --topk
    ignored: int | None = None  # rows not kept because of --ignore-index (None: all not kept)
    ids: NDArray[np.intp] | None = None  # per-row target class, for the per-sequence breakdown
    predicted: NDArray[np.intp] | None = None  # per-row argmax, for the breakdown's cells
    # probabilities: the row (chunk-local) whose sum is furthest from 1, and that sum
    row_sum: tuple[int, float] | None = None
    #: --calibration/--per-class: float64 probabilities (bce: of the positive class; ce: (rows, C))
    #: and the targets they are judged against (bce: labels in [0, 1]; ce: class ids)
    probs: NDArray[np.float64] | None = None
    prob_targets: NDArray[Any] | None = None
    #: bce: the probabilities were float32 in the file (torchmetrics then bins with float32 edges)
    probs_float32: bool = False
    #: bce, when every label is exactly 0 or 1: label == 1 (the calibration bins' outcome)
    positives: NDArray[np.bool_] | None = None
    #: bce, when computed: prediction - label in float64 (the Brier score's term)
    prob_diff: NDArray[np.float64] | None = None


class Scratch:
    """Named buffers that grow to the largest chunk seen and are then reused as views."""

    def __init__(self) -> None:
        self._buffers: dict[str, NDArray[Any]] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any) -> NDArray[Any]:
        buf = self._buffers.get(name)
        rows = shape[0]
        if buf is not None and buf.shape[0] >= rows and buf.shape[1:] == shape[1:] and buf.dtype == dtype:
            return buf[:rows]
        buf = np.empty((max(rows, 1), *shape[1:]), dtype=dtype)
        self._buffers[name] = buf
        return buf[:rows]


#: the metric option a later shard's evaluation carries when its --input kind was forced from
#: the first shard's detection (the first shard's path; see ``Scorer.detected_in``)
DETECTED_IN = "input_detected_in"


class Scorer(ABC):
    """One evaluation's chunk scorer, bound to the shapes of the first chunk.

    After ``bind`` its binding fields (``input_kind``, ``input_detected``, ``outputs``,
    ``classes``, ``labels``) are what the state records; the scorer itself is never saved.
    """

    detail_columns: ClassVar[tuple[str, ...]] = ("prediction", "target")

    def __init__(self, name: str) -> None:
        self.name = name
        self.scratch = Scratch()
        self.input_kind: str | None = None
        self.input_detected = False
        #: a later shard's first shard, whose first chunk --input auto read: the kind forced here
        #: is still a guess, so a value that contradicts it is exit 2 with the --input hint
        self.detected_in: str | None = None
        self.outputs = 1
        self.classes = 0
        self.labels: tuple[int | str, ...] | None = None  # the class of each score column
        #: per-example means kept beside the headline (MSE and MAE), by name: every state of the
        #: metric has their sums, even a part with nothing scored, so reports keep their keys
        self.companions: tuple[str, ...] = ()

    @property
    def detected_where(self) -> str:
        """Where --input auto read the kind: this run's first chunk, or the first shard's."""
        return "the first chunk" if self.detected_in is None else f"the first shard ({self.detected_in})"

    def forced_kind(self, requested: str) -> None:
        """The kind given (or forced on a later shard: then still detected, see ``detected_in``)."""
        self.input_kind = requested
        self.input_detected = self.detected_in is not None

    @abstractmethod
    def bind(self, preds: NDArray[Any], targets: NDArray[Any] | None) -> None:
        """Check shapes on the first chunk and settle anything auto-detected."""

    @abstractmethod
    def compute(
        self, preds: NDArray[Any], targets: NDArray[Any] | None, overwrite: bool = False
    ) -> MetricChunk:
        """Validate one chunk and return its per-example losses.

        ``overwrite`` says the preds buffer is scratch (a reader's own buffer) that the math
        may reuse in place; arrays a caller passed in are never modified.
        """

    @abstractmethod
    def describe(
        self,
        preds: NDArray[Any],
        targets: NDArray[Any] | None,
        rows: NDArray[np.intp],
        chunk: MetricChunk,
    ) -> list[tuple[Any, ...]]:
        """Breakdown cells (``detail_columns``) for a few chunk-local rows of ``chunk``."""

    def clone(self) -> Scorer:
        """The same bound scorer with its own scratch buffers, for another worker thread."""
        twin = copy.copy(self)
        twin.scratch = Scratch()
        return twin

    def forks_alike(self) -> bool:
        """Whether a forked worker process may score with its own copy of this scorer: true
        unless the scorer learns something over the run that every worker must see (bce's text
        labels: the classes met so far, which threads share through one list)."""
        return True

    def closing_warnings(self) -> list[str]:
        """What the scorer saw over the whole run that the figures do not show (bce: the
        --positive class never met), said once at the end."""
        return []

    def locate_nonfinite(self, preds: NDArray[Any], targets: NDArray[Any] | None) -> None:
        """Called when a chunk's loss sum is not finite: raise if an input is the cause."""
        check_finite(preds, PREDS)
        if targets is not None:
            check_finite(targets, TARGETS)


@dataclass(frozen=True)
class Figure:
    """One number in the summary: a stable JSON key, a label for people, and what it means."""

    key: str
    label: str
    value: float | int | None
    meaning: str = ""
    in_table: bool = True  # some keys exist for scripts only (the k of top-k accuracy)


@dataclass(frozen=True)
class MetricOption:
    """An option of one metric: its command-line flag, Python keyword, type and default.

    ``merge_key``: the option changes the numbers, so states must agree on it to merge.
    """

    name: str  # the Python keyword (evaluate(..., name=value)) and the state's options key
    flag: str  # the command-line flag
    kind: Literal["int", "float", "str", "flag", "choice", "path"]
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    minimum: float | None = None  # smallest legal value (int/float)
    maximum: float | None = None  # largest legal value (int/float)
    merge_key: bool = False
    #: the value in its one canonical form (``--classes cat,dog`` and ``["cat", "dog"]`` alike),
    #: so states merge on what it means, not how it was typed; raises UsageError on a bad value
    parse: Callable[[Any], Any] | None = None

    def value_of(self, value: Any) -> Any:
        """``value`` checked and in canonical form: what the evaluation and the state keep."""
        self.check(value)
        return value if self.parse is None or value is None else self.parse(value)

    def normalize(self, value: Any) -> Any:
        """numpy and torch scalars (``np.float32(0.5)``, ``torch.tensor(2)``) as Python numbers;
        None for an option whose default is a value means the default."""
        if value is None:
            return self.default
        if self.kind in ("int", "float") and not isinstance(value, (int, float)):
            item = getattr(value, "item", None)
            if callable(item) and getattr(value, "ndim", 0) == 0:
                value = item()
        return value

    def check(self, value: Any) -> None:
        """Refuse a value this option cannot take (before any file is opened)."""
        from ..errors import UsageError

        if value is None or value is self.default:
            return
        if self.kind == "choice" and value not in self.choices:
            raise UsageError(f"{self.flag} must be one of {', '.join(self.choices)}, not {value}")
        if self.kind in ("int", "float"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UsageError(f"{self.flag} takes a number, not {value!r}")
            if self.kind == "int" and not float(value).is_integer():
                raise UsageError(f"{self.flag} takes a whole number, not {value!r}")
            if not math.isfinite(float(value)):
                raise UsageError(f"{self.flag} must be a finite number, not {value!r}")
            if self.minimum is not None and value < self.minimum:
                raise UsageError(f"{self.flag} must be at least {self.minimum:g}")
            if self.maximum is not None and value > self.maximum:
                raise UsageError(f"{self.flag} must be at most {self.maximum:,g}")


@dataclass(frozen=True)
class PerOutputColumn:
    """A per-output figure of a multi-output metric: its key, its table header, and how it
    follows from that output's headline value."""

    key: str
    label: str
    of_value: Callable[[float], float]


class MetricDef(ABC):
    """A metric as the rest of losscli sees it. One subclass per module under ``metrics/``."""

    name: ClassVar[str]  # the command and the JSON "metric"
    title: ClassVar[str]  # the table's title
    summary: ClassVar[str]  # --help's first line, and the command list's
    description: ClassVar[str] = ""  # the rest of --help (examples, inputs)
    headline_key: ClassVar[str]  # the headline's name among figures ("mse", "cross_entropy")
    headline_label: ClassVar[str]
    headline_meaning: ClassVar[str]
    #: "pair": PREDS [TARGETS] arguments; "tokens": --logits/--targets or --logprobs
    inputs: ClassVar[Literal["pair", "tokens"]] = "pair"
    options: ClassVar[tuple[MetricOption, ...]] = ()
    #: predictions are one column per class: a one-file input's scores are every column but the
    #: label (never a lone column found by name), and columns may be named by class labels
    wide_scores: ClassVar[bool] = False
    #: a target column whose cells are not numbers is read as text labels (class names, or
    #: bce's spam/ham), as id columns are, and handed to the scorer as an object array
    text_targets: ClassVar[bool] = False
    per_output: ClassVar[tuple[PerOutputColumn, ...]] = ()
    #: the metric module's typed Python shortcut (``losscli.mse``): a function of that name
    shortcut: ClassVar[str]

    @abstractmethod
    def scorer(self, options: Mapping[str, Any]) -> Scorer:
        """A fresh chunk scorer for one evaluation with these (validated) options."""

    def value(self, state: EvalState) -> float:
        """The headline: by default the uniform mean over outputs of the weighted mean loss."""
        return state.tallies.mean()

    @abstractmethod
    def figures(self, state: EvalState) -> list[Figure]:
        """The headline and its companions, in the order the table shows them."""

    def interpretation(self, report: Report) -> str | None:
        """A line under the table relating the figure to a baseline, if the metric has one."""
        return None

    def normalize(self, name: str, value: Any) -> Any:
        """A numpy or torch scalar given for an option, as the Python number it holds."""
        option = self.option(name)
        return value if option is None else option.normalize(value)

    def option(self, name: str) -> MetricOption | None:
        return next((o for o in self.options if o.name == name), None)

    def defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options}
