"""What a call's cached prefix can be on the plan, under its plan model's provider rules.

The plan says what prefix a call's prompt now has (:mod:`levers_cli.pricing.plan`):
``plan_prefix_tokens`` bounds the prefix an earlier call's prompt can share once a lever has
rewritten the prompt (null: the prompt as logged), and ``plan_cache_source`` names the call a
lever's cache read comes from. Cached tokens are reachable only when they fit the rules of
``provider_rules.toml`` for the provider and *plan* model (a call routed elsewhere uses that
model's cache): at least its minimum, in its increments, never more than the prompt's
cacheable prefix, and in batch jobs only as the provider documents for batches.

Shared below the levers: the context lever bounds the cache reads of the prompts it shortens
(:func:`limit_to_prefix`), the caching lever prices prefixes on the plan
(:func:`with_rules`, :func:`cacheable`), the batch lever drops the reads a batch job cannot
get (:func:`batch_cache_limits`), and :func:`unreachable_reads` checks a simulated plan.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from levers_cli.rules import rule_for

#: A prefix bound that bounds nothing (the prompt as logged).
UNBOUNDED = 1 << 62

#: Rule columns :func:`with_rules` adds (dropped again by :func:`drop_rules`).
RULE_COLUMNS = (
    "_rule",
    "_min",
    "_inc",
    "_ttl",
    "_ttl_ext",
    "_charged",
    "_batch_cache",
)


def with_rules(plan: pl.DataFrame, model: str = "plan_model") -> pl.DataFrame:
    """``plan`` with each row's prefix-caching rule as columns, for its provider and the
    model in column ``model``: ``_rule`` (a rule applies and the model has a prefix cache),
    ``_min`` and ``_inc`` (tokens), ``_ttl`` and ``_ttl_ext`` (seconds), ``_charged`` (writes
    charged), ``_batch_cache`` (``none`` / ``within_batch``). Rows without a rule get
    ``_rule`` false, ``_min`` 1, ``_inc`` 1 (nothing known to limit), ``_ttl`` 0."""
    keys = plan.select("provider", model).unique().rows()
    rows: dict[str, list[Any]] = {name: [] for name in RULE_COLUMNS}
    for provider, name in keys:
        rule = rule_for(provider, name)
        known = rule is not None and rule.prefix_caching
        rows["_rule"].append(known)
        rows["_min"].append(rule.min_cacheable_tokens if rule and known else 1)
        rows["_inc"].append(rule.increment_tokens if rule and known else 1)
        rows["_ttl"].append(float(rule.ttl_seconds) if rule and known else 0.0)
        rows["_ttl_ext"].append(float(rule.extended_ttl_seconds) if rule and known else 0.0)
        rows["_charged"].append(bool(rule and known and rule.writes_charged))
        rows["_batch_cache"].append(rule.batch_cache if rule and known else "none")
    table = pl.DataFrame(
        {"provider": [k[0] for k in keys], model: [k[1] for k in keys], **rows},
        schema_overrides={
            "provider": plan.schema["provider"],
            model: plan.schema[model],
            "_rule": pl.Boolean,
            "_min": pl.Int64,
            "_inc": pl.Int64,
            "_ttl": pl.Float64,
            "_ttl_ext": pl.Float64,
            "_charged": pl.Boolean,
            "_batch_cache": pl.String,
        },
    )
    return plan.join(table, on=["provider", model], how="left", nulls_equal=True)


def drop_rules(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` without the columns :func:`with_rules` added."""
    return frame.drop([c for c in RULE_COLUMNS if c in frame.columns])


