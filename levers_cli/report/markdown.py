"""The Markdown report: headline, the plan, the waterfall and the top findings as tables, for
a pull-request comment or a GitHub Actions job summary.

GitHub caps a job summary (``$GITHUB_STEP_SUMMARY``) at 1 MiB per step and a comment body at
65,536 characters; the report stays under :data:`MAX_CHARS` by dropping its later sections
first. Log text is escaped by :func:`levers_cli.report.sanitize.md_cell` so it never becomes
Markdown or HTML. Sources: GitHub Docs "Workflow commands for GitHub Actions → Adding a job
summary"; GitHub REST "Create an issue comment" (body limit, 65,536 characters).
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any

from levers_cli.report.fmt import basis_label, claim_value, num, pct, usd
from levers_cli.report.sanitize import md_cell
from levers_cli.text.content import plural

#: Longest Markdown report (characters), under GitHub's 65,536-character comment limit.
MAX_CHARS = 65_000


def _table(
    header: list[str],
    rows: list[list[Any]],
    right: AbstractSet[int] = frozenset(),
    limit: int = 120,
) -> str:
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(md_cell(c, limit) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _headline(r: dict[str, Any]) -> str:
    h, s = r["headline"], r["span"]
    low, high = h["plan_range_usd"]
    return (
        "## levers: LLM cost report\n\n"
        f"**{usd(h['monthly_run_rate_usd'])}/month now → {usd(h['plan_monthly_usd'])}/month** "
        f"with the expected plan ({pct(h['saving_share'])} less; range {usd(low)}–{usd(high)}). "
        f"Spend in the log {usd(h['spend_usd'])} over {num(s['span_days'])} days "
        f"({plural(s['calls'], 'call')}, {md_cell(s['first_ts'])} – {md_cell(s['last_ts'])}).\n\n"
        f"_Run rate: {md_cell(h['monthly_run_rate_basis'], 200)}. Prices: "
        f"{md_cell(r['price_data'])}._"
    )


def _plan(r: dict[str, Any]) -> str:
    rows = [
        [p["rank"], p["when"], f"{p['id']}. {p['name']}", usd(p["standalone_usd_month"]),
         pct(p["saving_share"]), usd(p["saving_usd_month"]), p["effort"], p["action"],
         f"`{p['export']}`" if p["export"] else "change in the app", p["basis_label"]]
        for p in r["plan"]
    ]  # fmt: skip
    table = _table(
        ["#", "when", "lever", "alone/month", "share", "in waterfall/month", "effort",
         "next action", "export", "basis"],
        rows,
        {0, 3, 4, 5},
        limit=300,
    )  # fmt: skip
    title = "### The plan (by expected saving of the lever alone per unit of effort)\n\n"
    return title + table.replace("\\`levers", "`levers").replace("\\`", "`")


def _waterfall(r: dict[str, Any]) -> str:
    sim = r["simulation"]
    levels = list(sim["monthly_cost_after"])
    reference = "expected" if "expected" in levels else levels[0]
    rows = [["", "cost now", *[usd(sim["monthly_cost_before"])] * len(levels), "", "evidence"]]
    rows += [
        [lv["id"], lv["name"], *[usd(-lv["saving_usd_month"].get(n, 0.0)) for n in levels],
         usd(-lv["standalone_usd_month"].get(reference, 0.0)), basis_label(lv, reference)]
        for lv in sim["levers"]
    ]  # fmt: skip
    after = [usd(sim["monthly_cost_after"][n]) for n in levels]
    rows.append(["", "**cost after**", *after, "", ""])
    table = _table(
        ["#", "lever", *levels, f"alone ({reference})", "basis"],
        rows,
        set(range(2, 3 + len(levels))),
    )
    return (
        "### Waterfall (USD per month, each lever given those before it; alone: the lever by "
        "itself on the logged plan)\n\n"
        + table.replace("\\*\\*cost after\\*\\*", "**cost after**")
        + f"\n\n_{md_cell(sim['monthly_basis'])}_"
        + _claims(sim, reference)
    )


def _claims(sim: dict[str, Any], reference: str) -> str:
    """The article's claims beside what levers measured (each lever alone)."""
    claims = sim.get("claims") or []
    if not claims:
        return ""
    rows = [
        [c["lever"], c["wording"],
         claim_value(c["metric"], c["measured"].get(reference),
                     c["changed_calls_share"].get(reference)),
         c["metric_meaning"]]
        for c in claims
    ]  # fmt: skip
    table = _table(
        ["lever", "claim", f"measured here ({reference})", "what was measured"], rows, {2}
    )
    return (
        f"\n\n### Claims of {md_cell(sim['claims_source'])}, beside what levers measured here\n\n"
        + table
        + "\n\n_The claims are the article's, not measurements; each figure measured is the "
        "lever alone on the logged plan (together: all the levers in the waterfall)._"
    )


