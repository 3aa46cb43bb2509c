"""``losscli compare METRIC TARGETS PREDS_A PREDS_B [...]``: a click group with one command per
metric, so each takes that metric's own options (``losscli compare ce --help``)."""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import click

from ..ci_options import DEFAULT_SEED  # one default seed for --ci --bootstrap and compare (13)
from ..cli_options import column_options, fail_if_option, group_options, metric_option, reading_options
from ..errors import EXIT_OK, EXIT_THRESHOLD, UsageError

TESTS = ("t", "bootstrap", "permutation")
DEFAULT_RESAMPLES = {"t": 0, "bootstrap": 1000, "permutation": 10_000}
#: options of a metric command that a comparison does not take (with what to do instead)
REFUSED = {
    "per_example": "--per-example is not taken by compare: run the metric command per model",
    "engine": "compare runs on this machine: --engine dask is not taken",
    "fail_above": "--fail-above is not taken by compare: use --fail-if 'NAME.value > X'",
    "fail_below": "--fail-below is not taken by compare: use --fail-if 'NAME.value < X'",
}

HELP = """Is model B better than model A? Paired tests of every model against the first.

\b
  losscli compare mse targets.csv a.csv b.csv
  losscli compare ce labels.npy a.npy b.npy c.npy --name A --name B --name C
  losscli compare mse y.parquet a.parquet b.parquet --fail-if-worse --margin 0.01

TARGETS comes first, then one PREDS file per model; the first model is the baseline. Every
input is streamed once, in step; the files must have the same number of rows (exit 3 names
the one that differs). Directories and globs are taken when every input is sharded alike
(shard i of each paired). Each model is scored with the metric's own options, then each
candidate's per-example loss difference from the baseline (delta = model - baseline, in the
metric's units; lower loss is better) is tested: --test t (paired t test, default), bootstrap
(paired Poisson bootstrap) or permutation (paired sign flips, as sacrebleu's --paired-ar).
With several candidates or --group-by, p-values are Holm-adjusted."""


class CompareGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        from ..metrics import registry

        return list(registry.names())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from ..metrics import registry

        if cmd_name not in registry.names():
            return None
        definition = registry.get(cmd_name)
        if definition.inputs != "pair":
            from .tokens import tokens_command

            return tokens_command(definition)
        return _compare_command(definition)


def compare_options() -> list[Any]:
    return [
        click.option(
            "--name",
            "names",
            multiple=True,
            metavar="NAME",
            help="A model's name, once per PREDS in order (default: the file names).",
        ),
        click.option(
            "--test",
            type=click.Choice(TESTS),
            default="t",
            show_default=True,
            help="t: paired t test on per-example loss differences (from streamed moments); "
            "bootstrap: paired Poisson bootstrap (percentile interval); permutation: paired "
            "approximate randomisation by sign flips (interval: the t interval).",
        ),
        click.option(
            "--resamples",
            type=click.IntRange(min=1),
            metavar="B",
            help="Replicates of --test bootstrap (default 1000) or permutation (default 10000). "
            "Cost grows with rows x B.",
        ),
        click.option(
            "--seed",
            type=int,
            default=DEFAULT_SEED,
            show_default=True,
            help="Seed of the resampling; each example's weight or sign is a function of (seed, "
            "its row, replicate), so results do not depend on chunk size or threads.",
        ),
        click.option(
            "--ci-level",
            type=click.FloatRange(0, 1, min_open=True, max_open=True),
            default=0.95,
            show_default=True,
            help="Level of the intervals; significance is two-sided at 1 - level.",
        ),
        click.option(
            "--fail-if-worse",
            is_flag=True,
            help="Exit 1 if any candidate is significantly worse than the baseline (in any group "
            "with --group-by, naming them).",
        ),
        click.option(
            "--margin",
            type=click.FloatRange(min=0),
            metavar="X",
            help="With --fail-if-worse: non-inferiority, exit 1 unless every candidate is shown "
            "worse by less than X (one-sided test at (1 - level) / 2, Holm-adjusted).",
        ),
        click.option(
            "--save-state",
            metavar="PATH",
            help="Write the comparison's state to PATH: losscli merge combines the states of parts "
            "of the data (each run with its --row-offset) into the comparison of the whole. "
            "Perplexity parts of list columns or JSON records need --sequence-offset (sequences "
            "before the part) and --row-offset (tokens before it).",
        ),
        click.option(
            "--format",
            "-f",
            "fmt",
            type=click.Choice(("table", "json", "csv", "tsv", "value")),
            help="Output format. Default: table on a terminal, tsv when piped.",
        ),
        click.option(
            "--report",
            metavar="PATH.html",
            help="Also write one self-contained HTML report of the comparison (inline SVG and CSS, "
            "no JavaScript, no network): the models with their intervals, the comparisons (delta, "
            "interval, p, verdict), per group too, and a chart of the deltas with their intervals. "
            "Needs pip install 'losscli[report]'. Written atomically.",
        ),
        fail_if_option(
            "delta, delta_low, delta_high, p_value, p_adjusted, value, value_low, value_high or n (each "
            "for every candidate: fires if any satisfies it), or NAME.KEY for one model"
        ),
    ]


