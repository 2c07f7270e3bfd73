"""Lever 1, routing: send the categories whose queries look easy to the provider's cheap tier.

Method (../shared/DESIGN.md §5.1): per call a difficulty score from observable features, per
category a difficulty (see :mod:`levers_cli.levers.routing.features`). Calls on the provider's
``[tiers] strong`` model (or a pricier one) are *eligible*. Per level, the threshold is
calibrated as RouteLLM calibrates its router (``calibrate_threshold.py``: the threshold is the
(1 − strong share) quantile of the scores): categories are taken in order of difficulty while
the eligible calls they hold stay within ``1 − [routing] strong_share`` of all eligible calls,
and never at or above ``[routing] max_difficulty``; every category below the threshold routes,
except its calls whose own score is above ``max_difficulty`` (a long chat in an easy category).
Keyword overrides force single calls; human tier labels (``tier_labels``, see
:mod:`levers_cli.levers.routing.labels`) replace the threshold in categories with at least
``[routing] min_labels`` labelled queries: each labelled call follows its label and the
easiest share of the others equal to the labelled cheap share (Wilson lower bound at the
level's ``[routing] label_z``) routes. Savings: the same tokens priced at the cheap model's
rate card instead of the current one (:func:`levers_cli.pricing.plan.plan_cost`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from levers_cli.levers.base import LEVELS, Finding, Lever, quoted_names
from levers_cli.levers.routing.features import (
    call_features,
    category_table,
    is_strong_or_pricier,
    keyword_tiers,
    label_shares,
    mark_models,
    score_calls,
    wilson_lower,
)
from levers_cli.levers.routing.labels import (
    SHEET_COLUMNS,
    labelled_queries_sql,
    load_labels,
    read_labels,
)
from levers_cli.levers.routing.report import build_finding
from levers_cli.pricing.plan import base_plan, log_span_days, plan_cost
from levers_cli.quality import BELOW, category_decisions
from levers_cli.schema import CATEGORY_ID
from levers_cli.text.content import plural

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.levers.base import ActionContext, Level
    from levers_cli.store import Workspace


def _savings(ws: Workspace, frame: pl.DataFrame, config: Config) -> pl.DataFrame:
    """``call_id`` → ``saving_usd``: cost now − the same tokens at ``route_model``'s rate card."""
    routes = frame.filter(pl.col("eligible")).select("call_id", "route_model")
    plan = base_plan(ws).join(routes, on="call_id", how="inner")
    if plan.is_empty():
        return pl.DataFrame(schema={"call_id": pl.String, "saving_usd": pl.Float64})
    cheap = plan.with_columns(pl.col("route_model").alias("plan_model"))
    return plan.select("call_id").with_columns(
        (plan_cost(plan, config) - plan_cost(cheap, config)).alias("saving_usd")
    )


def _calibrate(cats: pl.DataFrame, total: int, strong_share: float, ceiling: float) -> float:
    """Difficulty threshold: the ``movable`` calls (eligible, not forced by a keyword or a
    label) of the categories below it are at most (1 − strong_share) × ``total`` eligible
    calls, and every such category lies below ``ceiling`` (``cats`` sorted by difficulty)."""
    target = (1.0 - strong_share) * total
    routed = 0
    for difficulty, n in cats.select("difficulty", "movable").iter_rows():
        if difficulty >= ceiling:
            return ceiling
        if routed + n > target + 1e-9:
            return float(difficulty)
        routed += n
    return ceiling


def _route_labelled(frame: pl.DataFrame, shares: dict[int, float]) -> pl.Series:
    """In label-decided categories, the unlabelled eligible calls among the easiest
    floor(share × their number) of their category (by score)."""
    pool = frame.filter(
        pl.col(CATEGORY_ID).is_in(list(shares))
        & pl.col("eligible")
        & pl.col("label").is_null()
        & pl.col("forced").is_null()
    )
    if pool.is_empty():
        return pl.Series("take", [False] * frame.height)
    ranked = pool.with_columns(
        pl.struct("score", "call_id").rank("ordinal").over(CATEGORY_ID).alias("rank"),
        pl.len().over(CATEGORY_ID).alias("n"),
        pl.col(CATEGORY_ID).replace_strict(shares, default=0.0).alias("share"),
    ).filter(pl.col("rank") <= (pl.col("share") * pl.col("n")).floor())
    return frame["call_id"].is_in(ranked["call_id"].implode()).alias("take")


