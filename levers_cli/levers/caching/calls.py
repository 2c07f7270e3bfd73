"""The caching lever's input: the calls as arrays in time order, with their provider rules,
exact-cache keys, guards and query embeddings; and the exact-cache hits.

Exact caching (../shared/DESIGN.md §5.3b): a call whose key — model, system prompt, every
message with the last user message normalized (trimmed, whitespace collapsed, lowercased, as
``query_hash``), generation settings (``metadata.params``) — was stored by an earlier
successful call less than the TTL before is a hit. The cache stores an answer on a miss and
keeps it for the TTL (a hit does not refresh it). Since the key holds the earlier messages, a
follow-up ("Thanks!") in another conversation is not a hit.

Speed and memory (a million calls): the calls are read in Arrow batches and each call's
messages are parsed once (orjson), reduced to what the lever uses — ``(role, text)`` per
message with repeated texts shared, the first system prompt, the single-turn flag and the exact
key as a small integer — and dropped; guards are computed on demand, once per distinct query.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import polars as pl

from levers_cli.levers.caching.guards import Guard, LazyGuards
from levers_cli.rules import ProviderRule, rule_for
from levers_cli.schema import CATEGORY_ID
from levers_cli.text.content import content_text
from levers_cli.text.query import normalize_query

if TYPE_CHECKING:
    from levers_cli.levers.caching.prefix import Prompt
    from levers_cli.store import Workspace

_SQL = """SELECT call_id, epoch(ts)::DOUBLE AS t, provider, model, system_prompt,
       messages::VARCHAR AS messages, query, query_hash, coalesce(response, '') AS response,
       coalesce(input_tokens, 0) AS input_tokens, coalesce(output_tokens, 0) AS output_tokens,
       coalesce(cache_read_tokens, 0) AS cache_read, status = 'ok' AS ok, category_id,
       json_extract(metadata, '$.params')::VARCHAR AS params,
       json_extract_string(metadata, ?) AS label, cost_usd::DOUBLE AS cost_usd,
       coalesce(gateway_cache_hit, false) AS gateway_hit,
       coalesce(cache_write_1h_tokens, 0) > 0 AS wrote_1h, coalesce(is_batch, false) AS batch,
       conversation_id IS NOT NULL
           AND count(*) OVER (PARTITION BY conversation_id) > 1 AS in_conversation
FROM calls ORDER BY ts NULLS LAST, source_file, source_line, call_id"""
#: Rows per Arrow batch read (bounds the raw message JSON held at once).
_BATCH_ROWS = 65_536


@dataclass
class CallTable:
    """Every call in time order (index ``i`` is the same call in every field)."""

    call_id: list[str]
    t: np.ndarray  # epoch seconds, NaN when unknown
    provider: list[str | None]
    model: list[str | None]
    system: list[str | None]
    prompts: list[Prompt]  # (role, content text) per message
    first_system: list[str | None]  # first message's text if system/developer, plain text
    query: list[str]
    query_hash: list[str | None]
    response: list[str]
    labels: list[str | None]
    ok: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    cache_read: np.ndarray
    cost: np.ndarray  # USD, NaN when unpriced
    category: list[int | None]
    rules: list[ProviderRule | None]  # None: no prefix cache known, or no provider call
    exact_keys: np.ndarray  # int64 key id per call, -1: not cacheable
    gateway_hit: np.ndarray  # answered by a gateway's own cache: a realized exact hit
    ttl_1h: np.ndarray  # the call wrote its prefix with the 1-hour TTL
    turns: np.ndarray  # a turn of a conversation of several calls
    batch: np.ndarray  # sent in a batch job
    eligible: np.ndarray  # single-turn with a query embedding: semantic candidates
    partition: list[Any]
    guards: Sequence[Guard] | LazyGuards
    vectors: np.ndarray
    embedder: str | None

    def query_repeats(self) -> int:
        """Calls whose normalized query occurred in an earlier call (the query alone: the
        summary's and sample truths' "exact repeat", broader than an exact-cache hit)."""
        seen: set[str] = set()
        repeats = 0
        for h, q in zip(self.query_hash, self.query, strict=True):
            if h and q.strip():
                repeats += h in seen
                seen.add(h)
        return repeats

    def prefix_groups(self) -> np.ndarray:
        """Per call, its prompt template for prefix caching: one id per (provider, model,
        first system prompt)."""
        ids: dict[tuple[Any, Any, Any], int] = {}
        keys = zip(self.provider, self.model, self.first_system, strict=True)
        return np.array([ids.setdefault(key, len(ids)) for key in keys], dtype=np.int64)

    def rules_used(self) -> list[dict[str, Any]]:
        """The provider rules the calls fall under, with their sources."""
        used = {id(r): r for r in self.rules if r is not None}
        return [{k: getattr(r, k) for k in r.__dataclass_fields__} for r in used.values()]


def exact_key(
    model: str | None,
    system: str | None,
    messages: list[dict[str, Any]],
    query: str | None,
    params: Any,
) -> str:
    """The exact-cache key of a call (BLAKE2b-128 hex) — see the module docstring.
    :func:`key_parts` gives the same equalities without serializing the messages."""
    shown = [dict(m) for m in messages]
    for message in reversed(shown):
        if message.get("role") == "user":
            message["content"] = normalize_query(content_text(message.get("content")))
            break
    if not shown:
        shown = [{"role": "user", "content": normalize_query(query)}]
    text = json.dumps([model, system or "", shown, params], sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _message_part(message: dict[str, Any]) -> Hashable:
    """A message in the key: ``(role, content)`` when it is exactly that, two strings (equal
    exactly when their sorted JSON is), else its sorted JSON (a str: never equal to a pair)."""
    if len(message) == 2 and type(message.get("role")) is str:
        content = message.get("content")
        if type(content) is str:
            return (message["role"], content)
    return json.dumps(message, sort_keys=True, default=str)


def key_parts(
    model: str | None,
    system: str | None,
    messages: list[dict[str, Any]],
    query: str | None,
    params: str | None,
) -> tuple[Any, ...]:
    """A hashable that two calls share exactly when their :func:`exact_key` is the same."""
    parts = [_message_part(m) for m in messages]
    for k in range(len(messages) - 1, -1, -1):
        if messages[k].get("role") == "user":
            shown = dict(messages[k])
            shown["content"] = normalize_query(content_text(shown.get("content")))
            parts[k] = _message_part(shown)
            break
    if not parts:
        parts = [("user", normalize_query(query))]
    return (model, system or "", params, *parts)


def exact_hits(
    keys: Sequence[Hashable | None] | np.ndarray, times: np.ndarray, ok: np.ndarray, ttl: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exact-cache hits in time order.

    Args:
        keys: each call's key (``None``, or a negative int id: not cacheable).
        times: epoch seconds (NaN: unknown, then entries never expire).
        ok: calls whose answer may be stored (successful).
        ttl: seconds an entry lives after it is stored.

    Returns:
        ``(hit bool (n,), source index (n,), -1 for misses)``.
    """
    if isinstance(keys, np.ndarray):
        keys = [None if k < 0 else k for k in keys.tolist()]
    hit = np.zeros(len(keys), dtype=bool)
    source = np.full(len(keys), -1, dtype=np.int64)
    stored: dict[Hashable, int] = {}
    stamps, usable = times.tolist(), ok.tolist()
    for i, key in enumerate(keys):
        if key is None:
            continue
        j = stored.get(key)
        if j is not None and not stamps[i] - stamps[j] > ttl:
            hit[i], source[i] = True, j
        elif usable[i]:
            stored[key] = i
    return hit, source


