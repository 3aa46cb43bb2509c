"""python -m losscli"""

from .cli import run

run()
