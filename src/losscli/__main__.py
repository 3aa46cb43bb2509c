"""python -m losscli"""

from .entry import run

run()
