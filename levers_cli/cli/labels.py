"""``levers export label-sheet`` and ``levers label``: human tier labels for routing (the
label-sheet command is registered in the ``export`` group by :mod:`levers_cli.cli.export`)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from levers_cli.cli.options import ConfigOpt, ForceOpt, NoRedactOpt, WorkspaceOpt
from levers_cli.cli.output import err_console, fail, out_console
from levers_cli.text.content import plural


def label_sheet(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Queries to sample.")] = 1000,
    out: Annotated[str, typer.Option("--out", "-o", help="CSV to write.")] = os.path.join(
        "reports", "label-sheet.csv"
    ),
    force: ForceOpt = False,
    no_redact: NoRedactOpt = False,
) -> None:
    """Write a CSV of queries across categories with an empty tier column to fill.

    Each row has the query, its category and predicted tier; fill `tier` with cheap or strong
    and read it back with `levers label`.

    Example: levers export label-sheet --n 500
    """
    from levers_cli.config import load_config
    from levers_cli.export.label_sheet import export_label_sheet
    from levers_cli.store import Workspace

    if os.path.isdir(out):
        fail(f"--out {out} is a folder; name a .csv file")
    if os.path.exists(out) and not force:
        fail(f"{out} exists; pass --force to overwrite it")
    with Workspace(workspace, create=False) as ws:
        written = export_label_sheet(ws, out, n, config=load_config(config), redacted=not no_redact)
    out_console.print(
        f"{plural(written, 'query', 'queries')} written to {out}", markup=False, highlight=False
    )
    err_console.print(
        "fill the tier column with cheap or strong, then: levers label " + out, markup=False
    )


def label(
    sheet: Annotated[str, typer.Argument(help="A filled label sheet (CSV).")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Fold a filled label sheet's tier column into the workspace (routing evidence).

    Example: levers label reports/label-sheet.csv
    """
    from levers_cli.levers.routing import read_labels
    from levers_cli.store import Workspace

    with Workspace(workspace, create=False) as ws:
        stored = read_labels(ws, sheet)
    out_console.print(f"{plural(stored, 'tier label')} stored", highlight=False)
