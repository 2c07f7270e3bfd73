"""The fast paths of levers 2 (context) and 5 (materialize) give the reference's answers.

Each test builds a small hand-made input, runs the reference (per call / per pair, as the
levers did before issue 8) and the fast path, and asks for identical results.
"""

from __future__ import annotations

import difflib
import random
from types import SimpleNamespace

import numpy as np
import pytest

from levers_cli.levers.context.history import (
    CallTable,
    CallTokens,
    Policy,
    find_forks,
    table_forks,
    walk,
    walk_table,
)
from levers_cli.levers.materialize.candidates import MERGE_MIN_TOKENS, Unit, _intents, consistency
from levers_cli.query_templates.mask import mask


def _conversation(rng: random.Random, conv: str, turns: int) -> list[CallTokens]:
    """A chat: system, then user/assistant exchanges; some long user messages (documents),
    odd scalings (token estimates that are not whole numbers)."""
    out, messages, roles = [], [rng.choice([0.0, 12.0, 40.5])], ["system"]
    for t in range(1, turns + 1):
        messages.append(rng.choice([30.0, 55.25, 1500.0, 12.5 * t]))
        roles.append("user")
        tokens = np.array(messages) * rng.choice([1.0, 1.37, 0.91])
        out.append(
            CallTokens(f"{conv}-{t}", conv, t, "openai", "gpt-4o", int(tokens.sum() + 3),
                       f"h{conv}{t}", 0.0, tokens, np.array(roles, dtype=object),
                       len(roles) - 1, rng.choice([2000, 128_000]))
        )  # fmt: skip
        messages.append(rng.choice([80.0, 400.0, 33.3]))
        roles.append("assistant")
    return out


def _calls(seed: int) -> list[CallTokens]:
    rng = random.Random(seed)
    calls: list[CallTokens] = []
    for c in range(12):
        calls += _conversation(rng, f"c{c}", rng.randint(1, 14))
    return calls


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_walk_table_is_walk(seed):
    calls = _calls(seed)
    table = CallTable.from_calls(calls)
    forks = {c.call_id for c in calls if c.turn in (4, 9)}
    fork = np.array([c.call_id in forks for c in calls])
    rates = np.tile([1.5e-7, 6e-7], (len(calls), 1))

    def cost(call, tokens_in, tokens_out):
        return tokens_in * 1.5e-7 + tokens_out * 6e-7

    for policy in (
        Policy(0.7, 8, 0.05, 100, 1024, False, 1000, 0.5),
        Policy(0.6, 3, 0.05, 10, 100, True, 1000, 0.25),
        Policy(0.05, 0, 0.2, 10, 50, True, 10_000, 1.0),
    ):
        fast = walk_table(table, policy, fork, rates)
        reference = []
        for conv in dict.fromkeys(c.conversation_id for c in calls):
            reference += walk([c for c in calls if c.conversation_id == conv], policy, forks, cost)
        assert fast["removed"].tolist() == [o.removed for o in reference]
        assert fast["summarized"].tolist() == [o.summarized for o in reference]
        assert fast["extra_usd"].tolist() == [o.extra_usd for o in reference]
        assert fast["prefix"].tolist() == [o.prefix for o in reference]
    assert table.history_tokens.tolist() == [c.history_tokens for c in calls]
    assert table.query_tokens.tolist() == [c.query_tokens for c in calls]


def test_table_forks_is_find_forks():
    calls = _calls(4)
    rng = np.random.default_rng(0)
    vectors = {c.query_hash: rng.normal(size=8).astype(np.float32) for c in calls}
    vectors = {h: v / np.linalg.norm(v) for h, v in vectors.items() if rng.random() < 0.8}
    hashes = sorted(vectors)
    matrix = np.stack([vectors[h] for h in hashes])
    rows = np.array([hashes.index(c.query_hash) if c.query_hash in vectors else -1 for c in calls])
    reference: dict[str, float] = {}
    for conv in dict.fromkeys(c.conversation_id for c in calls):
        members = [c for c in calls if c.conversation_id == conv]
        reference |= find_forks(members, vectors, 0.2, 40)
    assert reference  # the random queries do fork
    assert table_forks(CallTable.from_calls(calls), rows, matrix, 0.2, 40) == reference


def test_mask_looks_back_over_spaces_and_tabs():
    # a single capitalized word after a sentence end (spaces and tabs between) or at the
    # start is kept; after another word it is a name
    assert mask("Done. \t Alice said hi") == "Done. \t Alice said hi"
    assert mask(" \tAlice said hi") == " \tAlice said hi"
    assert mask("then \t Alice said hi") == "then \t <name> said hi"


def test_consistency_shortcuts_match_difflib():
    rng = random.Random(5)
    words = ["a", "b", "c", "d", "<num>"]
    responses = [[rng.choice(words) for _ in range(rng.randint(0, 6))] for _ in range(7)]
    responses += [list(responses[0]), []]
    value, medoid = consistency(responses, floor=0.0)
    pairs = [(i, j) for i in range(len(responses)) for j in range(i + 1, len(responses))]
    exact = []
    sums = np.zeros(len(responses))
    for i, j in pairs:
        a, b = responses[i], responses[j]
        ratio = 1.0 if not a and not b else difflib.SequenceMatcher(None, a, b, False).ratio()
        exact.append(ratio)
        sums[i] += ratio
        sums[j] += ratio
    assert (value, medoid) == (float(np.mean(exact)), int(np.argmax(sums)))


def _intents_reference(answers: list[list[str]], floor: float) -> list[set[int]]:
    """The pairwise union of every two units (the lever before issue 8)."""
    parent = list(range(len(answers)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(answers)):
        for j in range(i + 1, len(answers)):
            a, b = answers[i], answers[j]
            if min(len(a), len(b)) < MERGE_MIN_TOKENS or root(i) == root(j):
                continue
            if difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() >= floor:
                parent[root(j)] = root(i)
    groups: dict[int, set[int]] = {}
    for i in range(len(answers)):
        groups.setdefault(root(i), set()).add(i)
    return sorted(groups.values(), key=min)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_intents_match_pairwise_merge(seed):
    rng = random.Random(seed)
    base = [[rng.choice("abcdefgh") for _ in range(rng.randint(3, 12))] for _ in range(6)]
    answers = []
    for _ in range(40):
        answer = list(rng.choice(base))
        if rng.random() < 0.5 and answer:
            answer[rng.randrange(len(answer))] = rng.choice("xyz")
        answers.append(answer)
    units = [Unit("prompt", 0, np.array([i]), 1.0, i) for i in range(len(answers))]
    scorer = SimpleNamespace(tokens=lambda row: answers[row], floor=0.85)
    found: dict[int, set[int]] = {}
    for i, group in enumerate(_intents(units, scorer)):
        found.setdefault(group, set()).add(i)
    assert sorted(found.values(), key=min) == _intents_reference(answers, 0.85)
