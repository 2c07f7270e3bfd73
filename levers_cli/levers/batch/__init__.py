"""Lever 7, batch: send the calls that need no real-time answer through the provider's batch
API.

Method (../shared/DESIGN.md §5.7): four detection rules, each read from the log
(:mod:`levers_cli.levers.batch.detection`): metadata tags, non-interactive callers, isolated
bursts of one template or one app, and schedules (one template at the same hour every day or
the same weekday hour every week). The share of those calls a team would move is an
assumption per level: ``[batch] move_share_declared`` for calls the metadata declares (tagged
or a service caller), ``move_share_inferred`` for calls only their traffic pattern marks;
floor(share × calls) of each class move, spread evenly in time order. Moved calls get
``plan_batch``: the simulation prices them at the provider's batch factor
(``provider_rules.toml``), or the ``[batch] price_factor`` override, which the simulation's
``plan_cost`` applies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from levers_cli.levers.base import LEVELS, Figure, Finding, Lever, combine_basis, quoted_names
from levers_cli.levers.batch.detection import RULES, detect
from levers_cli.pricing.prefix import batch_cache_limits
from levers_cli.rules import batch_factor as rules_batch_factor
from levers_cli.text.content import plural

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.levers.base import ActionContext, Level
    from levers_cli.store import Workspace

_SOURCES = {
    "tagged": "calls.metadata: a [batch] tag_keys key or a value with one of tag_words",
    "source": "calls.metadata: a [batch] source_keys value with one of source_words",
    "burst": "calls.ts: ≥ [batch] burst_min_calls single-turn calls of one key (template, "
    "category, model + system prompt) within burst_gap_seconds of each other, isolated "
    "(burst_isolation_minutes, burst_isolation_share)",
    "scheduled": "calls.ts: one template in one daily / weekly hour slot on ≥ [batch] "
    "schedule_min_occurrences days / weeks",
}


def level_values(config: Config, key: str) -> dict[str, Any]:
    """``[batch] key`` per level (a plain value applies to every level)."""
    value = config.get("batch", key)
    if isinstance(value, dict) and set(LEVELS) <= set(value):
        return {level: value[level] for level in LEVELS}
    return dict.fromkeys(LEVELS, value)


def batch_factor(config: Config, provider: str | None, model: str | None) -> tuple[float, str]:
    """Share of the list price paid through the batch API, and where it comes from."""
    return rules_batch_factor(provider, model, config.get("batch", "price_factor"))


def _moved(frame: pl.DataFrame, config: Config) -> pl.DataFrame:
    """``batch_<level>`` per candidate: floor(share × n) of the n declared (inferred)
    candidates, taken evenly in time order, so each job moves about that share."""
    declared = level_values(config, "move_share_declared")
    inferred = level_values(config, "move_share_inferred")
    index = pl.int_range(pl.len()).over("declared")

    def taken(level: str) -> pl.Expr:
        share = pl.when(pl.col("declared")).then(declared[level]).otherwise(inferred[level])
        step = ((index + 1) * share + 1e-9).floor() - (index * share + 1e-9).floor()
        return (step >= 1).alias(f"batch_{level}")

    return frame.sort("ts", "call_id", nulls_last=True).with_columns(taken(lv) for lv in LEVELS)


class BatchLever(Lever):
    """Move calls that need no real-time answer to the providers' batch APIs."""

    id = 7
    name = "batch"
    effort = "low"
    export_command = "levers export batch"

    def analyze(self, ws: Workspace, config: Config) -> Finding:
        """Run the detection rules; ``per_call``: each candidate's rules, job, template and
        ``batch_<level>`` (moved at that level)."""
        frame = detect(ws, config)
        already = int(frame["is_batch"].sum())
        flex = int(frame["is_flex"].sum())
        cands = _moved(frame.filter(pl.col("candidate")), config)
        rules = pl.concat_str(
            [pl.when(pl.col(r)).then(pl.lit(r)) for r in RULES], separator=",", ignore_nulls=True
        )
        per_call = cands.select(
            "call_id", "provider", "job", "template", "declared", rules.alias("rules"),
            *(f"batch_{lv}" for lv in LEVELS),
            # declared by metadata or run on a schedule: latency tolerance seen in the logs;
            # a burst alone only suggests it
            (pl.col("declared") | pl.col("scheduled")).alias("evidence"),
        )  # fmt: skip
        moved = {lv: int(cands[f"batch_{lv}"].sum()) for lv in LEVELS}
        providers: dict[str, Any] = {}
        for (provider, model), group in cands.group_by("provider", "model"):
            factor, source = batch_factor(config, provider, model)
            row = providers.setdefault(provider or "(none)", {"calls": 0, "cost_usd": 0.0})
            row["calls"] += group.height
            row["cost_usd"] += float(group["cost_usd"].sum())
            row["batch_factor"], row["factor_source"] = factor, source
        figs = [
            Figure(f"{r}_calls", int(cands[r].sum()), "calls", "evidence", _SOURCES[r])
            for r in RULES
        ]
        figs += [
            Figure(
                "candidate_calls", cands.height, "calls", "evidence",
                "calls any rule marks, less those already sent through a batch API",
            ),
            Figure(
                "candidate_cost_usd", float(cands["cost_usd"].sum()), "USD", "evidence",
                "calls.cost_usd of the candidates over the log span",
            ),
            Figure("already_batch_calls", already, "calls", "evidence", "calls.is_batch"),
            Figure(
                "already_flex_calls", flex, "calls", "evidence",
                "calls.service_tier = 'flex': billed at Batch rates already, not discounted again",
            ),
            Figure(
                "batch_factor",
                {p: row["batch_factor"] for p, row in providers.items()},
                "share", "assumption",
                "; ".join(sorted({row["factor_source"] for row in providers.values()})),
            ),
            Figure(
                "moved_calls", moved, "calls", "assumption",
                "[batch] move_share_declared / move_share_inferred (assumption: the share a "
                "team would move off real-time)",
            ),
        ]  # fmt: skip
        affected = cands.filter(pl.col("batch_expected"))
        return Finding(
            lever_id=self.id,
            name=self.name,
            calls_affected=affected.height,
            tokens_affected=int(affected["tokens"].sum()),
            basis=combine_basis([f.basis for f in figs]),
            figures=figs,
            evidence=_evidence(cands, int(config.get("batch", "evidence_rows"))),
            per_call=per_call,
            details={
                "candidates": cands.height,
                "by_rule": {r: int(cands[r].sum()) for r in RULES},
                "by_provider": providers,
                "already_batch_calls": already,
                "already_flex_calls": flex,
                "moved_calls": moved,
                "jobs": cands["job"].n_unique(),
            },
        )

    def next_action(self, result: dict[str, Any], context: ActionContext) -> str:
        """Send the calls that need no real-time answer through the Batch API."""
        moved = result["details"].get("moved_calls", {}).get("expected", 0)
        need = "needs" if moved == 1 else "need"
        return (
            f"Send {plural(moved, 'call')} that {need} no real-time answer through the Batch API"
            + quoted_names(result["evidence"], "query_start", 2, fallback="job")
        )

    def apply(
        self, plan: pl.DataFrame, finding: Finding, config: Config, level: Level
    ) -> pl.DataFrame:
        """Set ``plan_batch`` on the level's moved calls (not ``plan_free``, not already
        batched); the simulation prices them at the batch factor (``[batch] price_factor``
        override, else ``provider_rules.toml``). A moved call keeps only the cache reads its
        provider documents for batch jobs (:func:`levers_cli.pricing.prefix.batch_cache_limits`:
        none at OpenAI; at Anthropic and Google only from another batched call)."""
        if finding.per_call is None or finding.per_call.is_empty():
            return plan
        moved = finding.per_call.filter(pl.col(f"batch_{level}")).select("call_id")
        flag = pl.col("call_id").is_in(moved["call_id"].implode()) & ~pl.col("plan_free")
        flag = flag & ~pl.col("plan_batch").fill_null(False)
        out = plan.with_columns(flag.alias("_move"))
        out = out.with_columns(
            (pl.col("plan_batch").fill_null(False) | pl.col("_move")).alias("plan_batch")
        )
        if {"provider", "plan_model", "plan_cache_read"} <= set(out.columns):
            out = batch_cache_limits(out, pl.col("_move"))
        return out.select(plan.columns)


