"""Routing helpers: model tiers, per-call difficulty features and the per-category table.

Difficulty (../shared/DESIGN.md §5.1) is read only from what a router sees *before* the call,
the request: input tokens (its length), code lines (fenced blocks in the query), conversation
depth (turn − 1) and tool messages in the request (``role: tool`` messages and assistant
``tool_calls``). Output and reasoning tokens exist only after the call and are never features.
Each feature x scores x / (x + scale) — 0 for none, 0.5 at ``[routing] feature_scale``,
approaching 1 — and the call's score is their ``[routing] feature_weights`` average. A
category's difficulty is the ``[routing] category_quantile`` of its calls' scores (the model
that happened to serve a category's calls does not lower it: that would be reading the
answer's side, and one cheap FAQ answer is no evidence for a coding category).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from levers_cli.pricing.models import same_model
from levers_cli.schema import CATEGORY_ID

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.store import Workspace

FEATURES = ("input_tokens", "code_lines", "depth", "tools")
#: Tool messages in a request's ``messages`` JSON: a tool result or an assistant's tool call.
_TOOLS_SQL = """len(regexp_extract_all(coalesce(messages::VARCHAR, ''),
    '"role"\\s*:\\s*"tool"|"tool_calls"\\s*:\\s*\\[\\s*\\{'))"""


def tier_model(config: Config, tier: str, provider: str | None) -> str | None:
    """The ``[tiers] cheap`` or ``strong`` model of ``provider`` (``None`` when not configured)."""
    table = config.get("tiers", tier)
    return table.get(provider or "") if isinstance(table, dict) else None


def is_cheap(config: Config, provider: str | None, model: str | None) -> bool:
    """Whether ``model`` is ``provider``'s configured cheap tier."""
    return same_model(model, tier_model(config, "cheap", provider))


_CODE_LINES_SQL = """list_sum(list_transform(
    regexp_extract_all(coalesce({col}, ''), '(?s)```.*?```'),
    lambda x: greatest(len(string_split(trim(x), chr(10))) - 2, 0)))"""


def group_keys(ws: Workspace) -> list[str]:
    """The columns a category is keyed by: ``["feature", "category_id"]`` when ``calls`` has
    a ``feature`` column (categories live within an app feature, DESIGN §4.5), else
    ``["category_id"]``."""
    names = {
        r[0]
        for r in ws.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'calls'"
        ).fetchall()
    }
    return ["feature", CATEGORY_ID] if "feature" in names else [CATEGORY_ID]


def call_features(ws: Workspace) -> pl.DataFrame:
    """One row per call: ids, model, status, token counts and the difficulty features.

    Returns:
        A frame with ``call_id``, ``category_id`` (and ``feature`` where ``calls`` has it),
        ``provider``, ``model``, ``query_hash``, ``query``, ``status``, ``finish_reason``,
        ``priced``, ``output_tokens`` and ``reasoning_tokens`` (for pricing only, never
        features) and the :data:`FEATURES` (tokens, lines, turns, tool messages; never null).
    """
    feature = "feature, " if "feature" in group_keys(ws) else ""
    frame = pl.from_arrow(
        ws.con.sql(
            f"""SELECT call_id, {feature}coalesce(category_id, -1) AS category_id, provider,
                      model, query_hash, query, status, finish_reason,
                      cost_usd IS NOT NULL AS priced,
                      coalesce(input_tokens, 0)::DOUBLE AS input_tokens,
                      coalesce({_CODE_LINES_SQL.format(col="query")}, 0) AS code_lines,
                      greatest(coalesce(turn, 1) - 1, 0)::DOUBLE AS depth,
                      {_TOOLS_SQL}::DOUBLE AS tools,
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
    """Add ``cheap`` (served by the provider's ``[tiers] cheap`` model) and ``route_model``
    (that cheap model; null where the provider has none). Whether routing may move a call
    is decided per call on its cost (:mod:`levers_cli.levers.routing`), not here."""
    pairs = frame.select("provider", "model").unique().rows()
    rows = [(p, m, is_cheap(config, p, m), tier_model(config, "cheap", p)) for p, m in pairs]
    lookup = pl.DataFrame(
        rows,
        schema={
            "provider": frame.schema["provider"],
            "model": frame.schema["model"],
            "cheap": pl.Boolean,
            "route_model": pl.String,
        },
        orient="row",
    )
    return frame.join(lookup, on=["provider", "model"], how="left", nulls_equal=True)


def category_table(frame: pl.DataFrame, config: Config, keys: list[str]) -> pl.DataFrame:
    """Per categorized group (``keys``): calls, eligible calls, feature means and
    ``difficulty``, the ``[routing] category_quantile`` of its calls' request scores (sorted
    by difficulty)."""
    q = float(config.get("routing", "category_quantile"))
    cats = frame.filter(pl.col(CATEGORY_ID) >= 0)
    table = cats.group_by(keys).agg(
        pl.len().alias("calls"),
        pl.col("eligible").sum().alias("eligible_calls"),
        pl.col("score").quantile(q, interpolation="linear").alias("difficulty"),
        *[pl.col(f).mean().round(1).alias(f"mean_{f}") for f in FEATURES],
    )
    return table.sort("difficulty", CATEGORY_ID)


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
