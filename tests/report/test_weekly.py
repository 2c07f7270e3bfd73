"""Weekly dumps: only new calls are added, category ids stay stable, `--since` scopes the
summary, conversations are rebuilt, and a killed ingest leaves the workspace untouched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from levers_cli.analysis import analyze
from levers_cli.cli import app
from levers_cli.enrich.conversations import conversation_stats, link_conversations
from levers_cli.ingest.pipeline import ingest_files
from levers_cli.store import Workspace
from tests.helpers import FakeEmbedder

TOPICS = {
    "billing": "refund invoice charge card billing {}",
    "login": "password reset login account locked {}",
    "shipping": "parcel delivery tracking courier late {}",
}
START = datetime(2026, 11, 2, tzinfo=UTC)


def _week(path, week: int, topics: dict[str, str], per_topic: int = 15):
    rows = []
    for t_index, (label, template) in enumerate(topics.items()):
        for i in range(per_topic):
            ts = START + timedelta(days=7 * week + i % 7, minutes=t_index * 60 + i)
            rows.append(
                {
                    "text": template.format(f"w{week}x{i}"),
                    "label": label,
                    "timestamp": ts.isoformat(),
                    "model": "gpt-4o-mini",
                }
            )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _category_by_label(ws) -> dict[str, set[int]]:
    rows = ws.con.execute(
        "SELECT json_extract_string(metadata, '$.label'), list(DISTINCT category_id) FROM calls "
        "GROUP BY 1"
    ).fetchall()
    return {label: set(ids) for label, ids in rows}


def test_weekly_dump_keeps_category_ids_and_adds_new_ones(tmp_path):
    embedder = FakeEmbedder()
    with Workspace(tmp_path / "w.duckdb") as ws:
        first = analyze(ws, [_week(tmp_path / "w1.jsonl", 0, TOPICS)], embedder=embedder)
        assert first.summary["ingest"]["stored"] == 45
        before = _category_by_label(ws)
        old_ids = {ws_id for ids in before.values() for ws_id in ids}
        week2 = dict(TOPICS, gardening="tomato seeds soil compost watering {}")
        second = analyze(ws, [_week(tmp_path / "w2.jsonl", 1, week2)], embedder=embedder)
        assert second.summary["ingest"]["stored"] == 60  # 4 topics × 15, all new
        after = _category_by_label(ws)
        for label in TOPICS:  # known topics: the same ids as before, new queries joined them
            assert after[label] == before[label]
        assert after["gardening"].isdisjoint(old_ids)  # a new topic gets a new id
        assert -1 not in after["gardening"]
        assert "existing categories" in second.summary["categorization"]["method"]
        # the same dump again adds nothing
        third = analyze(ws, [str(tmp_path / "w2.jsonl")], embedder=embedder)
        assert (third.summary["ingest"]["stored"], third.summary["ingest"]["duplicates"]) == (0, 60)
        assert _category_by_label(ws) == after


def test_a_run_with_no_new_query_changes_no_category(tmp_path):
    """Uncategorized queries stay uncategorized when a run brings nothing new: 45 queries of
    three topics plus 3 one-offs left uncategorized; analyzing the same file again must not
    re-cluster those 3 (or anything) into new categories."""
    embedder = FakeEmbedder()
    path = tmp_path / "w1.jsonl"
    _week(path, 0, TOPICS)
    odd = ["quantum flux capacitor", "medieval tapestry dyes", "volcanic soil ph levels"]
    with path.open("a") as handle:
        for i, text in enumerate(odd):
            ts = (START + timedelta(hours=5, minutes=i)).isoformat()
            row = {"text": text, "label": "odd", "timestamp": ts, "model": "gpt-4o-mini"}
            handle.write(json.dumps(row) + "\n")
    with Workspace(tmp_path / "w.duckdb") as ws:
        analyze(ws, [str(path)], embedder=embedder)
        # as HDBSCAN leaves noise: the three one-offs uncategorized
        ws.con.execute(
            "UPDATE calls SET category_id = -1 WHERE json_extract_string(metadata, '$.label') "
            "= 'odd'"
        )
        before = dict(ws.con.execute("SELECT call_id, category_id FROM calls").fetchall())
        assert list(before.values()).count(-1) == 3
        labels = ws.con.execute("SELECT category_id, label FROM categories").fetchall()
        again = analyze(ws, [str(path)], embedder=embedder)
        assert again.summary["ingest"]["stored"] == 0
        assert "no new queries" in again.summary["categorization"]["method"]
        assert dict(ws.con.execute("SELECT call_id, category_id FROM calls").fetchall()) == before
        assert ws.con.execute("SELECT category_id, label FROM categories").fetchall() == labels


def test_since_restricts_the_summary(tmp_path):
    with Workspace(tmp_path / "w.duckdb") as ws:
        path = _week(tmp_path / "w1.jsonl", 0, TOPICS)
        full = analyze(ws, [path], embedder=FakeEmbedder())
        # calls are spread over 7 days (i % 7); the newest is on day 6: '2d' keeps days ≥ 4
        newest = datetime.fromisoformat(full.summary["last_ts"])
        scoped = analyze(ws, [path], embedder=FakeEmbedder(), since="2d")
        cutoff = newest - timedelta(days=2)
        expected = ws.count("calls", f"ts >= TIMESTAMPTZ '{cutoff.isoformat()}'")
        assert 0 < scoped.summary["calls"] == expected < full.summary["calls"]
        dated = analyze(ws, [path], embedder=FakeEmbedder(), since="2026-11-08")
        assert dated.summary["calls"] == ws.count("calls", "ts >= TIMESTAMPTZ '2026-11-08'")


def _pair(call_id, messages, reply, minute):
    return {
        "request": {"model": "gpt-4o", "messages": messages},
        "response": {
            "id": call_id,
            "object": "chat.completion",
            "created": 1_767_000_000 + 60 * minute,
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": reply},
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5},
        },
    }


def test_conversations_rebuilt_from_resent_messages(ws, tmp_path):
    sys_msg = {"role": "system", "content": "You help with code."}
    q1 = {"role": "user", "content": "How do I sort a list?"}
    q2 = {"role": "user", "content": "And in reverse?"}
    q3 = {"role": "user", "content": "Thanks!"}
    records = [
        _pair("a1", [sys_msg, q1], "Use sorted(xs).", 0),
        _pair("b1", [sys_msg, {"role": "user", "content": "What is a dict?"}], "A mapping.", 1),
        # the reply resent as content parts still matches
        _pair(
            "a2",
            [
                sys_msg,
                q1,
                {"role": "assistant", "content": [{"type": "text", "text": "Use  sorted(xs)."}]},
                q2,
            ],
            "sorted(xs, reverse=True)",
            2,
        ),
        _pair(
            "a3",
            [
                sys_msg,
                q1,
                {"role": "assistant", "content": "Use sorted(xs)."},
                q2,
                {"role": "assistant", "content": "sorted(xs, reverse=True)"},
                q3,
            ],
            "You're welcome.",
            3,
        ),
    ]
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    ingest_files(ws, [str(path)])
    assert link_conversations(ws) == 4
    found = ws.con.execute("SELECT call_id, conversation_id, turn FROM calls").fetchall()
    rows = {call_id: (conversation, turn) for call_id, conversation, turn in found}
    assert rows["a1"] == ("conv:a1", 1)
    assert rows["a2"] == ("conv:a1", 2) and rows["a3"] == ("conv:a1", 3)
    assert rows["b1"] == ("conv:b1", 1)
    stats = conversation_stats(ws)
    assert (stats.conversations, stats.multi_turn, stats.turns_max) == (2, 1, 3)


def test_rejects_command_lists_them(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok", "model": "gpt-4o"}\n{broken\n')
    runner = CliRunner()
    workspace = str(tmp_path / "w.duckdb")
    assert runner.invoke(app, ["ingest", str(path), "-w", workspace]).exit_code == 1
    result = runner.invoke(app, ["rejects", "-w", workspace, "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["count"] == 1
    assert (data["rejects"][0]["file"], data["rejects"][0]["line"]) == (str(path), 2)
    assert data["rejects"][0]["raw"] == "{broken"


def test_killed_ingest_leaves_workspace_as_before(tmp_path):
    big = tmp_path / "big.jsonl"
    with big.open("w") as handle:
        for i in range(150_000):
            handle.write(
                json.dumps(
                    {
                        "text": f"question number {i}",
                        "model": "gpt-4o-mini",
                        "input_tokens": 10,
                        "output_tokens": 2,
                    }
                )
                + "\n"
            )
    small = tmp_path / "small.jsonl"
    small.write_text(json.dumps({"text": "first", "model": "gpt-4o-mini"}) + "\n")
    workspace = tmp_path / "w.duckdb"
    with Workspace(workspace) as ws:
        ingest_files(ws, [str(small)])
    code = (
        "import sys; from levers_cli.store import Workspace; "
        "from levers_cli.ingest.pipeline import ingest_files; "
        "ws = Workspace(sys.argv[1]); "
        "ingest_files(ws, [sys.argv[2]], progress=lambda s, n: print('.', end='', flush=True))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(workspace), str(big)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    proc.stdout.read(20_000)  # wait until it has read 20,000 records
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.2)
    with Workspace(workspace) as ws:
        assert ws.count("calls") == 1 and ws.count("runs") == 1  # as before the killed run
        result = ingest_files(ws, [str(big)])
        assert (result.stored, ws.count("calls")) == (150_000, 150_001)