def _compare_command(definition: Any) -> click.Command:
    params: list[click.Parameter] = [
        click.Argument(["targets"]),
        click.Argument(["preds"], nargs=-1, required=True),
    ]
    params += [metric_option(o) for o in definition.options]

    def command(**opts: Any) -> int:
        preds = opts.pop("preds")
        return run_compare(definition.name, list(preds), opts)

    options = [*column_options(), *group_options("TARGETS"), *reading_options(), *compare_options()]
    return build_command(definition, command, params, options, ("per_example",), HELP)


def build_command(
    definition: Any,
    command: Any,
    params: list[click.Parameter],
    options: list[Any],
    refused: tuple[str, ...],
    help_text: str,
) -> click.Command:
    """The compare command of ``definition``: its own ``params``, then the shared click
    ``options`` (decorators, in order), less the options compare does not take (``refused``)."""
    decorated: Any = command
    for option in reversed(options):
        decorated = option(decorated)
    every = [*params, *decorated.__click_params__[::-1]]
    return click.Command(
        definition.name,
        callback=command,
        params=[p for p in every if p.name not in refused],
        help=help_text,
        short_help=f"compare models by {definition.name}",
        context_settings={"max_content_width": 100},
    )


def run_compare(metric: str, preds: list[str], opts: dict[str, Any]) -> int:
    """One comparison from a command's options: printed, then its gates' exit code."""
    from .api import compare

    fmt = opts.pop("fmt") or ("table" if sys.stdout.isatty() else "tsv")
    from ..gates import parse_gates

    gates = parse_gates(opts.pop("fail_if"))
    html = opts.pop("report", None)
    if html is not None:  # before any input is read: the extra is missing, or the name is wrong
        from ..htmlreport import check_available

        html = check_available(html)
    fail_if_worse, margin = opts.pop("fail_if_worse"), opts.pop("margin")
    if margin is not None and not fail_if_worse:
        raise UsageError("--margin is the non-inferiority margin of --fail-if-worse: give both")
    if opts.get("engine") not in (None, "local"):
        raise UsageError(REFUSED["engine"])
    opts.pop("engine", None)
    report = compare(metric, opts.pop("targets"), preds, margin=margin, fail_if_worse=fail_if_worse, **opts)
    return finish(report, fmt, gates, fail_if_worse, margin, html)


def finish(
    report: Any,
    fmt: str,
    gates: list[Any],
    fail_if_worse: bool,
    margin: float | None,
    html: str | None = None,
) -> int:
    """Print the comparison (and write --report's page), then its gates' exit code (shared by
    compare and merge)."""
    from ..gates import check_keys, fired
    from .render import gate_values

    values = gate_values(report)
    if gates:
        check_keys(gates, values)
    if html is not None:
        from ..htmlreport import write_report

        write_report(report, html)
    _show(report, fmt)
    lines = fired(gates, values) if gates else []
    if fail_if_worse:
        lines += _worse_lines(report, margin)
    for line in lines:
        click.echo(f"losscli: {line}", err=True)
    return EXIT_THRESHOLD if lines else EXIT_OK


