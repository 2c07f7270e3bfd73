"""Prefix (prompt) caching for the caching lever: token sequences, the cacheable prefix of
every call, and the templates whose prefix a volatile value breaks.

Method (../shared/DESIGN.md §5.3a): a prompt is the token sequence a chat model reads — per
message ``<start> role <message> content <end>``, then ``<start> assistant <message>`` (the
three framing tokens per message of OpenAI's cookbook "How to count tokens with tiktoken",
as sentinels that match only each other). A call can read from the cache the longest prefix it
shares with an earlier call of the same model within the provider's TTL, counted only from
the provider's minimum and in its increments (``provider_rules.toml``). Where the provider
charges cache writes (Anthropic), a request caches only up to a breakpoint and pays for every
write, read later or not: the lever places one breakpoint per request — at the end of the
system prompt for a single call, at the end of the prompt for a conversation turn (the next
turn then reads the whole history) — so a call reads at most up to its source's breakpoint
and writes from what it read up to its own.

This module measures the prefixes on the log's prompts; :mod:`~levers_cli.levers.caching.planned`
prices them on the plan (the prompt and model each earlier lever leaves).

Speed (a million calls): each distinct text is tokenized once, in batches; a call whose text
cannot reach the provider minimum (a token is at least one UTF-8 byte) is never tokenized; a
sequence is kept as packed bytes (4 big-endian bytes per token) only while it is in a cache
window; and each window keeps its calls sorted by those bytes, so the longest shared prefix is
found at the call's two sorted neighbours (for sorted strings, ``lcp(a, c) = min(lcp(a, b),
lcp(b, c))``) instead of by comparing every call in the window.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from levers_cli.levers.base import LEVELS, Level
from levers_cli.levers.caching.breakers import Breaker, find_breakers, move_volatile_last
from levers_cli.rules import ProviderRule
from levers_cli.text.tokens import encoding_for

#: Framing sentinels (never real token ids): message start, content start, message end.
_START, _MESSAGE, _END = -1, -2, -3
#: Earlier calls compared per call (the most recent ones in the TTL window).
MAX_WINDOW = 256
#: Bytes per packed token; a token ``t`` is packed as big-endian ``t + 4`` (sentinels ≥ 1).
_WIDTH, _OFFSET = 4, 4
#: Offers between sweeps of windows whose every entry has expired (memory only).
_SWEEP_EVERY = 4096

#: A prompt: ``(role, content text)`` per message, system messages included.
Prompt = tuple[tuple[str, str], ...]


def _pack(tokens: Any) -> bytes:
    return (np.asarray(tokens, dtype=np.int64) + _OFFSET).astype(">u4").tobytes()


_S, _M, _E = _pack([_START]), _pack([_MESSAGE]), _pack([_END])


def _byte_bound(text: str) -> int:
    """An upper bound of ``text``'s tokens: its UTF-8 bytes (byte-level BPE)."""
    return len(text) if text.isascii() else len(text.encode())


class Tokenizer:
    """Packed token bytes of texts (see the module docstring), each distinct text encoded
    once per encoding, in batches (tiktoken's threads)."""

    def __init__(self) -> None:
        self._encodings: dict[str | None, Any] = {}
        self._packed: dict[str, dict[str, bytes]] = {}

    def _encoding(self, model: str | None) -> Any:
        if model not in self._encodings:
            self._encodings[model] = encoding_for(model)
        return self._encodings[model]

    def prepare(self, model: str | None, texts: set[str]) -> None:
        """Encode the ``texts`` not yet known for ``model``'s encoding, in one batch."""
        encoding = self._encoding(model)
        known = self._packed.setdefault(encoding.name, {})
        todo = [t for t in texts if t not in known]
        for text, tokens in zip(
            todo, encoding.encode_ordinary_batch(todo, num_threads=2), strict=True
        ):
            known[text] = _pack(tokens)

    def packed(self, model: str | None, text: str) -> bytes:
        """``text``'s packed tokens for ``model``."""
        encoding = self._encoding(model)
        known = self._packed.setdefault(encoding.name, {})
        if text not in known:
            known[text] = _pack(encoding.encode_ordinary(text))
        return known[text]

    def sequence(self, prompt: Prompt, model: str | None) -> bytes:
        """The prompt as the model reads it, packed (``len // 4`` tokens)."""
        parts: list[bytes] = []
        for role, content in prompt:
            parts += [_S, self.packed(model, role), _M, self.packed(model, content), _E]
        parts += [_S, self.packed(model, "assistant"), _M]
        return b"".join(parts)


