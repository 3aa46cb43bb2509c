"""The console entry point: answers ``--version`` before click is imported.

Scripts and installers call ``losscli --version`` to check what is on the path; importing click
for it is 40-50 ms of a ~70 ms start. Everything else goes to ``cli.run``.
"""

from __future__ import annotations

import sys

VERSION_LINE = "losscli, version {}\n"  # click.version_option's wording, as cli.py prints it


def run() -> None:
    if sys.argv[1:] == ["--version"]:
        from . import __version__

        try:
            sys.stdout.write(VERSION_LINE.format(__version__))
            sys.stdout.flush()
        except BrokenPipeError:  # as everywhere else: quiet, exit 141 (cli._silence_stdout)
            from .cli import _silence_stdout
            from .errors import EXIT_SIGPIPE

            _silence_stdout()
            sys.exit(EXIT_SIGPIPE)
        except OSError as exc:  # a full disk, /dev/full: output not written (exit 4), as rawout says
            from .errors import EXIT_OUTPUT

            sys.stderr.write(f"losscli: error: stdout: write failed ({exc.strerror or exc})\n")
            sys.exit(EXIT_OUTPUT)
        return
    from .cli import run as run_cli

    run_cli()
