"""``levers route``: send queries through an exported ``levers-router.json``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from levers_cli.cli.options import JsonOpt
from levers_cli.cli.output import fail, out_console


def route(
    text: Annotated[str | None, typer.Argument(help="The query to route.")] = None,
    router_config: Annotated[
        str,
        typer.Option("--config", help="levers-router.json from `levers export router-config`."),
    ] = "reports/levers-router.json",
    file: Annotated[
        str | None, typer.Option("--file", help="Route every line of this file instead.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Print the route, score and target model of a query (or of each line of --file).

    Example: levers route "how do I reset my password" --config reports/levers-router.json
    """
    from dataclasses import asdict

    from levers_cli.errors import LeversError
    from levers_cli.router import Router

    if text is None and file is None:
        fail("give a query TEXT or --file FILE (one query per line)", code=2)
    if text is not None and file is not None:
        fail("give a query TEXT or --file FILE (one query per line), not both", code=2)
    try:
        if file is not None:
            with open(file, encoding="utf-8") as handle:
                texts = [line.rstrip("\n") for line in handle if line.strip()]
        else:
            if not (text or "").strip():
                fail("the query is empty; give the text to route", code=2)
            texts = [text or ""]
        matches = Router.load(router_config).route_many(texts)
    except LeversError as exc:
        fail(str(exc), exc.exit_code)
    except OSError as exc:
        fail(f"{exc.filename}: cannot read ({exc.strerror})")
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
