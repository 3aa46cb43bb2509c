"""``--engine dask``: the shards of a sharded run evaluated as tasks on a Dask cluster.

Each task is ``evaluate_shard`` on one ``ShardTask`` (the same engine, options and row offsets as
``--engine local``); the states are merged on the cluster, pairwise in the very tree shape
``sharded.tree_merge`` uses, so the figures are bit-for-bit the local engine's; only the merged
state comes back to the client. The first shard runs alone first, as locally: what it decides
(a CSV's header and separator, ``--input auto``'s kind, its columns) is forced on the others.

Row offsets must be known before a shard is evaluated, since they are in everything a state
holds of rows (worst rows, per-sequence ids, the row-sum row, warnings, error messages). When the
shards' row counts are in their metadata (Parquet footers, .npy headers) they are read on the
client. Otherwise (CSV and JSON shards, perplexity's tokens) a first wave of counting tasks runs
(``count_shard``): a shard whose plan tells its rows and sequences (Parquet list columns) is only
opened; a CSV or JSON shard is read through. Counting was chosen over evaluating at offset 0 and
rebasing the states afterwards: a rebase would have to find every row-bearing part of a state,
now and in every part added later (a missed one is a silently wrong row), and text already
rendered (warnings) cannot be rebased at all; counting makes every shard's state identical to
the local engine's by construction, at the cost of reading CSV/JSON shards twice (Parquet and
.npy shards are read once).

A failing shard's error is the local engine's: the first failing shard in path order, its
``LossCliError`` pickled back as the same class and line (``errors.LossCliError.__reduce__``). A
counting task fails at offset 0, so that shard is evaluated again at its true offset for the
exact message. A worker that dies mid-task is Dask's to retry (``distributed.scheduler.allowed-
failures``); the task is pure, so the result is the same.

``dask``/``distributed`` are imported only here, only when this engine runs (``losscli[dask]``).
"""

from __future__ import annotations

import logging
import operator
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..engine_options import DASK_OPTIONS
from ..errors import EngineUnavailable, LossCliError, UsageError
from ..metrics.base import MetricDef
from ..options import Evaluation
from ..shards import ShardPlan, format_of
from ..state.evalstate import EvalState
from . import sharded
from .shard_counts import row_range, shard_counts
from .shard_split import SPLIT_ROWS, split_shards
from .sharded import ShardCheck, ShardTask, build_shard, evaluate_shard

if TYPE_CHECKING:
    from distributed import Client, Future

    from ..api import Progress

INSTALL = "pip install 'losscli[dask]'"
DEFAULT_CONNECT_TIMEOUT = 10.0
#: formats a worker can read a row range of by position, beside sharded inputs
_SEEKABLE = ("parquet", "npy")
Counts = tuple[int, int | None]  # a shard's rows and sequences (None: no sequences)


@dataclass(frozen=True)
class FirstShard:
    """What the first shard decided, for the others: forced options, columns, one sequence."""

    forced: dict[str, Any]
    check: ShardCheck
    single: bool


# -- on the workers: plain functions of plain values ---------------------------------------


def first_shard(evaluation: Evaluation, options: dict[str, Any]) -> tuple[EvalState, FirstShard]:
    """The first shard's state, and what its plan decided for the others."""
    plans: list[Any] = []
    state = sharded.evaluate_state_with_plan(evaluation, plans)
    plan = plans[0]
    forced = sharded.forced_options(plan, state, options)
    return state, FirstShard(
        forced, sharded.column_check(plan, sharded.named_columns(options)), sharded._single_sequence(plan)
    )


def count_shard(task: ShardTask) -> Counts:
    """A shard's rows and sequences as its evaluation would count them: from its plan when the
    plan knows them (Parquet, .npy, Parquet list columns), else by evaluating it."""
    from .plan import make_plan

    with ExitStack() as stack:
        plan = make_plan(task.evaluation, stack)
        task.check(plan)
        if plan.total_rows is not None and not sharded._single_sequence(plan):
            return plan.total_rows, None if plan.seqmap is None else plan.seqmap.sequences
    tallies = evaluate_shard(task).tallies
    return tallies.rows, None if tallies.sequences is None else tallies.sequences.count


def counts_of(state: EvalState) -> Counts:
    tallies = state.tallies
    return tallies.rows, None if tallies.sequences is None else tallies.sequences.count


def merge_pair(a: EvalState, b: EvalState) -> EvalState:
    return a.merge(b)


# -- on the client -------------------------------------------------------------------------


