"""Conversations: take ``conversation_id`` from the log where it has one, else rebuild it.

A call whose request messages start with an earlier call's messages plus that call's reply
continues the earlier call's conversation (new user turns may follow). ``turn`` is the
exchange's position: 1 + the assistant messages already in the request, unless the log gave
one. Messages are compared by role and whitespace-collapsed text, so a reply logged as a
string and resent as content parts still matches. When several earlier calls match (two
conversations that opened with the same question and got the same answer), the most recent
one not yet continued wins, else the most recent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from levers_cli.ingest.fields import content_text
from levers_cli.store import Workspace

#: Prefix of rebuilt conversation ids (``conv:`` + the first call's ``call_id``).
REBUILT_PREFIX = "conv:"


def _message_key(role: Any, content: Any) -> str:
    return f"{role}\x1f{' '.join(content_text(content).split())}"


def _prefix_hashes(messages: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """``(length, hash)`` of every prefix of ``messages`` that ends on an assistant message."""
    digest = hashlib.blake2b(digest_size=16)
    found: list[tuple[int, str]] = []
    for position, message in enumerate(messages, 1):
        digest.update(_message_key(message.get("role"), message.get("content")).encode())
        digest.update(b"\x1e")
        if message.get("role") == "assistant":
            found.append((position, digest.copy().hexdigest()))
    return found


def _continuation_hash(messages: list[dict[str, Any]], response: str | None) -> str:
    """Hash of ``messages + [assistant: response]``: the prefix a follow-up call resends."""
    digest = hashlib.blake2b(digest_size=16)
    for message in [*messages, {"role": "assistant", "content": response or ""}]:
        digest.update(_message_key(message.get("role"), message.get("content")).encode())
        digest.update(b"\x1e")
    return digest.hexdigest()


@dataclass
class ConversationStats:
    """Conversations in the workspace: how many, and turns per conversation."""

    conversations: int
    multi_turn: int
    rebuilt_calls: int
    turns_p50: float | None
    turns_p95: float | None
    turns_max: int | None


def link_conversations(ws: Workspace) -> int:
    """Fill ``conversation_id`` and ``turn`` for calls whose log gave none; return how many
    calls were linked. Calls are taken in time order (file order where ``ts`` is missing)."""
    rows = ws.con.execute(
        """SELECT call_id, messages, response, conversation_id, turn FROM calls
           ORDER BY ts NULLS LAST, source_file, source_line, call_id"""
    ).fetchall()
    # continuation hash → [conversation, continued?] of each call that ends with it, oldest first
    owners: dict[str, list[list[Any]]] = {}
    updates: dict[str, list[Any]] = {"call_id": [], "conversation_id": [], "turn": []}
    for call_id, messages_json, response, logged_conversation, logged_turn in rows:
        messages = json.loads(messages_json) if messages_json else []
        if not isinstance(messages, list):
            messages = []
        assistant_turns = sum(1 for m in messages if m.get("role") == "assistant")
        conversation, turn = logged_conversation, logged_turn
        if conversation is None:
            conversation = REBUILT_PREFIX + call_id
            for _, prefix in reversed(_prefix_hashes(messages)):
                if prefix in owners:
                    candidates = owners[prefix]
                    fresh = [c for c in candidates if not c[1]]
                    chosen = (fresh or candidates)[-1]
                    chosen[1] = True
                    conversation = chosen[0]
                    break
        if turn is None:
            turn = assistant_turns + 1
        owners.setdefault(_continuation_hash(messages, response), []).append([conversation, False])
        if (conversation, turn) != (logged_conversation, logged_turn):
            updates["call_id"].append(call_id)
            updates["conversation_id"].append(conversation)
            updates["turn"].append(turn)
    if updates["call_id"]:
        ws.load_temp("linked", updates)
        ws.con.execute(
            """UPDATE calls SET conversation_id = l.conversation_id, turn = l.turn
               FROM linked l WHERE calls.call_id = l.call_id"""
        )
        ws.con.execute("DROP TABLE linked")
    return len(updates["call_id"])


def conversation_stats(ws: Workspace, table: str = "calls") -> ConversationStats:
    """Conversations in ``table`` (a table or view with ``calls``' columns): count, how many
    have more than one call, and p50/p95/max calls per conversation."""
    row = ws.con.execute(
        f"""SELECT count(*), count(*) FILTER (n > 1), quantile_cont(n, 0.5),
                   quantile_cont(n, 0.95), max(n)
            FROM (SELECT conversation_id, count(*) AS n FROM {table}
                  WHERE conversation_id IS NOT NULL GROUP BY 1)"""
    ).fetchone()
    rebuilt = ws.con.execute(
        f"SELECT count(*) FROM {table} WHERE conversation_id LIKE '{REBUILT_PREFIX}%'"
    ).fetchone()
    conversations, multi, p50, p95, top = row if row else (0, 0, None, None, None)
    return ConversationStats(
        conversations=int(conversations or 0),
        multi_turn=int(multi or 0),
        rebuilt_calls=int(rebuilt[0]) if rebuilt else 0,
        turns_p50=None if p50 is None else float(p50),
        turns_p95=None if p95 is None else float(p95),
        turns_max=None if top is None else int(top),
    )
