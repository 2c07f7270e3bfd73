"""Lever 2, context: stop re-sending whole conversation histories.

Method (../shared/DESIGN.md §5.2): conversations are rebuilt at ingest (``conversation_id``,
``turn``). Per call, the re-sent history (every non-system message before the last user
message, token split by :func:`~levers_cli.text.tokens.count_messages` scaled to the logged
``input_tokens``) and the utilization ``input_tokens / context window`` (the window from
genai-prices, else ``[context] context_windows`` / ``default_context_window``). Policy per
level (:func:`~levers_cli.levers.context.history.walk`): when a call's planned utilization
reaches ``[context] utilization_threshold`` or ``summarize_every_turns`` exchanges piled up,
the history is replaced by a summary of ``summary_ratio`` of its tokens, costed as a call to
the provider's ``[tiers] cheap`` model (history in, summary out) on that call
(``plan_extra_usd``); later calls carry the summary until it grows again. Subtopic forks (a
long query whose cosine similarity to every earlier query of its conversation is below
``fork_similarity``; cached ``embeddings``) are evidence; where ``drop_forks`` is on for the
level, the history before a fork is dropped. User messages of at least ``doc_min_tokens``
(pasted documents, RAG context) are prompt-compression candidates kept at ``doc_keep_ratio``.
Savings (simulation): removed input tokens at the plan's input rates − summary costs. A
rewritten prompt shares only its head, carried summary and history up to the previous
question with an earlier one (``prefix_<level>``, :func:`~levers_cli.levers.context.history.walk`):
that bounds its cached tokens on the plan (``plan_prefix_tokens``), so a summary that breaks a
cached prefix costs what the cache no longer saves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from levers_cli.levers.base import LEVELS, Finding, Lever, combine_basis
from levers_cli.levers.context.calls import (
    input_total,
    load_table,
    model_window,
    query_vectors,
    summary_rates,
)
from levers_cli.levers.context.history import Policy, table_forks, walk_table
from levers_cli.levers.context.report import evidence_rows, figures, per_call_frame
from levers_cli.pricing.prefix import ensure_prefix_columns, limit_to_prefix
from levers_cli.text.content import plural

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.levers.base import ActionContext, Level
    from levers_cli.store import Workspace

_S = "context"


def level_values(config: Config, key: str) -> dict[str, Any]:
    """``[context] key`` per level (a plain value applies to every level)."""
    value = config.get(_S, key)
    if isinstance(value, dict) and set(LEVELS) <= set(value):
        return {level: value[level] for level in LEVELS}
    return dict.fromkeys(LEVELS, value)


def policies(config: Config) -> dict[str, Policy]:
    """The :class:`Policy` of each level from ``[context]``."""
    keys: tuple[str, ...] = ("utilization_threshold", "summarize_every_turns", "summary_ratio")
    keys += ("summary_min_tokens", "min_history_tokens", "drop_forks", "doc_min_tokens")
    values = {key: level_values(config, key) for key in (*keys, "doc_keep_ratio")}
    return {
        level: Policy(*(values[key][level] for key in (*keys, "doc_keep_ratio")))
        for level in LEVELS
    }


class ContextLever(Lever):
    """Summarize long histories, drop forks' dead weight, compress pasted documents."""

    id = 2
    name = "context"
    effort = "medium"

    def analyze(self, ws: Workspace, config: Config) -> Finding:
        """Measure re-sent history, utilization, forks and long documents; replay each
        conversation under every level's policy (``per_call``: ``removed_<level>`` input
        tokens and ``extra_usd_<level>`` summary cost per call)."""
        overrides: dict[str, int] = config.get(_S, "context_windows")
        default = int(config.get(_S, "default_context_window"))
        windows: dict[str, dict[str, Any]] = {}

        def window_of(provider: str | None, model: str | None) -> int:
            found = overrides.get(model or "") or model_window(provider, model)
            source = "[context] context_windows" if model in overrides else "genai-prices"
            if not found:
                found, source = default, "[context] default_context_window (assumption)"
            windows[model or "(no model)"] = {"tokens": int(found), "source": source}
            return int(found)

        pols = policies(config)
        doc_min = min(p.doc_min_tokens for p in pols.values())
        table = load_table(ws, doc_min, window_of)
        rows, vectors = query_vectors(ws, table.calls["query_hash"])
        least = float(config.get(_S, "fork_similarity"))
        shortest = float(config.get(_S, "fork_min_query_tokens"))
        forks = table_forks(table, rows, vectors, least, shortest)
        fork = table.calls["call_id"].is_in(list(forks)).to_numpy()
        rates = summary_rates(table, config.get("tiers", "cheap"))
        outcomes = {level: walk_table(table, p, fork, rates) for level, p in pols.items()}
        per_call = per_call_frame(table, outcomes, fork, doc_min)
        figs, details = figures(per_call, table, forks, pols, input_total(ws))
        details["context_windows"] = windows
        details["fork_embeddings"] = len(vectors)
        return self._finding(ws, config, per_call, figs, details)

    def _finding(
        self,
        ws: Workspace,
        config: Config,
        per_call: pl.DataFrame,
        figs: list[Any],
        details: dict[str, Any],
    ) -> Finding:
        affected = per_call.filter(pl.col("removed_expected") > 0)
        tokens = ws.con.execute(
            "SELECT coalesce(sum(input_tokens + output_tokens), 0) FROM calls "
            "WHERE call_id IN (SELECT unnest(?))",
            [affected["call_id"].to_list()],
        ).fetchone()
        return Finding(
            lever_id=self.id,
            name=self.name,
            calls_affected=affected.height,
            tokens_affected=int(tokens[0]) if tokens else 0,
            basis=combine_basis([f.basis for f in figs]),
            figures=figs,
            evidence=evidence_rows(per_call, int(config.get(_S, "evidence_rows"))),
            per_call=per_call,
            details=details,
        )

    def next_action(self, result: dict[str, Any], context: ActionContext) -> str:
        """Summarize long histories: summaries and the re-sent tokens they remove."""
        d = result["details"]
        summaries = d.get("summaries", {}).get("expected", 0)
        removed = d.get("tokens_removed", {}).get("expected", 0)
        conversations = d.get("multi_turn_conversations", 0)
        return (
            f"Summarize long conversation histories: {plural(summaries, 'summary', 'summaries')} "
            f"remove{'s' if summaries == 1 else ''} {plural(removed, 're-sent input token')} over "
            f"the log ({plural(conversations, 'multi-turn conversation')})"
        )

    def apply(
        self, plan: pl.DataFrame, finding: Finding, config: Config, level: Level
    ) -> pl.DataFrame:
        """Lower ``plan_input`` by the level's removed tokens (scaled to the plan's current
        input) and add the summary costs to ``plan_extra_usd``; ``plan_free`` rows stay.

        A rewritten prompt keeps only its ``prefix_<level>`` tokens in common with an earlier
        prompt (the system prompt, the carried summary, the history up to the previous
        question), scaled as the cut is: that becomes the call's ``plan_prefix_tokens``, and
        its cache reads and writes are bounded by it under the plan model's provider rules
        (:func:`levers_cli.pricing.prefix.limit_to_prefix`): a shortened prompt below the
        model's minimum reads nothing from the cache. The caching lever, after this one,
        prices the prefix the new prompt can share."""
        if finding.per_call is None or finding.per_call.is_empty():
            return plan
        prefix_col = f"prefix_{level}"
        extra = [prefix_col] if prefix_col in finding.per_call.columns else []
        cuts = finding.per_call.select(
            "call_id",
            pl.col(f"removed_{level}").alias("_cut"),
            pl.col(f"extra_usd_{level}"),
            *(pl.col(c).alias("_prefix") for c in extra),
        )
        if not extra:
            cuts = cuts.with_columns(pl.lit(None, pl.Int64).alias("_prefix"))
        joined = ensure_prefix_columns(plan).join(cuts, on="call_id", how="left")
        live = ~pl.col("plan_free") & pl.col("_cut").is_not_null()
        logged = pl.col("input_tokens").cast(pl.Float64)
        scale = pl.col("plan_input") / logged
        cut = (pl.col("_cut") * scale).round().fill_nan(0)
        new_input = (pl.col("plan_input") - cut).clip(lower_bound=0)
        shortened = joined.with_columns(
            pl.when(live & (pl.col("_cut") > 0))
            .then(new_input)
            .otherwise(pl.col("plan_input"))
            .cast(plan.schema["plan_input"])
            .alias("plan_input"),
            (pl.col("_prefix") * scale).round().fill_nan(0).cast(pl.Int64).alias("_prefix"),
        )
        rewritten = live & pl.col("_prefix").is_not_null()
        bounded = limit_to_prefix(shortened, rewritten, pl.col("_prefix"))
        return bounded.with_columns(
            pl.when(live)
            .then(pl.col("plan_extra_usd") + pl.col(f"extra_usd_{level}"))
            .otherwise(pl.col("plan_extra_usd"))
            .alias("plan_extra_usd")
        ).select(ensure_prefix_columns(plan).columns)


__all__ = ["ContextLever", "level_values", "policies"]
