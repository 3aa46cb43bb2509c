"""The command line: click options -> ``api.evaluate`` -> render; errors -> exit codes.

This is the only module that knows click and the only one that exits. Heavy imports (numpy,
pyarrow, rich) happen inside the commands so ``losscli --version`` starts fast.

Exit codes: 0 ok, 1 a --fail-above/--fail-below threshold was crossed, 2 usage error,
3 bad input data, 4 an output file could not be written, 70 internal error,
130 interrupted (Ctrl-C), 141 stdout closed early (``| head``), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from . import __version__
from .errors import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGPIPE,
    EXIT_SIGTERM,
    EXIT_THRESHOLD,
    LossCliError,
)

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")  # not OMP_NUM_THREADS: it sizes pyarrow's pool
OUTPUT_FORMATS = ("table", "json", "csv", "tsv", "value")


class Terminated(BaseException):
    """Raised from the SIGTERM handler so cleanup (temp files) runs as the stack unwinds."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="losscli")
def cli() -> None:
    """How wrong are the predictions? Loss metrics straight from files.

    \b
      losscli mse preds.csv targets.csv
      losscli ce scores.npy labels.npy --format json
      losscli perplexity --logits logits.npy --targets ids.npy
      losscli mae results.parquet --pred-col yhat --target-col y

    Inputs are CSV/TSV (also .gz), Parquet, .npy or .npz; '-' reads stdin. Files are
    streamed in chunks, so their size is not limited by memory. On a terminal the output is a
    table; when piped it is TSV (see --format). Exit codes: 0 ok, 1 threshold crossed
    (--fail-above/--fail-below), 2 usage error, 3 bad input data, 4 output not written.
    """


