"""Simulation: a per-call plan, the levers applied in order 1→7, and the waterfall.

The plan is a polars DataFrame with one row per call: the call's own columns (``call_id``,
``category_id``, ``provider``, ``model``, ``ts``, ``conversation_id``, ``turn``, token columns,
``is_batch``) and what the plan makes of it:

==================  ==========================================================================
``plan_model``      model the call is priced with (routing, LoRA change it)
``plan_input``      input tokens incl. cached (context management lowers it)
``plan_cache_read`` cached input tokens read (prefix caching raises it)
``plan_cache_write`` cached input tokens written
``plan_cache_write_1h`` of those, written with the 1-hour TTL (at most ``plan_cache_write``)
``plan_output``     output tokens (caps lower it)
``plan_batch``      priced at the batch rate
``plan_free``       served without a model call (script, response cache; a gateway cache hit
                    in the log starts free)
``plan_extra_usd``  costs the lever adds (summaries, amortized training), USD
==================  ==========================================================================

A lever that takes over a share of a category's calls (LoRA, routing by labelled shares)
chooses whole calls deterministically (by a hash of ``call_id``), so every row is either
changed or not.

Costs come from per-token rate cards read once per model, served tier and geo from
genai-prices completed by levers' own price rows (1,000 tokens of each kind, so the base tier;
tier cliffs above ~128k–200k input tokens are not applied in the simulation) and the batch
factors of ``provider_rules.toml``. The "before"
figure is the base plan priced the same way, so the waterfall adds up to the cent.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import polars as pl

from levers_cli.enrich.rates import CallUsage, PriceBook
from levers_cli.price_rows import TOOL_UNITS
from levers_cli.rules import batch_factor
from levers_cli.store import Workspace

if TYPE_CHECKING:  # the levers package imports this module: no import cycle at load time
    from levers_cli.levers.base import Finding, Level, Lever

#: The three settings of every lever (the same tuple as ``levers_cli.levers.base.LEVELS``).
LEVELS: tuple[Level, ...] = ("conservative", "expected", "aggressive")

_PROBE_TOKENS = 1000


@dataclass(frozen=True, slots=True)
class RateCard:
    """USD per token of a model: input, cached input (read), cache write, output; the parts
    billed at rates of their own (1-hour cache writes, audio in and out: ``None`` when the
    model has no such rate, then the part is priced as its whole); ``fees``: USD per use of
    each server-side tool the model charges for (``(tool, usd)`` pairs)."""

    input: float
    cache_read: float
    cache_write: float
    output: float
    cache_write_1h: float | None = None
    input_audio: float | None = None
    output_audio: float | None = None
    fees: tuple[tuple[str, float], ...] = ()


@cache
def rate_card(
    provider: str | None,
    model: str | None,
    service_tier: str | None = None,
    inference_geo: str | None = None,
) -> RateCard | None:
    """Per-token prices of ``model`` today (``None`` when no price is known for it), for a
    call served in ``service_tier`` from ``inference_geo``: genai-prices completed by
    levers' own price rows (:class:`levers_cli.enrich.rates.PriceBook`).

    Each rate is the price of 1,000 tokens of that kind divided by 1,000: the base tier.
    """
    if not model:
        return None
    sheet = _book().sheet(provider, model, None, service_tier, inference_geo)
    if sheet.prices is None:
        return None
    n = _PROBE_TOKENS

    def per_token(**tokens: int) -> float:
        usage = CallUsage(**{"input_tokens": 0, **tokens})
        return float(sheet.cost(usage) or 0) / n

    base = per_token(input_tokens=n)
    out = per_token(output_tokens=n)
    write = per_token(input_tokens=n, cache_write_tokens=n)

    def own(key: str, **tokens: int) -> float | None:
        return per_token(**tokens) if getattr(sheet.prices, key, None) is not None else None

    fees = tuple(
        (tool, float(getattr(sheet.prices, f"{unit}_kcount")) / 1000)
        for tool, unit in TOOL_UNITS.items()
        if getattr(sheet.prices, f"{unit}_kcount", None) is not None
    )
    return RateCard(
        base,
        per_token(input_tokens=n, cache_read_tokens=n),
        write,
        out,
        own("cache_write_1h_mtok", input_tokens=n, cache_write_tokens=n, cache_write_1h_tokens=n),
        own("input_audio_mtok", input_tokens=n, input_audio_tokens=n),
        own("output_audio_mtok", output_tokens=n, output_audio_tokens=n),
        fees,
    )


@cache
def _book() -> PriceBook:
    """The shipped price rows over genai-prices (the simulation ignores levers.toml's, as
    its rate cards always have)."""
    return PriceBook()


def base_plan(ws: Workspace) -> pl.DataFrame:
    """Every priced call as a plan row that changes nothing (see the module docstring); a
    gateway cache hit (no provider call) starts free."""
    cursor = ws.con.execute(
        """SELECT call_id, category_id, provider, model, ts, conversation_id, turn, query_hash,
                  input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,
                  reasoning_tokens, is_batch, status, cost_usd::DOUBLE AS cost_usd,
                  coalesce(cache_write_1h_tokens, 0) AS cache_write_1h_tokens,
                  coalesce(input_audio_tokens, 0) AS input_audio_tokens,
                  coalesce(output_audio_tokens, 0) AS output_audio_tokens,
                  service_tier, inference_geo, server_tool_uses::VARCHAR AS server_tool_uses,
                  coalesce(gateway_cache_hit, false) AS gateway_cache_hit
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
        pl.col("cache_write_1h_tokens").alias("plan_cache_write_1h"),
        pl.col("output_tokens").alias("plan_output"),
        pl.col("is_batch").alias("plan_batch"),
        pl.col("gateway_cache_hit").alias("plan_free"),
        pl.lit(0.0).alias("plan_extra_usd"),
    )


