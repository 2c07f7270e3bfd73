"""The two consoles (results → stdout, messages → stderr) and the error exit."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

out_console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on one line to stderr and exit with ``code``."""
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)
