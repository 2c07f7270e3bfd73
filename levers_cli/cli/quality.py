"""``levers quality``: acceptability of each lever's changes, measured on shadow pairs."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from levers_cli.cli.options import ConfigOpt, JsonOpt, WorkspaceOpt
from levers_cli.cli.output import err_console, out_console


def _share(part: dict[str, Any]) -> str:
    if not part["n"]:
        return "—"
    return (
        f"{part['rate']:.0%} [{part['low']:.0%}–{part['high']:.0%}] "
        f"({part['acceptable']}/{part['n']})"
    )


def quality(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    no_proxies: Annotated[
        bool,
        typer.Option("--no-proxies", help="Skip the proxies (no embedder is loaded)."),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Show how acceptable each lever's changes are, per feature › category.

    Pairs are shadow answers (`levers export shadow`, then `levers analyze` on the batch
    output) with their original calls. Judged acceptability comes from `levers export
    judge` grades; proxies (exact match, JSON fields, embedding similarity, length ratio)
    are shown apart and never decide. Each share has its Wilson interval; the decision
    compares its lower end with the quality bar ([quality] min_acceptable): meets, below
    or unmeasured.

    Example: levers quality --json
    """
    from levers_cli.analysis import resolve_embedder
    from levers_cli.config import load_config
    from levers_cli.quality import quality_report
    from levers_cli.store import Workspace

    cfg = load_config(config)
    with Workspace(workspace, create=False) as ws:
        ws.require_calls()
        embedder = None if no_proxies or not ws.count("variants") else resolve_embedder(ws, cfg)[0]
        data = quality_report(ws, cfg, embedder)
    if json_out:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    bar = data["bar"]
    if not data["rows"]:
        err_console.print(
            "no shadow pairs yet: run `levers export shadow --lever routing`, the batch, and "
            "`levers analyze <its output>`",
            markup=False,
            highlight=False,
        )
        return
    table = Table(
        title=f"quality: judged grade ≥ {bar['min_grade']:g} in ≥ {bar['min_acceptable']:.0%} "
        f"of calls (lower bound of the {bar['confidence']:.0%} Wilson interval; "
        f"{escape(bar['source'])})",
        title_justify="left",
    )
    for name in ("feature › category", "lever → model", "pairs", "judged"):
        table.add_column(name, justify="right" if name == "pairs" else "left")
    table.add_column("proxies (never decide)")
    table.add_column("decision")
    for row in data["rows"]:
        where = (
            "all categories"
            if row["total"]
            else f"{row['feature']} › {row['category'] or row['category_id']}"
        )
        cells = [
            escape(str(where)),
            escape(f"{row['lever']} → {row['target_model']}"),
            f"{row['pairs']:,}",
            _share(row["judged"]),
        ]
        proxies = [
            f"{p}: {_share(row['proxy'][p])}" for p in data["proxies"] if row["proxy"][p]["n"]
        ]
        cells.append(escape("\n".join(proxies)) or "—")
        cells.append(row["decision"])
        table.add_row(*cells, style="bold" if row["total"] else None)
    out_console.print(table)
