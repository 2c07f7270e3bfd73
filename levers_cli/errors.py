"""One error family for the whole library.

Every error the core raises is a :class:`LeversError` whose message is written for the
user: what failed, the offending value, and what to do. The CLI prints the message on one
line to stderr and exits with the error's ``exit_code``: 1 for bad input or data (a log, a
workspace), 2 for bad usage (:class:`UsageError`: an option, an argument or a ``levers.toml``
setting); the core never prints or exits.
"""

from __future__ import annotations


class LeversError(Exception):
    """Base class of every error levers raises on purpose.

    ``exit_code`` is the CLI's exit status for it (README: 1 bad input or data, 2 bad usage).
    """

    exit_code = 1


class UsageError(LeversError):
    """A value the caller chose is not one the command takes: an option or argument out of
    range or not a finite number, an unknown name, a ``levers.toml`` setting of the wrong kind
    (bad usage: exit 2)."""

    exit_code = 2


class InputFileError(LeversError):
    """A log file cannot be read at all (missing, unreadable, wrong kind of file).

    Args:
        path: the file as the user named it.
        reason: what is wrong, in the user's words.
        line: 1-based line (or row) number where it went wrong, when known.
        field: the field or column involved, when known.
    """

    def __init__(
        self, path: str, reason: str, *, line: int | None = None, field: str | None = None
    ) -> None:
        where = path if line is None else f"{path}:{line}"
        what = f" field '{field}':" if field else ""
        super().__init__(f"{where}:{what} {reason}")
        self.path = path
        self.line = line
        self.field = field
        self.reason = reason


class UnknownFormatError(UsageError):
    """``--format`` names no registered adapter (bad usage: exit 2)."""


class MappingError(LeversError):
    """A ``--map field=path`` option is malformed (bad usage: exit 2) or points at a column
    the file lacks (bad input: ``exit_code`` 1 on that instance)."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ConfigError(UsageError):
    """``levers.toml`` cannot be read or holds a value of the wrong kind (bad usage: exit 2,
    as a bad option is: the file holds the user's choices, not their data)."""


class WorkspaceError(LeversError):
    """The DuckDB workspace cannot be opened or holds no data for the command."""


class PeriodError(UsageError):
    """A ``--since`` or ``--compare`` value is neither a period (``7d``) nor a date (bad
    usage: exit 2)."""


class RecordError(LeversError):
    """One record cannot be normalized; the ingest quarantines it in ``rejects``.

    Args:
        reason: why the record was rejected.
        field: the field involved, when known.
    """

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(f"field '{field}': {reason}" if field else reason)
        self.field = field