def _common(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options every metric command shares, in the order --help lists them."""
    options = [
        click.option(
            "--pred-col",
            metavar="COL",
            help="Prediction column(s): a name or 0-based index; commas for several.",
        ),
        click.option("--target-col", metavar="COL", help="Target column(s), as --pred-col."),
        click.option(
            "--weights",
            "weights",
            metavar="FILE",
            help="Per-example weights (weighted mean, like scikit-learn's sample_weight).",
        ),
        click.option(
            "--weight-col",
            metavar="COL",
            help="Weights column (in --weights FILE, or in PREDS when --weights is not given).",
        ),
        click.option(
            "--chunk-size",
            type=int,
            metavar="ROWS",
            help="Rows per chunk (default: about 2.5 MB of the widest input, at most 65,536 rows).",
        ),
        click.option(
            "--nan",
            type=click.Choice(["error", "skip"]),
            default="error",
            show_default=True,
            help="NaN/inf in the inputs: an error, or skip those rows (counted).",
        ),
        click.option(
            "--format",
            "-f",
            "fmt",
            type=click.Choice(OUTPUT_FORMATS),
            help="Output format. Default: table on a terminal, tsv when piped.",
        ),
        click.option(
            "--top",
            type=int,
            default=10,
            show_default=True,
            metavar="K",
            help="Worst examples to show when there are more than 20.",
        ),
        click.option(
            "--per-example",
            metavar="PATH",
            help="Write every example's loss (row, loss) to .csv, .parquet or .npy; '-' is CSV on stdout.",
        ),
        click.option(
            "--fail-above",
            type=float,
            metavar="X",
            help="Exit 1 if the headline value is above X (after printing).",
        ),
        click.option(
            "--fail-below",
            type=float,
            metavar="X",
            help="Exit 1 if the headline value is below X (after printing).",
        ),
        click.option(
            "--threads",
            type=click.IntRange(min=1),
            metavar="N",
            help="Worker threads for seekable inputs (.npy); default: 2 on a machine with 2+ cores.",
        ),
        click.option(
            "--input-format",
            type=click.Choice(["csv", "tsv", "parquet", "npy", "npz"]),
            help="Read every file as this format, whatever its extension.",
        ),
        click.option(
            "--header/--no-header",
            "header",
            default=None,
            help="CSV/TSV: the first row is a header / is data. Default: detected (pandas' "
            "0,1,... header too); a warning says when the file could not tell.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _input_option(choices: tuple[str, ...], help_text: str) -> Callable[..., Any]:
    return click.option(
        "--input", "input_kind", type=click.Choice(choices), default="auto", show_default=True, help=help_text
    )


def _ignore_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--ignore-index",
        type=int,
        default=-100,
        show_default=True,
        help="Target value that marks rows to skip (as in torch).",
    )(f)


LM_OPTIONS = ("logprobs", "shift", "topk", "seq_col", "text", "n_bytes", "n_words")


def _run(metric: str, preds: str | None, targets: str | None, opts: dict[str, Any]) -> int:
    from .api import evaluate
    from .progress import terminal_progress

    fmt = opts["fmt"] or ("table" if sys.stdout.isatty() else "tsv")
    per_example = opts["per_example"]
    if preds == "-" and targets == "-":
        raise click.UsageError("only one input can come from stdin")
    report = evaluate(
        metric,
        preds,
        targets,
        weights=opts["weights"],
        pred_col=opts["pred_col"],
        target_col=opts["target_col"],
        weight_col=opts["weight_col"],
        input=opts.get("input_kind", "auto"),
        ignore_index=opts.get("ignore_index", -100),
        chunk_size=opts["chunk_size"],
        nan=opts["nan"],
        top=opts["top"],
        per_example=per_example,
        fmt=opts["input_format"],
        progress=terminal_progress(),
        threads=opts["threads"],
        header=opts["header"],
        **{k: opts[k] for k in LM_OPTIONS if opts.get(k) not in (None, False)},
    )
    to_stderr = per_example == "-"
    for warning in report.warnings:
        click.echo(f"losscli: warning: {warning}", err=True)
    if report.input_detected and fmt != "table":  # the table has its own "input" row
        click.echo(f"losscli: note: --input auto read the predictions as {report.input_kind}", err=True)
    _print_report(report, fmt, to_stderr)
    value = report.value
    if opts["fail_above"] is not None and value > opts["fail_above"]:
        click.echo(f"losscli: {metric} {value!r} is above --fail-above {opts['fail_above']!r}", err=True)
        return EXIT_THRESHOLD
    if opts["fail_below"] is not None and value < opts["fail_below"]:
        click.echo(f"losscli: {metric} {value!r} is below --fail-below {opts['fail_below']!r}", err=True)
        return EXIT_THRESHOLD
    return EXIT_OK


def _print_report(report: Any, fmt: str, to_stderr: bool) -> None:
    stream = sys.stderr if to_stderr else sys.stdout
    if fmt == "table":
        from rich.console import Console

        from .render.table import report_renderable

        Console(file=stream, soft_wrap=False).print(report_renderable(report))
    else:
        from .render.machine import render_machine

        stream.write(render_machine(report, fmt))
    stream.flush()


@cli.command(context_settings=CONTEXT)
@click.argument("preds")
@click.argument("targets", required=False)
@_common
def mse(preds: str, targets: str | None, **opts: Any) -> int:
    """Mean squared error, mean of (prediction - target)^2, with RMSE beside it.

    \b
    Example (the lesson's exercise 1):
      $ losscli mse sample_data/exercise1_preds.csv sample_data/exercise1_targets.csv
      MSE 0.25, RMSE 0.5 over 3 examples

    PREDS and TARGETS hold one value per row, or k values per row for multi-output
    regression (the mean over every element; the table adds a row per output). One file with
    both columns works too: losscli mse results.parquet --pred-col yhat --target-col y
    """
    return _run("mse", preds, targets, opts)


@cli.command(context_settings=CONTEXT)
@click.argument("preds")
@click.argument("targets", required=False)
@_common
def mae(preds: str, targets: str | None, **opts: Any) -> int:
    """Mean absolute error, mean of |prediction - target|.

    \b
    Example:
      $ losscli mae sample_data/exercise1_preds.csv sample_data/exercise1_targets.csv
      MAE 0.5 over 3 examples

    Same inputs as mse: 1-D values or (N, k) multi-output, two files or one file with
    --pred-col/--target-col.
    """
    return _run("mae", preds, targets, opts)


@cli.command(context_settings=CONTEXT)
@click.argument("preds")
@click.argument("targets", required=False)
@_input_option(
    ("auto", "probs", "logits"),
    "Predictions are probabilities or logits; auto decides from the first chunk and says which.",
)
@_common
def bce(preds: str, targets: str | None, **opts: Any) -> int:
    """Binary cross-entropy, -[y log p + (1 - y) log(1 - p)], in nats.

    \b
    Example:
      $ losscli bce sample_data/spam_probs.parquet --pred-col prob --target-col label
      BCE in nats, bits per example, the worst examples

    Targets are in [0, 1] (hard 0/1 labels or soft labels). From logits the stable form
    max(x, 0) - x y + log1p(exp(-|x|)) is used; from probabilities each log is clamped at
    -100 as in torch, and clamped examples are counted.
    """
    return _run("bce", preds, targets, opts)


@cli.command(context_settings=CONTEXT)
@click.argument("preds")
@click.argument("targets", required=False)
@_input_option(
    ("auto", "probs", "logits", "logprobs"),
    "Scores are probabilities, logits or log-probabilities; auto decides from the first chunk.",
)
@_ignore_option
@_common
def ce(preds: str, targets: str | None, **opts: Any) -> int:
    """Categorical cross-entropy, -sum y_c log p_c, with perplexity and bits beside it.

    \b
    Example (the lesson's exercise 2: p = 0.7 and p = 0.1 for the correct class):
      $ losscli ce sample_data/exercise2_probs.csv sample_data/exercise2_targets.csv
      row 0: 0.3567 nats, row 1: 2.303 nats

    PREDS holds (N, C) scores: a 2-D .npy, a wide CSV/Parquet whose columns are the classes,
    or a Parquet list column. TARGETS are class ids (N,) or one-hot/soft rows (N, C).
    """
    return _run("ce", preds, targets, opts)


@cli.command(context_settings=CONTEXT)
@click.option(
    "--logits",
    "logits",
    metavar="FILE",
    help="Logits (N, V) or (B, T, V) in float16/32/64; or a Parquet list column per sequence.",
)
@click.option(
    "--targets",
    "targets",
    metavar="FILE",
    help="Token ids (N,) or (B, T). Omit when --target-col names a column/array of the logits file.",
)
@click.option(
    "--logprobs",
    "logprobs",
    metavar="FILE",
    help="Instead of logits: the log-probability of each target token (.npy/.csv/.parquet/.jsonl).",
)
@click.option(
    "--shift",
    is_flag=True,
    help="Causal-LM labels: logits at position t score token t+1 (targets may be the input ids).",
)
@click.option(
    "--topk", type=click.IntRange(min=1), metavar="K", help="Also report top-K accuracy of the target id."
)
@click.option(
    "--seq-col",
    metavar="COL",
    help="Column of sequence ids (rows of a sequence contiguous), for per-sequence figures.",
)
@click.option(
    "--text",
    "text",
    metavar="FILE",
    help="The evaluated text: its UTF-8 bytes and whitespace words give bits per byte and word perplexity.",
)
@click.option(
    "--bytes", "n_bytes", type=int, metavar="N", help="Byte count of the evaluated text (instead of --text)."
)
@click.option(
    "--words", "n_words", type=int, metavar="N", help="Word count of the evaluated text (instead of --text)."
)
@_ignore_option
@_common
def perplexity(logits: str | None, targets: str | None, **opts: Any) -> int:
    """Perplexity, exp(mean token cross-entropy), with nats and bits per token.

    \b
    Example (the lesson's "Paris" example, p = 0.15, 0.9 and 0.01 over 50,000 tokens):
      $ losscli perplexity --logits sample_data/paris_logits.npy --targets sample_data/paris_targets.npy
      cross-entropy 2.2 nats/token, perplexity 9.0
    Batched, Hugging Face style (labels = input ids, padding -100):
      $ losscli perplexity --logits logits.npy --targets input_ids.npy --shift
    From an inference server's log-probabilities:
      $ losscli perplexity --logprobs completions.jsonl --text heldout.txt

    The headline is the corpus perplexity: exp of the token-weighted mean NLL. The mean of
    per-sequence perplexities is shown beside it, labelled, because it is a different number.
    The log-sum-exp runs in float32 or better (float16 logits never overflow) and memory is
    bounded by one chunk of tokens, whatever the file size.
    """
    if (logits is None) == (opts["logprobs"] is None):
        raise click.UsageError("give --logits (with --targets or --target-col) or --logprobs, not both")
    return _run("perplexity", logits, targets, opts)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn every outcome into an exit code and at most one line."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    if hasattr(signal, "SIGXFSZ"):  # a file-size limit (ulimit -f) becomes EFBIG: exit 4, temp removed
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    # losscli runs its own worker threads; BLAS threads on top of them (numpy's OpenBLAS
    # sums rows of logits) would fight over the same cores. Set before numpy is imported.
    for var in BLAS_THREAD_VARS:
        os.environ[var] = "1"
    code = EXIT_OK
    try:
        result = cli.main(args=argv, prog_name="losscli", standalone_mode=False)
        code = result if isinstance(result, int) else EXIT_OK
        sys.stdout.flush()
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except click.exceptions.Abort:
        code = EXIT_SIGINT
    except LossCliError as exc:
        _error_line(str(exc))
        code = exc.exit_code
    except KeyboardInterrupt:
        code = EXIT_SIGINT
    except Terminated:
        code = EXIT_SIGTERM
    except BrokenPipeError:
        code = EXIT_SIGPIPE
    except Exception as exc:
        if os.environ.get("LOSSCLI_DEBUG"):
            raise
        _error_line(f"internal error: {type(exc).__name__}: {exc} (set LOSSCLI_DEBUG=1 for a traceback)")
        code = EXIT_INTERNAL
    if code == EXIT_SIGPIPE:
        _silence_stdout()
    sys.exit(code)


def run() -> None:
    """Console entry point: ``main()``, then leave without tearing the interpreter down.

    By the time ``main`` returns, the result is written and flushed and every output file is
    closed and renamed (or removed). Finalisation would still free every module and join idle
    pool threads: 20-40 ms per run once numpy and pyarrow are loaded, a sixth of a small job.
    A ``LOSSCLI_DEBUG`` traceback (any exception but SystemExit) still exits the normal way.
    """
    try:
        main()
        code = EXIT_OK
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else EXIT_OK if exc.code is None else 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # EPIPE was handled in main; nothing left to say
            stream.flush()
    os._exit(code)


def _error_line(text: str) -> None:
    try:
        sys.stderr.write(f"losscli: error: {text}\n")
        sys.stderr.flush()
    except (BrokenPipeError, OSError):
        pass


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
