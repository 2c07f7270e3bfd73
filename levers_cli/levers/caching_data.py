"""The caching lever's input: the calls as arrays in time order, with their provider rules,
exact-cache keys, guards and query embeddings; and the exact-cache hits.

Exact caching (../shared/DESIGN.md §5.3b): a call whose key — model, system prompt, every
message with the last user message normalized (trimmed, whitespace collapsed, lowercased, as
``query_hash``), generation settings (``metadata.params``) — was stored by an earlier
successful call less than the TTL before is a hit. The cache stores an answer on a miss and
keeps it for the TTL (a hit does not refresh it). Since the key holds the earlier messages, a
follow-up ("Thanks!") in another conversation is not a hit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from levers_cli.ingest.fields import content_text
from levers_cli.ingest.pipeline import normalize_query
from levers_cli.levers.caching_semantic import Guard, guard_of
from levers_cli.rules import ProviderRule, rule_for

if TYPE_CHECKING:
    from levers_cli.store import Workspace

_SQL = """SELECT call_id, epoch(ts)::DOUBLE AS t, provider, model, system_prompt,
       messages::VARCHAR AS messages, query, query_hash, coalesce(response, '') AS response,
       coalesce(input_tokens, 0) AS input_tokens, coalesce(output_tokens, 0) AS output_tokens,
       coalesce(cache_read_tokens, 0) AS cache_read, status = 'ok' AS ok, category_id,
       json_extract(metadata, '$.params')::VARCHAR AS params,
       json_extract_string(metadata, ?) AS label, cost_usd::DOUBLE AS cost_usd
FROM calls ORDER BY ts NULLS LAST, source_file, source_line, call_id"""


@dataclass
class CallTable:
    """Every call in time order (index ``i`` is the same call in every field)."""

    call_id: list[str]
    t: np.ndarray  # epoch seconds, NaN when unknown
    model: list[str | None]
    system: list[str | None]
    messages: list[list[dict[str, Any]]]
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
    rules: list[ProviderRule | None]
    exact_keys: list[str | None]
    eligible: np.ndarray  # single-turn with a query embedding: semantic candidates
    partition: list[Any]
    guards: list[Guard]
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
    """The exact-cache key of a call (BLAKE2b-128 hex) — see the module docstring."""
    shown = [dict(m) for m in messages]
    for message in reversed(shown):
        if message.get("role") == "user":
            message["content"] = normalize_query(content_text(message.get("content")))
            break
    if not shown:
        shown = [{"role": "user", "content": normalize_query(query)}]
    text = json.dumps([model, system or "", shown, params], sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def exact_hits(
    keys: list[str | None], times: np.ndarray, ok: np.ndarray, ttl: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exact-cache hits in time order.

    Args:
        keys: each call's key (``None``: not cacheable).
        times: epoch seconds (NaN: unknown, then entries never expire).
        ok: calls whose answer may be stored (successful).
        ttl: seconds an entry lives after it is stored.

    Returns:
        ``(hit bool (n,), source index (n,), -1 for misses)``.
    """
    hit = np.zeros(len(keys), dtype=bool)
    source = np.full(len(keys), -1, dtype=np.int64)
    stored: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key is None:
            continue
        j = stored.get(key)
        if j is not None and not times[i] - times[j] > ttl:
            hit[i], source[i] = True, j
        elif ok[i]:
            stored[key] = i
    return hit, source


def _messages(raw: str | None, system: str | None, query: str | None) -> list[dict[str, Any]]:
    parsed = json.loads(raw) if raw else None
    if isinstance(parsed, list) and parsed:
        return [m for m in parsed if isinstance(m, dict)]
    built = [{"role": "system", "content": system}] if system else []
    return built + ([{"role": "user", "content": query}] if query else [])


def load_calls(ws: Workspace, label_key: str) -> CallTable:
    """Read the calls, their provider rules, exact keys, guards and query embeddings (those
    of the embedder that made the categories)."""
    frame = pl.from_arrow(ws.con.sql(_SQL, params=[f'$."{label_key}"']).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    col = {name: frame[name].to_list() for name in frame.columns}
    n = frame.height
    msgs = [
        _messages(r, s, q)
        for r, s, q in zip(col["messages"], col["system_prompt"], col["query"], strict=True)
    ]
    rule_cache: dict[tuple[Any, Any], ProviderRule | None] = {}
    rules = [
        rule_cache.setdefault((p, m), rule_for(p, m))
        for p, m in zip(col["provider"], col["model"], strict=True)
    ]
    query = [q or "" for q in col["query"]]
    # settings in one spelling, whatever the order of the request's keys
    params = [p if p is None else json.dumps(json.loads(p), sort_keys=True) for p in col["params"]]
    keys = [
        exact_key(col["model"][i], col["system_prompt"][i], msgs[i], query[i], params[i])
        if query[i].strip() or msgs[i]
        else None
        for i in range(n)
    ]
    row = ws.con.execute("SELECT any_value(embedder) FROM categories").fetchone()
    embedder = row[0] if row else None
    vectors, has = np.zeros((n, 1), dtype=np.float32), np.zeros(n, dtype=bool)
    if embedder:
        found = ws.con.execute(
            "SELECT query_hash, vector FROM embeddings WHERE embedder = ?", [embedder]
        ).fetchall()
        lookup = {h: v for h, v in found}
        dim = len(found[0][1]) if found else 1
        vectors = np.zeros((n, dim), dtype=np.float32)
        for i, h in enumerate(col["query_hash"]):
            if h in lookup:
                vectors[i], has[i] = lookup[h], True
    single = np.array(
        [sum(m.get("role") not in ("system", "developer") for m in ms) == 1 for ms in msgs]
    )
    eligible = has & single & np.array([bool(q.strip()) for q in query]) if n else has
    return CallTable(
        call_id=col["call_id"],
        t=np.array([np.nan if t is None else t for t in col["t"]], dtype=np.float64),
        model=col["model"],
        system=col["system_prompt"],
        messages=msgs,
        query=query,
        query_hash=col["query_hash"],
        response=col["response"],
        labels=[None if v is None else str(v) for v in col["label"]],
        ok=np.array([bool(v) for v in col["ok"]], dtype=bool),
        input_tokens=np.asarray(col["input_tokens"], dtype=np.int64),
        output_tokens=np.asarray(col["output_tokens"], dtype=np.int64),
        cache_read=np.asarray(col["cache_read"], dtype=np.int64),
        cost=np.array([np.nan if c is None else c for c in col["cost_usd"]], dtype=np.float64),
        category=col["category_id"],
        rules=rules,
        exact_keys=keys,
        eligible=eligible,
        partition=[
            (col["model"][i], col["system_prompt"][i], params[i], col["category_id"][i])
            for i in range(n)
        ],
        guards=[guard_of(q) if eligible[i] else guard_of("") for i, q in enumerate(query)],
        vectors=vectors,
        embedder=embedder,
    )