def _spend(r: dict[str, Any]) -> str:
    cats = _table(
        ["category", "calls", "spend", "share", "top model"],
        [[c["label"], num(c["calls"]), usd(c["spend_usd"]), pct(c["spend_share"]), c["top_model"]]
         for c in r["categories"][:10]],
        {1, 2, 3},
    )  # fmt: skip
    models = _table(
        ["model", "calls", "spend", "share"],
        [[m["model"], num(m["calls"]), usd(m["spend_usd"]), pct(m["spend_share"])]
         for m in r["spend_by_model"]],
        {1, 2, 3},
    )  # fmt: skip
    return (
        f"### Spend by category (top 10)\n\n{cats}\n\n### Spend by model\n\n{models}"
        + _cost_checks(r.get("cost_checks"))
    )


def _cost_checks(checks: dict[str, Any] | None) -> str:
    """Calls whose logged cost differs from levers' (biggest first), and which the totals
    use."""
    if not checks or not checks["differing_calls"]:
        return ""
    rows = [
        [c["call_id"], c["model"], usd(c["logged_usd"]), usd(c["computed_usd"]),
         usd(c["difference_usd"])]
        for c in checks["largest"]
    ]  # fmt: skip
    table = _table(["call", "model", "logged", "levers", "difference"], rows, {2, 3, 4})
    return (
        f"\n\n### Logged cost vs levers' cost\n\n{num(checks['differing_calls'])} of "
        f"{num(checks['calls_with_logged_cost'])} calls with a logged cost differ by more than "
        f"{pct(checks['tolerance'])} (logged {usd(checks['logged_usd'])}, levers "
        f"{usd(checks['computed_usd'])}); biggest differences first.\n\n{table}\n\n"
        f"_Totals use levers' cost: {md_cell(checks['why'], 400)}_"
    )


def _findings(r: dict[str, Any]) -> str:
    f = r["findings"]
    parts = []
    if f["prefix_breakers"]:
        parts.append(
            "### Prefix breakers\n\n"
            + _table(
                ["model", "calls", "what", "token position", "example"],
                [
                    [b["model"], num(b["calls"]), b["pattern"], b["token_position"], b["example"]]
                    for b in f["prefix_breakers"]
                ],
                {1, 3},
            )
        )
    if f["workflows"]:
        parts.append(
            "### Workflow candidates\n\n"
            + _table(
                ["template", "calls", "consistency", "spend"],
                [
                    [
                        w["template"].split(" … ")[-1],
                        num(w["calls"]),
                        pct(w["consistency"]),
                        usd(w["spend_usd"]),
                    ]
                    for w in f["workflows"][:5]
                ],
                {1, 2, 3},
            )
        )
    b = f["batch"]
    parts.append(
        f"### Batch\n\n{plural(b['candidate_calls'], 'call')} ({pct(b['candidate_share'])}) "
        f"{'needs' if b['candidate_calls'] == 1 else 'need'} no "
        f"real-time answer; the expected plan moves {num(b['moved_calls'].get('expected', 0))}."
    )
    if f["caps"]:
        parts.append(
            "### Output caps\n\n"
            + _table(
                ["category", "model", "calls", "p95", "cap (expected)", "truncated now"],
                [
                    [
                        c["label"],
                        c["model"],
                        num(c["calls"]),
                        num(c["p95"]),
                        num(c["cap"]["expected"]),
                        pct(c["truncated_share"]),
                    ]
                    for c in f["caps"][:10]
                ],
                {2, 3, 4, 5},
            )
        )
    return "\n\n".join(parts)


def render_markdown(report: dict[str, Any], charts: dict[str, str] | None = None) -> str:
    """The report as GitHub-flavoured Markdown, at most :data:`MAX_CHARS` characters.

    Args:
        report: from :func:`levers_cli.report.gather`.
        charts: chart title → relative path of an image file to link (``--charts``).
    """
    sections = [_headline(report)]
    if report.get("compare"):
        from levers_cli.report.compare import compare_markdown

        sections.append(compare_markdown(report["compare"]))
    sections += [_plan(report), _waterfall(report)]
    if charts:
        sections.append(
            "### Charts\n\n" + "\n".join(f"![{md_cell(t)}]({p})" for t, p in charts.items())
        )
    sections += [_spend(report), _findings(report)]
    footer = (
        f"<sub>levers {md_cell(report['levers_version'])} · report schema "
        f"{report['schema_version']} · redaction "
        f"{'on' if report['redaction']['enabled'] else 'off'}</sub>"
    )
    text = ""
    for section in sections:
        if len(text) + len(section) + len(footer) + 4 > MAX_CHARS:
            break
        text += section + "\n\n"
    return text + footer + "\n"
