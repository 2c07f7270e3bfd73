"""``levers export label-sheet``, ``levers export cache-pairs`` and ``levers label``: human
tier labels for routing and same/different verdicts for the semantic cache (the two sheet
commands are registered in the ``export`` group by :mod:`levers_cli.cli.export`)."""

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


def cache_pairs(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Pairs to sample.")] = 500,
    out: Annotated[str, typer.Option("--out", "-o", help="CSV to write.")] = os.path.join(
        "reports", "cache-pairs.csv"
    ),
    force: ForceOpt = False,
    no_redact: NoRedactOpt = False,
) -> None:
    """Write a CSV of semantic-cache candidate pairs with an empty verdict column to fill.

    Each row has a query, the earlier query whose answer the cache would serve, both
    answers and their similarity; fill `verdict` with same or different and read it back
    with `levers label`: the verdicts calibrate each category's threshold.

    Example: levers export cache-pairs --n 300
    """
    from levers_cli.config import load_config
    from levers_cli.export.cache_pairs import export_cache_pairs
    from levers_cli.store import Workspace

    if os.path.isdir(out):
        fail(f"--out {out} is a folder; name a .csv file")
    if os.path.exists(out) and not force:
        fail(f"{out} exists; pass --force to overwrite it")
    try:
        with Workspace(workspace, create=False) as ws:
            written = export_cache_pairs(
                ws, out, n, config=load_config(config), redacted=not no_redact
            )
    except OSError as exc:
        fail(f"{out}: cannot write ({exc.strerror})")
    out_console.print(f"{plural(written, 'pair')} written to {out}", markup=False, highlight=False)
    err_console.print(
        "fill the verdict column with same or different, then: levers label " + out,
        markup=False,
    )


def _sheet_fields(sheet: str) -> set[str]:
    """The header of a CSV sheet (empty when it cannot be read: the reader reports why)."""
    import csv

    try:
        with open(sheet, newline="", encoding="utf-8-sig") as handle:
            return set(next(csv.reader(handle), []))
    except (OSError, UnicodeDecodeError):
        return set()


def label(
    sheet: Annotated[str, typer.Argument(help="A filled label or cache-pair sheet (CSV).")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Fold a filled sheet into the workspace: a label sheet's tier column (routing
    evidence) or a cache-pair sheet's verdict column (semantic-cache calibration).

    Example: levers label reports/label-sheet.csv
    """
    from levers_cli.levers.caching import is_pair_sheet, read_verdicts
    from levers_cli.levers.routing import read_labels
    from levers_cli.store import Workspace

    pairs = is_pair_sheet(_sheet_fields(sheet))
    with Workspace(workspace, create=False) as ws:
        stored = read_verdicts(ws, sheet) if pairs else read_labels(ws, sheet)
    what = "pair verdict" if pairs else "tier label"
    out_console.print(f"{plural(stored, what)} stored", highlight=False)
