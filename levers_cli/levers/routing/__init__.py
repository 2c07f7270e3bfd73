"""Lever 1, routing: send the categories whose requests look easy to the provider's cheap tier.

Method (../shared/DESIGN.md §5.1):

- Difficulty per call from the request only (input tokens, code, conversation depth, tool
  messages; :mod:`levers_cli.levers.routing.features`), per category the
  ``[routing] category_quantile`` of its calls' scores.
- A call is *eligible* when routing would make it cheaper: its cost now exceeds the cost of
  the same request on the provider's ``[tiers] cheap`` model (the same input and the visible
  answer; a reasoning model's reasoning tokens are not produced by the cheap model). Cost
  per call, not per token: a reasoning model with cheaper token prices than the strong tier
  (o4-mini) is a candidate when its reasoning makes each call dearer.
- Per level, the threshold takes categories in order of difficulty while the eligible calls
  they hold (not forced by a keyword) stay within ``1 − [routing] strong_share`` of all
  eligible calls, never at or above ``[routing] max_difficulty``. ``strong_share`` is an
  assumed setting, not a measured result (RouteLLM's shares come from trained routers whose
  quality was measured on benchmarks; this router is a difficulty heuristic). Categories
  decided by human tier labels (at least ``[routing] min_labels``) route when the Wilson
  lower bound of their cheap-label share at the level's ``[routing] label_z`` is at least
  one half.
- The decision is the exported router's (:mod:`levers_cli.router.build`): each logged call's
  stored query vector is routed by the same :class:`levers_cli.router.Router` that
  ``levers export router-config`` writes, and a call counts as routed when that router sends
  it to the cheap tier (a cheap route or a cheap keyword override) and it is eligible. So the
  simulation counts exactly the calls the exported router routes.
- A lower ``reasoning_effort`` is an option of its own for reasoning-model calls the router
  keeps on their model: their reasoning tokens × ``[routing] low_effort_reasoning_share``
  (assumed), applied in the simulation at the levels where ``[routing] low_effort`` is on.
- Evidence: :func:`levers_cli.levers.routing.evidence.routing_evidence`.

Savings: the same tokens priced at the cheap model's rate card instead of the current one
(:func:`levers_cli.pricing.plan.plan_cost`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from levers_cli.levers.base import LEVELS, Finding, Lever, quoted_names
from levers_cli.levers.routing.evidence import routing_evidence
from levers_cli.levers.routing.features import (
    call_features,
    category_table,
    group_keys,
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
from levers_cli.quality import BELOW, MEETS, category_decisions
from levers_cli.router import Router
from levers_cli.router.build import NoRoutesError, base_router, with_targets
from levers_cli.schema import CATEGORY_ID
from levers_cli.text.content import plural

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.levers.base import ActionContext, Level
    from levers_cli.store import Workspace

#: A label-decided category routes when the lower bound of its cheap-label share reaches this.
LABEL_MAJORITY = 0.5


def _savings(ws: Workspace, frame: pl.DataFrame, config: Config) -> pl.DataFrame:
    """``call_id`` → ``saving_usd`` (cost now − the request on ``route_model``: the same input,
    the answer without reasoning tokens) and ``low_effort_saving_usd`` (cost now − the same
    model with reasoning tokens × ``[routing] low_effort_reasoning_share``)."""
    schema = {"call_id": pl.String, "saving_usd": pl.Float64, "low_effort_saving_usd": pl.Float64}
    routes = frame.filter(pl.col("route_model").is_not_null()).select("call_id", "route_model")
    plan = base_plan(ws).join(routes, on="call_id", how="inner")
    if plan.is_empty():
        return pl.DataFrame(schema=schema)
    keep = float(config.get("routing", "low_effort_reasoning_share"))
    reasoning = pl.col("reasoning_tokens").fill_null(0)
    visible = (pl.col("plan_output") - reasoning).clip(lower_bound=0)
    cheap = plan.with_columns(
        pl.col("route_model").alias("plan_model"), visible.alias("plan_output")
    )
    low = plan.with_columns(
        (pl.col("plan_output") - (reasoning * (1 - keep)).round(0).cast(pl.Int64)).alias(
            "plan_output"
        )
    )
    now = plan_cost(plan, config)
    return plan.select("call_id").with_columns(
        (now - plan_cost(cheap, config)).alias("saving_usd"),
        (now - plan_cost(low, config)).alias("low_effort_saving_usd"),
    )


def _quality_frame(
    frame: pl.DataFrame, keys: list[str], measured: dict[tuple[int, str], dict[str, Any]]
) -> pl.DataFrame | None:
    """The judged quality pairs per group of ``keys`` for :func:`routing_evidence`: ``pairs``
    (judged pairs over the category's target models), ``cheap_as_good`` (judged acceptable)
    and ``meets`` (every target model's Wilson lower bound meets ``[quality]
    min_acceptable``). ``None`` when nothing was measured (``levers quality``)."""
    if not measured:
        return None
    per_cat: dict[int, list[dict[str, Any]]] = {}
    for (cat, _), decision in measured.items():
        per_cat.setdefault(int(cat), []).append(decision)
    table = pl.DataFrame(
        {
            CATEGORY_ID: list(per_cat),
            "pairs": [sum(int(d["n"]) for d in ds) for ds in per_cat.values()],
            "cheap_as_good": [sum(int(d["acceptable"]) for d in ds) for ds in per_cat.values()],
            "meets": [all(d["decision"] == MEETS for d in ds) for ds in per_cat.values()],
        },
        schema_overrides={CATEGORY_ID: frame.schema[CATEGORY_ID]},
    )
    if keys != [CATEGORY_ID]:
        owners = frame.select(keys).unique(subset=[CATEGORY_ID])
        table = table.join(owners, on=CATEGORY_ID, how="inner")
    return table


def _calibrate(cats: pl.DataFrame, total: int, strong_share: float, ceiling: float) -> float:
    """Difficulty threshold: the ``movable`` calls (eligible, not forced by a keyword) of the
    categories below it are at most (1 − strong_share) × ``total`` eligible calls, and every
    such category lies below ``ceiling`` (``cats`` sorted by difficulty)."""
    target = (1.0 - strong_share) * total
    routed = 0
    for difficulty, n in cats.select("difficulty", "movable").iter_rows():
        if difficulty >= ceiling:
            return ceiling
        if routed + n > target + 1e-9:
            return float(difficulty)
        routed += n
    return ceiling


def _call_vectors(ws: Workspace, frame: pl.DataFrame, key: str) -> np.ndarray:
    """The stored query vector of each row of ``frame`` ((n, d); NaN rows where none)."""
    rows = ws.con.execute(
        "SELECT query_hash, vector FROM embeddings WHERE embedder = ?", [key]
    ).fetchall()
    lookup = {h: v for h, v in rows}
    dim = len(rows[0][1]) if rows else 1
    out = np.full((frame.height, dim), np.nan, dtype=np.float32)
    for i, h in enumerate(frame["query_hash"].to_list()):
        vector = lookup.get(h)
        if vector is not None:
            out[i] = vector
    return out


def route_decision(
    router: Router, texts: list[str | None], vectors: np.ndarray
) -> tuple[list[bool], list[int | None], list[str | None]]:
    """The one routing decision, shared by the simulation and the exported router: route
    each request with ``router`` (the ``levers-router.json`` content ``levers export
    router-config`` writes) and say whether it goes to the cheap tier.

    Args:
        router: the router of one level.
        texts: each request's query (keyword overrides read it).
        vectors: each query's unit embedding ((n, d); a NaN row: none stored).

    Returns:
        ``(to_cheap, category, forced)`` per request: sent to the cheap tier (a route with
        ``routed_to_cheap_tier`` or a ``keyword-cheap`` override), the category of the
        route that matched (``None`` for the default route or a keyword) and the keyword
        override's tier (``None`` when no keyword matched).
    """
    by_name = {r["name"]: r for r in router.routes}
    to_cheap, category, forced = [], [], []
    for match in router.route_vectors(texts, vectors):
        route = by_name.get(match.route) if match.via == "similarity" else None
        tier = match.route.removeprefix("keyword-") if match.via == "keyword" else None
        forced.append(tier)
        category.append(int(route[CATEGORY_ID]) if route else None)
        to_cheap.append(tier == "cheap" or bool(route and route["routed_to_cheap_tier"]))
    return to_cheap, category, forced


class RoutingLever(Lever):
    """Lever 1 (see the module docstring).

    After :meth:`analyze`, ``routers`` holds the native router config of each level and
    ``held_out`` the held-out queries per route (what ``levers export router-config``
    writes), empty when the workspace has no categories with centroids."""

    id = 1
    name = "routing"
    effort = "medium"
    export_command = "levers export router-config"

    def __init__(self) -> None:
        self.routers: dict[str, dict[str, Any]] = {}
        self.held_out: dict[str, list[str]] = {}

    def analyze(self, ws: Workspace, config: Config) -> Finding:
        """Difficulty per call and category, the threshold and router per level, the curve.

        Returns:
            A :class:`Finding` whose ``per_call`` holds ``call_id``, ``score``, ``forced``,
            ``route_model``, ``from_model``, ``reasoning_tokens``, ``evidence`` and per level
            ``route_<level>``, ``low_effort_<level>`` and ``ungated_<level>`` (bool; routed
            before measured quality kept a category back: what ``export shadow`` samples)
            for every call.
        """
        cfg = lambda key: config.get("routing", key)  # noqa: E731
        keys = group_keys(ws)
        frame = mark_models(score_calls(call_features(ws), config), config)
        labels = load_labels(ws)
        frame = frame.join(labels.rename({"tier": "label"}), on="query_hash", how="left")
        frame = frame.join(_savings(ws, frame, config), on="call_id", how="left").with_columns(
            pl.col("saving_usd").fill_null(0.0),
            pl.col("low_effort_saving_usd").fill_null(0.0),
        )
        frame = frame.with_columns(
            (
                pl.col("priced")
                & ~pl.col("cheap").fill_null(False)
                & pl.col("route_model").is_not_null()
                & (pl.col("saving_usd") > 0)
            ).alias("eligible")
        )
        try:
            base, self.held_out = base_router(ws, config)
        except NoRoutesError:
            base, self.held_out = None, {}
        if base is not None:
            vectors = _call_vectors(ws, frame, base["embedder"]["key"])
            _, matched, forced = route_decision(Router(base), frame["query"].to_list(), vectors)
        else:
            vectors = None
            matched, forced = [None] * frame.height, [None] * frame.height
        frame = frame.with_columns(
            pl.Series("router_category", matched, dtype=pl.Int64),
            pl.Series("forced", forced, dtype=pl.String),
        )
        cats = category_table(frame, config, keys)
        # measured quality (levers quality, DESIGN §9): per (category, target model) the judged
        # decision at the bar; a category below it is kept on the strong model at the
        # conservative and expected levels, one that meets it is evidence
        measured = category_decisions(ws, config, "routing")
        held_back = {c for (c, _), d in measured.items() if d["decision"] == BELOW}
        quality = _quality_frame(frame, keys, measured)
        labelled = label_shares(frame, labels)
        label_cats = {c for c, v in labelled.items() if v["labelled"] >= int(cfg("min_labels"))}
        evidence = routing_evidence(frame, keys, label_cats, quality)
        movable = (
            frame.filter(pl.col("eligible") & pl.col("forced").is_null())
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
        reasoning = pl.col("reasoning_tokens") > 0

        levels: dict[str, Any] = {}
        self.routers = {}
        for level in LEVELS:
            share, ceiling = float(cfg("strong_share")[level]), float(cfg("max_difficulty")[level])
            threshold = _calibrate(threshold_cats, pool, share, ceiling)
            below = threshold_cats.filter(pl.col("difficulty") < threshold)[CATEGORY_ID]
            z = float(cfg("label_z")[level])
            shares = {
                c: wilson_lower(labelled[c]["cheap_labels"], labelled[c]["labelled"], z)
                for c in label_cats
            }
            cheap_cats = {int(c) for c in below} | {
                c for c, s in shares.items() if s >= LABEL_MAJORITY
            }
            gated = cheap_cats - held_back if level != "aggressive" else cheap_cats
            if base is not None and vectors is not None:
                queries = frame["query"].to_list()
                native = with_targets(base, gated)
                self.routers[level] = native
                to_cheap, _, _ = route_decision(Router(native), queries, vectors)
                ungated = (
                    route_decision(Router(with_targets(base, cheap_cats)), queries, vectors)[0]
                    if gated != cheap_cats
                    else to_cheap
                )
            else:
                to_cheap = ungated = [False] * frame.height
            route = pl.Series(f"route_{level}", to_cheap, dtype=pl.Boolean) & frame["eligible"]
            frame = frame.with_columns(
                pl.Series(f"ungated_{level}", ungated, dtype=pl.Boolean) & frame["eligible"]
            )
            cheap_cats = gated
            frame = frame.with_columns(route.alias(f"route_{level}"))
            low_on = bool(cfg("low_effort")[level])
            low = (
                pl.col("eligible") & reasoning & ~pl.col(f"route_{level}")
                & (pl.col("forced").fill_null("") != "strong")
                & (pl.col("low_effort_saving_usd") > 0)
            )  # fmt: skip
            frame = frame.with_columns((low & pl.lit(low_on)).alias(f"low_effort_{level}"))
            routed = frame.filter(pl.col(f"route_{level}"))
            low_calls = frame.filter(low)
            saving = float(routed["saving_usd"].sum()) + (
                float(low_calls["low_effort_saving_usd"].sum()) if low_on else 0.0
            )
            levels[level] = {
                "threshold": round(threshold, 4),
                "strong_share_target": share,
                "strong_share_achieved": round(1 - routed.height / total_eligible, 4)
                if total_eligible
                else 1.0,
                "routed_calls": routed.height,
                "routed_categories": sorted(int(c) for c in cheap_cats),
                "categories_below_threshold": sorted(int(c) for c in below),
                "label_shares": {str(c): round(s, 4) for c, s in sorted(shares.items())},
                # what the simulation applies: the routed calls, and the low-effort option
                # where it is switched on
                "saving_usd": round(saving, 6),
                "saving_usd_month": round(saving * factor, 4),
                "low_effort": {
                    "applied": low_on,
                    "calls": low_calls.height,
                    "saving_usd_month": round(
                        float(low_calls["low_effort_saving_usd"].sum()) * factor, 4
                    ),
                },
            }
        finding = build_finding(
            ws, frame, cats, evidence, labelled, label_cats, levels, pool, factor, keys,
            quality=measured,
        )
        finding.details["quality"] = {
            f"{c}:{m}": d for (c, m), d in sorted(measured.items(), key=lambda kv: str(kv[0]))
        }
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
        """Routed calls that are not free and still on the model they were logged with go to
        the cheap tier (their answer without the reasoning tokens the cheap model does not
        spend); at levels with ``[routing] low_effort``, the reasoning calls kept on their
        model spend reasoning × ``[routing] low_effort_reasoning_share``."""
        if finding.per_call is None or plan.is_empty():
            return plan
        keep = float(config.get("routing", "low_effort_reasoning_share"))
        cols = finding.per_call.columns
        routes = finding.per_call.select(
            "call_id",
            pl.col(f"route_{level}").alias("_route"),
            pl.col("route_model").alias("_to"),
            pl.col("from_model").alias("_from"),
            (
                pl.col(f"low_effort_{level}") if f"low_effort_{level}" in cols else pl.lit(False)
            ).alias("_low"),
        )
        joined = plan.join(routes, on="call_id", how="left", maintain_order="left")
        same = (~pl.col("plan_free")) & (pl.col("plan_model") == pl.col("_from")).fill_null(False)
        move = same & pl.col("_route").fill_null(False) & pl.col("_to").is_not_null()
        low = same & pl.col("_low").fill_null(False) & ~move
        reasoning = pl.col("reasoning_tokens").fill_null(0)
        output = (
            pl.when(move)
            .then((pl.col("plan_output") - reasoning).clip(lower_bound=0))
            .when(low)
            .then(pl.col("plan_output") - (reasoning * (1 - keep)).round(0).cast(pl.Int64))
            .otherwise(pl.col("plan_output"))
        )
        return joined.with_columns(
            pl.when(move).then(pl.col("_to")).otherwise(pl.col("plan_model")).alias("plan_model"),
            output.cast(plan.schema["plan_output"]).alias("plan_output"),
        ).drop("_route", "_to", "_from", "_low")


__all__ = [
    "SHEET_COLUMNS",
    "RoutingLever",
    "labelled_queries_sql",
    "read_labels",
    "route_decision",
    "routing_evidence",
]
