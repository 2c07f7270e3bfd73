"""``levers simulate`` and ``levers config show``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from levers_cli.cli.options import ConfigOpt, EngineOpt, JsonOpt, Level, WorkspaceOpt, finite
from levers_cli.cli.output import err_console, fail, out_console
from levers_cli.report.fmt import basis_label, claim_value, usd

#: Exit code when ``--budget`` cannot be reached.
OUT_OF_REACH = 3


def _parse_ids(text: str | None, known: list[int]) -> list[int]:
    if not text:
        return known
    try:
        ids = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        fail(f"--levers {text!r}: give lever ids 1–7 separated by commas, e.g. 1,3,4", code=2)
    unknown = [i for i in ids if i not in known]
    if unknown:
        fail(f"--levers: no lever {unknown[0]}; available: {', '.join(map(str, known))}", code=2)
    return ids


def simulate(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    level: Annotated[
        Level | None,
        typer.Option(
            "--level", help="The levers' setting (default: all three).", show_default=False
        ),
    ] = None,
    levers: Annotated[
        str | None, typer.Option("--levers", help="Lever ids to enable, e.g. 1,3,4 (default: all).")
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            "--budget",
            callback=finite(above=0),
            help="Monthly budget in USD (> 0): which levers reach it? Exit 3 if none.",
        ),
    ] = None,
    backtest: Annotated[
        float | None,
        typer.Option(
            "--backtest",
            callback=finite(above=0, below=1),
            help="Fit on this share (0 < share < 1) of the log's span, measure on the rest.",
        ),
    ] = None,
    engine: EngineOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Apply the levers in order 1→7 to every call and show the monthly waterfall.

    Example: levers simulate --budget 2000
    """
    from levers_cli.budget import backtest as run_backtest
    from levers_cli.budget import solve_budget
    from levers_cli.config import load_config
    from levers_cli.engine import chosen_engine
    from levers_cli.levers import LEVELS, LEVERS, all_levers
    from levers_cli.simulate import simulate as run_simulation
    from levers_cli.store import Workspace

    ids = _parse_ids(levers, sorted(LEVERS))
    chosen = [lever for lever in all_levers() if lever.id in ids]
    cfg = load_config(config)
    with Workspace(workspace, create=False) as ws:
        if backtest is not None:
            data: dict[str, Any] = {"backtest": run_backtest(ws, cfg, chosen, backtest)}
        else:
            levels = (level.value,) if level else LEVELS
            runner = chosen_engine(cfg, engine.value if engine else None)
            try:
                result = run_simulation(ws, cfg, chosen, levels=levels, engine=runner)
            finally:
                if runner is not None:
                    runner.close()
            data = result.as_dict()
            if budget is not None:
                plan = solve_budget(ws, cfg, chosen, result.findings, budget)
                data["budget"] = plan.as_dict()
    if json_out:
        typer.echo(json.dumps(data, indent=2, default=str))
    elif "backtest" in data:
        _render_backtest(data["backtest"])
    else:
        _render(data)
    plan_data = data.get("budget")
    if plan_data and not plan_data["reachable"]:
        aggressive = data.get("monthly_cost_after", {}).get("aggressive")
        hint = (
            f" (the aggressive level would reach {usd(aggressive)}/month)"
            if aggressive is not None and aggressive <= plan_data["budget_usd_month"]
            else ""
        )
        err_console.print(
            f"budget {usd(plan_data['budget_usd_month'])}/month is out of reach at the expected "
            f"level by {usd(plan_data['short_by_usd_month'])}/month even with every lever{hint}",
            highlight=False,
        )
        raise typer.Exit(OUT_OF_REACH)


