"""``compare(metric, targets, preds, ...)``: the Python form of ``losscli compare``."""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from ..metrics import registry
from ..options import build_evaluation
from .report import CompareReport, build_compare_report

#: options a comparison takes beside the metric command's ones
OWN = ("names", "test", "resamples", "seed", "ci_level")


def compare(
    metric: str,
    targets: str,
    preds: list[str],
    *,
    names: list[str] | tuple[str, ...] = (),
    test: str = "t",
    resamples: int | None = None,
    seed: int | None = None,
    ci_level: float = 0.95,
    margin: float | None = None,
    progress: Any = None,
    **options: Any,
) -> CompareReport:
    """Score every model in ``preds`` against ``targets`` (streamed once, in step) and test each
    candidate against the first (the baseline); see ``losscli compare --help``."""
    from .command import DEFAULT_RESAMPLES, DEFAULT_SEED, TESTS, check_level, default_names
    from .run import run_models

    definition = registry.get(metric)
    if definition.inputs != "pair":
        raise UsageError(f"compare does not take {metric} yet: compare mse, mae, huber, bce or ce")
    if len(preds) < 2:
        raise UsageError("compare needs TARGETS and at least two PREDS files (the baseline first)")
    if test not in TESTS:
        raise UsageError(f"--test must be one of {', '.join(TESTS)}, not {test}")
    check_level(ci_level)
    names = list(names) if names else default_names([str(p) for p in preds])
    if len(names) != len(preds):
        raise UsageError(f"--name is given {len(names)} times for {len(preds)} PREDS files: once per model")
    if len(set(names)) != len(names):
        raise UsageError("two models have the same --name: give each its own")
    if resamples is not None and test == "t":
        raise UsageError("--resamples is for --test bootstrap or permutation")
    reps = DEFAULT_RESAMPLES[test] if resamples is None else int(resamples)
    seed = DEFAULT_SEED if seed is None else int(seed)
    if options.get("save_state") is not None:
        raise UsageError("--save-state is not taken by compare yet: save each model's state with the metric command")
    options = {k: v for k, v in options.items() if k != "save_state"}
    if options.get("group_by") is not None and options.get("groups") is None:
        options["groups"] = targets  # keys describe the examples: they are read from TARGETS
    _refuse_shards([targets, *preds, options.get("weights"), options.get("groups")])
    evaluations = [build_evaluation(definition, p, targets, options) for p in preds]
    out = run_models(evaluations, test, reps, seed, progress)
    report = build_compare_report(names, out.states, out.pairs, out.keys, ci_level, margin, out.group_pairs)
    report.resamples, report.seed = reps, seed
    if out.unpaired:
        report.warnings.append(
            f"{out.unpaired} row(s) were scored for some models but not others (--nan skip): "
            "the paired test uses only the rows every model scored"
        )
    return report


def _refuse_shards(paths: list[Any]) -> None:
    import glob
    import os

    for p in paths:
        if isinstance(p, str) and p != "-" and (os.path.isdir(p) or glob.has_magic(p)):
            raise UsageError(f"{p}: compare reads single files (directories and globs are not taken yet)")
