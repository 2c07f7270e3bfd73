"""Conversation trees (issue 16, conversations): regenerations and edits fork a conversation,
so a call that resends an earlier call's request (or its history with an edited question) is
a retry of it at the same turn, not the next turn. Every expected value below is counted by
hand on the drawn tree."""

from __future__ import annotations

import json

import pytest

from levers_cli.enrich.conversations import conversation_stats, link_conversations
from levers_cli.ingest.pipeline import ingest_files
from levers_cli.store import Workspace
from tests.helpers import openai_pair

T0 = 1_790_000_000


def _u(text: str) -> dict:
    return {"role": "user", "content": text}


def _a(text: str) -> dict:
    return {"role": "assistant", "content": text}


# One tree, as OASST stores one (P = the user's prompt, A = an assistant reply):
#
#   P0 "Q"
#   ├── A1 "a1"  (call r1)
#   │   ├── P "Q2"
#   │   │   ├── A "b1" (call r2)
#   │   │   │   └── P "Q3" ── A "c1" (call r3)
#   │   │   └── A "b2" (call r4, a regeneration of r2: same request)
#   │   └── P "Q2 edited" ── A "d1" (call r5, an edit: r2's history, another question)
#   ├── A2 "a2"  (call r6, a regeneration of r1 at the root)
#   │   └── P "Q4" ── A "e1" (call r7)
#   └── A3 "a3"  (call r8, a third answer at the root)
#
# Calls: 8. Threads (root-to-leaf paths ending on a reply): r3 (3 turns), r4 (2), r5 (2),
# r7 (2), r8 (1): 5 threads, deepest 3. Retries: r4 of r2, r5 of r4 (the sibling before it),
# r6 of r1, r8 of r6: 4. One conversation.
TREE = [
    ("r1", [_u("Q")], "a1"),
    ("r2", [_u("Q"), _a("a1"), _u("Q2")], "b1"),
    ("r3", [_u("Q"), _a("a1"), _u("Q2"), _a("b1"), _u("Q3")], "c1"),
    ("r4", [_u("Q"), _a("a1"), _u("Q2")], "b2"),
    ("r5", [_u("Q"), _a("a1"), _u("Q2 edited")], "d1"),
    ("r6", [_u("Q")], "a2"),
    ("r7", [_u("Q"), _a("a2"), _u("Q4")], "e1"),
    ("r8", [_u("Q")], "a3"),
]
EXPECTED = {  # call → (turn, parent, retry_of)
    "r1": (1, None, None),
    "r2": (2, "r1", None),
    "r3": (3, "r2", None),
    "r4": (2, "r1", "r2"),
    "r5": (2, "r1", "r4"),
    "r6": (1, None, "r1"),
    "r7": (2, "r6", None),
    "r8": (1, None, "r6"),
}


