"""--calibration and --bins (bce and ce): the options, and the figures they add (ECE, MCE, Brier)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .base import Figure, MetricOption

if TYPE_CHECKING:
    from ..state.evalstate import EvalState

MAX_BINS = 10_000

CALIBRATION = MetricOption(
    "calibration",
    "--calibration",
    "flag",
    False,
    "Also report calibration: a reliability table over --bins equal-width confidence bins, the "
    "expected and maximum calibration error (ECE, MCE, as torchmetrics' CalibrationError) and the "
    "Brier score. bce: the positive class's probability against the label; ce: the top-1 "
    "probability against top-1 accuracy. A value on a bin edge goes to the upper bin.",
    merge_key=True,
)
BINS = MetricOption(
    "bins",
    "--bins",
    "int",
    15,
    "Equal-width confidence bins over [0, 1] for --calibration (1 to 10,000).",
    metavar="N",
    minimum=1,
    # each bin is a row of the reliability table, the JSON and the state: 10,000 is already far
    # finer than the data can fill (a bin needs rows to say anything); 1e8 bins took 23 GB
    maximum=MAX_BINS,
    merge_key=True,
)
OPTIONS = (CALIBRATION, BINS)
PER_CLASS = MetricOption(
    "per_class",
    "--per-class",
    "flag",
    False,
    "Also report, per class, its support, mean loss, accuracy and mean predicted probability, "
    "and the most confused pairs (target -> predicted); exact up to 1,000 classes.",
    merge_key=True,
)


def check_calibration_options(options: Mapping[str, Any]) -> None:
    """--bins without --calibration would be silently ignored: refused (exit 2) with the fix."""
    from ..errors import UsageError

    if options.get("bins") not in (None, BINS.default) and not options.get("calibration"):
        raise UsageError(
            f"--bins {options['bins']} sets the bins of --calibration: add --calibration, or drop --bins"
        )


def check_per_class(classes: int) -> None:
    """--per-class keeps a C x C count matrix: refused (exit 2) above MAX_CLASSES."""
    from ..errors import UsageError
    from ..state.classes import MAX_CLASSES

    if classes > MAX_CLASSES:
        raise UsageError(
            f"--per-class is exact up to {MAX_CLASSES:,} classes (it keeps a C x C count matrix) and "
            f"these scores have {classes:,}: a language model's vocabulary belongs to losscli "
            "perplexity; drop --per-class"
        )


#: what the Brier figure means, overall and per group
BRIER_MEANING = "mean squared error of the probabilities"


def calibration_figures(state: EvalState) -> list[Figure]:
    """ECE, MCE and Brier, when the state has calibration bins (the overall state); a group
    has no bins but its Brier sum (a mean of examples, kept as a companion): Brier alone."""
    tally = state.tallies.calibration
    if tally is None:
        if "brier" in state.tallies.companion_sums:
            return [Figure("brier", "Brier", state.tallies.companion_mean("brier"), BRIER_MEANING)]
        return []
    fig = tally.figures()
    bins = fig["bins"]
    return [
        Figure("ece", "ECE", fig["ece"], f"expected calibration error, L1 over {bins} bins"),
        Figure("mce", "MCE", fig["mce"], "maximum calibration error: the largest bin gap"),
        Figure("brier", "Brier", fig["brier"], BRIER_MEANING),
    ]