def evaluate_on_dask(
    metric: MetricDef,
    shards: ShardPlan,
    options: Mapping[str, Any],
    progress: Progress | None,
    split_rows: int = SPLIT_ROWS,
) -> EvalState:
    """The merged state of every shard, evaluated on a Dask cluster (see the module docstring)."""
    engine = {k: options.get(k) for k in DASK_OPTIONS}
    options = {k: v for k, v in options.items() if k not in (*DASK_OPTIONS, "engine")}
    if options.get("per_example") is not None:  # evaluate_sharded refuses it first, with the fix
        raise UsageError("--per-example with --engine dask: use --engine local for --per-example")
    _refuse_unseekable(shards, options.get("fmt"))
    counts = shard_counts(metric, shards, options, read_csv=False)  # a CSV beside shards: refused
    shards, counts = split_shards(shards, counts, options, split_rows)  # a large shard: several tasks
    with connect(engine) as client:
        run = _Run(client, metric, shards, options, counts, progress)
        merged = run.evaluate()
    if options.get("save_state") is not None:
        merged.save(options["save_state"])
    return merged


def _refuse_unseekable(shards: ShardPlan, fmt: str | None) -> None:
    """A single file beside shards is read by row ranges on the workers: .npy or Parquet only."""
    for path in shards.singles.values():
        kind = None if path == "-" else (fmt or format_of(path))
        if kind not in _SEEKABLE:
            raise UsageError(
                f"{path} is one {kind or 'non-seekable'} file beside sharded inputs: with --engine dask "
                "every input must be sharded alike or be a .npy/Parquet file (workers read their rows "
                "of it by position); give it as shards, convert it to Parquet, or use --engine local"
            )


