"""Results as plain data: ``build_report(state)`` and the ``Report`` it returns."""

from __future__ import annotations

from .report import Report, build_report

__all__ = ["Report", "build_report"]
