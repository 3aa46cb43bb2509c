"""--report PATH.html: one self-contained HTML file of a report (inline SVG and CSS; no
JavaScript, no network), drawn from the report and its state, never from the data.

The charts need the optional extra ``pip install 'losscli[report]'`` (matplotlib, whose SVG
backend draws them; see README "Report"). ``check_available`` refuses --report without it
(exit 2, before any input is read); ``write_report`` writes the file atomically (a temporary
file beside it, renamed on success), exit 4 when it cannot be written.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import Any

from ..atomic_file import write_atomically
from ..errors import UsageError

INSTALL = "pip install 'losscli[report]'"


def check_available(path: str) -> str:
    """The checked output path; UsageError without matplotlib or without an .html name."""
    from ..options import output_path

    if not path.lower().endswith((".html", ".htm")):
        raise UsageError(f"--report writes HTML: give a file name ending in .html, not {path}")
    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError(f"--report needs the optional extra that draws its charts: {INSTALL}")
    checked = output_path(path, "--report")
    # matplotlib takes about half a second to import: do it while the evaluation runs
    threading.Thread(target=_import_matplotlib, name="losscli-report-import", daemon=True).start()
    return checked


def _import_matplotlib() -> None:
    try:
        import matplotlib.backends.backend_svg
        import matplotlib.figure  # noqa: F401
    except Exception:  # the page's own import says what went wrong
        pass


def write_report(report: Any, path: str) -> None:
    """Render and write atomically; nothing partial is ever left at ``path``. A comparison
    (``losscli compare``, or merge of its states) gets the comparison page."""
    from ..compare.report import CompareReport

    if isinstance(report, CompareReport):
        from .compare_page import render_compare_page

        text = render_compare_page(report).encode("utf-8")
    else:
        from .page import render_page

        text = render_page(report).encode("utf-8")
    target = os.path.realpath(path) if os.path.islink(path) else path
    write_atomically(target, lambda fh: fh.write(text), f"--report {path}: cannot be written")
