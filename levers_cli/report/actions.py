"""The plan that opens every report: the levers ordered by expected monthly saving per unit
of effort, each with its concrete next action (computed from the findings), the export that
implements it and when to do it — the seed's "what to do Monday", from the user's numbers.

Rules (settings in ``defaults.toml [report]``, all assumptions):
``effort_units`` weigh effort (low/medium/high); the saving is the lever's *marginal* saving at
the expected level in the 1→7 waterfall (USD per month). A lever's slot starts at its effort
(low → this week, medium → next sprint, high → next quarter); one slot later when it saves under
``minor_share`` of the monthly cost, one slot sooner when it saves at least ``major_share``;
levers that save nothing are listed last as "not now".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from levers_cli.config import Config
from levers_cli.text.content import shorten

WHEN = ("this week", "next sprint", "next month", "next quarter")
_START = {"low": 0, "medium": 1, "high": 3}

#: lever name → the export command that implements it (None: a change in the application)
EXPORTS: dict[str, str | None] = {
    "routing": "levers export router-config",
    "context": None,
    "caching": None,
    "caps": "levers export caps",
    "materialize": "levers export workflows",
    "lora": "levers export lora",
    "batch": "levers export batch",
}


def _names(rows: list[dict[str, Any]], key: str, n: int = 3) -> str:
    picked = [f"“{shorten(str(r[key]), 70)}”" for r in rows[:n] if r.get(key)]
    return ", ".join(picked) + (" …" if len(rows) > n else "")


def _routing(lever: dict[str, Any], ctx: dict[str, Any]) -> str:
    level = lever["details"].get("levels", {}).get("expected", {})
    cats = set(level.get("routed_categories", []))
    rows = [r for r in lever["evidence"] if r.get("category_id") in cats]
    tiers = ctx["config"].get("tiers", "cheap")
    used = {p for p in ctx["providers"] if p in tiers} or set(tiers)
    cheap = ", ".join(sorted({tiers[p] for p in used}))
    return (
        f"Route {level.get('routed_calls', 0):,} calls in {len(cats)} "
        f"categor{'y' if len(cats) == 1 else 'ies'} to the cheap "
        f"tier ({cheap}): {_names(rows, 'label')}"
    )


def _context(lever: dict[str, Any], _: dict[str, Any]) -> str:
    d = lever["details"]
    summaries = d.get("summaries", {}).get("expected", 0)
    removed = d.get("tokens_removed", {}).get("expected", 0)
    return (
        f"Summarize long conversation histories: {summaries:,} summaries remove {removed:,} "
        f"re-sent input tokens over the log ({d.get('multi_turn_conversations', 0):,} "
        "multi-turn conversations)"
    )


def _caching(lever: dict[str, Any], _: dict[str, Any]) -> str:
    breakers = [e for e in lever["evidence"] if e.get("kind") == "prefix_breaker"]
    hits = lever["details"].get("exact_hits_by_level", {}).get("expected", 0)
    semantic = lever["details"].get("semantic_hits_by_level", {}).get("expected", 0)
    parts = []
    if breakers:
        b = breakers[0]
        parts.append(
            f"move the {b['pattern']} at token {b['token_position']} of the {b['model']} "
            f"system prompt to its end ({b['calls']:,} calls)"
        )
    if hits or semantic:
        parts.append(f"serve {hits:,} exact and {semantic:,} semantic repeats from a cache")
    text = "; ".join(parts) or "keep prompts' static content first"
    return text[0].upper() + text[1:]


def _caps(lever: dict[str, Any], _: dict[str, Any]) -> str:
    rows = lever["evidence"]
    example = ""
    if rows:
        r = rows[0]
        example = f", e.g. “{r['label']}” on {r['model']}: {r['cap']['expected']} (p95)"
    return f"Set max_tokens per category and model ({len(rows)} shown){example}"


def _materialize(lever: dict[str, Any], _: dict[str, Any]) -> str:
    rows = lever["evidence"]
    calls = sum(r.get("calls", 0) for r in rows)
    queries = [{"q": str(r.get("template", "")).split(" … ")[-1]} for r in rows]
    return f"Answer {len(rows)} recurring templates ({calls:,} calls) by script: " + _names(
        queries, "q", 2
    )


def _lora(lever: dict[str, Any], _: dict[str, Any]) -> str:
    rows = [r for r in lever["evidence"] if "expected" in r.get("levels", [])]
    examples = sum(r.get("examples", 0) for r in rows)
    if not rows:
        return "No category has enough accepted examples for a LoRA model yet"
    return (
        f"Fine-tune a LoRA model on {examples:,} accepted answers from {len(rows)} "
        f"categor{'y' if len(rows) == 1 else 'ies'}: " + _names(rows, "label")
    )


def _batch(lever: dict[str, Any], _: dict[str, Any]) -> str:
    moved = lever["details"].get("moved_calls", {}).get("expected", 0)
    return f"Send {moved:,} calls that need no real-time answer through the Batch API: " + _names(
        lever["evidence"], "query_start", 2
    )


_ACTIONS = {
    "routing": _routing,
    "context": _context,
    "caching": _caching,
    "caps": _caps,
    "materialize": _materialize,
    "lora": _lora,
    "batch": _batch,
}


def make_plan(
    simulation: dict[str, Any],
    efforts: dict[int, str],
    config: Config,
    providers: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Order the levers of ``simulation`` (``SimulationResult.as_dict()``) by expected saving
    per unit of effort.

    Args:
        simulation: the simulation's JSON shape.
        efforts: lever id → ``low``/``medium``/``high`` (each lever's ``effort``).
        config: supplies ``[report] effort_units``, ``minor_share``, ``major_share``, ``[tiers]``.
        providers: the providers in the logs (routing names their cheap tiers only).

    Returns:
        One dict per lever, best first: ``rank``, ``id``, ``name``, ``effort``,
        ``saving_usd_month`` (expected, marginal), ``saving_share`` (of the monthly cost now),
        ``saving_per_effort``, ``basis``, ``action``, ``export`` (command or None), ``when``.
    """
    units = config.get("report", "effort_units")
    minor = float(config.get("report", "minor_share"))
    major = float(config.get("report", "major_share"))
    before = float(simulation["monthly_cost_before"]) or 0.0
    rows = []
    for lever in simulation["levers"]:
        saving = float(lever["saving_usd_month"].get("expected", 0.0))
        effort = efforts.get(lever["id"], "medium")
        share = saving / before if before else 0.0
        if saving <= 0:
            when = "not now"
        else:
            slot = _START[effort] + (share < minor) - (share >= major)
            when = WHEN[min(max(slot, 0), len(WHEN) - 1)]
        ctx = {"config": config, "providers": set(providers)}
        action = _ACTIONS.get(lever["name"], lambda *_: "")(lever, ctx)
        if saving <= 0:
            action = f"Nothing to gain at the expected level now ({action[0].lower()}{action[1:]})"
        rows.append(
            {
                "id": lever["id"],
                "name": lever["name"],
                "effort": effort,
                "saving_usd_month": saving,
                "saving_share": share,
                "saving_per_effort": saving / float(units[effort]),
                "basis": lever["basis"],
                "action": action,
                "export": EXPORTS.get(lever["name"]),
                "when": when,
            }
        )
    rows.sort(key=lambda r: (r["saving_usd_month"] <= 0, -r["saving_per_effort"], r["id"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows
