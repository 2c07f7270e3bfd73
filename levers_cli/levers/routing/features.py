"""Routing helpers: model tiers, per-call difficulty features and the per-category table.

Difficulty (../shared/DESIGN.md §5.1) is read from what the log shows about each call: input
tokens, code lines (fenced blocks in the query and the answer), conversation depth (turn − 1),
reasoning tokens spent and output tokens. Each feature x scores x / (x + scale) — 0 for none,
0.5 at ``[routing] feature_scale``, approaching 1 — and the call's score is their
``[routing] feature_weights`` average. A category's difficulty is the
``[routing] category_quantile`` of its calls' scores, discounted by its historical model mix:
× (1 − ``[routing] mix_weight`` × the share of its calls already served by the cheap tier).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from levers_cli.pricing.models import same_model
from levers_cli.pricing.rates import rate_card
from levers_cli.schema import CATEGORY_ID

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.store import Workspace

FEATURES = ("input_tokens", "code_lines", "depth", "reasoning_tokens", "output_tokens")


def tier_model(config: Config, tier: str, provider: str | None) -> str | None:
    """The ``[tiers] cheap`` or ``strong`` model of ``provider`` (``None`` when not configured)."""
    table = config.get("tiers", tier)
    return table.get(provider or "") if isinstance(table, dict) else None


def is_cheap(config: Config, provider: str | None, model: str | None) -> bool:
    """Whether ``model`` is ``provider``'s configured cheap tier."""
    return same_model(model, tier_model(config, "cheap", provider))


def is_strong_or_pricier(config: Config, provider: str | None, model: str | None) -> bool:
    """Whether routing may move a call off ``model``: it is the provider's ``[tiers] strong``
    model, or costs at least as much per input and per output token (genai-prices rate cards).

    Models without a price, and the cheap tier itself, are never routed (no "upgrades")."""
    strong = tier_model(config, "strong", provider)
    if not strong or not model or is_cheap(config, provider, model):
        return False
    if same_model(model, strong):
        return True
    card, ref = rate_card(provider, model), rate_card(provider, strong)
    return bool(card and ref and card.input >= ref.input and card.output >= ref.output)


_CODE_LINES_SQL = """list_sum(list_transform(
    regexp_extract_all(coalesce({col}, ''), '(?s)```.*?```'),
    lambda x: greatest(len(string_split(trim(x), chr(10))) - 2, 0)))"""


def call_features(ws: Workspace) -> pl.DataFrame:
    """One row per call: ids, model, status, token counts and the difficulty features.

    Returns:
        A frame with ``call_id``, ``category_id``, ``provider``, ``model``, ``query_hash``,
        ``query``, ``status``, ``finish_reason``, ``priced`` and the :data:`FEATURES` (tokens,
        lines, turns; never null).
    """
    frame = pl.from_arrow(
        ws.con.sql(
            f"""SELECT call_id, coalesce(category_id, -1) AS category_id, provider, model,
                      query_hash, query, status, finish_reason, cost_usd IS NOT NULL AS priced,
                      coalesce(input_tokens, 0)::DOUBLE AS input_tokens,
                      coalesce({_CODE_LINES_SQL.format(col="query")}, 0)
                        + coalesce({_CODE_LINES_SQL.format(col="response")}, 0) AS code_lines,
                      greatest(coalesce(turn, 1) - 1, 0)::DOUBLE AS depth,
                      coalesce(reasoning_tokens, 0)::DOUBLE AS reasoning_tokens,
                      coalesce(output_tokens, 0)::DOUBLE AS output_tokens
               FROM calls ORDER BY call_id"""
        ).to_arrow_table()
    )
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(pl.col("code_lines").cast(pl.Float64))


def score_calls(frame: pl.DataFrame, config: Config) -> pl.DataFrame:
    """Add ``score``: the weighted mean of x / (x + scale) over :data:`FEATURES` (0–1)."""
    weights = config.get("routing", "feature_weights")
    scales = config.get("routing", "feature_scale")
    total = sum(float(weights[f]) for f in FEATURES) or 1.0
    parts = [
        float(weights[f]) * pl.col(f) / (pl.col(f) + float(scales[f]))
        for f in FEATURES
        if float(weights[f])
    ]
    return frame.with_columns((pl.sum_horizontal(parts) / total).alias("score"))


