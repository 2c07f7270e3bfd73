"""Simulation: the levers applied to a per-call plan in the waterfall's order, and the savings.

The per-call plan and its cost are :mod:`levers_cli.pricing.plan`'s: each lever changes the
plan's ``plan_*`` columns, and each step's saving is what the plan costs less after it. The
"before" figure is the base plan priced the same way, so the waterfall adds up to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from levers_cli.errors import WorkspaceError
from levers_cli.levers.base import (
    LEVELS,
    Finding,
    Level,
    Lever,
    basis_of_split,
    evidence_mask,
)
from levers_cli.pricing.plan import base_plan, log_span_days, plan_cost
from levers_cli.store import Workspace

if TYPE_CHECKING:
    from levers_cli.config import Config


@dataclass
class Simulation:
    """The waterfall of one level: monthly cost before, after each lever, and the findings."""

    level: Level
    span_days: float
    monthly_factor: float
    before_usd: float
    steps: list[dict[str, Any]] = field(default_factory=list)
    plan: pl.DataFrame | None = None
    #: USD per call (plan row order) before any lever, then after each step
    call_costs: list[pl.Series] = field(default_factory=list)

    @property
    def after_usd(self) -> float:
        """Monthly cost after every enabled lever."""
        return self.steps[-1]["after_usd_month"] if self.steps else self.before_usd


def run_waterfall(
    ws: Workspace,
    levers: list[Lever],
    findings: dict[int, Finding],
    config: Config,
    level: Level,
    days_per_month: float = 30.0,
) -> Simulation:
    """Apply ``levers`` in the order given (the waterfall's: :data:`levers_cli.levers.WATERFALL`,
    as :func:`~levers_cli.levers.all_levers` returns them) at ``level``; each step's saving is
    its marginal saving given the levers before it (USD per month: cost × days_per_month / log
    span)."""
    span = log_span_days(ws)
    factor = days_per_month / span
    plan = base_plan(ws)
    costs = plan_cost(plan, config)
    current = float(costs.sum())
    sim = Simulation(level, span, factor, current * factor)
    sim.call_costs.append(costs)
    for lever in levers:
        plan = lever.apply(plan, findings[lever.id], config, level)
        previous, costs = costs, plan_cost(plan, config)
        sim.call_costs.append(costs)
        cost = float(costs.sum())
        saved = (previous - costs).to_numpy()
        on_evidence = evidence_mask(findings[lever.id], plan["call_id"], level)
        evidence_usd = float((saved * on_evidence).sum()) * factor
        sim.steps.append(
            {
                "id": lever.id,
                "name": lever.name,
                "saving_usd_month": (current - cost) * factor,
                "after_usd_month": cost * factor,
                "saving_by_basis": {  # float noise (±1e-17) shown as 0
                    part: value if abs(value) > 1e-12 else 0.0
                    for part, value in (
                        ("evidence", evidence_usd),
                        ("assumption", (current - cost) * factor - evidence_usd),
                    )
                },
            }
        )
        current = cost
    sim.plan = plan
    return sim


@dataclass
class SimulationResult:
    """Every level's waterfall over the chosen levers, with their findings; monthly figures
    are cost × ``days_per_month`` (``[analysis] days_per_month``) / ``span_days``."""

    findings: dict[int, Finding]
    levels: dict[str, Simulation]
    lever_ids: list[int]
    span_days: float
    days_per_month: float = 30.0

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape of ``levers simulate --json`` (other tools read it):
        ``levers`` (one object per lever: id, name, saving_usd_month per level, basis,
        details), ``monthly_cost_before``, ``monthly_cost_after`` per level, ``log_span_days``;
        plus ``waterfall`` per level and each lever's ``evidence`` and ``figures``."""
        expected = self.levels.get("expected") or next(iter(self.levels.values()))
        levers = []
        order = self.lever_ids + sorted(set(self.findings) - set(self.lever_ids))
        for lever_id in order:
            finding = self.findings[lever_id]
            levers.append(
                {
                    "id": lever_id,
                    "name": finding.name,
                    "saving_usd_month": dict(finding.saving_usd_month),
                    "standalone_usd_month": dict(finding.standalone_usd_month),
                    "basis": finding.basis,
                    "saving_by_basis": dict(finding.saving_by_basis),
                    "calls_affected": finding.calls_affected,
                    "tokens_affected": finding.tokens_affected,
                    "details": finding.details,
                    "figures": [
                        {
                            "name": f.name,
                            "value": f.value,
                            "unit": f.unit,
                            "basis": f.basis,
                            "source": f.source,
                        }
                        for f in finding.figures
                    ],
                    "evidence": finding.evidence[:20],
                }
            )
        return {
            "levers": levers,
            "monthly_cost_before": expected.before_usd,
            "monthly_cost_after": {name: sim.after_usd for name, sim in self.levels.items()},
            "log_span_days": self.span_days,
            "monthly_basis": (
                f"cost × {self.days_per_month:g} days / {self.span_days:.2f}-day span of the log"
            ),
            "waterfall": {name: sim.steps for name, sim in self.levels.items()},
        }


def simulate(
    ws: Workspace,
    config: Config,
    levers: list[Lever],
    *,
    levels: tuple[Level, ...] = LEVELS,
    findings: dict[int, Finding] | None = None,
) -> SimulationResult:
    """Analyze each lever once, then run the waterfall (``levers`` in their order) at every
    level and each lever alone.

    Fills each finding's ``saving_usd_month`` (marginal, in the waterfall) and
    ``standalone_usd_month`` (the lever alone).

    Raises:
        WorkspaceError: the workspace holds no calls, is not fully analyzed (some calls have
            no category: :meth:`~levers_cli.store.Workspace.require_analysis`), or holds no
            priced calls.
    """
    ws.require_analysis()
    if ws.count("calls", "cost_usd IS NOT NULL") == 0:
        raise WorkspaceError(
            f"workspace {ws.path} holds no priced calls; run `levers analyze LOGS` first"
        )
    days = float(config.get("analysis", "days_per_month"))
    found = dict(findings or {})
    for lever in levers:
        if lever.id not in found:
            found[lever.id] = lever.analyze(ws, config)
    result_levels: dict[str, Simulation] = {}
    for level in levels:
        sim = run_waterfall(ws, levers, found, config, level, days)
        result_levels[level] = sim
        for step in sim.steps:
            found[step["id"]].saving_usd_month[level] = step["saving_usd_month"]
            found[step["id"]].saving_by_basis[level] = step["saving_by_basis"]
        for lever in levers:
            alone = run_waterfall(ws, [lever], found, config, level, days)
            found[lever.id].standalone_usd_month[level] = alone.steps[0]["saving_usd_month"]
    reference = "expected" if "expected" in levels else levels[0]
    for lever in levers:
        split = found[lever.id].saving_by_basis.get(reference, {})
        found[lever.id].basis = basis_of_split(split) or found[lever.id].basis
    span = log_span_days(ws)
    return SimulationResult(found, result_levels, [lv.id for lv in levers], span, days)
