"""The fast paths of issue 8 give what the reference paths give: orjson parsing, block-read
chunks, worker processes, the fingerprint encoder, rate-card prices, streamed conversations."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, date, datetime

import pytest

from levers_cli.enrich.conversations import link_conversations
from levers_cli.enrich.prices import _ListPrices, list_price
from levers_cli.ingest import pipeline, records
from levers_cli.ingest.pipeline import ingest_files
from levers_cli.ingest.readers import open_records
from levers_cli.ingest.records import parse_line
from levers_cli.ingest.rows import call_fingerprint, dump_json
from levers_cli.store import Workspace
from levers_cli.text.content import content_text

# --- parsing --------------------------------------------------------------------------------

ODD_LINES = [
    b'{"a": 1, "b": 2, "a": 3}',  # duplicate key: the last wins, at the first's place
    b'{"n": 123456789012345678901234567890}',  # beyond 64 bits: json keeps the int
    b'{"n": -9223372036854775809, "m": 18446744073709551615}',
    b'{"id": "1790816457000000000123"}',  # a long digit run inside a string
    b'{"x": NaN, "y": Infinity}',
    b'{"x": 1e400}',
    b'{"s": "\\ud800"}',  # a lone surrogate
    b'{"f": -0.0, "g": 0.1, "h": 5e-324, "i": 1E5}',
    b'{"t": "caf\xc3\xa9 \xe2\x80\xa8 \\u2029"}',
    b'  {"padded": true}  \r',
    b'{"nbsp": 1}\xc2\xa0',  # trailing non-JSON whitespace that str.strip() removes
    b'{"a": 1}\x0c',
    b"",
    b"   ",
    b"[1, 2]",
    b"null",
    b"{not json",
    b'{"text": "caf\xe9"}',  # Latin-1: not UTF-8
    b'{"a": "\x01"}',  # raw control character: not JSON
]


def _reference_line(raw: bytes, lineno: int) -> tuple | None:
    """What readers did before orjson: decode, strip, ``json.loads``."""
    line = raw.rstrip(b"\r\n")
    if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
        line = line[3:]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (None, raw[:200].decode("utf-8", "replace"), f"not UTF-8 (byte {exc.start})")
    if not text.strip():
        return None
    try:
        data = json.loads(text.strip())
    except json.JSONDecodeError as exc:
        return (None, text, f"not JSON ({exc.msg.removesuffix(' at')} at column {exc.colno})")
    if not isinstance(data, dict):
        names = {type(None): "null", list: "array", str: "string", int: "number", bool: "boolean"}
        return (None, text, f"a JSON {names.get(type(data), type(data).__name__)}, not an object")
    return (data, text, None)


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=False) == json.dumps(b, sort_keys=False) and (
        [type(v) for v in a.values()] == [type(v) for v in b.values()]
    )


@pytest.mark.parametrize("lineno", [1, 7])
@pytest.mark.parametrize("raw", ODD_LINES)
def test_parse_line_matches_json(raw, lineno):
    for line, end in ((raw, b"\n"), (raw, b""), (b"\xef\xbb\xbf" + raw, b"\n")):
        expected = _reference_line(line + end, lineno)
        got = parse_line(line, lineno, end)
        if expected is None:
            assert got is None
            continue
        data, text, error = expected
        assert (got.line, got.text, got.error) == (lineno, text, error)
        assert (got.data is None) == (data is None)
        if data is not None:
            assert _same(got.data, data)


def _write_lines(path, lines: list[bytes], end: bytes = b"\n") -> None:
    path.write_bytes(end.join(lines))


def test_block_chunks_and_line_chunks_give_the_same_records(tmp_path, monkeypatch):
    monkeypatch.setattr(records, "CHUNK_BYTES", 64)  # many chunks, lines longer than one
    monkeypatch.setattr(records, "CHUNK_LINES", 3)
    long = json.dumps({"text": "word " * 100}).encode()
    lines = [b'{"text": "a"}', long, b"", b"[1]", b'{"text": "caf\xe9"}', long, b'{"x": 2}']
    for end in (b"\n", b"\r\n"):
        plain, packed = tmp_path / "p.jsonl", tmp_path / "g.jsonl.gz"
        _write_lines(plain, lines, end)  # no line end after the last line
        packed.write_bytes(gzip.compress(plain.read_bytes()))
        got = [list(open_records(str(p))) for p in (plain, packed)]
        expected = [_reference_line(x + end, i) for i, x in enumerate(lines, 1)]
        expected[-1] = _reference_line(lines[-1], len(lines))  # the last has no line end
        for found in got:
            rows = [(r.line, r.data, r.text, r.error) for r in found]
            want = [(i, *e) for i, e in enumerate(expected, 1) if e is not None]
            assert rows == want


# --- rows -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "row",
    [
        {"ts": datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "query": 'héllo "x"\n\x01\u2028'},
        {"query": "a", "response": "b", "input_tokens": 5, "output_tokens": 0, "status": "ok"},
        {"query": "a", "input_tokens": True, "output_tokens": 2.0},
        {},
    ],
)
def test_fingerprint_is_the_json_dumps_one(row):
    ts = row.get("ts")
    key = [ts.isoformat() if ts else None]
    key += [row.get(k) for k in ("query", "response", "input_tokens", "output_tokens", "status")]
    canonical = json.dumps(key, sort_keys=True, ensure_ascii=False, default=str)
    assert call_fingerprint(row) == hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


def test_dump_json_round_trips_and_falls_back():
    value = {
        "a": [1, 2.5, None, True],
        "when": datetime(2025, 1, 1, tzinfo=UTC),
        "d": date(2025, 1, 2),
    }
    assert json.loads(dump_json(value)) == {
        "a": [1, 2.5, None, True], "when": "2025-01-01T00:00:00+00:00", "d": "2025-01-02"
    }  # fmt: skip
    big = {"n": 123456789012345678901234567890, "s": "\ud800"}  # orjson refuses both
    assert dump_json(big) == json.dumps(big, ensure_ascii=False)


# --- worker processes -------------------------------------------------------------------------


def _generic_lines() -> list[bytes]:
    out = []
    for i in range(300):
        row = {"text": f"question {i % 40}", "model": "gpt-4o-mini", "input_tokens": 10 + i}
        row["output_tokens"] = 3
        if i % 3:
            row["id"] = f"call-{i % 250}"  # ids repeat: duplicates and collisions
        out.append(json.dumps(row).encode())
        if i % 50 == 7:
            out += [b"{broken", b"", b'{"text": "caf\xe9"}', b'{"model": "gpt-4o"}']
        if i % 60 in (9, 10):
            out.append(out[-1])  # an identical record: a duplicate, or a second content id
    return out


def _table(ws: Workspace, sql: str) -> list[tuple]:
    return ws.con.execute(sql).fetchall()


def test_worker_processes_store_what_one_process_stores(tmp_path, monkeypatch):
    path = tmp_path / "calls.jsonl"
    _write_lines(path, _generic_lines())
    seed = tmp_path / "seed.jsonl"  # already stored: some ids collide with stored calls
    seed.write_text(json.dumps({"id": "call-5", "text": "other", "model": "gpt-4o"}) + "\n")
    results = []
    for workers in (1, 2):
        if workers == 2:
            monkeypatch.setattr(pipeline, "PARALLEL_AFTER", 0)
            monkeypatch.setattr(records, "CHUNK_BYTES", 2_000)
        with Workspace(tmp_path / f"w{workers}.duckdb") as ws:
            ingest_files(ws, [str(seed)])
            result = ingest_files(ws, [str(path)], workers=workers)
            calls = _table(
                ws,
                """SELECT * EXCLUDE (messages, metadata), json(messages), json(metadata)
                   FROM calls ORDER BY call_id""",
            )
            rejects = _table(ws, "SELECT * FROM rejects ORDER BY source_line")
            results.append((result.as_dict(), calls, rejects))
    (one, calls1, rejects1), (two, calls2, rejects2) = results
    assert one["read"] == one["stored"] + one["duplicates"] + one["rejected"]
    assert one["duplicates"] > 0 and one["rejected"] > 0 and one["files"][0]["id_collisions"] > 0
    assert {k: v for k, v in one.items() if k != "run_id"} == {
        k: v for k, v in two.items() if k != "run_id"
    }
    assert calls1 == calls2 and rejects1 == rejects2


# --- prices -----------------------------------------------------------------------------------


def test_rate_card_prices_are_calc_prices():
    prices = _ListPrices()
    cases = [
        ("openai", "gpt-4o-mini", date(2025, 3, 1)),
        ("openai", "gpt-4o", None),
        ("anthropic", "claude-3-5-sonnet-20241022", date(2025, 1, 1)),
        ("google", "gemini-1.5-pro", date(2025, 1, 1)),  # tiered above 128k input tokens
        ("openai", "acme-llm-9", None),  # unknown
        (None, "gpt-4o-mini", None),
    ]
    usages = [(1000, 0, 0, 50), (5000, 4096, 0, 7), (3000, 1000, 500, 0), (0, 0, 0, 9)]
    usages += [(128_000, 0, 0, 10), (128_001, 0, 0, 10), (300_000, 20_000, 0, 1000)]
    for provider, model, day in cases:
        for usage in usages * 2:  # twice: the card is checked on its first calls only
            assert prices.cost(provider, model, usage, day) == list_price(
                provider, model, usage, day
            ), (provider, model, usage)


# --- conversations ----------------------------------------------------------------------------


def _reference_links(ws: Workspace) -> dict[str, tuple[str, int]]:
    """link_conversations before it streamed: every call's messages parsed in time order."""

    def key(role, content):
        return f"{role}\x1f{' '.join(content_text(content).split())}".encode() + b"\x1e"

    rows = ws.con.execute(
        """SELECT call_id, messages, response, conversation_id, turn FROM calls
           ORDER BY ts NULLS LAST, source_file, source_line, call_id"""
    ).fetchall()
    owners: dict[str, list] = {}
    out = {}
    for call_id, text, response, conversation, turn in rows:
        messages = json.loads(text) if text else []
        digest, prefixes = hashlib.blake2b(digest_size=16), []
        for m in messages:
            digest.update(key(m.get("role"), m.get("content")))
            if m.get("role") == "assistant":
                prefixes.append(digest.copy().hexdigest())
        digest.update(key("assistant", response or ""))
        if conversation is None:
            conversation = "conv:" + call_id
            for prefix in reversed(prefixes):
                if prefix in owners:
                    fresh = [c for c in owners[prefix] if not c[1]]
                    chosen = (fresh or owners[prefix])[-1]
                    chosen[1] = True
                    conversation = chosen[0]
                    break
        turn = turn if turn is not None else len(prefixes) + 1
        owners.setdefault(digest.hexdigest(), []).append([conversation, False])
        out[call_id] = (conversation, turn)
    return out


