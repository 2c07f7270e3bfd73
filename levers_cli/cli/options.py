"""Options shared by several commands, defined once so they mean the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

from levers_cli.store import DEFAULT_WORKSPACE, WORKSPACE_ENV

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
