"""python -m losscli"""

from .cli import main

main()
