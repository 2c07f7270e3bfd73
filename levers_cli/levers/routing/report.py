"""Routing's report: evidence rows per category, figures with their basis, the savings curve
(see :mod:`levers_cli.levers.routing` for the method)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from levers_cli.levers.base import LEVELS, Figure, Finding, combine_basis
from levers_cli.levers.routing.features import FEATURES
from levers_cli.schema import CATEGORY_ID

if TYPE_CHECKING:
    from levers_cli.levers.base import Basis
    from levers_cli.store import Workspace

#: What ``[routing] strong_share`` is: a setting, not a measured result. RouteLLM (Ong et al.
#: 2024, arXiv:2406.18665) reports the strong share its *trained* routers need for a quality
#: it measured on benchmarks; this router is a difficulty heuristic whose quality is unmeasured.
SOURCE_SHARE = (
    "[routing] strong_share: an assumed share of eligible calls kept on the strong tier "
    "(not RouteLLM's result: theirs is a trained router whose quality was measured)"
)
SOURCE_LOW_EFFORT = (
    "[routing] low_effort_reasoning_share: assumed share of reasoning tokens a lower "
    "reasoning_effort keeps"
)


def build_finding(
    ws: Workspace,
    frame: pl.DataFrame,
    cats: pl.DataFrame,
    evidence: pl.DataFrame,
    labelled: dict[int, dict[str, Any]],
    label_cats: set[int],
    levels: dict[str, Any],
    pool: int,
    factor: float,
    keys: list[str],
    quality: dict[tuple[int, str], dict[str, Any]] | None = None,
) -> Finding:
    """The routing :class:`Finding`: per-category evidence rows (routed first, by saving),
    figures with their basis, the share-routed → USD-saved curve and per-level details.

    ``evidence`` is :func:`levers_cli.levers.routing.evidence.routing_evidence`'s table; a
    routed call's saving rests on evidence only where its own category's basis is not
    ``assumed``."""
    per_cat = (
        frame.filter(pl.col(CATEGORY_ID) >= 0)
        .group_by(keys)
        .agg(
            *[pl.col(f"route_{lv}").sum().alias(f"routed_{lv}") for lv in LEVELS],
            pl.col("saving_usd").filter(pl.col("route_expected")).sum().alias("saving_usd"),
        )
    )
    names = dict(ws.con.execute("SELECT category_id, label FROM categories").fetchall())
    rows: list[dict[str, Any]] = []
    table = cats.join(per_cat, on=keys, how="left", nulls_equal=True).join(
        evidence, on=keys, how="left", nulls_equal=True
    )
    for row in table.iter_rows(named=True):
        cid = int(row[CATEGORY_ID])
        if not row["eligible_calls"] and not row["routed_expected"]:
            continue
        judged = [d for (c, _), d in (quality or {}).items() if c == cid]
        rows.append(
            {
                **({"feature": row["feature"]} if "feature" in keys else {}),
                CATEGORY_ID: cid,
                "label": names.get(cid),
                "calls": row["calls"],
                "eligible_calls": row["eligible_calls"],
                "difficulty": round(row["difficulty"], 4),
                **{f"mean_{f}": row[f"mean_{f}"] for f in FEATURES},
                "routed_calls": {lv: int(row[f"routed_{lv}"] or 0) for lv in LEVELS},
                "basis": row["basis"] or "assumed",
                "cheap_answers": row["cheap_answers"] or 0,
                "cheap_ok": row["cheap_ok"] or 0,
                "cheap_truncated": row["cheap_truncated"] or 0,
                "cheap_errors": row["cheap_errors"] or 0,
                "strong_answers": row["strong_answers"] or 0,
                "comparable": bool(row["comparable"]),
                "measured_pairs": row["measured_pairs"] or 0,
                **({"labelled": labelled[cid]} if cid in labelled else {}),
                "saving_usd": round(row["saving_usd"] or 0.0, 6),
                **({"quality": judged} if judged else {}),
            }
        )
    rows.sort(key=lambda r: (not r["routed_calls"]["expected"], -r["saving_usd"], r["difficulty"]))
    supported = evidence.filter(pl.col("basis") != "assumed").select(keys)
    frame = frame.join(
        supported.with_columns(pl.lit(True).alias("evidence")),
        on=keys,
        how="left",
        nulls_equal=True,
    ).with_columns(pl.col("evidence").fill_null(False))
    routed = frame.filter(pl.col("route_expected"))
    with_evidence = routed.filter(pl.col("evidence")).height
    comparable = evidence.filter(pl.col("comparable")).select(keys)
    comparable_calls = routed.join(comparable, on=keys, how="semi", nulls_equal=True).height
    basis_list: list[Basis] = []
    if with_evidence:
        basis_list.append("evidence")
    if routed.height - with_evidence:
        basis_list.append("assumption")
    routed_basis = combine_basis(basis_list or ["assumption"])
    figures = [
        Figure(
            "strong_share_target",
            {lv: levels[lv]["strong_share_target"] for lv in LEVELS},
            "share",
            "assumption",
            SOURCE_SHARE,
        ),
        Figure(
            "difficulty_threshold",
            {lv: levels[lv]["threshold"] for lv in LEVELS},
            "score",
            "assumption",
            f"calibrated on {SOURCE_SHARE}, capped by [routing] max_difficulty",
        ),
        Figure(
            "routed_calls",
            {lv: levels[lv]["routed_calls"] for lv in LEVELS},
            "calls",
            routed_basis,
            "eligible calls the exported router (levers export router-config) sends to the "
            "cheap tier",
        ),
        Figure(
            "routed_calls_with_evidence",
            with_evidence,
            "calls",
            "evidence",
            "routed calls whose own feature and category has measured cheap/strong quality "
            "pairs or tier labels",
        ),
        Figure(
            "routed_calls_comparable",
            comparable_calls,
            "calls",
            "evidence",
            "routed calls whose feature and category hold answers of both tiers (a quality "
            "comparison can be built there; not yet measured)",
        ),
        Figure(
            "routed_calls_assumed",
            routed.height - with_evidence,
            "calls",
            "assumption",
            f"routed calls without measured quality in their category: {SOURCE_SHARE}",
        ),
        Figure(
            "low_effort_saving_usd_month",
            {lv: levels[lv]["low_effort"]["saving_usd_month"] for lv in LEVELS},
            "USD/month",
            "assumption",
            "reasoning calls kept on their model at a lower reasoning_effort (applied where "
            f"[routing] low_effort is on): {SOURCE_LOW_EFFORT}",
        ),
    ]
    curve, cum_calls, cum_usd = [], 0, 0.0
    movable = frame.filter(pl.col("eligible") & pl.col("forced").is_null())
    by_cat = movable.group_by(CATEGORY_ID).agg(pl.len(), pl.col("saving_usd").sum())
    saving = {cid: (n, usd) for cid, n, usd in by_cat.iter_rows()}
    for cid, difficulty in (
        cats.filter(~pl.col(CATEGORY_ID).is_in(list(label_cats)))
        .select(CATEGORY_ID, "difficulty")
        .iter_rows()
    ):
        n, usd = saving.get(cid, (0, 0.0))
        if not n:
            continue
        cum_calls, cum_usd = cum_calls + n, cum_usd + usd
        curve.append(
            {
                "up_to_difficulty": round(difficulty, 4),
                "routed_calls": cum_calls,
                "routed_share": round(cum_calls / pool, 4) if pool else 0.0,
                "saving_usd": round(cum_usd, 6),
                "saving_usd_month": round(cum_usd * factor, 4),
            }
        )
    keep = [
        "call_id", "score", "forced", "route_model", pl.col("model").alias("from_model"),
        "reasoning_tokens", "router_category", "evidence",
        *[f"route_{lv}" for lv in LEVELS], *[f"low_effort_{lv}" for lv in LEVELS],
        *[f"ungated_{lv}" for lv in LEVELS],
    ]  # fmt: skip
    return Finding(
        lever_id=1,
        name="routing",
        calls_affected=routed.height,
        tokens_affected=int((routed["input_tokens"] + routed["output_tokens"]).sum()),
        basis=combine_basis([f.basis for f in figures]),
        figures=figures,
        evidence=rows,
        per_call=frame.select(keep),
        details={
            "eligible_calls": int(frame["eligible"].sum()),
            "keyword_forced": {t: int((frame["forced"] == t).sum()) for t in ("strong", "cheap")},
            "group_keys": keys,
            "levels": levels,
            "curve": curve,
            "labelled_queries": int(
                frame.filter(pl.col("label").is_not_null())["query_hash"].n_unique()
            ),
            "label_categories": sorted(label_cats),
            "categories_evidence": sum(
                1 for r in rows if r["routed_calls"]["expected"] and r["basis"] != "assumed"
            ),
            "categories_assumed": sum(
                1 for r in rows if r["routed_calls"]["expected"] and r["basis"] == "assumed"
            ),
        },
    )


__all__ = ["SOURCE_SHARE", "build_finding"]
