"""Readers: one module per format, each yields numpy chunks and knows no loss math.

``token_view``: a reader read one token per row, for language models.
"""

from .base import Chunk, Group, Reader
from .open import FORMATS, open_reader
from .tokens import TokenView, token_view

__all__ = ["FORMATS", "Chunk", "Group", "Reader", "TokenView", "open_reader", "token_view"]
