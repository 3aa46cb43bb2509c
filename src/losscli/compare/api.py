"""``compare(metric, targets, preds, ...)``: the Python form of ``losscli compare``."""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from ..metrics import registry
from ..options import build_evaluation
from .report import CompareReport
from .sharded import compare_shards, shard_runs, with_partitions
from .state import CompareState, report_of, save_compare

#: options a comparison takes beside the metric command's ones
OWN = ("names", "test", "resamples", "seed", "ci_level")


def compare(
    metric: str,
    targets: str | None,
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
    candidate against the first (the baseline); see ``losscli compare --help``. For perplexity,
    ``targets`` are the token ids and ``preds`` the logits files, or, with ``logprobs=True``,
    ``preds`` are log-probability files and ``targets`` is None."""
    from ..ci_options import DEFAULT_SEED
    from .command import DEFAULT_RESAMPLES, TESTS, check_level, default_names
    from .run import run_models

    definition = registry.get(metric)
    tokens = definition.inputs == "tokens"
    logprobs = bool(options.pop("logprobs", False))
    if logprobs and not tokens:
        raise UsageError("logprobs is perplexity's: for ce give input='logprobs'")
    if len(preds) < 2:
        if tokens:
            raise UsageError(
                "compare perplexity needs two models or more: --logits (or --logprobs) once per model"
            )
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
    save = options.pop("save_state", None)
    fail_if_worse = bool(options.pop("fail_if_worse", False))
    if save is not None:
        from ..options import output_path

        save = output_path(save, "--save-state")
    if not tokens and options.get("group_by") is not None and options.get("groups") is None:
        options["groups"] = targets  # keys describe the examples: they are read from TARGETS
    if logprobs and targets is not None:
        raise UsageError("log-probabilities need no --targets: give --logprobs per model alone")

    def one(
        shard_targets: Any, shard_preds: list[Any], opts: dict[str, Any], parts: Any = None
    ) -> CompareState:
        if logprobs:
            own = [{**opts, "logprobs": p} for p in shard_preds]
            evaluations = [build_evaluation(definition, None, None, o) for o in keys_once(own, tokens)]
        else:
            own = [dict(opts) for _ in shard_preds]
            evaluations = [
                build_evaluation(definition, p, shard_targets, o)
                for p, o in zip(shard_preds, keys_once(own, tokens), strict=True)
            ]
        if parts:
            evaluations = [with_partitions(e, parts) for e in evaluations]
        out = run_models(evaluations, test, reps, seed, progress)
        part = CompareState(
            names,
            out.states,
            out.pairs,
            out.group_pairs,
            out.keys,
            out.unpaired,
            ci_level,
            margin,
            fail_if_worse,
        )
        part.clustered, part.group_sums = out.clustered, out.group_sums
        return part

    runs = shard_runs(targets, list(preds), options)
    state = one(targets, list(preds), options) if runs is None else compare_shards(runs, options, one, tokens)
    if save is not None:
        save_compare(state, save)
    return report_of(state)


def keys_once(options: list[dict[str, Any]], tokens: bool) -> list[dict[str, Any]]:
    """compare perplexity --group-by: the keys are the baseline's (its logits' or log-probs'
    file, or --groups FILE), read once and given to every model (``run.Models``), so the other
    models' files need no key column: their evaluations are planned without one."""
    if not tokens or (options[0].get("group_by") is None and options[0].get("groups") is None):
        return options
    return [options[0], *({**o, "group_by": None, "groups": None} for o in options[1:])]
