"""simonw/llm logs (``llm-logs`` adapter): ``logs.db`` and ``llm logs --json``.

No real llm log is in ../shared/data (it holds llm's VCR cassettes, HTTP traffic, not
``logs.db``), so this adapter is tested on 0 real payloads. The fixtures follow llm's source:

- ``logs.db`` is built below with sqlite3 from the tables ``llm/migrations.py`` creates
  (simonw/llm @ 0205bec5d17be46556d4c43bccd3e823660eb326: m010 ``conversations``/``responses``,
  m013 ``input_tokens``/``output_tokens``/``token_details``, m014 ``schemas``/``schema_id``,
  m015 ``fragments``/``prompt_fragments``/``system_fragments``, m019 ``resolved_model``); the
  development schema's ``threads``/``turns``/``turn_search`` follow that file's
  ``m023_message_store`` (a development version, stored in the code index without its commit).
- ``tests/fixtures/llm_logs/llm_logs.json`` is ``llm logs --json`` output: ``LOGS_COLUMNS`` of
  ``llm/cli.py`` with the ``*_json`` columns decoded (``token_details`` stays a string), plus
  ``prompt_fragments``/``system_fragments``/``attachments``; the token details are those the
  plugins pass to ``set_usage`` (llm's OpenAI models, llm-anthropic, llm-gemini).
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal

import pytest

from levers_cli.config import load_config
from levers_cli.enrich.prices import price_calls
from levers_cli.errors import InputFileError
from levers_cli.ingest.formats.llm_logs import LlmLogsAdapter, llm_usage
from levers_cli.ingest.pipeline import ingest_files
from tests.helpers import FIXTURES

LOGS_JSON = FIXTURES / "llm_logs" / "llm_logs.json"
COLUMNS = """call_id, provider, model, conversation_id, turn, query, response, system_prompt,
    input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
    tokens_source, latency_ms, finish_reason, max_tokens, cost_usd, source_line, messages"""

#: Tables as llm's migrations create them (sqlite-utils DDL), released schema.
RELEASED_DDL = """
CREATE TABLE [_llm_migrations] ([name] TEXT PRIMARY KEY, [applied_at] TEXT);
CREATE TABLE [conversations] ([id] TEXT PRIMARY KEY, [name] TEXT, [model] TEXT);
CREATE TABLE [schemas] ([id] TEXT PRIMARY KEY, [content] TEXT);
CREATE TABLE "responses" (
   [id] TEXT PRIMARY KEY, [model] TEXT, [prompt] TEXT, [system] TEXT, [prompt_json] TEXT,
   [options_json] TEXT, [response] TEXT, [response_json] TEXT,
   [conversation_id] TEXT REFERENCES [conversations]([id]), [duration_ms] INTEGER,
   [datetime_utc] TEXT, [input_tokens] INTEGER, [output_tokens] INTEGER, [token_details] TEXT,
   [schema_id] TEXT REFERENCES [schemas]([id]), [resolved_model] TEXT);
CREATE TABLE [fragments] ([id] INTEGER PRIMARY KEY, [hash] TEXT, [content] TEXT,
   [datetime_utc] TEXT, [source] TEXT);
CREATE TABLE [prompt_fragments] ([response_id] TEXT REFERENCES [responses]([id]),
   [fragment_id] INTEGER REFERENCES [fragments]([id]), [order] INTEGER,
   PRIMARY KEY ([response_id], [fragment_id], [order]));
CREATE TABLE [system_fragments] ([response_id] TEXT REFERENCES [responses]([id]),
   [fragment_id] INTEGER REFERENCES [fragments]([id]), [order] INTEGER,
   PRIMARY KEY ([response_id], [fragment_id], [order]));
"""

#: ``m023_message_store`` (development): threads and turns, with their search text.
TURNS_DDL = """
CREATE TABLE [messages] ([hash] TEXT PRIMARY KEY, [parent_hash] TEXT, [role] TEXT,
   [provider_metadata] TEXT);
