"""Every metric losscli has, by name: the one list the CLI, the API and the renderers read.

Adding a metric is a module under ``metrics/`` (a ``MetricDef`` subclass and its typed
shortcut) plus one line in ``METRICS``. Modules are imported on first use, so ``losscli
--version`` and the command list cost nothing more as metrics are added.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from ..errors import UsageError
from .base import MetricDef

#: command name -> (module under metrics/, MetricDef class name), in --help's order
METRICS: dict[str, tuple[str, str]] = {
    "mse": ("mse", "MSE"),
    "mae": ("mae", "MAE"),
    "huber": ("huber", "Huber"),
    "bce": ("bce", "BCE"),
    "ce": ("ce", "CE"),
    "perplexity": ("perplexity", "Perplexity"),
}

_loaded: dict[str, MetricDef] = {}


def names() -> tuple[str, ...]:
    return tuple(METRICS)


def get(name: str) -> MetricDef:
    """The metric called ``name``; a usage error naming the choices for anything else."""
    if name not in _loaded:
        if name not in METRICS:
            raise UsageError(f"unknown metric {name!r}; choose one of {', '.join(METRICS)}")
        module, cls = METRICS[name]
        _loaded[name] = getattr(import_module(f"{__package__}.{module}"), cls)()
    return _loaded[name]


def shortcuts() -> dict[str, str]:
    """Python shortcut name -> metric name (``cross_entropy`` -> ``ce``)."""
    return {get(name).shortcut: name for name in METRICS}


def shortcut(function: str) -> Callable[..., Any]:
    """The typed shortcut function ``losscli.<function>`` (``losscli.mse``)."""
    metric = shortcuts()[function]
    module = import_module(f"{__package__}.{METRICS[metric][0]}")
    found: Callable[..., Any] = getattr(module, function)
    return found
