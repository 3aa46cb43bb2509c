"""Readers: one module per format, each yields numpy chunks and knows no loss math.

``FORMATS``: every format ``open_reader`` accepts; ``INPUT_FORMATS``: the choices of the CLI's
``--input-format`` (both from ``formats.TABLE``). ``token_view``: a reader read one token per
row, for language models.
"""

from .base import Chunk, Group, Reader
from .formats import FORMATS, INPUT_FORMATS
from .open import open_reader
from .tokens import TokenView, token_view

__all__ = ["FORMATS", "INPUT_FORMATS", "Chunk", "Group", "Reader", "TokenView", "open_reader", "token_view"]
