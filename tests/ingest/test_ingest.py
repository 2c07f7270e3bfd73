"""Ingest: adapters, detection, --map paths, containers, and the reconciliation
read = stored + duplicates + rejected."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest

from levers_cli.errors import InputFileError, MappingError, RecordError, UnknownFormatError
from levers_cli.ingest.fields import parse_ts
from levers_cli.ingest.jsonpath import parse_path
from levers_cli.ingest.mapping import parse_mapping
from levers_cli.ingest.pipeline import ingest_files
from levers_cli.text.query import normalize_query, query_hash

OPENAI_PAIR = {
    "request": {
        "model": "gpt-4o-mini",
        "temperature": 0,
        "metadata": {"feature": "faq"},
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": [{"type": "text", "text": "Reset my password"}]},
        ],
    },
    "response": {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_730_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Use the link."},
                "finish_reason": "length",
            }
        ],
        "usage": {
            "prompt_tokens": 40,
            "completion_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    },
    "latency_ms": 812.5,
}

ANTHROPIC_PAIR = {
    "request": {
        "model": "claude-sonnet-4-5",
        "system": "Be brief.",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "What is 2+2?"}],
    },
    "response": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "4"}],
        "stop_reason": "max_tokens",
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 1000,
            "output_tokens": 2,
        },
    },
    "timestamp": "2025-01-02T03:04:05Z",
}


def write_jsonl(path, records, *, gz=False):
    lines = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(lines)
    else:
        path.write_text(lines, encoding="utf-8")
    return str(path)


def one(ws, sql):
    return ws.con.execute(sql).fetchone()


def test_openai_pair_normalized(ws, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [OPENAI_PAIR])
    result = ingest_files(ws, [path])
    assert (result.read, result.stored, result.files[0].format) == (1, 1, "openai-chat")
    row = one(
        ws,
        """SELECT call_id, provider, model, query, response, system_prompt,
        input_tokens, output_tokens, finish_reason, latency_ms, tokens_source, ts,
        json_extract_string(metadata, '$.feature'), json_extract(metadata, '$.params.temperature')
        FROM calls""",
    )
    assert row[:11] == (
        "chatcmpl-1",
        "openai",
        "gpt-4o-mini-2024-07-18",
        "Reset my password",
        "Use the link.",
        "You are terse.",
        40,
        7,
        "length",
        812.5,
        "usage",
    )
    assert row[11] == datetime(2024, 10, 27, 3, 33, 20, tzinfo=UTC)
    assert row[12] == "faq" and json.loads(row[13]) == 0


def test_bare_openai_response_with_messages_beside(ws, tmp_path):
    bare = dict(OPENAI_PAIR["response"], messages=OPENAI_PAIR["request"]["messages"])
    ingest_files(ws, [write_jsonl(tmp_path / "b.jsonl", [bare])])
    assert one(ws, "SELECT format, query, input_tokens FROM calls") == (
        "openai-chat",
        "Reset my password",
        40,
    )


def test_anthropic_pair_additive_buckets(ws, tmp_path):
    ingest_files(ws, [write_jsonl(tmp_path / "c.jsonl", [ANTHROPIC_PAIR])])
    row = one(
        ws,
        """SELECT format, provider, input_tokens, cache_read_tokens, cache_write_tokens,
        output_tokens, finish_reason, system_prompt, ts FROM calls""",
    )
    assert row == (
        "anthropic",
        "anthropic",
        1110,
        1000,
        100,
        2,
        "length",
        "Be brief.",
        datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def test_generic_map_nested_paths_and_metadata(ws, tmp_path):
    record = {
        "uid": "q1",
        "ans_id": "a1",
        "model": "gpt-4-0613",
        "tstamp": 1_711_076_863.5,
        "messages": [
            {"role": "user", "content": "Explain UMAP"},
            {"role": "assistant", "content": {"answer": "UMAP is ..."}},
        ],
    }
    path = write_jsonl(tmp_path / "arena.jsonl.gz", [record], gz=True)
    mapping = parse_mapping(
        [
            "query=messages[0].content",
            "response=messages[-1].content.answer",
            "model=model",
            "ts=tstamp",
            "label=uid",
        ]
    )
    result = ingest_files(ws, [path], mapping=mapping)
    assert result.files[0].format == "generic"
    row = one(
        ws,
        """SELECT query, response, model, provider, ts, tokens_source,
        json_extract_string(metadata, '$.label'), json_extract_string(metadata, '$.ans_id')
        FROM calls""",
    )
    assert row[:4] == ("Explain UMAP", "UMAP is ...", "gpt-4-0613", "openai")
    assert row[4] == datetime(2024, 3, 22, 3, 7, 43, 500000, tzinfo=UTC)
    assert row[5] == "estimated"
    assert row[6] == "q1" and row[7] == "a1"  # unmapped columns are kept in metadata


def test_generic_csv_with_default_columns(ws, tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(
        "id,timestamp,model,prompt,response,prompt_tokens,completion_tokens\n"
        'r1,2025-05-01T08:00:00Z,gpt-4o-mini,"Hello, there",Hi,12,15\n'
        "r2,1746086400,gpt-4o-mini,Second,Ok,3,4\n",
        encoding="utf-8",
    )
    result = ingest_files(ws, [str(path)])
    assert (result.stored, result.rejected) == (2, 0)
    rows = ws.con.execute(
        "SELECT call_id, query, input_tokens, output_tokens, ts FROM calls ORDER BY call_id"
    ).fetchall()
    assert rows[0][:4] == ("r1", "Hello, there", 12, 15)
    assert rows[1][4] == datetime(2025, 5, 1, 8, 0, tzinfo=UTC)  # epoch 1746086400


def test_json_array_and_parquet(ws, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    array = tmp_path / "rows.json"
    array.write_text(
        json.dumps(
            [{"text": "a question", "model": "gpt-4o"}, {"text": "another", "model": "gpt-4o"}]
        )
    )
    table = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"question": ["x?", "y?", "z?"], "model": ["gpt-4o"] * 3}), table)
    result = ingest_files(ws, [str(array), str(table)])
    assert [(f.read, f.stored) for f in result.files] == [(2, 2), (3, 3)]


def test_reconciliation_with_bad_lines_and_reingest(ws, tmp_path):
    pair2 = json.loads(json.dumps(OPENAI_PAIR))
    pair2["response"]["id"] = "chatcmpl-2"
    negative = json.loads(json.dumps(OPENAI_PAIR))
    negative["response"]["id"] = "chatcmpl-3"
    negative["response"]["usage"]["completion_tokens"] = -5
    lines = [OPENAI_PAIR, "{not json", "", pair2, OPENAI_PAIR, negative, "[1, 2]"]
    path = write_jsonl(tmp_path / "messy.jsonl", lines)
    result = ingest_files(ws, [path])
    # the blank line (3) is no record: 6 read
    assert (result.read, result.stored, result.duplicates, result.rejected) == (6, 2, 1, 3)
    assert result.read == result.stored + result.duplicates + result.rejected
    rejects = ws.con.execute(
        "SELECT source_line, error FROM rejects ORDER BY source_line"
    ).fetchall()
    assert [r[0] for r in rejects] == [2, 6, 7]
    assert "not JSON" in rejects[0][1] and rejects[2][1] == "a JSON array, not an object"
    assert "usage.completion_tokens" in rejects[1][1] and "negative" in rejects[1][1]
    again = ingest_files(ws, [path])
    assert (again.stored, again.duplicates, again.rejected) == (0, 3, 3)
    assert ws.count("calls") == 2
    assert ws.count("runs") == 2


def test_reading_a_file_again_in_another_format_or_mapping_is_refused(ws, tmp_path):
    # the same records under another adapter get other call ids: they would be stored twice
    path = write_jsonl(tmp_path / "chat.jsonl", [OPENAI_PAIR])
    assert ingest_files(ws, [path]).stored == 1
    with pytest.raises(InputFileError, match=r"stored by run 1, read as openai-chat; reading"):
        ingest_files(ws, [path], format="anthropic")
    assert ws.count("calls") == 1 and ws.count("runs") == 1  # the run was rolled back
    assert ingest_files(ws, [path], format="openai-chat").duplicates == 1  # as before: fine
    sheet = tmp_path / "t.csv"
    sheet.write_text("text,category\nhello there,greet\nwhat is my balance,money\n")
    first = ingest_files(ws, [str(sheet)], mapping=parse_mapping(["label=category", "query=text"]))
    assert first.stored == 2
    same = ingest_files(ws, [str(sheet)], mapping=parse_mapping(["query=text", "label=category"]))
    assert same.duplicates == 2  # the same --map in another order
    with pytest.raises(InputFileError, match=r"with --map label=category, query=text; reading"):
        ingest_files(ws, [str(sheet)], mapping=parse_mapping(["query=category"]))
    assert ws.count("calls") == 3
    # a first read whose records were all rejected stored nothing: another format may follow
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"request": {}, "response": {}}) + "\n")
    assert ingest_files(ws, [str(other)], format="openai-chat").stored == 0


def test_a_line_nested_too_deeply_is_quarantined_not_a_crash(ws, tmp_path):
    # json's parser recurses once per nesting level: 3,000 levels pass Python's limit
    deep = '{"a":' * 3000 + "1" + "}" * 3000
    path = tmp_path / "deep.jsonl"
    lines = [json.dumps(OPENAI_PAIR), deep, '{"unterminated": "abc']
    path.write_text("\n".join(lines) + "\n")
    result = ingest_files(ws, [str(path)])
    assert (result.read, result.stored, result.rejected) == (3, 1, 2)
    rejects = ws.con.execute("SELECT source_line, error FROM rejects ORDER BY 1").fetchall()
    assert rejects == [
        (2, "not JSON (nested too deeply to read)"),
        (3, "not JSON (Unterminated string starting at column 18)"),
    ]


def test_identical_rows_without_ids_are_all_kept_once(ws, tmp_path):
    path = tmp_path / "same.csv"
    path.write_text("text\nwhat is my balance\nwhat is my balance\nhello\n")
    first = ingest_files(ws, [str(path)])
    second = ingest_files(ws, [str(path)])
    assert (first.stored, second.stored, second.duplicates) == (3, 0, 3)


def test_other_format_in_the_middle_is_rejected_not_fatal(ws, tmp_path):
    path = write_jsonl(tmp_path / "mixed.jsonl", [OPENAI_PAIR, {"foo": "bar"}])
    result = ingest_files(ws, [path])
    assert (result.stored, result.rejected) == (1, 1)
    assert "request" in one(ws, "SELECT error FROM rejects")[0]


def test_missing_file_unknown_format_and_missing_column(ws, tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        ingest_files(ws, [str(tmp_path / "nope.jsonl")])
    with pytest.raises(UnknownFormatError, match="choose one of: openai-chat"):
        ingest_files(ws, [write_jsonl(tmp_path / "x.jsonl", [OPENAI_PAIR])], format="fooo")
    odd = ingest_files(ws, [write_jsonl(tmp_path / "odd.jsonl", [{"foo": 1}, {"bar": 2}])])
    assert (odd.read, odd.rejected, odd.files[0].format) == (2, 2, None)
    assert (
        "cannot tell the log format of this file from line 1 (keys: foo)"
        in (odd.reject_samples[0][2])
    )
    ws.con.execute("DELETE FROM rejects")
    ws.con.execute("DELETE FROM runs")
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("text,category\nhi,greet\n")
    with pytest.raises(MappingError, match=r"t.csv:1: column 'utterance'"):
        ingest_files(ws, [str(csv_path)], mapping=parse_mapping(["query=utterance"]))
    assert ws.count("calls") == 0 and ws.count("runs") == 0  # failed runs leave nothing


def test_error_response_counts_as_failed_call(ws, tmp_path):
    failed = {
        "request": OPENAI_PAIR["request"],
        "response": {"error": {"message": "Rate limit reached", "type": "requests"}},
    }
    ingest_files(ws, [write_jsonl(tmp_path / "e.jsonl", [failed])])
    assert one(ws, "SELECT status, error, input_tokens, output_tokens FROM calls") == (
        "error",
        "Rate limit reached",
        0,
        0,
    )


def test_parse_path_and_resolve():
    record = {
        "messages": [{"content": "a"}, {"content": {"answer": "b"}}],
        "meta": '{"k": [1, 2]}',
        "a.b": 5,
    }
    assert parse_path("messages[0].content").resolve(record) == "a"
    assert parse_path("messages[-1].content.answer").resolve(record) == "b"
    assert parse_path("meta.k[1]").resolve(record) == 2  # JSON inside a string cell
    assert parse_path("a.b").resolve(record) == 5  # a column whose name has a dot
    assert parse_path("messages[5].content").resolve(record) is None
    with pytest.raises(MappingError):
        parse_path("messages[x]")
    with pytest.raises(MappingError):
        parse_mapping(["query"])


def test_paths_take_the_column_names_people_use():
    """Names with a hyphen or a space are plain names (jmespath needs the first quoted and
    refuses the second, as jsonpath-ng does: the reason ingest/jsonpath.py keeps its own);
    an index past either end is absent, not an error."""
    record = {"user-id": 7, "my col": {"x": [1, 2, 3]}, "rows": []}
    assert parse_path("user-id").resolve(record) == 7
    assert parse_path("my col.x[-3]").resolve(record) == 1
    assert parse_path("my col.x[-4]").resolve(record) is None
    assert parse_path("rows[0]").resolve(record) is None


def test_parse_ts_forms():
    assert parse_ts(1_730_000_000) == datetime(2024, 10, 27, 3, 33, 20, tzinfo=UTC)
    assert parse_ts(1_730_000_000_000) == datetime(2024, 10, 27, 3, 33, 20, tzinfo=UTC)
    assert parse_ts("2024-10-27T05:33:20+02:00") == datetime(2024, 10, 27, 3, 33, 20, tzinfo=UTC)
    assert parse_ts("2024-10-27 03:33:20") == datetime(2024, 10, 27, 3, 33, 20, tzinfo=UTC)
    with pytest.raises(RecordError):
        parse_ts("yesterday")


def test_query_normalization():
    assert normalize_query("  How do I\n reset   my PASSWORD? ") == "how do i reset my password?"
    assert query_hash("Reset  password") == query_hash("reset password")
    assert query_hash("reset password") != query_hash("reset passwords")


def test_same_id_on_different_records_is_not_a_duplicate(ws, tmp_path):
    week1 = tmp_path / "week1.csv"
    week1.write_text("id,text,model\n1,reset password,gpt-4o\n2,refund,gpt-4o\n")
    week2 = tmp_path / "week2.csv"  # ids restart at 1 in the next export
    week2.write_text("id,text,model\n1,cancel plan,gpt-4o\n2,refund,gpt-4o\n")
    first = ingest_files(ws, [str(week1)])
    second = ingest_files(ws, [str(week2)])
    assert (first.stored, second.stored, second.duplicates) == (2, 1, 1)
    assert second.files[0].id_collisions == 1
    ids = [r[0] for r in ws.con.execute("SELECT call_id FROM calls ORDER BY call_id").fetchall()]
    assert ids[:2] == ["1", "1~" + ids[1].split("~")[1]] and len(ids) == 3
    again = ingest_files(ws, [str(week2)])  # re-reading stores nothing new
    assert (again.stored, again.duplicates) == (0, 2)
    same_id = [dict(OPENAI_PAIR), json.loads(json.dumps(OPENAI_PAIR))]
    same_id[1]["request"]["messages"][-1]["content"] = "a different question"
    result = ingest_files(ws, [write_jsonl(tmp_path / "local.jsonl", same_id)])
    assert (result.stored, result.duplicates, result.files[0].id_collisions) == (2, 0, 1)
