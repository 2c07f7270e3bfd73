"""AWS Bedrock model invocation logs (``bedrock`` adapter).

Real payloads (tests/fixtures/bedrock/README.md names each source): 4 invocation log records
as Bedrock wrote them — AWS's own documented example (InvokeModel, Meta model id), a Nova
Lite ConverseStream record, a Titan Text Express and a Claude v2.1 InvokeModelWithResponseStream
record — and 2 real Converse request/response bodies (pydantic-ai's Bedrock cassette, a
prompt-cache write then read on Claude Sonnet 4.5) inside an invocation-log envelope written
here. The InvokeModel bodies of Anthropic Messages, Mistral, Llama 3 and Nova have no real
log found; they are tested below on the response shapes the Bedrock User Guide documents
("Inference request parameters and response fields for foundation models").

Prices (aws.amazon.com/bedrock/pricing, USD per million tokens; genai-prices' ``aws``
provider has the same rates): Nova Lite 0.06 in / 0.24 out; Titan Text Express 0.20 / 0.60;
Claude 2.1 8.00 / 24.00; Claude Sonnet 4.5 through a regional (``us.``) cross-region profile
3.30 in, 4.125 cache write, 0.33 cache read, 16.50 out.
"""

from __future__ import annotations

import json
from decimal import Decimal

from levers_cli.config import load_config
from levers_cli.enrich.prices import price_calls
from levers_cli.ingest import get_adapter
from levers_cli.ingest.formats.bedrock import model_from_id, prompt_turns
from levers_cli.ingest.pipeline import ingest_files
from tests.helpers import FIXTURES

BEDROCK = FIXTURES / "bedrock"
COLUMNS = """call_id, format, provider, model, query, response, system_prompt, input_tokens,
    cache_read_tokens, cache_write_tokens, output_tokens, finish_reason, status, max_tokens,
    latency_ms, cost_usd, metadata"""


def rows(ws) -> list[dict]:
    cursor = ws.con.execute(f"SELECT {COLUMNS} FROM calls ORDER BY source_file, source_line")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_real_invocation_logs(ws):
    result = ingest_files(ws, [str(BEDROCK / "invocation_logs.jsonl")])
    assert (result.files[0].format, result.read, result.stored) == ("bedrock", 4, 4)
    pricing = price_calls(ws, load_config(None))
    docs, nova, titan, claude = rows(ws)
    # AWS's documented InvokeModel record: a text-completion body, cut at max_tokens
    assert (docs["call_id"], docs["provider"], docs["model"]) == (
        "7ee514f3-9eff-467c-af75-8fd564ce58e5",
        "bedrock",
        "meta.llama3-1-405b-instruct-v1:0",
    )
    assert (docs["query"], docs["input_tokens"], docs["output_tokens"]) == (
        "story of two dogs",
        13,
        300,
    )
    assert docs["response"].startswith(" Here is a story about two dogs:")
    assert (docs["finish_reason"], docs["max_tokens"]) == ("length", 300)
    assert json.loads(docs["metadata"])["priority"] == "High"  # requestMetadata kept
    # Nova Lite ConverseStream: 4 in, 38 out; 4 × 0.06 + 38 × 0.24 = 9.36 per million
    assert (nova["model"], nova["query"], nova["input_tokens"], nova["output_tokens"]) == (
        "amazon.nova-lite-v1:0",
        "hello how are you",
        4,
        38,
    )
    assert (nova["finish_reason"], nova["latency_ms"], nova["max_tokens"]) == ("stop", 302, 512)
    assert nova["cost_usd"] == Decimal("0.000009360")
    # Titan streamed chunk: 7 in, 11 out; 7 × 0.20 + 11 × 0.60 = 8.0 per million
    assert (titan["response"], titan["input_tokens"], titan["output_tokens"]) == (
        " Hello! How can I assist you today?",
        7,
        11,
    )
    assert (titan["finish_reason"], titan["latency_ms"]) == ("stop", 864)  # FINISH
    assert titan["cost_usd"] == Decimal("0.000008000")
    # Claude v2.1 text-completion stream: completion pieces joined, Human: turn as the query
    assert (claude["query"], claude["response"], claude["finish_reason"]) == (
        "Hello",
        " Hello!",
        "stop",  # stop_sequence
    )
    assert (claude["input_tokens"], claude["output_tokens"], claude["latency_ms"]) == (10, 6, 765)
    # Claude 2.1: 8.00 in / 24.00 out (Bedrock as at Anthropic): 10 × 8 + 6 × 24 = 224 per million
    assert claude["cost_usd"] == Decimal("0.000224000")
    # genai-prices has no Llama 3.1 405B row: its cost is unknown, not $0
    assert docs["cost_usd"] is None
    assert pricing.unknown == {"meta.llama3-1-405b-instruct-v1:0": 1}


def test_converse_cache_write_then_read(ws):
    ingest_files(ws, [str(BEDROCK / "converse_bodies.jsonl")])
    price_calls(ws, load_config(None))
    write, read = rows(ws)
    # inputTokens 2 excludes the cache buckets: 2 + 1322 = 1324 input tokens each time
    assert (write["input_tokens"], write["cache_write_tokens"], write["cache_read_tokens"]) == (
        1324,
        1322,
        0,
    )
    assert (read["input_tokens"], read["cache_write_tokens"], read["cache_read_tokens"]) == (
        1324,
        0,
        1322,
    )
    assert write["model"] == "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert (write["response"], write["output_tokens"], write["latency_ms"]) == ("21", 5, 2023)
    assert write["system_prompt"].startswith("YOU MUST RESPONSE ONLY WITH SINGLE NUMBER")
    # the document block is named, not inlined as base64
    assert "[document: Document 1]" in write["query"]
    assert write["query"].endswith("What is 10 + 11?")
    # 2 × 3.30 + 1322 × 4.125 + 5 × 16.50 = 5542.35 per million
    assert write["cost_usd"] == Decimal("0.005542350")
    # 2 × 3.30 + 1322 × 0.33 + 5 × 16.50 = 525.36 per million
    assert read["cost_usd"] == Decimal("0.000525360")


