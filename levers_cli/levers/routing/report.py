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

SOURCE_SHARE = "[routing] strong_share (RouteLLM, Ong et al. 2024, arXiv:2406.18665)"


def build_finding(
    ws: Workspace,
    frame: pl.DataFrame,
    cats: pl.DataFrame,
    labelled: dict[int, dict[str, Any]],
    label_cats: set[int],
    levels: dict[str, Any],
    pool: int,
    factor: float,
    quality: dict[tuple[int, str], dict[str, Any]] | None = None,
) -> Finding:
    """The routing :class:`Finding`: per-category evidence rows (routed first, by saving),
    figures with their basis, the share-routed → USD-saved curve and per-level details."""
    per_cat = (
        frame.filter(pl.col(CATEGORY_ID) >= 0)
        .group_by(CATEGORY_ID)
        .agg(
            *[pl.col(f"route_{lv}").sum().alias(f"routed_{lv}") for lv in LEVELS],
            pl.col("saving_usd").filter(pl.col("route_expected")).sum().alias("saving_usd"),
        )
    )
    names = dict(ws.con.execute("SELECT category_id, label FROM categories").fetchall())
    rows: list[dict[str, Any]] = []
    for row in cats.join(per_cat, on=CATEGORY_ID, how="left").iter_rows(named=True):
        cid = int(row[CATEGORY_ID])
        if not row["eligible_calls"] and not row["routed_expected"]:
            continue
        judged = [d for (c, _), d in (quality or {}).items() if c == cid]
        basis = (
            "labels"
            if cid in label_cats
            else "quality"
            if judged and all(d["decision"] == "meets" for d in judged)
            else "evidence"
            if row["cheap_answers"]
            else "assumed"
        )
        rows.append(
            {
                CATEGORY_ID: cid,
                "label": names.get(cid),
                "calls": row["calls"],
                "eligible_calls": row["eligible_calls"],
                "difficulty": round(row["difficulty"], 4),
                "feature_score": round(row["feature_score"], 4),
                "cheap_share": round(row["cheap_share"], 4),
                **{f"mean_{f}": row[f"mean_{f}"] for f in FEATURES},
                "routed_calls": {lv: int(row[f"routed_{lv}"] or 0) for lv in LEVELS},
                "basis": basis,
                "cheap_answers": row["cheap_answers"],
                "cheap_ok": row["cheap_ok"],
                "cheap_truncated": row["cheap_truncated"],
                "cheap_errors": row["cheap_errors"],
                **({"labelled": labelled[cid]} if cid in labelled else {}),
                "saving_usd": round(row["saving_usd"] or 0.0, 6),
                **({"quality": judged} if judged else {}),
            }
        )
    rows.sort(key=lambda r: (not r["routed_calls"]["expected"], -r["saving_usd"], r["difficulty"]))
    routed = frame.filter(pl.col("route_expected"))
    with_evidence = routed.filter(
        pl.col(CATEGORY_ID).is_in([r[CATEGORY_ID] for r in rows if r["basis"] != "assumed"])
    ).height
    cheap_rows = [r for r in rows if r["routed_calls"]["expected"] and r["cheap_answers"]]
    answers = sum(r["cheap_answers"] for r in cheap_rows)
    evidence: list[Basis] = ["evidence"] if with_evidence else []
    assumed: list[Basis] = ["assumption"] if routed.height - with_evidence else []
    routed_basis = combine_basis(evidence + assumed)
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
            "eligible calls in routed categories (logs) at the calibrated threshold",
        ),
        Figure(
            "routed_calls_with_evidence",
            with_evidence,
            "calls",
            "evidence",
            "routed calls whose category has cheap-tier answers or tier labels in the logs",
        ),
        Figure(
            "routed_calls_assumed",
            routed.height - with_evidence,
            "calls",
            "assumption",
            f"routed calls whose category has no cheap-tier answer: {SOURCE_SHARE}",
        ),
    ]
    if answers:
        ok = sum(r["cheap_ok"] for r in cheap_rows)
        figures.append(
            Figure(
                "cheap_answers_ok_share",
                round(ok / answers, 4),
                "share",
                "evidence",
                f"{ok} of {answers} cheap-tier answers in routed "
                "categories with status ok and not truncated",
            )
        )
    curve, cum_calls, cum_usd = [], 0, 0.0
    movable = frame.filter(
        pl.col("eligible") & pl.col("forced").is_null() & pl.col("label").is_null()
    )
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
    keep = ["call_id", "score", "forced", "route_model", *[f"route_{lv}" for lv in LEVELS]]
    keep += [f"ungated_{lv}" for lv in LEVELS]
    # the saving of a routed call rests on evidence when its category has cheap-model answers
    # in the logs or human tier labels; otherwise on the assumption that the cheap tier copes
    supported = [r[CATEGORY_ID] for r in rows if r["basis"] != "assumed"]
    frame = frame.with_columns(pl.col(CATEGORY_ID).is_in(supported).alias("evidence"))
    keep.append("evidence")
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
