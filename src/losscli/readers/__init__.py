"""Readers: one module per format, each yields numpy chunks and knows no loss math."""

from .base import Chunk, Group, Reader
from .open import FORMATS, open_reader

__all__ = ["FORMATS", "Chunk", "Group", "Reader", "open_reader"]
