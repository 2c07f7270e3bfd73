"""OpenTelemetry GenAI spans (``otel`` adapter).

Real payloads (tests/fixtures/otel/README.md names each source): 2 spans captured from
instrumented apps (an OpenLit and a Traceloop/OpenLLMetry OpenAI span, as Langfuse's OTel
ingestion tests keep them, protobufjs-decoded), 2 OpenInference LLM spans (the examples of
OpenInference's ``spec/llm_spans.md``), 3 GenAI semantic-conventions examples (the tables of
``examples-llm-calls.md`` written as OTLP JSON here) and the OTLP project's own example trace
(a server span, no LLM call). Prices (OpenAI pricing page, USD per million tokens):
gpt-3.5-turbo(-0125) 0.50 / 1.50, gpt-3.5-turbo-0613 1.50 / 2.00, gpt-4-0613 30 / 60.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from levers_cli.config import load_config
from levers_cli.enrich.prices import price_calls
from levers_cli.ingest import get_adapter
from levers_cli.ingest.formats.base import SkipRecord
from levers_cli.ingest.formats.otel import NO_LLM_SPAN, any_value, decode_attributes, whole_number
from levers_cli.ingest.formats.otel_content import is_llm_span, span_call, usage_of
from levers_cli.ingest.pipeline import ingest_files
from tests.helpers import FIXTURES

OTEL = FIXTURES / "otel"
COLUMNS = """call_id, format, provider, model, query, response, system_prompt, input_tokens,
    cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, finish_reason,
    status, error, max_tokens, latency_ms, ts, cost_usd, logged_cost_usd, messages, metadata"""


def rows(ws) -> list[dict]:
    cursor = ws.con.execute(f"SELECT {COLUMNS} FROM calls ORDER BY source_file, source_line")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def attrs(values: dict) -> list[dict]:
    """OTLP ``[{key, value: AnyValue}]`` attributes of a mapping."""
    out = []
    for key, value in values.items():
        if isinstance(value, int):
            encoded = {"intValue": str(value)}
        elif isinstance(value, list):
            encoded = {"arrayValue": {"values": [{"stringValue": v} for v in value]}}
        else:
            encoded = {"stringValue": value}
        out.append({"key": key, "value": encoded})
    return out


def test_vendor_spans_openlit_and_openllmetry(ws):
    result = ingest_files(ws, [str(OTEL / "langfuse_vendor_spans.jsonl")])
    assert (result.files[0].format, result.read, result.stored) == ("otel", 2, 2)
    price_calls(ws, load_config(None))
    openlit, traceloop = rows(ws)
    # OpenLit: content in gen_ai.content.prompt/completion events; int64 as protobufjs Longs
    assert (openlit["provider"], openlit["model"], openlit["query"]) == (
        "openai",
        "gpt-3.5-turbo",
        "What is LLM Observability?",
    )
    assert openlit["response"].startswith("LLM Observability stands for logs, metrics")
    assert (openlit["input_tokens"], openlit["output_tokens"], openlit["finish_reason"]) == (
        14,
        96,
        "stop",
    )
    assert openlit["call_id"] == "ea673708441c2984a54a3e3962d3595f:b904bffb20be6d7e"
    assert openlit["ts"].isoformat() == "2025-01-28T14:34:05.669300+00:00"
    assert openlit["latency_ms"] == pytest.approx(1174.148)
    assert openlit["max_tokens"] is None  # OpenLit's -1 means "not set"
    # 14 × 0.50 + 96 × 1.50 = 151 per million — the cost OpenLit logged itself
    assert openlit["cost_usd"] == Decimal("0.000151000")
    assert openlit["logged_cost_usd"] == Decimal("0.000151000")
    # OpenLLMetry: gen_ai.prompt.N / gen_ai.completion.N, gen_ai.system "OpenAI"
    assert (traceloop["provider"], traceloop["model"], traceloop["query"]) == (
        "openai",
        "gpt-3.5-turbo-0125",  # the response's model over the request's
        "What is LLM Observability?",
    )
    assert (traceloop["input_tokens"], traceloop["output_tokens"]) == (14, 173)
    assert traceloop["response"].startswith("LLM Observability (Logs, Metrics, and Traces")
    # 14 × 0.50 + 173 × 1.50 = 266.5 per million
    assert traceloop["cost_usd"] == Decimal("0.000266500")
    assert json.loads(traceloop["metadata"])["scope"] == "opentelemetry.instrumentation.openai.v1"


def test_openinference_flat_spans(ws):
    ingest_files(ws, [str(OTEL / "openinference_spec_spans.jsonl")])
    price_calls(ws, load_config(None))
    tool_call, synthesis = rows(ws)
    assert (tool_call["provider"], tool_call["model"], tool_call["query"]) == (
        "openai",
        "gpt-3.5-turbo-0613",
        "what is 23 times 87",
    )
    assert tool_call["system_prompt"].startswith("You are a Shakespearean writing assistant")
    assert json.loads(tool_call["response"]) == [
        {
            "tool_call.function.name": "multiply",
            "tool_call.function.arguments": '{\n  "a": 23,\n  "b": 87\n}',
        }
    ]
    assert (tool_call["input_tokens"], tool_call["output_tokens"]) == (229, 21)
    assert tool_call["ts"].isoformat() == "2024-01-11T23:45:17.982858+00:00"  # -07:00 → UTC
    assert tool_call["latency_ms"] == pytest.approx(534.781)
    # the second call's history holds the tool call and its result
    assert [m["role"] for m in json.loads(synthesis["messages"])] == [
        "system",
        "user",
        "assistant",
        "tool",
    ]
    assert (synthesis["response"], synthesis["input_tokens"], synthesis["output_tokens"]) == (
        "The product of 23 times 87 is 2001.",
        259,
        14,
    )
    # 229 × 1.50 + 21 × 2.00 = 385.5 and 259 × 1.50 + 14 × 2.00 = 416.5 per million
    assert tool_call["cost_usd"] == Decimal("0.000385500")
    assert synthesis["cost_usd"] == Decimal("0.000416500")


def test_semantic_conventions_examples(ws):
    result = ingest_files(ws, [str(OTEL / "semconv_examples.jsonl")])
    # lines 1 and 3 are the same span (same ids and values; 3 adds a reasoning part)
    assert (result.read, result.stored, result.duplicates) == (3, 2, 1)
    price_calls(ws, load_config(None))
    simple, instructions = rows(ws)
    assert (simple["model"], simple["system_prompt"], simple["query"]) == (
        "gpt-4-0613",
        "You are a helpful bot",
        "Tell me a joke about OpenTelemetry",
    )
    assert simple["response"].endswith("Because it always knows how to trace the fun!")
    assert (simple["input_tokens"], simple["output_tokens"], simple["max_tokens"]) == (52, 47, 200)
    assert simple["cost_usd"] == Decimal("0.004380000")  # 52 × 30 + 47 × 60 = 4380
    # gen_ai.system_instructions come before the system message of the input
    assert instructions["system_prompt"] == "You must never tell jokes\n\nYou are a helpful bot"
    assert instructions["response"] == "I'm sorry, but I can't assist with that"
    assert instructions["cost_usd"] == Decimal("0.001440000")  # 28 × 30 + 10 × 60 = 1440


def test_non_llm_spans_are_skipped_not_rejected(ws, tmp_path):
    example = json.loads((OTEL / "otlp_proto_trace_example.json").read_text(encoding="utf-8"))
    result = ingest_files(ws, [str(OTEL / "otlp_proto_trace_example.json")])
    assert (result.read, result.skipped, result.stored, result.rejected) == (1, 1, 0, 0)
    assert result.as_dict()["skipped_by_reason"] == {NO_LLM_SPAN: 1}
    # a collector file: one export request per line; one of them mixes an LLM span in
    vendor = [json.loads(line) for line in (OTEL / "langfuse_vendor_spans.jsonl").open()]
    mixed = {"resourceSpans": [example["resourceSpans"][0], vendor[0]]}
    lines = [example, mixed, {"resourceSpans": [vendor[1]]}]
    path = tmp_path / "otel-collector.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    result = ingest_files(ws, [str(path)])
    counts = result.files[0]
    assert (counts.read, counts.stored, counts.skipped, counts.rejected) == (3, 2, 1, 0)
    assert counts.read == counts.stored + counts.duplicates + counts.skipped + counts.rejected


def test_which_spans_are_llm_calls():
    def check(span_attributes, events=()):
        return is_llm_span(decode_attributes(span_attributes), list(events), {})

    assert check(attrs({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}))
    assert check(attrs({"gen_ai.operation.name": "generate_content"}))
    # agent, tool and embedding spans carry models and usage too, but are not one call
    assert not check(
        attrs({"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 9})
    )
    assert not check(attrs({"gen_ai.operation.name": "execute_tool"}))
    assert not check(attrs({"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "e-3"}))
    assert not check(attrs({"openinference.span.kind": "CHAIN", "llm.model_name": "gpt-4o"}))
    assert not check(attrs({"traceloop.span.kind": "workflow", "gen_ai.request.model": "gpt-4o"}))
    assert not check(attrs({"http.method": "GET", "url.full": "https://example.com"}))
    # no operation name (Semantic Kernel before 1.55, Vercel AI SDK doGenerate): model + usage
    assert check(attrs({"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 5}))


def test_event_conventions_and_exclusive_cache_counts():
    events = [
        ("gen_ai.system.message", {"content": "Be brief."}),
        ("gen_ai.user.message", {"content": "Capital of France?"}),
        ("gen_ai.choice", {"finish_reason": "stop", "message": '{"content": "Paris."}'}),
    ]
    call = span_call(
        decode_attributes(
            attrs({"gen_ai.system": "anthropic", "gen_ai.request.model": "claude-x"})
        ),
        events,
    )
    assert (call["system_prompt"], call["query"], call["response"]) == (
        "Be brief.",
        "Capital of France?",
        "Paris.",
    )
    # the operation-details event carries the messages as attributes
    details = [
        (
            "gen_ai.client.inference.operation.details",
            {
                "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", '
                '"content": "Hi"}]}]',
                "gen_ai.output.messages": '[{"role": "assistant", "parts": [{"type": "text", '
                '"content": "Hello"}], "finish_reason": "length"}]',
            },
        )
    ]
    call = span_call({"gen_ai.request.model": "gpt-4o"}, details)
    assert (call["query"], call["response"], call["finish_reason"]) == ("Hi", "Hello", "length")
    # semconv: input includes the cache buckets
    inclusive = usage_of(
        {"gen_ai.usage.input_tokens": 120, "gen_ai.usage.cache_read.input_tokens": 100}
    )
    assert (inclusive["input_tokens"], inclusive["cache_read_tokens"]) == (120, 100)
    # an instrumentation passing Anthropic's own input_tokens (cache excluded): added back
    exclusive = usage_of(
        {
            "gen_ai.usage.input_tokens": 5,
            "gen_ai.usage.cache_read_input_tokens": 100,
            "gen_ai.usage.cache_creation_input_tokens": 20,
            "gen_ai.usage.output_tokens": 7,
        }
    )
    assert (exclusive["input_tokens"], exclusive["cache_write_tokens"]) == (125, 20)
    # OpenInference flattened attributes and completion details
    flat = {
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.contents.0.message_content.text": "Part one",
        "llm.input_messages.0.message.contents.1.message_content.text": "part two",
        "llm.output_messages.0.message.content": "Done",
        "llm.token_count.prompt": 10,
        "llm.token_count.completion": 30,
        "llm.token_count.completion_details.reasoning": 20,
        "llm.model_name": "o3-mini",
    }
    call = span_call(flat, [])
    assert (call["query"], call["response"]) == ("Part one\npart two", "Done")
    assert (call["output_tokens"], call["reasoning_tokens"]) == (30, 20)


def test_otlp_value_encodings_and_errors():
    assert whole_number({"low": -1, "high": -1, "unsigned": False}) == -1
    assert whole_number({"low": 153687506, "high": 404677085, "unsigned": True}) == (
        404677085 * 2**32 + 153687506
    )
    assert whole_number("42") == 42
    assert any_value({"arrayValue": {"values": [{"stringValue": "stop"}]}}) == ["stop"]
    assert any_value({"kvlistValue": {"values": [{"key": "a", "value": {"boolValue": True}}]}}) == {
        "a": True
    }
    failed = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "0af7651916cd43dd8448eb211c80319c",
                                "spanId": "b7ad6b7169203331",
                                "name": "chat gpt-4o",
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000250000000",
                                "status": {"code": 2, "message": "429 Too Many Requests"},
                                "attributes": attrs(
                                    {"gen_ai.operation.name": "chat", "gen_ai.request.model": "o"}
                                ),
                            }
                        ]
                    }
                ]
            }
        ]
    }
    (call,) = get_adapter("otel").normalize(failed)
    assert (call["status"], call["error"], call["latency_ms"]) == (
        "error",
        "429 Too Many Requests",
        250.0,
    )
    with pytest.raises(SkipRecord):
        get_adapter("otel").normalize({"resourceSpans": []})
