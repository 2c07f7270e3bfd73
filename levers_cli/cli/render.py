"""Rich rendering of the analysis summary (results on stdout, messages on stderr)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from levers_cli.report.fmt import usd
from levers_cli.schema import CATEGORY_ID

MAX_CATEGORY_ROWS = 25


def plural(n: int, word: str) -> str:
    """``1 call``, ``2 calls`` (with thousands separators)."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


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
    """``read N, stored S, duplicates D, rejected R``."""
    return (
        f"read {ingest['read']:,}, stored {ingest['stored']:,}, "
        f"duplicates {ingest['duplicates']:,}, rejected {ingest['rejected']:,}"
    )


def render_summary(console: Console, s: dict[str, Any]) -> None:
    """Print the analysis summary as Rich tables."""
    span = (
        f"{moment(s['first_ts'])} → {moment(s['last_ts'])} UTC ({s['span_days']:.2f} days)"
        if s.get("first_ts")
        else ("no calls in this period" if s["calls"] == 0 and s.get("since") else "no timestamps")
    )
    console.rule("[bold]levers analyze")
    if s.get("since"):
        console.print(f"[bold]period[/bold]           calls from {s['since']} on")
    console.print(f"calls            {count(s['calls'])}  (failed {count(s['failed_calls'])})")
    console.print(f"time span        {span}")
    console.print(
        f"spend            {usd(s['spend_usd'])}"
        + (
            f"  ({count(s['unpriced_calls'])} calls of unknown price not included)"
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
            f"{count(s['calls_with_estimated_tokens'])} calls (no usage in the log): "
            f"{usd(s['spend_on_estimated_tokens_usd'] if s['spend_usd'] is not None else None)}"
            " of the spend"
        )
    if s.get("calls_without_text"):
        console.print(
            f"[yellow]{plural(s['calls_without_text'], 'call')} logged without prompt or "
            "response text[/yellow] (counted and priced from their token counts; they cannot "
            "be categorized)"
        )
    console.print(f"[dim]prices: {s['prices']['source']}[/dim]")

    models = Table(title="Spend by model", title_justify="left")
    models.add_column("provider/model", overflow="fold")
    for name in ("calls", "input", "cached", "output", "spend", "share"):
        models.add_column(name, justify="right", no_wrap=True)
    for m in s["spend_by_model"]:
        models.add_row(
            f"{m['provider'] or '?'}/{m['model'] or '?'}",
            count(m["calls"]),
            count(m["input_tokens"]),
            count(m["cache_read_tokens"]),
            count(m["output_tokens"]),
            usd(m["spend_usd"]),
            share(m["spend_share"]),
        )
    console.print(models)
    t = s["tokens"]
    console.print(
        f"tokens: input {count(t['input_tokens'])} (cached {count(t['cache_read_tokens'])}, "
        f"cache write {count(t['cache_write_tokens'])}), output {count(t['output_tokens'])} "
        f"(reasoning {count(t['reasoning_tokens'])})"
    )

    cats = s["categories"]
    info = s["categorization"]
    table = Table(
        title=f"Categories: {info['categories']} found in {count(info['distinct_queries'])} "
        f"distinct queries ({info['method']}, {info['embedder']})",
        title_justify="left",
    )
    for name in ("id", "label", "calls", "share", "top model", "p50 out", "p95 out"):
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
            c["label"],
            count(c["calls"]),
            share(c["spend_share"]),
            c["top_model"] or "?",
            count(c["p50_output_tokens"]),
            count(c["p95_output_tokens"]),
        )
    console.print(table)
    hidden = len(cats) - len(shown)
    if hidden > 0:
        console.print(f"[dim]… {hidden} more categories in the JSON output[/dim]")

    r = s["repeats"]
    top = sorted(r["occurrences"].items(), key=lambda kv: -int(kv[1]))[:4]
    console.print(
        f"queries: {count(r['distinct_queries'])} distinct; exact repeats: "
        f"{plural(r['repeated_calls'], 'call')} ({share(r['exact_repeat_share'])}), "
        f"{plural(r['repeated_calls_same_model'], 'call')} to the same model; "
        "distinct queries by occurrences: " + ", ".join(f"{k}× {count(v)}" for k, v in top)
    )
    conv = s.get("conversations")
    if conv and conv["conversations"]:
        console.print(
            f"conversations: {count(conv['conversations'])} ({count(conv['multi_turn'])} with "
            f"more than one call); calls per conversation p50 {conv['turns_p50']:g}, "
            f"p95 {conv['turns_p95']:g}, max {conv['turns_max']}"
        )
    agreement = s.get("label_agreement")
    if agreement:
        console.print(
            f"categories vs mapped label ({agreement['labels']} labels, "
            f"{count(agreement['calls'])} calls): "
            f"NMI {agreement['nmi']:.3f}, ARI {agreement['ari']:.3f}"
        )
    if s["unknown_models"]:
        unknown = Table(title="Models without a price (cost unknown, not $0)", title_justify="left")
        for name in ("model", "calls", "input", "output"):
            unknown.add_column(name, justify="left" if name == "model" else "right")
        for m in s["unknown_models"]:
            unknown.add_row(
                m["model"], count(m["calls"]), count(m["input_tokens"]), count(m["output_tokens"])
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
    rejects = s["rejects"]
    if rejects["count"]:
        console.print(f"[red]rejected records in the workspace: {count(rejects['count'])}[/red]")
        for r_ in rejects["first"][:10]:
            console.print(f"  {r_['file']}:{r_['line']}: {r_['error']}", markup=False)
    if info.get("warning"):
        console.print(f"[yellow]warning:[/yellow] {info['warning']}")
