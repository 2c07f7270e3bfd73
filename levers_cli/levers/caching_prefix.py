"""Prefix (prompt) caching for the caching lever: token sequences, the cacheable prefix of
every call, and the templates whose prefix a volatile value breaks.

Method (../shared/DESIGN.md §5.3a): a prompt is the token sequence a chat model reads — per
message ``<start> role <message> content <end>``, then ``<start> assistant <message>`` (the
three framing tokens per message of OpenAI's cookbook "How to count tokens with tiktoken",
as sentinels that match only each other). A call can read from the cache the longest prefix it
shares with an earlier call of the same model within the provider's TTL, counted only from
the provider's minimum and in its increments (``provider_rules.toml``). Where the provider
charges cache writes, the earlier call that others read from writes what they read.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from levers_cli.enrich.tokens import encoding_for
from levers_cli.ingest.fields import content_text
from levers_cli.levers.base import LEVELS
from levers_cli.levers.caching_breakers import Breaker, find_breakers, move_volatile_last
from levers_cli.rules import ProviderRule

#: Framing sentinels (never real token ids): message start, content start, message end.
_START, _MESSAGE, _END = -1, -2, -3
#: Earlier calls compared per call (the most recent ones in the TTL window).
MAX_WINDOW = 256


def prompt_sequence(messages: list[dict[str, Any]], model: str | None, cache: dict) -> np.ndarray:
    """The prompt as the model reads it (see the module docstring), as an int64 array.

    Args:
        messages: request messages (``role``, ``content``), system messages included.
        model: the model (selects the tiktoken encoding, :mod:`levers_cli.enrich.tokens`).
        cache: text → token tuple, shared across calls (prompts repeat).

    Returns:
        ``(tokens,)`` token ids with negative framing sentinels; its length is the cookbook's
        prompt token count.
    """
    encoding = encoding_for(model)
    parts: list[int] = []
    for message in messages:
        role, content = str(message.get("role", "")), content_text(message.get("content"))
        for text in (role, content):
            if text not in cache:
                cache[text] = tuple(encoding.encode_ordinary(text))
        parts += [_START, *cache[role], _MESSAGE, *cache[content], _END]
    if "assistant" not in cache:
        cache["assistant"] = tuple(encoding.encode_ordinary("assistant"))
    parts += [_START, *cache["assistant"], _MESSAGE]
    return np.asarray(parts, dtype=np.int64)


@dataclass
class PrefixResult:
    """Per call, in the order given: cached input tokens read and written (tokens), and the
    index of the earlier call read from (``-1``: none)."""

    read: np.ndarray
    write: np.ndarray
    source: np.ndarray


def cacheable_prefixes(
    seqs: list[np.ndarray],
    models: list[str | None],
    times: np.ndarray,
    rules: list[ProviderRule | None],
    ttl_override: float = 0.0,
) -> PrefixResult:
    """Cached tokens each call could read (and write) under its provider's rules.

    Args:
        seqs: prompt token sequences, in time order.
        models: each call's model; only calls of the same model share a cache.
        times: request times (epoch seconds, NaN when unknown: then no TTL applies and only
            the last :data:`MAX_WINDOW` calls count).
        rules: each call's provider rule (``None``: no prompt caching known, nothing cached).
        ttl_override: a longer TTL (seconds) for providers that charge no write premium
            (OpenAI keeps prefixes 5–10 minutes, up to an hour); 0 keeps the rule's TTL.

    Returns:
        the reads (a multiple of the rule's increment, at least its minimum, else 0), the
        writes (only where ``write_multiplier > 1``) and each read's source call.
    """
    n = len(seqs)
    read = np.zeros(n, dtype=np.int64)
    need = np.zeros(n, dtype=np.int64)
    source = np.full(n, -1, dtype=np.int64)
    windows: dict[tuple[str | None, bytes], deque[int]] = {}
    for i, (seq, model, rule) in enumerate(zip(seqs, models, rules, strict=True)):
        if rule is None or len(seq) < rule.min_cacheable_tokens:
            continue
        ttl = rule.ttl_seconds
        if ttl_override and rule.write_multiplier <= 1.0:
            ttl = max(ttl, ttl_override)
        window = windows.setdefault((model, seq[: rule.min_cacheable_tokens].tobytes()), deque())
        while window and times[i] - times[window[0]] > ttl:
            window.popleft()
        best, best_j = 0, -1
        for j in list(window)[-MAX_WINDOW:]:
            other = seqs[j]
            m = min(len(seq), len(other))
            diff = np.flatnonzero(seq[:m] != other[:m])
            shared = int(diff[0]) if diff.size else m
            if shared > best:
                best, best_j = shared, j
        window.append(i)
        cached = best // rule.increment_tokens * rule.increment_tokens
        if cached >= rule.min_cacheable_tokens:
            read[i], source[i] = cached, best_j
            if rule.write_multiplier > 1.0:
                need[best_j] = max(need[best_j], cached)
    write = np.maximum(need - read, 0)
    return PrefixResult(read, write, source)


def prefix_by_level(
    messages: list[list[dict[str, Any]]],
    models: list[str | None],
    times: np.ndarray,
    rules: list[ProviderRule | None],
    fix: dict[str, Any],
    ttl: dict[str, Any],
) -> tuple[dict[str, PrefixResult], list[Breaker]]:
    """The cacheable prefixes of every call at each level, and the prefix breakers found.

    Args:
        messages, models, times, rules: per call, in time order (see :func:`cacheable_prefixes`).
        fix: per level, whether the breakers' volatile paragraphs move to the end first.
        ttl: per level, the ``ttl_override`` (seconds, 0 = the provider's).
    """
    cache: dict[str, tuple[int, ...]] = {}
    seqs = [prompt_sequence(m, model, cache) for m, model in zip(messages, models, strict=True)]
    first = [
        m[0]["content"]
        if m
        and m[0].get("role") in ("system", "developer")
        and isinstance(m[0].get("content"), str)
        else None
        for m in messages
    ]
    breakers = find_breakers(first, models, rules)
    fixed = list(seqs)
    for b in breakers:
        for i in b.members:
            moved = [dict(x) for x in messages[i]]
            moved[0]["content"] = move_volatile_last(
                first[i] or "", b.char_position, b.suffix_chars
            )
            fixed[i] = prompt_sequence(moved, models[i], cache)
    done: dict[tuple[bool, float], PrefixResult] = {}
    out = {}
    for level in LEVELS:
        key = (bool(fix[level]), float(ttl[level]))
        if key not in done:
            done[key] = cacheable_prefixes(fixed if key[0] else seqs, models, times, rules, key[1])
        out[level] = done[key]
    return out, breakers
