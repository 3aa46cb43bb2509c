"""Perplexity: exp(mean token cross-entropy), from logits and token ids or from gathered
log-probabilities, with nats and bits per token, per-sequence figures and text-level rates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataProblem
from ..options import IGNORE_INDEX_DEFAULT
from ..sequences import NULL_LOGPROB
from .base import Figure, MetricChunk, MetricDef, MetricOption, Scorer
from .ce import IGNORE_INDEX, CEScorer
from .checks import LOGPROB_TOLERANCE, PREDS, check_logprobs, squeeze_single
from .common import LN2, accuracy_figures, interpret_perplexity, safe_exp, sequence_figures
from .shortcuts import Source, pair_shortcut

if TYPE_CHECKING:
    from ..results.report import Report
    from ..state.evalstate import EvalState

OPTIONS = (
    MetricOption(
        "shift",
        "--shift",
        "flag",
        False,
        "Causal-LM labels: logits at position t score token t+1 (targets may be the input ids). "
        "A per-token --groups/--group-by key is taken at the logit position t, not at the scored "
        "token t+1 (the key of row t groups the loss row t scores).",
        merge_key=True,  # shifted and unshifted parts score different tokens
    ),
    MetricOption(
        "topk",
        "--topk",
        "int",
        None,
        "Also report top-K accuracy of the target id.",
        metavar="K",
        minimum=1,
        merge_key=True,
    ),
    MetricOption(
        "seq_col",
        "--seq-col",
        "str",
        None,
        "Column of sequence ids (rows of a sequence contiguous), for per-sequence figures.",
        metavar="COL",
    ),
    MetricOption(
        "text",
        "--text",
        "path",
        None,
        "The evaluated text, for bits per byte and word perplexity. Counted as lm-evaluation-harness "
        "does: UTF-8 bytes, and words = len(re.split(r'\\s+', text)), so leading/trailing whitespace "
        "counts as an empty word; a UTF-8 BOM is not counted.",
        metavar="FILE",
    ),
    MetricOption(
        "n_bytes",
        "--bytes",
        "int",
        None,
        "Byte count of the evaluated text (instead of --text).",
        metavar="N",
    ),
    MetricOption(
        "n_words",
        "--words",
        "int",
        None,
        "Word count of the evaluated text (instead of --text).",
        metavar="N",
    ),
    MetricOption(
        "sequence_offset",
        "--sequence-offset",
        "int",
        None,
        "Index of this part's first sequence in the whole data, to number sequences as in the "
        "concatenation when states are merged (default: from --row-offset when sequences have one "
        "length, else 0).",
        metavar="N",
        minimum=0,
    ),
    MetricOption(
        "mask",
        "--mask",
        "path",
        None,
        "Attention mask (B, T) or flat, 1 = real token, 0 = padding, as tokenizers return it: "
        "padding is not scored and is counted as ignored (with --shift, the mask of the scored "
        "token t+1 decides). A .npy/.npz/Parquet file; --mask-col names its array or column.",
        metavar="FILE",
    ),
    MetricOption(
        "mask_col",
        "--mask-col",
        "str",
        None,
        "The attention mask's array or column (e.g. attention_mask): in --mask FILE, else in "
        "the token ids' file. An array or column named attention_mask beside the ids is applied "
        "without it (said in a note).",
        metavar="NAME",
    ),
    MetricOption(
        "no_mask",
        "--no-mask",
        "flag",
        False,
        "Score padding too: do not apply the attention_mask found beside the token ids.",
        merge_key=True,  # padding scored or not gives different numbers
    ),
    IGNORE_INDEX,
    MetricOption(
        "pad_value",
        "--pad-value",
        "float",
        None,
        "Log-probabilities equal to V are padding: not scored, counted as ignored (a (B, T) array "
        "of ragged sequences). V must never occur as a real log-prob: 0.0 is probability 1, so a "
        "positive value such as 1.0 is safe (real log-probs are <= 0); NaN and -inf are refused.",
        metavar="V",
        merge_key=True,  # padding excluded or scored gives different numbers
    ),
)

#: a positive "log-prob" is most often padding of a (B, T) array: say how to mark it
PAD_HINT = ": pass natural-log probabilities (<= 0); if it marks padding, give it as --pad-value"


class LogprobScorer(Scorer):
    """Perplexity from log-probabilities of the target tokens, already gathered: loss = -lp.

    This is what inference servers return, so nobody has to store logits. There are no
    targets: the preds column is the natural-log probability of each scored token.
    """

    detail_columns = ("log-prob",)

    def __init__(self, name: str, pad_value: float | None = None, nulls: bool = False) -> None:
        super().__init__(name)
        self.input_kind = "logprobs"
        #: --pad-value: positions holding it are padding, not tokens (kept out like --ignore-index)
        self.pad_value = pad_value
        #: the JSON reader marks a null log-prob's row with NULL_LOGPROB: kept out the same way
        self.null_value = NULL_LOGPROB if nulls else None

    def bind(self, preds: NDArray[Any], targets: NDArray[Any] | None) -> None:
        if squeeze_single(preds).ndim != 1:
            raise DataProblem(PREDS, None, "log-probabilities must be one value per token")

    def compute(
        self, preds: NDArray[Any], targets: NDArray[Any] | None, overwrite: bool = False
    ) -> MetricChunk:
        lp = squeeze_single(preds)
        out = self.scratch.get("loss", (len(lp),), np.float64)
        if self.pad_value is not None or self.null_value is not None:
            pad = self.scratch.get("pad", (len(lp),), np.bool_)
            marks = [m for m in (self.pad_value, self.null_value) if m is not None]
            np.equal(lp, marks[0], out=pad)
            if len(marks) > 1:
                pad |= lp == marks[1]
            if pad.any():
                return self._padded(lp, pad, out)
        check_logprobs(lp, PREDS, PAD_HINT)  # the same rule and tolerance as ce --input logprobs
        np.negative(lp, out=out)
        return MetricChunk(out)

    def _padded(self, lp: NDArray[Any], pad: NDArray[np.bool_], out: NDArray[np.float64]) -> MetricChunk:
        """Losses with padded positions kept out (``keep``), so the evaluator counts them as
        ignored, as CEScorer's --ignore-index rows. The pad value (1.0, say) is not a log-prob,
        so the check looks only at the other positions: it runs on the losses, and finds the
        offending row in the log-probs only when one fails (NaN compares False)."""
        np.negative(lp, out=out)
        np.putmask(out, pad, 0.0)
        if not out.min() >= -LOGPROB_TOLERANCE:
            check_logprobs(np.where(pad, lp.dtype.type(0), lp), PREDS, PAD_HINT)
        keep = np.logical_not(pad, out=self.scratch.get("keep", (len(lp),), np.bool_))
        return MetricChunk(out, keep=keep)

    def locate_nonfinite(self, preds: NDArray[Any], targets: NDArray[Any] | None) -> None:
        """-inf (probability 0) is a legitimate infinite loss; NaN is never a log-probability."""
        lp = squeeze_single(preds)
        nan = np.isnan(lp)
        if nan.any():
            raise DataProblem(PREDS, int(np.argmax(nan)), "nan is not a log-probability (use --nan skip)")

    def describe(
        self,
        preds: NDArray[Any],
        targets: NDArray[Any] | None,
        rows: NDArray[np.intp],
        chunk: MetricChunk,
    ) -> list[tuple[Any, ...]]:
        lp = squeeze_single(preds)
        return [(float(lp[r]),) for r in rows]


class Perplexity(MetricDef):
    name = "perplexity"
    shortcut = "perplexity"
    title = "Perplexity"
    summary = "Perplexity, exp(mean token cross-entropy), with nats and bits per token."
    description = """\b
    Example (sample_data's "Paris" example: p = 0.15, 0.9 and 0.01 over 50,000 tokens):
      $ losscli perplexity --logits sample_data/paris_logits.npy --targets sample_data/paris_targets.npy
      cross-entropy 2.2 nats/token, perplexity 9.0
    Batched, Hugging Face style (labels = input ids, padding -100):
      $ losscli perplexity --logits logits.npy --targets input_ids.npy --shift
    From an inference server's log-probabilities:
      $ losscli perplexity --logprobs completions.jsonl --text heldout.txt
    (B, T) log-probs gathered from logits (a 2-D .npy/.npz is B sequences of T tokens),
    ragged sequences padded with 1.0, which is never a real log-prob:
      $ losscli perplexity --logprobs lp.npy --pad-value 1.0

    The headline is the corpus perplexity: exp of the token-weighted mean NLL. The mean of
    per-sequence perplexities is shown beside it, labelled, because it is a different number.
    The log-sum-exp runs in float32 or better (float16 logits never overflow) and memory is
    bounded by one chunk of tokens, whatever the file size."""
    headline_key = "perplexity"
    headline_label = "perplexity"
    headline_meaning = "exp(cross-entropy): effective number of equally likely choices"
    inputs = "tokens"
    options = OPTIONS

    def scorer(self, options: Mapping[str, Any]) -> Scorer:
        if options.get("logprobs"):
            return LogprobScorer(self.name, options.get("pad_value"), bool(options.get("null_logprobs")))
        return CEScorer(
            self.name, "logits", options.get("ignore_index", IGNORE_INDEX_DEFAULT), options.get("topk")
        )

    def value(self, state: EvalState) -> float:
        return safe_exp(state.tallies.mean())

    def figures(self, state: EvalState) -> list[Figure]:
        t, h = state.tallies, state.header
        ce = t.mean()
        figs = [
            Figure("value", self.headline_label, safe_exp(ce), self.headline_meaning),
            Figure("cross_entropy", "cross-entropy", ce, "nats per token"),
            Figure("bits_per_token", "bits per token", ce / LN2, "cross-entropy / ln 2"),
            Figure("n", "tokens scored", t.n, "ignored tokens are not counted"),
            Figure(
                "ignored",
                "tokens ignored",
                t.ignored,
                "--ignore-index, --mask 0 or --pad-value (padding, prompt), null log-probs",
            ),
            *sequence_figures(state),
        ]
        total_nll = ce * t.n
        if h.text_bytes:
            figs.append(
                Figure(
                    "bits_per_byte",
                    "bits per byte",
                    total_nll / (h.text_bytes * LN2),
                    f"total NLL / ({h.text_bytes:,} bytes x ln 2)",
                )
            )
            figs.append(
                Figure(
                    "byte_perplexity",
                    "byte perplexity",
                    safe_exp(total_nll / h.text_bytes),
                    "exp(total NLL / bytes)",
                )
            )
        if h.text_words:
            figs.append(
                Figure(
                    "word_perplexity",
                    "word perplexity",
                    safe_exp(total_nll / h.text_words),
                    f"exp(total NLL / {h.text_words:,} words)",
                )
            )
        figs += accuracy_figures(state, "top1_accuracy", h.metric_options.get("topk"))
        vocab = h.binding.classes if h.binding is not None else 0
        if vocab >= 2:
            figs.append(
                Figure(
                    "vocab_size", "vocabulary", vocab, "logit columns; a uniform guess has this perplexity"
                )
            )
        return figs

    def interpretation(self, report: Report) -> str | None:
        vocab = report.figure_or_none("vocab_size")
        return interpret_perplexity(report.value, choices=vocab if isinstance(vocab, int) else None)


def perplexity(
    logits: Source | None = None,
    targets: Source | None = None,
    ignore_index: int = IGNORE_INDEX_DEFAULT,
    *,
    y_pred: Source | None = None,
    y_true: Source | None = None,
    nan: str = "error",
    shift: bool = False,
    mask: Source | None = None,
) -> float:
    """exp(mean token cross-entropy) from (N, V) or (B, T, V) ``logits`` and token ids
    ``targets`` (logits first; ``y_pred=``/``y_true=`` accepted); ``shift``: causal-LM labels
    (logits at t score token t+1); ``mask``: the tokenizer's attention mask (0 = padding)."""
    options: dict[str, Any] = {"ignore_index": ignore_index, "nan": nan, "shift": shift}
    if mask is not None:
        options["mask"] = mask
    return pair_shortcut("perplexity", logits, targets, None, y_pred, y_true, **options)
