"""Gather everything a report shows into one JSON-able dict (``schema_version`` first).

Sources: :func:`levers_cli.summary.summarize` (spend, models, categories, span),
:func:`levers_cli.simulate.simulate` (the seven levers' findings and the 1→7 waterfall at three
levels), :func:`levers_cli.report.actions.make_plan`,
:func:`levers_cli.report.projection.map_points` (the category map) and the price data's version
(:func:`levers_cli.enrich.prices.price_source`).
Log text (queries, exemplars, templates, prompts) passes through :mod:`levers_cli.redact` when
``[report] redact`` is on (the default).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from levers_cli.config import Config
from levers_cli.report.compare import check_compare, compare
from levers_cli.report.sanitize import redact_tree
from levers_cli.schema import CATEGORY_ID
from levers_cli.store import Workspace
from levers_cli.text.content import shorten
from levers_cli.version import __version__

#: Version of the report's JSON shape; bump it when a key changes meaning or goes away.
REPORT_SCHEMA_VERSION = 1

#: categories shown in charts and tables (the rest is summed into "other")
TOP_CATEGORIES = 15


def _hard_caps(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The caps lever's measured rows (``part`` "hard cap": a cap from the category's output
    distribution), without the assumed "instruction" rows beside them."""
    return [r for r in rows if r.get("part", "hard cap") == "hard cap"]


def _output_tokens(ws: Workspace, categories: list[dict[str, Any]], caps: list[dict]) -> list:
    """Output tokens per top category (at most 400 calls each, the same sample every run),
    with the expected cap of its largest (category, model) group."""
    cap_of: dict[int, tuple[int, int]] = {}
    for row in caps:
        cat, calls = row.get(CATEGORY_ID), int(row.get("calls", 0))
        if cat is not None and calls > cap_of.get(cat, (0, -1))[1]:
            cap_of[cat] = (int(row["cap"]["expected"]), calls)
    out = []
    for cat in categories[:TOP_CATEGORIES]:
        values = [
            int(v)
            for (v,) in ws.con.execute(
                """SELECT output_tokens FROM calls
                   WHERE coalesce(category_id, -1) = ? AND output_tokens IS NOT NULL
                   ORDER BY hash(call_id), call_id LIMIT 400""",
                [cat[CATEGORY_ID]],
            ).fetchall()
        ]
        out.append(
            {
                CATEGORY_ID: cat[CATEGORY_ID],
                "label": cat["label"],
                "p50": cat.get("p50_output_tokens"),
                "p95": cat.get("p95_output_tokens"),
                "cap": cap_of.get(cat[CATEGORY_ID], (None, 0))[0],
                "values": values,
            }
        )
    return out


