"""The caching lever's fast paths give the reference answers: the sorted-window prefix cache,
the TTL-windowed semantic matches with lazy guards, and the exact key without serializing
messages — each checked against the straightforward version (kept here) on hand-made and
seeded random inputs."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import pytest

from levers_cli.levers.caching import prefix as caching_prefix
from levers_cli.levers.caching.calls import exact_hits, exact_key, key_parts
from levers_cli.levers.caching.guards import LazyGuards, guard_of
from levers_cli.levers.caching.prefix import (
    Tokenizer,
    cacheable_prefixes,
    prompt_bound,
    prompt_sequence,
)
from levers_cli.levers.caching.semantic import best_matches, response_similarity
from levers_cli.rules import rule_for
from levers_cli.text import tokens

OPENAI = rule_for("openai", "gpt-4o")  # minimum 1,024, increment 128, no write premium
ANTHROPIC = rule_for("anthropic", "claude-sonnet-4-5")  # minimum 1,024, increment 1, writes


def reference_prefixes(seqs, models, times, rules, ttl_override=0.0, max_window=256):
    """The plain version: every call compared with each of the last ``max_window`` calls of
    its window (same model, same first ``minimum`` tokens) within the TTL: the reads, the
    tokens shared with the source and the sources."""
    n = len(seqs)
    read, shared_with = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    source = np.full(n, -1, dtype=np.int64)
    windows: dict[Any, deque[int]] = {}
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
        for j in list(window)[-max_window:]:
            other = seqs[j]
            m = min(len(seq), len(other))
            diff = np.flatnonzero(seq[:m] != other[:m])
            shared = int(diff[0]) if diff.size else m
            if shared >= best and shared:  # the latest of the calls sharing the most
                best, best_j = shared, j
        window.append(i)
        cached = best // rule.increment_tokens * rule.increment_tokens
        if cached >= rule.min_cacheable_tokens:
            read[i], source[i], shared_with[i] = cached, best_j, best
    return read, shared_with, source


def _random_calls(rng: np.random.Generator, n: int, nan_tail: int = 0):
    """Prompts built from a few shared heads (≥ 1,024 tokens) and tails that share a random
    number of tokens, so windows hold ties, repeats and sequences that are prefixes of others."""
    heads = [rng.integers(0, 50, 1100 + 40 * k) for k in range(3)]
    tails = [rng.integers(0, 3, 300) for _ in range(6)]
    seqs, models, rules = [], [], []
    for _ in range(n):
        head = heads[rng.integers(0, 3)]
        tail = tails[rng.integers(0, 6)][: rng.integers(0, 300)]
        cut = rng.integers(900, len(head) + 1)  # some too short, some sharing less
        seqs.append(np.concatenate([head[:cut], tail]).astype(np.int64))
        models.append(["gpt-4o", "claude-sonnet-4-5"][rng.integers(0, 2)])
        rules.append(OPENAI if models[-1] == "gpt-4o" else ANTHROPIC)
    times = np.sort(rng.integers(0, 3000, n)).astype(np.float64)
    if nan_tail:
        times[-nan_tail:] = np.nan
    return seqs, models, times, rules


@pytest.mark.parametrize(("seed", "window", "override", "nan_tail"), [
    (0, 256, 0.0, 0), (1, 4, 0.0, 0), (2, 3, 600.0, 0), (3, 256, 600.0, 25), (4, 2, 0.0, 40),
])  # fmt: skip
def test_sorted_windows_match_the_reference(monkeypatch, seed, window, override, nan_tail):
    monkeypatch.setattr(caching_prefix, "MAX_WINDOW", window)
    monkeypatch.setattr(caching_prefix, "_SWEEP_EVERY", 7)  # sweep idle windows often
    rng = np.random.default_rng(seed)
    seqs, models, times, rules = _random_calls(rng, 400, nan_tail)
    rules[5] = None  # no rule: never cached
    got = cacheable_prefixes(seqs, models, times, rules, override)
    read, shared, source = reference_prefixes(seqs, models, times, rules, override, window)
    assert (got.read > 0).sum() > 50  # the test bites
    assert got.read.tolist() == read.tolist()
    assert got.shared.tolist() == shared.tolist()
    assert got.source.tolist() == source.tolist()
    assert not got.write.any()  # breakpoints (and so writes) are placed by priced_prefixes


def test_prompt_sequence_and_bound():
    """Per message <start> role <message> content <end>, then the reply primer; the byte
    bound is never below the token count (multi-byte text included)."""
    tokenizer = Tokenizer()
    enc = tokens.encoding_for("gpt-4o")
    prompt = (("system", "Be brief. " * 50), ("user", "naïve café — 東京 ✓"))
    seq = prompt_sequence(prompt, "gpt-4o", tokenizer)
    expected = []
    for role, content in prompt:
        expected += [-1, *enc.encode_ordinary(role), -2, *enc.encode_ordinary(content), -3]
    expected += [-1, *enc.encode_ordinary("assistant"), -2]
    assert seq.tolist() == expected
    assert prompt_bound(prompt) >= len(seq)
    assert prompt_bound((("user", "東京" * 100),)) >= len(
        prompt_sequence((("user", "東京" * 100),), "gpt-4o", tokenizer)
    )


def reference_matches(vectors, eligible, partition, times, ok, guards, ttl, floor):
    """The plain version: each call scored against every call of its partition."""
    n = len(eligible)
    sim, raw = np.full(n, -1.0), np.full(n, -1.0)
    source = np.full(n, -1, dtype=np.int64)
    groups: dict[Any, list[int]] = {}
    for i in np.flatnonzero(eligible):
        groups.setdefault(partition[i], []).append(int(i))
    ids: dict[Any, int] = {}
    sig = np.array([ids.setdefault(guards[i].signature, len(ids)) for i in range(n)])
    for members in groups.values():
        idx = np.asarray(members)
        mat = vectors[idx].astype(np.float32)
        scores = mat @ mat.T
        invalid = np.arange(len(idx))[None, :] >= np.arange(len(idx))[:, None]
        invalid |= ~ok[idx][None, :]
        invalid |= times[idx][:, None] - times[idx][None, :] > ttl
        scores[invalid] = -1.0
        raw[idx] = scores.max(axis=1)
        scores[sig[idx][None, :] != sig[idx][:, None]] = -1.0
        for r, row in enumerate(scores):
            candidates = np.flatnonzero(row >= floor)
            order = candidates[np.argsort(-row[candidates], kind="stable")][:64]
            me = guards[idx[r]]
            for c in order:
                other = guards[idx[c]]
                if me.entities <= other.words and other.entities <= me.words:
                    sim[idx[r]], source[idx[r]] = float(row[c]), idx[c]
                    break
    return sim, source, raw


@pytest.mark.parametrize("ttl", [50.0, 400.0, float("inf")])
def test_windowed_matches_match_the_reference(ttl):
    rng = np.random.default_rng(7)
    n = 600
    words = ["refund", "Apple", "google", "2", "5", "not", "card", "pay", "limit", "Paris"]
    queries = [" ".join(rng.choice(words, 3)) for _ in range(n)]
    base = rng.normal(size=(12, 16))
    vectors = base[rng.integers(0, 12, n)] + 0.15 * rng.normal(size=(n, 16))
    vectors[::7] = vectors[3]  # repeats: identical scores, ties broken by position
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    eligible = rng.random(n) < 0.9
    ok = rng.random(n) < 0.9
    times = np.sort(rng.integers(0, 5000, n)).astype(np.float64)
    times[-30:] = np.nan  # unknown times last: no TTL for them
    partition = [int(k) for k in rng.integers(0, 3, n)]
    guards = [guard_of(q) if e else guard_of("") for q, e in zip(queries, eligible, strict=True)]
    m = best_matches(
        vectors, eligible, partition, times, ok, LazyGuards(queries, eligible), ttl, 0.8
    )
    sim, source, raw = reference_matches(vectors, eligible, partition, times, ok, guards, ttl, 0.8)
    assert (source >= 0).sum() > 20
    assert m.source.tolist() == source.tolist()
    assert m.sim.tolist() == sim.tolist() and m.raw.tolist() == raw.tolist()


MESSAGES = [  # (messages, query, params): the key's equalities, case by case
    ([{"role": "user", "content": "Hi  THERE"}], "Hi there", None),
    ([{"content": "hi there", "role": "user"}], "hi there", None),  # same after normalizing
    ([{"role": "user", "content": [{"type": "text", "text": "hi there"}]}], "hi there", None),
    ([{"role": "user", "content": "hi there", "name": "bob"}], "hi there", None),
    ([{"role": "user", "name": "bob", "content": "HI there"}], "hi there", None),
    ([{"role": "system", "content": "x"}, {"role": "user", "content": "hi there"}], "", None),
    ([{"role": "system", "content": ["x"]}, {"role": "user", "content": "hi there"}], "", None),
    ([{"role": "tool", "content": 1}, {"role": "user", "content": "hi there"}], "", None),
    ([{"role": "tool", "content": 1.0}, {"role": "user", "content": "hi there"}], "", None),
    ([{"role": "tool", "content": True}, {"role": "user", "content": "hi there"}], "", None),
    ([], "Hi there", None),
    ([], "Hi there", '{"temperature": 0}'),
    ([{"role": "user", "content": "hi there"}], "hi there", '{"temperature": 0}'),
]


def test_key_parts_have_the_exact_key_equalities():
    for model in ("gpt-4o", None):
        for system in ("", None, "be brief"):
            cases = [(model, system, m, q, p) for m, q, p in MESSAGES]
            slow = [exact_key(*c) for c in cases]
            fast = [key_parts(*c) for c in cases]
            for a in range(len(cases)):
                for b in range(len(cases)):
                    assert (slow[a] == slow[b]) == (fast[a] == fast[b]), (cases[a], cases[b])
    keys = ["a", None, "a", "b", "a"]
    times, ok = np.array([0.0, 1.0, 2.0, 3.0, 500.0]), np.array([True] * 5)
    ids = np.array([0, -1, 0, 1, 0])
    for ttl in (10.0, 1000.0):
        by_list, by_ids = exact_hits(keys, times, ok, ttl), exact_hits(ids, times, ok, ttl)
        assert by_list[0].tolist() == by_ids[0].tolist()
        assert by_list[1].tolist() == by_ids[1].tolist()


def test_response_similarity_counts_each_answer_once_with_the_same_result():
    from sklearn.feature_extraction.text import TfidfVectorizer

    rng = np.random.default_rng(3)
    words = ["refund", "takes", "five", "days", "go", "to", "settings", "Reset", "the", "a"]
    answers = [" ".join(rng.choice(words, rng.integers(1, 9))) for _ in range(40)]
    pairs = [(answers[rng.integers(0, 40)], answers[rng.integers(0, 40)]) for _ in range(300)]
    pairs[3] = ("", "a b")  # nothing to compare
    got = response_similarity(pairs)
    usable = [k for k, (a, b) in enumerate(pairs) if a.strip() and b.strip()]
    texts = [pairs[k][0] for k in usable] + [pairs[k][1] for k in usable]
    matrix = TfidfVectorizer(sublinear_tf=True).fit_transform(texts)
    half = len(usable)
    want = np.asarray(matrix[:half].multiply(matrix[half:]).sum(axis=1)).ravel()
    assert np.isnan(got[3]) and got[usable].tolist() == want.tolist()  # bit for bit
    assert np.isnan(response_similarity([("a", "b")])).all()  # no word of 2+ letters
