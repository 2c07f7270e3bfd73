"""``levers report`` and ``levers check``."""

from __future__ import annotations

import json
import os
from enum import StrEnum
from typing import Annotated, Any

import typer

from levers_cli.cli.options import ConfigOpt, JsonOpt, NoRedactOpt, WorkspaceOpt, finite
from levers_cli.cli.output import deprecated_spelling, err_console, fail, out_console

#: Exit code of ``levers check`` when a limit is breached.
LIMIT_BREACHED = 4


class ReportFormat(StrEnum):
    """``levers report --to``; the value is also the file's suffix."""

    html = "html"
    md = "md"
    json = "json"


def report(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    to: Annotated[
        ReportFormat,
        typer.Option("--to", help="html (self-contained page), md or json."),
    ] = ReportFormat.html,
    out: Annotated[
        str | None,
        typer.Option("--out", "-o", help="File to write; '-' for stdout.", show_default=False),
    ] = None,
    compare: Annotated[
        str | None,
        typer.Option(
            "--compare",
            help="Add week-over-week changes: the last PERIOD (7d, 24h, 2w) "
            "against the one before.",
        ),
    ] = None,
    compare_run: Annotated[
        int | None,
        typer.Option(
            "--compare-run", min=1, help="Compare the newest analyze run with run RUN_ID."
        ),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            "--budget",
            callback=finite(at_least=0),
            help="Monthly budget in USD (≥ 0) to hold the run rate against.",
        ),
    ] = None,
    charts: Annotated[
        bool,
        typer.Option(
            "--charts",
            help="md: also write the charts as SVG files beside the report and link them.",
        ),
    ] = False,
    no_redact: NoRedactOpt = False,
    old_to: Annotated[
        ReportFormat | None,
        typer.Option("--format", "-f", hidden=True, help="Deprecated: --to."),
    ] = None,
) -> None:
    """Write the report: the plan, the waterfall, where the money goes, the category map.

    Default: reports/levers-report.html (opens offline, no network request).

    Example: levers report --to md --compare 7d --out summary.md
    """
    from levers_cli.config import load_config
    from levers_cli.report import gather, render_html, render_markdown
    from levers_cli.report.compare import check_compare
    from levers_cli.store import Workspace

    to = deprecated_spelling("report --format/-f", "--to", old_to, to, ReportFormat.html)
    check_compare(compare, compare_run)
    path = out or os.path.join("reports", f"levers-report.{to.value}")
    cfg = load_config(config)
    if no_redact:
        cfg.set("report", "redact", False)
    with (
        Workspace(workspace, create=False) as ws,
        err_console.status("simulating the levers and drawing the report…"),
    ):
        data = gather(ws, cfg, compare_period=compare, compare_run=compare_run, budget=budget)
    if to is ReportFormat.json:
        text = json.dumps(data, indent=2, default=str)
    elif to is ReportFormat.html:
        text = render_html(data)
    else:
        links = None
        if charts:
            from levers_cli.report.charts import write_chart_files

            base = os.path.splitext(path if path != "-" else "levers-report")[0]
            files = write_chart_files(data, base + "-charts")
            where = os.path.dirname(os.path.abspath(path if path != "-" else "x"))
            links = {t: os.path.relpath(p, where) for t, p in files.items()}
        text = render_markdown(data, links)
    _write(path, text)


def _write(path: str, text: str) -> None:
    if path == "-":
        typer.echo(text, nl=False)
        return
    try:
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")
    size = len(text.encode())
    err_console.print(f"wrote {path} ({size / 1e6:.1f} MB)" if size > 1e5 else f"wrote {path}",
                      markup=False, highlight=False)  # fmt: skip


def check(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    max_monthly_cost: Annotated[
        float | None,
        typer.Option(
            "--max-monthly-cost",
            callback=finite(at_least=0),
            help="USD (≥ 0): the latest period's monthly run rate.",
        ),
    ] = None,
    max_uncategorized_share: Annotated[
        float | None,
        typer.Option(
            "--max-uncategorized-share",
            callback=finite(at_least=0, at_most=1),
            help="Share (0–1) of the latest period's calls no category takes.",
        ),
    ] = None,
    max_cost_growth: Annotated[
        float | None,
        typer.Option(
            "--max-cost-growth",
            callback=finite(at_least=-1),
            help="Run-rate growth over the period before (0.2 = +20 %; ≥ -1: all of it gone).",
        ),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            "--budget",
            callback=finite(at_least=0),
            help="USD per month (≥ 0) the expected plan (all levers) must fit.",
        ),
    ] = None,
    period: Annotated[
        str, typer.Option("--period", help="The latest period to check (7d, 24h, 2w).")
    ] = "7d",
    json_out: JsonOpt = False,
) -> None:
    """CI gate: exit 0 within every limit, 4 with one line per breached limit.

    Example: levers check --max-monthly-cost 5000 --max-uncategorized-share 0.1
    """
    from levers_cli.config import load_config
    from levers_cli.report.check import check as run_check
    from levers_cli.store import Workspace

    if all(v is None for v in (max_monthly_cost, max_uncategorized_share, max_cost_growth, budget)):
        fail("give at least one limit: --max-monthly-cost, --max-uncategorized-share, "
             "--max-cost-growth or --budget", code=2)  # fmt: skip
    cfg = load_config(config)
    with Workspace(workspace, create=False) as ws:
        result = run_check(
            ws,
            cfg,
            period=period,
            max_monthly_cost=max_monthly_cost,
            max_uncategorized_share=max_uncategorized_share,
            max_cost_growth=max_cost_growth,
            budget=budget,
        )
    _print_check(result, json_out)
    if not result["passed"]:
        raise typer.Exit(LIMIT_BREACHED)


def _print_check(result: dict[str, Any], json_out: bool) -> None:
    if json_out:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        for line in result["breaches"]:
            out_console.print(line, markup=False, highlight=False, soft_wrap=True)
        if result["passed"]:
            out_console.print("ok: within every limit", highlight=False)
    for note in result["notes"]:
        err_console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
