"""``helicone``: Helicone request exports.

No real Helicone export exists in ../shared/data. ``fixtures/helicone/export.jsonl`` is built
from the export docs (https://docs.helicone.ai/tools/export: ``npx @helicone/export``, JSONL
with ``--include-body``) and the query API
(https://docs.helicone.ai/rest/request/post-v1requestquery-clickhouse), with the columns that
``getRequestsClickhouse`` selects (Helicone/helicone valhalla/jawn/src/lib/stores/request/
request.ts). ``export.csv`` has the CSV column list of the export tool
(examples/export/typescript/index.ts).

What Helicone's token columns mean (see the adapter's docstring for the sources): prompt_tokens
excludes cache reads and writes, completion_tokens excludes reasoning tokens; so
input = prompt + cache read + cache write, output = completion + reasoning. A logged response
body's ``usage`` is used instead when present.

Prices (USD/MTok, checked against genai-prices): gpt-4o-mini 0.15 in / 0.075 cached / 0.60 out;
claude-3-5-haiku 0.80 / 0.08 cache read / 4.00 out; claude-sonnet-4-5 3.00 / 3.75 cache
write / 15.00 out.
"""

from __future__ import annotations

import json
from decimal import Decimal

from levers_cli.config import load_config
from levers_cli.enrich.prices import price_calls
from levers_cli.ingest.formats.helicone import HeliconeAdapter
from levers_cli.ingest.pipeline import ingest_files
from tests.helpers import FIXTURES

EXPORT = FIXTURES / "helicone" / "export.jsonl"


def calls(ws) -> dict[str, tuple]:
    price_calls(ws, load_config(None))
    return {
        r[0]: r[1:]
        for r in ws.con.execute(
            """SELECT call_id, provider, input_tokens, cache_read_tokens, cache_write_tokens,
               output_tokens, reasoning_tokens, status, error, logged_cost_usd, cost_usd, query,
               response, latency_ms, metadata FROM calls"""
        ).fetchall()
    }


def test_export_jsonl_detected_normalized_reconciled(ws):
    result = ingest_files(ws, [str(EXPORT)])
    assert result.files[0].format == "helicone"
    # 5 lines = 4 stored + 1 rejected (request_created_at "yesterday")
    assert (result.read, result.stored, result.duplicates, result.rejected) == (5, 4, 0, 1)
    assert result.read == result.stored + result.duplicates + result.rejected
    assert "request_created_at" in ws.con.execute("SELECT error FROM rejects").fetchone()[0]
    got = calls(ws)
    # 1: from the body's usage (prompt 2,000 incl. 1,024 cached), not the columns (976 + 1,024);
    # 976 × 0.15 + 1,024 × 0.075 + 100 × 0.60 = 146.4 + 76.8 + 60 = 283.2 µ$ = Helicone's cost
    one = got["req-1"]
    assert one[:7] == ("openai", 2000, 1024, 0, 100, 0, "ok")
    assert one[9] == one[8] == Decimal("0.0002832")
    assert one[10:13] == ("How do I reset my password?", "Click 'Forgot password'.", 812.0)
    meta = json.loads(one[13])
    assert meta["session_id"] == "sess-1" and meta["App"] == "support"
    assert meta["user"] == "user-42" and meta["params"] == {"temperature": 0.2, "max_tokens": 256}
    # 2: columns only; 20 + 2,000 read + 0 written = 2,020;
    # 20 × 0.80 + 2,000 × 0.08 + 100 × 4.00 = 16 + 160 + 400 = 576 µ$
    assert got["req-2"][:7] == ("anthropic", 2020, 2000, 0, 100, 0, "ok")
    assert got["req-2"][9] == Decimal("0.000576") and got["req-2"][10] == ""
    # 3: 12 + 0 + 1,500 written = 1,512 input; 250 completion + 50 reasoning = 300 output;
    # 12 × 3.00 + 1,500 × 3.75 + 300 × 15.00 = 36 + 5,625 + 4,500 = 10,161 µ$
    assert got["req-3"][:7] == ("anthropic", 1512, 0, 1500, 300, 50, "ok")
    assert got["req-3"][9] == Decimal("0.010161")
    assert json.loads(got["req-3"][13])["session_name"] == "triage"
    # 4: HTTP 429 with the provider's error body
    assert got["req-4"][6] == "error"
    assert got["req-4"][7].startswith("Rate limit reached for gpt-4o-mini in organization")
    assert got["req-4"][1:5] == (0, 0, 0, 0) and got["req-4"][9] == Decimal(0)


def test_export_csv(ws):
    result = ingest_files(ws, [str(FIXTURES / "helicone" / "export.csv")])
    assert (result.files[0].format, result.stored, result.rejected) == ("helicone", 1, 0)
    got = calls(ws)["resp-10"]
    # 120 prompt + 30 completion, no cache columns: 120 × 0.15 + 30 × 0.60 = 18 + 18 = 36 µ$
    assert got[1:7] == (120, 0, 0, 30, 0, "ok")
    assert got[8] == got[9] == Decimal("0.000036")
    assert got[10] == "How do I reset my password?" and got[12] == 930.0


def test_adapter_directly():
    adapter = HeliconeAdapter()
    record = json.loads(EXPORT.read_text().splitlines()[1])
    assert adapter.sniff(record)
    assert not adapter.sniff({"request_id": "x", "spend": 1, "startTime": "…"})  # SpendLogs
    row = adapter.normalize(record)
    assert row["messages"] == [] and row["query"] == ""  # body placeholder: not logged
    cached = dict(record, cache_reference_id="6a1c9d4e-0000-4000-8000-000000000001")
    hit = adapter.normalize(cached)
    assert hit["metadata"]["helicone_cache_hit"] is True
    assert hit["gateway_cache_hit"] is True  # served by Helicone's cache: priced $0
    assert row["gateway_cache_hit"] is False
