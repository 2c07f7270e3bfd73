"""``levers check``: the CI gate. Measures the newest period of the workspace against limits
and lists every limit it breaches, one line each (the CLI exits 4 when any is breached).

Limits (each optional; unset ones are not checked):

- ``max_monthly_cost``: the newest period's monthly run rate (USD) — spend × days per month /
  its span, an assumption stated in ``[analysis] days_per_month``;
- ``max_uncategorized_share``: share of the newest period's calls no category takes
  (``category_id = -1``), i.e. traffic the exported router sends to its default route;
- ``max_cost_growth``: growth of the run rate over the period before (0.2 = +20 %); not
  measurable without an earlier period, which is then said, not counted as a breach;
- ``budget``: the expected plan's monthly cost (all seven levers, ``levers simulate``) must
  fit the budget (USD per month).
"""

from __future__ import annotations

import math
from typing import Any

from levers_cli.config import Config
from levers_cli.errors import UsageError, WorkspaceError
from levers_cli.report.compare import compare
from levers_cli.report.fmt import pct, usd
from levers_cli.store import Workspace
from levers_cli.text.content import plural


def check(
    ws: Workspace,
    config: Config,
    *,
    period: str = "7d",
    max_monthly_cost: float | None = None,
    max_uncategorized_share: float | None = None,
    max_cost_growth: float | None = None,
    budget: float | None = None,
) -> dict[str, Any]:
    """Hold the workspace's newest ``period`` against the limits.

    Returns:
        ``{"passed": bool, "breaches": [one line per breached limit], "notes": [limits that
        could not be measured], "measured": {"monthly_run_rate_usd", "uncategorized_share",
        "cost_growth", "plan_monthly_usd"}, "limits": {...}, "periods": {...}}``.

    Raises:
        WorkspaceError: the workspace holds no calls or is not fully analyzed
            (:meth:`~levers_cli.store.Workspace.require_analysis`: the uncategorized share
            and the plan would be wrong), or holds no priced calls while a cost limit
            (``max_monthly_cost``, ``max_cost_growth``, ``budget``) is given.
        PeriodError: ``period`` is not a period, or the calls carry no timestamps.
        UsageError: a limit is NaN or infinite.
    """
    limits = {
        "--max-monthly-cost": max_monthly_cost,
        "--max-uncategorized-share": max_uncategorized_share,
        "--max-cost-growth": max_cost_growth,
        "--budget": budget,
    }
    for flag, limit in limits.items():
        if limit is not None and not math.isfinite(limit):
            raise UsageError(f"{flag} {limit}: give a finite number")
    ws.require_analysis()
    cost_limits = (max_monthly_cost, max_cost_growth, budget)
    if any(v is not None for v in cost_limits) and not ws.count("calls", "cost_usd IS NOT NULL"):
        raise WorkspaceError(
            f"workspace {ws.path} holds no priced calls, so cost limits cannot be checked; "
            "run `levers analyze LOGS` first"
        )
    c = compare(ws, config, period=period)
    cur, prev = c["current"], c["previous"]
    measured: dict[str, Any] = {
        "monthly_run_rate_usd": cur["monthly_run_rate_usd"],
        "uncategorized_share": cur["uncategorized_share"],
        "cost_growth": c["run_rate_change"] if prev["calls"] else None,
        "plan_monthly_usd": None,
    }
    breaches: list[str] = []
    notes: list[str] = []
    rate = measured["monthly_run_rate_usd"]
    if max_monthly_cost is not None:
        if rate is None:  # a gate that cannot measure must not pass
            breaches.append(
                f"monthly cost not measured: no priced calls among the "
                f"{plural(cur['calls'], 'call')} of "
                f"the last {period}"
            )
        elif rate > max_monthly_cost:
            breaches.append(
                f"monthly cost {usd(rate)} (run rate of the last {period}) is over the limit "
                f"{usd(max_monthly_cost)}"
            )
    share = measured["uncategorized_share"]
    if max_uncategorized_share is not None and share > max_uncategorized_share:
        breaches.append(
            f"uncategorized share {pct(share)} of the last {period}'s calls is over the limit "
            f"{pct(max_uncategorized_share)}"
        )
    growth = measured["cost_growth"]
    if max_cost_growth is not None:
        if growth is None:
            notes.append(f"cost growth not measured: no priced calls in the {period} before")
        elif growth > max_cost_growth:
            breaches.append(
                f"cost grew {growth * 100:+.1f} % over the {period} before "
                f"({usd(prev['monthly_run_rate_usd'])} → {usd(rate)} a month), over the limit "
                f"{max_cost_growth * 100:+.1f} %"
            )
    if budget is not None:
        from levers_cli.levers import all_levers
        from levers_cli.simulate import simulate

        result = simulate(ws, config, all_levers(), levels=("expected",))
        plan = result.levels["expected"].after_usd
        measured["plan_monthly_usd"] = plan
        if plan > budget:
            breaches.append(
                f"the expected plan costs {usd(plan)} a month with every lever, over the budget "
                f"{usd(budget)} by {usd(plan - budget)}"
            )
    return {
        "passed": not breaches,
        "breaches": breaches,
        "notes": notes,
        "measured": measured,
        "limits": {
            "max_monthly_cost": max_monthly_cost,
            "max_uncategorized_share": max_uncategorized_share,
            "max_cost_growth": max_cost_growth,
            "budget": budget,
        },
        "periods": c["periods"],
    }
