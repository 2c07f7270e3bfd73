"""Langfuse observations (``langfuse`` adapter).

No real Langfuse export is in ../shared/data (its README: "Langfuse and Helicone export
samples: no data files found"), so this adapter is tested on 0 real payloads. The fixtures in
``tests/fixtures/langfuse/`` were written from Langfuse's documentation (langfuse/langfuse-docs):

- ``observations_api.jsonl``: line 1 is the "Sample Response" row of
  ``content/docs/api-and-data-platform/features/observations-api.mdx`` (v2 API, camelCase);
  line 2 the exclusive-bucket example of ``content/docs/observability/features/
  token-and-cost-tracking.mdx`` (17,903 prompt tokens of which 17,817 cached → ``input: 86``);
  line 3 a v1 API row (``model``, ``calculatedTotalCost``, parsed input/output, Anthropic
  cache buckets); then a reasoning row, a row whose ``total`` shows ``input`` held the cache,
  a SPAN (skipped: no model call), a failed (level ERROR) generation, a duplicate of line 1
  and a negative count.
- ``blob_observations_v2.jsonl``: rows of the enriched ``observations_v2/`` export with the
  columns of ``content/docs/api-and-data-platform/features/blob-storage-export-fields.mdx``
  (snake_case, ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC times, JSON-encoded input and parameters).
- ``trace.json``: ``GET /api/public/traces/{traceId}`` (a trace with nested observations).
- ``openai_chat_v1_api_page.json`` and ``openai_chat_v2_session.jsonl``: one 10-turn support
  chat as Langfuse's OpenAI integration logs it, one trace per call (langfuse/langfuse-python
  ``tests/test_openai.py``: the generation's ``input`` is the request's message list, its
  ``output`` the assistant message, ``modelParameters.max_tokens`` ``"inf"``, the name
  ``OpenAI-generation``, a new trace for each call unless one is given). The first is a
  ``GET /api/public/observations`` page, every field of the v1 ``APIObservation``
  (langfuse/langfuse ``web/src/features/public-api/types/observations.ts``: no ``sessionId``,
  costs as ``calculatedTotalCost`` and ``costDetails``, newest first) with an EVENT and a
  SPAN among the generations; the second the v2 rows (``fields=core,basic,time,io,metadata,
  model,usage``, observations-api.mdx) of the same chat with a ``sessionId``, two turns run
  inside a SPAN of the app and a feedback EVENT. Token counts and costs are gpt-4o-mini's
  (0.15 / 0.60 USD per million input / output tokens), written out per call.
The Parquet and CSV exports of the same page are written by the tests below.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from levers_cli.cli import app
from levers_cli.config import load_config
from levers_cli.enrich.conversations import link_conversations
from levers_cli.enrich.prices import price_calls
from levers_cli.errors import RecordError
from levers_cli.ingest.formats.base import SkipRecord
from levers_cli.ingest.formats.langfuse import LangfuseAdapter, langfuse_usage
from levers_cli.ingest.pipeline import ingest_files
from tests.helpers import FIXTURES

FOLDER = FIXTURES / "langfuse"
CHAT_V1 = FOLDER / "openai_chat_v1_api_page.json"
CHAT_V2 = FOLDER / "openai_chat_v2_session.jsonl"
SESSION = "chat-2025-11-03-cust-20931"
COLUMNS = """call_id, provider, model, conversation_id, query, response, system_prompt,
    input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
    tokens_source, status, error, latency_ms, max_tokens, logged_cost_usd, cost_usd"""


def rows(ws):
    found = ws.con.execute(f"SELECT {COLUMNS} FROM calls").fetchall()
    names = [c.strip() for c in COLUMNS.split(",")]
    return {row[0]: dict(zip(names, row, strict=True)) for row in found}


def metadata(ws, call_id):
    value = ws.con.execute("SELECT metadata FROM calls WHERE call_id = ?", [call_id]).fetchone()
    return json.loads(value[0])


def test_api_export_counts_and_rejects(ws):
    result = ingest_files(ws, [str(FOLDER / "observations_api.jsonl")])
    assert result.files[0].format == "langfuse"
    # 9 lines = 6 stored + 1 duplicate (line 8 repeats line 1) + 1 skipped (the SPAN on line 6)
    # + 1 rejected (a negative count)
    counts = (result.read, result.stored, result.duplicates, result.skipped, result.rejected)
    assert counts == (9, 6, 1, 1, 1)
    assert result.skipped_by_reason == {"Langfuse SPAN observation": 1}
    rejects = ws.con.execute("SELECT source_line, error FROM rejects ORDER BY 1").fetchall()
    assert rejects == [(9, "field 'usage_details.input': negative token count: -5")]
    run = ws.con.execute("SELECT records_read, stored, duplicates, skipped, rejected FROM runs")
    assert run.fetchone() == (9, 6, 1, 1, 1)


def test_api_export_tokens_and_costs(ws):
    ingest_files(ws, [str(FOLDER / "observations_api.jsonl")])
    price_calls(ws, load_config(None))
    got = rows(ws)

    sample = got["support-chat-7-950dc53a-gen"]
    assert sample["provider"] == "openai" and sample["model"] == "gpt-4o"
    assert sample["conversation_id"] == "support-chat-session"  # sessionId
    assert (sample["query"], sample["response"]) == (
        "Perfect.",
        "You're all set. Have a great day!",
    )
    assert (sample["input_tokens"], sample["output_tokens"], sample["tokens_source"]) == (
        98,
        68,
        "usage",
    )
    assert sample["latency_ms"] == 581.0  # 16:09:01.456 - 16:09:00.875
    assert sample["logged_cost_usd"] == Decimal("0.002530000")  # Langfuse's totalCost, kept
    # gpt-4o list price: 98 × 2.50/M + 68 × 10.00/M = 0.000245 + 0.00068 = 0.000925
    assert sample["cost_usd"] == Decimal("0.000925000")
    meta = metadata(ws, "support-chat-7-950dc53a-gen")
    assert meta["time_to_first_token_ms"] == pytest.approx(120.0)  # 00.995 - 00.875
    assert meta["tags"] == ["support", "chat"] and meta["trace_name"] == "support-chat"
    assert meta["params"] == {"temperature": 0.2} and meta["release"] == "v1.4.2"

    cached = got["gen-cached"]
    # buckets are exclusive: input = 86 + 17,817 cached = 17,903 (the provider's prompt_tokens)
    assert (cached["input_tokens"], cached["cache_read_tokens"], cached["output_tokens"]) == (
        17903,
        17817,
        188,
    )
    assert cached["conversation_id"] is None  # no session: left to linking by resent messages
    assert cached["system_prompt"] == "Answer from the context." and cached["max_tokens"] == 512
    # 86 × 2.50/M + 17,817 × 1.25/M + 188 × 10/M = 0.000215 + 0.02227125 + 0.00188 = 0.02436625
    assert cached["cost_usd"] == Decimal("0.024366250")

    claude = got["gen-claude"]
    # input 10 + cache read 1,000 + cache write 100 = 1,110
    assert (
        claude["provider"],
        claude["input_tokens"],
        claude["cache_read_tokens"],
        claude["cache_write_tokens"],
        claude["output_tokens"],
    ) == ("anthropic", 1110, 1000, 100, 2)
    assert (claude["response"], claude["system_prompt"], claude["max_tokens"]) == (
        "4",
        "Be brief.",
        64,
    )
    assert claude["logged_cost_usd"] == Decimal("0.000735000")  # v1 calculatedTotalCost
    # claude-sonnet-4-5: 10 × 3/M + 1,000 × 0.30/M + 100 × 3.75/M + 2 × 15/M
    #   = 0.00003 + 0.0003 + 0.000375 + 0.00003 = 0.000735
    assert claude["cost_usd"] == Decimal("0.000735000")

    o3 = got["gen-o3"]
    # output 50 + reasoning 200 = 250 (output includes reasoning)
    assert (o3["output_tokens"], o3["reasoning_tokens"], o3["system_prompt"]) == (
        250,
        200,
        "Think step by step.",
    )
    # o3-mini (genai-prices 1.10 in / 4.40 out): 100 × 1.10/M + 250 × 4.40/M = 0.00011 + 0.0011
    assert o3["cost_usd"] == Decimal("0.001210000")

    inclusive = got["gen-inclusive"]
    # total 520 = 500 + 20: `input` already held the 400 cached tokens, so it is not re-added
    assert (inclusive["input_tokens"], inclusive["cache_read_tokens"]) == (500, 400)
    assert metadata(ws, "gen-inclusive")["usage_inclusive"] == "input"
    # gpt-4o-mini: 100 × 0.15/M + 400 × 0.075/M + 20 × 0.60/M = 0.000015 + 0.00003 + 0.000012
    assert inclusive["cost_usd"] == Decimal("0.000057000")

    failed = got["gen-error"]
    assert (failed["status"], failed["error"]) == ("error", "Rate limit exceeded")
    assert (failed["input_tokens"], failed["output_tokens"]) == (0, 0)  # not billed


def test_blob_export_snake_case(ws):
    result = ingest_files(ws, [str(FOLDER / "blob_observations_v2.jsonl")])
    # the EVENT is skipped, not rejected: no model call
    assert (result.read, result.stored, result.skipped, result.rejected) == (3, 2, 1, 0)
    price_calls(ws, load_config(None))
    got = rows(ws)
    first = got["obs-blob-1"]
    assert (first["model"], first["conversation_id"], first["query"], first["response"]) == (
        "gpt-4o-mini",
        "s-1",
        "Reset my password",
        "Use the link.",
    )
    assert first["system_prompt"] == "You are terse." and first["max_tokens"] == 256
    assert first["latency_ms"] == 1500.0  # 13:46:21.463 - 13:46:19.963
    # gpt-4o-mini: 40 × 0.15/M + 7 × 0.60/M = 0.000006 + 0.0000042 = 0.0000102
    assert first["cost_usd"] == Decimal("0.000010200") == first["logged_cost_usd"]
    ts = ws.con.execute("SELECT ts FROM calls WHERE call_id = 'obs-blob-1'").fetchone()[0]
    assert ts == datetime(2024, 5, 29, 13, 46, 19, 963000, tzinfo=UTC)
    meta = metadata(ws, "obs-blob-1")
    assert (meta["feature"], meta["user_id"], meta["tags"], meta["environment"]) == (
        "faq",
        "u-1",
        ["faq"],
        "production",
    )
    second = got["obs-blob-3"]
    assert (second["conversation_id"], second["query"]) == ("s-1", "Which link?")
    # 55 × 0.15/M + 9 × 0.60/M = 0.00000825 + 0.0000054 = 0.00001365
    assert second["cost_usd"] == Decimal("0.000013650")


def test_blob_export_parquet(ws, tmp_path):
    """The Parquet export (blob-storage-export-fields.mdx "Notes on Parquet exports"): maps for
    ``usage_details``/``metadata`` (read back as key/value pairs) and real timestamps."""
    usage_type = pa.map_(pa.string(), pa.int64())
    table = pa.table(
        {
            "id": ["pq-1", "pq-2"],
            "trace_id": ["t-pq", "t-pq"],
            "type": ["GENERATION", "SPAN"],
            "start_time": pa.array(
                [datetime(2025, 1, 2, 3, 4, 5), datetime(2025, 1, 2, 3, 4, 4)], pa.timestamp("ms")
            ),
            "end_time": pa.array([datetime(2025, 1, 2, 3, 4, 7), None], pa.timestamp("ms")),
            "provided_model_name": ["gpt-4o", ""],
            "input": ['[{"role":"user","content":"Explain caching"}]', ""],
            "output": ["Reuse work.", ""],
            "usage_details": pa.array(
                [[("input", 200), ("input_cache_read", 800), ("output", 50)], []], usage_type
            ),
            "metadata": pa.array([[("feature", "docs")], []], pa.map_(pa.string(), pa.string())),
            "session_id": ["s-pq", "s-pq"],
            "level": ["DEFAULT", "DEFAULT"],
        }
    )
    path = tmp_path / "observations_v2.parquet"
    pq.write_table(table, path)
    result = ingest_files(ws, [str(path)])
    assert (result.files[0].format, result.read, result.stored, result.skipped) == (
        "langfuse",
        2,
        1,
        1,
    )
    price_calls(ws, load_config(None))
    row = rows(ws)["pq-1"]
    # input 200 + cache read 800 = 1,000
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (1000, 800, 50)
    assert (row["latency_ms"], row["conversation_id"]) == (2000.0, "s-pq")
    # gpt-4o: 200 × 2.50/M + 800 × 1.25/M + 50 × 10/M = 0.0005 + 0.001 + 0.0005 = 0.002
    assert row["cost_usd"] == Decimal("0.002000000")
    assert metadata(ws, "pq-1")["feature"] == "docs"


def test_blob_export_csv(ws, tmp_path):
    """CSV export: objects and arrays arrive as JSON-encoded strings, numbers as text."""
    path = tmp_path / "observations_v2.csv"
    path.write_text(
        "id,trace_id,type,start_time,end_time,provided_model_name,input,output,"
        "usage_details,cost_details,session_id,level,status_message\n"
        "c-1,t-c,GENERATION,2024-05-29 13:46:19.963000,2024-05-29 13:46:20.963000,gpt-4o-mini,"
        'Hello,Hi there,"{""input"":40,""output"":7}","{""total"":0.0000102}",,DEFAULT,\n',
        encoding="utf-8",
    )
    result = ingest_files(ws, [str(path)])
    assert (result.files[0].format, result.stored) == ("langfuse", 1)
    row = rows(ws)["c-1"]
    assert (row["input_tokens"], row["output_tokens"], row["conversation_id"]) == (40, 7, None)
    assert (row["query"], row["response"], row["latency_ms"]) == ("Hello", "Hi there", 1000.0)
    assert row["logged_cost_usd"] == Decimal("0.000010200")


def test_trace_with_nested_observations(ws):
    result = ingest_files(ws, [str(FOLDER / "trace.json")])
    # the trace's SPAN and EVENT are its structure, not calls: one GENERATION, one call
    assert (result.files[0].format, result.read, result.stored, result.rejected) == (
        "langfuse",
        1,
        1,
        0,
    )
    row = rows(ws)["gen-1"]
    assert (row["conversation_id"], row["query"], row["response"]) == (
        "session-42",
        "Capital of France?",
        "Paris.",
    )
    meta = metadata(ws, "gen-1")
    assert (meta["user_id"], meta["tags"], meta["trace_name"], meta["parent_observation_id"]) == (
        "user-7",
        ["beta"],
        "chat-turn",
        "span-1",
    )


def test_api_page_and_adapter_directly():
    adapter = LangfuseAdapter()
    lines = (FOLDER / "observations_api.jsonl").read_text(encoding="utf-8").splitlines()
    observations = [json.loads(line) for line in lines]
    page = {"data": observations[:7], "meta": {"cursor": None}}
    assert adapter.sniff(page) and adapter.sniff(observations[0])
    assert not adapter.sniff({"request": {"messages": []}, "response": {"choices": []}})
    calls = adapter.normalize(page)
    # the page's 6 generations; its SPAN is skipped inside a page
    assert [c["call_id"] for c in calls] == [
        "support-chat-7-950dc53a-gen",
        "gen-cached",
        "gen-claude",
        "gen-o3",
        "gen-inclusive",
        "gen-error",
    ]
    with pytest.raises(SkipRecord, match=r"^Langfuse SPAN observation$"):
        adapter.normalize(observations[5])
    with pytest.raises(SkipRecord, match=r"^Langfuse API page without a GENERATION$"):
        adapter.normalize({"data": [observations[5]], "meta": {"cursor": None}})
    # GET /api/public/traces lists observation ids only: nothing to read, said so
    with pytest.raises(RecordError, match=r"their ids only \(GET /api/public/traces"):
        adapter.normalize({"id": "t", "timestamp": "2025-01-01T00:00:00Z", "observations": ["a"]})


def test_usage_buckets():
    meta: dict = {}
    # Anthropic 5m/1h cache writes and audio input are input buckets too: 5 + 3 + 100 + 50 = 158
    usage = langfuse_usage(
        {
            "input": 5,
            "input_audio_tokens": 3,
            "input_cache_creation_5m": 100,
            "input_cache_creation_1h": 50,
            "output": 9,
            "some_other_token_count": 10,
        },
        meta,
    )
    assert usage == {
        "input_tokens": 158,
        "cache_read_tokens": 0,
        "cache_write_tokens": 150,
        "output_tokens": 9,
        "reasoning_tokens": 0,
    }
    assert meta == {"usage_other": {"some_other_token_count": 10}}
    # total 300 = 100 + 200: `output` already held the 150 reasoning tokens
    meta = {}
    usage = langfuse_usage(
        {"input": 100, "output": 200, "output_reasoning_tokens": 150, "total": 300}, meta
    )
    assert (usage["output_tokens"], usage["reasoning_tokens"], meta) == (
        200,
        150,
        {"usage_inclusive": "output"},
    )
    # a total that fits no reading is kept as logged and flagged
    meta = {}
    usage = langfuse_usage({"input": 10, "output": 5, "total": 99}, meta)
    assert (usage["input_tokens"], usage["output_tokens"], meta) == (
        10,
        5,
        {"usage_total_mismatch": 99},
    )
    assert langfuse_usage({"input": 0, "output": 0, "total": 0}, {}) == {}  # absent → estimated
    # OpenAI usage with an extra key is stored flat, unmapped (token-and-cost-tracking.mdx)
    meta = {}
    usage = langfuse_usage(
        {"prompt_tokens": 10, "completion_tokens": 25, "total_tokens": 35, "cost": 0.1}, meta
    )
    assert (usage["input_tokens"], usage["output_tokens"], meta) == (
        10,
        25,
        {"usage_other": {"cost": 0.1}},
    )


def conversations(ws):
    """(conversation_id, turns in time order) of every conversation."""
    return ws.con.execute(
        "SELECT conversation_id, list(turn ORDER BY ts) FROM calls GROUP BY 1"
    ).fetchall()


def test_ten_turn_chat_one_trace_per_call_joined_by_session(ws):
    result = ingest_files(ws, [str(CHAT_V2)])
    # 13 observations: 10 GENERATIONs stored, 2 SPANs and 1 EVENT skipped, nothing rejected
    counts = (result.read, result.stored, result.duplicates, result.skipped, result.rejected)
    assert counts == (13, 10, 0, 3, 0)
    assert result.skipped_by_reason == {
        "Langfuse SPAN observation": 2,
        "Langfuse EVENT observation": 1,
    }
    traces = ws.con.execute("SELECT count(DISTINCT metadata->>'trace_id') FROM calls").fetchone()
    assert traces == (10,)  # one trace per call
    link_conversations(ws)
    assert conversations(ws) == [(SESSION, list(range(1, 11)))]


def test_ten_turn_chat_without_session_joined_by_resent_messages(ws):
    result = ingest_files(ws, [str(CHAT_V1)])
    # one API page: a record that counts once per GENERATION (its EVENT and SPAN are the
    # page's other rows, not calls)
    assert (result.read, result.stored, result.skipped, result.rejected) == (10, 10, 0, 0)
    link_conversations(ws)
    page = json.loads(CHAT_V1.read_text(encoding="utf-8"))["data"]
    generations = sorted(
        (o for o in page if o["type"] == "GENERATION"), key=lambda o: o["startTime"]
    )
    # each call resends the chat so far: all ten are one conversation, named after the first
    assert conversations(ws) == [(f"conv:{generations[0]['id']}", list(range(1, 11)))]
    price_calls(ws, load_config(None))
    last = rows(ws)[generations[-1]["id"]]
    # turn 10: 403 × 0.15/M + 10 × 0.60/M = 0.00006045 + 0.000006 = 0.00006645
    assert (last["input_tokens"], last["output_tokens"]) == (403, 10)
    assert last["cost_usd"] == last["logged_cost_usd"] == Decimal("0.000066450")
    assert last["max_tokens"] is None  # "inf": no cap


def test_bare_api_observation_without_trace_is_read(ws, tmp_path):
    """GET /api/public/observations/{id}: one v1 row; its ``traceId`` may be null."""
    page = json.loads(CHAT_V1.read_text(encoding="utf-8"))["data"]
    newest = next(o for o in page if o["type"] == "GENERATION")  # turn 10
    path = tmp_path / "observation.json"
    path.write_text(json.dumps(dict(newest, traceId=None)), encoding="utf-8")
    result = ingest_files(ws, [str(path)])
    assert (result.files[0].format, result.stored, result.rejected) == ("langfuse", 1, 0)
    row = rows(ws)[newest["id"]]
    assert (row["conversation_id"], row["query"]) == (None, "Thanks, that's all for now.")
    assert row["logged_cost_usd"] == Decimal("0.000066450")
    # costDetails' total is the logged cost when no total field is given (blob exports)
    bare = {k: v for k, v in newest.items() if not k.startswith("calculated")}
    assert LangfuseAdapter().normalize(bare)["logged_cost_usd"] == pytest.approx(6.645e-05)


def test_weekly_job_on_a_langfuse_export_passes_with_default_options(tmp_path):
    env = {"COLUMNS": "120", "NO_COLOR": "1"}
    args = ["ingest", str(CHAT_V2), "-w", str(tmp_path / "w.duckdb")]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output  # --max-rejects 0: spans are no rejects
    assert "read 13, stored 10, duplicates 0, skipped 3, rejected 0" in result.stderr
    assert (
        "skipped 3 records (no model call): Langfuse SPAN observation: 2, "
        "Langfuse EVENT observation: 1"
    ) in result.stderr
    again = CliRunner().invoke(app, [*args, "--json"], env=env)
    assert again.exit_code == 0
    data = json.loads(again.stdout)
    assert (data["read"], data["duplicates"], data["skipped"], data["rejected"]) == (13, 10, 3, 0)
    assert data["files"][0]["skipped_by_reason"] == {
        "Langfuse SPAN observation": 2,
        "Langfuse EVENT observation": 1,
    }
