"""Rich rendering of the analysis summary (results on stdout, messages on stderr).

Text that comes from the logs or the user (model names, category labels, paths) is escaped
before Rich sees it: a prompt holding ``[/INST]`` or ``[bold]`` is text, never markup.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from levers_cli.report.fmt import usd
from levers_cli.schema import CATEGORY_ID
from levers_cli.text.content import plural

MAX_CATEGORY_ROWS = 25
#: Repeat-histogram buckets past the single digits: (least, most) occurrences, None = open.
WIDE_BUCKETS = ((10, 19), (20, 49), (50, 99), (100, 999), (1000, None))


def occurrence_buckets(occurrences: dict[str, int]) -> list[tuple[str, int]]:
    """Distinct queries by how often each occurs (``{k: queries}`` of the summary's
    ``repeats.occurrences``), every query in one bucket: ``1×`` … ``9×`` as they are, then
    ``10–19×``, ``20–49×``, ``50–99×``, ``100–999×``, ``1,000×+``; ascending, empty buckets
    left out, so the line stays short however many distinct counts the log has."""
    buckets: dict[str, int] = {}
    for k in sorted(int(key) for key in occurrences):
        name = _bucket(k)
        buckets[name] = buckets.get(name, 0) + int(occurrences[str(k)])
    return list(buckets.items())


def _bucket(k: int) -> str:
    if k < WIDE_BUCKETS[0][0]:
        return f"{k}×"
    for least, most in WIDE_BUCKETS:
        if most is None:
            return f"{least:,}×+"
        if k <= most:
            break
    return f"{least}–{most}×"


def moment(iso: str) -> str:
    """An ISO timestamp shortened to ``YYYY-MM-DD HH:MM`` (UTC)."""
    return iso[:16].replace("T", " ")


def share(value: float | None) -> str:
    """A fraction as a percentage with one decimal."""
    return "–" if value is None else f"{value * 100:.1f}%"


def count(value: Any) -> str:
    """A whole number with thousands separators."""
    return "–" if value is None else f"{int(value):,}"


def reconciliation(ingest: dict[str, Any]) -> str:
    """``read N, stored S, duplicates D, skipped K, rejected R``."""
    return (
        f"read {ingest['read']:,}, stored {ingest['stored']:,}, "
        f"duplicates {ingest['duplicates']:,}, skipped {ingest['skipped']:,}, "
        f"rejected {ingest['rejected']:,}"
    )


def skipped_notes(ingest: dict[str, Any]) -> list[str]:
    """What a run skipped, a line each: records that are no model call (by reason) and
    files of the folders read that are no logs (by kind); none when nothing was skipped."""
    notes = []
    reasons = ingest.get("skipped_by_reason") or {}
    if reasons:
        listed = ", ".join(f"{reason}: {n:,}" for reason, n in reasons.items())
        notes.append(f"skipped {plural(sum(reasons.values()), 'record')} (no model call): {listed}")
    kinds = ingest.get("skipped_files") or {}
    if kinds:
        listed = ", ".join(f"{kind}: {n:,}" for kind, n in kinds.items())
        notes.append(
            f"skipped {plural(sum(kinds.values()), 'non-log file')} in the folders read ({listed})"
        )
    return notes


def render_overview(console: Console, s: dict[str, Any]) -> None:
    """The heading, then calls, time span, spend and monthly run rate, and what of the spend
    rests on estimated tokens or calls logged without text."""
    span = (
        f"{moment(s['first_ts'])} → {moment(s['last_ts'])} UTC ({s['span_days']:.2f} days)"
        if s.get("first_ts")
        else ("no calls in this period" if s["calls"] == 0 and s.get("since") else "no timestamps")
    )
    console.rule("[bold]levers analyze")
    if s.get("since"):
        console.print(f"[bold]period[/bold]           calls from {escape(s['since'])} on")
    console.print(f"calls            {count(s['calls'])}  (failed {count(s['failed_calls'])})")
    console.print(f"time span        {span}")
    console.print(
        f"spend            {usd(s['spend_usd'])}"
        + (
            f"  ({plural(s['unpriced_calls'], 'call')} of unknown price not included)"
            if s["unpriced_calls"]
            else ""
        )
    )
    monthly = s["monthly_run_rate_usd"]
    console.print(
        f"monthly run rate {'–' if monthly is None else usd(monthly)}"
        f"  [dim]{s['monthly_run_rate_basis']}[/dim]"
    )
    if s["calls_with_estimated_tokens"]:
        console.print(
            "[yellow]tokens estimated with tiktoken[/yellow] for "
            f"{plural(s['calls_with_estimated_tokens'], 'call')} (no usage in the log): "
            f"{usd(s['spend_on_estimated_tokens_usd'] if s['spend_usd'] is not None else None)}"
            " of the spend"
        )
    if s.get("calls_without_text"):
        console.print(
            f"[yellow]{plural(s['calls_without_text'], 'call')} logged without prompt or "
            "response text[/yellow] (counted and priced from their token counts; they cannot "
            "be categorized)"
        )


def render_prices(console: Console, s: dict[str, Any]) -> None:
    """Where the prices came from: the price data, levers' own rows used, and the prices
    no source has (context tiers, tool fees)."""
    prices = s["prices"]
    console.print(f"[dim]prices: {escape(str(prices['source']))}[/dim]")
    for row in prices.get("own_rows_used") or []:
        console.print(
            f"[dim]  + levers' own rate for {plural(row['calls'], 'call')} "
            f"({escape(row['provider'])} {escape(', '.join(row['models']))}"
            + (f", {', '.join(f'{k}={v}' for k, v in row['when'].items())}" if row["when"] else "")
            + f"): {escape(row['source'])}, read {row['read']}[/dim]"
        )
    for what, n in (prices.get("unpriced_context") or {}).items():
        console.print(
            f"[yellow]no rate for {escape(what)}[/yellow] on {plural(n, 'call')}: priced at the "
            "standard rates (add a [[price_rows]] row to levers.toml)"
        )
    for tool, n in (prices.get("unpriced_tools") or {}).items():
        console.print(
            f"[yellow]no fee known for the {escape(tool)} tool[/yellow] used by "
            f"{plural(n, 'call')}: its uses are not in the spend"
        )


def render_spend_by_model(console: Console, s: dict[str, Any]) -> None:
    """The table of calls, tokens and spend per provider/model."""
    models = Table(title="Spend by model", title_justify="left")
    models.add_column("provider/model", overflow="fold")
    for name in ("calls", "input", "cached", "output", "spend", "spend share"):
        models.add_column(name, justify="right", no_wrap=True)
    for m in s["spend_by_model"]:
        models.add_row(
            escape(f"{m['provider'] or '?'}/{m['model'] or '?'}"),
            count(m["calls"]),
            count(m["input_tokens"]),
            count(m["cache_read_tokens"]),
            count(m["output_tokens"]),
            usd(m["spend_usd"]),
            share(m["spend_share"]),
        )
    console.print(models)


def render_tokens(console: Console, s: dict[str, Any]) -> None:
    """Token totals by kind, and the calls a gateway's cache answered."""
    t = s["tokens"]
    console.print(
        f"tokens: input {count(t['input_tokens'])} (cached {count(t['cache_read_tokens'])}, "
        f"cache write {count(t['cache_write_tokens'])}), output {count(t['output_tokens'])} "
        f"(reasoning {count(t['reasoning_tokens'])})"
    )
    if t.get("gateway_cache_hit_calls"):
        console.print(
            f"gateway cache: {plural(t['gateway_cache_hit_calls'], 'call')} answered by the "
            "gateway's own cache ($0; their replayed tokens, "
            f"{count(t['gateway_replayed_input_tokens'])} in and "
            f"{count(t['gateway_replayed_output_tokens'])} out, are not in the totals above)"
        )