def _render(data: dict[str, Any]) -> None:
    levels = list(data["monthly_cost_after"])
    reference = "expected" if "expected" in levels else levels[0]
    table = Table(
        title="Waterfall: monthly saving of each lever given those before it (marginal), and "
        f"of the lever alone on the logged plan ({reference})",
        title_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("lever")
    for name in levels:
        table.add_column(name, justify="right")
    table.add_column(f"alone ({reference})", justify="right")
    table.add_column("basis")
    now = usd(data["monthly_cost_before"])
    table.add_row("", "cost now", *[now] * len(levels), "", "evidence")
    for lever in data["levers"]:
        table.add_row(
            str(lever["id"]),
            lever["name"],
            *[usd(-lever["saving_usd_month"].get(name, 0.0)) for name in levels],
            usd(-lever["standalone_usd_month"].get(reference, 0.0)),
            basis_label(lever, reference),
        )
    after_row = [usd(data["monthly_cost_after"][n]) for n in levels]
    table.add_row("", "cost after", *after_row, "", "")
    out_console.print(table)
    _render_claims(data, reference)
    before = data["monthly_cost_before"]
    after = data["monthly_cost_after"]
    low, high = min(after.values()), max(after.values())
    if not before:
        summary = "no cost in the workspace"
    elif len(after) == 1:
        summary = f"monthly cost {usd(before)} → {usd(low)} ({(1 - low / before) * 100:.0f} % less)"
    else:
        summary = (
            f"monthly cost {usd(before)} → {usd(low)}–{usd(high)} "
            f"({(1 - high / before) * 100:.0f}–{(1 - low / before) * 100:.0f} % less)"
        )
    out_console.print(summary, highlight=False)
    out_console.print(f"[dim]{data['monthly_basis']}[/dim]")
    out_console.print(
        f"[dim]basis of the {reference} saving: evidence = read from the logs (cheap-model "
        "answers, exact repeats, stable answers, declared or scheduled jobs); assumption = "
        "levers config (`levers config show`); mixed N % = N % of it on evidence[/dim]"
    )
    for lever in data["levers"]:
        rows = lever["evidence"][:5]
        # rows of different kinds (caching: prefix, exact, semantic …) have their own
        # columns: one table per kind, in the order the kinds first appear
        kinds: dict[Any, list[dict[str, Any]]] = {}
        for row in rows:
            kinds.setdefault(row.get("kind"), []).append(row)
        for kind, group in kinds.items():
            title = f"{lever['id']}. {lever['name']}: top evidence"
            evidence = Table(
                title=title + (f" ({escape(str(kind))})" if len(kinds) > 1 else ""),
                title_justify="left",
            )
            columns = list(group[0])[:6]
            for column in columns:
                evidence.add_column(column, overflow="fold")
            for row in group:
                evidence.add_row(*[escape(_cell(row.get(c))) for c in columns])
            out_console.print(evidence)
    plan = data.get("budget")
    if plan and plan["reachable"]:
        share = plan["routed_share"]
        names = zip(plan["lever_ids"], plan["lever_names"], strict=True)
        chosen = ", ".join(f"{i}. {n}" for i, n in names) or "no lever"
        out_console.print(
            f"budget {usd(plan['budget_usd_month'])}/month is reachable at the expected level "
            f"with {chosen} → {usd(plan['monthly_cost_after'])}/month"
            + (f"; {share * 100:.0f} % of calls change model" if share else ""),
            highlight=False,
        )


def _render_claims(data: dict[str, Any], reference: str) -> None:
    """The article's claims beside what levers measured with each lever alone."""
    rows = data.get("claims") or []
    if not rows:
        return
    table = Table(
        title=f"Claims of {data['claims_source']} beside what levers measured on these logs "
        f"(each lever alone, {reference})",
        title_justify="left",
    )
    for column in ("lever", "claim", "measured here", "what was measured"):
        if column == "measured here":
            table.add_column(column, overflow="fold", justify="right")
        else:
            table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            escape(row["lever"]),
            escape(row["wording"]),
            claim_value(
                row["metric"],
                row["measured"].get(reference),
                row["changed_calls_share"].get(reference),
            ),
            escape(row["metric_meaning"]),
        )
    out_console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)[:80]
    return "" if value is None else str(value)[:80]


def _render_backtest(data: dict[str, Any]) -> None:
    table = Table(
        title=f"Backtest: fitted on the first {data['fraction']:.0%} of the span "
        f"({data['fit_days']:.1f} days), forecast for the rest ({data['test_days']:.1f} days); "
        "USD per month of the later part, expected level",
        title_justify="left",
    )
    columns = ["#", "lever", "forecast", "realized", "error", "error %", "in sample"]
    columns.append("realized from")
    for column in columns:
        left = column in ("lever", "realized from")
        table.add_column(column, justify="left" if left else "right", overflow="fold")
    for row in data["levers"]:
        share = row["error_share"]
        source = row["realized_from"]
        if not row["signal"]:
            source = f"{row['note']}; {source}"
        table.add_row(
            str(row["id"]),
            row["name"],
            usd(row["predicted_usd_month"]),
            usd(row["realized_usd_month"]),
            usd(row["error_usd_month"]),
            "" if share is None else f"{share * 100:+.0f} %".replace("-", "−"),
            usd(row["remeasured_usd_month"]),
            escape(source),
        )
    out_console.print(table)
    after = data["monthly_cost_after"]
    out_console.print(
        f"later part: {usd(data['monthly_cost_before'])}/month → forecast "
        f"{usd(after['predicted'])}, realized {usd(after['realized'])}",
        highlight=False,
    )
    out_console.print(
        f"[dim]forecast: each lever's saving per category on the first part, as a share of the "
        f"category's cost, × the later part's cost per category. in sample: the lever "
        f"re-analyzed on the later part itself. Categories: "
        f"{escape(data['categories'])}. Still fitted on the whole log: "
        f"{escape(data['fitted_on_whole_log'])}.[/dim]"
    )


def config_show(config: ConfigOpt = None, json_out: JsonOpt = False) -> None:
    """Print the effective configuration and where each value came from.

    Example: levers config show --config levers.toml
    """
    from levers_cli.config import default_notes, load_config

    cfg = load_config(config)
    notes = default_notes()
    rows = [
        {
            "key": f"{section}.{key}",
            "value": value,
            "origin": cfg.origin.get(f"{section}.{key}", "default"),
            "note": notes.get(f"{section}.{key}", ""),
        }
        for section, table in cfg.values.items()
        for key, value in table.items()
    ]
    if json_out:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title="Effective configuration", title_justify="left")
    for column in ("key", "value", "origin", "meaning and source"):
        table.add_column(column, overflow="fold")
    for row in rows:
        cells = (row["key"], json.dumps(row["value"], default=str), row["origin"], row["note"])
        table.add_row(*[escape(str(cell)) for cell in cells])
    out_console.print(table)