def prompt_bound(prompt: Prompt) -> int:
    """An upper bound of the prompt's tokens (framing included) that needs no tokenizer."""
    return sum(3 + _byte_bound(r) + _byte_bound(c) for r, c in prompt) + 2 + len("assistant")


def prompt_sequence(prompt: Prompt, model: str | None, tokenizer: Tokenizer) -> np.ndarray:
    """The prompt as the model reads it (see the module docstring), as an int64 array of
    token ids with negative framing sentinels; its length is the cookbook's token count."""
    packed = np.frombuffer(tokenizer.sequence(prompt, model), dtype=">u4")
    return packed.astype(np.int64) - _OFFSET


@dataclass
class PrefixResult:
    """Per call, in the order given: cached input tokens read and written (tokens), the
    index of the earlier call read from (``-1``: none) and the tokens the prompt shares with
    it (``shared``, before the provider's minimum, increments and breakpoints)."""

    read: np.ndarray
    write: np.ndarray
    source: np.ndarray
    shared: np.ndarray


def prefix_ttl(rule: ProviderRule, ttl_override: float = 0.0, extended: bool = False) -> float:
    """Seconds a prefix of ``rule``'s provider stays cached: the rule's TTL; at least
    ``ttl_override`` where writes are free (a longer in-memory retention, which OpenAI gives
    "up to one hour"); at least ``extended_ttl_seconds`` when ``extended`` (OpenAI
    ``prompt_cache_retention="24h"``, on the models that offer it)."""
    ttl = float(rule.ttl_seconds)
    if ttl_override and not rule.writes_charged:
        ttl = max(ttl, float(ttl_override))
    if extended and rule.extended_ttl_seconds:
        ttl = max(ttl, float(rule.extended_ttl_seconds))
    return ttl


def _lcp(a: bytes, b: bytes, start: int) -> int:
    """Tokens two packed sequences share, knowing they share the first ``start``."""
    x, y = np.frombuffer(a, dtype=np.uint32), np.frombuffer(b, dtype=np.uint32)
    m = min(len(x), len(y))
    diff = np.flatnonzero(x[start:m] != y[start:m])
    return start + int(diff[0]) if diff.size else m


@dataclass
class _Window:
    """Calls sharing a model and the provider's minimum prefix: in time order (the last
    :data:`MAX_WINDOW` only; older ones are never compared again) and sorted by sequence."""

    order: deque[int] = field(default_factory=deque)
    seqs: dict[int, bytes] = field(default_factory=dict)
    ranked: list[tuple[bytes, int]] = field(default_factory=list)
    last: float = float("nan")

    def drop_oldest(self) -> None:
        j = self.order.popleft()
        seq = self.seqs.pop(j)
        del self.ranked[bisect_left(self.ranked, (seq, j))]


class PrefixCache:
    """A provider prefix cache walked in time order, one call at a time (:meth:`offer`).

    Args:
        times: each call's request time (epoch seconds, NaN when unknown).
        ttl_override: see :func:`cacheable_prefixes`.
        rules: every rule a call may come with: a window idle longer than the longest TTL
            they give is dropped, which changes nothing when times are known and sorted.
    """

    def __init__(
        self,
        times: np.ndarray,
        ttl_override: float,
        rules: set[ProviderRule],
        extended: bool = False,
    ) -> None:
        n = len(times)
        self.times, self.ttl_override, self.extended = times, ttl_override, extended
        self.shared = np.zeros(n, dtype=np.int64)
        self.source = np.full(n, -1, dtype=np.int64)
        self.windows: dict[tuple[str | None, bool, bytes], _Window] = {}
        finite = bool(n) and bool(np.isfinite(times).all())
        self.max_ttl = max((self.ttl_of(r) for r in rules), default=0.0)
        self.sweep = finite and bool((np.diff(times) >= 0).all()) and np.isfinite(self.max_ttl)
        self.offers = 0

    def ttl_of(self, rule: ProviderRule) -> float:
        """Seconds a prefix of ``rule``'s provider stays cached: its TTL, the override where
        writes are free, its extended retention when asked for (:func:`prefix_ttl`)."""
        return prefix_ttl(rule, self.ttl_override, self.extended)

    def offer(
        self, i: int, seq: bytes, model: str | None, rule: ProviderRule, batch: bool = False
    ) -> None:
        """Call ``i`` (packed ``seq`` of at least ``rule.min_cacheable_tokens`` tokens) reads
        the longest prefix it shares with the window, then joins it; batch-job calls
        (``batch``) share windows only with each other, never with real-time traffic."""
        t, minimum, ttl = self.times[i], rule.min_cacheable_tokens, self.ttl_of(rule)
        self._maybe_sweep(t)
        window = self.windows.setdefault((model, batch, seq[: minimum * _WIDTH]), _Window())
        order, times = window.order, self.times
        while order and t - times[order[0]] > ttl:
            window.drop_oldest()
        best, best_j = 0, -1
        if order:
            ranked = window.ranked
            pos = bisect_left(ranked, (seq, i))
            for k in (pos - 1, pos):
                if 0 <= k < len(ranked):
                    best = max(best, _lcp(seq, ranked[k][0], minimum))
            # the calls sharing that prefix sit around ``pos``; the latest one is the source
            # (the most recent use: the likeliest to share the call's plan model and TTL)
            prefix, k = seq[: best * _WIDTH], pos - 1
            while k >= 0 and ranked[k][0].startswith(prefix):
                best_j, k = max(best_j, ranked[k][1]), k - 1
            k = pos
            while k < len(ranked) and ranked[k][0].startswith(prefix):
                best_j, k = max(best_j, ranked[k][1]), k + 1
            if best == 0:
                best_j = -1
        if len(order) >= MAX_WINDOW:
            window.drop_oldest()
        order.append(i)
        window.seqs[i] = seq
        insort(window.ranked, (seq, i))
        window.last = t
        if best_j >= 0:
            self.shared[i], self.source[i] = best, best_j

    def _maybe_sweep(self, t: float) -> None:
        self.offers += 1
        if self.sweep and self.offers % _SWEEP_EVERY == 0:
            stale = [k for k, w in self.windows.items() if t - w.last > self.max_ttl]
            for key in stale:
                del self.windows[key]

    def result(
        self,
        rules: list[ProviderRule | None],
        stops: np.ndarray | None = None,
        ends: np.ndarray | None = None,
    ) -> PrefixResult:
        """Reads, writes and sources under each call's rule (see :func:`priced_prefixes`)."""
        return priced_prefixes(self.shared, self.source, rules, stops, ends)


