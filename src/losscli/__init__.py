"""losscli: how wrong are the predictions? Streaming loss evaluation for files and arrays.

The public API (imported lazily, so ``losscli --version`` stays fast):

* ``evaluate(metric, preds, targets=None, **options) -> Report``
* one shortcut per metric, from the registry: ``mse``, ``mae``, ``bce``, ``cross_entropy``,
  ``perplexity``, ... -> float
* ``Evaluator`` for chunk-by-chunk use; its ``state`` is an ``EvalState`` that can be saved
  (``save``/``load``), merged (``merge``) and reported (``report()``); ``merge(paths)`` reports
  saved states together
* ``LossCliError`` and its subclasses ``InputError``, ``UsageError``, ``OutputError``
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "evaluate": "api",
    "merge": "api",
    "Report": "results.report",
    "build_report": "results.report",
    "Evaluator": "engine.evaluator",
    "EvalState": "state",
    "LossState": "state",
    "make_metric": "metrics",
    "LossCliWarning": "metrics.shortcuts",
    "LossCliError": "errors",
    "InputError": "errors",
    "UsageError": "errors",
    "OutputError": "errors",
}


def _shortcut_names() -> list[str]:
    from .metrics import registry

    return sorted(registry.shortcuts())


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        from importlib import import_module

        value = getattr(import_module(f"losscli.{module}"), name)
    elif not name.startswith("_") and name in _shortcut_names():
        from .metrics import registry

        value = registry.shortcut(name)
    else:
        raise AttributeError(f"module 'losscli' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public API (tab completion, ``help``): exports and one shortcut per metric."""
    return sorted({"__version__", *_EXPORTS, *_shortcut_names()})


__all__ = ["__version__", *_EXPORTS]  # the metric shortcuts are listed by dir(losscli)
