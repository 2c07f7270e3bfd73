"""``litellm-payload`` (StandardLoggingPayload) and ``litellm-spendlogs`` (LiteLLM_SpendLogs).

Real payloads (../shared/data/litellm-fixtures, BerriAI/litellm test fixtures): 1
StandardLoggingPayload, 1 SpendLogs row, and the raw OpenAI and Anthropic responses of
LiteLLM's rubrik sample data (read by ``openai-chat``/``anthropic`` when wrapped in a pair,
and by ``litellm-payload`` as a payload's ``response``): 4 real payloads.
Doc-based fixtures (``fixtures/litellm/``): ``payloads.jsonl`` follows the real payload's shape
(docs.litellm.ai/docs/proxy/logging_spec); its Anthropic usage follows ``calculate_usage`` in
``litellm/llms/anthropic/chat/transformation.py`` and the v1.80.11 payload quoted in
BerriAI/litellm#11364. ``spend_logs.csv`` has the LiteLLM_SpendLogs columns with ``metadata``
as the JSON string ``get_logging_payload`` writes (spend_tracking_utils.py).

Prices (USD/MTok, checked against genai-prices): gpt-4o 2.50 / 10.00; gpt-4o-mini 0.15 in /
0.075 cached / 0.60 out; gpt-4.1 2.00 / 8.00; claude-sonnet-4-5 3.00 / 0.30 cache read /
3.75 cache write / 15.00 out.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from levers_cli.config import load_config
from levers_cli.enrich.prices import price_calls
from levers_cli.ingest.formats.litellm import (
    LiteLLMPayloadAdapter,
    LiteLLMSpendLogsAdapter,
    litellm_tokens,
)
from levers_cli.ingest.formats.openai_chat import OpenAIChatAdapter
from levers_cli.ingest.pipeline import ingest_files
from tests.helpers import DATA, FIXTURES, need_shared

REAL = DATA / "litellm-fixtures"
COLUMNS = """call_id, format, provider, model, input_tokens, cache_read_tokens,
    cache_write_tokens, output_tokens, status, error, logged_cost_usd, cost_usd, query, response,
    latency_ms, ts"""


def calls(ws) -> dict[str, tuple]:
    price_calls(ws, load_config(None))
    return {r[0]: r[1:] for r in ws.con.execute(f"SELECT {COLUMNS} FROM calls").fetchall()}


def test_real_standard_logging_payload(ws):
    path = need_shared(REAL / "standard_logging_payload.json")
    record = json.loads(path.read_text())
    # messages beside a `response` but no `request`: not an OpenAI pair (pairs.pair_response)
    assert not OpenAIChatAdapter().sniff(record)
    result = ingest_files(ws, [str(path)])
    assert (result.files[0].format, result.stored) == ("litellm-payload", 1)
    row = calls(ws)["chatcmpl-2299b6a2-82a3-465a-b47c-04e685a2227f"]
    # 10 prompt + 20 completion tokens; 10 × 2.50 + 20 × 10.00 = 25 + 200 = 225 µ$,
    # the payload's own response_cost
    assert row[:9] == ("litellm-payload", "openai", "gpt-4o", 10, 0, 0, 20, "ok", None)
    assert row[9] == row[10] == Decimal("0.000225")
    assert row[11:13] == ("Hello, world!", "hi")
    # startTime 09:20:46.847371 → endTime 09:20:46.851954: 4.583 ms
    assert row[13] == 4.583 and row[14] == datetime(2025, 1, 24, 9, 20, 46, 847371, tzinfo=UTC)


def test_real_spend_logs_row_without_text_is_counted_and_priced(ws):
    path = need_shared(REAL / "spend_logs_payload.json")
    result = ingest_files(ws, [str(path)])
    assert (result.files[0].format, result.stored) == ("litellm-spendlogs", 1)
    row = calls(ws)["chatcmpl-2283081b-dc89-41f6-93e6-d4f914774027"]
    # messages and response are "{}": no text, tokens from the row; 225 µ$ as above
    assert row[3:8] == (10, 0, 0, 20, "ok")
    assert row[9] == row[10] == Decimal("0.000225")
    assert row[11:13] == ("", "")
    session = ws.con.execute("SELECT json_extract_string(metadata, '$.session_id') FROM calls")
    assert session.fetchone()[0] == "1234567890"


def test_real_raw_responses_wrapped_in_pairs(ws, tmp_path):
    openai = json.loads(need_shared(REAL / "openai_text_response.json").read_text())
    anthropic = json.loads(need_shared(REAL / "anthropic_text_response.json").read_text())
    question = [{"role": "user", "content": "Who are you?"}]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"request": {"messages": question}, "response": openai}) + "\n")
    payload = json.loads((REAL / "standard_logging_payload.json").read_text())
    payload.update(
        id="anthropic-messages-1",
        call_type="anthropic_messages",
        custom_llm_provider="anthropic",
        model="claude-sonnet-4-20250514",
        messages=question,
        response=anthropic,
        prompt_tokens=400,
        completion_tokens=23,
    )
    payloads = tmp_path / "payload.jsonl"
    payloads.write_text(json.dumps(payload) + "\n")
    result = ingest_files(ws, [str(pairs), str(payloads)])
    assert [f.format for f in result.files] == ["openai-chat", "litellm-payload"]
    got = calls(ws)
    # gpt-4.1: 59 × 2.00 + 22 × 8.00 = 118 + 176 = 294 µ$
    assert got["chatcmpl-CvS0Cx4lUPl82S99mm9Z5nr82TtG9"][3:7] == (59, 0, 0, 22)
    assert got["chatcmpl-CvS0Cx4lUPl82S99mm9Z5nr82TtG9"][10] == Decimal("0.000294")
    # Anthropic-native usage in the payload: 400 + 0 + 0 input, 23 output;
    # 400 × 3.00 + 23 × 15.00 = 1,200 + 345 = 1,545 µ$
    anthropic_row = got["anthropic-messages-1"]
    assert anthropic_row[3:7] == (400, 0, 0, 23) and anthropic_row[10] == Decimal("0.001545")
    assert anthropic_row[12].startswith("I'm Claude")


def test_payload_fixture_cache_conventions_failure_and_reconciliation(ws):
    result = ingest_files(ws, [str(FIXTURES / "litellm" / "payloads.jsonl")])
    assert result.files[0].format == "litellm-payload"
    assert (result.read, result.stored, result.duplicates, result.rejected) == (5, 4, 0, 1)
    assert result.read == result.stored + result.duplicates + result.rejected
    assert "prompt_tokens" in ws.con.execute("SELECT error FROM rejects").fetchone()[0]
    got = calls(ws)
    # current LiteLLM: prompt_tokens 11,512 = 12 + 1,500 written + 10,000 read, kept as is;
    # 12 × 3.00 + 10,000 × 0.30 + 1,500 × 3.75 + 250 × 15.00 = 36 + 3,000 + 5,625 + 3,750 µ$
    assert got["chatcmpl-fixture-1"][3:7] == (11512, 10000, 1500, 250)
    assert got["chatcmpl-fixture-1"][9:11] == (Decimal("0.012411"), Decimal("0.012411"))
    # a release that put only the reads in prompt_tokens (10,012): the 1,500 written are added
    assert got["chatcmpl-fixture-2"][3:7] == (11512, 10000, 1500, 250)
    assert got["chatcmpl-fixture-2"][10] == Decimal("0.012411")
    logged = ws.con.execute(
        """SELECT json_extract(metadata, '$.prompt_tokens_logged') FROM calls
           WHERE call_id = 'chatcmpl-fixture-2'"""
    ).fetchone()[0]
    assert json.loads(logged) == 10012
    assert got["chatcmpl-fixture-3"][7:9] == (
        "error",
        "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached",
    )
    assert got["chatcmpl-fixture-3"][3:7] == (0, 0, 0, 0)
    # gpt-4o-mini, 2,000 prompt incl. 1,024 cached: 976 × 0.15 + 1,024 × 0.075 + 100 × 0.60
    # = 146.4 + 76.8 + 60 = 283.2 µ$
    assert got["chatcmpl-fixture-4"][3:7] == (2000, 1024, 0, 100)
    assert got["chatcmpl-fixture-4"][10] == Decimal("0.0002832")
    meta = json.loads(
        ws.con.execute(
            "SELECT metadata FROM calls WHERE call_id = 'chatcmpl-fixture-4'"
        ).fetchone()[0]
    )
    assert meta["feature"] == "faq" and meta["user_api_key_alias"] == "support-bot"
    assert meta["tags"] == ["prod"] and meta["params"] == {"max_tokens": 512, "temperature": 0}


def test_spend_logs_csv_export(ws):
    result = ingest_files(ws, [str(FIXTURES / "litellm" / "spend_logs.csv")])
    assert result.files[0].format == "litellm-spendlogs"
    assert (result.read, result.stored, result.duplicates, result.rejected) == (4, 3, 0, 1)
    assert "spend" in ws.con.execute("SELECT error FROM rejects").fetchone()[0]
    got = calls(ws)
    # usage_object in the metadata JSON string: 11,512 = 12 + 1,500 + 10,000 (as above)
    assert got["chatcmpl-spend-1"][3:7] == (11512, 10000, 1500, 250)
    assert got["chatcmpl-spend-1"][9:11] == (Decimal("0.012411"), Decimal("0.012411"))
    assert got["chatcmpl-spend-1"][11] == ""  # no prompt stored: counted, priced, no text
    # request body from proxy_server_request; 283.2 µ$ as above; 0.4 s latency
    assert got["chatcmpl-spend-2"][3:7] == (2000, 1024, 0, 100)
    assert got["chatcmpl-spend-2"][10:12] == (Decimal("0.0002832"), "How do I reset my password?")
    assert got["chatcmpl-spend-2"][13] == 400.0
    assert got["chatcmpl-spend-3"][7:9] == (
        "error",
        "litellm.BadRequestError: AnthropicException - prompt is too long",
    )


def test_spend_logs_with_json_columns_as_objects_beats_openai_chat(ws, tmp_path):
    row = json.loads(need_shared(REAL / "spend_logs_payload.json").read_text())
    row["messages"] = [{"role": "user", "content": "Hello, world!"}]
    row["response"] = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}
    row["metadata"] = json.loads(row["metadata"])
    path = tmp_path / "spend.jsonl"
    path.write_text(json.dumps(row) + "\n")
    assert not OpenAIChatAdapter().sniff(row)
    assert LiteLLMSpendLogsAdapter().sniff(row)
    assert not LiteLLMPayloadAdapter().sniff(row)
    result = ingest_files(ws, [str(path)])
    assert (result.files[0].format, result.stored) == ("litellm-spendlogs", 1)
    assert ws.con.execute("SELECT query, response FROM calls").fetchone() == ("Hello, world!", "hi")


def test_litellm_tokens_rules():
    meta: dict = {}
    # OpenAI-style: cached tokens inside prompt_tokens
    usage = {"prompt_tokens_details": {"cached_tokens": 30}}
    assert litellm_tokens(100, 10, usage, meta)["input_tokens"] == 100
    # mid-2024 Anthropic: prompt_tokens = input only → 5 + 30 read + 40 written = 75
    usage = {"cache_read_input_tokens": 30, "cache_creation_input_tokens": 40}
    assert litellm_tokens(5, 10, usage, meta)["input_tokens"] == 75
    assert meta["prompt_tokens_logged"] == 5
    # reasoning is part of completion_tokens
    usage = {"completion_tokens_details": {"reasoning_tokens": 7}}
    assert litellm_tokens(10, 9, usage, {})["reasoning_tokens"] == 7