def plan_cost(plan: pl.DataFrame, config: Any = None) -> pl.Series:
    """USD per call of a plan (rate cards × tokens, batch factor, free rows 0, extras added).

    Each call is priced at its plan model's card for its served tier and geo: audio parts
    (at most the plan's input and output) at the audio rates, the 1-hour part of the cache
    writes at the 1-hour rate, server-tool uses at the model's fee per use (not discounted
    by the batch factor). The batch factor is the ``[batch] price_factor`` override of
    ``config`` when it names the provider, else ``provider_rules.toml``'s. Calls whose plan
    model has no price keep the cost they had (``cost_usd``)."""
    overrides = config.get("batch", "price_factor") if config is not None else {}
    plan = _with_context(plan)
    keys = plan.select("provider", "plan_model", "service_tier", "inference_geo").unique().rows()
    cards = [rate_card(*k) for k in keys]
    lookup = pl.DataFrame(
        {
            "provider": [k[0] for k in keys],
            "plan_model": [k[1] for k in keys],
            "service_tier": [k[2] for k in keys],
            "inference_geo": [k[3] for k in keys],
            "r_in": [c.input if c else None for c in cards],
            "r_read": [c.cache_read if c else None for c in cards],
            "r_write": [c.cache_write if c else None for c in cards],
            "r_write_1h": [_or(c, "cache_write_1h", "cache_write") for c in cards],
            "r_in_audio": [_or(c, "input_audio", "input") for c in cards],
            "r_out": [c.output if c else None for c in cards],
            "r_out_audio": [_or(c, "output_audio", "output") for c in cards],
            "r_batch": [batch_factor(k[0], k[1], overrides)[0] for k in keys],
        },
        schema_overrides={
            name: plan.schema[name]
            for name in ("provider", "plan_model", "service_tier", "inference_geo")
        },
    )
    on = ["provider", "plan_model", "service_tier", "inference_geo"]
    priced = plan.join(lookup, on=on, how="left", nulls_equal=True)
    priced = priced.with_columns(_fees(priced, dict(zip(keys, cards, strict=True))))
    write_1h = pl.min_horizontal(pl.col("plan_cache_write_1h"), pl.col("plan_cache_write"))
    uncached = pl.col("plan_input") - pl.col("plan_cache_read") - pl.col("plan_cache_write")
    audio_in = pl.min_horizontal(pl.col("input_audio_tokens"), pl.max_horizontal(uncached, 0))
    audio_out = pl.min_horizontal(pl.col("output_audio_tokens"), pl.col("plan_output"))
    model_cost = (
        (uncached - audio_in) * pl.col("r_in")
        + audio_in * pl.col("r_in_audio")
        + pl.col("plan_cache_read") * pl.col("r_read")
        + (pl.col("plan_cache_write") - write_1h) * pl.col("r_write")
        + write_1h * pl.col("r_write_1h")
        + (pl.col("plan_output") - audio_out) * pl.col("r_out")
        + audio_out * pl.col("r_out_audio")
    ) * pl.when(pl.col("plan_batch")).then(pl.col("r_batch")).otherwise(1.0) + pl.col("fee_usd")
    cost = pl.when(pl.col("plan_free")).then(0.0).when(pl.col("r_in").is_null()).then(
        pl.col("cost_usd")
    ).otherwise(model_cost) + pl.col("plan_extra_usd")
    return priced.select(cost.alias("cost")).to_series()


#: Columns ``plan_cost`` reads beyond the ``plan_*`` ones, with their value for a plan made
#: before they existed (hand-built plans in tests and levers).
_CONTEXT_DEFAULTS: dict[str, Any] = {
    "service_tier": (None, pl.String),
    "inference_geo": (None, pl.String),
    "server_tool_uses": (None, pl.String),
    "input_audio_tokens": (0, pl.Int64),
    "output_audio_tokens": (0, pl.Int64),
    "plan_cache_write_1h": (0, pl.Int64),
}


def _with_context(plan: pl.DataFrame) -> pl.DataFrame:
    missing = [name for name in _CONTEXT_DEFAULTS if name not in plan.columns]
    return plan.with_columns(
        pl.lit(_CONTEXT_DEFAULTS[n][0], _CONTEXT_DEFAULTS[n][1]).alias(n) for n in missing
    )


def _or(card: RateCard | None, part: str, whole: str) -> float | None:
    if card is None:
        return None
    value = getattr(card, part)
    return getattr(card, whole) if value is None else value


def _fees(priced: pl.DataFrame, cards: dict[tuple[Any, ...], RateCard | None]) -> pl.Expr:
    """``fee_usd``: each call's server-tool uses at its plan model's fees (0 when none)."""
    import json

    keys = ["provider", "plan_model", "service_tier", "inference_geo", "server_tool_uses"]
    used = priced.filter(pl.col("server_tool_uses").is_not_null()).select(keys).unique()
    if used.is_empty():
        return pl.lit(0.0).alias("fee_usd")
    fees = []
    for *context, raw in used.rows():
        card = cards.get(tuple(context))
        rates = dict(card.fees) if card else {}
        uses = json.loads(raw)
        fees.append(sum(rates.get(tool, 0.0) * n for tool, n in uses.items()))
    table = used.with_columns(pl.Series("fee", fees, dtype=pl.Float64))
    fee = priced.select(keys).join(table, on=keys, how="left", nulls_equal=True)["fee"]
    return fee.fill_null(0.0).alias("fee_usd")


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