def _write(path, calls, gap: int = 10, **request: object) -> None:
    records = [
        openai_pair(cid, "gpt-4o-mini", messages, reply, T0 + gap * i, 10, 5, **request)
        for i, (cid, messages, reply) in enumerate(calls)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def ws(tmp_path):
    with Workspace(tmp_path / "w.duckdb") as workspace:
        yield workspace


def _tree(ws: Workspace) -> dict[str, tuple]:
    rows = ws.con.execute(
        "SELECT call_id, turn, parent_call_id, retry_of, conversation_id FROM calls"
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_tree_turns_are_depths_and_siblings_are_retries(ws, tmp_path):
    _write(tmp_path / "tree.jsonl", TREE)
    ingest_files(ws, [str(tmp_path / "tree.jsonl")])
    link_conversations(ws)
    found = _tree(ws)
    assert {c: row[:3] for c, row in found.items()} == EXPECTED
    assert len({row[3] for row in found.values()}) == 1  # one conversation
    stats = conversation_stats(ws)
    assert (stats.conversations, stats.multi_turn) == (1, 1)
    assert (stats.threads, stats.retries, stats.turns_max) == (5, 4, 3)
    # thread depths 3, 2, 2, 2, 1: median 2; p95 = 2 + 0.8 × (3 − 2) (linear interpolation)
    assert stats.turns_p50 == 2 and stats.turns_p95 == pytest.approx(2.8)
    assert stats.calls_per_conversation_max == 8


def test_root_repeats_far_apart_duplicates_or_from_other_users_are_new_conversations(
    ws, tmp_path
):
    # the same one-shot question an hour apart (past the 600 s window); a job's duplicate
    # request answered the same 5 s apart (case and end punctuation aside); the same question
    # within the window from two logged users: none is a retry
    far = [("f1", [_u("How do I reset my password?")], "x"),
           ("f2", [_u("How do I reset my password?")], "y")]  # fmt: skip
    _write(tmp_path / "far.jsonl", far, gap=3600)
    dup = [("d1", [_u("Classify: card declined")], "billing"),
           ("d2", [_u("Classify: card declined")], "Billing.")]  # fmt: skip
    _write(tmp_path / "dup.jsonl", dup, gap=5)
    users = [
        openai_pair("u1", "gpt-4o-mini", [_u("Hi there")], "y", T0, 5, 5, user="ann"),
        openai_pair("u2", "gpt-4o-mini", [_u("Hi there")], "y", T0 + 5, 5, 5, user="bob"),
        openai_pair("u3", "gpt-4o-mini", [_u("Hi there")], "z", T0 + 9, 5, 5, user="bob"),
    ]
    (tmp_path / "users.jsonl").write_text("".join(json.dumps(r) + "\n" for r in users))
    ingest_files(ws, [str(tmp_path / n) for n in ("far.jsonl", "dup.jsonl", "users.jsonl")])
    link_conversations(ws)
    found = _tree(ws)
    assert found["f2"][2] is None and found["f1"][3] != found["f2"][3]
    assert found["d2"][2] is None and found["d1"][3] != found["d2"][3]
    assert found["u2"][2] is None and found["u1"][3] != found["u2"][3]
    # bob asked again 4 s later: his regeneration
    assert found["u3"][2] == "u2" and found["u3"][3] == found["u2"][3]
    stats = conversation_stats(ws)
    assert (stats.conversations, stats.threads, stats.retries) == (6, 6, 1)
    assert stats.turns_max == 1 and stats.multi_turn == 0


def test_linear_chat_has_one_thread(ws, tmp_path):
    chat = [
        ("l1", [_u("a")], "1"),
        ("l2", [_u("a"), _a("1"), _u("b")], "2"),
        ("l3", [_u("a"), _a("1"), _u("b"), _a("2"), _u("c")], "3"),
    ]
    _write(tmp_path / "chat.jsonl", chat)
    ingest_files(ws, [str(tmp_path / "chat.jsonl")])
    link_conversations(ws)
    stats = conversation_stats(ws)
    assert (stats.conversations, stats.threads, stats.retries, stats.turns_max) == (1, 1, 0, 3)
    assert stats.calls_per_conversation_max == 3


def test_lora_reads_a_retried_sibling_as_not_accepted(ws, tmp_path):
    from levers_cli.analysis import analyze
    from levers_cli.config import load_config
    from levers_cli.levers.lora.acceptance import acceptance
    from tests.helpers import FakeEmbedder

    _write(tmp_path / "tree.jsonl", TREE)
    analyze(ws, [str(tmp_path / "tree.jsonl")], embedder=FakeEmbedder())
    table = acceptance(ws, load_config())
    retried = {c for c, r in table.select("call_id", "retried").iter_rows() if r}
    # the calls a later sibling retried: r2 (by r4), r4 (by r5), r1 (by r6), r6 (by r8); no
    # child asks nearly the same as its parent ("Q" → "Q2", "Q3", "Q4" share no word)
    assert retried == {"r1", "r2", "r4", "r6"}
    accepted = {c for c, ok in table.select("call_id", "accepted").iter_rows() if ok}
    assert accepted == {"r3", "r5", "r7", "r8"}
