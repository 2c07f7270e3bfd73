"""The ``levers`` command line: a thin Typer layer over the library.

Heavy libraries (torch, sentence-transformers, umap, hdbscan) are imported inside the
commands that need them, so ``levers --help`` starts fast. Library errors become exit codes in
one place, :class:`~levers_cli.cli.output.LeversGroup`; ``docs/cli.md`` is this app's
``--help``, written by ``scripts/cli_docs.py``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from levers_cli.cli import analyze as analyze_commands
from levers_cli.cli import export as export_commands
from levers_cli.cli import labels as label_commands
from levers_cli.cli import quality as quality_commands
from levers_cli.cli import report as report_commands
from levers_cli.cli import route as route_commands
from levers_cli.cli import simulate as simulate_commands
from levers_cli.cli.output import LeversGroup
from levers_cli.version import __version__

app = typer.Typer(
    name="levers",
    cls=LeversGroup,
    help="Find where an application's LLM money goes, and what each lever saves on its logs.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.command("analyze")(analyze_commands.analyze)
app.command("ingest")(analyze_commands.ingest)
app.command("formats")(analyze_commands.formats)
app.command("rejects")(analyze_commands.rejects)
app.command("simulate")(simulate_commands.simulate)
app.command("quality")(quality_commands.quality)
app.command("report")(report_commands.report)
app.command("check")(report_commands.check)
config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)
config_app.command("show")(simulate_commands.config_show)
app.add_typer(config_app, name="config")
app.add_typer(export_commands.export_app, name="export")
app.command("label")(label_commands.label)
app.command("route")(route_commands.route)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"levers {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """levers: read LLM call logs, measure seven cost levers, plan the savings."""


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
