"""Prefix caching priced on the plan: the prompt and model each earlier lever leaves.

The analysis (:mod:`~levers_cli.levers.caching.prefix`) measures, on the log's prompts, the
tokens each call shares with its source (the earlier call of the same model whose prompt it
shares most with, within the TTL). On the plan, a call reads from that source only where the
plan still allows it (DESIGN §5.3a, §6):

- the prompt: at most ``plan_prefix_tokens`` (what a lever that rewrote the prompt left in
  common with an earlier prompt, e.g. context's summary) and the plan's input;
- the model: source and call are priced with the same plan model and provider, under that
  model's rules (``provider_rules.toml``: minimum, increments, TTL, breakpoints) — a call
  routed to another model reads that model's cache, never the logged one's;
- the source still calls the provider (not served free by a script or a response cache);
- batch jobs read only from batch jobs, and only where the provider documents cache hits for
  batches (``batch_cache``).

Where writes are charged (Anthropic), each request pays for writing from what it read up to
its breakpoint — the end of its system prompt, or of its prompt for a conversation turn —
whether a later request reads it or not; a request reads at most up to its source's
breakpoint. Prefix caching is then planned per prompt template (provider, plan model and
system prompt) only where what it saves pays for its writes; a template where it would cost
more stays as logged, and is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from levers_cli.levers.caching.calls import ONE_HOUR_TTL_SECONDS
from levers_cli.pricing.prefix import UNBOUNDED, cacheable, ensure_prefix_columns, with_rules
from levers_cli.pricing.rates import rate_card


@dataclass(frozen=True, slots=True)
class PrefixSettings:
    """A level's prefix-cache settings (``[caching]`` in defaults.toml): ``ttl_override``
    (seconds; a longer retention where writes are free, 0 = the rule's TTL) and
    ``extended`` (ask for the provider's extended retention where it has one)."""

    ttl_override: float = 0.0
    extended: bool = False


def prefix_on_plan(
    frame: pl.DataFrame, level: str, settings: PrefixSettings
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Plan the prefix caching of every row (see the module docstring).

    Args:
        frame: the plan (response-cache hits already ``plan_free``) joined with the
            analysis' per-call columns ``prefix_shared_<level>`` (tokens shared with the
            source), ``prefix_source_<level>`` (the source's ``call_id``), ``prefix_static``
            (system-prompt tokens), ``prefix_end`` (breakpoint at the prompt's end),
            ``prefix_group`` (template id) and ``ttl_1h`` (wrote with the 1-hour TTL).
        level: the level whose columns are read.
        settings: the level's TTL settings.

    Returns:
        ``(frame with plan_cache_read, plan_cache_write, plan_cache_source and
        plan_cache_write_1h planned, templates)``: one row per template where writes are
        charged — ``provider``, ``plan_model``, ``prefix_group``, ``calls``, ``net_usd``
        (what planning it saves over the log, USD; negative: it would cost more) and
        ``planned``.
    """
    frame = ensure_prefix_columns(frame)
    cols = frame.columns
    shared_col, source_col = f"prefix_shared_{level}", f"prefix_source_{level}"
    ruled = with_rules(frame)
    ttl = pl.col("_ttl")
    if settings.ttl_override:
        ttl = (
            pl.when(pl.col("_charged"))
            .then(ttl)
            .otherwise(pl.max_horizontal(ttl, pl.lit(float(settings.ttl_override))))
        )
    if settings.extended:
        ttl = pl.max_horizontal(ttl, pl.col("_ttl_ext"))
    one_hour = pl.col("ttl_1h").fill_null(False) & pl.col("_charged")
    ttl = pl.when(one_hour).then(pl.max_horizontal(ttl, ONE_HOUR_TTL_SECONDS)).otherwise(ttl)
    sources = frame.select(
        pl.col("call_id").alias(source_col),
        pl.col("provider").alias("_s_provider"),
        pl.col("plan_model").alias("_s_model"),
        pl.col("ts").alias("_s_ts"),
        pl.col("plan_free").alias("_s_free"),
        pl.col("plan_batch").fill_null(False).alias("_s_batch"),
        pl.col("prefix_static").alias("_s_static"),
        pl.col("prefix_end").alias("_s_end"),
    )
    ruled = ruled.join(sources, on=source_col, how="left")
    free, batch = pl.col("plan_free").fill_null(False), pl.col("plan_batch").fill_null(False)
    shared = pl.min_horizontal(
        pl.col(shared_col).fill_null(0),
        pl.col("plan_prefix_tokens").fill_null(UNBOUNDED),
        pl.col("plan_input"),
    )
    # where writes are charged, a read reaches no further than the source's breakpoint
    stop_of_source: pl.Expr = (
        pl.when(pl.col("_s_end").fill_null(True)).then(UNBOUNDED).otherwise(pl.col("_s_static"))
    )
    shared = (
        pl.when(pl.col("_charged"))
        .then(pl.min_horizontal(shared, stop_of_source))
        .otherwise(shared)
    )
    elapsed = (pl.col("ts") - pl.col("_s_ts")).dt.total_seconds(fractional=True)
    reachable = (
        pl.col(source_col).is_not_null()
        & (pl.col("_s_provider") == pl.col("provider"))
        & (pl.col("_s_model") == pl.col("plan_model"))
        & ~pl.col("_s_free").fill_null(True)
        & (elapsed.is_null() | (elapsed <= ttl))
        & (pl.col("_s_batch") == batch)
        & (~batch | (pl.col("_batch_cache") == "within_batch"))
        & ~free
    )
    lever_read = pl.when(reachable).then(cacheable(shared)).otherwise(0)
    same_model = pl.col("plan_model") == pl.col("model")
    logged_read = pl.when(same_model).then(pl.col("plan_cache_read")).otherwise(0)
    logged_write = pl.when(same_model).then(pl.col("plan_cache_write")).otherwise(0)
    read = pl.min_horizontal(pl.max_horizontal(logged_read, lever_read), pl.col("plan_input"))
    stop: pl.Expr = (
        pl.when(pl.col("prefix_end").fill_null(False))
        .then(pl.col("plan_input"))
        .otherwise(pl.min_horizontal(pl.col("prefix_static").fill_null(0), "plan_input"))
    )
    lever_write: pl.Expr = (
        pl.when(pl.col("_charged") & (stop >= pl.col("_min")))
        .then(pl.max_horizontal(stop - pl.col("_read"), 0))
        .otherwise(0)
    )
    planned = ruled.with_columns(
        lever_read.alias("_lever_read"),
        read.alias("_read"),
        logged_read.alias("_logged_read"),
        logged_write.alias("_logged_write"),
    ).with_columns(
        pl.min_horizontal(
            pl.max_horizontal(pl.col("_logged_write"), lever_write),
            pl.col("plan_input") - pl.col("_read"),
        ).alias("_write")
    )
    templates = _templates(planned)
    on = templates.filter(pl.col("planned")).select(
        "provider", "plan_model", "prefix_group", pl.lit(True).alias("_on")
    )
    planned = planned.join(
        on, on=["provider", "plan_model", "prefix_group"], how="left", nulls_equal=True
    )
    use = ~free & (~pl.col("_charged") | pl.col("_on").fill_null(False))
    keep = ~free & ~use  # a template where caching would cost more: as logged
    read_out = pl.when(use).then("_read").when(keep).then("_logged_read")
    write_out = pl.when(use).then("_write").when(keep).then("_logged_write")
    moved_source = use & (pl.col("_lever_read") > pl.col("_logged_read"))
    out = planned.with_columns(
        read_out.otherwise("plan_cache_read").cast(frame.schema["plan_cache_read"])
        .alias("plan_cache_read"),
        write_out.otherwise("plan_cache_write").cast(frame.schema["plan_cache_write"])
        .alias("plan_cache_write"),
        pl.when(moved_source).then(pl.col(source_col))
        .when(use | keep).then(None).otherwise(pl.col("plan_cache_source"))
        .alias("plan_cache_source"),
    )  # fmt: skip
    if "plan_cache_write_1h" in cols:
        # a call that wrote with the 1-hour TTL keeps it: what it writes is written for an
        # hour; a call routed to another model writes with that model's default TTL
        hour: pl.Expr = (
            pl.when(one_hour & same_model & (use | keep))
            .then(pl.col("plan_cache_write"))
            .when(use | keep)
            .then(0)
            .otherwise(pl.col("plan_cache_write_1h"))
        )
        out = out.with_columns(
            hour.cast(frame.schema["plan_cache_write_1h"]).alias("plan_cache_write_1h")
        )
    return out.select(cols), templates


def _templates(planned: pl.DataFrame) -> pl.DataFrame:
    """Per template of a provider that charges writes: what planning its prefix cache saves
    over the log (USD at the plan model's list prices: reads gained × (input − cached) −
    writes added × (write − input), the 1-hour write rate for 1-hour writers)."""
    charged = planned.filter(pl.col("_charged") & ~pl.col("plan_free").fill_null(False))
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        "provider": planned.schema["provider"],
        "plan_model": planned.schema["plan_model"],
        "prefix_group": planned.schema["prefix_group"],
        "calls": pl.UInt32,
        "net_usd": pl.Float64,
        "planned": pl.Boolean,
    }
    if charged.is_empty():
        return pl.DataFrame(schema=schema)
    keys = charged.select("provider", "plan_model").unique().rows()
    cards = {key: rate_card(*key) for key in keys}
    rates = pl.DataFrame(
        {
            "provider": [k[0] for k in keys],
            "plan_model": [k[1] for k in keys],
            "_gain": [c.input - c.cache_read if c else 0.0 for c in cards.values()],
            "_premium": [c.cache_write - c.input if c else 0.0 for c in cards.values()],
            "_premium_1h": [
                (c.cache_write_1h if c.cache_write_1h is not None else c.cache_write) - c.input
                if c
                else 0.0
                for c in cards.values()
            ],
        },
        schema_overrides={"provider": schema["provider"], "plan_model": schema["plan_model"]},
    )
    priced = charged.join(rates, on=["provider", "plan_model"], how="left", nulls_equal=True)
    premium = pl.when(pl.col("ttl_1h").fill_null(False)).then("_premium_1h").otherwise("_premium")
    net = (pl.col("_read") - pl.col("_logged_read")) * pl.col("_gain") - (
        pl.col("_write") - pl.col("_logged_write")
    ) * premium
    return (
        priced.group_by("provider", "plan_model", "prefix_group")
        .agg(pl.len().cast(pl.UInt32).alias("calls"), net.sum().alias("net_usd"))
        .with_columns((pl.col("net_usd") >= 0).alias("planned"))
        .sort("net_usd")
        .cast(schema)  # type: ignore[arg-type]
    )


__all__ = ["PrefixSettings", "prefix_on_plan"]
