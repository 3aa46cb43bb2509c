"""One exception hierarchy, so the CLI can map every failure to a documented exit code.

Library code raises these and never calls sys.exit: a Python user catches ``LossCliError``;
the CLI prints ``str(error)`` as the single stderr line and exits with ``error.exit_code``.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_THRESHOLD = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_OUTPUT = 4
EXIT_ENGINE = 5
EXIT_INTERNAL = 70
EXIT_SIGINT = 130
EXIT_SIGPIPE = 141
EXIT_SIGTERM = 143


class LossCliError(Exception):
    """Base of every error losscli raises on purpose."""

    exit_code = EXIT_INTERNAL

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its class, message and attributes, whatever its ``__init__`` takes: an error
        raised on a Dask worker comes back to the client as the same error, with the same line."""
        return (_rebuild, (type(self), str(self), dict(self.__dict__)))


def _rebuild(cls: type[LossCliError], message: str, attributes: dict[str, Any]) -> LossCliError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(attributes)
    return error


class UsageError(LossCliError):
    """The options contradict each other or do not fit the data's shape."""

    exit_code = EXIT_USAGE


class InputError(LossCliError):
    """An input file is missing, unreadable, corrupt, or holds values the metric cannot score.

    The message always starts with the file, then the place (row, column) where it applies,
    so a user can open the file at the right line.
    """

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        detail: str,
        *,
        path: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.detail = detail
        self.path = path
        self.row = row
        self.column = column
        super().__init__(self._format())

    def _format(self) -> str:
        where: list[str] = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column}")
        place = ", ".join(where)
        head = self.path or ""
        if head and place:
            head = f"{head}: {place}"
        elif place:
            head = place
        return f"{head}: {self.detail}" if head else self.detail


class AmbiguousInput(InputError):
    """The data can be read more than one way (``--input auto`` guessed from the first chunk and
    a later row disagrees): exit 2, since the fix is an option the user must give."""

    exit_code = EXIT_USAGE


class OutputError(LossCliError):
    """An output file (--per-example) could not be written; nothing partial is left behind."""

    exit_code = EXIT_OUTPUT


class EngineUnavailable(LossCliError):
    """The engine that would run the evaluation cannot be reached or started (a Dask scheduler
    that does not answer within --connect-timeout, a cluster that would not start): exit 5, so a
    job script can tell "try again later" from bad data or a wrong option."""

    exit_code = EXIT_ENGINE


class DataProblem(Exception):
    """Raised by the pure per-chunk math, which knows rows only relative to its chunk.

    The engine catches it and re-raises an ``InputError`` naming the file and the global row:
    losses never learn file names, and readers never learn loss math.
    """

    def __init__(
        self,
        role: str,
        local_row: int | None,
        detail: str,
        column: int | None = None,
        *,
        ambiguous: bool = False,
        against: str | None = None,
    ):
        super().__init__(detail)
        self.ambiguous = ambiguous  # becomes an AmbiguousInput (exit 2) instead of InputError
        #: the other role a mismatch is with (a width of the targets against the predictions'):
        #: its file is named too when it is another file, so either may be the one at fault
        self.against = against
        self.role = role
        self.local_row = local_row
        self.detail = detail
        self.column = column
