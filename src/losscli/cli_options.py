"""The click options of the commands, declared once: those every metric command shares, the
output options that ``merge`` shares too, and a metric's own options from its declaration.

Click only: nothing here reads a file or exits. The choices come from where the formats live
(the readers and the renderers), so a new format is one change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from .render import FORMATS as OUTPUT_FORMATS

if TYPE_CHECKING:
    from .metrics.base import MetricOption

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def comparable(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A threshold must be comparable: ``nan`` passes no threshold and fails none, so it is refused."""
    if value is not None and math.isnan(value):
        raise click.BadParameter("nan is not a threshold; give a number (or inf, -inf)")
    return value


def apply(options: Sequence[Any]) -> Decorator:
    """Apply click option decorators in the order --help lists them."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def common(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options every metric command shares, in the order --help lists them."""
    state_help = "Write the run's state to PATH (for losscli merge)."
    from .ci_options import click_options as ci_click_options

    return apply(
        [
            *column_options(),
            *group_options(),
            *reading_options(),
            *ci_click_options(),
            *output_options(state_help),
        ]
    )(f)


def group_options(source: str = "PREDS") -> list[Callable[..., Any]]:
    """--group-by and where its keys come from (``source``: the input whose columns they are)."""
    from .options import MAX_GROUPS_DEFAULT

    return [
        click.option(
            "--group-by",
            metavar="COLS",
            help="Figures per group beside the overall ones: one row per distinct key of these "
            f"columns (of {source}, or of --groups FILE; the same forms as --pred-col, commas for "
            "several). Text, integer, boolean, float and dictionary (pandas category) columns; "
            "a null (or NaN) key is its own group, null. Key columns are never predictions "
            "unless named. Worst rows and per-sequence tables stay overall.",
        ),
        click.option(
            "--groups",
            "groups",
            metavar="FILE",
            help="Group keys in a file of their own, a row per prediction row (perplexity: a "
            "row per token); every data column is a key unless --group-by names some.",
        ),
        click.option(
            "--max-groups",
            type=click.IntRange(min=1),
            default=MAX_GROUPS_DEFAULT,
            show_default=True,
            metavar="N",
            help="Stop (exit 3) when the keys have more than N distinct values: memory grows "
            "with the groups, not the rows.",
        ),
    ]


def column_options() -> list[Callable[..., Any]]:
    """Which columns hold the predictions, targets and weights."""
    return [
        click.option(
            "--pred-col",
            metavar="COLS",
            help="Prediction column(s): a name, a 0-based position, a range of positions with an "
            "inclusive end (1-10, or 3- to the last column, index columns counted), or a "
            "case-sensitive glob ('p_*'); commas for several. A column's exact name always wins; "
            "ranges and globs never take index or id columns, nor the target/weight columns.",
        ),
        click.option("--target-col", metavar="COLS", help="Target column(s), as --pred-col."),
        click.option(
            "--exclude-col",
            metavar="COLS",
            help="Leave these columns out of the predictions, however they were chosen (a fold "
            "column among every-other-column scores); the same forms as --pred-col.",
        ),
        click.option(
            "--weights",
            "weights",
            metavar="FILE",
            help="Per-example weights (weighted mean, like scikit-learn's sample_weight).",
        ),
        click.option(
            "--weight-col",
            metavar="COL",
            help="Weights column (in --weights FILE, or in PREDS when --weights is not given): as "
            "--pred-col, but exactly one column.",
        ),
    ]


