"""The engine: plan a run (``plan``), score chunks (``evaluator``), drive the chunks through
(``runners``), and choose columns (``roles``). It never prints."""

from __future__ import annotations

from .evaluator import Evaluator, ExampleSink
from .runners import DEFAULT_CHUNK_BYTES, MAX_CHUNK_ROWS, Role, choose_chunk_rows, default_threads, run

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "MAX_CHUNK_ROWS",
    "Evaluator",
    "ExampleSink",
    "Role",
    "choose_chunk_rows",
    "default_threads",
    "run",
]
