"""Statistics core for intervals and model comparisons: no I/O, numpy and the standard library only.

- ``moments``: mergeable weighted moments of per-example values and of cluster ratios.
- ``distributions``: standard normal and Student t cdf/quantile (no scipy in the default install).
- ``poisson``: counter-based Poisson(1) bootstrap weights and the mergeable replicate sums.
- ``intervals``: t/normal intervals from moments, monotone transforms, percentile intervals.

Every accumulator merges associatively and has a plain-data form (``to_plain``/``from_plain``), so
it can live in a state file and be combined over shards, threads and groups like any other tally.
"""

from losscli.stats.distributions import norm_cdf, norm_ppf, t_cdf, t_ppf
from losscli.stats.intervals import (
    Interval,
    mean_interval,
    percentile_interval,
    ratio_interval,
    t_interval,
    transform_interval,
)
from losscli.stats.moments import Moments, RatioMoments
from losscli.stats.poisson import (
    BootstrapSums,
    example_ids,
    file_key,
    key_identity,
    poisson_weights,
    row_identities,
)

__all__ = [
    "BootstrapSums",
    "Interval",
    "Moments",
    "RatioMoments",
    "example_ids",
    "file_key",
    "key_identity",
    "mean_interval",
    "norm_cdf",
    "norm_ppf",
    "percentile_interval",
    "poisson_weights",
    "ratio_interval",
    "row_identities",
    "t_cdf",
    "t_interval",
    "t_ppf",
    "transform_interval",
]
