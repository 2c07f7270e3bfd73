"""The per-call plan: one row per priced call, what the levers make of it, and its cost.

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

Costs come from the per-token rate cards of :mod:`levers_cli.pricing.rates` and the batch
factors of ``provider_rules.toml``. The "before" figure of the simulation is the base plan
priced the same way, so its waterfall adds up to the cent.
"""

from __future__ import annotations

import warnings
from typing import Any

import polars as pl

from levers_cli.pricing.rates import rate_card
from levers_cli.rules import batch_factor
from levers_cli.store import Workspace


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


def log_span_days(ws: Workspace) -> float:
    """Days between the first and last call (at least one hour's worth)."""
    row = ws.con.execute(
        "SELECT epoch(max(ts)) - epoch(min(ts)) FROM calls WHERE cost_usd IS NOT NULL"
    ).fetchone()
    seconds = float(row[0]) if row and row[0] is not None else 0.0
    return max(seconds, 3600.0) / 86_400