def _loads(raw: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:  # NaN, integers beyond 64 bits: what json accepts
        return json.loads(raw)


def _messages(raw: str | None, system: str | None, query: str | None) -> list[dict[str, Any]]:
    parsed = _loads(raw) if raw else None
    if isinstance(parsed, list) and parsed:
        return [m for m in parsed if isinstance(m, dict)]
    built = [{"role": "system", "content": system}] if system else []
    return built + ([{"role": "user", "content": query}] if query else [])


class _Reduced:
    """Per call, what the lever keeps of its messages (see the module docstring)."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}  # one shared object per distinct text
        self.key_ids: dict[Hashable, int] = {}
        self.prompts: list[Prompt] = []
        self.first: list[str | None] = []
        self.single: list[bool] = []
        self.keys: list[int] = []

    def add(self, model: Any, system: Any, raw: Any, query: str, params: Any) -> None:
        msgs = _messages(raw, system, query)
        text = self.texts.setdefault
        pairs = ((str(m.get("role", "")), content_text(m.get("content"))) for m in msgs)
        self.prompts.append(tuple((text(r, r), text(c, c)) for r, c in pairs))
        head = msgs[0] if msgs else {}
        content = head.get("content")
        is_system = head.get("role") in ("system", "developer")
        system_text = text(content, content) if is_system and isinstance(content, str) else None
        self.first.append(system_text)
        self.single.append(sum(m.get("role") not in ("system", "developer") for m in msgs) == 1)
        if query.strip() or msgs:
            parts = key_parts(model, system, msgs, query, params)
            self.keys.append(self.key_ids.setdefault(parts, len(self.key_ids)))
        else:
            self.keys.append(-1)


def _canonical_params(raw: list[str | None]) -> list[str | None]:
    """Settings in one spelling, whatever the order of the request's keys (each distinct
    spelling parsed once)."""
    seen: dict[str, str] = {}
    out: list[str | None] = []
    for p in raw:
        if p is not None and p not in seen:
            seen[p] = json.dumps(json.loads(p), sort_keys=True)
        out.append(None if p is None else seen[p])
    return out


#: Cache lifetime and write premium of a prefix written with Anthropic's 1-hour TTL
#: (prompt-caching guide, "1-hour cache duration": writes cost 2x the base input price).
ONE_HOUR_TTL_SECONDS, ONE_HOUR_WRITE_MULTIPLIER = 3600, 2.0


def call_rules(
    providers: list[Any], models: list[Any], gateway: np.ndarray, ttl_1h: np.ndarray
) -> list[ProviderRule | None]:
    """Each call's prefix-caching rule: its provider and model family's
    (``provider_rules.toml``), with the 1-hour TTL and write premium where the log shows the
    call wrote with that TTL; ``None`` for a call a gateway's cache answered (no provider
    call: it neither reads nor warms the provider's cache)."""
    base: dict[tuple[Any, Any], ProviderRule | None] = {}
    longer: dict[int, ProviderRule] = {}  # one 1-hour variant per rule
    rules: list[ProviderRule | None] = []
    for i, (provider, model) in enumerate(zip(providers, models, strict=True)):
        if (provider, model) not in base:
            base[provider, model] = rule_for(provider, model)
        rule = None if gateway[i] else base[provider, model]
        if rule is not None and not rule.prefix_caching:
            rule = None
        if rule is not None and ttl_1h[i]:
            rule = longer.setdefault(
                id(rule),
                replace(
                    rule,
                    ttl_seconds=max(rule.ttl_seconds, ONE_HOUR_TTL_SECONDS),
                    write_multiplier=ONE_HOUR_WRITE_MULTIPLIER,
                ),
            )
        rules.append(rule)
    return rules


