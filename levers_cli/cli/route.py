"""``levers route``: send queries through an exported ``levers-router.json``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from levers_cli.cli.options import JsonOpt
from levers_cli.cli.output import deprecated_spelling, fail, out_console

DEFAULT_ROUTER = "reports/levers-router.json"


def route(
    text: Annotated[str | None, typer.Argument(help="The query to route.")] = None,
    router: Annotated[
        str,
        typer.Option("--router", help="levers-router.json from `levers export router-config`."),
    ] = DEFAULT_ROUTER,
    file: Annotated[
        str | None, typer.Option("--file", help="Route every line of this file instead.")
    ] = None,
    json_out: JsonOpt = False,
    old_router: Annotated[
        str | None, typer.Option("--config", hidden=True, help="Deprecated: --router.")
    ] = None,
) -> None:
    """Print the route, score and target model of a query (or of each line of --file).

    Example: levers route "how do I reset my password" --router reports/levers-router.json
    """
    from dataclasses import asdict

    from levers_cli.router import Router, read_queries

    router = deprecated_spelling("route --config", "--router", old_router, router, DEFAULT_ROUTER)
    if text is None and file is None:
        fail("give a query TEXT or --file FILE (one query per line)", code=2)
    if text is not None and file is not None:
        fail("give a query TEXT or --file FILE (one query per line), not both", code=2)
    if file is None and not (text or "").strip():
        fail("the query is empty; give the text to route", code=2)
    texts = read_queries(file) if file is not None else [text or ""]
    matches = Router.load(router).route_many(texts)
    if json_out:
        # scores are float32 cosines: 6 decimals is all they carry
        rows = [
            {"query": t, **asdict(m), "score": round(m.score, 6)}
            for t, m in zip(texts, matches, strict=True)
        ]
        out_console.print_json(json.dumps(rows[0] if file is None else rows))
        return
    for query, match in zip(texts, matches, strict=True):
        prefix = f"{query}\t" if file is not None else ""
        out_console.print(
            f"{prefix}{match.route}\t{match.score:.3f}\t{match.model}\t{match.via}",
            highlight=False, markup=False, soft_wrap=True,
        )  # fmt: skip