def _pair(call_id: str, t: int, messages: list, reply: str) -> dict:
    return {
        "request": {"model": "gpt-4o-mini", "messages": messages},
        "response": {
            "id": call_id,
            "created": 1_790_000_000 + t,
            "model": "gpt-4o-mini",
            "choices": [{"message": {"role": "assistant", "content": reply}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2},
        },
    }


def test_streamed_conversations_match_the_reference(tmp_path, ws):
    system = {"role": "system", "content": "You are a careful assistant. " * 20}  # memoized
    lines = []
    for c in range(3):  # c 0 and 1 open with the same question and get the same answer
        q1 = {"role": "user", "content": "hello" if c < 2 else [{"type": "text", "text": "hi"}]}
        history = [system, q1]
        lines.append(_pair(f"c{c}-1", 10 * c, history, "Hi!  How can I help?"))
        history = [
            *history,
            {"role": "assistant", "content": [{"type": "text", "text": "Hi! How can I help?"}]},
        ]
        history = [*history, {"role": "user", "content": f"question {c}"}]
        lines.append(_pair(f"c{c}-2", 10 * c + 100, history, f"answer {c}"))
        history = [*history, {"role": "assistant", "content": f"answer {c}"}]
        lines.append(
            _pair(f"c{c}-3", 10 * c + 200, [*history, {"role": "user", "content": "ok"}], "ok")
        )
    path = tmp_path / "conv.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    ingest_files(ws, [str(path)])
    expected = _reference_links(ws)
    assert link_conversations(ws) == len(expected)
    got = {
        r[0]: (r[1], r[2])
        for r in ws.con.execute("SELECT call_id, conversation_id, turn FROM calls").fetchall()
    }
    assert got == expected
    assert got["c2-3"] == ("conv:c2-1", 3) and {got["c0-2"][0], got["c1-2"][0]} == {
        "conv:c0-1", "conv:c1-1"
    }  # fmt: skip


def test_ingest_caps_duckdb_memory_only_while_it_runs(ws, tmp_path, monkeypatch):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"text": "hello", "model": "gpt-4o-mini"}) + "\n")
    setting = "SELECT current_setting('memory_limit')"
    before = ws.con.execute(setting).fetchone()[0]
    seen = []
    original = Workspace.record_run

    def spy(self, *args, **kwargs):
        seen.append(self.con.execute(setting).fetchone()[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Workspace, "record_run", spy)
    ingest_files(ws, [str(path)])
    assert len(seen) == 1 and seen[0] != before  # 1 GB while the run was open
    assert ws.con.execute(setting).fetchone()[0] == before
