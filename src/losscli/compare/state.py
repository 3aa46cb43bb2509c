"""A comparison's state: every model's ``EvalState`` and the paired tallies, saved and merged.

File format (``losscli-compare`` version 1): a ZIP archive like a state file (see
``state.files``) holding ``compare.json``::

    {"format": "losscli-compare", "format_version": 1, "names": [...], "test", "resamples",
     "seed", "level", "margin", "fail_if_worse", "unpaired", "group_columns": [...] or null,
     "group_keys": [[...], ...] or null, "models": [the state.json object of each model]}

and ``.npy`` members: ``model.I.tallies.*`` (model I's state arrays, as in its own state file),
``pairs.{n,w,w2,mean,m2,resampled}`` and, with groups, ``groups.*`` the same per group (rows in
``group_keys`` order); ``compare perplexity --group-by`` by sequence adds ``gclusters.{keys,y,n}``,
the (group, sequence) sums its per-group tallies are recomputed from (``group_clusters``).
``losscli merge`` recognises it and merges comparisons part by part: each
model's states as ``merge`` always does (same checks, overlaps and gaps), the paired sums by
addition and Chan's formula, groups by key. Nothing is unpickled; arrays are checked as state
files' are.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..atomic_file import write_atomically
from ..state.evalstate import EvalState
from ..state.plain import StateFileError
from .group_clusters import GroupClusterSums, group_cluster_pairs, merged_sums
from .report import CompareReport
from .tallies import Moments, PairTallies

FORMAT = "losscli-compare"
MEMBER = "compare.json"


@dataclass
class CompareState:
    names: list[str]
    states: list[EvalState]
    pairs: PairTallies
    group_pairs: PairTallies | None
    keys: list[tuple[Any, ...]] | None
    unpaired: int
    level: float
    margin: float | None
    fail_if_worse: bool
    #: compare perplexity by sequence: ``pairs`` is a function of the models' per-sequence sums
    #: (``clusters.cluster_pairs``), recomputed from the merged states rather than merged
    clustered: bool = False
    #: ... and with --group-by: the (group, sequence) sums ``group_pairs`` is computed from
    group_sums: GroupClusterSums | None = None


def _pairs_plain(p: PairTallies) -> dict[str, NDArray[Any]]:
    return {**p.moments.to_plain(), "resampled": p.resampled}


def _pairs_from(
    arrays: dict[str, NDArray[Any]], models: int, test: str, resamples: int, seed: int
) -> PairTallies:
    try:
        n, w, w2 = (
            arrays["n"].astype(np.int64),
            arrays["w"].astype(np.float64),
            arrays["w2"].astype(np.float64),
        )
        mean, m2 = arrays["mean"].astype(np.float64), arrays["m2"].astype(np.float64)
        resampled = arrays["resampled"].astype(np.float64)
    except KeyError as e:
        raise StateFileError(f"not a valid comparison state: no array {e}") from None
    groups = len(n)
    out = PairTallies(models, test, resamples, seed, groups)
    if (
        mean.shape != out.moments.mean.shape
        or m2.shape != mean.shape
        or resampled.shape != out.resampled.shape
    ):
        raise StateFileError("not a valid comparison state: paired arrays of the wrong shape")
    if len(w) != groups or len(w2) != groups or (n < 0).any() or (w < 0).any():
        raise StateFileError("not a valid comparison state: implausible paired counts")
    out.moments = Moments(n, w, w2, mean, m2)
    out.resampled = resampled
    return out


def save_compare(state: CompareState, path: str) -> None:
    """Write atomically; ``OutputError`` (exit 4) leaves nothing behind."""
    arrays: dict[str, NDArray[Any]] = {}
    models = []
    for i, s in enumerate(state.states):
        meta, own = s.to_plain()
        models.append(meta)
        arrays.update({f"model.{i}.{k}": v for k, v in own.items()})
    arrays.update({f"pairs.{k}": v for k, v in _pairs_plain(state.pairs).items()})
    if state.group_pairs is not None:
        arrays.update({f"groups.{k}": v for k, v in _pairs_plain(state.group_pairs).items()})
    if state.group_sums is not None:
        arrays.update({f"gclusters.{k}": v for k, v in state.group_sums.to_plain().items()})
    p = state.pairs
    doc = {
        "format": FORMAT,
        "format_version": 1,
        "names": state.names,
        "test": p.test,
        "resamples": p.resamples,
        "seed": p.seed,
        "level": state.level,
        "margin": state.margin,
        "fail_if_worse": state.fail_if_worse,
        "unpaired": state.unpaired,
        "clustered": state.clustered,
        "group_columns": list(state.states[0].header.metric_options.get("group_by") or []) or None,
        "group_keys": None if state.keys is None else [[_plain(v) for v in k] for k in state.keys],
        "models": models,
    }
    text = json.dumps(doc, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()
    write_atomically(path, lambda fh: _write(fh, text, arrays), f"{path}: cannot write the comparison state")


def _write(fh: Any, text: bytes, arrays: dict[str, NDArray[Any]]) -> None:
    """compare.json, then one stored .npy member per array (as ``state.files`` writes them)."""
    fixed = (1980, 1, 1, 0, 0, 0)  # the same comparison always gives the same bytes
    with zipfile.ZipFile(fh, "w") as zf:
        info = zipfile.ZipInfo(MEMBER, fixed)
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, text)
        for name, a in arrays.items():
            with zf.open(zipfile.ZipInfo(f"{name}.npy", fixed), "w", force_zip64=a.nbytes > 1 << 30) as out:
                np.lib.format.write_array(out, np.ascontiguousarray(a), allow_pickle=False)


def _plain(v: Any) -> Any:
    item = getattr(v, "item", None)
    return item() if callable(item) else v


def is_compare_state(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return MEMBER in zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def load_compare(path: str) -> CompareState:
    from ..state.files import _read_array

    try:
        with zipfile.ZipFile(path) as zf:
            doc = json.loads(zf.read(MEMBER).decode("utf-8"))
            arrays = {
                i.filename[:-4]: _read_array(zf, i) for i in zf.infolist() if i.filename.endswith(".npy")
            }
        if doc.get("format") != FORMAT or doc.get("format_version") != 1:
            raise StateFileError("not a losscli comparison state (format or version)")
        names = [str(n) for n in doc["names"]]
        states = []
        for i, meta in enumerate(doc["models"]):
            prefix = f"model.{i}."
            own = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            states.append(EvalState.from_plain(meta, own))
        test, reps, seed = str(doc["test"]), int(doc["resamples"]), int(doc["seed"])

        def part(prefix: str) -> dict[str, NDArray[Any]]:
            return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}

        pairs = _pairs_from(part("pairs."), len(names), test, reps, seed)
        keys = None if doc["group_keys"] is None else [tuple(k) for k in doc["group_keys"]]
        group_pairs = None if keys is None else _pairs_from(part("groups."), len(names), test, reps, seed)
        margin = None if doc["margin"] is None else float(doc["margin"])
        clustered = bool(doc.get("clustered", False))
        if clustered:
            from .clusters import cluster_pairs

            pairs = cluster_pairs(states, test, reps, seed)
        sums = None
        if clustered and keys is not None:
            sums = GroupClusterSums.from_plain(part("gclusters."), len(names), len(keys))
            group_pairs = group_cluster_pairs(sums, len(keys), test, reps, seed)
        return CompareState(
            names,
            states,
            pairs,
            group_pairs,
            keys,
            int(doc["unpaired"]),
            float(doc["level"]),
            margin,
            bool(doc["fail_if_worse"]),
            clustered,
            sums,
        )
    except StateFileError as e:
        raise StateFileError(e.detail, path=path) from None
    except OSError as e:  # missing, unreadable: as a plain state says it
        raise StateFileError(f"cannot read the state file: {e.strerror or e}", path=path) from None
    except (KeyError, TypeError, ValueError, zipfile.BadZipFile) as e:
        raise StateFileError(f"corrupt comparison state ({type(e).__name__}: {e})", path=path) from None


def report_of(state: CompareState) -> CompareReport:
    """The report of a (merged) comparison state, at the level and margin it was run with."""
    from .report import build_compare_report

    report = build_compare_report(
        state.names, state.states, state.pairs, state.keys, state.level, state.margin, state.group_pairs
    )
    if state.states[0].header.metric == "perplexity" and not state.clustered:
        from .clusters import TOKEN_NOTE

        report.notes.append(TOKEN_NOTE)
    if state.unpaired:
        report.warnings.append(
            f"{state.unpaired} row(s) could be scored for some models but not others (a non-finite "
            "prediction, --nan skip): they are skipped for every model, so each model's value and "
            "the deltas are on the same rows"
        )
    return report


def merge_compare(parts: list[CompareState], paths: list[str]) -> CompareState:
    """Parts of one comparison together; refused (exit 3) when they are not the same comparison."""
    from ..errors import InputError
    from ..state.merge import merge_states

    first = parts[0]
    for part, path in zip(parts[1:], paths[1:], strict=True):
        p, q = part.pairs, first.pairs
        if len(part.names) == len(first.names) and part.names != first.names:
            raise InputError(
                f"{path} names its models {', '.join(part.names)} but {paths[0]} "
                f"{', '.join(first.names)}: models are matched by name (the default names are the "
                "PREDS file names); run every part with the same --name per model, in order"
            )
        if part.names != first.names or (p.test, p.resamples, p.seed) != (q.test, q.resamples, q.seed):
            raise InputError(
                f"{path} is another comparison (models {part.names}, --test {p.test}, --resamples "
                f"{p.resamples}, --seed {p.seed}) than {paths[0]}: merge parts of one comparison"
            )
        _same_gates(part, first, path, paths[0])
        if part.clustered != first.clustered:
            raise InputError(
                f"{path} and {paths[0]}: one comparison is clustered by sequence and the other not"
            )
        if (part.keys is None) != (first.keys is None):
            raise InputError(f"{path} and {paths[0]}: one comparison has --group-by and the other not")
    states = []
    for i in range(len(first.names)):
        merged = parts[0].states[i]
        for part in parts[1:]:
            merged = merge_states(merged, part.states[i])
        states.append(merged)
    pairs = first.pairs
    for part in parts[1:]:
        pairs = pairs.merge(part.pairs)
    if first.clustered:  # a sequence cut between parts is whole only in the merged states
        from .clusters import cluster_pairs

        pairs = cluster_pairs(states, pairs.test, pairs.resamples, pairs.seed)
    keys, group_pairs, sums = first.keys, first.group_pairs, first.group_sums
    if keys is not None and sums is not None:  # by sequence: a cluster cut between parts is whole
        for part in parts[1:]:
            assert part.keys is not None and part.group_sums is not None
            keys, sums = merged_sums(keys, sums, part.keys, part.group_sums)
        group_pairs = group_cluster_pairs(sums, len(keys), pairs.test, pairs.resamples, pairs.seed)
    elif keys is not None and group_pairs is not None:
        for part in parts[1:]:
            assert part.keys is not None and part.group_pairs is not None
            keys, group_pairs = _merge_groups(keys, group_pairs, part.keys, part.group_pairs)
    unpaired = sum(p.unpaired for p in parts)
    return CompareState(
        first.names,
        states,
        pairs,
        group_pairs,
        keys,
        unpaired,
        first.level,
        first.margin,
        first.fail_if_worse,
        first.clustered,
        sums,
    )


def _same_gates(part: CompareState, first: CompareState, path: str, first_path: str) -> None:
    """The level, margin and --fail-if-worse judge the merged comparison, so every part must
    carry the same (taking the first part's would make the exit code depend on the order)."""
    from ..errors import InputError

    def shown(s: CompareState) -> str:
        margin = "none" if s.margin is None else f"{s.margin:g}"
        worse = "on" if s.fail_if_worse else "off"
        return f"--ci-level {s.level:g}, --margin {margin}, --fail-if-worse {worse}"

    if (part.level, part.margin, part.fail_if_worse) != (first.level, first.margin, first.fail_if_worse):
        raise InputError(
            f"{path} was run with {shown(part)} but {first_path} with {shown(first)}: "
            "run every part with the same --ci-level, --margin and --fail-if-worse"
        )


def _merge_groups(
    ka: list[tuple[Any, ...]], a: PairTallies, kb: list[tuple[Any, ...]], b: PairTallies
) -> tuple[list[tuple[Any, ...]], PairTallies]:
    """Group tallies merged by key: the union of keys, each part's rows moved to its key's place."""

    def tag(k: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple((type(v).__name__, v) for v in k)

    union = list(dict.fromkeys([tag(k) for k in ka] + [tag(k) for k in kb]))
    place = {t: i for i, t in enumerate(union)}
    keys = [tuple(v for _, v in t) for t in union]

    def order(own: list[tuple[Any, ...]]) -> NDArray[np.intp]:
        out = np.full(len(union), -1, dtype=np.intp)
        for i, k in enumerate(own):
            out[place[tag(k)]] = i
        return out

    return keys, a.renumbered(order(ka), len(union)).merge(b.renumbered(order(kb), len(union)))
