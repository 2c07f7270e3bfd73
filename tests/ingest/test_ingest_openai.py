"""OpenAI formats: streamed Chat Completions, Responses API objects, Batch API output files.

Real payloads: the 26 recorded HTTP exchanges of ../shared/data/api-cassettes/llm (simonw/llm
VCR cassettes) — 13 Chat Completions (3 JSON, 10 SSE streams with ``include_usage``) and 13
Responses API (10 JSON, 3 SSE streams); each becomes a ``{"request", "response"}`` record and
its normalized tokens are asserted. The batch field case ../shared/cases C08. Small fixtures
in tests/fixtures/openai/ built from the documentation cover what the recordings lack (cached
tokens, a stream without usage, failed/incomplete responses, batch input files); each test
names its page. Costs are list prices (USD/MTok) worked by hand; genai-prices agrees.
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from levers_cli.config import load_config
from levers_cli.enrich.prices import price_calls
from levers_cli.errors import RecordError
from levers_cli.ingest import ADAPTERS, get_adapter
from levers_cli.ingest.formats.openai_chat import openai_usage
from levers_cli.ingest.pipeline import ingest_files
from tests.helpers import CASES, DATA, FIXTURES, need_shared

OPENAI = FIXTURES / "openai"

#: (cassette file stem, interaction) → (format, input, cached, output, reasoning), read from
#: each recording's ``usage`` (the last SSE chunk/event for streams).
EXPECTED: dict[tuple[str, int], tuple[str, int, int, int, int]] = {
    ("test_responses_basic_non_streaming", 0): ("openai-responses", 11, 0, 5, 0),
    ("test_responses_basic_streaming", 0): ("openai-responses", 11, 0, 5, 0),
    ("test_responses_interleaved_reasoning_between_tool_calls", 0): (
        "openai-responses",
        88,
        0,
        65,
        45,
    ),
    ("test_responses_interleaved_reasoning_between_tool_calls", 1): (
        "openai-responses",
        171,
        0,
        118,
        98,
    ),
    ("test_responses_interleaved_reasoning_between_tool_calls", 2): (
        "openai-responses",
        302,
        0,
        217,
        196,
    ),
    ("test_responses_interleaved_reasoning_between_tool_calls", 3): (
        "openai-responses",
        532,
        0,
        119,
        17,
    ),
    ("test_responses_round_trips_encrypted_reasoning", 0): ("openai-responses", 94, 0, 85, 63),
    ("test_responses_round_trips_encrypted_reasoning", 1): ("openai-responses", 192, 0, 21, 0),
    ("test_responses_round_trips_encrypted_reasoning", 2): ("openai-responses", 227, 0, 24, 0),
    ("test_responses_tool_use", 0): ("openai-responses", 58, 0, 23, 0),
    ("test_responses_tool_use", 1): ("openai-responses", 94, 0, 17, 0),
    ("test_responses_tool_use_streaming", 0): ("openai-responses", 58, 0, 23, 0),
    ("test_responses_tool_use_streaming", 1): ("openai-responses", 94, 0, 18, 0),
    ("test_tool_use_basic", 0): ("openai-chat", 54, 0, 20, 0),
    ("test_tool_use_basic", 1): ("openai-chat", 87, 0, 26, 0),
    ("test_tool_use_chain_of_two_calls", 0): ("openai-chat", 92, 0, 17, 0),
    ("test_tool_use_chain_of_two_calls", 1): ("openai-chat", 118, 0, 18, 0),
    ("test_tool_use_chain_of_two_calls", 2): ("openai-chat", 146, 0, 3, 0),
    ("test_tools_streaming_variant_a", 0): ("openai-chat", 57, 0, 17, 0),
    ("test_tools_streaming_variant_a", 1): ("openai-chat", 107, 0, 15, 0),
    ("test_tools_streaming_variant_b", 0): ("openai-chat", 57, 0, 17, 0),
    ("test_tools_streaming_variant_b", 1): ("openai-chat", 107, 0, 15, 0),
    ("test_tools_streaming_variant_c", 0): ("openai-chat", 56, 0, 12, 0),
    ("test_tools_streaming_variant_c", 1): ("openai-chat", 105, 0, 16, 0),
    ("test_tools_streaming_variant_d", 0): ("openai-chat", 57, 0, 17, 0),
    ("test_tools_streaming_variant_d", 1): ("openai-chat", 107, 0, 15, 0),
}


def cassette_records() -> dict[tuple[str, int], dict]:
    """Each recorded interaction as a log record: the request body JSON and the response
    body (parsed JSON, or the raw SSE text of a stream; gzip bodies decompressed)."""
    folder = need_shared(DATA / "api-cassettes" / "llm")
    records: dict[tuple[str, int], dict] = {}
    for path in sorted(folder.rglob("*.yaml")):
        cassette = yaml.safe_load(path.read_text(encoding="utf-8"))
        for index, exchange in enumerate(cassette["interactions"]):
            body = exchange["response"]["body"]["string"]
            if isinstance(body, bytes):
                body = gzip.decompress(body).decode("utf-8")
            try:
                response = json.loads(body)
            except json.JSONDecodeError:
                response = body  # a server-sent-events stream
            request = json.loads(exchange["request"]["body"])
            records[(path.stem, index)] = {"request": request, "response": response}
    return records


def detect(record: dict):
    """The adapter the pipeline would pick for a file starting with ``record``."""
    for name in ADAPTERS:
        adapter = get_adapter(name)
        if adapter.sniff(record):
            return adapter
    raise AssertionError("no adapter claims the record")


def tokens(partial: dict) -> tuple[int, int, int, int]:
    keys = ("input_tokens", "cache_read_tokens", "output_tokens", "reasoning_tokens")
    return tuple(partial[k] for k in keys)


def write_jsonl(path: Path, records: list) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def costs(ws) -> dict[str, Decimal]:
    return dict(ws.con.execute("SELECT call_id, cost_usd FROM calls").fetchall())


# --- real payloads: the llm cassettes ----------------------------------------------------


def test_every_cassette_interaction_normalizes_its_usage():
    records = cassette_records()
    assert set(records) == set(EXPECTED)
    by_format = {"openai-chat": 0, "openai-responses": 0}
    for key, record in records.items():
        adapter = detect(record)
        fmt, *expected = EXPECTED[key]
        assert adapter.name == fmt, key
        partial = adapter.normalize(record)
        assert tokens(partial) == tuple(expected), key
        assert partial["status"] == "ok" and partial["query"], key
        by_format[fmt] += 1
    # 26 real payloads with usage: 13 chat (3 JSON + 10 SSE), 13 responses (10 JSON + 3 SSE)
    assert by_format == {"openai-chat": 13, "openai-responses": 13}
    streamed = sum(isinstance(r["response"], str) for r in records.values())
    assert streamed == 13


def test_cassettes_end_to_end_with_duplicates_and_prices(ws, tmp_path):
    records = cassette_records()
    folder = tmp_path / "cassettes"
    folder.mkdir()
    for stem in {stem for stem, _ in records}:
        lines = [records[k] for k in sorted(records) if k[0] == stem]
        write_jsonl(folder / f"{stem}.jsonl", lines)
    result = ingest_files(ws, [str(folder)])
    # variants a and b replay the same two OpenRouter generations (same ids): 2 duplicates
    assert (result.read, result.stored, result.duplicates, result.rejected) == (26, 24, 2, 0)
    assert {Path(f.path).stem: f.format for f in result.files} == {
        stem: fmt for (stem, _), (fmt, *_) in EXPECTED.items()
    }
    rows = ws.con.execute(
        """SELECT source_file, source_line, format, input_tokens, cache_read_tokens,
        output_tokens, reasoning_tokens, tokens_source FROM calls"""
    ).fetchall()
    seen = set()
    for source, line, fmt, *counts, origin in rows:
        key = (Path(source).stem, line - 1)
        assert (fmt, *counts) == EXPECTED[key] and origin == "usage"
        seen.add(key)
    assert set(EXPECTED) - seen == {
        ("test_tools_streaming_variant_b", 0),
        ("test_tools_streaming_variant_b", 1),
    }
    pricing = price_calls(ws, load_config(None))
    got = costs(ws)
    # gpt-4o-mini: 54 × 0.15 + 20 × 0.60 = 8.1 + 12 = 20.1 µ$
    assert got["chatcmpl-BWlJBDk2xe66hjff60joVYpXi1hh4"] == Decimal("0.0000201")
    # gpt-5.5 is not in the brief's list; genai-prices 0.2.3 has 5.00 in / 30.00 out:
    # 171 × 5 + 118 × 30 = 855 + 3,540 = 4,395 µ$
    assert got["resp_0429c1fcf5cbfa350169fabfe798788197940d8e20b11ec04d"] == Decimal("0.004395")
    # muse-spark-1.1 (served through an OpenAI-format proxy) is in genai-prices under Meta,
    # 1.25 in / 4.25 out: 57 × 1.25 + 17 × 4.25 = 71.25 + 72.25 = 143.5 µ$
    assert got["gen-1753242299-DdArgsNullVariantD00"] == Decimal("0.0001435")
    # kimi-k2 is unknown to the price table: reported with its call count, never $0
    assert pricing.unknown == {"moonshotai/kimi-k2": 4}


def test_streamed_tool_calls_and_text_are_reassembled():
    records = cassette_records()
    chat = get_adapter("openai-chat")
    multiply = chat.normalize(records[("test_tool_use_basic", 0)])
    assert multiply["call_id"] == "chatcmpl-BWlJBDk2xe66hjff60joVYpXi1hh4"
    assert multiply["model"] == "gpt-4o-mini-2024-07-18"
    assert multiply["finish_reason"] == "tool_calls"
    assert multiply["metadata"]["streamed"] is True
    assert json.loads(multiply["response"]) == [
        {
            "id": "call_1EYWDzueHEp8OsB8jJSEp7WB",
            "type": "function",
            "function": {"name": "multiply", "arguments": '{"a":1231,"b":2331}'},
        }
    ]
    # variant a repeats the name in a second chunk: kept once, arguments '' + '{}'
    repeated = json.loads(
        chat.normalize(records[("test_tools_streaming_variant_a", 0)])["response"]
    )
    assert repeated[0]["function"] == {"name": "llm_version", "arguments": "{}"}
    answer = chat.normalize(records[("test_tools_streaming_variant_c", 1)])
    assert answer["response"] == "The installed version of LLM on this system is 0.fixed-version."
    assert answer["finish_reason"] == "stop" and answer["provider"] == "moonshotai"
    assert answer["logged_cost_usd"] == pytest.approx(0.000103)  # OpenRouter usage.cost
    assert answer["query"] == "What is the current llm version?"


def test_responses_cassettes_text_reasoning_and_tool_calls():
    records = cassette_records()
    responses = get_adapter("openai-responses")
    streamed = responses.normalize(records[("test_responses_tool_use_streaming", 1)])
    assert streamed["response"] == "1231 × 2331 = **2,869,461**"
    assert streamed["finish_reason"] == "stop" and streamed["metadata"]["streamed"] is True
    step = responses.normalize(
        records[("test_responses_interleaved_reasoning_between_tool_calls", 1)]
    )
    assert step["finish_reason"] == "tool_calls"
    assert json.loads(step["response"])["name"] == "db_lookup"
    assert step["metadata"]["params"]["reasoning"] == {"effort": "high"}
    roles = [m["role"] for m in step["messages"]]
    assert roles == ["user", "assistant", "tool"]  # the encrypted reasoning item is dropped
    assert step["messages"][2]["content"] == "Begin with the value 7."


def test_cut_short_responses_stream_is_estimated():
    record = cassette_records()[("test_responses_basic_streaming", 0)]
    blocks = record["response"].split("\n\n")
    cut = "\n\n".join(b for b in blocks if "response.completed" not in b)
    partial = get_adapter("openai-responses").normalize({**record, "response": cut})
    assert partial["response"] == "pong" and partial["status"] == "ok"
    assert "input_tokens" not in partial  # no usage: the pipeline estimates


# --- Chat Completions streams: documentation fixtures ------------------------------------


def test_chat_stream_fixture_cached_subset_and_no_usage(ws):
    """Built from the API reference, "The chat completion chunk object" and the
    ``stream_options.include_usage`` note (last chunk: usage, empty choices)."""
    result = ingest_files(ws, [str(OPENAI / "chat_stream_doc.jsonl")])
    assert (result.read, result.stored, result.files[0].format) == (2, 2, "openai-chat")
    price_calls(ws, load_config(None))
    rows = ws.con.execute(
        """SELECT call_id, input_tokens, cache_read_tokens, output_tokens, tokens_source,
        response, finish_reason, latency_ms, max_tokens FROM calls ORDER BY call_id"""
    ).fetchall()
    assert rows[0][:8] == (
        "chatcmpl-doc-s1",
        1200,
        1024,
        50,
        "usage",
        "The capital is Paris.",
        "stop",
        420.0,
    )
    # raw SSE text without include_usage: no usage chunk, tokens estimated
    assert rows[1][4] == "estimated" and rows[1][5] == "Hello there!"
    assert rows[1][6] == "length" and rows[1][8] == 2 and rows[1][1] > 0
    # 176 × 0.15 + 1,024 × 0.075 + 50 × 0.60 = 26.4 + 76.8 + 30 = 133.2 µ$
    assert costs(ws)["chatcmpl-doc-s1"] == Decimal("0.0001332")


def test_broken_stream_is_rejected_with_its_line(ws, tmp_path):
    good = json.loads((OPENAI / "chat_stream_doc.jsonl").read_text().splitlines()[0])
    broken = {"request": good["request"], "response": 'data: {"id": "x", "object": "chat.co'}
    path = write_jsonl(tmp_path / "s.jsonl", [good, broken])
    result = ingest_files(ws, [path])
    assert (result.read, result.stored, result.duplicates, result.rejected) == (2, 1, 0, 1)
    assert (
        result.reject_samples[0][1] == 2
        and "stream event is not JSON" in result.reject_samples[0][2]
    )


# --- Responses API: documentation fixtures -----------------------------------------------


def test_responses_fixture_bare_pairs_failed_incomplete(ws):
    """Built from the API reference, Responses, "The response object" (usage details,
    ``status``, ``incomplete_details``, ``error``)."""
    result = ingest_files(ws, [str(OPENAI / "responses_doc.jsonl")])
    assert (result.read, result.stored, result.files[0].format) == (3, 3, "openai-responses")
    price_calls(ws, load_config(None))
    rows = {
        r[0]: r[1:]
        for r in ws.con.execute(
            """SELECT call_id, input_tokens, cache_read_tokens, output_tokens, reasoning_tokens,
            status, error, finish_reason, system_prompt, query, max_tokens,
            json_extract_string(metadata, '$.feature') FROM calls"""
        ).fetchall()
    }
    assert rows["resp_doc_1"] == (
        2000,
        1536,
        300,
        0,
        "ok",
        None,
        "stop",
        "You are a storyteller.",
        "",
        None,
        "bedtime",
    )
    assert rows["resp_doc_2"][:7] == (1000, 0, 256, 200, "ok", None, "length")
    assert rows["resp_doc_2"][8:10] == ("Prove that there are infinitely many primes.", 256)
    assert rows["resp_doc_3"][:8] == (
        0,
        0,
        0,
        0,
        "error",
        "The model failed to generate a response.",
        None,
        "Be brief.",
    )
    assert rows["resp_doc_3"][8] == "Summarize this."
    got = costs(ws)
    # gpt-4o: 464 × 2.50 + 1,536 × 1.25 + 300 × 10 = 1,160 + 1,920 + 3,000 = 6,080 µ$
    assert got["resp_doc_1"] == Decimal("0.00608")
    # o4-mini: 1,000 × 1.10 + 256 × 4.40 = 1,100 + 1,126.4 = 2,226.4 µ$ (reasoning inside)
    assert got["resp_doc_2"] == Decimal("0.0022264")
    assert got["resp_doc_3"] == 0


def test_responses_usage_names_and_subset_checks():
    usage = {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 11},
        "output_tokens": 5,
    }
    with pytest.raises(RecordError) as info:
        openai_usage(usage)
    assert info.value.field == "usage.input_tokens_details.cached_tokens"


def test_detection_keeps_the_openai_formats_apart():
    responses = json.loads((OPENAI / "responses_doc.jsonl").read_text().splitlines()[2])
    failed_bare = responses["response"]  # has "error": {...} — not a chat failure
    assert detect(failed_bare).name == "openai-responses"
    assert detect(responses).name == "openai-responses"
    assert not get_adapter("openai-chat").sniff(responses)
    batch_line = json.loads((OPENAI / "batch_output_doc.jsonl").read_text().splitlines()[0])
    assert detect(batch_line).name == "openai-batch"
    chat_error = {
        "request": {"messages": [{"role": "user", "content": "x"}]},
        "response": {"error": {"message": "Rate limit", "type": "requests"}},
    }
    assert detect(chat_error).name == "openai-chat"


# --- Batch API ---------------------------------------------------------------------------


def test_c08_batch_output_bad_lines(ws):
    path = str(need_shared(CASES / "C08-openai-batch-output-bad-lines.jsonl"))
    result = ingest_files(ws, [path])
    price_calls(ws, load_config(None))
    assert result.files[0].format == "openai-batch"
    # read = stored + duplicates + rejected: 5 = 3 + 0 + 2
    assert (result.read, result.stored, result.duplicates, result.rejected) == (5, 3, 0, 2)
    assert [line for _, line, _ in result.reject_samples] == [4, 5]  # empty body; broken JSON
    assert "response.body" in result.reject_samples[0][2]
    rows = ws.con.execute(
        """SELECT call_id, status, error, input_tokens, output_tokens, is_batch, cost_usd
        FROM calls ORDER BY call_id"""
    ).fetchall()
    assert rows == [
        ("batch_req_c08_3", "error", "<ERROR_MESSAGE_PLACEHOLDER>", 0, 0, True, Decimal(0)),
        # gpt-4o-mini batch (0.075 in / 0.30 out): 1,000 × 0.075 + 200 × 0.30 = 135 µ$
        ("chatcmpl-c08-1", "ok", None, 1000, 200, True, Decimal("0.000135")),
        # 2,000 × 0.075 + 500 × 0.30 = 150 + 150 = 300 µ$
        ("chatcmpl-c08-2", "ok", None, 2000, 500, True, Decimal("0.0003")),
    ]
    priced = ws.con.execute("SELECT count(*), sum(cost_usd) FROM calls WHERE cost_usd > 0")
    assert priced.fetchone() == (2, Decimal("0.000435"))  # 135 + 300 = 435 µ$


def test_batch_output_joined_to_its_input(ws):
    """Built from the Batch guide (platform.openai.com/docs/guides/batch): input lines
    ``{custom_id, method, url, body}``, output lines in any order, an expired request in
    the error file with a top-level ``error``."""
    options = {"batch_input": [str(OPENAI / "batch_input_doc.jsonl")]}
    result = ingest_files(ws, [str(OPENAI / "batch_output_doc.jsonl")], options=options)
    assert (result.read, result.stored, result.rejected) == (3, 3, 0)
    price_calls(ws, load_config(None))
    rows = {
        r[0]: r[1:]
        for r in ws.con.execute(
            """SELECT json_extract_string(metadata, '$.custom_id'), call_id, query,
            system_prompt, status, error, input_tokens, output_tokens, is_batch, cost_usd,
            max_tokens, model FROM calls"""
        ).fetchall()
    }
    # chat: 100 × 0.075 + 20 × 0.30 = 7.5 + 6 = 13.5 µ$ at gpt-4o-mini batch rates
    assert rows["request-1"] == (
        "chatcmpl-doc-b1",
        "Hello world!",
        "You are a helpful assistant.",
        "ok",
        None,
        100,
        20,
        True,
        Decimal("0.0000135"),
        1000,
        "gpt-4o-mini-2024-07-18",
    )
    # responses: 500 × 0.075 + 40 × 0.30 = 37.5 + 12 = 49.5 µ$
    assert rows["request-2"][:8] == (
        "resp_doc_b2",
        "I love this product",
        "Classify the sentiment.",
        "ok",
        None,
        500,
        40,
        True,
    )
    assert rows["request-2"][8] == Decimal("0.0000495")
    expired = rows["request-3"]
    assert expired[:4] == ("batch_req_doc_3", "Translate: bonjour", None, "error")
    assert expired[4].startswith("batch_expired: ") and expired[5:9] == (0, 0, True, 0)
    assert expired[10] == "gpt-4o-mini"


def test_batch_output_without_input_and_unusable_lines():
    adapter = get_adapter("openai-batch")
    line = json.loads((OPENAI / "batch_output_doc.jsonl").read_text().splitlines()[1])
    partial = adapter.normalize(line)
    assert partial["query"] == "" and partial["is_batch"] is True
    assert tokens(partial) == (100, 0, 20, 0)
    with pytest.raises(RecordError) as info:
        adapter.normalize({"id": "batch_req_x", "custom_id": "c", "response": None, "error": None})
    assert info.value.field == "response"
    embeddings = {"status_code": 200, "body": {"object": "list", "data": []}}
    with pytest.raises(RecordError):
        adapter.normalize({"id": "b", "custom_id": "c", "response": embeddings, "error": None})