def _assumptions(simulation: dict[str, Any], summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [
        {
            "lever": "analysis",
            "name": "monthly_run_rate",
            "value": summary.get("monthly_run_rate_usd"),
            "unit": "USD",
            "source": summary.get("monthly_run_rate_basis"),
        }
    ]
    for lever in simulation["levers"]:
        for fig in lever["figures"]:
            if fig["basis"] == "assumption":
                rows.append({"lever": lever["name"], **{k: fig[k] for k in fig if k != "basis"}})
    return rows


def _headline(summary: dict[str, Any], simulation: dict[str, Any]) -> dict[str, Any]:
    after = simulation["monthly_cost_after"]
    before = simulation["monthly_cost_before"]
    expected = after.get("expected", min(after.values()))
    return {
        "spend_usd": summary["spend_usd"],
        "calls": summary["calls"],
        "monthly_run_rate_usd": summary["monthly_run_rate_usd"],
        "monthly_run_rate_basis": summary["monthly_run_rate_basis"],
        "monthly_cost_before": before,
        "plan_monthly_usd": expected,
        "plan_range_usd": [min(after.values()), max(after.values())],
        "saving_share": (1 - expected / before) if before else 0.0,
        "monthly_basis": simulation["monthly_basis"],
    }


def _findings(levers: dict[str, dict[str, Any]], calls: int) -> dict[str, Any]:
    caching = levers.get("caching", {"evidence": [], "figures": [], "details": {}})
    batch = levers.get("batch", {"details": {}, "evidence": []})
    moved = batch["details"].get("moved_calls", {})
    candidates = batch["details"].get("candidates", 0)
    return {
        "cache_templates": [e for e in caching["evidence"] if e.get("kind") == "prefix"][:10],
        "prefix_breakers": [e for e in caching["evidence"] if e.get("kind") == "prefix_breaker"],
        "cache_hits": [e for e in caching["evidence"] if e.get("kind") in ("exact", "semantic")][
            :10
        ],
        "workflows": levers.get("materialize", {"evidence": []})["evidence"][:10],
        "batch": {
            "candidate_calls": candidates,
            "candidate_share": candidates / calls if calls else 0.0,
            "moved_calls": moved,
            "moved_share": {k: v / calls for k, v in moved.items()} if calls else {},
            "jobs": batch["evidence"][:10],
        },
        "lora": levers.get("lora", {"evidence": []})["evidence"][:10],
        # the hard-cap rows (each holds its instruction too; the instruction's own rows
        # carry its assumed saving, shown in the simulate evidence)
        "caps": _hard_caps(levers.get("caps", {"evidence": []})["evidence"])[:TOP_CATEGORIES],
    }


def gather(
    ws: Workspace,
    config: Config,
    *,
    levers: list[Any] | None = None,
    map_points: int | None = None,
    compare_period: str | None = None,
    compare_run: int | None = None,
    budget: float | None = None,
) -> dict[str, Any]:
    """Build the report's data.

    Args:
        ws: an analyzed workspace (priced and categorized calls).
        config: the effective configuration (``[report]`` for the map and the plan).
        levers: the levers to simulate (default: all seven).
        map_points: override ``[report] map_points`` (most distinct queries on the map).
        compare_period: add ``compare``, the last period (``7d``, ``24h``, ``2w``) against
            the one before (:func:`levers_cli.report.compare.compare`); or
        compare_run: add ``compare``, the newest ``analyze`` run against this run id.
        budget: monthly budget in USD the compared run rate is held against.

    Returns:
        The report dict: ``schema_version``, ``generated_at``, ``levers_version``,
        ``price_data``, ``span``, ``headline``, ``plan``, ``waterfall`` (per level: id, name,
        saving and cost after, USD/month), ``simulation`` (``levers simulate --json``'s shape),
        ``spend_by_model``, ``categories``, ``cost_checks`` (logged vs levers' cost),
        ``output_tokens``, ``findings``, ``assumptions``,
        ``map``, ``redaction`` (``{"enabled", "counts"}``), and with a comparison
        ``compare`` (redacted whatever ``[report] redact`` says).

    Raises:
        WorkspaceError: the workspace is not fully analyzed
            (:meth:`~levers_cli.store.Workspace.require_analysis`) or holds no priced calls.
        UsageError: both ``compare_period`` and ``compare_run`` are given.
        PeriodError, LeversError: as :func:`~levers_cli.report.compare.compare` raises.
    """
    from levers_cli.enrich.prices import price_source
    from levers_cli.levers import all_levers
    from levers_cli.report.actions import make_plan
    from levers_cli.report.projection import map_points as project_map
    from levers_cli.simulate import simulate
    from levers_cli.summary import summarize

    check_compare(compare_period, compare_run)
    ws.require_analysis()
    chosen = levers if levers is not None else all_levers()
    summary = summarize(ws, config)
    simulation = simulate(ws, config, chosen).as_dict()
    by_name = {lever["name"]: lever for lever in simulation["levers"]}
    limit = int(map_points if map_points is not None else config.get("report", "map_points"))
    cat_map = project_map(ws, limit, str(config.get("report", "map_projection")))
    categories = summary["categories"]
    caps_rows = _hard_caps(by_name.get("caps", {}).get("evidence", []))
    for cat in categories:
        cat["exemplars"] = [shorten(e, 200) for e in cat.get("exemplars") or []]
    data: dict[str, Any] = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "levers_version": __version__,
        "workspace": ws.path,
        "price_data": price_source(),
        "span": {
            k: summary[k] for k in ("first_ts", "last_ts", "span_days", "calls", "calls_without_ts")
        },
        "headline": _headline(summary, simulation),
        "plan": make_plan(
            simulation,
            {lv.id: lv.effort for lv in chosen},
            config,
            {m["provider"] for m in summary["spend_by_model"] if m.get("provider")},
            chosen,
        ),
        "waterfall": simulation["waterfall"],
        "spend_by_model": summary["spend_by_model"],
        "categories": categories,
        "unknown_models": summary["unknown_models"],
        "cost_checks": summary["cost_checks"],
        "output_tokens": _output_tokens(ws, categories, caps_rows),
        "findings": _findings(by_name, summary["calls"]),
        "assumptions": _assumptions(simulation, summary),
        "map": cat_map,
        "simulation": simulation,
    }
    counts: Counter[str] = Counter()
    enabled = bool(config.get("report", "redact"))
    if enabled:
        data = redact_tree(data, counts)
    data["redaction"] = {"enabled": enabled, "counts": dict(counts)}
    if compare_period or compare_run is not None:
        found = compare(ws, config, period=compare_period, run_id=compare_run, budget=budget)
        data["compare"] = redact_tree(found, Counter())
    return data
