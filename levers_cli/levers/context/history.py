"""Helpers of the context lever (:mod:`levers_cli.levers.context`): the calls that re-send
history as columns (:class:`CallTable`), subtopic forks and the summarization policy walked
over each conversation.

A call's input splits into its messages with the cookbook formula of
:func:`levers_cli.text.tokens.count_messages`, scaled so that they add up to the logged
``input_tokens``. Its *history* is every non-system message before the last user message:
what a chat client re-sends on each turn. :func:`walk` and :func:`find_forks` replay one
conversation call by call (the reference, on :class:`CallTokens`); :func:`walk_table` and
:func:`table_forks` do the same for every conversation at once, one numpy step per turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from collections.abc import Callable

_SYSTEM_ROLES = ("system", "developer")
#: role codes of :attr:`CallTable.roles`
OTHER, USER, ASSISTANT, SYSTEM = 0, 1, 2, 3


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


def role_code(role: str) -> int:
    """The :class:`CallTable` code of a message role."""
    if role in _SYSTEM_ROLES:
        return SYSTEM
    return USER if role == "user" else ASSISTANT if role == "assistant" else OTHER


def segment_sums(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``values[start : start + length].sum()`` of each segment, bit for bit what numpy's
    (pairwise) sum of that slice gives: segments of one length are the rows of one matrix,
    whose row sums numpy computes as it does a 1-D sum (a prefix-sum difference would round
    differently, and a rounded token count can then move by one)."""
    out = np.zeros(len(starts))
    for length in np.unique(lengths[lengths > 0]).tolist():
        rows = np.flatnonzero(lengths == length)
        out[rows] = values[starts[rows, None] + np.arange(length)].sum(axis=1)
    return out


