"""Options shared by several commands, defined once so they mean the same everywhere."""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated

import typer

from levers_cli.store import DEFAULT_WORKSPACE, WORKSPACE_ENV


def finite(
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    above: float | None = None,
    below: float | None = None,
) -> Callable[[float | None], float | None]:
    """A callback for a number option that refuses NaN and infinities (Python's ``float()``
    reads ``nan`` and ``inf``) and values outside the bounds given (``at_least``/``at_most``
    inclusive, ``above``/``below`` strict); each is bad usage (exit 2) with a message that
    names the option. NaN is checked first: a range check alone would call it out of range.

    Example: ``typer.Option("--budget", callback=finite(above=0))``.
    """

    def check(value: float | None) -> float | None:
        if value is None:
            return None
        if not math.isfinite(value):
            raise typer.BadParameter(f"{value} is not a finite number")
        for bound, fails, words in (
            (at_least, lambda b: value < b, "below"),
            (at_most, lambda b: value > b, "above"),
            (above, lambda b: value <= b, "not above"),
            (below, lambda b: value >= b, "not below"),
        ):
            if bound is not None and fails(bound):
                raise typer.BadParameter(f"{value:g} is {words} {bound:g}")
        return value

    return check


class Level(StrEnum):
    """The three settings of every lever (``levers_cli.levers.LEVELS``, spelled here so that
    ``levers --help`` does not import the levers)."""

    conservative = "conservative"
    expected = "expected"
    aggressive = "aggressive"


class EngineName(StrEnum):
    """Where partition functions run (``levers_cli.engine.ENGINES``, spelled here so that
    ``levers --help`` imports no engine)."""

    local = "local"
    ray = "ray"


EngineOpt = Annotated[
    EngineName | None,
    typer.Option(
        "--engine",
        help="Run the partition steps on this engine: local (this machine; [engine] workers "
        "processes) or ray (a Ray cluster: pip install 'levers-cli[ray]').",
        show_default="[engine] name in levers.toml, else local",
    ),
]


WorkspaceOpt = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        "-w",
        envvar=WORKSPACE_ENV,
        help=f"DuckDB workspace file (also ${WORKSPACE_ENV}).",
        show_default=DEFAULT_WORKSPACE,
    ),
]
ConfigOpt = Annotated[
    str | None,
    typer.Option("--config", help="levers.toml to read.", show_default="./levers.toml if present"),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON on stdout (for machines).")
]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", "-f", help="Log format to force (see `levers formats`)."),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        "-m",
        help="field=path: take a column from a field of the log, e.g. query=messages[0].content, "
        "label=category. Repeatable.",
    ),
]
FilesArg = Annotated[
    list[str], typer.Argument(help="Log files or folders (.jsonl/.json/.csv/.parquet, .gz).")
]
MaxRejectsOpt = Annotated[
    int,
    typer.Option("--max-rejects", min=0, help="Exit 1 when more records than this are rejected."),
]
BatchInputOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--batch-input",
        help="OpenAI Batch API input file(s) whose requests complete a batch output file "
        "(joined on custom_id). Repeatable.",
    ),
]
LevelOpt = Annotated[Level, typer.Option("--level", help="The levers' setting.")]
OutDirOpt = Annotated[
    str, typer.Option("--out", "-o", help="Folder to write into (created if missing).")
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Overwrite what an earlier export wrote there.")
]
NoRedactOpt = Annotated[
    bool,
    typer.Option(
        "--no-redact",
        help="Keep log text as logged: no placeholders for emails, phone numbers, card "
        "numbers and keys.",
    ),
]