def _worse_lines(report: Any, margin: float | None) -> list[str]:
    """--fail-if-worse (and --margin): a line per failing comparison, overall and per group,
    citing what decided it: the (Holm-adjusted) p-value against its level, or too few units."""
    from ..results.groups import key_text

    out = []
    every = [(None, c, report.overall_adjustment) for c in report.comparisons]
    every += [(g.key, c, report.group_adjustment) for g in report.groups or [] for c in g.comparisons]
    units = "sequences" if report.unit == "sequence" else "examples"
    for key, c, adjustment in every:
        where = "" if key is None else f" in group {key_text(key)}"
        holm = " (Holm-adjusted)" if adjustment == "holm" else ""
        if margin is None and c.verdict == "worse":
            out.append(
                f"--fail-if-worse: {c.model} is worse than {c.baseline}{where} "
                f"(delta {c.delta:+.6g}, p{holm} {c.p_adjusted:.3g} < {1 - report.level:g})"
            )
        elif margin is not None and not c.noninferior:
            head = (
                f"--fail-if-worse --margin {margin:g}: {c.model} is not shown within {margin:g} "
                f"of {c.baseline}{where}"
            )
            if c.too_few or math.isnan(c.p_noninferiority_adjusted or math.nan):
                out.append(f"{head}: too few {units} to test ({c.n} paired)")
                continue
            end = "" if math.isnan(c.high) else f", unadjusted CI upper end {c.high:+.6g}"
            out.append(
                f"{head}: non-inferiority p{holm} {c.p_noninferiority_adjusted:.3g} is not below "
                f"{(1 - report.level) / 2:g} (delta {c.delta:+.6g}{end})"
            )
    return out


def _show(report: Any, fmt: str) -> None:
    from ..rawout import write_text

    for warning in report.warnings:
        click.echo(f"losscli: warning: {warning}", err=True)
    for note in report.notes:
        click.echo(f"losscli: note: {note}", err=True)
    if fmt == "table":
        from rich.console import Console

        from .render import report_renderable

        console = Console(file=sys.stdout, soft_wrap=False)
        with console.capture() as captured:
            console.print(report_renderable(report))
        text = captured.get()
    else:
        from .render import render_compare

        text = render_compare(report, fmt)
    write_text(sys.stdout, text)


def default_names(paths: list[str]) -> list[str]:
    """File names without their extension; the whole path where two would be the same."""
    names = [os.path.splitext(os.path.basename(p))[0] or p for p in paths]
    if len(set(names)) < len(names):
        names = list(paths)
    if len(set(names)) < len(names):
        raise UsageError("a PREDS file is given twice: give each model once (or --name each)")
    return names


def check_level(level: float) -> None:
    if not (0.0 < level < 1.0) or math.isnan(level):
        raise UsageError("--ci-level must be between 0 and 1")


def is_comparison(paths: tuple[str, ...]) -> bool:
    """The first state file is a comparison's (the rest must then be too)."""
    from .state import is_compare_state

    return bool(paths) and is_compare_state(paths[0])


def merge_comparisons(paths: tuple[str, ...], opts: dict[str, Any], fmt: str, gates: list[Any]) -> int:
    """``losscli merge`` of comparison states: one comparison of all the parts, judged at the level,
    margin and --fail-if-worse the parts were run with."""
    from ..options import output_path
    from ..state.plain import StateFileError
    from .state import is_compare_state, load_compare, merge_compare, report_of, save_compare

    for option in ("fail_above", "fail_below", "fail_group_above", "fail_group_below"):
        if opts.get(option) is not None:
            raise UsageError(
                f"--{option.replace('_', '-')} is not taken for comparison states: use --fail-if"
            )
    for path in paths[1:]:
        if os.path.exists(path) and not is_compare_state(path):
            raise StateFileError(
                "is not a comparison state, but the first file is: merge comparisons alone", path=path
            )
    save = None if opts.get("save_state") is None else output_path(opts["save_state"], "--save-state")
    state = merge_compare([load_compare(p) for p in paths], list(paths))
    if save is not None:
        save_compare(state, save)
    return finish(report_of(state), fmt, gates, state.fail_if_worse, state.margin, opts.get("report"))
