"""The two consoles (results → stdout, messages → stderr), the error exit, and the one place
where a library error becomes an exit code."""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from levers_cli.errors import LeversError, UsageError

out_console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on one line to stderr and exit with ``code``."""
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """Print ``warning: message`` on one line to stderr (the command goes on)."""
    err_console.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)


class LeversGroup(TyperGroup):
    """The ``levers`` command group: every command and subcommand runs inside its
    :meth:`invoke`, so a :class:`~levers_cli.errors.LeversError` raised anywhere below is
    printed here as ``error: <message>`` on stderr and exits with the error's ``exit_code``
    (1 bad input or data, 2 bad usage); a command body never catches one itself."""

    def invoke(self, ctx: Any) -> Any:  # a Click context (of the Click Typer uses)
        try:
            return super().invoke(ctx)
        except LeversError as exc:
            fail(str(exc), exc.exit_code)


def deprecated_spelling(old: str, new: str, value: Any, current: Any, default: Any) -> Any:
    """The value of an option renamed from ``old`` to ``new``, kept for one release: ``value``
    (given under ``old``, None when not) wins over the default with a note on stderr;
    ``current`` is the value under ``new``.

    Raises:
        UsageError: both spellings were given with different values (bad usage: exit 2).
    """
    if value is None:
        return current
    if current != default and current != value:
        raise UsageError(f"{old} and {new} say different things; give {new} only")
    warn(f"{old} is deprecated and goes in the next release; use {new}")
    return value
