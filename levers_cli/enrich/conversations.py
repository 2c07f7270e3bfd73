"""Conversations: take ``conversation_id`` from the log where it has one, else rebuild it; and
the conversation tree: each call's parent, its turn (depth) and the retries among siblings.

A call whose request messages start with an earlier call's messages plus that call's reply
continues the earlier call's conversation (new user turns may follow): the earlier call is its
*parent* (``parent_call_id``). ``turn`` is the exchange's depth in the tree: 1 + the assistant
messages already in the request, unless the log gave one. Messages are compared by role and
whitespace-collapsed text, so a reply logged as a string and resent as content parts still
matches. When several earlier calls match (two conversations that opened with the same
question and got the same answer), the most recent one not yet continued wins, else the most
recent (within the logged conversation, when the log gives one).

Regenerations and edits fork a conversation: calls with the same parent are *siblings*, and a
later sibling is a *retry* of the one before it (``retry_of``: the user asked again at the
same point, the same request regenerated or the question edited), not the next turn. At the
root, where no history identifies the conversation, a call is a retry of an earlier root call
only when its request is the same (system prompt and messages) and its answer is not (case,
spacing and end punctuation aside: the same request answered the same is a duplicate, a job
that sent one ticket twice), it came at most
``retry_window_s`` seconds later (or either has no timestamp) and no logged end user tells them
apart (``metadata.user``/``user_id``): two users asking the FAQ the same question are two
conversations. A root retry joins the conversation of the call it retries.

A *thread* is a root-to-leaf path (a leaf: a call no other call continues); its turns are its
leaf's depth. A conversation with no parent links (logged ids on calls whose requests do not
resend the history) is one thread of its deepest turn.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from levers_cli.ingest.records import fast_loads
from levers_cli.schema import PARENT_CALL_ID, RETRY_OF
from levers_cli.store import Workspace
from levers_cli.text.content import content_text

#: Longest gap (seconds) between two root calls with the same request for the second to be a
#: retry of the first (``[conversations] retry_window_s``). Assumption: a user who regenerates
#: an answer does so within minutes; the same question later (or from another user) is a new
#: conversation, as an FAQ's repeats are.
DEFAULT_RETRY_WINDOW_S = 600.0

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


def _call_hashes(
    messages: list[dict[str, Any]], response: str | None
) -> tuple[list[bytes], bytes, bytes]:
    """One pass over a call's messages: the hash of every prefix that ends on an assistant
    message (what a follow-up call may start with), the hash of ``messages + [assistant:
    response]`` (the prefix a follow-up call resends) and the hash of ``messages`` (the
    request: a regeneration resends it unchanged)."""
    digest = hashlib.blake2b(digest_size=16)
    prefixes: list[bytes] = []
    for message in messages:
        digest.update(_key_bytes(message))
        digest.update(b"\x1e")
        if message.get("role") == "assistant":
            prefixes.append(digest.copy().digest())
    request = digest.digest()
    digest.update(_message_key("assistant", response or "").encode())
    digest.update(b"\x1e")
    return prefixes, digest.digest(), request


@dataclass
class ConversationStats:
    """Conversations in the workspace: how many (``multi_turn``: those deeper than one
    turn), their threads (root-to-leaf paths) and the turns per thread (p50/p95/max of each
    thread's depth), the retries (calls that retry an earlier sibling) and the most calls in
    one conversation (threads and retries included)."""

    conversations: int
    multi_turn: int
    rebuilt_calls: int
    turns_p50: float | None
    turns_p95: float | None
    turns_max: int | None
    threads: int = 0
    retries: int = 0
    calls_per_conversation_max: int | None = None


#: Calls read from the workspace per Arrow batch (their messages are the bulk).
_READ_ROWS = 20_000


@dataclass
class _Calls:
    """Every call's fields for linking, in time order."""

    ids: list[Any]
    conversations: list[Any]
    turns: list[Any]
    prefixes: list[Any]
    continuations: list[Any]
    requests: list[Any]
    epochs: list[Any]
    users: list[Any]
    answers: list[Any]


def _load_calls(ws: Workspace) -> _Calls:
    """Every call's id, logged conversation and turn, prefix hashes, continuation and request
    hashes, time (epoch seconds) and logged end user, in time order (file order where ``ts``
    is missing).

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
        out = _Calls(*([None] * n for _ in range(9)))
        reader = ws.con.sql(
            """SELECT o.ord, c.call_id, c.messages::VARCHAR AS messages, c.response,
                      c.conversation_id, c.turn, epoch(c.ts)::DOUBLE AS epoch,
                      coalesce(c.metadata->>'$.user', c.metadata->>'$.user_id',
                               c.metadata->>'$.end_user') AS end_user,
                      coalesce(c.system_prompt, '') AS system_prompt
               FROM calls c JOIN _call_order o USING (call_id)"""
        ).to_arrow_reader(_READ_ROWS)
        for batch in reader:
            columns = batch.to_pydict()
            for i, ord_ in enumerate(columns["ord"]):
                messages = _parse_messages(columns["messages"][i])
                out.ids[ord_] = columns["call_id"][i]
                out.conversations[ord_] = columns["conversation_id"][i]
                out.turns[ord_] = columns["turn"][i]
                out.epochs[ord_] = columns["epoch"][i]
                out.users[ord_] = columns["end_user"][i]
                prefixes, continuation, request = _call_hashes(messages, columns["response"][i])
                out.prefixes[ord_], out.continuations[ord_] = prefixes, continuation
                # a request is its messages and the system prompt (a template sent apart)
                out.answers[ord_] = _answer_key(columns["response"][i])
                system = columns["system_prompt"][i].encode()
                out.requests[ord_] = request + hashlib.blake2b(system, digest_size=8).digest()
    finally:
        ws.con.execute("DROP TABLE IF EXISTS _call_order")
    return out


def _answer_key(response: str | None) -> bytes:
    """An answer compared with another: case, spacing and the punctuation around it ignored
    ("Feature-request" and "feature-request." are one answer)."""
    text = " ".join((response or "").lower().split()).strip(".!?,;:'\"` ")
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _parse_messages(text: str | None) -> list[dict[str, Any]]:
    if not text:
        return []
    messages = fast_loads(text.encode())
    if messages is None:  # what orjson does not read as json does (NaN, huge numbers)
        messages = json.loads(text)
    return messages if isinstance(messages, list) else []


def link_conversations(ws: Workspace, retry_window_s: float = DEFAULT_RETRY_WINDOW_S) -> int:
    """Fill ``conversation_id`` and ``turn`` for calls whose log gave none, and every call's
    ``parent_call_id`` and ``retry_of`` (see the module docstring); return how many calls'
    conversation or turn was filled. Calls are taken in time order (file order where ``ts``
    is missing).

    Args:
        ws: the workspace.
        retry_window_s: the longest gap (seconds) between a root call and a call that resends
            the same request for the second to be a retry of the first.
    """
    calls = _load_calls(ws)
    # continuation hash → [conversation, continued?, call id] of each call that ends with it
    owners: dict[bytes, list[list[Any]]] = {}
    # root request hash → [call id, conversation, epoch, end user, answer key] of its latest
    # root call
    roots: dict[bytes, list[Any]] = {}
    last_child: dict[str, str] = {}  # parent call id → its latest child
    updates: dict[str, list[Any]] = {
        "call_id": [], "conversation_id": [], "turn": [], PARENT_CALL_ID: [], RETRY_OF: []
    }  # fmt: skip
    linked = 0
    for i, call_id in enumerate(calls.ids):
        logged_conversation, logged_turn = calls.conversations[i], calls.turns[i]
        prefixes, epoch, user = calls.prefixes[i], calls.epochs[i], calls.users[i]
        conversation, turn, parent, retry_of = logged_conversation, logged_turn, None, None
        for prefix in reversed(prefixes):
            if prefix in owners:
                candidates = owners[prefix]
                if logged_conversation is not None:
                    candidates = [c for c in candidates if c[0] == logged_conversation]
                    if not candidates:
                        continue
                fresh = [c for c in candidates if not c[1]]
                chosen = (fresh or candidates)[-1]
                chosen[1] = True
                conversation = conversation if conversation is not None else chosen[0]
                parent = chosen[2]
                break
        if parent is not None:
            retry_of = last_child.get(parent)
            last_child[parent] = call_id
        elif not prefixes:
            request = calls.requests[i]
            earlier = roots.get(request)
            if (
                earlier is not None
                and earlier[4] != calls.answers[i]  # another answer: not a duplicate
                and (earlier[2] is None or epoch is None or epoch - earlier[2] <= retry_window_s)
                and (earlier[3] is None or user is None or earlier[3] == user)
                and (logged_conversation is None or logged_conversation == earlier[1])
            ):
                retry_of = earlier[0]
                conversation = conversation if conversation is not None else earlier[1]
            if conversation is None:
                conversation = REBUILT_PREFIX + call_id
            roots[request] = [call_id, conversation, epoch, user, calls.answers[i]]
        if conversation is None:
            conversation = REBUILT_PREFIX + call_id
        if turn is None:
            turn = len(prefixes) + 1  # 1 + the assistant messages already in the request
        owners.setdefault(calls.continuations[i], []).append([conversation, False, call_id])
        if (conversation, turn) != (logged_conversation, logged_turn):
            linked += 1
        updates["call_id"].append(call_id)
        updates["conversation_id"].append(conversation)
        updates["turn"].append(turn)
        updates[PARENT_CALL_ID].append(parent)
        updates[RETRY_OF].append(retry_of)
    if updates["call_id"]:
        ws.load_temp("linked", updates)
        ws.con.execute(
            f"""UPDATE calls SET conversation_id = l.conversation_id, turn = l.turn,
                    {PARENT_CALL_ID} = l.{PARENT_CALL_ID}, {RETRY_OF} = l.{RETRY_OF}
                FROM linked l WHERE calls.call_id = l.call_id"""
        )
        ws.con.execute("DROP TABLE linked")
    return linked


def conversation_stats(ws: Workspace, table: str = "calls") -> ConversationStats:
    """Conversations in ``table`` (a table or view with ``calls``' columns): how many, how
    many are deeper than one turn, their threads and turns per thread (p50/p95/max: the
    depth of each thread's leaf), retries, and the most calls in one conversation.

    A call is a leaf when no call in ``table`` has it as parent; a conversation with no
    parent link at all counts as one thread of its deepest turn.
    """
    row = ws.con.execute(
        f"""WITH c AS (SELECT call_id, conversation_id, coalesce(turn, 1) AS turn,
                              {PARENT_CALL_ID} AS parent, {RETRY_OF} AS retry_of
                       FROM {table} WHERE conversation_id IS NOT NULL),
                conv AS (SELECT conversation_id, count(*) AS calls, max(turn) AS depth,
                                count(parent) > 0 AS linked
                         FROM c GROUP BY 1),
                threads AS (
                    SELECT c.turn AS turns FROM c JOIN conv USING (conversation_id)
                    WHERE conv.linked
                      AND NOT EXISTS (SELECT 1 FROM c AS child WHERE child.parent = c.call_id)
                    UNION ALL
                    SELECT depth FROM conv WHERE NOT linked)
            SELECT (SELECT count(*) FROM conv), (SELECT count(*) FILTER (depth > 1) FROM conv),
                   (SELECT max(calls) FROM conv), (SELECT count(retry_of) FROM c),
                   count(*), quantile_cont(turns, 0.5), quantile_cont(turns, 0.95), max(turns)
            FROM threads"""
    ).fetchone()
    rebuilt = ws.con.execute(
        f"SELECT count(*) FROM {table} WHERE conversation_id LIKE '{REBUILT_PREFIX}%'"
    ).fetchone()
    conversations, multi, most_calls, retries, threads, p50, p95, top = (
        row if row else (0, 0, None, 0, 0, None, None, None)
    )
    return ConversationStats(
        conversations=int(conversations or 0),
        multi_turn=int(multi or 0),
        rebuilt_calls=int(rebuilt[0]) if rebuilt else 0,
        turns_p50=None if p50 is None else float(p50),
        turns_p95=None if p95 is None else float(p95),
        turns_max=None if top is None else int(top),
        threads=int(threads or 0),
        retries=int(retries or 0),
        calls_per_conversation_max=None if most_calls is None else int(most_calls),
    )
