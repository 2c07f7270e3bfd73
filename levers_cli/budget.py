"""``--budget``: the fewest, lowest-effort levers whose expected monthly cost fits a budget.

Effort ranks follow the issue's seed: low = caps, batch, prefix caching; medium = routing,
context, semantic cache, materialize; high = LoRA (each lever declares its ``effort``).
Subsets are tried by number of levers, then by total effort, then by lever ids; the first
whose expected monthly cost after the waterfall is within the budget wins.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING, Any

from levers_cli.errors import UsageError, WorkspaceError
from levers_cli.levers.base import Finding, Lever
from levers_cli.schema import CATEGORY_ID
from levers_cli.simulate import run_waterfall
from levers_cli.store import Workspace

if TYPE_CHECKING:
    from levers_cli.config import Config

EFFORT_RANK = {"low": 1, "medium": 2, "high": 3}


@dataclass
class BudgetPlan:
    """The answer to "can we reach this budget, and how?" (USD per month)."""

    budget_usd_month: float
    reachable: bool
    monthly_cost_before: float
    monthly_cost_after: float
    lever_ids: list[int] = field(default_factory=list)
    lever_names: list[str] = field(default_factory=list)
    routed_share: float | None = None
    short_by_usd_month: float = 0.0
    subsets_tried: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


def solve_budget(
    ws: Workspace,
    config: Config,
    levers: list[Lever],
    findings: dict[int, Finding],
    budget_usd_month: float,
) -> BudgetPlan:
    """Find the smallest, lowest-effort subset of ``levers`` reaching ``budget_usd_month``
    at the expected level; when none does, say by how much all of them fall short.

    ``levers`` come in waterfall order (:func:`levers_cli.levers.all_levers`); every subset
    is simulated in that order.

    Raises:
        UsageError: ``budget_usd_month`` is not a finite number above 0.
    """
    if not math.isfinite(budget_usd_month) or budget_usd_month <= 0:
        raise UsageError(
            f"--budget {budget_usd_month}: give a monthly budget in USD, a finite number above 0"
        )
    days = float(config.get("analysis", "days_per_month"))
    options = split_by_effort(levers)
    place = {id(option): i for i, option in enumerate(options)}  # the waterfall order

    def in_waterfall_order(chosen: tuple[Lever, ...]) -> list[Lever]:
        return sorted(chosen, key=lambda lv: place[id(lv)])

    ranked = sorted(options, key=lambda lv: (EFFORT_RANK[lv.effort], place[id(lv)]))
    subsets: list[tuple[Lever, ...]] = []
    for size in range(0, len(ranked) + 1):
        subsets.extend(combinations(ranked, size))
    subsets.sort(
        key=lambda s: (
            len(s),
            sum(EFFORT_RANK[lv.effort] for lv in s),
            [place[id(lv)] for lv in s],
        )
    )
    before = None
    best_after = None
    tried = 0
    for subset in subsets:
        tried += 1
        chosen = in_waterfall_order(subset)
        sim = run_waterfall(ws, chosen, findings, config, "expected", days)
        before = sim.before_usd
        after = sim.after_usd
        best_after = after if best_after is None else min(best_after, after)
        if after <= budget_usd_month:
            return BudgetPlan(
                budget_usd_month,
                True,
                before,
                after,
                [lv.id for lv in chosen],
                [option_name(lv) for lv in chosen],  # "caching (prefix)", not "caching"
                _routed_share(sim.plan),
                0.0,
                tried,
            )
    assert before is not None and best_after is not None
    return BudgetPlan(
        budget_usd_month,
        False,
        before,
        best_after,
        [lv.id for lv in levers],
        [lv.name for lv in levers],
        None,
        best_after - budget_usd_month,
        tried,
    )


def split_by_effort(levers: list[Lever]) -> list[Lever]:
    """The budget options, in the order of ``levers``: each lever's
    :meth:`~levers_cli.levers.base.Lever.budget_options` (a lever made of parts of different
    effort, caching: prefix low, the exact and semantic response cache medium, becomes one
    option per part, each applying its part with the same finding)."""
    return [option for lever in levers for option in lever.budget_options()]


def option_name(lever: Lever) -> str:
    """``caching (prefix)`` for an option that is one part of a lever, else its name."""
    return lever.label


def _routed_share(plan: Any) -> float | None:
    """Share of calls whose plan model differs from the logged one (routing or LoRA)."""
    if plan is None or plan.height == 0:
        return None
    import polars as pl

    changed = plan.filter(pl.col("plan_model") != pl.col("model")).height
    return changed / plan.height


#: A backtest row's note when the first part shows no saving for the lever.
NO_SIGNAL = "no out-of-sample signal: the first part shows no saving to forecast"

#: What each lever's realized saving in the backtest rests on (see :func:`backtest`).
_TRANSFERRED = {
    "routing": "the first part's router (categories below its difficulty thresholds), applied "
    "to the later calls' categories and difficulty scores; keyword rules and label-decided "
    "categories as the later part's analysis has them",
    "caps": "the first part's cap per (category, model family), applied to the later calls",
    "materialize": "the first part's scripted templates and prompts (slots masked), applied "
    "to the later calls they match",
}
_REMEASURED = (
    "re-measured on the later part with the same settings (its own {what} are found there: "
    "not yet out of sample)"
)
_REMEASURED_WHAT = {
    "context": "conversations and summaries",
    "caching": "repeats, prefixes and semantic hits",
    "lora": "candidate categories",
    "batch": "jobs and schedules",
}


def _fitted_categories(ws: Workspace, config: Config, cutoff: Any) -> tuple[Any | None, str]:
    """Categories fitted on the calls before ``cutoff`` only: their distinct queries'
    stored embeddings (the workspace's embedder) clustered afresh
    (:func:`levers_cli.cluster.assign.fit_and_assign`, ``[cluster]`` settings); a later
    query seen before keeps its category, a new one joins the nearest fitted centroid when its
    cosine is at least ``[cluster] assign_min_similarity`` (else ``-1``), as ``analyze`` does
    with a new week of logs. Returns ``(columns bt_hash, bt_category, method)``, the
    columns ``None`` when the first part holds no embedded query (the categories stay)."""
    import numpy as np

    from levers_cli.cluster import ClusterParams
    from levers_cli.cluster.assign import centroids_of, fit_and_assign, nearest_centroid

    section = config.values["cluster"]
    fields = ClusterParams.__dataclass_fields__
    params = ClusterParams(**{k: v for k, v in section.items() if k in fields})
    key = ws.con.execute("SELECT any_value(embedder) FROM categories").fetchone()[0]

    def queries(condition: str) -> tuple[list[str], list[str], Any, Any]:
        rows = ws.con.execute(
            f"""SELECT q.query_hash, q.text, q.calls, e.vector FROM (
                    SELECT query_hash, min(query) AS text, count(*) AS calls FROM calls
                    WHERE trim(coalesce(query, '')) <> '' AND {condition}
                    GROUP BY query_hash) q
                JOIN embeddings e ON e.query_hash = q.query_hash AND e.embedder = ?
                ORDER BY q.query_hash""",
            [cutoff, key],
        ).fetchall()
        vectors = np.array([r[3] for r in rows], dtype=np.float32)
        weights = np.array([r[2] for r in rows], dtype=np.float64)
        return [r[0] for r in rows], [r[1] for r in rows], vectors, weights

    hashes, texts, vectors, weights = queries("ts < ?")
    if not hashes:
        return None, (
            "the workspace's own categories (fitted on the whole log): the first part holds "
            "no embedded query to fit on"
        )
    fit = fit_and_assign(vectors, weights, params, texts=texts)
    later, _, later_vectors, _ = queries("ts >= ?")
    known = set(hashes)
    new = np.array([h not in known for h in later], dtype=bool)
    centroids = centroids_of(vectors, weights, fit.labels)
    ids = np.arange(len(centroids), dtype=np.int64)
    assigned = nearest_centroid(later_vectors[new], centroids, ids, params.assign_min_similarity)
    frame = {
        "bt_hash": hashes + [h for h, n in zip(later, new, strict=True) if n],
        "bt_category": np.concatenate([fit.labels, assigned]).astype(np.int32),
    }
    method = (
        f"fitted on the first part's {len(hashes):,} distinct queries ({fit.method}); "
        f"{int(new.sum()):,} queries new in the later part joined the nearest "
        f"fitted category (cosine ≥ {params.assign_min_similarity})"
    )
    return frame, method


def _routed_later(
    fit_finding: Finding, later_finding: Finding, test_frame: Any, config: Config
) -> Any:
    """The later calls routed by the first part's router: a call whose route a keyword
    forces, or of a category decided by tier labels, keeps the decision the later part's own
    analysis made (a per-call rule, nothing fitted); any other is routed at a level when its
    category (fitted on the first part) was below that level's difficulty threshold there
    (``categories_below_threshold``) and its own difficulty score is at most the level's
    ``[routing] max_difficulty``, the rule :class:`~levers_cli.levers.routing.RoutingLever`
    applies. A single query's tier label outside a label-decided category is not consulted.
    Returns the later finding's ``per_call`` with ``route_<level>`` replaced."""
    import polars as pl

    from levers_cli.levers.base import LEVELS

    levels = fit_finding.details.get("levels", {})
    ceilings = config.get("routing", "max_difficulty")
    labelled = {int(c) for lv in levels.values() for c in lv.get("label_shares", {})}
    per_call = later_finding.per_call
    assert per_call is not None
    frame = per_call.join(test_frame.select("call_id", CATEGORY_ID), on="call_id", how="left")
    own = pl.col("forced").is_not_null() | pl.col(CATEGORY_ID).is_in(sorted(labelled))
    routes = []
    for lv in LEVELS:
        below = [int(c) for c in levels.get(lv, {}).get("categories_below_threshold", [])]
        fitted = pl.col(CATEGORY_ID).is_in(below) & (pl.col("score") <= float(ceilings[lv]))
        fitted = fitted & pl.col("route_model").is_not_null()
        routes.append(
            pl.when(own).then(pl.col(f"route_{lv}")).otherwise(fitted).alias(f"route_{lv}")
        )
    return frame.with_columns(routes).select(per_call.columns)


def _transfer(
    lever: Lever,
    fit_finding: Finding,
    fit_frame: Any,
    test_frame: Any,
    config: Config,
    later_finding: Finding | None = None,
) -> Finding | None:
    """The later part's finding for ``lever`` made from the first part's decisions (see
    :data:`_TRANSFERRED`), or ``None`` when the lever's decisions are not carried over.
    Routing needs ``later_finding`` (the later part's own analysis: each call's difficulty
    score and keyword rule, known before the call).

    ``fit_frame`` / ``test_frame``: polars frames of each part's calls with ``call_id``,
    ``category_id``, ``model``, ``prompt`` and ``masked`` (the full prompt of a first-turn
    call with a query and its masked tokens joined by spaces, else null)."""
    import dataclasses

    import polars as pl

    from levers_cli.pricing.models import model_family

    per_call = fit_finding.per_call
    if per_call is None or lever.name not in _TRANSFERRED:
        return None
    if lever.name == "routing":
        if later_finding is None or later_finding.per_call is None:
            return None
        moved = _routed_later(fit_finding, later_finding, test_frame, config)
        routed = int(moved["route_expected"].sum()) if "route_expected" in moved.columns else 0
        return dataclasses.replace(later_finding, per_call=moved, calls_affected=routed)
    if lever.name == "caps":
        family = pl.col("model").map_elements(model_family, return_dtype=pl.String)
        keys = [CATEGORY_ID, "family"]
        columns = [c for c in per_call.columns if c.startswith(("cap_", "concise_"))]
        rules = (
            fit_frame.with_columns(family=family)
            .join(per_call, on="call_id")
            .group_by(keys)
            .agg(pl.col(c).first() for c in columns)
        )
        moved = (
            test_frame.with_columns(family=family).join(rules, on=keys).select("call_id", *columns)
        )
    else:  # materialize
        get = lambda key: int(config.get("materialize", key))  # noqa: E731
        moved = _scripted_later(
            fit_finding, fit_frame, test_frame, get("ngram"), get("min_fixed_tokens")
        )
    return dataclasses.replace(fit_finding, per_call=moved, calls_affected=moved.height)


def _glob(skeleton: str) -> re.Pattern[str]:
    """A mined skeleton (tokens joined by spaces, ``<*>`` = one or more tokens) as a regular
    expression over a prompt's tokens joined by spaces, a space at both ends (as the miner
    matches skeletons: :mod:`levers_cli.query_templates.miner`)."""
    from levers_cli.query_templates.mask import STAR

    parts = [r"(?:\S+ )+" if t == STAR else re.escape(t) + " " for t in skeleton.split(" ")]
    return re.compile("^ " + "".join(parts) + "$")


def _scripted_later(
    fit_finding: Finding, fit_frame: Any, test_frame: Any, ngram: int = 4, min_fixed: int = 4
) -> Any:
    """The later calls the first part's workflow candidates would script, per level: a
    ``template`` candidate (its answers stable over the whole template) takes each later
    first-turn prompt its skeleton (the text its first-part prompts share, slots masked:
    :func:`levers_cli.query_templates.miner.common_skeleton`) matches; a ``prompt`` or
    ``intent`` candidate (stable answers to some exact prompts) takes the later prompts equal
    to one of its own once masked, as does a template whose skeleton keeps fewer than
    ``min_fixed`` fixed tokens (``[materialize] min_fixed_tokens``; ``ngram``: ``[materialize]
    ngram``), which would match nearly anything. Returns ``call_id``, ``script_<level>``,
    ``evidence``."""
    import polars as pl

    from levers_cli.levers.base import LEVELS
    from levers_cli.query_templates.mask import STAR
    from levers_cli.query_templates.miner import common_skeleton

    flags = [f"script_{lv}" for lv in LEVELS]
    per_call = fit_finding.per_call
    assert per_call is not None
    kinds = [row.get("kind") for row in fit_finding.evidence]
    fitted = fit_frame.join(per_call, on="call_id").filter(pl.col("masked").is_not_null())
    later = test_frame.filter(pl.col("masked").is_not_null())
    texts = [f" {t} " for t in later["masked"].to_list()]
    taken: dict[str, dict[str, bool]] = {}
    for (candidate,), group in fitted.group_by(["candidate"], maintain_order=True):
        levels = {f: bool(group[f].any()) for f in flags}
        if not any(levels.values()):
            continue
        own = group["masked"].to_list()
        skeleton = ""
        if candidate < len(kinds) and kinds[candidate] == "template":
            skeleton = common_skeleton(group["prompt"].to_list(), ngram)
        if len([t for t in skeleton.split(" ") if t and t != STAR]) >= min_fixed:
            pattern = _glob(skeleton)
            hits = [i for i, text in enumerate(texts) if pattern.match(text)]
        else:
            wanted = set(own)
            hits = [i for i, text in enumerate(texts) if text[1:-1] in wanted]
        for i in hits:
            row = taken.setdefault(later["call_id"][i], dict.fromkeys(flags, False))
            for f in flags:
                row[f] = row[f] or levels[f]
    return pl.DataFrame(
        {
            "call_id": pl.Series(list(taken), dtype=pl.String),
            **{f: pl.Series([row[f] for row in taken.values()], dtype=pl.Boolean) for f in flags},
            "evidence": pl.Series([True] * len(taken), dtype=pl.Boolean),
        }
    )


def _part_frame(ws: Workspace) -> Any:
    """The part's calls (the temp ``calls`` table in place) as :func:`_transfer` reads them."""
    import polars as pl

    from levers_cli.levers.materialize import load_calls
    from levers_cli.query_templates.mask import tokens

    calls = pl.from_arrow(
        ws.con.sql(f"SELECT call_id, {CATEGORY_ID}, model FROM calls").to_arrow_table()
    )
    assert isinstance(calls, pl.DataFrame)
    prompts = load_calls(ws, True).select("call_id", "prompt")
    masked = prompts.with_columns(
        pl.col("prompt")
        .map_elements(lambda text: " ".join(tokens(text)), return_dtype=pl.String)
        .alias("masked")
    )
    return calls.join(masked, on="call_id", how="left")


def backtest(ws: Workspace, config: Config, levers: list[Lever], fraction: float) -> dict[str, Any]:
    """Fit on the first ``fraction`` of the log's time span, forecast the rest, and compare
    (``levers`` in waterfall order, expected level, USD per month of the later period).

    What is fitted on the first part only: the categories (the first part's queries clustered
    afresh; the later part's queries assigned to them: :func:`_fitted_categories`), each
    lever's saving per category as a share of the category's cost (the forecast: those rates
    × the later part's cost per category), the router (the categories below each level's
    difficulty threshold: :func:`_routed_later`), the caps (per category and model family) and
    the materialize templates (:func:`_scripted_later`), which are applied to the later calls
    to give their realized saving. The other levers' realized saving is re-measured on the
    later part with the same settings (their cache hits, conversations, LoRA candidates and
    jobs are found there; a cache entry from before the cutoff is not seen): each row's
    ``realized_from`` says which. A lever
    whose first part shows no saving has no out-of-sample signal, and says so (``signal``
    false, ``note``).

    Returns:
        ``fraction``, ``cutoff``, ``fit_days``, ``test_days``, ``categories`` (how they were
        fitted), ``levers`` (``id``, ``name``, ``predicted_usd_month``, ``realized_usd_month``,
        ``error_usd_month`` = realized − predicted, ``error_share`` = error / predicted or
        None, ``remeasured_usd_month`` (the lever re-analyzed on the later part itself, in
        sample: what the realized figure was before it was made out of sample),
        ``realized_from``, ``signal`` (whether the first part gave a forecast), ``note``),
        ``monthly_cost_before`` (the later part's),
        ``monthly_cost_after`` (``predicted``, ``realized``), ``fitted_on_whole_log`` (what
        still is: the embeddings' model, and the settings and labels in the config).

    Raises:
        UsageError: ``fraction`` is not strictly between 0 and 1 (NaN included).
        WorkspaceError: the workspace is not fully analyzed
            (:meth:`~levers_cli.store.Workspace.require_analysis`), the log has no time span to
            split, or a part holds no priced calls.
    """
    import polars as pl

    from levers_cli.pricing.plan import base_plan, plan_cost
    from levers_cli.simulate import run_waterfall, simulate

    if not 0 < fraction < 1:
        raise UsageError(
            f"--backtest {fraction}: give the share of the span to fit on, between 0 and 1 "
            "(e.g. 0.75)"
        )
    ws.require_analysis()
    row = ws.con.execute("SELECT min(ts), max(ts), current_database() FROM calls").fetchall()[0]
    if row[0] is None or row[0] == row[1]:
        raise WorkspaceError("--backtest needs calls with timestamps spanning some time")
    first, last, database = row
    cutoff = first + (last - first) * fraction
    labels, method = _fitted_categories(ws, config, cutoff)
    refit = labels is not None
    if labels is None:
        import pyarrow as pa

        labels = {"bt_hash": pa.array([], pa.string()), "bt_category": pa.array([], pa.int32())}
    ws.load_temp("bt_labels", labels)
    fallback = "-1" if refit else CATEGORY_ID
    parts: dict[str, Any] = {}
    frames: dict[str, Any] = {}
    later_cost: pl.DataFrame | None = None
    realized: dict[int, float] = {}
    try:
        for part, condition in (("fit", "ts < ?"), ("test", "ts >= ?")):
            ws.con.execute(
                f"""CREATE OR REPLACE TEMP TABLE calls AS
                    SELECT * EXCLUDE (bt_hash, bt_category)
                           REPLACE (CAST(coalesce(bt_category, {fallback}) AS INTEGER)
                                    AS {CATEGORY_ID})
                    FROM "{database}".main.calls LEFT JOIN bt_labels ON bt_hash = query_hash
                    WHERE {condition}""",
                [cutoff],
            )
            try:
                parts[part] = simulate(ws, config, levers, levels=("expected",))
                frames[part] = _part_frame(ws)
                if part == "test":
                    plan = base_plan(ws)
                    later_cost = plan.select(CATEGORY_ID).with_columns(cost=plan_cost(plan, config))
                    found = dict(parts["test"].findings)
                    for lever in levers:
                        moved = _transfer(
                            lever,
                            parts["fit"].findings[lever.id],
                            frames["fit"],
                            frames[part],
                            config,
                            parts["test"].findings[lever.id],
                        )
                        if moved is not None:
                            found[lever.id] = moved
                    days = float(config.get("analysis", "days_per_month"))
                    sim = run_waterfall(ws, levers, found, config, "expected", days)
                    realized = {s["id"]: s["saving_usd_month"] for s in sim.steps}
                    parts["realized"] = sim
            finally:
                ws.con.execute("DROP TABLE IF EXISTS temp.calls")
    finally:
        ws.con.execute("DROP TABLE IF EXISTS bt_labels")
    assert later_cost is not None
    fit = parts["fit"].levels["expected"]
    test = parts["test"].levels["expected"]
    assert fit.plan is not None
    categories = fit.plan.select(CATEGORY_ID)
    base = fit.call_costs[0]
    cost_by_category = later_cost.group_by(CATEGORY_ID).agg(pl.sum("cost"))
    rows = []
    for step, lever in enumerate(levers, 1):  # the waterfall's steps, in its order
        saving = fit.call_costs[step - 1] - fit.call_costs[step]
        rates = (
            categories.with_columns(saving=saving, base=base)
            .group_by(CATEGORY_ID)
            .agg(pl.sum("saving"), pl.sum("base"))
            .with_columns(rate=pl.col("saving") / pl.col("base"))
        )
        joined = cost_by_category.join(rates, on=CATEGORY_ID, how="left", nulls_equal=True)
        predicted = float((joined["cost"] * joined["rate"].fill_null(0.0)).sum())
        predicted *= test.monthly_factor
        fitted_saving = float(saving.sum())
        got = realized.get(lever.id, 0.0)
        error = got - predicted
        if lever.name in _TRANSFERRED:
            source = _TRANSFERRED[lever.name]
        else:
            what = _REMEASURED_WHAT.get(lever.name, "decisions")
            source = _REMEASURED.format(what=what)
        rows.append(
            {
                "id": lever.id,
                "name": lever.name,
                "predicted_usd_month": predicted,
                "realized_usd_month": got,
                "error_usd_month": error,
                "error_share": error / predicted if abs(predicted) > 1e-12 else None,
                "remeasured_usd_month": parts["test"]
                .findings[lever.id]
                .saving_usd_month["expected"],
                "realized_from": source,
                "signal": abs(fitted_saving) > 1e-12,
                "note": "" if abs(fitted_saving) > 1e-12 else NO_SIGNAL,
            }
        )
    return {
        "fraction": fraction,
        "cutoff": cutoff.isoformat(),
        "fit_days": parts["fit"].span_days,
        "test_days": parts["test"].span_days,
        "categories": method,
        "levers": rows,
        "monthly_cost_before": test.before_usd,
        "monthly_cost_after": {
            "predicted": test.before_usd - sum(r["predicted_usd_month"] for r in rows),
            "realized": parts["realized"].after_usd,
        },
        "fitted_on_whole_log": (
            "the embeddings' model (chosen for the whole log), and the settings and labels in "
            "the config and workspace (tier labels, labelled cache pairs)"
        ),
    }
