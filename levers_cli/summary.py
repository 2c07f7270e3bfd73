"""The analysis summary: where the money goes, read from the workspace with DuckDB.

Every figure here is evidence from the logs, except where a key says otherwise:
``tokens_source='estimated'`` calls were counted with tiktoken, and the monthly run rate
scales the observed spend by ``[analysis] days_per_month`` / the log's span (an assumption).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from levers_cli.config import Config
from levers_cli.enrich.conversations import conversation_stats
from levers_cli.errors import PeriodError
from levers_cli.schema import CATEGORY_ID
from levers_cli.store import Workspace

SCHEMA_VERSION = 1


def _rows(ws: Workspace, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cursor = ws.con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _one(ws: Workspace, sql: str) -> dict[str, Any]:
    return _rows(ws, sql)[0]


def span_and_spend(ws: Workspace, config: Config, table: str = "calls") -> dict[str, Any]:
    """Time span, spend and the monthly run rate (with the basis it rests on)."""
    row = _one(
        ws,
        f"""SELECT count(*) AS calls, count(*) FILTER (status = 'error') AS failed_calls,
                  count(*) FILTER (ts IS NULL) AS calls_without_ts,
                  min(ts) AS first_ts, max(ts) AS last_ts,
                  CASE WHEN count(cost_usd) = 0 THEN NULL ELSE sum(cost_usd)::DOUBLE END
                      AS spend_usd,
                  count(*) FILTER (cost_usd IS NULL) AS unpriced_calls,
                  coalesce(sum(cost_usd) FILTER (tokens_source = 'estimated'), 0)::DOUBLE
                      AS spend_on_estimated_tokens_usd,
                  count(*) FILTER (tokens_source = 'estimated') AS calls_with_estimated_tokens,
                  count(*) FILTER (trim(coalesce(response, '')) = '') AS calls_without_response,
                  count(*) FILTER (trim(coalesce(query, '')) = ''
                                   AND trim(coalesce(response, '')) = '') AS calls_without_text
           FROM {table}""",
    )
    first, last = row.pop("first_ts"), row.pop("last_ts")
    if row["calls"] == 0:
        row["spend_usd"] = 0.0
    span_hours = (last - first).total_seconds() / 3600 if first and last else None
    days = float(config.get("analysis", "days_per_month"))
    min_hours = float(config.get("analysis", "min_span_hours_for_run_rate"))
    monthly = None
    basis = (
        "no run rate: no calls in this period"
        if row["calls"] == 0
        else "no run rate: the log has no timestamps"
    )
    if span_hours is not None:
        if row["spend_usd"] is None:
            basis = "no run rate: no call could be priced"
        elif span_hours >= min_hours:
            monthly = row["spend_usd"] * days * 24 / span_hours
            basis = f"assumption: spend × {days:g} days / {span_hours / 24:.2f}-day span of the log"
            if span_hours < 24:
                basis += " (under a day: a rough extrapolation)"
        else:
            basis = f"no run rate: the log spans {span_hours:.2f} h (< {min_hours:g} h)"
    return {
        **row,
        "first_ts": first.isoformat() if first else None,
        "last_ts": last.isoformat() if last else None,
        "span_days": None if span_hours is None else span_hours / 24,
        "monthly_run_rate_usd": monthly,
        "monthly_run_rate_basis": basis,
    }


#: Calls a model provider served (not a gateway's own cache): the calls whose tokens are
#: provider tokens.
PROVIDER_CALL = "NOT coalesce(gateway_cache_hit, false)"


def spend_by_model(ws: Workspace, table: str = "calls") -> list[dict[str, Any]]:
    """Per provider and model: calls, provider tokens (gateway cache hits left out: the
    gateway answered them, their tokens replay the original call), gateway cache hits,
    spend (``None`` when unpriced), spend share."""
    f = f"FILTER ({PROVIDER_CALL})"
    return _rows(
        ws,
        f"""SELECT provider, model, count(*) AS calls,
                  count(*) FILTER (coalesce(gateway_cache_hit, false)) AS gateway_cache_hits,
                  coalesce(sum(input_tokens) {f}, 0) AS input_tokens,
                  coalesce(sum(cache_read_tokens) {f}, 0) AS cache_read_tokens,
                  coalesce(sum(cache_write_tokens) {f}, 0) AS cache_write_tokens,
                  coalesce(sum(output_tokens) {f}, 0) AS output_tokens,
                  coalesce(sum(reasoning_tokens) {f}, 0) AS reasoning_tokens,
                  count(*) FILTER (tokens_source = 'estimated') AS estimated_token_calls,
                  CASE WHEN count(cost_usd) = 0 THEN NULL ELSE sum(cost_usd)::DOUBLE END
                      AS spend_usd,
                  sum(cost_usd)::DOUBLE / nullif((SELECT sum(cost_usd) FROM {table}), 0)::DOUBLE
                      AS spend_share
           FROM {table} GROUP BY provider, model
           ORDER BY spend_usd DESC NULLS LAST, calls DESC, model""",
    )


def token_totals(ws: Workspace, table: str = "calls") -> dict[str, Any]:
    """Provider tokens: input (cached included), cache read, cache write (of which 1-hour),
    output (reasoning included), reasoning, audio in and out, over the calls a provider
    served; and the calls a gateway's own cache answered, with the tokens they replayed
    (not provider tokens)."""
    f = f"FILTER ({PROVIDER_CALL})"
    hit = "FILTER (coalesce(gateway_cache_hit, false))"
    return _one(
        ws,
        f"""SELECT coalesce(sum(input_tokens) {f}, 0) AS input_tokens,
                  coalesce(sum(cache_read_tokens) {f}, 0) AS cache_read_tokens,
                  coalesce(sum(cache_write_tokens) {f}, 0) AS cache_write_tokens,
                  coalesce(sum(cache_write_1h_tokens) {f}, 0) AS cache_write_1h_tokens,
                  coalesce(sum(output_tokens) {f}, 0) AS output_tokens,
                  coalesce(sum(reasoning_tokens) {f}, 0) AS reasoning_tokens,
                  coalesce(sum(input_audio_tokens) {f}, 0) AS input_audio_tokens,
                  coalesce(sum(output_audio_tokens) {f}, 0) AS output_audio_tokens,
                  count(*) {hit} AS gateway_cache_hit_calls,
                  coalesce(sum(input_tokens) {hit}, 0) AS gateway_replayed_input_tokens,
                  coalesce(sum(output_tokens) {hit}, 0) AS gateway_replayed_output_tokens
           FROM {table}""",
    )


def cost_checks(
    ws: Workspace, config: Config, table: str = "calls", limit: int = 20
) -> dict[str, Any]:
    """Logged cost vs levers' cost: where a log carries its own cost (LiteLLM ``spend`` /
    ``response_cost``, Langfuse ``costDetails``, Helicone ``cost``, OpenRouter
    ``usage.cost``: ``calls.logged_cost_usd``), the calls whose logged cost differs from
    ``cost_usd`` by more than ``[analysis] logged_cost_tolerance`` (a share of levers' cost;
    any logged cost of a call levers prices at $0), the biggest differences first.

    The totals use levers' cost: one price table prices every call of every log, and the
    simulation and levers price their changes with it, so a saving is measured against the
    same prices as the spend; a logged cost is missing on many calls and depends on the
    logger's own price table and version. A difference is a price to check (a negotiated
    rate goes in ``levers.toml [prices]``) or a logger's mistake.
    """
    tolerance = float(config.get("analysis", "logged_cost_tolerance"))
    differs = f"""logged_cost_usd IS NOT NULL AND cost_usd IS NOT NULL
        AND abs(logged_cost_usd - cost_usd) > {tolerance} * abs(cost_usd)
        AND abs(logged_cost_usd - cost_usd) > 1e-9"""
    totals = _one(
        ws,
        f"""SELECT count(*) FILTER (logged_cost_usd IS NOT NULL) AS calls_with_logged_cost,
                  coalesce(sum(logged_cost_usd) FILTER (cost_usd IS NOT NULL), 0)::DOUBLE
                      AS logged_usd,
                  coalesce(sum(cost_usd) FILTER (logged_cost_usd IS NOT NULL), 0)::DOUBLE
                      AS computed_usd,
                  count(*) FILTER ({differs}) AS differing_calls
           FROM {table}""",
    )
    largest = _rows(
        ws,
        f"""SELECT call_id, source_file, source_line, provider, model,
                  logged_cost_usd::DOUBLE AS logged_usd, cost_usd::DOUBLE AS computed_usd,
                  (logged_cost_usd - cost_usd)::DOUBLE AS difference_usd,
                  CASE WHEN cost_usd = 0 THEN NULL
                       ELSE ((logged_cost_usd - cost_usd) / cost_usd)::DOUBLE END
                      AS difference_share
           FROM {table} WHERE {differs}
           ORDER BY abs(logged_cost_usd - cost_usd) DESC, call_id LIMIT {int(limit)}""",
    )
    return {
        **totals,
        "tolerance": tolerance,
        "largest": largest,
        "totals_use": "computed",
        "why": (
            "spend and savings use levers' prices (genai-prices and its own sourced rows) "
            "for every call, so both rest on one price table; logged costs come from each "
            "logger's own table and are missing on many calls. A difference above the "
            "tolerance is a price to check (negotiated rates: levers.toml [prices])."
        ),
    }


def categories(ws: Workspace, table: str = "calls") -> list[dict[str, Any]]:
    """Per category: label ("feature › name"), app feature, keywords, exemplars, calls, spend
    and share, top model (the one with the most spend), p50/p95 output tokens; the
    uncategorized calls (``-1``) last."""
    found = _rows(
        ws,
        f"""WITH by_model AS (
             SELECT category_id, model, coalesce(sum(cost_usd), 0) AS spend, count(*) AS n
             FROM {table} WHERE category_id IS NOT NULL GROUP BY ALL),
           top AS (
             SELECT category_id, arg_max(model, (spend, n, model)) AS top_model
             FROM by_model GROUP BY category_id),
           per AS (
             SELECT category_id, count(*) AS calls, count(DISTINCT query_hash) AS distinct_queries,
                    sum(cost_usd)::DOUBLE AS spend_usd,
                    sum(cost_usd)::DOUBLE / nullif((SELECT sum(cost_usd) FROM {table}), 0)::DOUBLE
                        AS spend_share,
                    quantile_cont(output_tokens, 0.5) AS p50_output_tokens,
                    quantile_cont(output_tokens, 0.95) AS p95_output_tokens
             FROM {table} WHERE category_id IS NOT NULL GROUP BY category_id)
           SELECT per.*, top.top_model, c.label, c.feature, c.keywords, c.exemplars
           FROM per JOIN top USING (category_id) LEFT JOIN categories c USING (category_id)
           ORDER BY (per.category_id = -1), per.spend_usd DESC NULLS LAST, per.category_id""",
    )
    for row in found:
        if row[CATEGORY_ID] == -1:
            row["label"] = "(uncategorized)"
            row["keywords"], row["exemplars"] = [], []
    return found


def unknown_models(ws: Workspace, table: str = "calls") -> list[dict[str, Any]]:
    """Models with no price: calls and tokens (their cost is unknown, not $0)."""
    return _rows(
        ws,
        f"""SELECT coalesce(model, '(no model)') AS model, count(*) AS calls,
                  sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
           FROM {table} WHERE cost_usd IS NULL GROUP BY 1 ORDER BY calls DESC, model""",
    )


def repeats(ws: Workspace, table: str = "calls") -> dict[str, Any]:
    """Exact repeats of the normalized query: distinct queries, calls whose query was seen
    before (by any model, and by the same model), and how many distinct queries occur k times
    (``{k: count}``)."""
    row = _one(
        ws,
        f"""SELECT count(*) AS calls, count(DISTINCT query_hash) AS distinct_queries,
                  count(DISTINCT (model, query_hash)) AS distinct_model_queries
           FROM {table} WHERE trim(coalesce(query, '')) <> ''""",
    )
    histogram = ws.con.execute(
        f"""SELECT n, count(*) FROM (SELECT query_hash, count(*) AS n FROM {table}
           WHERE trim(coalesce(query, '')) <> '' GROUP BY query_hash) GROUP BY n ORDER BY n"""
    ).fetchall()
    repeated = row["calls"] - row["distinct_queries"]
    return {
        "distinct_queries": row["distinct_queries"],
        "repeated_calls": repeated,
        "exact_repeat_share": repeated / row["calls"] if row["calls"] else 0.0,
        # the same query sent again to the same model: what an exact response cache could serve
        "repeated_calls_same_model": row["calls"] - row["distinct_model_queries"],
        "occurrences": {str(n): int(k) for n, k in histogram},
    }


def label_agreement(ws: Workspace, table: str = "calls") -> dict[str, Any] | None:
    """NMI and ARI of the categories against a mapped ``label`` (``--map label=…``), noise
    counted as its own label; ``None`` when no call has a label.

    Source: scikit-learn ``normalized_mutual_info_score`` (arithmetic mean) and
    ``adjusted_rand_score``.
    """
    rows = ws.con.execute(
        f"""SELECT json_extract_string(metadata, '$.label') AS label, category_id FROM {table}
           WHERE json_extract_string(metadata, '$.label') IS NOT NULL
             AND category_id IS NOT NULL"""
    ).fetchall()
    if not rows:
        return None
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    truth = [r[0] for r in rows]
    found = [r[1] for r in rows]
    return {
        "calls": len(rows),
        "labels": len(set(truth)),
        "categories": len({c for c in found if c != -1}),
        "nmi": float(normalized_mutual_info_score(truth, found)),
        "ari": float(adjusted_rand_score(truth, found)),
    }


def rejects(ws: Workspace, limit: int = 20) -> dict[str, Any]:
    """All rejects in the workspace: count and the first ``limit`` (file, line, reason)."""
    return {
        "count": ws.count("rejects"),
        "first": _rows(
            ws,
            f"""SELECT source_file AS file, source_line AS line, error FROM rejects
                ORDER BY run_id, source_file, source_line LIMIT {int(limit)}""",
        ),
    }


_PERIOD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([hdw])\s*$")
_PERIOD_UNITS = {"h": 3600.0, "d": 86_400.0, "w": 7 * 86_400.0}
SCOPE_VIEW = "summary_calls"


def check_since(since: str) -> None:
    """Check a ``--since`` value's form before any work is done.

    Raises:
        PeriodError: neither a period (``7d``) nor an ISO date.
    """
    if _PERIOD.match(since):
        return
    try:
        datetime.fromisoformat(since.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PeriodError(
            f"--since {since!r} is not a period (7d, 24h, 2w) or an ISO date (2026-10-15)"
        ) from None


def since_cutoff(ws: Workspace, since: str) -> datetime:
    """The start of ``--since``: a period before the newest call (``7d``, ``24h``, ``2w``) —
    logs are read after the fact, so "now" is the end of the log — or an ISO date/time.

    Raises:
        PeriodError: ``since`` is neither.
    """
    match = _PERIOD.match(since)
    if match:
        newest = ws.con.execute("SELECT max(ts) FROM calls").fetchone()
        if not newest or newest[0] is None:
            raise PeriodError(f"--since {since}: the calls have no timestamps to count back from")
        seconds = float(match.group(1)) * _PERIOD_UNITS[match.group(2)]
        return newest[0] - timedelta(seconds=seconds)
    try:
        parsed = datetime.fromisoformat(since.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PeriodError(
            f"--since {since!r} is not a period (7d, 24h, 2w) or an ISO date (2026-10-15)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def summarize(
    ws: Workspace, config: Config, *, since: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The whole summary as one JSON-ready dict (``schema_version`` first).

    Args:
        ws: the workspace, after ingest, pricing and categorization.
        config: the effective configuration.
        since: restrict the figures to calls from this period on (see :func:`since_cutoff`);
            calls without a timestamp are then left out.
        **extra: further sections (the ingest run, pricing, categorization) to include.

    Raises:
        PeriodError: ``since`` cannot be read.
    """
    cutoff = since_cutoff(ws, since) if since else None
    ws.con.execute(f"DROP VIEW IF EXISTS {SCOPE_VIEW}")
    if cutoff is None:
        ws.con.execute(f"CREATE TEMP VIEW {SCOPE_VIEW} AS SELECT * FROM calls")
    else:  # views take no parameters: the cutoff is an ISO literal
        ws.con.execute(
            f"CREATE TEMP VIEW {SCOPE_VIEW} AS SELECT * FROM calls "
            f"WHERE ts >= TIMESTAMPTZ '{cutoff.isoformat()}'"
        )
    table = SCOPE_VIEW
    stats = conversation_stats(ws, table)
    result = {
        "schema_version": SCHEMA_VERSION,
        "workspace": ws.path,
        "since": None if cutoff is None else cutoff.isoformat(),
        **span_and_spend(ws, config, table),
        "tokens": token_totals(ws, table),
        "cost_checks": cost_checks(ws, config, table),
        "spend_by_model": spend_by_model(ws, table),
        "categories": categories(ws, table),
        "unknown_models": unknown_models(ws, table),
        "repeats": repeats(ws, table),
        "conversations": asdict(stats),
        "label_agreement": label_agreement(ws, table),
        "rejects": rejects(ws),
        **extra,
    }
    return json.loads(json.dumps(result, default=str))
