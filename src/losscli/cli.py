"""The command line: click options -> ``api.run_evaluation`` -> render; errors -> exit codes.

This is the only module that knows click and the only one that exits. Heavy imports (numpy,
pyarrow, rich) happen inside the commands so ``losscli --version`` starts fast.

Exit codes: 0 ok, 1 a --fail-above/--fail-below threshold was crossed, 2 usage error,
3 bad input data, 4 an output file could not be written, 70 internal error,
130 interrupted (Ctrl-C), 141 stdout closed early (``| head``), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import contextlib
import errno
import math
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
    EXIT_USAGE,
    LossCliError,
    UsageError,
)

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")  # not OMP_NUM_THREADS: it sizes pyarrow's pool
OUTPUT_FORMATS = ("table", "json", "csv", "tsv", "value")


def _comparable(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A threshold must be comparable: ``nan`` passes no threshold and fails none, so it is refused."""
    if value is not None and math.isnan(value):
        raise click.BadParameter("nan is not a threshold; give a number (or inf, -inf)")
    return value


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
            callback=_comparable,
            metavar="X",
            help="Exit 1 if the headline value is above X (after printing).",
        ),
        click.option(
            "--fail-below",
            type=float,
            callback=_comparable,
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
    from .api import run_evaluation
    from .progress import terminal_progress

    fmt = opts["fmt"] or ("table" if sys.stdout.isatty() else "tsv")
    per_example = opts["per_example"]
    report = run_evaluation(
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
        # every LM option the command has, as given: 0 is a value (--words 0 is refused in
        # lm.text_size), not "unset" (0 == False, so a `not in (None, False)` filter dropped it)
        **{k: opts[k] for k in LM_OPTIONS if k in opts},
    )
    to_stderr = per_example == "-"
    for warning in report.warnings:
        click.echo(f"losscli: warning: {warning}", err=True)
    for note in report.notes:
        click.echo(f"losscli: note: {note}", err=True)
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
    """Render in full, then write with ``rawout`` so a reader that leaves early is noticed."""
    from .rawout import write_text

    stream = sys.stderr if to_stderr else sys.stdout
    if fmt == "table":
        from rich.console import Console

        from .render.table import report_renderable

        console = Console(file=stream, soft_wrap=False)  # the stream's width, colours, encoding
        with console.capture() as captured:
            console.print(report_renderable(report))
        text = captured.get()
    else:
        from .render.machine import render_machine

        text = render_machine(report, fmt)
    write_text(stream, text)


@cli.command(context_settings=CONTEXT)
@click.argument("preds")
@click.argument("targets", required=False)
@_common
def mse(preds: str, targets: str | None, **opts: Any) -> int:
    """Mean squared error, mean of (prediction - target)^2, with RMSE beside it.

    \b
    Example (sample_data's exercise 1):
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
    "Predictions are probabilities or logits; auto decides from the first chunk and says which: "
    "all in [0, 1] is probabilities, under 90% in [0, 1] is logits, and in between (probabilities "
    "with stray values) is refused.",
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
    Example (sample_data's exercise 2: p = 0.7 and p = 0.1 for the correct class):
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
    help=(
        "The evaluated text, for bits per byte and word perplexity. Counted as lm-evaluation-harness "
        "does: UTF-8 bytes, and words = len(re.split(r'\\s+', text)), so leading/trailing whitespace "
        "counts as an empty word; a UTF-8 BOM is not counted."
    ),
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
    Example (sample_data's "Paris" example: p = 0.15, 0.9 and 0.01 over 50,000 tokens):
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
        raise UsageError("give either --logits (with --targets or --target-col) or --logprobs, exactly one")
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
    code = _outcome(argv)
    _abort_outputs()  # nothing is left on success; after a signal, no temporary file survives
    if code == EXIT_SIGPIPE:
        _silence_stdout()
    sys.exit(code)


def _invoke(argv: list[str] | None) -> int:
    """Parse and run the command, without click's ``main``: it turns a closed stdout (EPIPE) into
    exit 1, the threshold code, and prints its own usage block; losscli answers both itself."""
    args = sys.argv[1:] if argv is None else list(argv)
    cli._main_shell_completion({}, "losscli")  # _LOSSCLI_COMPLETE=bash_source, as cli.main offers
    with cli.make_context("losscli", args) as ctx:
        result = cli.invoke(ctx)
    return result if isinstance(result, int) else EXIT_OK


def _outcome(argv: list[str] | None) -> int:
    """The exit code of one run; every failure says at most one line on stderr."""
    try:
        code = _invoke(argv)
        sys.stdout.flush()
        return code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        return _usage_error(exc)
    except (KeyboardInterrupt, click.exceptions.Abort):
        _stop_signals()
        _abort_outputs()
        _stderr_line("losscli: interrupted")
        return EXIT_SIGINT
    except Terminated:
        _stop_signals()
        _abort_outputs()
        return EXIT_SIGTERM
    except LossCliError as exc:
        _stderr_line("losscli: error: " + " ".join(str(exc).splitlines()))
        return exc.exit_code
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
            return EXIT_SIGPIPE  # stdout (or stderr) closed early, from any writer on any thread
        if os.environ.get("LOSSCLI_DEBUG"):
            raise
        name = type(exc).__name__
        _stderr_line(f"losscli: error: internal error: {name}: {exc} (set LOSSCLI_DEBUG=1 for a traceback)")
        return EXIT_INTERNAL


def _usage_error(exc: click.ClickException) -> int:
    """One line, ``losscli: error: ...``, exit 2: for losscli's own usage errors and click's.

    Click's parse errors (unknown option, missing argument, bad value) keep a short hint to the
    command's --help, on the same line, instead of click's multi-line usage block. ``losscli``
    with no command still prints the help, as click does.
    """
    no_args = getattr(click.exceptions, "NoArgsIsHelpError", None)
    if no_args is not None and isinstance(exc, no_args):
        exc.show()
        return EXIT_USAGE
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:  # click's own parse error: say where the options are listed
        stop = "" if message.endswith((".", "?", "!")) else "."
        message = f"{message}{stop} Try '{ctx.command_path} --help'."
    _stderr_line(f"losscli: error: {message}")
    return EXIT_USAGE


def _stop_signals() -> None:
    """After the first Ctrl-C/SIGTERM, a second one must not cut the cleanup short."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError):
            signal.signal(sig, signal.SIG_IGN)


def _abort_outputs() -> None:
    """Remove temporary --per-example files still open (only if that module was ever loaded)."""
    module = sys.modules.get(f"{__package__}.per_example")
    if module is not None:
        module.abort_all()


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


def _stderr_line(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
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
