"""Helpers of the context lever (:mod:`levers_cli.levers.context`): per-message token
estimates of the calls that re-send history, context windows, subtopic forks and the
summarization policy walked over each conversation.

A call's input splits into its messages with :func:`levers_cli.enrich.tokens.count_messages`
(OpenAI's cookbook formula), scaled so that they add up to the logged ``input_tokens``. Its
*history* is every non-system message before the last user message: what a chat client
re-sends on each turn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from levers_cli.enrich.tokens import REPLY_PRIMER_TOKENS, count_messages
from levers_cli.ingest.fields import content_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from levers_cli.store import Workspace

_SYSTEM_ROLES = ("system", "developer")


@dataclass
class CallTokens:
    """One call's messages as token estimates (scaled to the logged ``input_tokens``).

    Attributes:
        tokens: tokens per message, float, shape ``(n_messages,)``.
        roles: role per message.
        last_user: index of the last user message (the query), ``-1`` when there is none.
        history: bool mask of the history messages (non-system, before ``last_user``).
        window: the model's context window, tokens.
    """

    call_id: str
    conversation_id: str | None
    turn: int | None
    provider: str | None
    model: str | None
    input_tokens: int
    query_hash: str | None
    cost_usd: float
    tokens: np.ndarray
    roles: np.ndarray
    last_user: int
    window: int
    history: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        positions = np.arange(len(self.tokens))
        self.history = (positions < self.last_user) & ~np.isin(self.roles, _SYSTEM_ROLES)

    @property
    def history_tokens(self) -> float:
        """Re-sent history, tokens."""
        return float(self.tokens[self.history].sum())

    @property
    def query_tokens(self) -> float:
        """Tokens of the last user message (0 when there is none)."""
        return float(self.tokens[self.last_user]) if self.last_user >= 0 else 0.0

    def history_before(self, position: int) -> float:
        """History tokens in the messages before ``position``."""
        return float(self.tokens[: max(position, 0)][self.history[: max(position, 0)]].sum())


@dataclass(frozen=True, slots=True)
class Policy:
    """The summarization policy of one level (``[context]`` settings, see defaults.toml)."""

    threshold: float
    every_turns: int
    summary_ratio: float
    summary_min_tokens: int
    min_history_tokens: int
    drop_forks: bool
    doc_min_tokens: int
    doc_keep: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the policy does to one call: input tokens removed, summary cost (USD) added on
    this call, whether it summarized here, whether a fork's history was dropped here."""

    removed: int
    extra_usd: float
    summarized: bool
    dropped_fork: bool


@cache
def model_window(provider: str | None, model: str | None) -> int | None:
    """Context window (tokens) of ``model`` as genai-prices records it, else ``None``."""
    if not model:
        return None
    from genai_prices import Usage, calc_price

    for provider_id in [provider, None] if provider else [None]:
        try:
            found = calc_price(Usage(input_tokens=1), model, provider_id=provider_id)
        except LookupError:
            continue
        return found.model.context_window
    return None


def _parse(messages: Any) -> list[dict[str, Any]]:
    value = json.loads(messages) if isinstance(messages, str) else messages
    if isinstance(value, dict):
        value = value.get("messages", [])
    return [m for m in value if isinstance(m, dict)] if isinstance(value, list) else []


def load_calls(
    ws: Workspace, doc_min_tokens: int, window_of: Callable[[str | None, str | None], int]
) -> list[CallTokens]:
    """Calls of multi-call conversations, and any call with at least ``doc_min_tokens`` input
    (it may hold a pasted document), in conversation and turn order."""
    rows = ws.con.execute(
        """WITH conv AS (SELECT conversation_id, count(*) AS n FROM calls
                         WHERE conversation_id IS NOT NULL GROUP BY 1)
           SELECT c.call_id, c.conversation_id, c.turn, c.provider, c.model, c.input_tokens,
                  c.query_hash, coalesce(c.cost_usd, 0)::DOUBLE, c.messages
           FROM calls c LEFT JOIN conv USING (conversation_id)
           WHERE c.input_tokens > 0 AND (coalesce(conv.n, 1) > 1 OR c.input_tokens >= ?)
           ORDER BY c.conversation_id NULLS LAST, c.turn NULLS LAST, c.ts NULLS LAST,
                    c.source_file, c.source_line, c.call_id""",
        [doc_min_tokens],
    ).fetchall()
    memo: dict[tuple[str, str, str | None], int] = {}
    out: list[CallTokens] = []
    for call_id, conv, turn, provider, model, input_tokens, qhash, cost, raw in rows:
        messages = _parse(raw)
        counts = []
        for m in messages:
            key = (str(m.get("role", "")), content_text(m.get("content")), model)
            if key not in memo:
                memo[key] = count_messages([m], model) - REPLY_PRIMER_TOKENS
            counts.append(memo[key])
        estimate = sum(counts) + REPLY_PRIMER_TOKENS
        roles = np.array([str(m.get("role", "")) for m in messages], dtype=object)
        users = np.flatnonzero(roles == "user")
        out.append(
            CallTokens(
                call_id, conv, turn, provider, model, int(input_tokens), qhash, float(cost),
                np.asarray(counts, dtype=float) * (input_tokens / estimate),
                roles, int(users[-1]) if len(users) else -1, window_of(provider, model),
            )
        )  # fmt: skip
    return out