CREATE TABLE [threads] ([id] TEXT PRIMARY KEY, [name] TEXT, [tip_message_hash] TEXT,
   [forked_from] TEXT, [datetime_utc] TEXT);
CREATE TABLE [turns] ([id] TEXT PRIMARY KEY, [thread_id] TEXT REFERENCES [threads]([id]),
   [parent_message_hash] TEXT, [tip_message_hash] TEXT, [model] TEXT, [resolved_model] TEXT,
   [options_json] TEXT, [schema_id] TEXT, [input_tokens] INTEGER, [output_tokens] INTEGER,
   [token_details] TEXT, [duration_ms] INTEGER, [datetime_utc] TEXT);
CREATE TABLE [turn_search] ([id] INTEGER PRIMARY KEY, [turn_id] TEXT REFERENCES [turns]([id]),
   [prompt] TEXT, [response] TEXT);
"""

RESPONSE_FIELDS = (
    "id, model, prompt, system, prompt_json, options_json, response, response_json, "
    "conversation_id, duration_ms, datetime_utc, input_tokens, output_tokens, token_details, "
    "resolved_model"
)


def released_db(path):
    """A logs.db with two conversations, a response without one, and a bad row; inserted out
    of time order."""
    con = sqlite3.connect(path)
    con.executescript(RELEASED_DDL)
    con.executemany(
        "INSERT INTO conversations VALUES (?, ?, ?)",
        [
            ("01jaconv", "Hi", "gpt-4o-mini"),
            ("01jbconv", "Summarize", "anthropic/claude-3-5-haiku-latest"),
        ],
    )
    responses = [
        # second turn of 01jaconv, inserted first; a prompt fragment precedes its prompt
        (
            "01ja0002",
            "gpt-4o-mini",
            "Translate it.",
            "Be brief.",
            None,
            '{"max_tokens": 100}',
            "Utilisez le lien.",
            '{"finish_reason": "length"}',
            "01jaconv",
            640,
            "2024-12-12T10:41:30.000001",
            1300,
            50,
            None,
            None,
        ),
        (
            "01ja0001",
            "gpt-4o-mini",
            "Reset my password",
            "Be brief.",
            None,
            "{}",
            "Use the link.",
            '{"finish_reason": "stop"}',
            "01jaconv",
            812,
            "2024-12-12T10:40:00.123456",
            1200,
            100,
            '{"prompt_tokens_details": {"cached_tokens": 1024}}',
            None,
        ),
        (
            "01jb0001",
            "anthropic/claude-3-5-haiku-latest",
            "Summarize this file.",
            None,
            None,
            '{"cache": true}',
            "A changelog.",
            '{"stop_reason": "end_turn"}',
            "01jbconv",
            1500,
            "2024-12-12T11:00:00",
            20,
            30,
            '{"cache_creation_input_tokens": 0, "cache_read_input_tokens": 1000}',
            None,
        ),
        # llm < 0.19: no usage logged, no conversation row
        (
            "01jz0001",
            "gpt-4o",
            "Hello there",
            None,
            None,
            "{}",
            "Hi! How can I help?",
            None,
            None,
            300,
            "2023-08-01T09:00:00",
            None,
            None,
            None,
            None,
        ),
        (
            "01jy0001",
            "gpt-4o",
            "Broken",
            None,
            None,
            "{}",
            "x",
            None,
            None,
            10,
            "2024-12-12T12:00:00",
            -3,
            1,
            None,
            None,
        ),
    ]
    con.executemany(
        f"INSERT INTO responses ({RESPONSE_FIELDS}) VALUES ({', '.join('?' * 15)})", responses
    )
    con.execute("INSERT INTO fragments VALUES (1, 'h1', 'Use the link.', '2024-12-12', 'x')")
    con.execute("INSERT INTO prompt_fragments VALUES ('01ja0002', 1, 0)")
    con.execute("INSERT INTO _llm_migrations VALUES ('m019_resolved_model', '2024-12-01')")
    con.commit()
    con.close()
    return str(path)


def rows(ws):
    names = [c.strip() for c in COLUMNS.split(",")]
    found = ws.con.execute(f"SELECT {COLUMNS} FROM calls").fetchall()
    return {row[0]: dict(zip(names, row, strict=True)) for row in found}


def test_logs_db_end_to_end(ws, tmp_path):
    path = released_db(tmp_path / "logs.db")
    assert LlmLogsAdapter().claims_file(path)
    result = ingest_files(ws, [str(tmp_path)])  # a folder: logs.db is found and claimed
    assert (result.files[0].format, result.read, result.stored, result.duplicates) == (
        "llm-logs",
        5,
        4,
        0,
    )
    assert result.read == result.stored + result.duplicates + result.rejected == 5
    # rows come conversation by conversation: 01jaconv (2), 01jbconv, 01jy0001, 01jz0001
    assert ws.con.execute("SELECT source_line, error FROM rejects").fetchall() == [
        (4, "field 'input_tokens': negative token count: -3")
    ]
    price_calls(ws, load_config(None))
    got = rows(ws)

    first, second = got["01ja0001"], got["01ja0002"]
    assert (first["conversation_id"], first["turn"], second["turn"]) == ("01jaconv", 1, 2)
    assert (first["source_line"], second["source_line"]) == (1, 2)  # by datetime_utc
    # OpenAI: input_tokens already includes the 1,024 cached tokens
    assert (first["input_tokens"], first["cache_read_tokens"], first["output_tokens"]) == (
        1200,
        1024,
        100,
    )
    # gpt-4o-mini: 176 × 0.15/M + 1,024 × 0.075/M + 100 × 0.60/M = 0.0000264 + 0.0000768 + 0.00006
    assert first["cost_usd"] == Decimal("0.000163200")
    assert (first["latency_ms"], first["finish_reason"], first["system_prompt"]) == (
        812.0,
        "stop",
        "Be brief.",
    )
    # the fragment comes first, joined with a newline (llm.Prompt.prompt)
    assert second["query"] == "Use the link.\nTranslate it."
    assert (second["max_tokens"], second["finish_reason"]) == (100, "length")
    assert json.loads(second["messages"]) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Reset my password"},
        {"role": "assistant", "content": "Use the link."},
        {"role": "user", "content": "Use the link.\nTranslate it."},
    ]
    # 1,300 × 0.15/M + 50 × 0.60/M = 0.000195 + 0.00003 = 0.000225
    assert second["cost_usd"] == Decimal("0.000225000")

    claude = got["01jb0001"]
    # llm-anthropic logs Anthropic's uncached input_tokens: 20 + 1,000 cache read = 1,020
    assert (claude["provider"], claude["model"]) == ("anthropic", "claude-3-5-haiku-latest")
    assert (claude["input_tokens"], claude["cache_read_tokens"], claude["output_tokens"]) == (
        1020,
        1000,
        30,
    )
    # claude-3-5-haiku: 20 × 0.80/M + 1,000 × 0.08/M + 30 × 4/M = 0.000016 + 0.00008 + 0.00012
    assert claude["cost_usd"] == Decimal("0.000216000")
    assert claude["finish_reason"] == "stop"

    old = got["01jz0001"]
    assert (old["conversation_id"], old["turn"], old["tokens_source"]) == (
        "01jz0001",
        1,
        "estimated",
    )
    assert old["input_tokens"] > 0 and old["output_tokens"] > 0


def test_turns_schema_and_duplicate_across_tables(ws, tmp_path):
    path = tmp_path / "dev.db"
    con = sqlite3.connect(path)
    con.executescript(RELEASED_DDL + TURNS_DDL)
    con.execute("INSERT INTO threads VALUES ('th1', 'Capitals', NULL, NULL, '2025-06-01')")
    con.executemany(
        "INSERT INTO turns VALUES (?, 'th1', NULL, NULL, 'gpt-4o', 'gpt-4o-2024-08-06', '{}', "
        "NULL, ?, ?, NULL, 400, ?)",
        [("u2", 150, 10, "2025-06-01T09:05:00"), ("u1", 100, 20, "2025-06-01T09:00:00")],
    )
    con.executemany(
        "INSERT INTO turn_search (turn_id, prompt, response) VALUES (?, ?, ?)",
        [("u1", "Capital of France?", "Paris."), ("u2", "And of Italy?", "Rome.")],
    )
    # the same call also in the older responses table: read once, then a duplicate
    con.execute(
        f"INSERT INTO responses ({RESPONSE_FIELDS}) VALUES ('u1', 'gpt-4o', 'Capital of France?', "
        "NULL, NULL, '{}', 'Paris.', NULL, NULL, 400, '2025-06-01T09:00:00', 100, 20, NULL, NULL)"
    )
    con.commit()
    con.close()
    result = ingest_files(ws, [str(path)])
    assert (result.read, result.stored, result.duplicates, result.rejected) == (3, 2, 1, 0)
    price_calls(ws, load_config(None))
    got = rows(ws)
    u1, u2 = got["u1"], got["u2"]
    assert (u2["conversation_id"], u2["turn"], u2["query"], u2["response"]) == (
        "th1",
        2,
        "And of Italy?",
        "Rome.",
    )
    assert json.loads(u2["messages"]) == [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy?"},
    ]
    assert u2["model"] == "gpt-4o-2024-08-06"  # the resolved model
    # gpt-4o: 150 × 2.50/M + 10 × 10/M = 0.000375 + 0.0001 = 0.000475
    assert u2["cost_usd"] == Decimal("0.000475000")
    # u1 is read from `turns` first; its copy in `responses` is the duplicate
    assert (u1["conversation_id"], u1["turn"], u1["input_tokens"], u1["output_tokens"]) == (
        "th1",
        1,
        100,
        20,
    )


def test_llm_logs_json_end_to_end(ws):
    result = ingest_files(ws, [str(LOGS_JSON)])
    assert (result.files[0].format, result.read, result.stored, result.rejected) == (
        "llm-logs",
        4,
        4,
        0,
    )
    price_calls(ws, load_config(None))
    got = rows(ws)
    a1, a2 = got["01jf0a1b2c3d4e5f6g7h8j9k0m"], got["01jf0a1b2c3d4e5f6g7h8j9k1n"]
    assert (a1["turn"], a2["turn"], a2["conversation_id"]) == (1, 2, "01jf0a1b2c3d4e5f6g7h8j9kcv")
    assert a1["cost_usd"] == Decimal(
        "0.000163200"
    )  # as in the logs.db test: 1,200 in, 1,024 cached
    assert len(json.loads(a2["messages"])) == 4  # system, Hi, reply, this prompt
    claude = got["01jf0b2c3d4e5f6g7h8j9k0m1p"]
    assert claude["query"] == "# Changelog\n- fixed bugs\nSummarize this file."
    assert (claude["input_tokens"], claude["cost_usd"]) == (1020, Decimal("0.000216000"))
    gemini = got["01jf0c3d4e5f6g7h8j9k0m1p2q"]
    assert (gemini["provider"], gemini["model"], gemini["finish_reason"]) == (
        "google",
        "gemini-2.0-flash-001",
        "stop",
    )
    # gemini-2.0-flash: 50 × 0.10/M + 40 × 0.40/M = 0.000005 + 0.000016 = 0.000021
    assert gemini["cost_usd"] == Decimal("0.000021000")


def test_claims_sqlite_files_and_says_when_one_is_not_llms(tmp_path):
    adapter = LlmLogsAdapter()
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE notes (id INTEGER, body TEXT)")
    con.commit()
    con.close()
    # levers reads SQLite only as llm's logs.db: the adapter owns every SQLite file, so a
    # database without llm's tables is told apart by what it lacks, not by its file type
    assert adapter.claims_file(str(other))
    assert not adapter.claims_file(str(LOGS_JSON))
    assert not adapter.claims_file(str(tmp_path / "missing.db"))
    with pytest.raises(InputFileError) as raised:
        adapter.open_file(str(other))
    assert str(raised.value) == (
        f"{other}: a SQLite database, but not an llm logs database: no table `responses` (or "
        "`turns`) with llm's columns (tables: notes); levers reads SQLite only as "
        "simonw/llm's logs.db"
    )


def test_usage_details_per_plugin():
    # OpenAI Responses API details: cached inside input, reasoning inside output
    usage = llm_usage(
        300,
        120,
        {
            "input_tokens_details": {"cached_tokens": 256},
            "output_tokens_details": {"reasoning_tokens": 64},
        },
    )
    assert usage == {
        "input_tokens": 300,
        "cache_read_tokens": 256,
        "cache_write_tokens": 0,
        "output_tokens": 120,
        "reasoning_tokens": 64,
    }
    # llm-anthropic: 5 uncached + 200 written + 0 read = 205
    anthropic = llm_usage(
        5, 7, '{"cache_creation_input_tokens": 200, "cache_read_input_tokens": 0}'
    )
    assert (anthropic["input_tokens"], anthropic["cache_write_tokens"]) == (205, 200)
    # llm-gemini: output = candidates + thoughts already; thoughts are the reasoning part
    gemini = llm_usage(
        80,
        90,
        {"candidatesTokenCount": 30, "thoughtsTokenCount": 60, "cachedContentTokenCount": 64},
    )
    assert (gemini["cache_read_tokens"], gemini["output_tokens"], gemini["reasoning_tokens"]) == (
        64,
        90,
        60,
    )
    assert llm_usage(None, None, None) == {"input_tokens": None, "output_tokens": None}


def test_gemini_thoughts_are_output_in_both_plugin_shapes(ws, tmp_path):
    """llm-gemini before 9a1ccac (2025-05-07, its issue #75) popped ``candidatesTokenCount``
    and logged it alone as ``output_tokens``, leaving ``thoughtsTokenCount`` in the details
    (simonw/llm-gemini ``llm_gemini.py`` ``set_usage`` at c702761); since, output is
    candidates + thoughts and both stay in the details. The counts are those of the real
    gemini-2.5-flash stream in tests/fixtures/gemini/streams.jsonl (test_tools: prompt 32,
    candidates 12, thoughts 42)."""
    old = llm_usage(32, 12, {"thoughtsTokenCount": 42, "promptTokensDetails": []})
    new = llm_usage(32, 54, {"candidatesTokenCount": 12, "thoughtsTokenCount": 42})
    for usage in (old, new):
        assert (usage["input_tokens"], usage["output_tokens"], usage["reasoning_tokens"]) == (
            32,
            54,
            42,
        )
    row = {
        "id": "01jtgemini0000000000000000",
        "model": "gemini-2.5-flash",
        "prompt": "Two names for a pet pelican",
        "system": None,
        "response": "",
        "conversation_id": "01jtgeminiconversation0000",
        "datetime_utc": "2025-04-30T10:00:00",
        "input_tokens": 32,
        "output_tokens": 12,
        "token_details": json.dumps({"thoughtsTokenCount": 42}),
    }
    path = tmp_path / "logs.json"
    path.write_text(json.dumps([row]), encoding="utf-8")
    ingest_files(ws, [str(path)])
    price_calls(ws, load_config(None))
    output, cost = ws.con.execute("SELECT output_tokens, cost_usd FROM calls").fetchone()
    # gemini-2.5-flash (ai.google.dev pricing): 32 × 0.30 + 54 × 2.50 = 144.6 per million
    assert (output, cost) == (54, Decimal("0.000144600"))