@contextmanager
def connect(engine: Mapping[str, Any]) -> Iterator[Client]:
    """A client of the scheduler named (--scheduler, else DASK_SCHEDULER_ADDRESS), or of a
    LocalCluster of --workers single-threaded processes started here and stopped at the end."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise UsageError(f"--engine dask needs dask and distributed ({exc}): {INSTALL}") from None
    timeout = engine.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT
    address = engine.get("scheduler") or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    if address is not None:
        client = _client(Client, address, timeout)
        with client:
            yield client
        return
    workers = engine.get("workers") or os.cpu_count() or 1
    try:
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # its HTTP server on a free port: never "8787 is already in use"
            silence_logs=logging.CRITICAL,  # a shard's error is reported once, by the client
        )
    except (OSError, TimeoutError) as exc:
        raise EngineUnavailable(f"a local Dask cluster of {workers} workers did not start: {exc}") from None
    with cluster, Client(cluster, set_as_default=False) as client:
        yield client


def _client(make: Any, address: str, timeout: float) -> Client:
    """A client of ``address`` within ``timeout`` seconds, or exit 5. The connection is made on
    a daemon thread and given up at the deadline: a listener that accepts and never answers
    (an HTTP server, a firewall) would otherwise hold the handshake past --connect-timeout, and
    one that answers something else can fail in any way (distributed once asked for 3 EiB)."""
    import threading

    box: dict[str, Any] = {}

    def connect() -> None:
        try:
            box["client"] = make(address, timeout=timeout, set_as_default=False)
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=connect, daemon=True, name="losscli-dask-connect")
    thread.start()
    thread.join(timeout + 2.0)
    error = box.get("error")
    if "client" in box:
        return cast("Client", box["client"])
    text = " ".join(str(error).split())
    if isinstance(error, (ValueError, TypeError)) and any(
        w in text.lower() for w in ("address", "scheme", "protocol")
    ):
        raise UsageError(f"--scheduler {address}: {text}; give an address such as tcp://host:8786")
    if thread.is_alive():
        why = "did not answer"
    elif isinstance(error, (OSError, TimeoutError)):
        why = f"could not be reached ({text[:160]})"
    else:  # it answered, in something that is not Dask's protocol (an HTTP server, ...)
        why = "answered, but not as a Dask scheduler does,"
    raise EngineUnavailable(
        f"the Dask scheduler at {address} {why} within {timeout:g} s (--connect-timeout); is "
        "`dask scheduler` running there, and is it a Dask scheduler?"
    )


class _Run:
    """One sharded run's tasks on one client: first shard, offsets, the rest, the merge tree."""

    def __init__(
        self,
        client: Client,
        metric: MetricDef,
        shards: ShardPlan,
        options: dict[str, Any],
        counts: list[int] | None,
        progress: Progress | None,
    ) -> None:
        self.client, self.metric, self.shards, self.options = client, metric, shards, options
        self.counts, self.progress = counts, progress
        self.base: Counts = (options.get("row_offset") or 0, options.get("sequence_offset"))
        self.prefix = f"losscli-{uuid.uuid4().hex[:8]}"

    def submit(self, name: str, func: Any, *args: Any) -> Future[Any]:
        return self.client.submit(func, *args, key=f"{self.prefix}-{name}", pure=False)

    def evaluate(self) -> EvalState:
        n = len(self.shards)
        if self.progress is not None:
            self.progress.start(n)
        try:
            first = build_shard(self.metric, self.shards, 0, self.options, self.base, self._range(0))
            head = self.submit("first", first_shard, first, self.options)
            state0 = self.submit("state-0", operator.itemgetter(0), head)
            self._on_done(state0)
            info: FirstShard = self.submit("first-info", operator.itemgetter(1), head).result()
            forced = {**self.options, **info.forced, "threads": 1}
            offsets = self._offsets(forced, info, state0)
            futures = [state0]
            for i in range(1, n):
                evaluation = build_shard(self.metric, self.shards, i, forced, offsets[i - 1], self._range(i))
                futures.append(self.submit(f"shard-{i}", evaluate_shard, ShardTask(evaluation, info.check)))
                self._on_done(futures[-1])
            merged = self._merge(futures)
            try:
                state: EvalState = merged.result()
            except Exception as exc:
                raise self._first_error(futures, exc) from None
            return state
        except LossCliError:
            raise
        except ModuleNotFoundError as exc:
            raise EngineUnavailable(
                f"a Dask worker cannot run losscli ({exc}): install the same losscli on every worker "
                f"({INSTALL})"
            ) from None
        finally:
            if self.progress is not None:
                self.progress.stop()

    def _range(self, i: int) -> tuple[int, int, int] | None:
        return row_range(self.counts, i, self.base[0])

    def _on_done(self, future: Future[Any]) -> None:
        if self.progress is not None:
            advance = self.progress.advance
            future.add_done_callback(lambda _f: advance(1))

    def _offsets(self, forced: dict[str, Any], info: FirstShard, state0: Future[Any]) -> list[Counts]:
        """Offsets of shards 1..n-1: from metadata, else from a wave of counting tasks."""
        rows0, seqs0 = self.base
        if self.counts is not None:
            return [(rows0 + sum(self.counts[:i]), None) for i in range(1, len(self.shards))]
        count_futures = [self.submit("count-0", counts_of, state0)]
        offsets: list[Counts] = []
        rows, seqs = rows0, seqs0 or 0
        for i in range(1, len(self.shards) - 1):  # the last shard's count is nobody's offset
            task = ShardTask(build_shard(self.metric, self.shards, i, forced, (0, None)), info.check)
            count_futures.append(self.submit(f"count-{i}", count_shard, task))
        for i, future in enumerate(count_futures):
            try:
                n_rows, n_seqs = future.result()
            except LossCliError:
                if i > 0:  # counted at offset 0: its error names the rows the local engine would not
                    self._exact_error(i, forced, info, offsets[i - 1])
                raise
            rows += n_rows
            if n_seqs is not None:
                seqs += n_seqs
            offsets.append((rows, None if info.single or n_seqs is None else seqs))
        return offsets

    def _exact_error(self, i: int, forced: dict[str, Any], info: FirstShard, at: Counts) -> None:
        """Evaluate shard i at its true offset: its error then names the row the local engine would."""
        task = ShardTask(build_shard(self.metric, self.shards, i, forced, at), info.check)
        self.submit(f"exact-{i}", evaluate_shard, task).result()

    def _merge(self, futures: Sequence[Future[Any]]) -> Future[Any]:
        """Pairwise on the cluster, in ``sharded.tree_merge``'s shape (so the same float sums)."""
        level = list(futures)
        depth = 0
        while len(level) > 1:
            pairs = zip(level[::2], level[1::2], strict=False)
            paired = [self.submit(f"merge-{depth}-{j}", merge_pair, a, b) for j, (a, b) in enumerate(pairs)]
            level = paired + level[len(paired) * 2 :]
            depth += 1
        return level[0]

    def _first_error(self, futures: Sequence[Future[Any]], failed: BaseException) -> BaseException:
        """The error of the first failing shard in path order, as the local engine raises it
        (each shard waited for in order, as the local engine does); when every shard's task
        succeeded, ``failed``: what the merge on the cluster raised (states that do not merge),
        the local engine's error too."""
        for future in futures:
            error = future.exception()
            if error is not None:
                return error  # type: ignore[no-any-return]
        return failed