@dataclass
class CallTable:
    """Calls as columns, in load order, with their messages concatenated.

    Attributes:
        calls: one row per call: ``call_id``, ``conversation_id``, ``turn``, ``provider``,
            ``model``, ``input_tokens``, ``query_hash``, ``cost_usd`` (USD), ``window``
            (tokens), ``last_user`` (index of the last user message, ``-1`` none).
        tokens: ``(m,)`` float tokens of every message, call after call.
        roles: ``(m,)`` role codes (:data:`USER`, :data:`ASSISTANT`, :data:`SYSTEM`, :data:`OTHER`).
        offsets: ``(n + 1,)`` each call's first message in ``tokens``.
    """

    calls: pl.DataFrame
    tokens: np.ndarray
    roles: np.ndarray
    offsets: np.ndarray
    last_user: np.ndarray = field(init=False)  #: ``(n,)``
    history: np.ndarray = field(init=False)  #: ``(m,)`` bool, as :attr:`CallTokens.history`
    history_tokens: np.ndarray = field(init=False)  #: ``(n,)`` re-sent history, tokens
    query_tokens: np.ndarray = field(init=False)  #: ``(n,)`` last user message, tokens
    conv: np.ndarray = field(init=False)  #: ``(n,)`` conversation number (a call alone: own)
    step: np.ndarray = field(init=False)  #: ``(n,)`` the call's place in its conversation

    def __post_init__(self) -> None:
        n = self.calls.height
        owner = np.repeat(np.arange(n), np.diff(self.offsets))
        self.last_user = self.calls["last_user"].to_numpy().astype(np.int64)
        position = np.arange(len(self.tokens)) - self.offsets[owner]
        self.history = (position < self.last_user[owner]) & (self.roles != SYSTEM)
        #: history messages before each message (and one past each call's last), exact ints
        self._counts = np.concatenate([[0], np.cumsum(self.history)])
        self.history_tokens = self.history_sums(self.tokens[self.history], self.last_user)
        query = self.offsets[:-1] + np.maximum(self.last_user, 0)
        self.query_tokens = np.where(self.last_user >= 0, _at(self.tokens, query), 0.0)
        keys = self.calls.select(
            pl.when(pl.col("conversation_id").fill_null("") == "")
            .then(pl.lit("call:") + pl.col("call_id"))
            .otherwise(pl.col("conversation_id"))
            .alias("key")
        )
        self.conv = keys["key"].rank("dense").to_numpy().astype(np.int64) - 1
        self.step = keys.select(pl.int_range(pl.len()).over("key"))["literal"].to_numpy()

    def history_sums(
        self,
        values: np.ndarray,
        end: np.ndarray,
        begin: np.ndarray | None = None,
        calls: np.ndarray | None = None,
    ) -> np.ndarray:
        """Per call (all, or ``calls``), the sum of ``values`` (one per history message, in
        order: ``x[self.history]``) over its history messages at positions ``begin ≤ p <
        end``, bit for bit as numpy sums them (``x[mask].sum()``)."""
        lo, hi = self._history_range(self._counts, end, begin, calls)
        return segment_sums(values, lo, hi - lo)

    def history_count(
        self, counts: np.ndarray, end: np.ndarray, begin: np.ndarray, calls: np.ndarray
    ) -> np.ndarray:
        """Per call of ``calls``, how many history messages at ``begin ≤ p < end`` are
        counted in ``counts`` (``[0, *np.cumsum(flags)]`` of a per-message flag)."""
        lo, hi = self._history_range(counts, end, begin, calls)
        return hi - lo

    def _history_range(
        self,
        counts: np.ndarray,
        end: np.ndarray,
        begin: np.ndarray | None,
        calls: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        calls = np.arange(self.calls.height) if calls is None else calls
        first = self.offsets[calls]
        size = self.offsets[calls + 1] - first
        lo = counts[first + (0 if begin is None else np.clip(begin, 0, size))]
        return lo, np.maximum(counts[first + np.clip(end, 0, size)], lo)

    @classmethod
    def from_calls(cls, calls: list[CallTokens]) -> CallTable:
        """The table of reference calls (tests compare both paths on them)."""
        frame = pl.DataFrame(
            {
                "call_id": [c.call_id for c in calls],
                "conversation_id": [c.conversation_id for c in calls],
                "turn": [c.turn for c in calls],
                "provider": [c.provider for c in calls],
                "model": [c.model for c in calls],
                "input_tokens": [c.input_tokens for c in calls],
                "query_hash": [c.query_hash for c in calls],
                "cost_usd": [c.cost_usd for c in calls],
                "window": [c.window for c in calls],
                "last_user": [c.last_user for c in calls],
            },
            schema_overrides={"turn": pl.Int64, "conversation_id": pl.String},
        )
        sizes = [len(c.tokens) for c in calls]
        return cls(
            frame,
            np.concatenate([np.asarray(c.tokens, dtype=float) for c in calls] or [np.zeros(0)]),
            np.array([role_code(str(r)) for c in calls for r in c.roles], dtype=np.int8),
            np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        )


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
    this call, whether it summarized here, whether a fork's history was dropped here, and
    ``prefix``: the tokens at the start of its new prompt that the previous call's new prompt
    (or another conversation's, through the system prompt) can share — the bound on its
    cacheable prefix (see :func:`walk`); ``-1`` while the conversation's prompts are the
    logged ones."""

    removed: int
    extra_usd: float
    summarized: bool
    dropped_fork: bool
    prefix: int = -1


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


def table_forks(
    table: CallTable,
    rows: np.ndarray,
    vectors: np.ndarray,
    min_similarity: float,
    min_query_tokens: float,
) -> dict[str, float]:
    """:func:`find_forks` of every conversation of ``table``; ``rows``: each call's row in
    ``vectors`` (``-1``: no vector). Only calls with an earlier vector in their conversation
    and a long enough query are compared, each as :func:`find_forks` does (same product)."""
    with_vector = np.flatnonzero(rows >= 0)
    members = with_vector[np.lexsort((table.step[with_vector], table.conv[with_vector]))]
    conv = table.conv[members]
    later = np.concatenate([[False], conv[1:] == conv[:-1]])  # an earlier vector exists
    asks = later & (table.query_tokens[members] >= min_query_tokens)
    first = np.maximum.accumulate(np.where(~later, np.arange(len(members)), 0))
    forks: dict[str, float] = {}
    ids = table.calls["call_id"]
    for i in np.flatnonzero(asks).tolist():
        earlier = vectors[rows[members[first[i] : i]]]
        similarity = float(np.max(earlier @ vectors[rows[members[i]]]))
        if similarity < min_similarity:
            forks[ids[int(members[i])]] = similarity
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

    The new prompt is ``head`` (the messages before the first history message: the system
    prompt) + the summary + the kept history since the summarized position + the query. Its
    ``prefix`` (what an earlier new prompt also starts with, so what a prefix cache can
    serve) is the head alone on a call that makes a new summary or drops a fork's history
    (the summary is new text; the history it replaced is gone), and otherwise the head, the
    carried summary and the kept history up to and including the previous call's query,
    which the previous call's new prompt ended with; never more than the new input. It is
    reported from the first call the policy changes on.
    """
    summary, start = 0.0, 0
    previous, changed = -1, False  # the previous call's last user message; a prompt changed
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
        first = np.flatnonzero(call.history)
        head = float(call.tokens[: first[0] if first.size else max(call.last_user, 0)].sum())
        shared = head
        if previous >= 0 and not dropped:
            through = live & (positions <= previous)
            shared = head + summary + float(kept[through].sum())
        if call.last_user >= 0 and carried >= policy.min_history_tokens and due:
            new = min(carried, max(policy.summary_ratio * carried, policy.summary_min_tokens))
            extra, summarized = summary_cost(call, carried, new), True
            summary, start = new, call.last_user
            removed = call.history_tokens - new + doc_cut
            shared = head
        removed = min(max(removed, 0.0), float(call.input_tokens))
        changed = changed or removed > 0
        prefix = round(min(shared, float(call.input_tokens) - removed)) if changed else -1
        out.append(Outcome(round(removed), extra, summarized, dropped, prefix))
        previous = call.last_user
    return out


def walk_table(
    table: CallTable, policy: Policy, fork: np.ndarray, rates: np.ndarray
) -> dict[str, np.ndarray]:
    """:func:`walk` of every conversation of ``table`` at once: step ``k`` replays the
    ``k``-th call of every conversation (numpy over the conversations, one step per turn).

    Args:
        table: the calls.
        policy: the level's policy.
        fork: ``(n,)`` bool, the call is a subtopic fork.
        rates: ``(n, 2)`` USD per input and per output token of each call's summary model.

    Returns:
        Per call: ``removed`` (input tokens, int), ``extra_usd`` (USD), ``summarized`` (bool),
        ``prefix`` (tokens, int; ``-1`` before the policy changes the conversation).
    """
    t, lu = table.tokens, table.last_user
    kept = np.where((table.roles == USER) & (t >= policy.doc_min_tokens), t * policy.doc_keep, t)
    kept_history = kept[table.history]
    replies = np.concatenate([[0], np.cumsum(table.history & (table.roles == ASSISTANT))])
    query = table.offsets[:-1] + np.maximum(lu, 0)
    doc_cut = np.where(lu >= 0, _at(t, query) - _at(kept, query), 0.0)
    n = table.calls.height
    removed, extra, summarized = np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool)
    summary = np.zeros(int(table.conv.max()) + 1 if n else 0)
    start = np.zeros(len(summary), dtype=np.int64)
    previous = np.full(len(summary), -1, dtype=np.int64)
    changed = np.zeros(len(summary), dtype=bool)
    prefix = np.full(n, -1, dtype=np.int64)
    inputs = table.calls["input_tokens"].to_numpy().astype(float)
    window = table.calls["window"].to_numpy().astype(float)
    head = segment_sums(t, table.offsets[:-1], _head_lengths(table))
    order = np.argsort(table.step, kind="stable")
    for idx in np.split(order, np.flatnonzero(np.diff(table.step[order])) + 1) if n else []:
        cv, last = table.conv[idx], lu[idx]
        dropped = np.zeros(len(idx), dtype=bool)
        if policy.drop_forks:
            dropped = fork[idx]
            summary[cv[dropped]], start[cv[dropped]] = 0.0, np.maximum(last[dropped], 0)
        before = previous[cv]
        through = table.history_sums(kept_history, before + 1, start[cv], idx)
        shared = np.where((before >= 0) & ~dropped, head[idx] + summary[cv] + through, head[idx])
        carried = summary[cv] + table.history_sums(kept_history, last, start[cv], idx)
        exchanges = table.history_count(replies, last, start[cv], idx)
        history = table.history_tokens[idx]
        cut = history - carried + doc_cut[idx]
        due = ((inputs[idx] - cut) / window[idx] >= policy.threshold) | (
            (policy.every_turns > 0) & (exchanges >= policy.every_turns)
        )
        now = (last >= 0) & (carried >= policy.min_history_tokens) & due
        new = np.minimum(
            carried, np.maximum(policy.summary_ratio * carried, policy.summary_min_tokens)
        )
        extra[idx] = np.where(now, carried * rates[idx, 0] + new * rates[idx, 1], 0.0)
        summarized[idx] = now
        summary[cv[now]], start[cv[now]] = new[now], last[now]
        cut = np.where(now, history - new + doc_cut[idx], cut)
        removed[idx] = np.minimum(np.maximum(cut, 0.0), inputs[idx])
        shared = np.where(now, head[idx], shared)
        changed[cv] |= removed[idx] > 0
        kept_prefix = np.round(np.minimum(shared, inputs[idx] - removed[idx])).astype(np.int64)
        prefix[idx] = np.where(changed[cv], kept_prefix, -1)
        previous[cv] = last
    return {
        "removed": np.round(removed).astype(np.int64),
        "extra_usd": extra,
        "summarized": summarized,
        "prefix": prefix,
    }


def _head_lengths(table: CallTable) -> np.ndarray:
    """Per call, the messages before its first history message (all before its last user
    message when it has no history): the head the policy never changes."""
    n = table.calls.height
    owner = np.repeat(np.arange(n), np.diff(table.offsets))
    position = np.arange(len(table.tokens)) - table.offsets[owner]
    first = np.maximum(table.last_user, 0)
    hist = np.flatnonzero(table.history)
    np.minimum.at(first, owner[hist], position[hist])
    return first


def _at(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``values[index]``, 0 past the end (a call without messages points there)."""
    if not len(values):
        return np.zeros(len(index))
    return np.where(index < len(values), values[np.minimum(index, len(values) - 1)], 0.0)
