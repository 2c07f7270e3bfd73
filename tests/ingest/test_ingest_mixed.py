"""Files that mix formats record by record, and request-only records (``request-only``).

Real payloads: the 26 OpenAI exchanges of ../shared/data/api-cassettes/llm (13 Chat
Completions, 13 Responses API; tokens as tests/ingest/test_ingest_openai.py reads them by hand), the
27 Anthropic Messages exchanges of ../shared/data/api-cassettes/llm-anthropic
(tests/ingest/test_ingest_anthropic.py) and the Gemini requests of tests/fixtures/gemini. A custom
logger writing all of them into one JSONL is read record by record; the request bodies alone
are what a logger writes before sending.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from levers_cli.config import load_config
from levers_cli.enrich.prices import price_calls
from levers_cli.ingest import ADAPTERS, get_adapter, pipeline
from levers_cli.ingest import records as records_module
from levers_cli.ingest.pipeline import ingest_files
from tests.helpers import FIXTURES
from tests.ingest.test_ingest_anthropic import EXPECTED as ANTHROPIC_EXPECTED
from tests.ingest.test_ingest_anthropic import cassette_records as anthropic_records
from tests.ingest.test_ingest_openai import EXPECTED as OPENAI_EXPECTED
from tests.ingest.test_ingest_openai import cassette_records as openai_records


def write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def interleaved() -> list[tuple[tuple[str, int], str, dict]]:
    """The OpenAI and Anthropic cassette pairs, alternating Chat Completions, Responses and
    Anthropic records: ``(key, expected format, record)``."""
    by_format: dict[str, list] = {"openai-chat": [], "openai-responses": [], "anthropic": []}
    for key, record in sorted(openai_records().items()):
        by_format[OPENAI_EXPECTED[key][0]].append((key, OPENAI_EXPECTED[key][0], record))
    for key, record in anthropic_records():
        by_format["anthropic"].append((key, "anthropic", record))
    out = []
    while any(by_format.values()):
        for queue in by_format.values():
            if queue:
                out.append(queue.pop(0))
    return out


def expected_tokens(key, fmt) -> tuple[int, int]:
    if fmt == "anthropic":
        return ANTHROPIC_EXPECTED[key][0], ANTHROPIC_EXPECTED[key][1]
    return OPENAI_EXPECTED[key][1], OPENAI_EXPECTED[key][3]


@pytest.mark.parametrize("workers", [1, 2])
def test_mixed_file_read_record_by_record(ws, tmp_path, monkeypatch, workers):
    records = interleaved()
    assert [fmt for _, fmt, _ in records[:3]] == ["openai-chat", "openai-responses", "anthropic"]
    if workers > 1:  # small chunks, all but the first read in the worker processes
        monkeypatch.setattr(pipeline, "PARALLEL_AFTER", 1)
        monkeypatch.setattr(records_module, "CHUNK_BYTES", 20_000)
    path = write_jsonl(tmp_path / "app.jsonl", [record for _, _, record in records])
    result = ingest_files(ws, [path], workers=workers)
    counts = result.files[0]
    assert counts.format == "openai-chat"  # the first record's format names the file
    # 3 duplicates: tools_streaming_variant_b repeats variant_a's two calls (same ids and
    # content, another SSE chunking) and web_search_tool_result_ordering repeats web_search
    assert (counts.read, counts.stored, counts.duplicates, counts.rejected) == (53, 50, 3, 0)
    got = ws.con.execute(
        "SELECT source_line, format, input_tokens, output_tokens FROM calls ORDER BY source_line"
    ).fetchall()
    assert len(got) == 50
    for line, fmt, input_tokens, output_tokens in got:
        key, expected, _ = records[line - 1]
        assert fmt == expected, (line, key)
        assert (input_tokens, output_tokens) == expected_tokens(key, expected), (line, key)


def test_forced_format_still_reads_one_format(ws, tmp_path):
    records = [record for _, _, record in interleaved()[:3]]
    path = write_jsonl(tmp_path / "app.jsonl", records)
    result = ingest_files(ws, [path], format="openai-chat")
    assert result.rejected >= 1  # the Responses record: no request messages
    formats = ws.con.execute("SELECT DISTINCT format FROM calls").fetchall()
    assert formats == [("openai-chat",)]


def request_bodies() -> list[tuple[str, dict, int]]:
    """Every recorded request body alone, as a logger writes it before sending:
    ``(format of the recorded pair, request, the provider's input token count)``."""
    out = []
    for key, record in sorted(openai_records().items()):
        out.append((OPENAI_EXPECTED[key][0], record["request"], OPENAI_EXPECTED[key][1]))
    for key, record in anthropic_records():
        out.append(("anthropic", record["request"], ANTHROPIC_EXPECTED[key][0]))
    return out


def test_request_only_records(ws, tmp_path):
    bodies = request_bodies()
    gemini = [json.loads(line) for line in (FIXTURES / "gemini" / "streams.jsonl").open()]
    records = [body for _, body, _ in bodies]
    records.append({"request": gemini[3]["request"], "ts": "2025-06-20T10:00:00Z"})
    path = write_jsonl(tmp_path / "requests.jsonl", records)
    result = ingest_files(ws, [path])
    assert result.files[0].format == "request-only"
    assert (result.read, result.stored, result.rejected) == (54, 54, 0)
    price_calls(ws, load_config(None))
    got = ws.con.execute(
        """SELECT source_line, provider, model, status, response, output_tokens, input_tokens,
                  tokens_source, cost_usd, query, system_prompt, ts
           FROM calls ORDER BY source_line"""
    ).fetchall()
    assert {row[3] for row in got} == {"no_response"}
    assert {(row[4], row[5], row[7]) for row in got} == {("", 0, "estimated")}
    providers = [row[1] for row in got]
    assert providers.count("anthropic") == 27 and providers[-1] == "google"
    # the estimate (messages + tool definitions, tiktoken) against OpenAI's own counts for
    # the same 26 requests: 82 % of them in total (hidden reasoning items are not countable)
    pairs = zip(got[: len(bodies)], bodies, strict=True)
    openai = [(row, tokens) for row, (fmt, _, tokens) in pairs if fmt != "anthropic"]
    estimated = sum(row[6] for row, _ in openai)
    counted = sum(tokens for _, tokens in openai)
    assert (len(openai), counted) == (26, 3082)
    assert 0.75 * counted < estimated < counted
    # no output cost: a gpt-4o-mini request costs its input at 0.15 USD per million
    mini = [row for row in got if row[2] == "gpt-4o-mini"]
    assert mini and all(row[8] == Decimal(row[6]) * Decimal("0.15") / 10**6 for row in mini)
    # the Gemini request (its model is in the URL, not the body): system instruction and user
    # turn read, the logger's time kept
    last = got[-1]
    assert (last[1], last[2], last[9], last[10]) == (
        "google",
        None,
        "What is the capital of France?",
        "You are a helpful chatbot.",
    )
    assert last[11].isoformat() == "2025-06-20T10:00:00+00:00"


def test_request_shapes():
    adapter = get_adapter("request-only")
    # a multi-turn chat request ends with the user: a request, not a conversation dataset
    chat = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Capital of France?"},
        ],
        "max_completion_tokens": 50,
        "temperature": 0,
    }
    assert get_adapter("chat-messages").sniff(chat)  # it has an assistant turn, but …
    detected = next(name for name in ADAPTERS if get_adapter(name).sniff(chat))
    assert detected == "request-only"  # … request-only is asked first
    call = adapter.normalize(chat)
    assert (call["query"], call["system_prompt"], call["max_tokens"]) == (
        "Capital of France?",
        "Be brief.",
        50,
    )
    assert call["metadata"]["params"] == {"max_completion_tokens": 50, "temperature": 0}
    # Anthropic: system beside the messages
    anthropic = {
        "model": "claude-sonnet-4-5",
        "system": "Answer in French.",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
    }
    call = adapter.normalize(anthropic)
    assert (call["provider"], call["system_prompt"], call["query"]) == (
        "anthropic",
        "Answer in French.",
        "Hello",
    )
    # Responses: input and instructions; {"request": …, "response": null} is request-only too
    wrapped = {"request": {"model": "gpt-5", "input": "Hi", "instructions": "Be kind."}}
    assert adapter.sniff(wrapped) and adapter.sniff({**wrapped, "response": None})
    call = adapter.normalize(wrapped)
    assert (call["query"], call["system_prompt"], call["status"]) == (
        "Hi",
        "Be kind.",
        "no_response",
    )
    # not requests: a conversation ending with the assistant, a pair, a response object
    assert not adapter.sniff({"model": "m", "messages": [{"role": "assistant", "content": "x"}]})
    assert not adapter.sniff({"request": chat, "response": {"choices": []}})
    assert not adapter.sniff({"model": "m", "input": "x", "output": [], "object": "response"})
    assert not adapter.sniff({"messages": [{"role": "user", "content": "no model named"}]})