def priced_prefixes(
    shared: np.ndarray,
    source: np.ndarray,
    rules: list[ProviderRule | None],
    stops: np.ndarray | None = None,
    ends: np.ndarray | None = None,
) -> PrefixResult:
    """What each call reads and writes, from the prefix it shares with its source.

    Args:
        shared: ``(n,)`` tokens shared with the source (0: none).
        source: ``(n,)`` index of the source call (``-1``: none).
        rules: each call's provider rule.
        stops: ``(n,)`` where each call's breakpoint sits (tokens), for providers that charge
            writes; ``None``: no breakpoint limits the reads, and nothing is written.
        ends: ``(n,)`` each call's prompt length (tokens), the farthest a read can reach.

    Returns:
        reads (``rule.cacheable`` of the shared prefix, capped at the source's breakpoint
        where writes are charged), writes (from the read up to the call's own breakpoint
        where writes are charged and the breakpoint reaches the minimum; else 0), sources.
    """
    n = len(shared)
    read, write = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    for i, rule in enumerate(rules):
        if rule is None or not rule.prefix_caching:
            continue
        j = int(source[i])
        reach = int(shared[i]) if j >= 0 else 0
        if rule.writes_charged and stops is not None and j >= 0:
            reach = min(reach, int(stops[j]))
        if ends is not None:
            reach = min(reach, int(ends[i]))
        read[i] = rule.cacheable(reach)
        if rule.writes_charged and stops is not None and stops[i] >= rule.min_cacheable_tokens:
            write[i] = max(int(stops[i]) - read[i], 0)
    return PrefixResult(read, write, source.copy(), shared.copy())


def cacheable_prefixes(
    seqs: list[np.ndarray],
    models: list[str | None],
    times: np.ndarray,
    rules: list[ProviderRule | None],
    ttl_override: float = 0.0,
) -> PrefixResult:
    """Cached tokens each call could read (and write) under its provider's rules.

    Args:
        seqs: prompt token sequences (:func:`prompt_sequence`), in time order.
        models: each call's model; only calls of the same model share a cache.
        times: request times (epoch seconds, NaN when unknown: then no TTL applies and only
            the last :data:`MAX_WINDOW` calls count).
        rules: each call's provider rule (``None``: no prompt caching known, nothing cached).
        ttl_override: a longer TTL (seconds) for providers that charge no write premium
            (OpenAI keeps prefixes 5–10 minutes, up to an hour); 0 keeps the rule's TTL.

    Returns:
        the reads (a multiple of the rule's increment, at least its minimum, else 0), no
        writes (:func:`priced_prefixes` places breakpoints) and each read's source call.
    """
    cache = PrefixCache(times, ttl_override, {r for r in rules if r is not None})
    for i, (seq, model, rule) in enumerate(zip(seqs, models, rules, strict=True)):
        if rule is not None and len(seq) >= rule.min_cacheable_tokens:
            cache.offer(i, _pack(seq), model, rule)
    return cache.result(rules)


