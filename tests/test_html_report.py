"""--report PATH.html (issue 14): rendered in headless Chromium as a person would look at it
(a screenshot that is not blank, no console errors, the headline and every chart in the DOM),
the HTML well formed, no script, written atomically, exit 2 without the extra."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
VOID = {
    "meta",
    "br",
    "img",
    "input",
    "link",
    "hr",
    "col",
    "source",
    "path",
    "rect",
    "use",
    "circle",
    "line",
    "stop",
    "polyline",
    "polygon",
    "ellipse",
    "image",
}


class Balanced(HTMLParser):
    """Every element closed, in order (SVG's self-closed elements count as closed)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()


def png_pixels(path: Path) -> bytes:
    """The decompressed scanlines of a PNG (filter bytes included): enough to tell blank from drawn."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return zlib.decompress(idat)


def _report(tmp: Path) -> tuple[Path, dict]:
    rng = np.random.default_rng(0)
    p = rng.beta(0.8, 0.8, 3000)
    y = (rng.random(3000) < p).astype(float)
    np.save(tmp / "p.npy", p)
    np.save(tmp / "y.npy", y)
    out = run_cli(
        "bce", tmp / "p.npy", tmp / "y.npy", "--calibration", "--report", tmp / "r.html", "-f", "json"
    )
    assert out.code == 0, out.stderr
    return tmp / "r.html", out.json()


def test_page_is_well_formed_self_contained_and_complete(tmp_path: Path) -> None:
    page, doc = _report(tmp_path)
    text = page.read_text(encoding="utf-8")
    parser = Balanced()
    parser.feed(text)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    assert "script" not in parser.tags and "<script" not in text.lower()
    for fetch in ('src="', "url(http", "<link", "@import", 'href="http'):  # nothing to fetch: no network
        assert fetch not in text, fetch
    assert repr(doc["value"])[:8] in text or f"{doc['value']:.7g}" in text
    for chart in ("chart-histogram", "chart-reliability"):
        assert f'id="{chart}"' in text
    assert not list(tmp_path.glob(".r.html.*"))  # no temporary file left


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make test installs it)")
def test_headless_chromium_renders_it(tmp_path: Path) -> None:
    page, doc = _report(tmp_path)
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1100,1800",
        "--enable-logging=stderr",
        "--v=0",
    ]
    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [*args, f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert shot.exists(), run.stderr
    pixels = png_pixels(shot)
    drawn = sum(1 for b in pixels if b not in (0, 255, 1, 4)) / len(pixels)  # bytes that are not white
    assert len(set(pixels)) > 64 and drawn > 0.01, "the screenshot is blank"
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    dom = subprocess.run([*args, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert 'id="headline-value"' in dom.stdout and f"{doc['value']:.7g}" in dom.stdout
    for chart in ("chart-histogram", "chart-reliability"):
        start = dom.stdout.index(f'id="{chart}"')
        assert "<svg" in dom.stdout[start : start + 400], chart


def test_without_the_extra_it_is_exit_2_before_reading(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.array([0.2, 0.7]))
    np.save(tmp_path / "y.npy", np.array([0.0, 1.0]))
    hidden = tmp_path / "hide"
    hidden.mkdir()
    # a sitecustomize that makes find_spec('matplotlib') find nothing
    (hidden / "sitecustomize.py").write_text(
        "import importlib.machinery as m\n"
        "_orig = m.PathFinder.find_spec\n"
        "def _fs(name, path=None, target=None):\n"
        "    return None if name == 'matplotlib' else _orig(name, path, target)\n"
        "m.PathFinder.find_spec = staticmethod(_fs)\n"
    )
    out = run_cli(
        "bce",
        tmp_path / "p.npy",
        tmp_path / "y.npy",
        "--report",
        tmp_path / "r.html",
        env={"PYTHONPATH": str(hidden)},
    )
    assert out.code == 2 and "pip install 'losscli[report]'" in out.stderr and out.stdout == ""
    assert not (tmp_path / "r.html").exists()
    wrong = run_cli("bce", tmp_path / "p.npy", tmp_path / "y.npy", "--report", tmp_path / "r.txt")
    assert wrong.code == 2 and ".html" in wrong.stderr


def test_merge_writes_a_report_too(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.linspace(0.05, 0.95, 40))
    np.save(tmp_path / "y.npy", (np.arange(40) % 2).astype(float))
    assert run_cli("bce", tmp_path / "p.npy", tmp_path / "y.npy", "--save-state", tmp_path / "a.s").code == 0
    out = run_cli("merge", tmp_path / "a.s", "--report", tmp_path / "m.html")
    assert out.code == 0 and 'id="chart-histogram"' in (tmp_path / "m.html").read_text()