def render_cost_checks(console: Console, s: dict[str, Any]) -> None:
    """The calls whose logged cost differs from levers' (biggest first), if any."""
    checks = s.get("cost_checks")
    if not checks or not checks["differing_calls"]:
        return
    table = Table(
        title=f"Logged cost differs from levers' (> {share(checks['tolerance'])}): "
        f"{plural(checks['differing_calls'], 'call')} of {count(checks['calls_with_logged_cost'])}",
        title_justify="left",
    )
    table.add_column("call", overflow="fold")
    table.add_column("model", overflow="fold")
    for name in ("logged", "levers", "difference"):
        table.add_column(name, justify="right", no_wrap=True)
    for c in checks["largest"][:10]:
        table.add_row(
            escape(str(c["call_id"])), escape(str(c["model"])), usd(c["logged_usd"]),
            usd(c["computed_usd"]), usd(c["difference_usd"]),
        )  # fmt: skip
    console.print(table)
    console.print(f"[dim]totals use levers' cost: {escape(checks['why'])}[/dim]")


def render_categories(console: Console, s: dict[str, Any]) -> None:
    """The categories table (the largest :data:`MAX_CATEGORY_ROWS`, then uncategorized)."""
    cats = s["categories"]
    info = s["categorization"]
    table = Table(
        title=f"Categories: {info['categories']} found in {count(info['distinct_queries'])} "
        f"distinct queries ({escape(info['method'])}, {escape(info['embedder'])})",
        title_justify="left",
    )
    for name in ("id", "label", "calls", "spend share", "top model", "p50 out", "p95 out"):
        if name == "label":
            table.add_column(name, overflow="fold", ratio=2)
        elif name == "top model":
            table.add_column(name, overflow="ellipsis", no_wrap=True, ratio=1)
        else:
            table.add_column(name, justify="right", no_wrap=True)
    shown = [c for c in cats if c[CATEGORY_ID] != -1][:MAX_CATEGORY_ROWS]
    shown += [c for c in cats if c[CATEGORY_ID] == -1]
    for c in shown:
        table.add_row(
            str(c[CATEGORY_ID]),
            escape(c["label"]),
            count(c["calls"]),
            share(c["spend_share"]),
            escape(c["top_model"] or "?"),
            count(c["p50_output_tokens"]),
            count(c["p95_output_tokens"]),
        )
    console.print(table)
    hidden = len(cats) - len(shown)
    if hidden > 0:
        console.print(f"[dim]… {hidden} more categories in the JSON output[/dim]")
    features = info.get("features") or {}
    if len(features) > 1:
        console.print(
            "app features (categories are found within each): "
            + "; ".join(f"{escape(name)} {plural(n, 'call')}" for name, n in features.items())
        )


