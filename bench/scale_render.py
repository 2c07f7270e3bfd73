"""Render ``bench/results/scale-*.json`` (written by ``bench/run.py``) as ``scale.md``, with the
targets of the issue "Fast at real scale" beside the measured figures, and the hand-written
notes in ``bench/results/scale-notes.md`` (profiles, what dominates) appended."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _scale_section(name: str, r: dict[str, Any]) -> list[str]:
    m = r["machine"]
    ceiling = r.get("duckdb_read_json")
    ingest_rate = r["ingest"]["records_per_s"]
    c = r["categorization"]
    lines = [
        f"## {name}: {r['calls']:,} calls ({r['bytes'] / 2**20:,.0f} MiB JSONL)",
        "",
        f"Machine: {m['cores']} cores, {m['ram_gb']} GB RAM, Python {m['python']}, {m['os']}; "
        f"load average {m['loadavg_before']} before, {m.get('loadavg_after')} after "
        "(the machine was shared with other work).",
        "",
        f"Embedder: **{r['embedder_choice']['name']}** ({r['embedder_choice']['reason']}); "
        f"{c['distinct_queries']:,} distinct queries, {c['categories']} categories, "
        f"{c['uncategorized_calls']:,} uncategorized calls; {c['method']}.",
        "",
        "| step | seconds | CPU seconds | peak RSS after (MB) |",
        "|---|---:|---:|---:|",
    ]
    for step, v in r["steps"].items():
        late = " (stopped: time limit)" if v.get("timed_out") else ""
        in_categorize = step in ("embed", "cluster (fit + assign)", "labels + write categories")
        cpu = (
            f"{v['cpu_seconds']:,.1f}"
            if "cpu_seconds" in v
            else ("(in categorize)" if in_categorize else "—")
        )
        lines.append(f"| {step}{late} | {v['seconds']:,.1f} | {cpu} | {v['peak_rss_mb']:,} |")
    lines += ["", "| figure | measured | target |", "|---|---:|---|"]
    lines.append(
        f"| ingest rate | {ingest_rate:,} records/s | ≥ 50 % of DuckDB read_json |"
        if ceiling is None
        else f"| ingest rate vs DuckDB `read_json` ({ceiling['records_per_s']:,.0f} records/s) "
        f"| {ingest_rate:,} records/s = {100 * ingest_rate / ceiling['records_per_s']:.0f} % "
        f"| ≥ 50 %: {_mark(ingest_rate >= 0.5 * ceiling['records_per_s'])} |"
    )
    lines.append(f"| embedding rate | {c['queries_per_s']:,} queries/s | |")
    analyze_target = 480 if r["calls"] <= 150_000 else 600
    if "analyze_cpu_seconds" in r:
        lines.append(
            f"| CPU seconds: analyze / of it categorize (embed + cluster + labels) / simulate "
            f"| {r['analyze_cpu_seconds']:,.0f} / {r['categorize_cpu_seconds']:,.0f} / "
            f"{r['simulate_cpu_seconds']:,.0f} s | |"
        )
    lines.append(
        f"| `levers analyze` end to end | {r['analyze_seconds']:,.0f} s | "
        f"≤ {analyze_target} s: {_mark(r['analyze_seconds'] <= analyze_target)} |"
    )
    stopped = r.get("levers_timed_out")
    lines.append(
        "| `levers simulate` (7 levers + waterfall) | "
        + (
            f"> {r['simulate_seconds']:,.0f} s (stopped: {', '.join(stopped)})"
            + (
                f"; {r['full_simulate_seconds']:,.0f} s run to completion (section below)"
                if r.get("full_simulate_seconds")
                else ""
            )
            if stopped
            else f"{r['simulate_seconds']:,.0f} s"
        )
        + f" | ≤ 60 s at 1M: {_mark(not stopped and r['simulate_seconds'] <= 60)} |"
    )
    lines.append(f"| total wall | {r['total_seconds']:,.0f} s | |")
    # ru_maxrss only grows: the value after the last analyze step is analyze's peak
    analyze_rss = r["steps"].get("summary", {}).get("peak_rss_mb")
    if analyze_rss is not None:
        lines.append(
            f"| peak RSS of `levers analyze` | {analyze_rss:,} MB "
            f"| ≤ 6 GB at 1M: {_mark(analyze_rss <= 6144)} |"
        )
    lines.append(f"| peak RSS of the whole run (analyze + simulate) | {r['peak_rss_mb']:,} MB | |")
    route = r.get("route")
    if route:
        goal = 5.0 if r["embedder_choice"]["name"] == "minilm" else 0.2
        lines.append(
            f"| route latency p50 / p99 ({route['queries']} queries, {route['how']}) | "
            f"{route['p50_ms']} / {route['p99_ms']} ms | p99 ≤ {goal} ms: "
            f"{_mark(route['p99_ms'] <= goal)} |"
        )
    return [*lines, ""]


def _clinc_section(r: dict[str, Any]) -> list[str]:
    lines = [
        f"## Category quality cost of sampling: {r['dataset']} ({r['utterances']:,})",
        "",
        f"Embedder {r['embedder']} ({r['embed_seconds']} s to embed). NMI against the 150 "
        "intents; uncategorized counted as one cluster. Target: cost ≤ 0.01 NMI.",
        "",
        "| fitted on | seconds | categories | uncategorized | NMI | cost vs full fit |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    full = r["runs"][0]["nmi"]
    for run in r["runs"]:
        cost = full - run["nmi"]
        lines.append(
            f"| {run['fitted_on']:,} | {run['seconds']} | {run['categories']} | "
            f"{100 * run['uncategorized_share']:.1f} % | {run['nmi']:.4f} | "
            + ("(full fit)" if run is r["runs"][0] else f"{cost:+.4f}: {_mark(cost <= 0.01)}")
            + " |"
        )
    return [*lines, ""]


def _simulate_section(name: str, r: dict[str, Any]) -> list[str]:
    m = r["machine"]
    lines = [
        f"## `levers simulate` run to completion: {name} ({r['calls']:,} calls)",
        "",
        "`bench/simulate_levers.py` on a workspace `levers analyze` filled: each lever's "
        f"analysis and the waterfall in one process. Load average {m['loadavg_before'][0]} "
        f"before, {m['loadavg_after'][0]} after (2 cores).",
        "",
        "| step | seconds | CPU seconds | peak RSS so far (MB) |",
        "|---|---:|---:|---:|",
    ]
    for step, values in r["steps"].items():
        lines.append(
            f"| {step} | {values['seconds']} | {values.get('cpu_seconds', '')} | "
            f"{values['peak_rss_mb']:,} |"
        )
    lines += [
        f"| **simulate** | **{r['simulate_seconds']}** | {r['simulate_cpu_seconds']} | "
        f"{r['peak_rss_mb']:,} |",
        "",
        f"Target ≤ 60 s at 1M calls: {_mark(r['simulate_seconds'] <= 60)}.",
        "",
    ]
    return lines


def render(folder: Path) -> str:
    """``scale.md`` text from every result file in ``folder``."""
    out = [
        "# Scale benchmark",
        "",
        "Made by `python bench/run.py …` (see bench/README.md); every figure below is measured,",
        "one process per run. Logs: `bench/make_logs.py` (the sample month, copied and reworded).",
        "",
    ]
    runs = [(path, json.loads(path.read_text())) for path in folder.glob("scale-calls-*.json")]
    for path, data in sorted(runs, key=lambda item: item[1]["calls"]):
        name = path.stem.removeprefix("scale-")
        full = folder / f"scale-simulate-{name}.json"
        if full.exists():  # the same log's simulate without a lever time limit
            data["full_simulate_seconds"] = json.loads(full.read_text())["simulate_seconds"]
        out += _scale_section(name, data)
    for path in sorted(folder.glob("scale-simulate-*.json")):
        out += _simulate_section(
            path.stem.removeprefix("scale-simulate-"), json.loads(path.read_text())
        )
    for path in sorted(folder.glob("scale-clinc-*.json")):
        out += _clinc_section(json.loads(path.read_text()))
    notes = folder / "scale-notes.md"
    if notes.exists():
        out += [notes.read_text()]
    return "\n".join(out)