def mark_models(frame: pl.DataFrame, config: Config) -> pl.DataFrame:
    """Add ``cheap`` (served by the cheap tier), ``eligible`` (priced and strong-or-pricier:
    routing may move it) and ``route_model`` (the provider's cheap model)."""
    pairs = frame.select("provider", "model").unique().rows()
    rows = [
        (
            p,
            m,
            is_cheap(config, p, m),
            is_strong_or_pricier(config, p, m),
            tier_model(config, "cheap", p),
        )
        for p, m in pairs
    ]
    lookup = pl.DataFrame(
        rows,
        schema={
            "provider": frame.schema["provider"],
            "model": frame.schema["model"],
            "cheap": pl.Boolean,
            "strong": pl.Boolean,
            "route_model": pl.String,
        },
        orient="row",
    )
    marked = frame.join(lookup, on=["provider", "model"], how="left", nulls_equal=True)
    return marked.with_columns(
        (pl.col("strong") & pl.col("priced") & pl.col("route_model").is_not_null()).alias(
            "eligible"
        )
    ).drop("strong")


def keyword_tiers(frame: pl.DataFrame, config: Config) -> pl.DataFrame:
    """Add ``forced``: ``strong`` / ``cheap`` where the query contains a
    ``[routing] keyword_overrides`` keyword (whole word, any case; the first listed wins)."""
    forced = pl.lit(None, dtype=pl.String)
    overrides: dict[str, str] = config.get("routing", "keyword_overrides")
    for keyword, tier in reversed(list(overrides.items())):
        pattern = rf"(?i)\b{re.escape(keyword)}\b"
        forced = pl.when(pl.col("query").str.contains(pattern)).then(pl.lit(tier)).otherwise(forced)
    return frame.with_columns(forced.alias("forced"))


def category_table(frame: pl.DataFrame, config: Config) -> pl.DataFrame:
    """Per categorized call group: calls, eligible calls, feature means, model mix, cheap-tier
    answers (with status / finish_reason) and ``difficulty`` (see the module docstring)."""
    q = float(config.get("routing", "category_quantile"))
    w = float(config.get("routing", "mix_weight"))
    cats = frame.filter(pl.col(CATEGORY_ID) >= 0)
    ok = (pl.col("status").fill_null("ok") == "ok") & (
        pl.col("finish_reason").fill_null("") != "length"
    )
    table = cats.group_by(CATEGORY_ID).agg(
        pl.len().alias("calls"),
        pl.col("eligible").sum().alias("eligible_calls"),
        pl.col("score").quantile(q, interpolation="linear").alias("feature_score"),
        *[pl.col(f).mean().round(1).alias(f"mean_{f}") for f in FEATURES],
        pl.col("cheap").mean().alias("cheap_share"),
        pl.col("cheap").sum().alias("cheap_answers"),
        (pl.col("cheap") & ok).sum().alias("cheap_ok"),
        (pl.col("cheap") & (pl.col("finish_reason") == "length")).sum().alias("cheap_truncated"),
        (pl.col("cheap") & (pl.col("status") == "error")).sum().alias("cheap_errors"),
    )
    difficulty = pl.col("feature_score") * (1 - w * pl.col("cheap_share"))
    return table.with_columns(difficulty.alias("difficulty")).sort("difficulty", CATEGORY_ID)


def wilson_lower(successes: int, n: int, z: float) -> float:
    """Lower end of the Wilson score interval of ``successes / n`` at ``z`` (z = 0: the share).

    Source: Wilson (1927), the interval recommended for small n (Brown, Cai & DasGupta 2001)."""
    if n <= 0:
        return 0.0
    p = successes / n
    if z <= 0:
        return p
    z2 = z * z
    centre = p + z2 / (2 * n)
    margin = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return float(max(0.0, (centre - margin) / (1 + z2 / n)))


def label_shares(frame: pl.DataFrame, labels: pl.DataFrame) -> dict[int, dict[str, Any]]:
    """Per category: distinct labelled queries and how many the cheap tier may take."""
    if labels.is_empty():
        return {}
    queries = frame.filter(pl.col(CATEGORY_ID) >= 0).select(CATEGORY_ID, "query_hash").unique()
    joined = queries.join(labels, on="query_hash", how="inner")
    out: dict[int, dict[str, Any]] = {}
    for row in (
        joined.group_by(CATEGORY_ID)
        .agg(pl.len().alias("labelled"), (pl.col("tier") == "cheap").sum().alias("cheap_labels"))
        .iter_rows(named=True)
    ):
        out[int(row[CATEGORY_ID])] = {
            "labelled": int(row["labelled"]),
            "cheap_labels": int(row["cheap_labels"]),
        }
    return out
