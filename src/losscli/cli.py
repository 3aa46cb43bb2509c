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
import inspect
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .cli_options import apply, common, metric_option, output_options, token_inputs
from .errors import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_SIGINT,
    EXIT_SIGPIPE,
    EXIT_SIGTERM,
    EXIT_THRESHOLD,
    EXIT_USAGE,
    LossCliError,
    UsageError,
)
from .gates import parse_gates

if TYPE_CHECKING:
    from .metrics.base import MetricDef

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")  # not OMP_NUM_THREADS: it sizes pyarrow's pool


class Terminated(BaseException):
    """Raised from the SIGTERM handler so cleanup (temp files) runs as the stack unwinds."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


class MetricGroup(click.Group):
    """The metric commands come from the registry, built when first asked for: adding a metric
    adds its command, with its options and --help, without a line here."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from .metrics import registry

        return [*registry.names(), *super().list_commands(ctx)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from .metrics import registry

        if cmd_name in registry.names():
            return _metric_command(registry.get(cmd_name))
        return super().get_command(ctx, cmd_name)


@click.group(cls=MetricGroup, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="losscli")
def cli() -> None:
    """How wrong are the predictions? Loss metrics straight from files.

    \b
      losscli mse preds.csv targets.csv
      losscli ce scores.npy labels.npy --format json
      losscli perplexity --logits logits.npy --targets ids.npy
      losscli mae results.parquet --pred-col yhat --target-col y

    Inputs are CSV/TSV (also .gz), Parquet, .npy or .npz; '-' reads stdin. Any input may
    also be a directory or a quoted glob ('preds/*.parquet', 'preds/**/*.parquet'): its files,
    in path order, are shards of one input (hive key=value folders become columns). Files are
    streamed in chunks, so their size is not limited by memory. On a terminal the output is a
    table; when piped it is TSV (see --format). Exit codes: 0 ok, 1 threshold crossed
    (--fail-above/--fail-below), 2 usage error, 3 bad input data, 4 output not written,
    5 engine unavailable (--engine dask: no scheduler within --connect-timeout).
    """


def _metric_command(definition: MetricDef) -> click.Command:
    """The command of one registered metric: its inputs, its options, then the common ones."""
    params: list[click.Parameter] = []
    if definition.inputs == "pair":
        params += [click.Argument(["preds"]), click.Argument(["targets"], required=False)]
    else:
        params += token_inputs()
    params += [metric_option(o) for o in definition.options]

    def command(**opts: Any) -> int:
        if definition.inputs == "tokens":
            if (opts["logits"] is None) == (opts["logprobs"] is None):
                raise UsageError(
                    "give either --logits (with --targets or --target-col) or --logprobs, exactly one"
                )
            preds = opts.pop("logits")
        else:
            preds = opts.pop("preds")
        return _run(definition.name, preds, opts.pop("targets"), opts)

    decorated = common(command)
    params += decorated.__click_params__[::-1]  # type: ignore[attr-defined]
    return click.Command(
        definition.name,
        callback=command,
        params=params,
        help=f"{definition.summary}\n\n{inspect.cleandoc(definition.description)}",
        short_help=definition.summary,
        context_settings=CONTEXT,
    )


def _run(metric: str, preds: str | None, targets: str | None, opts: dict[str, Any]) -> int:
    from .api import run_evaluation
    from .progress import terminal_progress

    fmt = opts.pop("fmt") or ("table" if sys.stdout.isatty() else "tsv")
    thresholds = opts.pop("fail_above"), opts.pop("fail_below")
    group_thresholds = opts.pop("fail_group_above"), opts.pop("fail_group_below")
    input_format = opts.pop("input_format")
    gates = parse_gates(opts.pop("fail_if"))
    if opts["group_by"] is None and opts["groups"] is None and group_thresholds != (None, None):
        raise UsageError("--fail-group-above/--fail-group-below need --group-by (or --groups FILE)")
    plot, html = not opts.pop("no_plot"), opts.pop("report", None)
    if html is not None:  # before any input is read: the extra is missing, or the name is wrong
        from .htmlreport import check_available

        html = check_available(html)
    report = run_evaluation(metric, preds, targets, progress=terminal_progress(), fmt=input_format, **opts)
    values = _gate_values(report, gates)
    code = _show(report, fmt, thresholds, to_stderr=opts["per_example"] == "-", plot=plot, html=html)
    return _expression_gate(gates, values, _group_gate(report, group_thresholds, code))


def _gate_values(report: Any, gates: list[Any]) -> dict[str, list[float]]:
    """The report's numbers for --fail-if, with unknown keys refused (exit 2) before printing."""
    from .gates import check_keys, report_values

    if not gates:
        return {}
    values = report_values(report)
    check_keys(gates, values)
    return values


def _expression_gate(gates: list[Any], values: dict[str, list[float]], code: int) -> int:
    """--fail-if: exit 1 naming every gate that fired."""
    from .gates import fired

    lines = fired(gates, values) if gates else []
    for line in lines:
        click.echo(f"losscli: {line}", err=True)
    return EXIT_THRESHOLD if lines else code


def _group_gate(report: Any, thresholds: tuple[float | None, float | None], code: int) -> int:
    """--fail-group-above/--fail-group-below: exit 1 naming the failing groups (capped)."""
    from .results.groups import failing_groups

    above, below = thresholds
    if above is None and below is None:
        return code
    if report.groups is None:
        raise UsageError("--fail-group-above/--fail-group-below need a state with groups (--group-by)")
    count, failing = failing_groups(report.groups, above, below)
    if count:
        click.echo(f"losscli: {report.metric} fails in {count} group(s): {'; '.join(failing)}", err=True)
        return EXIT_THRESHOLD
    return code


def _show(
    report: Any,
    fmt: str,
    thresholds: tuple[float | None, float | None],
    to_stderr: bool = False,
    plot: bool = True,
    html: str | None = None,
) -> int:
    """Warnings and notes on stderr, the report on stdout (and --report's file), then the
    threshold's exit code."""
    if html is not None:
        from .htmlreport import write_report

        write_report(report, html)
    for warning in report.warnings:
        click.echo(f"losscli: warning: {warning}", err=True)
    for note in report.notes:
        click.echo(f"losscli: note: {note}", err=True)
    if report.input_detected and fmt != "table":  # the table has its own "input" row
        click.echo(f"losscli: note: --input auto read the predictions as {report.input_kind}", err=True)
    _print_report(report, fmt, to_stderr, plot)
    value, (above, below) = report.value, thresholds
    if value != value and (above is not None or below is not None):  # NaN: an empty saved part
        click.echo(f"losscli: {report.metric} has no value (nothing was scored) to compare", err=True)
        return EXIT_THRESHOLD
    if above is not None and not value <= above:
        click.echo(f"losscli: {report.metric} {value!r} is above --fail-above {above!r}", err=True)
        return EXIT_THRESHOLD
    if below is not None and not value >= below:
        click.echo(f"losscli: {report.metric} {value!r} is below --fail-below {below!r}", err=True)
        return EXIT_THRESHOLD
    return EXIT_OK


def _print_report(report: Any, fmt: str, to_stderr: bool, plot: bool = True) -> None:
    """Render in full, then write with ``rawout`` so a reader that leaves early is noticed.
    The histogram only on a terminal (never piped, never with --no-plot)."""
    from .rawout import write_text

    stream = sys.stderr if to_stderr else sys.stdout
    if fmt == "table":
        from rich.console import Console

        from .render.table import report_renderable

        console = Console(file=stream, soft_wrap=False)  # the stream's width, colours, encoding
        with console.capture() as captured:
            console.print(report_renderable(report))
            if plot and stream.isatty():
                from .render.plot import plots_renderable

                for extra in plots_renderable(report):
                    console.print(extra)
        text = captured.get()
    else:
        from .render.machine import render_machine

        text = render_machine(report, fmt)
    write_text(stream, text)


@cli.command(context_settings=CONTEXT)
@click.argument("states", nargs=-1, required=True, metavar="STATE [STATE...]")
@apply(output_options("Write the merged state to PATH."))
def merge(states: tuple[str, ...], **opts: Any) -> int:
    """Report the evaluation of several parts, from their saved states (--save-state).

    \b
    Example: evaluate two halves separately (the second numbered from row 1000), then together:
      $ losscli mse part1.csv --save-state a.state
      $ losscli mse part2.csv --row-offset 1000 --save-state b.state
      $ losscli merge a.state b.state

    The report is the one a single run over all the parts would print: the same figures, the
    same worst rows. States of different metrics or incompatible options are refused (exit 3).
    """
    from .api import merge_states
    from .options import output_path
    from .results.report import build_report

    fmt = opts["fmt"] or ("table" if sys.stdout.isatty() else "tsv")
    gates = parse_gates(opts["fail_if"])
    plot, html = not opts["no_plot"], opts.get("report")
    if html is not None:
        from .htmlreport import check_available

        html = check_available(html)
    from .compare.command import is_comparison, merge_comparisons

    if is_comparison(states):  # states of `losscli compare --save-state`
        return merge_comparisons(states, {**opts, "report": html}, fmt, gates)
    save = None if opts["save_state"] is None else output_path(opts["save_state"], "--save-state")
    state, warnings = merge_states(states)
    if save is not None:
        state.save(save)
    report = build_report(state, opts["top"])
    report.warnings = [*warnings, *report.warnings]
    values = _gate_values(report, gates)
    code = _show(report, fmt, (opts["fail_above"], opts["fail_below"]), plot=plot, html=html)
    code = _group_gate(report, (opts["fail_group_above"], opts["fail_group_below"]), code)
    return _expression_gate(gates, values, code)


def _compare_group() -> click.Group:
    from .compare.command import HELP, CompareGroup

    return CompareGroup(
        "compare",
        help=HELP,
        short_help="Is model B better than model A? Paired tests.",
        context_settings=CONTEXT,
    )


cli.add_command(_compare_group())


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn every outcome into an exit code and at most one line."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    if hasattr(signal, "SIGXFSZ"):  # a file-size limit (ulimit -f) becomes EFBIG: exit 4, temp removed
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    # losscli runs its own worker threads; BLAS threads on top of them (numpy's OpenBLAS
    # sums rows of logits) would fight over the same cores. Set before numpy is imported.
    for var in BLAS_THREAD_VARS:
        os.environ[var] = "1"
    from . import owner

    owner.CLI = True  # this process is ours: .npy workers may be forked processes (engine/forked.py)
    if sys.stderr is None:  # started with stderr closed: warnings and errors have nowhere to go
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (the process's stderr until it exits)
    if sys.stdout is None:  # started with stdout closed (`>&-`): no report can be written
        _stderr_line("losscli: error: stdout is closed: nothing can be written (redirect it to a file)")
        sys.exit(EXIT_OUTPUT)
    code = _outcome(argv)
    _abort_outputs()  # nothing is left on success; after a signal, no temporary file survives
    if code == EXIT_SIGPIPE:
        _silence_stdout()
    sys.exit(code)


def _invoke(argv: list[str] | None) -> int:
    """Parse and run the command, without click's ``main``: it turns a closed stdout (EPIPE) into
    exit 1, the threshold code, and prints its own usage block; losscli answers both itself."""
    args = sys.argv[1:] if argv is None else list(argv)
    from .owner import workers_choice

    if not {"-h", "--help"} & set(args):
        workers_choice()  # a misspelt LOSSCLI_WORKERS is refused, not ignored (help is still shown)
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
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            # a full disk under rich's table (the other formats' writers say this themselves)
            _stderr_line(f"losscli: error: stdout: write failed ({exc.strerror or exc})")
            return EXIT_OUTPUT
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
        if stream is None:  # started with the descriptor closed
            continue
        with contextlib.suppress(OSError):  # EPIPE was handled in main; nothing left to say
            stream.flush()
    os._exit(code)


def _stderr_line(line: str) -> None:
    if sys.stderr is None:  # started with stderr closed: nowhere to say it
        return
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