def render_repeats(console: Console, s: dict[str, Any]) -> None:
    """Distinct queries, exact repeats and the histogram of how often each query occurs."""
    r = s["repeats"]
    histogram = occurrence_buckets(r["occurrences"])
    console.print(
        f"queries: {count(r['distinct_queries'])} distinct; exact repeats: "
        f"{plural(r['repeated_calls'], 'call')} ({share(r['exact_repeat_share'])}), "
        f"{plural(r['repeated_calls_same_model'], 'call')} to the same model; "
        "distinct queries by occurrences: " + ", ".join(f"{k} {count(v)}" for k, v in histogram)
    )


def render_conversations(console: Console, s: dict[str, Any]) -> None:
    """Conversations, their threads (turns per thread) and retries, when the log has any."""
    conv = s.get("conversations")
    if conv and conv["conversations"]:
        console.print(
            f"conversations: {count(conv['conversations'])} ({count(conv['multi_turn'])} with "
            f"more than one turn); threads: {count(conv.get('threads', 0))}, turns per thread "
            f"p50 {conv['turns_p50']:g}, p95 {conv['turns_p95']:g}, max {conv['turns_max']}; "
            f"retries (regenerated or edited at the same turn): {count(conv.get('retries', 0))}"
        )


def render_label_agreement(console: Console, s: dict[str, Any]) -> None:
    """NMI and ARI of the categories against a mapped ``label`` column, when there is one."""
    agreement = s.get("label_agreement")
    if agreement:
        console.print(
            f"categories vs mapped label ({plural(agreement['labels'], 'label')}, "
            f"{plural(agreement['calls'], 'call')}): "
            f"NMI {agreement['nmi']:.3f}, ARI {agreement['ari']:.3f}"
        )


def render_unknown_models(console: Console, s: dict[str, Any]) -> None:
    """The models without a price, and how to price them."""
    if not s["unknown_models"]:
        return
    unknown = Table(title="Models without a price (cost unknown, not $0)", title_justify="left")
    for name in ("model", "calls", "input", "output"):
        unknown.add_column(name, justify="left" if name == "model" else "right")
    for m in s["unknown_models"]:
        unknown.add_row(
            escape(m["model"]),
            count(m["calls"]),
            count(m["input_tokens"]),
            count(m["output_tokens"]),
        )
    console.print(unknown)
    names = {m["model"] for m in s["unknown_models"]}
    if names - {"(no model)"}:
        console.print(
            "[dim]price them in levers.toml as "
            + escape('[prices."MODEL"]')
            + " (input, cached_input, output: USD per million tokens)[/dim]"
        )
    if "(no model)" in names:
        console.print(
            "[dim]calls without a model cannot be priced: map the log's model field with "
            "--map model=FIELD[/dim]"
        )


def render_rejects(console: Console, s: dict[str, Any]) -> None:
    """The workspace's rejected records: their count and the first ten."""
    rejects = s["rejects"]
    if rejects["count"]:
        console.print(f"[red]rejected records in the workspace: {count(rejects['count'])}[/red]")
        for r_ in rejects["first"][:10]:
            console.print(f"  {r_['file']}:{r_['line']}: {r_['error']}", markup=False)


def render_categorization_warning(console: Console, s: dict[str, Any]) -> None:
    """The categorization's warning (too few queries to cluster, …), if any."""
    warning = s["categorization"].get("warning")
    if warning:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")


#: The summary's sections in the order :func:`render_summary` prints them; each takes the
#: console and the whole summary dict (``levers analyze --json``'s shape).
SUMMARY_SECTIONS = (
    render_overview,
    render_prices,
    render_spend_by_model,
    render_tokens,
    render_cost_checks,
    render_categories,
    render_repeats,
    render_conversations,
    render_label_agreement,
    render_unknown_models,
    render_rejects,
    render_categorization_warning,
)


def render_summary(console: Console, s: dict[str, Any]) -> None:
    """Print the analysis summary as Rich tables, one section after another
    (:data:`SUMMARY_SECTIONS`)."""
    for section in SUMMARY_SECTIONS:
        section(console, s)
