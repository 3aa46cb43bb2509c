"""Render a Report: rich tables for people (table.py), stable text for machines (machine.py)."""
