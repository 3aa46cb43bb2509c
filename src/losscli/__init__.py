"""losscli: how wrong are the predictions? Streaming loss evaluation for files and arrays.

The public API (imported lazily, so ``losscli --version`` stays fast):

* ``evaluate(metric, preds, targets=None, **options) -> Report``
* ``mse``, ``mae``, ``bce``, ``cross_entropy``, ``perplexity`` -> float
* ``Evaluator`` and ``LossState`` for chunk-by-chunk use and merging
* ``LossCliError`` and its subclasses ``InputError``, ``UsageError``, ``OutputError``
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "evaluate": "api",
    "mse": "api",
    "mae": "api",
    "bce": "api",
    "cross_entropy": "api",
    "perplexity": "api",
    "Report": "report",
    "Evaluator": "engine",
    "LossState": "state", "EvalState": "state",
    "make_metric": "metrics",
    "LossCliWarning": "api",
    "LossCliError": "errors",
    "InputError": "errors",
    "UsageError": "errors",
    "OutputError": "errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'losscli' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"losscli.{module}"), name)
    globals()[name] = value
    return value
