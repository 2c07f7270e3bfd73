"""Figures, evidence rows and details of the context lever (:mod:`levers_cli.levers.context`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from levers_cli.levers.base import LEVELS, Figure

if TYPE_CHECKING:
    from levers_cli.levers.context.history import CallTable, Policy

_POLICY = (
    "[context] utilization_threshold, summarize_every_turns, summary_ratio, "
    "summary_min_tokens, min_history_tokens, drop_forks, doc_keep_ratio "
    "(../shared/DESIGN.md §5.2 policy; defaults.toml names each source)"
)
_HISTORY = "calls.messages before the last user turn (count_messages split, scaled to input_tokens)"


def dead_weight(table: CallTable, forks: dict[str, float]) -> dict[str, int]:
    """Per conversation: history tokens from before a fork that its later calls re-send."""
    order = np.lexsort((table.step, table.conv))  # conversation by conversation, in turn order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    ends = np.flatnonzero(np.diff(np.append(table.conv[order], -1))) + 1
    end_of = np.repeat(ends, np.diff(np.concatenate([[0], ends])))  # per place in ``order``
    ids, convs = table.calls["call_id"], table.calls["conversation_id"]
    history = table.tokens[table.history]
    totals: dict[str, float] = {}
    for row in np.flatnonzero(ids.is_in(list(forks)).to_numpy()).tolist():
        later = order[rank[row] : end_of[rank[row]]]
        before = table.history_sums(history, np.full(len(later), table.last_user[row]), None, later)
        key = convs[row] or f"call:{ids[row]}"
        totals[key] = totals.get(key, 0.0) + sum(before.tolist())
    return {key: round(total) for key, total in totals.items() if total}


def per_call_frame(
    table: CallTable, outcomes: dict[str, dict[str, np.ndarray]], fork: np.ndarray, doc_min: int
) -> pl.DataFrame:
    """One row per loaded call: its history, utilization, pasted-document tokens (its query
    when at least ``doc_min`` tokens), fork flag and each level's ``removed_<level>``
    (tokens), ``extra_usd_<level>`` (USD), ``summarized_<level>`` and ``prefix_<level>``
    (tokens its new prompt can share with an earlier one; null while the conversation's
    prompts are the logged ones)."""
    query = table.query_tokens
    calls = table.calls
    return pl.DataFrame(
        {
            "call_id": calls["call_id"],
            "conversation_id": calls["conversation_id"],
            "turn": calls["turn"].cast(pl.Int64),
            "model": calls["model"].cast(pl.String),
            "input_tokens": calls["input_tokens"].cast(pl.Int64),
            "history_tokens": np.round(table.history_tokens).astype(np.int64),
            "utilization": calls["input_tokens"] / calls["window"],
            "doc_tokens": np.where(query >= doc_min, np.round(query), 0).astype(np.int64),
            "fork": fork,
            "cost_usd": calls["cost_usd"],
            **{
                f"{column}_{level}": outcomes[level][column]
                for level in LEVELS
                for column in ("removed", "extra_usd", "summarized")
            },
            **{
                f"prefix_{level}": pl.Series(outcomes[level]["prefix"], dtype=pl.Int64)
                for level in LEVELS
            },
        }
    ).with_columns(
        pl.when(pl.col(f"prefix_{level}") >= 0).then(pl.col(f"prefix_{level}"))
        .alias(f"prefix_{level}")
        for level in LEVELS
    )  # fmt: skip


def evidence_rows(per_call: pl.DataFrame, limit: int) -> list[dict[str, Any]]:
    """The conversations that re-send the most history tokens, best first (at most ``limit``)."""
    frame = per_call.filter(pl.col("conversation_id").is_not_null())
    if frame.is_empty():
        return []
    rows = (
        frame.group_by("conversation_id")
        .agg(
            pl.len().alias("calls"),
            pl.col("turn").max().alias("turns"),
            pl.col("model").mode().first().alias("model"),
            pl.col("history_tokens").sum(),
            pl.col("input_tokens").sum(),
            pl.col("utilization").max().alias("utilization_max"),
            pl.col("turn").filter(pl.col("fork")).alias("fork_turns"),
            pl.col("summarized_expected").sum().alias("summaries_expected"),
            pl.col("removed_expected").sum().alias("tokens_removed_expected"),
            pl.col("cost_usd").sum(),
            pl.col("call_id").first().alias("first_call_id"),
        )
        .filter(pl.col("history_tokens") > 0)
        .sort(["history_tokens", "conversation_id"], descending=[True, False])
        .head(limit)
    )
    return rows.to_dicts()


def figures(
    per_call: pl.DataFrame,
    table: CallTable,
    forks: dict[str, float],
    pols: dict[str, Policy],
    input_total: int,
) -> tuple[list[Figure], dict[str, Any]]:
    """Headline figures (each with its basis) and the JSON details."""
    conversations = per_call["conversation_id"].drop_nulls()
    multi = int((conversations.filter(conversations != "").value_counts()["count"] > 1).sum())
    history = int(per_call["history_tokens"].sum()) if per_call.height else 0
    # polars types a Series' max as any Python value; a share column's is a float
    util_max = float(per_call["utilization"].max() or 0.0) if per_call.height else 0.0  # type: ignore[arg-type]
    weight = dead_weight(table, forks)
    docs = per_call.filter(pl.col("doc_tokens") > 0) if per_call.height else per_call

    def by_level(column: str, agg: str = "sum") -> dict[str, float]:
        if not per_call.height:
            return dict.fromkeys(LEVELS, 0)
        return {lv: getattr(per_call[f"{column}_{lv}"], agg)() for lv in LEVELS}

    removed = {lv: int(v) for lv, v in by_level("removed").items()}
    summaries = {lv: int(v) for lv, v in by_level("summarized").items()}
    cost = {lv: float(v) for lv, v in by_level("extra_usd").items()}
    over = {
        lv: int((per_call["utilization"] >= p.threshold).sum()) if per_call.height else 0
        for lv, p in pols.items()
    }
    figs = [
        Figure(
            "multi_turn_conversations", multi, "conversations", "evidence",
            "calls.conversation_id (logged, or rebuilt from re-sent messages)",
        ),
        Figure("resent_history_tokens", history, "tokens", "evidence", _HISTORY),
        Figure(
            "history_share_of_input", history / input_total if input_total else 0.0, "share",
            "evidence", f"{_HISTORY} / all calls' input_tokens",
        ),
        Figure(
            "utilization_max", util_max, "share", "evidence",
            "input_tokens / the model's context window (genai-prices)",
        ),
        Figure(
            "calls_at_threshold", over, "calls", "evidence",
            "utilization ≥ [context] utilization_threshold",
        ),
        Figure(
            "forks", len(forks), "calls", "evidence",
            "cached query embeddings: cosine to every earlier query of the conversation "
            "< [context] fork_similarity, query ≥ fork_min_query_tokens",
        ),
        Figure(
            "fork_dead_weight_tokens", sum(weight.values()), "tokens", "evidence",
            "history from before each fork re-sent by the fork and later calls",
        ),
        Figure(
            "doc_candidate_calls", docs.height, "calls", "evidence",
            "user messages of at least [context] doc_min_tokens",
        ),
        Figure("summaries", summaries, "calls", "assumption", _POLICY),
        Figure("tokens_removed", removed, "tokens", "assumption", _POLICY),
        Figure(
            "summary_cost_usd", cost, "USD", "assumption",
            f"{_POLICY}; summaries priced at the provider's [tiers] cheap model (genai-prices)",
        ),
    ]  # fmt: skip
    details = {
        "multi_turn_conversations": multi,
        "resent_history_tokens": history,
        "utilization_max": util_max,
        "forks": len(forks),
        "fork_dead_weight_tokens": sum(weight.values()),
        "doc_candidates": docs.height,
        "doc_tokens": int(docs["doc_tokens"].sum()) if docs.height else 0,
        "summaries": summaries,
        "tokens_removed": removed,
        "summary_usd": cost,
    }
    return figs, details