def query_vectors(ws: Workspace, hashes: list[str]) -> dict[str, np.ndarray]:
    """Cached query embeddings (``embeddings`` table) of the embedder the categories used."""
    row = ws.con.execute(
        "SELECT embedder FROM categories WHERE embedder IS NOT NULL "
        "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()
    if row is None or not hashes:
        return {}
    found = ws.con.execute(
        "SELECT query_hash, vector FROM embeddings WHERE embedder = ? "
        "AND query_hash IN (SELECT unnest(?))",
        [row[0], sorted(set(hashes))],
    ).fetchall()
    return {h: np.asarray(v, dtype=np.float32) for h, v in found}


def find_forks(
    conversation: list[CallTokens],
    vectors: dict[str, np.ndarray],
    min_similarity: float,
    min_query_tokens: float,
) -> dict[str, float]:
    """Subtopic forks: ``call_id`` → the highest cosine similarity of its query to any earlier
    query of the conversation, for calls whose query has at least ``min_query_tokens`` tokens
    (a question that opens a topic restates its context; short follow-ups lean on the
    history) and whose similarity is below ``min_similarity``. Vectors are unit length."""
    forks: dict[str, float] = {}
    earlier: list[np.ndarray] = []
    for call in conversation:
        vector = vectors.get(call.query_hash or "")
        if vector is None:
            continue
        if earlier and call.query_tokens >= min_query_tokens:
            similarity = float(np.max(np.stack(earlier) @ vector))
            if similarity < min_similarity:
                forks[call.call_id] = similarity
        earlier.append(vector)
    return forks


def walk(
    conversation: list[CallTokens],
    policy: Policy,
    forks: set[str],
    summary_cost: Callable[[CallTokens, float, float], float],
) -> list[Outcome]:
    """Replay one conversation under ``policy``.

    Each call carries ``summary + the history after the summarized position`` (long user
    messages of at least ``doc_min_tokens`` kept at ``doc_keep``) instead of its full
    history. A summary is made on a call whose planned utilization reaches ``threshold``, or
    whose carried history holds ``every_turns`` unsummarized exchanges, once that history
    has at least ``min_history_tokens``: it replaces the carried history by
    ``max(summary_ratio × history, summary_min_tokens)`` tokens and costs
    ``summary_cost(call, tokens in, tokens out)`` (USD). With ``drop_forks``, a fork starts a
    new thread that carries nothing from before it.
    """
    summary, start = 0.0, 0
    out: list[Outcome] = []
    for call in conversation:
        positions = np.arange(len(call.tokens))
        docs = (call.roles == "user") & (call.tokens >= policy.doc_min_tokens)
        kept = np.where(docs, call.tokens * policy.doc_keep, call.tokens)
        dropped = policy.drop_forks and call.call_id in forks
        if dropped:
            summary, start = 0.0, max(call.last_user, 0)
        live = call.history & (positions >= start)
        carried = summary + float(kept[live].sum())
        doc_cut = float(call.tokens[call.last_user] - kept[call.last_user]) if docs.any() else 0
        removed = call.history_tokens - carried + doc_cut
        exchanges = int(((call.roles == "assistant") & live).sum())
        utilization = (call.input_tokens - removed) / call.window
        due = utilization >= policy.threshold or (
            policy.every_turns > 0 and exchanges >= policy.every_turns
        )
        extra, summarized = 0.0, False
        if call.last_user >= 0 and carried >= policy.min_history_tokens and due:
            new = min(carried, max(policy.summary_ratio * carried, policy.summary_min_tokens))
            extra, summarized = summary_cost(call, carried, new), True
            summary, start = new, call.last_user
            removed = call.history_tokens - new + doc_cut
        removed = min(max(removed, 0.0), float(call.input_tokens))
        out.append(Outcome(round(removed), extra, summarized, dropped))
    return out
