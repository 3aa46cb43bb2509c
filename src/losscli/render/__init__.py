"""Render a Report: rich tables for people (table.py), stable text for machines (machine.py).

``FORMATS`` is the one list of output formats (the CLI's --format choices); this module imports
nothing, so the CLI can offer the choices without loading numpy or rich.
"""

FORMATS = ("table", "json", "csv", "tsv", "value")