def reading_options() -> list[Callable[..., Any]]:
    """How the inputs are read and scored: chunks, NaN, threads, format, header, delimiter and
    decimal mark, row numbers."""
    from .options import NAN_POLICIES
    from .readers import INPUT_FORMATS  # the readers know their formats (numpy is loaded by now)

    return [
        click.option(
            "--chunk-size",
            type=int,
            metavar="ROWS",
            help="Rows per chunk (default: about 2.5 MB of the widest input, at most 65,536 rows).",
        ),
        click.option(
            "--nan",
            type=click.Choice(NAN_POLICIES),
            default="error",
            show_default=True,
            help="NaN/inf in the inputs: an error, or skip those rows (counted).",
        ),
        click.option(
            "--per-example",
            metavar="PATH",
            help="Write every example's loss (row, loss) to .csv, .parquet or .npy; '-' is CSV on stdout.",
        ),
        click.option(
            "--threads",
            type=click.IntRange(min=1),
            metavar="N",
            help="Workers for seekable inputs (.npy): forked processes on Linux where that is safe "
            "(not with --group-by or clustered --ci; LOSSCLI_WORKERS=threads keeps threads), else "
            "threads; default: 2 on a machine with 2+ cores. "
            "With a directory or glob input: shards evaluated at once (default: half the cores).",
        ),
        click.option(
            "--engine",
            type=click.Choice(("local", "dask")),
            default="local",
            show_default=True,
            help="Where the shards of a directory or glob input (PREDS, TARGETS, --weights, ... "
            "may each be one: 'preds/*.parquet') are evaluated: local = on this machine's cores "
            "(threads); dask = one task per shard on a Dask cluster (pip install 'losscli[dask]'; "
            "paths must be visible at the same absolute path on every worker). Either way their "
            "states are merged exactly.",
        ),
        click.option(
            "--split-rows",
            type=click.IntRange(min=0),
            metavar="N",
            help="With a directory or glob input: a Parquet or .npy shard of at least 2N rows is "
            "read as parts of about N rows, cut at its row groups, evaluated concurrently (--engine "
            "dask: a task each); default: 4194304; 0: never cut.",
        ),
        click.option(
            "--scheduler",
            metavar="ADDRESS",
            help="--engine dask: the scheduler of a running cluster (tcp://host:8786); default: "
            "$DASK_SCHEDULER_ADDRESS, else a local cluster of --workers processes started for the run.",
        ),
        click.option(
            "--workers",
            type=click.IntRange(min=1),
            metavar="N",
            help="--engine dask without a scheduler: worker processes of the local cluster, one "
            "thread each (default: the core count).",
        ),
        click.option(
            "--connect-timeout",
            type=click.FloatRange(min=0, min_open=True),
            metavar="SECONDS",
            help="--engine dask: seconds to wait for the scheduler (default: 10); beyond, exit 5.",
        ),
        click.option(
            "--input-format",
            type=click.Choice(INPUT_FORMATS),
            help="Read every file as this format, whatever its extension.",
        ),
        click.option(
            "--row-offset",
            type=click.IntRange(min=0),
            default=0,
            metavar="N",
            help="Number rows from N (the rows before this part of the data), so the states of "
            "parts merge with rows numbered as in the whole.",
        ),
        click.option(
            "--header/--no-header",
            "header",
            default=None,
            help="CSV/TSV: the first row is a header / is data. Default: detected (pandas' "
            "0,1,... header too); a warning says when the file could not tell.",
        ),
        click.option(
            "--delimiter",
            metavar="CHAR",
            help="CSV/TSV: the field separator ('\\t' for a tab). Default: detected: tab in .tsv "
            "files, ';' when the first line's only separator is ';' (European CSV), else ','.",
        ),
        click.option(
            "--decimal",
            metavar="CHAR",
            help="CSV/TSV: the decimal mark (',' for pandas' to_csv(sep=';', decimal=',')). "
            "Default: ',' when the cells look like 1,5 and none like 1.5 (said on stderr), else '.'.",
        ),
    ]