def envelope(operation: str, model_id: str, body_in, body_out, **counts) -> dict:
    record = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": "2025-06-26T12:00:00Z",
        "requestId": "req-1",
        "operation": operation,
        "modelId": model_id,
        "input": {"inputContentType": "application/json", "inputBodyJson": body_in},
        "output": {"outputContentType": "application/json", "outputBodyJson": body_out},
    }
    for key, value in counts.items():
        side = "output" if key == "outputTokenCount" else "input"
        record[side][key] = value
    return record


def test_documented_invoke_model_bodies():
    adapter = get_adapter("bedrock")
    # Anthropic Messages API on Bedrock (model-parameters-anthropic-claude-messages): the
    # body's usage is read when the log has no counts
    anthropic = envelope(
        "InvokeModel",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0",
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 512,
            "system": "Be brief.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        },
        {
            "id": "msg_bdrk_01",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": "Hello."}],
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": 12,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 0,
                "output_tokens": 3,
            },
        },
    )
    call = adapter.normalize(anthropic)
    assert call["model"] == "us.anthropic.claude-3-5-sonnet-20240620-v1:0"  # ARN → profile id
    assert (call["system_prompt"], call["query"], call["response"]) == ("Be brief.", "Hi", "Hello.")
    assert (call["input_tokens"], call["cache_read_tokens"], call["output_tokens"]) == (112, 100, 3)
    assert (call["finish_reason"], call["max_tokens"]) == ("stop", 512)
    # Mistral text completion: {"outputs": [{"text", "stop_reason"}]}, body given as a string
    mistral = envelope(
        "InvokeModel",
        "mistral.mistral-7b-instruct-v0:2",
        json.dumps({"prompt": "<s>[INST] What is 2+2? [/INST]", "max_tokens": 64}),
        {"outputs": [{"text": " 4.", "stop_reason": "stop"}]},
        inputTokenCount=15,
        outputTokenCount=3,
    )
    call = adapter.normalize(mistral)
    assert (call["query"], call["response"], call["finish_reason"]) == (
        "What is 2+2?",
        " 4.",
        "stop",
    )
    assert (call["input_tokens"], call["output_tokens"], call["max_tokens"]) == (15, 3, 64)
    # Meta Llama 3 chat template (model-parameters-meta): turns split, usage from the body
    llama = envelope(
        "InvokeModel",
        "meta.llama3-8b-instruct-v1:0",
        {
            "prompt": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe terse."
            "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nCapital of Sudan?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            "max_gen_len": 128,
        },
        {
            "generation": "Khartoum.",
            "prompt_token_count": 25,
            "generation_token_count": 4,
            "stop_reason": "stop",
        },
    )
    call = adapter.normalize(llama)
    assert (call["system_prompt"], call["query"], call["response"]) == (
        "Be terse.",
        "Capital of Sudan?",
        "Khartoum.",
    )
    assert (call["input_tokens"], call["output_tokens"], call["max_tokens"]) == (25, 4, 128)
    # Nova InvokeModel (messages-v1) and a failed call (errorCode, no output)
    nova = envelope(
        "InvokeModel",
        "us.amazon.nova-pro-v1:0",
        {
            "schemaVersion": "messages-v1",
            "system": [{"text": "Answer in French."}],
            "messages": [{"role": "user", "content": [{"text": "Hello"}]}],
            "inferenceConfig": {"max_new_tokens": 100},
        },
        {
            "output": {"message": {"role": "assistant", "content": [{"text": "Bonjour"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 9, "outputTokens": 2, "cacheReadInputTokenCount": 0},
        },
    )
    call = adapter.normalize(nova)
    assert (call["system_prompt"], call["response"], call["max_tokens"]) == (
        "Answer in French.",
        "Bonjour",
        100,
    )
    assert (call["input_tokens"], call["output_tokens"]) == (9, 2)
    failed = envelope("Converse", "anthropic.claude-3-haiku-20240307-v1:0", None, None)
    failed["errorCode"] = "ThrottlingException"
    call = adapter.normalize(failed)
    assert (call["status"], call["error"], call["response"]) == ("error", "ThrottlingException", "")


def test_converse_stream_events_and_ids():
    events = [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": "Hel"}, "contentBlockIndex": 0}},
        {"contentBlockDelta": {"delta": {"text": "lo"}, "contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "max_tokens"}},
        {
            "metadata": {
                "usage": {"inputTokens": 5, "outputTokens": 2},
                "metrics": {"latencyMs": 40},
            }
        },
    ]
    record = envelope(
        "ConverseStream",
        "us.anthropic.claude-3-haiku-20240307-v1:0",
        {"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
        events,
    )
    call = get_adapter("bedrock").normalize(record)
    assert (call["response"], call["finish_reason"]) == ("Hello", "length")
    assert (call["input_tokens"], call["output_tokens"]) == (5, 2)
    assert model_from_id("amazon.titan-text-express-v1") == "amazon.titan-text-express-v1"
    assert prompt_turns("\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Bye\n\nAssistant:") == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ]


def test_sniff():
    adapter = get_adapter("bedrock")
    assert adapter.sniff({"schemaType": "ModelInvocationLog"})
    assert adapter.sniff({"modelId": "m", "operation": "Converse", "input": {}})
    assert not adapter.sniff({"model": "gpt-4o", "messages": []})
