"""Week over week: the newest period of the workspace against the one before it.

``--compare 7d``: the last 7 days up to the newest call against the 7 days before them.
``--compare-run RUN_ID``: the calls the newest ``analyze`` run stored against those run
``RUN_ID`` stored (table ``runs``; each weekly dump is one run).

"New traffic" is what the exported router would send to its default route: calls of the newer
period that are uncategorized (``category_id = -1``: below the similarity floor of every known
category, see :mod:`levers_cli.cluster.categorize`) or in a category no call of the earlier
period had. Run rates scale each period's spend to ``[analysis] days_per_month`` over its own
span (an assumption), so periods of different length compare.
"""

from __future__ import annotations

from typing import Any

from levers_cli.config import Config
from levers_cli.errors import LeversError, PeriodError, UsageError
from levers_cli.report.fmt import num, pct, usd
from levers_cli.report.sanitize import md_cell
from levers_cli.schema import CATEGORY_ID
from levers_cli.store import Workspace
from levers_cli.summary import _PERIOD, categories, repeats, since_cutoff, span_and_spend
from levers_cli.text.content import plural

PREV, CUR = "compare_prev", "compare_cur"


def check_compare(period: str | None, run_id: int | None) -> None:
    """Check that at most one of ``--compare PERIOD`` and ``--compare-run RUN_ID`` is given.

    Raises:
        UsageError: both are (bad usage: exit 2).
    """
    if period and run_id is not None:
        raise UsageError("--compare and --compare-run: give one of them")


def _views(ws: Workspace, period: str | None, run_id: int | None) -> dict[str, Any]:
    """Create the two temp views; return what each period is."""
    if run_id is not None:
        runs = [r for (r,) in ws.con.execute("SELECT DISTINCT run_id FROM calls ORDER BY 1")]
        shown = ", ".join(str(r) for r in runs) or "none"
        if run_id not in runs:
            raise LeversError(f"--compare-run {run_id}: no calls from that run; runs: {shown}")
        newest = max(r for r in runs if r is not None)
        if newest == run_id:
            raise LeversError(
                f"--compare-run {run_id} is the newest run; compare an earlier one ({shown})"
            )
        prev, cur = f"run_id = {int(run_id)}", f"run_id = {int(newest)}"
        label = {"previous": f"run {run_id}", "current": f"run {newest}"}
    else:
        if not period or not _PERIOD.match(period):
            raise PeriodError(f"--compare {period!r}: give a period such as 7d, 24h or 2w")
        cutoff = since_cutoff(ws, period)
        newest = ws.con.execute("SELECT max(ts) FROM calls").fetchone()[0]
        start = cutoff - (newest - cutoff)
        cur = f"ts > TIMESTAMPTZ '{cutoff.isoformat()}'"
        prev = (
            f"ts > TIMESTAMPTZ '{start.isoformat()}' AND ts <= TIMESTAMPTZ '{cutoff.isoformat()}'"
        )
        label = {
            "previous": f"{start:%Y-%m-%d %H:%M} – {cutoff:%Y-%m-%d %H:%M} UTC",
            "current": f"{cutoff:%Y-%m-%d %H:%M} – {newest:%Y-%m-%d %H:%M} UTC",
        }
    for view, where in ((PREV, prev), (CUR, cur)):
        ws.con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM calls WHERE {where}")
    return label


def _period(ws: Workspace, config: Config, view: str) -> dict[str, Any]:
    spend = span_and_spend(ws, config, view)
    rep = repeats(ws, view)
    uncategorized = ws.con.execute(
        f"SELECT count(*) FROM {view} WHERE coalesce(category_id, -1) = -1"
    ).fetchone()[0]
    return {
        "calls": spend["calls"],
        "spend_usd": spend["spend_usd"] or 0.0,
        "first_ts": spend["first_ts"],
        "last_ts": spend["last_ts"],
        "monthly_run_rate_usd": spend["monthly_run_rate_usd"],
        "uncategorized_calls": uncategorized,
        "uncategorized_share": uncategorized / spend["calls"] if spend["calls"] else 0.0,
        # cache-hit potential: the same query sent again to the same model (exact cache)
        "exact_repeat_share": rep["exact_repeat_share"],
        "repeated_calls_same_model": rep["repeated_calls_same_model"],
    }


def _change(new: float | None, old: float | None) -> float | None:
    return None if new is None or not old else new / old - 1


