"""``--ci``, ``--ci-level``, ``--bootstrap`` and ``--seed``: typed, checked before any file is opened.

The run records them in its state's header (``metric_options["ci"]``), so parts made with
different interval settings refuse to merge, and the report reads the level and method from the
state alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import UsageError

DEFAULT_LEVEL = 0.95
DEFAULT_SEED = 13  # fixed, so a rerun gives the same bootstrap interval; printed in the report
DEFAULT_MAX_CLUSTERS = 1_000_000  # per-cluster sums are kept in memory: ~200 bytes each
NAMES = ("ci", "ci_level", "bootstrap", "seed", "cluster_col", "max_clusters")


@dataclass(frozen=True)
class Identity:
    """Where a shard's examples are in their file, for the bootstrap's example identities: an
    example of global row r is row ``r - shift`` of the file whose key is ``key`` (a hash of its
    path under the sharded input's root). None for an unsharded input: identity is the row."""

    key: int
    shift: int


@dataclass(frozen=True)
class CIOptions:
    level: float = DEFAULT_LEVEL
    bootstrap: int = 0  # replicates; 0: the analytic (t) interval
    seed: int = DEFAULT_SEED
    cluster_col: str | None = None  # --cluster-col: intervals clustered by this column's values
    max_clusters: int = DEFAULT_MAX_CLUSTERS
    #: a shard's file and row shift (engine.sharded sets it); not part of ``plain``: parts of
    #: different files merge
    identity: Identity | None = None

    def plain(self) -> dict[str, Any]:
        out: dict[str, Any] = {"level": self.level, "bootstrap": self.bootstrap, "seed": self.seed}
        if self.cluster_col is not None:  # only then: states saved before --cluster-col still merge
            out["cluster_col"] = self.cluster_col
        return out


def ci_options(kwargs: Mapping[str, Any]) -> CIOptions | None:
    """The interval options, or None without --ci (--bootstrap alone implies --ci)."""
    level, boot, seed = kwargs.get("ci_level"), kwargs.get("bootstrap"), kwargs.get("seed")
    cluster, max_clusters = kwargs.get("cluster_col"), kwargs.get("max_clusters")
    wanted = bool(kwargs.get("ci")) or bool(boot)
    if not wanted:
        if level is not None or seed is not None or cluster is not None or max_clusters is not None:
            raise UsageError(
                "--ci-level, --seed, --cluster-col and --max-clusters shape an interval: add --ci "
                "(or --bootstrap B)"
            )
        return None
    if cluster is not None and (not isinstance(cluster, str) or not cluster.strip()):
        raise UsageError(f"--cluster-col takes one column name or position, not {cluster!r}")
    max_clusters = DEFAULT_MAX_CLUSTERS if max_clusters is None else max_clusters
    if isinstance(max_clusters, bool) or not isinstance(max_clusters, int) or max_clusters < 2:
        raise UsageError(f"--max-clusters must be a whole number of at least 2, not {max_clusters!r}")
    level = DEFAULT_LEVEL if level is None else level
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.5 <= level < 1.0 \
            or not math.isfinite(level):
        raise UsageError(f"--ci-level must be at least 0.5 and below 1 (0.95 for 95%), not {level!r}")
    boot = 0 if boot is None else boot
    if isinstance(boot, bool) or not isinstance(boot, int) or (boot and boot < 100) or boot > 100_000:
        raise UsageError(f"--bootstrap takes 100 to 100,000 replicates (1000 is usual), not {boot!r}")
    seed = DEFAULT_SEED if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise UsageError(f"--seed must be a whole number from 0 to 2^63 - 1, not {seed!r}")
    return CIOptions(float(level), boot, seed, cluster, max_clusters)


def click_options() -> list[Callable[..., Any]]:
    """The options every metric command gets (click is imported by the caller already)."""
    import click

    return [
        click.option(
            "--ci", is_flag=True, default=False,
            help="Confidence intervals of the headline and its main companions (JSON ci, a table "
            "column, value_low/value_high in CSV/TSV). Analytic by default: Student t from "
            "streamed moments (weighted: effective sample size); RMSE and perplexity by "
            "transforming MSE's and cross-entropy's interval; perplexity clustered by sequence.",
        ),
        click.option("--ci-level", type=float, default=None, metavar="LEVEL",
                     help=f"Confidence level of --ci, two-sided [default: {DEFAULT_LEVEL}]."),
        click.option(
            "--bootstrap", type=int, default=None, metavar="B",
            help="Percentile intervals from B Poisson-bootstrap replicates instead (implies --ci; "
            "perplexity resamples sequences). Each example's weights depend only on --seed, its "
            "row and the replicate, so chunking, threads, shards and engines agree.",
        ),
        click.option("--seed", type=int, default=None, metavar="N",
                     help=f"Seed of --bootstrap [default: {DEFAULT_SEED}, shown in the report]."),
        click.option(
            "--cluster-col", default=None, metavar="COL",
            help="Cluster the intervals by this column of PREDS (patients, documents, users): "
            "rows with one value are not independent. Analytic: the cluster-robust ratio "
            "estimator with G-1 degrees of freedom over G clusters; --bootstrap: one Poisson "
            "weight per cluster. Implies nothing without --ci.",
        ),
        click.option(
            "--max-clusters", type=int, default=None, metavar="N",
            help=f"Most distinct --cluster-col values kept (their sums are held in memory) "
            f"[default: {DEFAULT_MAX_CLUSTERS:,}]; more is exit 3.",
        ),
    ]