def load_calls(ws: Workspace, label_key: str) -> CallTable:
    """Read the calls, their provider rules, exact keys, guards and query embeddings (those
    of the embedder that made the categories)."""
    reader = ws.con.sql(_SQL, params=[f'$."{label_key}"']).to_arrow_reader(_BATCH_ROWS)
    reduced = _Reduced()
    col: dict[str, list[Any]] = {name: [] for name in reader.schema.names if name != "messages"}
    for batch in reader:
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        part = {name: frame[name].to_list() for name in col}
        part["params"] = _canonical_params(part["params"])
        for name in ("provider", "model", "system_prompt", "params"):  # one object per text
            part[name] = [v if v is None else reduced.texts.setdefault(v, v) for v in part[name]]
        for model, system, raw, query, params in zip(
            part["model"],
            part["system_prompt"],
            frame["messages"].to_list(),
            part["query"],
            part["params"],
            strict=True,
        ):
            reduced.add(model, system, raw, query or "", params)
        for name, values in part.items():
            col[name] += values
    n = len(col["call_id"])
    gateway = np.array([bool(v) for v in col["gateway_hit"]], dtype=bool)
    ttl_1h = np.array([bool(v) for v in col["wrote_1h"]], dtype=bool)
    turns = np.array([bool(v) for v in col["in_conversation"]], dtype=bool)
    rules = call_rules(col["provider"], col["model"], gateway, ttl_1h)
    keys = np.asarray(reduced.keys, dtype=np.int64)
    keys[gateway] = -1  # a gateway's cache answered it: realized, neither a hit nor stored
    query = [q or "" for q in col["query"]]
    row = ws.con.execute("SELECT any_value(embedder) FROM categories").fetchone()
    embedder = row[0] if row else None
    vectors, has = np.zeros((n, 1), dtype=np.float32), np.zeros(n, dtype=bool)
    if embedder:
        found = ws.con.execute(
            "SELECT query_hash, vector FROM embeddings WHERE embedder = ?", [embedder]
        ).fetchnumpy()
        lookup = {h: k for k, h in enumerate(found["query_hash"].tolist())}
        stacked = np.asarray(found["vector"].tolist(), dtype=np.float32)
        if len(lookup):
            rows = np.array([lookup.get(h, -1) for h in col["query_hash"]], dtype=np.int64)
            has = rows >= 0
            vectors = np.zeros((n, stacked.shape[1]), dtype=np.float32)
            vectors[has] = stacked[rows[has]]
    single = np.asarray(reduced.single, dtype=bool)
    eligible = has & single & np.array([bool(q.strip()) for q in query], dtype=bool) & ~gateway
    return CallTable(
        call_id=col["call_id"],
        t=np.array([np.nan if t is None else t for t in col["t"]], dtype=np.float64),
        provider=col["provider"],
        model=col["model"],
        system=col["system_prompt"],
        prompts=reduced.prompts,
        first_system=reduced.first,
        query=query,
        query_hash=col["query_hash"],
        response=col["response"],
        labels=[None if v is None else str(v) for v in col["label"]],
        ok=np.array([bool(v) for v in col["ok"]], dtype=bool),
        input_tokens=np.asarray(col["input_tokens"], dtype=np.int64),
        output_tokens=np.asarray(col["output_tokens"], dtype=np.int64),
        cache_read=np.asarray(col["cache_read"], dtype=np.int64),
        cost=np.array([np.nan if c is None else c for c in col["cost_usd"]], dtype=np.float64),
        category=col[CATEGORY_ID],
        rules=rules,
        exact_keys=keys,
        gateway_hit=gateway,
        ttl_1h=ttl_1h,
        turns=turns,
        batch=np.array([bool(v) for v in col["batch"]], dtype=bool),
        eligible=eligible,
        partition=[
            (col["model"][i], col["system_prompt"][i], col["params"][i], col[CATEGORY_ID][i])
            for i in range(n)
        ],
        guards=LazyGuards(query, eligible),
        vectors=vectors,
        embedder=embedder,
    )