def cacheable(tokens: pl.Expr) -> pl.Expr:
    """Tokens of a ``tokens``-long shared prefix the provider serves from its cache, on a
    frame with :func:`with_rules`' columns: 0 below ``_min`` or where no prefix cache is
    known (``_rule`` false), else rounded down to a multiple of ``_inc``."""
    floored = (tokens // pl.col("_inc")) * pl.col("_inc")
    return pl.when(pl.col("_rule") & (tokens >= pl.col("_min"))).then(floored).otherwise(0)


def ensure_prefix_columns(plan: pl.DataFrame) -> pl.DataFrame:
    """``plan`` with ``plan_prefix_tokens`` and ``plan_cache_source`` (null) when a plan made
    before they existed lacks them (hand-built plans in tests and levers)."""
    missing = []
    if "plan_prefix_tokens" not in plan.columns:
        missing.append(pl.lit(None, pl.Int64).alias("plan_prefix_tokens"))
    if "plan_cache_source" not in plan.columns:
        missing.append(pl.lit(None, pl.String).alias("plan_cache_source"))
    return plan.with_columns(missing) if missing else plan


def limit_to_prefix(plan: pl.DataFrame, rewritten: pl.Expr, prefix: pl.Expr) -> pl.DataFrame:
    """Bound the cache reads and writes of the rows ``rewritten`` selects, whose prompt a
    lever has just rewritten so that only its first ``prefix`` tokens can still match an
    earlier prompt (their ``plan_input`` already the new length).

    Reads: the logged (or planned) read still reachable, ``cacheable(min(read, prefix))``
    under the plan model's rules. Writes: a write up to a breakpoint inside the kept prefix
    stays there; one beyond it moves to the end of the new prompt (where the request now
    ends); either way the write is what lies between the new read and that breakpoint, and
    nothing below the model's minimum. ``plan_prefix_tokens`` becomes the smaller of the old
    bound and ``prefix``. Other rows are unchanged.
    """
    plan = ensure_prefix_columns(plan)
    cols = plan.columns
    frame = with_rules(plan.with_columns(rewritten.alias("_rw"), prefix.alias("_pfx")))
    read, write, new_input = (
        pl.col("plan_cache_read"),
        pl.col("plan_cache_write"),
        pl.col("plan_input"),
    )
    pfx = pl.min_horizontal(pl.col("_pfx"), new_input)
    new_read = pl.min_horizontal(cacheable(pl.min_horizontal(read, pfx)), new_input)
    stop = pl.when(read + write <= pfx).then(read + write).otherwise(new_input)
    writes = (write > 0) & (stop >= pl.col("_min")) & pl.col("_rule")
    new_write: pl.Expr = (
        pl.when(writes).then(pl.max_horizontal(stop - new_read, 0)).otherwise(0)
    )
    new_write = pl.min_horizontal(new_write, new_input - new_read)
    bound = pl.min_horizontal(pl.col("plan_prefix_tokens").fill_null(UNBOUNDED), pfx)
    rw = pl.col("_rw").fill_null(False)
    changed = frame.with_columns(
        pl.when(rw).then(new_read).otherwise(read).alias("_read"),
        pl.when(rw).then(new_write).otherwise(write).alias("_write"),
        pl.when(rw).then(bound).otherwise(pl.col("plan_prefix_tokens")).alias("_bound"),
    ).with_columns(
        pl.col("_read").cast(plan.schema["plan_cache_read"]).alias("plan_cache_read"),
        pl.col("_write").cast(plan.schema["plan_cache_write"]).alias("plan_cache_write"),
        pl.col("_bound").cast(pl.Int64).alias("plan_prefix_tokens"),
    )
    if "plan_cache_write_1h" in cols:
        changed = changed.with_columns(
            pl.min_horizontal("plan_cache_write_1h", "plan_cache_write")
            .cast(plan.schema["plan_cache_write_1h"])
            .alias("plan_cache_write_1h")
        )
    return changed.select(cols)


def batch_cache_limits(plan: pl.DataFrame, moved: pl.Expr) -> pl.DataFrame:
    """Cache reads of the rows ``moved`` selects (just moved into a batch job) as the
    provider documents them for batches (``batch_cache`` in ``provider_rules.toml``):
    ``none`` → no reads (priced uncached); ``within_batch`` → a read stays only when its
    source (``plan_cache_source``) is in a batch job too; a read of unknown source (as
    logged, from the real-time cache) is dropped. Writes stay: they are charged in a batch
    as in real time."""
    plan = ensure_prefix_columns(plan)
    cols = plan.columns
    batched = plan.filter(pl.col("plan_batch").fill_null(False)).select(
        pl.col("call_id").alias("plan_cache_source"), pl.lit(True).alias("_src_batch")
    )
    frame = with_rules(plan.with_columns(moved.fill_null(False).alias("_moved")))
    frame = frame.join(batched, on="plan_cache_source", how="left")
    keep = (pl.col("_batch_cache") == "within_batch") & pl.col("_src_batch").fill_null(False)
    drop = pl.col("_moved") & ~keep & (pl.col("plan_cache_read") > 0)
    return frame.with_columns(
        pl.when(drop).then(0).otherwise(pl.col("plan_cache_read"))
        .cast(plan.schema["plan_cache_read"]).alias("plan_cache_read"),
        pl.when(drop).then(None).otherwise(pl.col("plan_cache_source")).alias("plan_cache_source"),
    ).select(cols)  # fmt: skip


def unreachable_reads(plan: pl.DataFrame) -> pl.DataFrame:
    """The rows of a (simulated) plan whose cached tokens its plan model's rules do not
    allow: a read above the prompt's cacheable prefix (``plan_prefix_tokens``, else the
    plan's input), or, for a model with a prefix cache, below its minimum or off its
    increments. Free rows cost nothing and are skipped. Empty when every cached token is
    reachable."""
    plan = ensure_prefix_columns(plan)
    frame = with_rules(plan)
    read = pl.col("plan_cache_read").fill_null(0)
    bound = pl.min_horizontal(
        pl.col("plan_prefix_tokens").fill_null(UNBOUNDED), pl.col("plan_input")
    )
    ruled = pl.col("_rule") & ((read < pl.col("_min")) | (read % pl.col("_inc") != 0))
    bad = ~pl.col("plan_free").fill_null(False) & (read > 0) & ((read > bound) | ruled)
    return drop_rules(frame.filter(bad))


__all__ = [
    "UNBOUNDED",
    "batch_cache_limits",
    "cacheable",
    "drop_rules",
    "ensure_prefix_columns",
    "limit_to_prefix",
    "unreachable_reads",
    "with_rules",
]