def _evidence(cands: pl.DataFrame, limit: int) -> list[dict[str, Any]]:
    """Per job (a template, or a burst of many templates): its rules, calls, templates,
    spend, time span and usual hour; costliest first."""
    if cands.is_empty():
        return []
    rounded = pl.col("ts") + pl.duration(minutes=30)
    rows = (
        cands.group_by("job")
        .agg(
            *(pl.col(r).sum().alias(f"{r}_calls") for r in RULES),
            pl.len().alias("calls"),
            pl.col("template").n_unique().alias("templates"),
            pl.col("cost_usd").sum(),
            pl.col("ts").min().alias("first_ts"),
            pl.col("ts").max().alias("last_ts"),
            rounded.dt.date().n_unique().alias("days"),
            rounded.dt.hour().mode().first().alias("usual_hour_utc"),
            pl.col("model").mode().first().alias("model"),
            pl.col("head").first().alias("query_start"),
            pl.col("call_id").first().alias("example_call_id"),
        )
        .sort(["cost_usd", "job"], descending=[True, False])
        .head(limit)
    )
    out = rows.to_dicts()
    for row in out:
        counts = {r: row.pop(f"{r}_calls") for r in RULES}
        row["rules"] = {r: n for r, n in counts.items() if n}
        for key in ("first_ts", "last_ts"):
            row[key] = row[key].isoformat() if row[key] is not None else None
    return out


__all__ = ["BatchLever", "batch_factor", "level_values"]