def compare(
    ws: Workspace,
    config: Config,
    *,
    period: str | None = None,
    run_id: int | None = None,
    budget: float | None = None,
) -> dict[str, Any]:
    """Compare the newest period with the one before it.

    Args:
        ws: an analyzed workspace.
        config: the effective configuration.
        period: ``7d``, ``24h``, ``2w`` …; or
        run_id: an earlier ``analyze`` run to compare the newest run with.
        budget: monthly budget in USD to hold the newer run rate against (optional).

    Returns:
        ``{"periods": {"previous", "current"}, "previous": {...}, "current": {...}`` (calls,
        spend_usd, monthly_run_rate_usd, uncategorized_share, exact_repeat_share …),
        ``"spend_change"``, ``"calls_change"``, ``"run_rate_change"`` (shares, None without a
        base), ``"new_traffic"`` (calls, share, spend_usd, categories), ``"grew_most"`` (top 5
        categories by spend added), ``"budget"``.

    Raises:
        PeriodError: ``period`` is not a period or the calls have no timestamps.
        LeversError: ``run_id`` names no run of the workspace, or the newest one.
        WorkspaceError: the workspace is not fully analyzed
            (:meth:`~levers_cli.store.Workspace.require_analysis`).
    """
    ws.require_analysis()
    labels = _views(ws, period, run_id)
    prev, cur = _period(ws, config, PREV), _period(ws, config, CUR)
    new_rows = ws.con.execute(
        f"""SELECT coalesce(c.category_id, -1) AS category_id,
                   coalesce(g.label, '(uncategorized)') AS label,
                   count(*) AS calls, coalesce(sum(c.cost_usd), 0)::DOUBLE AS spend_usd
            FROM {CUR} c LEFT JOIN categories g ON g.category_id = c.category_id
            WHERE coalesce(c.category_id, -1) = -1 OR c.category_id NOT IN
                  (SELECT DISTINCT category_id FROM {PREV} WHERE category_id IS NOT NULL)
            GROUP BY ALL ORDER BY calls DESC, category_id"""
    ).fetchall()
    new_calls = sum(r[2] for r in new_rows)
    by_cat = {
        "previous": {c[CATEGORY_ID]: c for c in categories(ws, PREV)},
        "current": {c[CATEGORY_ID]: c for c in categories(ws, CUR)},
    }
    grew = []
    for cat_id, row in by_cat["current"].items():
        before = by_cat["previous"].get(cat_id, {})
        added = (row["spend_usd"] or 0.0) - (before.get("spend_usd") or 0.0)
        grew.append(
            {
                CATEGORY_ID: cat_id,
                "label": row["label"],
                "calls_before": before.get("calls", 0),
                "calls_now": row["calls"],
                "spend_before_usd": before.get("spend_usd") or 0.0,
                "spend_now_usd": row["spend_usd"] or 0.0,
                "spend_added_usd": added,
            }
        )
    grew.sort(key=lambda g: (-g["spend_added_usd"], g[CATEGORY_ID]))
    rate = cur["monthly_run_rate_usd"]
    return {
        "periods": labels,
        "previous": prev,
        "current": cur,
        "spend_change": _change(cur["spend_usd"], prev["spend_usd"]),
        "calls_change": _change(cur["calls"], prev["calls"]),
        "run_rate_change": _change(rate, prev["monthly_run_rate_usd"]),
        "new_traffic": {
            "calls": new_calls,
            "share": new_calls / cur["calls"] if cur["calls"] else 0.0,
            "spend_usd": sum(r[3] for r in new_rows),
            "categories": [
                {CATEGORY_ID: r[0], "label": r[1], "calls": r[2], "spend_usd": r[3]}
                for r in new_rows[:10]
            ],
        },
        "grew_most": [g for g in grew if g["spend_added_usd"] > 0][:5],
        "budget": None
        if budget is None
        else {
            "budget_usd_month": budget,
            "run_rate_usd_month": rate,
            "within": rate is not None and rate <= budget,
        },
    }


def _delta(change: float | None) -> str:
    return "—" if change is None else f"{change * 100:+.1f} %"


def compare_markdown(c: dict[str, Any]) -> str:
    """The comparison as a Markdown section (log text escaped)."""
    p, n = c["previous"], c["current"]
    lines = [
        f"### Week over week: {md_cell(c['periods']['current'])} vs "
        f"{md_cell(c['periods']['previous'])}",
        "",
        "| | before | now | change |",
        "| --- | ---: | ---: | ---: |",
        f"| spend | {usd(p['spend_usd'])} | {usd(n['spend_usd'])} | {_delta(c['spend_change'])} |",
        f"| calls | {num(p['calls'])} | {num(n['calls'])} | {_delta(c['calls_change'])} |",
        f"| monthly run rate | {usd(p['monthly_run_rate_usd'])} | "
        f"{usd(n['monthly_run_rate_usd'])} | {_delta(c['run_rate_change'])} |",
        f"| uncategorized share | {pct(p['uncategorized_share'])} | "
        f"{pct(n['uncategorized_share'])} | |",
        f"| exact-repeat share (cache-hit potential) | {pct(p['exact_repeat_share'])} | "
        f"{pct(n['exact_repeat_share'])} | |",
        "",
        f"New traffic (the router's default route): {plural(c['new_traffic']['calls'], 'call')} "
        f"({pct(c['new_traffic']['share'])}), {usd(c['new_traffic']['spend_usd'])}.",
    ]
    if c["grew_most"]:
        lines += ["", "| grew most | spend before | spend now |", "| --- | ---: | ---: |"]
        lines += [
            f"| {md_cell(g['label'])} | {usd(g['spend_before_usd'])} | {usd(g['spend_now_usd'])} |"
            for g in c["grew_most"]
        ]
    if c["budget"]:
        b = c["budget"]
        verdict = "within" if b["within"] else "**over**"
        lines += [
            "",
            f"Run rate {usd(b['run_rate_usd_month'])}/month is {verdict} the budget "
            f"{usd(b['budget_usd_month'])}/month.",
        ]
    return "\n".join(lines)