class RoutingLever(Lever):
    """Lever 1 (see the module docstring)."""

    id = 1
    name = "routing"
    effort = "medium"
    export_command = "levers export router-config"

    def analyze(self, ws: Workspace, config: Config) -> Finding:
        """Difficulty per call and category, the threshold per level, the savings curve.

        Returns:
            A :class:`Finding` whose ``per_call`` holds ``call_id``, ``score``,
            ``route_model``, ``route_<level>`` (bool) and ``ungated_<level>`` (routed before
            measured quality kept a category back: what ``export shadow`` samples) for
            every call.
        """
        cfg = lambda key: config.get("routing", key)  # noqa: E731
        frame = keyword_tiers(mark_models(score_calls(call_features(ws), config), config), config)
        labels = load_labels(ws)
        frame = frame.join(labels.rename({"tier": "label"}), on="query_hash", how="left")
        frame = frame.join(_savings(ws, frame, config), on="call_id", how="left").with_columns(
            pl.col("saving_usd").fill_null(0.0)
        )
        # measured quality (levers quality): a category whose judged acceptability is below
        # the bar for its target model is not routed at the conservative and expected levels
        measured = category_decisions(ws, config, "routing")
        below = [(c, m) for (c, m), d in measured.items() if d["decision"] == BELOW]
        keys = [f"{c}\x1f{m}" for c, m in below]
        frame = frame.with_columns(
            (pl.col(CATEGORY_ID).cast(pl.String) + "\x1f" + pl.col("route_model"))
            .is_in(keys)
            .fill_null(False)
            .alias("quality_below")
        )
        cats = category_table(frame, config)
        labelled = label_shares(frame, labels)
        label_cats = {c for c, v in labelled.items() if v["labelled"] >= int(cfg("min_labels"))}
        movable = (
            frame.filter(
                pl.col("eligible") & pl.col("forced").is_null() & pl.col("label").is_null()
            )
            .group_by(CATEGORY_ID)
            .agg(pl.len().cast(pl.Int64).alias("movable"))
        )
        threshold_cats = (
            cats.filter(~pl.col(CATEGORY_ID).is_in(list(label_cats)))
            .join(movable, on=CATEGORY_ID, how="left", maintain_order="left")
            .with_columns(pl.col("movable").fill_null(0))
        )
        pool = int(
            frame.filter(pl.col("eligible") & ~pl.col(CATEGORY_ID).is_in(list(label_cats))).height
        )
        total_eligible = int(frame["eligible"].sum())
        factor = float(config.get("analysis", "days_per_month")) / log_span_days(ws)

        levels: dict[str, Any] = {}
        for level in LEVELS:
            share, ceiling = float(cfg("strong_share")[level]), float(cfg("max_difficulty")[level])
            threshold = _calibrate(threshold_cats, pool, share, ceiling)
            routes_cat = threshold_cats.filter(pl.col("difficulty") < threshold)[CATEGORY_ID]
            z = float(cfg("label_z")[level])
            shares = {
                c: wilson_lower(labelled[c]["cheap_labels"], labelled[c]["labelled"], z)
                for c in label_cats
            }
            route = (
                pl.when(~pl.col("eligible"))
                .then(False)
                .when(pl.col("forced").is_not_null())
                .then(pl.col("forced") == "cheap")
                .when(pl.col("label").is_not_null())
                .then(pl.col("label") == "cheap")
                .otherwise(
                    # an easy category's call is routed unless the call itself is harder
                    # than the level's ceiling (a long chat that landed in an easy category)
                    (pl.col(CATEGORY_ID).is_in(routes_cat.implode()) & (pl.col("score") <= ceiling))
                    | _route_labelled(frame, shares)
                )
            )
            # before the quality gate: what `export shadow` samples to measure (again)
            frame = frame.with_columns(route.alias(f"ungated_{level}"))
            if level != "aggressive":
                route = route & ~(
                    pl.col("quality_below") & pl.col("forced").is_null() & pl.col("label").is_null()
                )
            frame = frame.with_columns(route.alias(f"route_{level}"))
            routed = frame.filter(pl.col(f"route_{level}"))
            levels[level] = {
                "threshold": round(threshold, 4),
                "strong_share_target": share,
                "strong_share_achieved": round(1 - routed.height / total_eligible, 4)
                if total_eligible
                else 1.0,
                "routed_calls": routed.height,
                "routed_categories": sorted(int(c) for c in routed[CATEGORY_ID].unique() if c >= 0),
                "categories_below_threshold": sorted(int(c) for c in routes_cat),
                "label_shares": {str(c): round(s, 4) for c, s in sorted(shares.items())},
                "saving_usd": round(float(routed["saving_usd"].sum()), 6),
                "saving_usd_month": round(float(routed["saving_usd"].sum()) * factor, 4),
            }
        quality = {
            f"{c}:{m}": d for (c, m), d in sorted(measured.items(), key=lambda kv: str(kv[0]))
        }
        finding = build_finding(
            ws, frame, cats, labelled, label_cats, levels, pool, factor, quality=measured
        )
        finding.details["quality"] = quality
        return finding

    def next_action(self, result: dict[str, Any], context: ActionContext) -> str:
        """Route N calls in K categories to the cheap tier (the models named), with examples."""
        level = result["details"].get("levels", {}).get("expected", {})
        cats = set(level.get("routed_categories", []))
        rows = [r for r in result["evidence"] if r.get(CATEGORY_ID) in cats]
        tiers = context.config.get("tiers", "cheap")
        used = {p for p in context.providers if p in tiers} or set(tiers)
        cheap = ", ".join(sorted({tiers[p] for p in used}))
        return (
            f"Route {plural(level.get('routed_calls', 0), 'call')} in "
            f"{plural(len(cats), 'category', 'categories')} to the cheap tier ({cheap})"
            + quoted_names(rows, "label")
        )

    def apply(
        self, plan: pl.DataFrame, finding: Finding, config: Config, level: Level
    ) -> pl.DataFrame:
        """Set ``plan_model`` to the cheap tier for routed calls that are not free and whose
        current ``plan_model`` is the strong tier or pricier (never an upgrade)."""
        if finding.per_call is None or plan.is_empty():
            return plan
        routes = finding.per_call.select(
            "call_id", pl.col(f"route_{level}").alias("_route"), pl.col("route_model").alias("_to")
        )
        pairs = plan.select("provider", "plan_model").unique().rows()
        ok = pl.DataFrame(
            [(p, m, is_strong_or_pricier(config, p, m)) for p, m in pairs],
            schema={
                "provider": plan.schema["provider"],
                "plan_model": plan.schema["plan_model"],
                "_ok": pl.Boolean,
            },
            orient="row",
        )
        joined = plan.join(routes, on="call_id", how="left", maintain_order="left").join(
            ok, on=["provider", "plan_model"], how="left", nulls_equal=True, maintain_order="left"
        )
        move = (
            (~pl.col("plan_free"))
            & pl.col("_route").fill_null(False)
            & pl.col("_ok")
            & pl.col("_to").is_not_null()
        )
        return joined.with_columns(
            pl.when(move).then(pl.col("_to")).otherwise(pl.col("plan_model")).alias("plan_model")
        ).drop("_route", "_to", "_ok")


__all__ = ["SHEET_COLUMNS", "RoutingLever", "labelled_queries_sql", "read_labels"]