def system_tokens(prompt: Prompt, model: str | None, tokenizer: Tokenizer) -> int:
    """Tokens of the prompt's leading system (or developer) messages, framing included:
    where a breakpoint at the end of the system prompt sits."""
    total = 0
    for role, content in prompt:
        if role not in ("system", "developer"):
            break
        total += 3 + len(tokenizer.packed(model, role) + tokenizer.packed(model, content)) // 4
    return total


@dataclass
class Prefixes:
    """The prefixes of every call: per level a :class:`PrefixResult`; per call the tokens
    of its system prompt (``static``) and whether its breakpoint sits at the end of its
    prompt (``at_end``: a conversation turn) rather than after the system prompt."""

    by_level: dict[Level, PrefixResult]
    static: np.ndarray
    at_end: np.ndarray
    breakers: list[Breaker]


def prefix_by_level(
    prompts: list[Prompt],
    first_system: list[str | None],
    models: list[str | None],
    times: np.ndarray,
    rules: list[ProviderRule | None],
    fix: dict[str, Any],
    ttl: dict[str, Any],
    turns: np.ndarray | None = None,
    extended: dict[str, Any] | None = None,
    batch: np.ndarray | None = None,
) -> Prefixes:
    """The cacheable prefixes of every call at each level, and the prefix breakers found.

    Args:
        prompts: per call, its messages as ``(role, content text)``, in time order.
        first_system: per call, the first message's text when it is a system or developer
            message with plain-text content (the prompt a breaker is looked for in).
        models, times, rules: per call (see :func:`cacheable_prefixes`).
        fix: per level, whether the breakers' volatile paragraphs move to the end first.
        ttl: per level, the ``ttl_override`` (seconds, 0 = the provider's).
        turns: per call, whether it is a turn of a conversation of several calls (its
            breakpoint goes at the end of its prompt); ``None``: none is.
        extended: per level, whether the provider's extended retention is asked for.
        batch: per call, whether it was sent in a batch job (batch jobs share a cache only
            with each other).
    """
    breakers = find_breakers(first_system, models, rules)
    moved: dict[int, Prompt] = {}
    for b in breakers:
        for i in b.members:
            text = move_volatile_last(first_system[i] or "", b.char_position, b.suffix_chars)
            moved[i] = ((prompts[i][0][0], text), *prompts[i][1:])
    longer = extended or {}
    key_of = {lv: (bool(fix[lv]), float(ttl[lv]), bool(longer.get(lv))) for lv in LEVELS}
    settings = sorted(set(key_of.values()))
    used = {r for r in rules if r is not None}
    caches = {key: PrefixCache(times, key[1], used, key[2]) for key in settings}
    tokenizer = Tokenizer()
    # calls that may reach their provider's minimum, and their texts tokenized in batches
    live = [
        i
        for i, rule in enumerate(rules)
        if rule is not None
        and (
            prompt_bound(prompts[i]) >= rule.min_cacheable_tokens
            or (i in moved and prompt_bound(moved[i]) >= rule.min_cacheable_tokens)
        )
    ]
    texts: dict[str | None, set[str]] = {}
    for i in live:
        bucket = texts.setdefault(models[i], {"assistant"})
        for prompt in (prompts[i], moved.get(i, ())):
            for role, content in prompt:
                bucket.update((role, content))
    for model, bucket in texts.items():
        tokenizer.prepare(model, bucket)
    n = len(prompts)
    at_end = np.zeros(n, dtype=bool) if turns is None else np.asarray(turns, dtype=bool)
    static, length = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    for i in live:
        rule, model = rules[i], models[i]
        assert rule is not None
        seq = tokenizer.sequence(prompts[i], model)
        static[i], length[i] = system_tokens(prompts[i], model, tokenizer), len(seq) // _WIDTH
        fixed = tokenizer.sequence(moved[i], model) if i in moved else seq
        for (is_fixed, _, _), cache in caches.items():
            use = fixed if is_fixed else seq
            if len(use) // _WIDTH >= rule.min_cacheable_tokens:
                cache.offer(i, use, model, rule, bool(batch is not None and batch[i]))
    stops = np.where(at_end, length, static)
    done = {key: cache.result(rules, stops, length) for key, cache in caches.items()}
    by_level = {lv: done[key_of[lv]] for lv in LEVELS}
    return Prefixes(by_level, static, at_end, breakers)
