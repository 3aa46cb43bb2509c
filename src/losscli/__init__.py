"""losscli: how wrong are the predictions? Streaming loss evaluation for files and arrays.

The public API (imported lazily, so ``losscli --version`` stays fast):

* ``evaluate(metric, preds, targets=None, **options) -> Report``
* one shortcut per metric, from the registry: ``mse``, ``mae``, ``bce``, ``cross_entropy``,
  ``perplexity``, ... -> float
* ``Evaluator`` for chunk-by-chunk use; its ``state`` is an ``EvalState`` that can be saved
  (``save``/``load``), merged (``merge``) and reported (``report()``); ``merge(paths)`` reports
  saved states together
* ``compare(metric, targets, preds, **options) -> CompareReport``: ``losscli compare`` (paired
  tests of every model against the first)
* ``LossCliError`` and its subclasses ``InputError``, ``UsageError``, ``OutputError``
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time ``__getattr__`` imports lazily
    from .api import evaluate as evaluate
    from .api import merge as merge
    from .compare.api import compare as compare
    from .compare.report import CompareReport as CompareReport
    from .engine.evaluator import Evaluator as Evaluator
    from .errors import InputError as InputError
    from .errors import LossCliError as LossCliError
    from .errors import OutputError as OutputError
    from .errors import UsageError as UsageError
    from .metrics import make_metric as make_metric
    from .metrics.bce import bce as bce
    from .metrics.ce import cross_entropy as cross_entropy
    from .metrics.huber import huber as huber
    from .metrics.mae import mae as mae
    from .metrics.mse import mse as mse
    from .metrics.perplexity import perplexity as perplexity
    from .metrics.shortcuts import LossCliWarning as LossCliWarning
    from .metrics.shortcuts import Source as Source
    from .results.report import Report as Report
    from .results.report import build_report as build_report
    from .state import EvalState as EvalState
    from .state import LossState as LossState

__version__ = "0.1.0"

_EXPORTS = {
    "evaluate": "api",
    "merge": "api",
    "compare": "compare.api",
    "CompareReport": "compare.report",
    "Report": "results.report",
    "build_report": "results.report",
    "Evaluator": "engine.evaluator",
    "EvalState": "state",
    "LossState": "state",
    "make_metric": "metrics",
    "LossCliWarning": "metrics.shortcuts",
    "Source": "metrics.shortcuts",
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
