"""Simulation: a per-call plan, the levers applied in order 1→7, and the waterfall.

The plan is a polars DataFrame with one row per call: the call's own columns (``call_id``,
``category_id``, ``provider``, ``model``, ``ts``, ``conversation_id``, ``turn``, token columns,
``is_batch``) and what the plan makes of it:

==================  ==========================================================================
``plan_model``      model the call is priced with (routing, LoRA change it)
``plan_input``      input tokens incl. cached (context management lowers it)
``plan_cache_read`` cached input tokens read (prefix caching raises it)
``plan_cache_write`` cached input tokens written
``plan_output``     output tokens (caps lower it)
``plan_batch``      priced at the batch rate
``plan_free``       served without a model call (script, response cache)
``plan_extra_usd``  costs the lever adds (summaries, amortized training), USD
==================  ==========================================================================

A lever that takes over a share of a category's calls (LoRA, routing by labelled shares)
chooses whole calls deterministically (by a hash of ``call_id``), so every row is either
changed or not.

Costs come from per-token rate cards read once per model from genai-prices (``calc_price`` on
1,000 tokens of each kind, so the base tier; tier cliffs above ~128k–200k input tokens are not
applied in the simulation) and the batch factors of ``provider_rules.toml``. The "before"
figure is the base plan priced the same way, so the waterfall adds up to the cent.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

import polars as pl

from levers_cli.rules import batch_factor
from levers_cli.store import Workspace

if TYPE_CHECKING:  # the levers package imports this module: no import cycle at load time
    from levers_cli.levers.base import Finding, Level, Lever

#: The three settings of every lever (the same tuple as ``levers_cli.levers.base.LEVELS``).
LEVELS: tuple[Level, ...] = ("conservative", "expected", "aggressive")

_PROBE_TOKENS = 1000


@dataclass(frozen=True, slots=True)
class RateCard:
    """USD per token of a model: input, cached input (read), cache write, output."""

    input: float
    cache_read: float
    cache_write: float
    output: float


@cache
def rate_card(provider: str | None, model: str | None) -> RateCard | None:
    """Per-token prices of ``model`` from genai-prices (``None`` when it does not know it).

    Each rate is ``calc_price`` of 1,000 tokens of that kind divided by 1,000: the base tier.
    """
    if not model:
        return None
    from genai_prices import Usage, calc_price

    def price(**tokens: int) -> float | None:
        for provider_id in [provider, None] if provider else [None]:
            try:
                result = calc_price(Usage(**tokens), model, provider_id=provider_id)
            except LookupError:
                continue
            return float(Decimal(result.total_price)) / _PROBE_TOKENS
        return None

    n = _PROBE_TOKENS
    base = price(input_tokens=n)
    if base is None:
        return None
    read = price(input_tokens=n, cache_read_tokens=n)
    write = price(input_tokens=n, cache_write_tokens=n)
    out = price(output_tokens=n)
    return RateCard(
        base, base if read is None else read, base if write is None else write, out or 0.0
    )


def base_plan(ws: Workspace) -> pl.DataFrame:
    """Every priced call as a plan row that changes nothing (see the module docstring)."""
    cursor = ws.con.execute(
        """SELECT call_id, category_id, provider, model, ts, conversation_id, turn, query_hash,
                  input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,
                  reasoning_tokens, is_batch, status, cost_usd::DOUBLE AS cost_usd
           FROM calls WHERE cost_usd IS NOT NULL ORDER BY ts NULLS LAST, call_id"""
    )
    with warnings.catch_warnings():  # "Arrow output on a DB-API result makes an extra copy"
        warnings.simplefilter("ignore", UserWarning)
        frame = pl.from_arrow(cursor.to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(
        pl.col("model").alias("plan_model"),
        pl.col("input_tokens").alias("plan_input"),
        pl.col("cache_read_tokens").alias("plan_cache_read"),
        pl.col("cache_write_tokens").alias("plan_cache_write"),
        pl.col("output_tokens").alias("plan_output"),
        pl.col("is_batch").alias("plan_batch"),
        pl.lit(False).alias("plan_free"),
        pl.lit(0.0).alias("plan_extra_usd"),
    )


def plan_cost(plan: pl.DataFrame, config: Any = None) -> pl.Series:
    """USD per call of a plan (rate cards × tokens, batch factor, free rows 0, extras added).

    The batch factor is the ``[batch] price_factor`` override of ``config`` when it names the
    provider, else ``provider_rules.toml``'s. Calls whose plan model has no price keep the
    cost they had (``cost_usd``)."""
    overrides = config.get("batch", "price_factor") if config is not None else {}
    keys = plan.select("provider", "plan_model").unique().rows()
    cards = {(p, m): rate_card(p, m) for p, m in keys}
    factors = {(p, m): batch_factor(p, m, overrides)[0] for p, m in keys}
    lookup = pl.DataFrame(
        {
            "provider": [k[0] for k in keys],
            "plan_model": [k[1] for k in keys],
            "r_in": [c.input if c else None for c in cards.values()],
            "r_read": [c.cache_read if c else None for c in cards.values()],
            "r_write": [c.cache_write if c else None for c in cards.values()],
            "r_out": [c.output if c else None for c in cards.values()],
            "r_batch": list(factors.values()),
        },
        schema_overrides={
            "provider": plan.schema["provider"],
            "plan_model": plan.schema["plan_model"],
        },
    )
    priced = plan.join(lookup, on=["provider", "plan_model"], how="left", nulls_equal=True)
    uncached = pl.col("plan_input") - pl.col("plan_cache_read") - pl.col("plan_cache_write")
    model_cost = (
        uncached * pl.col("r_in")
        + pl.col("plan_cache_read") * pl.col("r_read")
        + pl.col("plan_cache_write") * pl.col("r_write")
        + pl.col("plan_output") * pl.col("r_out")
    ) * pl.when(pl.col("plan_batch")).then(pl.col("r_batch")).otherwise(1.0)
    cost = pl.when(pl.col("plan_free")).then(0.0).when(pl.col("r_in").is_null()).then(
        pl.col("cost_usd")
    ).otherwise(model_cost) + pl.col("plan_extra_usd")
    return priced.select(cost.alias("cost")).to_series()


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


def log_span_days(ws: Workspace) -> float:
    """Days between the first and last call (at least one hour's worth)."""
    row = ws.con.execute(
        "SELECT epoch(max(ts)) - epoch(min(ts)) FROM calls WHERE cost_usd IS NOT NULL"
    ).fetchone()
    seconds = float(row[0]) if row and row[0] is not None else 0.0
    return max(seconds, 3600.0) / 86_400


def run_waterfall(
    ws: Workspace,
    levers: list[Lever],
    findings: dict[int, Finding],
    config: Any,
    level: Level,
    days_per_month: float = 30.0,
) -> Simulation:
    """Apply ``levers`` in id order at ``level``; each step's saving is its marginal saving
    given the levers before it (USD per month: cost × days_per_month / log span)."""
    from levers_cli.levers.base import evidence_mask  # levers import this module

    span = log_span_days(ws)
    factor = days_per_month / span
    plan = base_plan(ws)
    costs = plan_cost(plan, config)
    current = float(costs.sum())
    sim = Simulation(level, span, factor, current * factor)
    sim.call_costs.append(costs)
    for lever in sorted(levers, key=lambda lv: lv.id):
        plan = lever.apply(plan, findings[lever.id], config, level)
        previous, costs = costs, plan_cost(plan, config)
        sim.call_costs.append(costs)
        cost = float(costs.sum())
        saved = (previous - costs).to_numpy()
        on_evidence = evidence_mask(findings[lever.id], plan["call_id"], level)
        evidence_usd = float(saved[on_evidence].sum()) * factor
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
        for lever_id in sorted(self.findings):
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
    config: Any,
    levers: list[Lever],
    *,
    levels: tuple[Level, ...] = LEVELS,
    findings: dict[int, Finding] | None = None,
) -> SimulationResult:
    """Analyze each lever once, then run the waterfall at every level and each lever alone.

    Fills each finding's ``saving_usd_month`` (marginal, in the waterfall) and
    ``standalone_usd_month`` (the lever alone).

    Raises:
        WorkspaceError: the workspace holds no calls, is not fully analyzed (some calls have
            no category: :meth:`~levers_cli.store.Workspace.require_analysis`), or holds no
            priced calls.
    """
    from levers_cli.errors import WorkspaceError

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
    from levers_cli.levers.base import basis_of_split

    reference = "expected" if "expected" in levels else levels[0]
    for lever in levers:
        split = found[lever.id].saving_by_basis.get(reference, {})
        found[lever.id].basis = basis_of_split(split) or found[lever.id].basis
    span = log_span_days(ws)
    return SimulationResult(found, result_levels, [lv.id for lv in levers], span, days)
