"""``anthropic`` adapter: whole and streamed Messages responses.

Real payloads: the 27 Messages API interactions of the ``llm-anthropic`` VCR cassettes
(../shared/data/api-cassettes/llm-anthropic/test_anthropic/*.yaml; all streamed as SSE, two
more interactions there are image downloads), and LiteLLM's ``anthropic_text_response.json``.
Doc-based fixture ``fixtures/anthropic/streams.jsonl``: the streaming guide
(https://docs.anthropic.com/en/docs/build-with-claude/streaming) event sequence with the
prompt-caching guide's usage buckets (the cassettes hold no cache hits).

Prices (USD/MTok, checked against genai-prices): claude-sonnet-4-5 3.00 in / 0.30 cache read /
3.75 cache write / 15.00 out; claude-3-5-haiku 0.80 / 0.08 / 1.00 / 4.00; claude-haiku-4-5
1.00 / 5.00; claude-opus-4-1 15.00 / 75.00; claude-sonnet-4 3.00 / 15.00.
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal

import pytest
import yaml

from levers_cli.config import load_config
from levers_cli.enrich.prices import price_calls
from levers_cli.errors import RecordError
from levers_cli.ingest.formats.anthropic import AnthropicAdapter, reassemble_stream
from levers_cli.ingest.pipeline import ingest_files
from tests.helpers import DATA, FIXTURES, need_shared

CASSETTES = DATA / "api-cassettes" / "llm-anthropic" / "test_anthropic"

#: (cassette, interaction) → (input_tokens, output_tokens, thinking_tokens), read by hand from
#: each stream's final ``message_delta`` usage. Every cassette has cache_creation_input_tokens =
#: cache_read_input_tokens = 0, so normalized input = input_tokens + 0 + 0.
EXPECTED = {
    ("test_async_prompt", 0): (17, 10, 0),
    ("test_async_prompt", 1): (32, 16, 0),
    ("test_fixed_version_tool_chain_regression", 0): (563, 37, 0),
    ("test_fixed_version_tool_chain_regression", 1): (617, 41, 0),
    ("test_fixed_version_tool_chain_with_thinking_display_regression", 0): (598, 92, 53),
    ("test_fixed_version_tool_chain_with_thinking_display_regression", 1): (707, 89, 0),
    ("test_image_prompt", 0): (83, 9, 0),
    ("test_image_with_no_prompt", 0): (76, 104, 0),
    ("test_opus_46_adaptive_thinking", 0): (34, 44, 0),
    ("test_opus_46_prompt", 0): (17, 20, 0),
    ("test_opus_46_schema", 0): (231, 118, 0),
    ("test_parts_thinking", 0): (46, 234, 0),
    ("test_prompt", 0): (17, 10, 0),
    ("test_prompt_with_prefill_and_stop_sequences", 0): (16, 28, 0),
    ("test_schema_prompt", 0): (230, 94, 0),
    ("test_schema_prompt_async", 0): (231, 101, 0),
    ("test_sonnet_46_effort_without_thinking", 0): (17, 12, 0),
    ("test_sonnet_46_prompt", 0): (17, 12, 0),
    ("test_stream_events_text", 0): (10, 4, 0),
    ("test_stream_events_thinking", 0): (46, 133, 0),
    ("test_stream_events_tool_calls", 0): (543, 40, 0),
    ("test_thinking_prompt", 0): (46, 84, 0),
    ("test_tools", 0): (542, 62, 0),
    ("test_tools", 1): (678, 82, 0),
    ("test_url_prompt", 2): (273, 206, 0),
    # web search: message_start says input 2,039; the cumulative message_delta says 10,423
    ("test_web_search", 0): (10423, 341, 0),
    ("test_web_search_tool_result_ordering", 0): (10423, 341, 0),
}


def cassette_records() -> list[tuple[tuple[str, int], dict]]:
    """Every Messages API interaction of the cassettes as a ``{request, response}`` pair,
    the response being the recorded SSE text."""
    folder = need_shared(CASSETTES)
    pairs = []
    for path in sorted(folder.glob("*.yaml")):
        interactions = yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]
        for index, interaction in enumerate(interactions):
            if not interaction["request"]["uri"].endswith("/v1/messages"):
                continue
            body = interaction["response"]["body"]["string"]
            if isinstance(body, bytes):
                body = gzip.decompress(body).decode("utf-8") if body[:2] == b"\x1f\x8b" else body
            request = json.loads(interaction["request"]["body"])
            pairs.append(((path.stem, index), {"request": request, "response": body}))
    return pairs


def sse_to_events(text: str) -> list[dict]:
    return [json.loads(line[5:]) for line in text.split("\n") if line.startswith("data:")]


def write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def test_every_cassette_interaction_normalized_by_hand():
    records = cassette_records()
    assert len(records) == 27 == len(EXPECTED)  # 27 real streamed payloads
    adapter = AnthropicAdapter()
    for key, record in records:
        assert adapter.sniff(record), key
        row = adapter.normalize(record)
        uncached, output, thinking = EXPECTED[key]
        assert row["input_tokens"] == uncached + 0 + 0, key
        assert (row["cache_read_tokens"], row["cache_write_tokens"]) == (0, 0), key
        assert (row["output_tokens"], row["reasoning_tokens"]) == (output, thinking), key
        assert row["status"] == "ok" and row["metadata"]["streamed"] is True, key
        assert "stream_incomplete" not in row["metadata"], key


def test_cassettes_end_to_end_as_sse_text_and_as_event_lists(ws, tmp_path):
    records = cassette_records()
    as_events = [{**r, "response": sse_to_events(r["response"])} for _, r in records]
    sse_file = write_jsonl(tmp_path / "sse.jsonl", [r for _, r in records])
    events_file = write_jsonl(tmp_path / "events.jsonl", as_events)
    result = ingest_files(ws, [sse_file, events_file])
    assert [f.format for f in result.files] == ["anthropic", "anthropic"]
    # the two web-search cassettes recorded the same message (one id), and the event-list
    # file repeats all 27: 26 distinct calls, 1 + 27 duplicates
    assert (result.read, result.stored, result.duplicates, result.rejected) == (54, 26, 28, 0)
    total_in, total_out = ws.con.execute(
        "SELECT sum(input_tokens), sum(output_tokens) FROM calls"
    ).fetchone()
    assert total_in == sum(v[0] for v in EXPECTED.values()) - 10423
    assert total_out == sum(v[1] for v in EXPECTED.values()) - 341
    price_calls(ws, load_config(None))
    cost = dict(ws.con.execute("SELECT call_id, cost_usd FROM calls").fetchall())
    # test_prompt, claude-sonnet-4-5: 17 × 3.00 + 10 × 15.00 = 51 + 150 = 201 µ$
    assert cost["msg_017A4s3HAsrqf5d2WvBmrpLr"] == Decimal("0.000201")
    # test_web_search, claude-opus-4-1: 10,423 × 15 + 341 × 75 = 156,345 + 25,575 = 181,920 µ$
    # plus its one search (usage.server_tool_use.web_search_requests = 1) at $10 per 1,000
    # searches (Anthropic pricing page, "Web search"): 10,000 µ$ → 191,920 µ$
    web = ws.con.execute(
        "SELECT cost_usd, server_tool_uses FROM calls "
        "WHERE model = 'claude-opus-4-1-20250805' LIMIT 1"
    ).fetchone()
    assert web[0] == Decimal("0.19192")
    assert json.loads(web[1]) == {"web_search": 1}
    # test_stream_events_tool_calls, claude-haiku-4-5: 543 × 1 + 40 × 5 = 743 µ$
    tool = ws.con.execute(
        "SELECT cost_usd, finish_reason, response FROM calls WHERE input_tokens = 543"
    ).fetchone()
    assert tool[0] == Decimal("0.000743") and tool[1] == "tool_calls"
    assert json.loads(tool[2])["name"] == "pelican_name_generator"


def test_thinking_and_tool_use_are_reassembled():
    records = dict(cassette_records())
    key = ("test_fixed_version_tool_chain_with_thinking_display_regression", 0)
    message, complete = reassemble_stream(records[key]["response"])
    assert complete and message["stop_reason"] == "tool_use"
    thinking, tool = message["content"]
    assert thinking["type"] == "thinking" and thinking["thinking"].startswith("The user wants me")
    assert thinking["signature"].startswith("EoQDCm0I")
    assert tool == {
        "type": "tool_use",
        "id": "toolu_01825dXWLSoJwCst1qTsiWdb",
        "name": "fixed_version",
        "input": {},
        "caller": {"type": "direct"},
    }
    web, _ = reassemble_stream(records[("test_web_search", 0)]["response"])
    assert web["content"][0]["input"] == {"query": "San Francisco weather today"}
    assert web["usage"]["input_tokens"] == 10423  # cumulative delta replaced message_start's 2,039
    assert web["usage"]["server_tool_use"] == {"web_search_requests": 1}


def test_doc_stream_fixture_with_cache_buckets(ws):
    path = FIXTURES / "anthropic" / "streams.jsonl"
    result = ingest_files(ws, [str(path)])
    assert result.files[0].format == "anthropic"
    # 4 lines: two streams, one stream that reported an error event, one broken SSE body
    assert (result.read, result.stored, result.duplicates, result.rejected) == (4, 3, 0, 1)
    assert result.read == result.stored + result.duplicates + result.rejected
    assert (
        "stream event data is not JSON" in ws.con.execute("SELECT error FROM rejects").fetchone()[0]
    )
    price_calls(ws, load_config(None))
    rows = {
        r[0]: r[1:]
        for r in ws.con.execute(
            """SELECT call_id, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,
               finish_reason, response, cost_usd, system_prompt, latency_ms FROM calls"""
        ).fetchall()
    }
    first = rows["msg_stream_cache_1"]
    # 12 uncached + 1,500 written + 10,000 read = 11,512 input tokens
    assert first[:5] == (11512, 10000, 1500, 250, "tool_calls")
    assert first[5].startswith("Let me check the weather.\n")
    assert json.loads(first[5].split("\n", 1)[1])["input"] == {"location": "San Francisco, CA"}
    # 12 × 3.00 + 10,000 × 0.30 + 1,500 × 3.75 + 250 × 15.00 = 36 + 3,000 + 5,625 + 3,750 µ$
    assert first[6] == Decimal("0.012411")
    assert first[7].startswith("You are a weather bot.") and first[8] == 2300.0
    second = rows["msg_stream_cache_2"]
    # SSE text with CRLF line ends and a U+2028 inside a JSON string: 20 + 0 + 2,000 = 2,020
    assert second[:5] == (2020, 2000, 0, 100, "length")
    assert second[5] == "Paris is the capital\u2028of France."
    # 20 × 0.80 + 2,000 × 0.08 + 100 × 4.00 = 16 + 160 + 400 = 576 µ$
    assert second[6] == Decimal("0.000576")
    failed = ws.con.execute(
        """SELECT status, error, input_tokens, output_tokens, cost_usd FROM calls
           WHERE status = 'error'"""
    ).fetchone()
    assert failed == ("error", "Overloaded", 0, 0, Decimal(0))


def test_real_litellm_anthropic_response_wrapped_in_a_pair(ws, tmp_path):
    path = need_shared(DATA / "litellm-fixtures" / "anthropic_text_response.json")
    pair = {
        "request": {
            "model": "claude-sonnet-4-20250514",
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": "Who are you?"}],
        },
        "response": json.loads(path.read_text()),
    }
    ingest_files(ws, [write_jsonl(tmp_path / "pair.jsonl", [pair])])
    price_calls(ws, load_config(None))
    row = ws.con.execute(
        """SELECT format, call_id, input_tokens, cache_read_tokens, cache_write_tokens,
           output_tokens, response, cost_usd FROM calls"""
    ).fetchone()
    # 400 + 0 + 0 input, 23 output; 400 × 3.00 + 23 × 15.00 = 1,200 + 345 = 1,545 µ$
    assert row[:6] == ("anthropic", "msg_01BKLTooRJ4Hsm6SyuY6ThYN", 400, 0, 0, 23)
    assert row[6].startswith("I'm Claude") and row[7] == Decimal("0.001545")


def test_stream_edge_cases():
    start = {
        "type": "message_start",
        "message": {"id": "m", "model": "claude-sonnet-4-5", "content": [], "usage": {}},
    }
    cut = [start, {"type": "content_block_delta", "index": 0, "delta": {"text": "x"}}]
    message, complete = reassemble_stream(cut)
    assert not complete and message["content"] == [{"type": "text", "text": ""}]
    with pytest.raises(RecordError, match="no message_start"):
        reassemble_stream('event: ping\ndata: {"type": "ping"}\n\n')
    row = AnthropicAdapter().normalize(
        {"request": {"messages": [{"role": "user", "content": "hi"}]}, "response": cut}
    )
    assert row["metadata"]["stream_incomplete"] is True
    usage = {"input_tokens": 5, "output_tokens": 3, "output_tokens_details": {"thinking_tokens": 4}}
    with pytest.raises(RecordError, match="thinking_tokens 4 exceed output_tokens 3"):
        AnthropicAdapter().normalize(
            {
                "request": {"messages": [{"role": "user", "content": "hi"}]},
                "response": {"type": "message", "content": [], "usage": usage},
            }
        )
