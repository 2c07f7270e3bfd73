"""``--budget``: the fewest, lowest-effort levers whose expected monthly cost fits a budget.

Effort ranks follow the issue's seed: low = caps, batch, prefix caching; medium = routing,
context, semantic cache, materialize; high = LoRA (each lever declares its ``effort``).
Subsets are tried by number of levers, then by total effort, then by lever ids; the first
whose expected monthly cost after the waterfall is within the budget wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING, Any

from levers_cli.errors import UsageError
from levers_cli.levers.base import Finding, Lever
from levers_cli.schema import CATEGORY_ID
from levers_cli.simulate import run_waterfall
from levers_cli.store import Workspace

if TYPE_CHECKING:
    from levers_cli.config import Config

EFFORT_RANK = {"low": 1, "medium": 2, "high": 3}


@dataclass
class BudgetPlan:
    """The answer to "can we reach this budget, and how?" (USD per month)."""

    budget_usd_month: float
    reachable: bool
    monthly_cost_before: float
    monthly_cost_after: float
    lever_ids: list[int] = field(default_factory=list)
    lever_names: list[str] = field(default_factory=list)
    routed_share: float | None = None
    short_by_usd_month: float = 0.0
    subsets_tried: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


def solve_budget(
    ws: Workspace,
    config: Config,
    levers: list[Lever],
    findings: dict[int, Finding],
    budget_usd_month: float,
) -> BudgetPlan:
    """Find the smallest, lowest-effort subset of ``levers`` reaching ``budget_usd_month``
    at the expected level; when none does, say by how much all of them fall short.

    ``levers`` come in waterfall order (:func:`levers_cli.levers.all_levers`); every subset
    is simulated in that order.

    Raises:
        UsageError: ``budget_usd_month`` is not a finite number above 0.
    """
    if not math.isfinite(budget_usd_month) or budget_usd_month <= 0:
        raise UsageError(
            f"--budget {budget_usd_month}: give a monthly budget in USD, a finite number above 0"
        )
    days = float(config.get("analysis", "days_per_month"))
    options = split_by_effort(levers)
    place = {id(option): i for i, option in enumerate(options)}  # the waterfall order

    def in_waterfall_order(chosen: tuple[Lever, ...]) -> list[Lever]:
        return sorted(chosen, key=lambda lv: place[id(lv)])

    ranked = sorted(options, key=lambda lv: (EFFORT_RANK[lv.effort], place[id(lv)]))
    subsets: list[tuple[Lever, ...]] = []
    for size in range(0, len(ranked) + 1):
        subsets.extend(combinations(ranked, size))
    subsets.sort(
        key=lambda s: (
            len(s),
            sum(EFFORT_RANK[lv.effort] for lv in s),
            [place[id(lv)] for lv in s],
        )
    )
    before = None
    best_after = None
    tried = 0
    for subset in subsets:
        tried += 1
        chosen = in_waterfall_order(subset)
        sim = run_waterfall(ws, chosen, findings, config, "expected", days)
        before = sim.before_usd
        after = sim.after_usd
        best_after = after if best_after is None else min(best_after, after)
        if after <= budget_usd_month:
            return BudgetPlan(
                budget_usd_month,
                True,
                before,
                after,
                [lv.id for lv in chosen],
                [option_name(lv) for lv in chosen],  # "caching (prefix)", not "caching"
                _routed_share(sim.plan),
                0.0,
                tried,
            )
    assert before is not None and best_after is not None
    return BudgetPlan(
        budget_usd_month,
        False,
        before,
        best_after,
        [lv.id for lv in levers],
        [lv.name for lv in levers],
        None,
        best_after - budget_usd_month,
        tried,
    )


def split_by_effort(levers: list[Lever]) -> list[Lever]:
    """The budget options, in the order of ``levers``: each lever's
    :meth:`~levers_cli.levers.base.Lever.budget_options` (a lever made of parts of different
    effort, caching: prefix low, the exact and semantic response cache medium, becomes one
    option per part, each applying its part with the same finding)."""
    return [option for lever in levers for option in lever.budget_options()]


def option_name(lever: Lever) -> str:
    """``caching (prefix)`` for an option that is one part of a lever, else its name."""
    return lever.label


def _routed_share(plan: Any) -> float | None:
    """Share of calls whose plan model differs from the logged one (routing or LoRA)."""
    if plan is None or plan.height == 0:
        return None
    import polars as pl

    changed = plan.filter(pl.col("plan_model") != pl.col("model")).height
    return changed / plan.height


def backtest(ws: Workspace, config: Config, levers: list[Lever], fraction: float) -> dict[str, Any]:
    """Fit on the first ``fraction`` of the log's time span, forecast the rest, and compare
    (``levers`` in waterfall order).

    The levers are analyzed and simulated (expected level) on the earlier calls. Each lever's
    saving per category there, as a share of the category's cost, is the fitted parameter;
    applied to the later calls' cost per category it gives the forecast. The levers are then
    measured on the later calls themselves: that is what happened. Both are in USD per month
    of the later period. Calls of a category the earlier part never saw get no forecast.

    Raises:
        UsageError: ``fraction`` is not strictly between 0 and 1 (NaN included).
        WorkspaceError: the workspace is not fully analyzed
            (:meth:`~levers_cli.store.Workspace.require_analysis`), the log has no time span to
            split, or a part holds no priced calls.
    """
    import polars as pl

    from levers_cli.errors import WorkspaceError
    from levers_cli.pricing.plan import base_plan, plan_cost
    from levers_cli.simulate import simulate

    if not 0 < fraction < 1:
        raise UsageError(
            f"--backtest {fraction}: give the share of the span to fit on, between 0 and 1 "
            "(e.g. 0.75)"
        )
    ws.require_analysis()
    row = ws.con.execute("SELECT min(ts), max(ts), current_database() FROM calls").fetchall()[0]
    if row[0] is None or row[0] == row[1]:
        raise WorkspaceError("--backtest needs calls with timestamps spanning some time")
    first, last, database = row
    cutoff = first + (last - first) * fraction
    parts: dict[str, Any] = {}
    later_cost: pl.DataFrame | None = None
    for part, condition in (("fit", "ts < ?"), ("test", "ts >= ?")):
        ws.con.execute(
            f'CREATE OR REPLACE TEMP TABLE calls AS SELECT * FROM "{database}".main.calls '
            f"WHERE {condition}",
            [cutoff],
        )
        try:
            parts[part] = simulate(ws, config, levers, levels=("expected",))
            if part == "test":
                plan = base_plan(ws)
                later_cost = plan.select(CATEGORY_ID).with_columns(cost=plan_cost(plan, config))
        finally:
            ws.con.execute("DROP TABLE IF EXISTS temp.calls")
    assert later_cost is not None
    fit = parts["fit"].levels["expected"]
    test_factor = parts["test"].levels["expected"].monthly_factor
    assert fit.plan is not None
    categories = fit.plan.select(CATEGORY_ID)
    base = fit.call_costs[0]
    cost_by_category = later_cost.group_by(CATEGORY_ID).agg(pl.sum("cost"))
    rows = []
    for step, lever in enumerate(levers, 1):  # the waterfall's steps, in its order
        saving = fit.call_costs[step - 1] - fit.call_costs[step]
        rates = (
            categories.with_columns(saving=saving, base=base)
            .group_by(CATEGORY_ID)
            .agg(pl.sum("saving"), pl.sum("base"))
            .with_columns(rate=pl.col("saving") / pl.col("base"))
        )
        joined = cost_by_category.join(rates, on=CATEGORY_ID, how="left", nulls_equal=True)
        predicted = float((joined["cost"] * joined["rate"].fill_null(0.0)).sum()) * test_factor
        realized = parts["test"].findings[lever.id].saving_usd_month["expected"]
        rows.append(
            {
                "id": lever.id,
                "name": lever.name,
                "predicted_usd_month": predicted,
                "realized_usd_month": realized,
                "error_usd_month": realized - predicted,
            }
        )
    return {
        "fraction": fraction,
        "cutoff": cutoff.isoformat(),
        "fit_days": parts["fit"].span_days,
        "test_days": parts["test"].span_days,
        "levers": rows,
        "monthly_cost_before": parts["test"].levels["expected"].before_usd,
        "monthly_cost_after": {
            "predicted": parts["test"].levels["expected"].before_usd
            - sum(r["predicted_usd_month"] for r in rows),
            "realized": parts["test"].levels["expected"].after_usd,
        },
    }
