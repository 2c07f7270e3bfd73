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
from functools import lru_cache
from typing import Any

from levers_cli.ingest.records import fast_loads
from levers_cli.store import Workspace
from levers_cli.text.content import content_text

#: Prefix of rebuilt conversation ids (``conv:`` + the first call's ``call_id``).
REBUILT_PREFIX = "conv:"


def _message_key(role: Any, content: Any) -> str:
    return f"{role}\x1f{' '.join(content_text(content).split())}"


#: Texts longer than this have their message key memoized: system prompts and pasted
#: documents are resent with every call of a conversation or template.
_MEMO_CHARS = 256
_MEMO_SIZE = 4_096


@lru_cache(maxsize=_MEMO_SIZE)
def _long_message_key(role: Any, content: str) -> bytes:
    return _message_key(role, content).encode()


def _key_bytes(message: dict[str, Any]) -> bytes:
    role, content = message.get("role"), message.get("content")
    if isinstance(content, str) and len(content) > _MEMO_CHARS and isinstance(role, str | None):
        return _long_message_key(role, content)
    return _message_key(role, content).encode()


def _call_hashes(messages: list[dict[str, Any]], response: str | None) -> tuple[list[bytes], bytes]:
    """One pass over a call's messages: the hash of every prefix that ends on an assistant
    message (what a follow-up call may start with), and the hash of ``messages + [assistant:
    response]`` (the prefix a follow-up call resends)."""
    digest = hashlib.blake2b(digest_size=16)
    prefixes: list[bytes] = []
    for message in messages:
        digest.update(_key_bytes(message))
        digest.update(b"\x1e")
        if message.get("role") == "assistant":
            prefixes.append(digest.copy().digest())
    digest.update(_message_key("assistant", response or "").encode())
    digest.update(b"\x1e")
    return prefixes, digest.digest()


@dataclass
class ConversationStats:
    """Conversations in the workspace: how many, and turns per conversation."""

    conversations: int
    multi_turn: int
    rebuilt_calls: int
    turns_p50: float | None
    turns_p95: float | None
    turns_max: int | None


#: Calls read from the workspace per Arrow batch (their messages are the bulk).
_READ_ROWS = 20_000


def _load_calls(ws: Workspace) -> tuple[list[Any], ...]:
    """Every call's id, logged conversation and turn, prefix hashes and continuation hash,
    in time order (file order where ``ts`` is missing).

    Only the small sort keys are sorted (by DuckDB); the messages are streamed in storage
    order in batches and hashed, each into its call's place, so neither DuckDB nor Python
    holds every call's messages at once.
    """
    ws.con.execute(
        """CREATE OR REPLACE TEMP TABLE _call_order AS
           SELECT call_id, (row_number() OVER (
               ORDER BY ts NULLS LAST, source_file, source_line, call_id) - 1)::BIGINT AS ord
           FROM calls"""
    )
    try:
        n = ws.count("_call_order")
        ids: list[Any] = [None] * n
        conversations: list[Any] = [None] * n
        turns: list[Any] = [None] * n
        prefixes: list[Any] = [None] * n
        continuations: list[Any] = [None] * n
        reader = ws.con.sql(
            """SELECT o.ord, c.call_id, c.messages::VARCHAR AS messages, c.response,
                      c.conversation_id, c.turn
               FROM calls c JOIN _call_order o USING (call_id)"""
        ).to_arrow_reader(_READ_ROWS)
        for batch in reader:
            columns = batch.to_pydict()
            for ord_, call_id, text, response, conversation, turn in zip(
                columns["ord"],
                columns["call_id"],
                columns["messages"],
                columns["response"],
                columns["conversation_id"],
                columns["turn"],
                strict=True,
            ):
                messages = _parse_messages(text)
                ids[ord_], conversations[ord_], turns[ord_] = call_id, conversation, turn
                prefixes[ord_], continuations[ord_] = _call_hashes(messages, response)
    finally:
        ws.con.execute("DROP TABLE IF EXISTS _call_order")
    return ids, conversations, turns, prefixes, continuations


def _parse_messages(text: str | None) -> list[dict[str, Any]]:
    if not text:
        return []
    messages = fast_loads(text.encode())
    if messages is None:  # what orjson does not read as json does (NaN, huge numbers)
        messages = json.loads(text)
    return messages if isinstance(messages, list) else []


def link_conversations(ws: Workspace) -> int:
    """Fill ``conversation_id`` and ``turn`` for calls whose log gave none; return how many
    calls were linked. Calls are taken in time order (file order where ``ts`` is missing)."""
    ids, logged_conversations, logged_turns, all_prefixes, continuations = _load_calls(ws)
    # continuation hash → [conversation, continued?] of each call that ends with it, oldest first
    owners: dict[bytes, list[list[Any]]] = {}
    updates: dict[str, list[Any]] = {"call_id": [], "conversation_id": [], "turn": []}
    for call_id, logged_conversation, logged_turn, prefixes, continuation in zip(
        ids, logged_conversations, logged_turns, all_prefixes, continuations, strict=True
    ):
        conversation, turn = logged_conversation, logged_turn
        if conversation is None:
            conversation = REBUILT_PREFIX + call_id
            for prefix in reversed(prefixes):
                if prefix in owners:
                    candidates = owners[prefix]
                    fresh = [c for c in candidates if not c[1]]
                    chosen = (fresh or candidates)[-1]
                    chosen[1] = True
                    conversation = chosen[0]
                    break
        if turn is None:
            turn = len(prefixes) + 1  # 1 + the assistant messages already in the request
        owners.setdefault(continuation, []).append([conversation, False])
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