def output_options(state_help: str) -> list[Callable[..., Any]]:
    """The options of everything that prints a report: the metric commands and merge."""
    return [
        click.option(
            "--format",
            "-f",
            "fmt",
            type=click.Choice(OUTPUT_FORMATS),
            help="Output format. Default: table on a terminal, tsv when piped.",
        ),
        click.option(
            "--report",
            metavar="PATH.html",
            help="Also write one self-contained HTML report (inline SVG charts and CSS, no "
            "JavaScript, no network): the tables, the loss histogram, the reliability diagram, the "
            "per-class tables. Needs pip install 'losscli[report]'. Written atomically.",
        ),
        click.option(
            "--no-plot",
            is_flag=True,
            help="No histogram of the per-example losses under the table (it is drawn only on a "
            "terminal, never into a pipe or file).",
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
            "--fail-above",
            type=float,
            callback=comparable,
            metavar="X",
            help="Exit 1 if the headline value is above X (after printing).",
        ),
        click.option(
            "--fail-below",
            type=float,
            callback=comparable,
            metavar="X",
            help="Exit 1 if the headline value is below X (after printing).",
        ),
        click.option(
            "--fail-group-above",
            type=float,
            callback=comparable,
            metavar="X",
            help="Exit 1 if any group's headline value is above X (after printing; the failing "
            "groups are named on stderr).",
        ),
        click.option(
            "--fail-group-below",
            type=float,
            callback=comparable,
            metavar="X",
            help="Exit 1 if any group's headline value is below X (after printing).",
        ),
        fail_if_option(),
        click.option("--save-state", metavar="PATH", help=state_help),
    ]


FAIL_IF_KEYS = (
    "a column of its CSV/TSV overall row (value, n, rmse, mae, value_low/value_high with --ci, ece, mce, "
    "brier with --calibration, ...), p50, p90, p99, max (the loss quantiles), and with --ci KEY_low, "
    "KEY_high of every interval (brier_high, rmse_high, ...)"
)


def fail_if_option(keys: str = FAIL_IF_KEYS) -> Callable[..., Any]:
    """--fail-if EXPR, repeatable: a gate on any number of the report (see gates.py)."""
    return click.option(
        "--fail-if",
        "fail_if",
        multiple=True,
        metavar="EXPR",
        help=f"Exit 1 (after printing) if KEY OP NUMBER holds, OP one of < <= > >=, KEY any number "
        f"of the report: {keys}; e.g. --fail-if 'value_high > 0.5'. Repeatable (any firing fails); "
        "nothing is evaluated as code; an unknown KEY is exit 2 listing the keys; a missing value "
        "(nothing scored) fires.",
    )


def metric_option(option: MetricOption) -> click.Option:
    """A metric's declared option as a click option."""
    decls = [option.flag, option.name]
    if option.kind == "flag":
        return click.Option(decls, is_flag=True, help=option.help)
    kinds: dict[str, Any] = {"int": int, "float": float, "str": str, "path": str}
    kind: Any = click.Choice(option.choices) if option.kind == "choice" else kinds[option.kind]
    if option.minimum is not None and option.kind in ("int", "float"):
        low = option.minimum
        kind = click.IntRange(min=int(low)) if option.kind == "int" else click.FloatRange(min=low)
    return click.Option(
        decls,
        type=kind,
        default=option.default,
        show_default=option.default is not None,
        metavar=option.metavar,
        help=option.help,
    )


def token_inputs() -> list[click.Option]:
    """perplexity's inputs: logits with token ids, or gathered log-probabilities."""
    return [
        click.Option(
            ["--logits", "logits"],
            metavar="FILE",
            help="Logits (N, V) or (B, T, V) in float16/32/64; or a Parquet list column per sequence.",
        ),
        click.Option(
            ["--targets", "targets"],
            metavar="FILE",
            help="Token ids (N,) or (B, T). Omit when --target-col names a column/array of the logits file.",
        ),
        click.Option(
            ["--logprobs", "logprobs"],
            metavar="FILE",
            help="Instead of logits: the log-probability of each target token (.npy/.csv/.parquet; "
            "a 2-D .npy/.npz array is B sequences of T tokens, padding marked by --pad-value; or "
            "JSON: .jsonl/.json, compressed or on stdin, one record per sequence: OpenAI-style "
            "token_logprobs or logprobs.content, vLLM prompt_logprobs with prompt_token_ids (its "
            "first, null position is ignored), llama.cpp completion_probabilities, or a list of "
            '{"token", "logprob"} objects).',
        ),
    ]
