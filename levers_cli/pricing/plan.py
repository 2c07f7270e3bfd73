"""The per-call plan: one row per priced call, what the levers make of it, and its cost.

The plan is a polars DataFrame with one row per call: the call's own columns (``call_id``,
``category_id``, ``provider``, ``model``, ``ts``, ``conversation_id``, ``turn``, token columns,
``is_batch``) and what the plan makes of it:

==================  ==========================================================================
``plan_model``      model the call is priced with (routing, LoRA change it)
``plan_input``      input tokens incl. cached (context management lowers it)
``plan_prefix_tokens`` tokens at the start of the plan's prompt that an earlier call's prompt,
                    as the plan has it, can share: the bound on its cacheable prefix that a
                    lever rewriting the prompt leaves (context: the system prompt, the
                    carried summary and the history up to the previous turn's question);
                    null while the prompt is the logged one (the caching lever measures
                    its prefix on the log's text)
``plan_cache_read`` cached input tokens read (prefix caching raises it); reachable under the
                    plan model's ``provider_rules.toml`` row and within
                    ``plan_prefix_tokens`` (:mod:`levers_cli.pricing.prefix`)
``plan_cache_source`` the call whose cached prefix a lever's read comes from (null: as
                    logged, or none)
``plan_cache_write`` cached input tokens written (charged used or not where the provider
                    charges writes)
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

Costs come from the per-token rate cards of :mod:`levers_cli.pricing.rates` (per model,
served tier and geo) and the batch factors of ``provider_rules.toml``. The "before" figure of
the simulation is the base plan priced the same way, so its waterfall adds up to the cent.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import polars as pl

from levers_cli.pricing.rates import RateCard, rate_card
from levers_cli.rules import batch_factor
from levers_cli.store import Workspace

if TYPE_CHECKING:
    from levers_cli.config import Config


def base_plan(ws: Workspace, call_ids: list[str] | None = None) -> pl.DataFrame:
    """Every priced call as a plan row that changes nothing (see the module docstring); a
    gateway cache hit (no provider call) starts free. ``call_ids``: only those calls (a
    partition of the simulation), in the same order."""
    only = "" if call_ids is None else " AND call_id IN (SELECT unnest(?::VARCHAR[]))"
    cursor = ws.con.execute(
        """SELECT call_id, category_id, provider, model, ts, conversation_id, turn, query_hash,
                  input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,
                  reasoning_tokens, is_batch, status, cost_usd::DOUBLE AS cost_usd,
                  coalesce(cache_write_1h_tokens, 0) AS cache_write_1h_tokens,
                  coalesce(input_audio_tokens, 0) AS input_audio_tokens,
                  coalesce(output_audio_tokens, 0) AS output_audio_tokens,
                  service_tier, inference_geo, server_tool_uses::VARCHAR AS server_tool_uses,
                  coalesce(gateway_cache_hit, false) AS gateway_cache_hit
           FROM calls WHERE cost_usd IS NOT NULL"""
        + only
        + " ORDER BY ts NULLS LAST, call_id",
        [] if call_ids is None else [call_ids],
    )
    with warnings.catch_warnings():  # "Arrow output on a DB-API result makes an extra copy"
        warnings.simplefilter("ignore", UserWarning)
        frame = pl.from_arrow(cursor.to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(
        pl.col("model").alias("plan_model"),
        pl.col("input_tokens").alias("plan_input"),
        pl.lit(None, pl.Int64).alias("plan_prefix_tokens"),
        pl.col("cache_read_tokens").alias("plan_cache_read"),
        pl.lit(None, pl.String).alias("plan_cache_source"),
        pl.col("cache_write_tokens").alias("plan_cache_write"),
        pl.col("cache_write_1h_tokens").alias("plan_cache_write_1h"),
        pl.col("output_tokens").alias("plan_output"),
        pl.col("is_batch").alias("plan_batch"),
        pl.col("gateway_cache_hit").alias("plan_free"),
        pl.lit(0.0).alias("plan_extra_usd"),
    )


def plan_cost(plan: pl.DataFrame, config: Config | None = None) -> pl.Series:
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


def _fees(
    priced: pl.DataFrame, cards: dict[tuple[Any, ...], RateCard | None]
) -> pl.Expr | pl.Series:
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


def log_span_days(ws: Workspace) -> float:
    """Days between the first and last call (at least one hour's worth)."""
    row = ws.con.execute(
        "SELECT epoch(max(ts)) - epoch(min(ts)) FROM calls WHERE cost_usd IS NOT NULL"
    ).fetchone()
    seconds = float(row[0]) if row and row[0] is not None else 0.0
    return max(seconds, 3600.0) / 86_400
