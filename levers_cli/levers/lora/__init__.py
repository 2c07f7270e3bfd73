"""Lever 6, LoRA: a fine-tuned small model takes over high-volume categories that expensive
models serve with accepted answers.

Method (../shared/DESIGN.md §5.6). A call is *expensive* when its tokens cost more at its
model's list price than at the LoRA model's. A category (``category_id`` ≥ 0) is a candidate
when its expensive calls hold at least ``[lora] min_examples`` accepted answers (the training
examples; :mod:`levers_cli.levers.lora.acceptance`: metadata feedback, else no immediate rephrased
retry). The LoRA model is ``[lora] model`` at its genai-prices price (a fine-tuned
gpt-4o-mini), or at ``[lora] price`` (USD/MTok) for a model genai-prices does not list; the plan
prices it as ``[lora] base_model`` plus the difference per token (``plan_extra_usd``; not
discounted by the batch rate, a slight overestimate). It takes over ``[lora] share`` of a
candidate's expensive calls: those whose hash of ``call_id`` falls below the share
(deterministic), and only where it is cheaper than the call's current plan (routing may already
have moved it). One-time training cost per category = training tokens (input + output −
reasoning of at most ``max_training_examples`` examples, at their mean) × ``epochs`` ×
``training_usd_per_mtok``, amortized over ``amortize_months``: the monthly share, scaled to the
log's span, is spread evenly over the category's candidate calls that the plan still pays for
(``plan_extra_usd``). A category is trained only when what its taken-over calls save exceeds
that amortized cost (after earlier levers, e.g. routing, it may no longer pay); else its calls
stay as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from levers_cli.levers.base import (
    LEVELS,
    Finding,
    Lever,
    chain_links,
    combine_basis,
    quoted_names,
)
from levers_cli.levers.lora.calls import (
    PLAN_TOKENS,
    category_table,
    cost_of,
    draw,
    figures,
    load_calls,
    lora_rates,
    monthly_net,
    vars_of,
)
from levers_cli.pricing.plan import log_span_days, plan_cost
from levers_cli.pricing.rates import RateCard
from levers_cli.schema import CATEGORY_ID
from levers_cli.text.content import plural

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.levers.base import ActionContext, Level
    from levers_cli.store import Workspace


class LoraLever(Lever):
    """Lever 6 (see the module docstring)."""

    id = 6
    name = "lora"
    effort = "high"
    export_command = "levers export lora"

    def analyze(self, ws: Workspace, config: Config) -> Finding:
        """Candidate categories, their examples and training cost.

        Returns:
            A :class:`Finding` whose evidence is the category table (with ``net_usd_month``:
            the lever alone, per level; categories whose net is not positive are not trained)
            and whose ``per_call`` holds ``call_id``, ``category_id``, ``draw`` (in [0, 1))
            and ``lora_<level>`` (an expensive call of a candidate category at that level).
        """
        cfg = lambda key: config.get("lora", key)  # noqa: E731
        share = {lv: float(cfg("share")[lv]) for lv in LEVELS}
        model, card, extra = lora_rates(config)
        frame = load_calls(ws, config)
        table = category_table(frame, config)
        chosen = {lv: {r[CATEGORY_ID] for r in table if lv in r["levels"]} for lv in LEVELS}
        anywhere = set().union(*chosen.values())
        costly = frame.filter(pl.col("expensive") & pl.col(CATEGORY_ID).is_in(list(anywhere)))
        per_call = costly.select(
            "call_id",
            CATEGORY_ID,
            pl.col("call_id").map_elements(draw, return_dtype=pl.Float64).alias("draw"),
            *(pl.col(CATEGORY_ID).is_in(list(chosen[lv])).alias(f"lora_{lv}") for lv in LEVELS),
        )
        span = log_span_days(ws)
        days = float(config.get("analysis", "days_per_month"))
        net = monthly_net(frame, per_call, table, config, span / days)
        for row in table:
            row["net_usd_month"] = {lv: net[lv].get(row[CATEGORY_ID]) for lv in LEVELS}
        paying = [c for c, v in net["expected"].items() if v > 0]
        taken = per_call.filter(
            pl.col(CATEGORY_ID).is_in(paying) & (pl.col("draw") < share["expected"])
        )
        affected = frame.join(taken.select("call_id"), on="call_id")
        training = {
            lv: {str(r[CATEGORY_ID]): r["training_usd"] for r in table if lv in r["levels"]}
            for lv in LEVELS
        }
        months = float(cfg("amortize_months"))
        monthly = {lv: round(sum(training[lv].values()) / months, 9) for lv in LEVELS}
        examples = {lv: sum(r["examples"] for r in table if lv in r["levels"]) for lv in LEVELS}
        feedback = sum(r["feedback_examples"] for r in table if "aggressive" in r["levels"])
        found = figures(config, chosen, examples, feedback, share, card, extra, training, monthly)
        return Finding(
            lever_id=self.id,
            name=self.name,
            calls_affected=affected.height,
            tokens_affected=int((affected["input_tokens"] + affected["output_tokens"]).sum()),
            basis=combine_basis([f.basis for f in found]),
            figures=found,
            evidence=table,
            per_call=per_call,
            details={
                "model": str(cfg("model")),
                "plan_model": model,
                "extra_usd_per_token": dict(
                    zip(
                        ("input", "cache_read", "cache_write", "output"),
                        vars_of(extra),
                        strict=True,
                    )
                ),
                "candidate_categories": {lv: sorted(chosen[lv]) for lv in LEVELS},
                "training_examples": examples,
                "training_usd": training,
                "amortized_usd_month": monthly,
                "amortize_months": months,
                "net_usd_month": {lv: {str(c): v for c, v in net[lv].items()} for lv in LEVELS},
                "log_span_days": span,
                "days_per_month": days,
            },
        )

    def next_action(self, result: dict[str, Any], context: ActionContext) -> str:
        """Fine-tune on the accepted answers of the categories chosen at the expected level."""
        rows = [r for r in result["evidence"] if "expected" in r.get("levels", [])]
        examples = sum(r.get("examples", 0) for r in rows)
        if not rows:
            return "No category has enough accepted examples for a LoRA model yet"
        return (
            f"Fine-tune a LoRA model on {plural(examples, 'accepted answer')} from "
            f"{plural(len(rows), 'category', 'categories')}" + quoted_names(rows, "label")
        )

    def partition_links(self, finding: Finding) -> list[tuple[str, str]]:
        """The candidate calls of each category (at any level): ``apply`` moves a category
        only where its whole saving exceeds its training cost, and spreads that cost over
        the category's calls."""
        pc = finding.per_call
        if pc is None or pc.is_empty():
            return []
        wanted = [pl.col(f"lora_{lv}") for lv in LEVELS if f"lora_{lv}" in pc.columns]
        if not wanted:
            return []
        return chain_links(pc.filter(pl.any_horizontal(wanted)), CATEGORY_ID)

    def apply(
        self, plan: pl.DataFrame, finding: Finding, config: Config, level: Level
    ) -> pl.DataFrame:
        """The level's share of candidate calls moves to the LoRA model where that is cheaper
        than their current plan, in categories where the saving exceeds the amortized training
        cost, which is then spread over the category's candidate calls still paid for (see the
        module docstring)."""
        if finding.per_call is None or finding.per_call.is_empty() or plan.is_empty():
            return plan
        details = finding.details
        share = float(config.get("lora", "share")[level])
        extra = RateCard(*details["extra_usd_per_token"].values())
        pc = finding.per_call.select(
            "call_id",
            pl.col(CATEGORY_ID).alias("_cat"),
            pl.col("draw").alias("_draw"),
            pl.col(f"lora_{level}").alias("_cand"),
        )
        joined = plan.join(pc, on="call_id", how="left", maintain_order="left")
        eligible = pl.col("_cand").fill_null(False) & ~pl.col("plan_free")
        moved = joined.with_columns(
            pl.lit(details["plan_model"]).cast(plan.schema["plan_model"]).alias("plan_model"),
            pl.lit(0.0).alias("plan_extra_usd"),
        )
        surcharge = joined.select(cost_of(extra, PLAN_TOKENS).alias("s"))["s"]
        current = plan_cost(joined, config) - joined["plan_extra_usd"]
        lora = plan_cost(moved, config) + surcharge
        joined = joined.with_columns(
            eligible.alias("_elig"),
            (eligible & (pl.col("_draw") < share) & pl.Series(lora < current)).alias("_take"),
            surcharge.alias("_surcharge"),
            pl.Series(current - lora).alias("_gain"),
        )
        scale = details["log_span_days"] / details["days_per_month"] / details["amortize_months"]
        cost = {int(k): v * scale for k, v in details["training_usd"][level].items()}
        stats = (
            joined.filter(pl.col("_elig"))
            .group_by("_cat")
            .agg(
                pl.len().alias("_n"),
                pl.col("_gain").filter(pl.col("_take")).sum().alias("_gross"),
            )
            .with_columns(pl.col("_cat").replace_strict(cost, default=0.0).alias("_training"))
            .with_columns((pl.col("_gross") > pl.col("_training")).alias("_pays"))
            .with_columns(
                pl.when(pl.col("_pays"))
                .then(pl.col("_training") / pl.col("_n"))
                .otherwise(0.0)
                .alias("_amortized")
            )
            .select("_cat", "_pays", "_amortized")
        )
        out = joined.join(stats, on="_cat", how="left", maintain_order="left").with_columns(
            (pl.col("_take") & pl.col("_pays").fill_null(False)).alias("_take")
        )
        return out.with_columns(
            pl.when(pl.col("_take"))
            .then(pl.lit(details["plan_model"]))
            .otherwise(pl.col("plan_model"))
            .cast(plan.schema["plan_model"])
            .alias("plan_model"),
            (
                pl.col("plan_extra_usd")
                + pl.when(pl.col("_take")).then(pl.col("_surcharge")).otherwise(0.0)
                + pl.when(pl.col("_elig")).then(pl.col("_amortized").fill_null(0.0)).otherwise(0.0)
            ).alias("plan_extra_usd"),
        ).select(plan.columns)


__all__ = ["LoraLever", "draw", "load_calls"]
