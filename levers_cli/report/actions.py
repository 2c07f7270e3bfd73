"""The plan that opens every report: the levers ordered by expected monthly saving per unit
of effort, each with its concrete next action and the export that implements it (each lever
names both: :meth:`~levers_cli.levers.base.Lever.next_action`, ``export_command``) and when to
do it — the seed's "what to do Monday", from the user's numbers.

Rules (settings in ``defaults.toml [report]``, all assumptions):
``effort_units`` weigh effort (low/medium/high); the plan ranks by the lever's *standalone*
saving (the lever alone on the logged plan, expected level, USD per month) per unit of effort,
as ../shared/DESIGN.md §6 asks: which lever to do first does not depend on the waterfall's
order, while its marginal saving (given the levers before it in the 1→7 waterfall) does, and
is shown beside it (on the sample analyzed with minilm, batch alone saves $0.0236 a month,
1.8× its marginal $0.0131, and LoRA $0.0353 alone, nothing in the waterfall). A lever's slot
starts at its effort (low → this week, medium → next sprint, high → next quarter); one slot
later when it saves alone under ``minor_share`` of the monthly cost, one slot sooner when it
saves at least ``major_share``; levers that save nothing alone are listed last as "not
now".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from levers_cli.config import Config
from levers_cli.levers import ActionContext, Lever, all_levers
from levers_cli.report.fmt import basis_label

WHEN = ("this week", "next sprint", "next month", "next quarter")
_START = {"low": 0, "medium": 1, "high": 3}


def make_plan(
    simulation: dict[str, Any],
    efforts: dict[int, str],
    config: Config,
    providers: Iterable[str] = (),
    levers: Iterable[Lever] | None = None,
) -> list[dict[str, Any]]:
    """Order the levers of ``simulation`` (``SimulationResult.as_dict()``) by expected
    standalone saving per unit of effort.

    Args:
        simulation: the simulation's JSON shape.
        efforts: lever id → ``low``/``medium``/``high`` (each lever's ``effort``).
        config: supplies ``[report] effort_units``, ``minor_share``, ``major_share``, ``[tiers]``.
        providers: the providers in the logs (routing names their cheap tiers only).
        levers: the levers simulated, which name their next action and export (default:
            every registered lever); matched to the simulation's levers by name.

    Returns:
        One dict per lever, best first: ``rank``, ``id``, ``name``, ``effort``,
        ``standalone_usd_month`` (expected, the lever alone), ``saving_usd_month`` (expected,
        marginal in the waterfall), ``saving_share`` (standalone, of the monthly cost now),
        ``saving_per_effort`` (standalone per effort unit), ``basis``, ``basis_label``
        (``mixed N %`` where N % of the saving is on evidence, as the terminal shows it),
        ``action``, ``export`` (command or None), ``when``.
    """
    units = config.get("report", "effort_units")
    minor = float(config.get("report", "minor_share"))
    major = float(config.get("report", "major_share"))
    before = float(simulation["monthly_cost_before"]) or 0.0
    by_name = {lever.name: lever for lever in (all_levers() if levers is None else levers)}
    context = ActionContext(config, frozenset(providers))
    rows = []
    for lever in simulation["levers"]:
        marginal = float(lever["saving_usd_month"].get("expected", 0.0))
        alone = lever.get("standalone_usd_month") or {}
        saving = float(alone.get("expected", marginal))
        effort = efforts.get(lever["id"], "medium")
        share = saving / before if before else 0.0
        if saving <= 0:
            when = "not now"
        else:
            slot = _START[effort] + (share < minor) - (share >= major)
            when = WHEN[min(max(slot, 0), len(WHEN) - 1)]
        owner = by_name.get(lever["name"])
        action = owner.next_action(lever, context) if owner is not None else ""
        if saving <= 0:
            action = f"Nothing to gain at the expected level now ({action[:1].lower()}{action[1:]})"
        rows.append(
            {
                "id": lever["id"],
                "name": lever["name"],
                "effort": effort,
                "standalone_usd_month": saving,
                "saving_usd_month": marginal,
                "saving_share": share,
                "saving_per_effort": saving / float(units[effort]),
                "basis": lever["basis"],
                "basis_label": basis_label(lever),
                "action": action,
                "export": owner.export_command if owner is not None else None,
                "when": when,
            }
        )
    rows.sort(key=lambda r: (r["standalone_usd_month"] <= 0, -r["saving_per_effort"], r["id"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows
