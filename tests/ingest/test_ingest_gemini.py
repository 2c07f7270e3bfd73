"""Google Gemini (``gemini`` adapter): generateContent pairs, streams, Vertex AI batch output.

Real payloads (tests/fixtures/gemini/README.md names each source): 4 streamed calls —
3 ``streamGenerateContent`` chunk lists recorded by simonw/llm-gemini's VCR cassettes (two
thinking models, one function call) and 1 SSE stream recorded by pydantic-ai —, 1 whole
``generateContent`` response with an explicit cache (pydantic-ai), and 2 Vertex AI batch
prediction output lines (LiteLLM's docs). Token values are read off each payload's last
``usageMetadata`` by hand; costs use the Gemini API / Vertex AI price pages
(ai.google.dev/gemini-api/docs/pricing, cloud.google.com/vertex-ai/generative-ai/pricing):
gemini-2.5-flash $0.30 input, $0.03 cached input, $2.50 output (thinking included) per
million tokens; gemini-2.5-flash-lite $0.10 / $0.40, batch at 50 %; gemini-2.0-flash $0.10 /
$0.40. genai-prices agrees.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from levers_cli.config import load_config
from levers_cli.enrich.prices import price_calls
from levers_cli.errors import RecordError
from levers_cli.ingest import get_adapter
from levers_cli.ingest.formats.gemini import gemini_usage, model_name, parts_text
from levers_cli.ingest.pipeline import ingest_files
from tests.helpers import FIXTURES

GEMINI = FIXTURES / "gemini"
COLUMNS = """call_id, format, provider, model, query, response, system_prompt, input_tokens,
    cache_read_tokens, output_tokens, reasoning_tokens, finish_reason, status, is_batch,
    max_tokens, tokens_source, cost_usd, ts"""


def rows(ws) -> dict[str, dict]:
    cursor = ws.con.execute(f"SELECT {COLUMNS} FROM calls")
    names = [d[0] for d in cursor.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def test_streams_and_cached_call_end_to_end(ws):
    result = ingest_files(
        ws, [str(GEMINI / "streams.jsonl"), str(GEMINI / "generate_content.jsonl")]
    )
    assert [f.format for f in result.files] == ["gemini", "gemini"]
    assert (result.read, result.stored, result.rejected) == (5, 5, 0)
    price_calls(ws, load_config(None))
    got = rows(ws)
    # llm-gemini test_prompt: last chunk promptTokenCount 11, candidates 2, thoughts 291
    pelican = got["IopyaseNCL-s-8YP7urOoAY"]
    assert (pelican["model"], pelican["query"], pelican["response"]) == (
        "gemini-3.6-flash",
        "Name for a pet pelican, just the name",
        "Scoop",  # the thinking-summary part ("thought": true) is not the answer
    )
    assert (pelican["input_tokens"], pelican["output_tokens"], pelican["reasoning_tokens"]) == (
        11,
        2 + 291,
        291,
    )
    assert (pelican["provider"], pelican["finish_reason"], pelican["tokens_source"]) == (
        "google",
        "stop",
        "usage",
    )
    # test_tools: a function call (finishReason STOP) is a tool call; 32 in, 12 + 42 out
    tool = got["OYpyaqycKd2V_uMP65TsgA0"]
    assert tool["finish_reason"] == "tool_calls"
    assert json.loads(tool["response"]) == {
        "functionCall": {"args": {}, "name": "pelican_name_generator"}
    }
    assert (tool["input_tokens"], tool["output_tokens"], tool["reasoning_tokens"]) == (32, 54, 42)
    # pydantic-ai SSE stream (\r\n separated): text pieces joined; the last usage wins (13/8)
    sse = got["w1peaMz6INOvnvgPgYfPiQY"]
    assert (sse["model"], sse["response"], sse["system_prompt"]) == (
        "gemini-2.0-flash-exp",
        "The capital of France is Paris.\n",
        "You are a helpful chatbot.",
    )
    assert (sse["input_tokens"], sse["output_tokens"]) == (13, 8)
    # gemini-2.0-flash: 13 × 0.10 + 8 × 0.40 = 4.5 per million
    assert sse["cost_usd"] == Decimal("0.000004500")
    # explicit cache: promptTokenCount 3520 includes cachedContentTokenCount 3512
    cached = got["_1QYavqiB-6wqtsPxaKcuQw"]
    assert (cached["query"], cached["response"]) == ("Say the capital one more time.", "Paris.")
    assert (
        cached["input_tokens"],
        cached["cache_read_tokens"],
        cached["output_tokens"],
        cached["reasoning_tokens"],
    ) == (3520, 3512, 2 + 51, 51)
    # (3520 - 3512) × 0.30 + 3512 × 0.03 + 53 × 2.50 = 2.4 + 105.36 + 132.5 = 240.26 per million
    assert cached["cost_usd"] == Decimal("0.000240260")


def test_vertex_batch_prediction_output(ws):
    result = ingest_files(ws, [str(GEMINI / "vertex_batch_output.jsonl")])
    assert (result.files[0].format, result.stored) == ("gemini", 2)
    price_calls(ws, load_config(None))
    got = rows(ws)
    first = got["S8vNaIvKHdvshMIP_aOtuAg"]
    assert (first["system_prompt"], first["query"]) == (
        "You are a helpful assistant.",  # echoed as system_instruction (snake case)
        "Hello world!",
    )
    assert (first["input_tokens"], first["output_tokens"], first["max_tokens"]) == (9, 10, 10)
    assert (first["finish_reason"], first["is_batch"]) == ("length", True)  # MAX_TOKENS
    assert first["ts"].isoformat() == "2025-09-19T21:29:47.352000+00:00"  # processed_time
    # batch: (9 × 0.10 + 10 × 0.40) × 50 % = 2.45 per million
    assert first["cost_usd"] == Decimal("0.000002450")
    second = got["S8vNaOneHISShMIP28nA8QQ"]
    assert (second["response"], second["finish_reason"]) == (
        "I am unable to assist with this request.",
        "stop",
    )
    assert second["cost_usd"] == Decimal("0.000002250")  # (0.9 + 3.6) × 50 %


def test_failed_batch_line_and_blocked_prompt():
    adapter = get_adapter("gemini")
    failed = {
        "status": "Bad Request: contents is empty",
        "processed_time": "2025-09-19T21:29:47.352+00:00",
        "request": {"contents": [{"role": "user", "parts": [{"text": ""}]}]},
        "response": None,
    }
    assert adapter.sniff(failed)
    call = adapter.normalize(failed)
    assert (call["status"], call["error"], call["is_batch"]) == (
        "error",
        "Bad Request: contents is empty",
        True,
    )
    blocked = {
        "request": {"contents": [{"role": "user", "parts": [{"text": "x"}]}]},
        "response": {
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
        },
    }
    call = adapter.normalize(blocked)
    assert (call["status"], call["error"], call["input_tokens"]) == (
        "error",
        "prompt blocked: SAFETY",
        7,
    )


def test_usage_rules():
    # cached tokens are part of the prompt; thoughts and tool-use prompt tokens are added
    usage = {
        "promptTokenCount": 1000,
        "cachedContentTokenCount": 600,
        "candidatesTokenCount": 40,
        "thoughtsTokenCount": 100,
        "toolUsePromptTokenCount": 250,
        "totalTokenCount": 1390,
    }
    assert gemini_usage(usage) == {
        "input_tokens": 1250,
        "cache_read_tokens": 600,
        "cache_write_tokens": 0,
        "output_tokens": 140,
        "reasoning_tokens": 100,
    }
    with pytest.raises(RecordError, match="cachedContentTokenCount"):
        gemini_usage({"promptTokenCount": 5, "cachedContentTokenCount": 6})


def test_model_names_and_parts():
    assert model_name("models/gemini-2.5-flash") == "gemini-2.5-flash"
    assert (
        model_name("publishers/google/models/gemini-2.0-flash-001@default")
        == "gemini-2.0-flash-001"
    )
    parts = [
        {"text": "thinking…", "thought": True},
        {"text": "Look:"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0…"}},
        {"fileData": {"fileUri": "gs://b/v.mp4", "mimeType": "video/mp4"}},
    ]
    assert parts_text(parts) == "Look:\n[image/png]\n[gs://b/v.mp4]"


def test_does_not_claim_other_formats():
    adapter = get_adapter("gemini")
    chat = {"request": {"messages": []}, "response": {"choices": [], "usage": {}}}
    responses = {"request": {"input": "x"}, "response": {"object": "response", "output": []}}
    anthropic = {"request": {"messages": []}, "response": {"type": "message", "content": []}}
    assert not any(adapter.sniff(r) for r in (chat, responses, anthropic))
