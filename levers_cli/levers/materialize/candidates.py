"""Workflow candidates for lever 5 (materialize): answer consistency, candidates, evidence.

Consistency of a group of calls is the mean pairwise :class:`difflib.SequenceMatcher` ratio of
their masked response tokens (:mod:`levers_cli.query_templates.mask`) over up to
``[materialize] consistency_sample`` calls spread evenly over time; the stable answer is the
medoid response. See :mod:`levers_cli.levers.materialize` for how candidates are chosen.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from levers_cli.levers.base import LEVELS, Level
from levers_cli.query_templates.mask import mask, tokens
from levers_cli.query_templates.miner import Templates, common_skeleton

if TYPE_CHECKING:
    from levers_cli.config import Config

EXAMPLES = 3
#: Answers shorter than this (tokens) are labels: prompts sharing one are not merged.
MERGE_MIN_TOKENS = 5
_SHOWN_CHARS = 600


def similarity(a: Sequence[str], b: Sequence[str]) -> float:
    """:class:`difflib.SequenceMatcher` ratio of two token sequences (1.0 = identical)."""
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def consistency(responses: Sequence[Sequence[str]], floor: float) -> tuple[float, int]:
    """Mean pairwise similarity of masked response token lists and the medoid's index.

    When the mean of the cheap upper bound (``quick_ratio``) is already below ``floor``,
    that bound is returned (the exact mean is lower) and the medoid is the first response.

    Returns:
        ``(mean similarity in [0, 1], index of the medoid response)``; one response: ``(1, 0)``.
    """
    k = len(responses)
    if k < 2:
        return 1.0, 0
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    compare = _Pairs(responses)
    bound = [compare.value(i, j, quick=True) for i, j in pairs]
    if float(np.mean(bound)) < floor:
        return float(np.mean(bound)), 0
    sums = np.zeros(k)
    values = []
    for i, j in pairs:
        value = compare.value(i, j, quick=False)
        values.append(value)
        sums[i] += value
        sums[j] += value
    return float(np.mean(values)), int(np.argmax(sums))


class _Pairs:
    """:class:`difflib.SequenceMatcher` figures of pairs of ``items``: one matcher per second
    sequence (difflib caches its index of ``b``), identical sequences at 1.0 without
    matching (what difflib gives them)."""

    def __init__(self, items: Sequence[Sequence[str]]):
        self.items = items
        self._matchers: dict[int, difflib.SequenceMatcher[str]] = {}

    def value(self, i: int, j: int, *, quick: bool) -> float:
        """``quick_ratio`` (``quick``) or ``ratio`` of ``items[i]`` against ``items[j]``."""
        a, b = self.items[i], self.items[j]
        if a == b:
            return 1.0
        matcher = self._matchers.get(j)
        if matcher is None:
            matcher = self._matchers[j] = difflib.SequenceMatcher(None, b=b, autojunk=False)
        matcher.set_seq1(a)
        return matcher.quick_ratio() if quick else matcher.ratio()


@dataclass
class Unit:
    """A workflow candidate: ``kind`` is ``template``, ``prompt`` (one exact masked prompt)
    or ``intent`` (exact prompts of one template sharing a stable answer); ``rows`` index the
    calls frame; ``medoid`` is the row of the stable answer."""

    kind: str
    template: int
    rows: np.ndarray
    consistency: float
    medoid: int


class _Scorer:
    """Consistency of groups of calls, with masked responses tokenized once."""

    def __init__(self, responses: list[str], sample: int, floor: float):
        self.responses, self.sample, self.floor = responses, sample, floor
        self._tokens: dict[str, list[str]] = {}  # by response text: answers repeat

    def tokens(self, row: int) -> list[str]:
        """Masked tokens of row ``row``'s response."""
        text = self.responses[row]
        found = self._tokens.get(text)
        if found is None:
            found = self._tokens[text] = tokens(text)
        return found

    def score(self, rows: np.ndarray) -> tuple[float, int]:
        """Consistency of ``rows`` (time-ordered) over up to ``sample`` of them spread evenly
        over time, and the medoid row."""
        picks = np.unique(np.linspace(0, len(rows) - 1, min(self.sample, len(rows))).round())
        chosen = rows[picks.astype(np.int64)]
        value, medoid = consistency([self.tokens(int(r)) for r in chosen], self.floor)
        return value, int(chosen[medoid])


def _groups(rows: np.ndarray, keys: np.ndarray) -> list[np.ndarray]:
    """``rows`` split by ``keys`` (one per row), keys ascending, rows in their order."""
    if not len(rows):
        return []
    order = np.argsort(keys, kind="stable")
    return np.split(rows[order], np.flatnonzero(np.diff(keys[order])) + 1)


def _inner_units(
    rows: np.ndarray, mined: Templates, template: int, scorer: _Scorer, min_occ: int
) -> list[Unit]:
    """Candidates inside one template whose answers vary: its more specific templates with
    stable answers, else its exact prompts with stable answers; then intents (those whose
    medoid answers are near-identical, merged)."""
    stable: list[Unit] = []
    left = np.ones(len(rows), dtype=bool)
    for sub in np.unique(mined.subtemplates[rows]).tolist():
        inside = mined.subtemplates[rows] == sub
        if sub < 0 or inside.all():
            continue
        value, medoid = scorer.score(rows[inside])
        if value >= scorer.floor:
            stable.append(Unit("template", template, rows[inside], value, medoid))
            left &= ~inside
    for members in _groups(rows[left], mined.variants[rows[left]]):
        if len(members) >= min_occ:
            value, medoid = scorer.score(members)
            if value >= scorer.floor:
                stable.append(Unit("prompt", template, members, value, medoid))
    groups: dict[int, list[Unit]] = {}
    for unit, group in zip(stable, _intents(stable, scorer), strict=True):
        groups.setdefault(group, []).append(unit)
    units: list[Unit] = []
    for parts in groups.values():
        if len(parts) > 1:
            merged = np.sort(np.concatenate([u.rows for u in parts]))
            value, medoid = scorer.score(merged)
            if value >= scorer.floor:
                units.append(Unit("intent", template, merged, value, medoid))
                continue
        units.extend(parts)
    return units


def _intents(stable: list[Unit], scorer: _Scorer) -> list[int]:
    """Per unit, its group: units are joined when their medoid answers (at least
    :data:`MERGE_MIN_TOKENS` tokens) are near-identical (similarity of the earlier unit's
    answer to the later's at least the floor), transitively. Each distinct answer is
    compared once per direction the unit order allows, after difflib's cheap bounds."""
    parent = list(range(len(stable)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_answer: dict[tuple[str, ...], list[int]] = {}
    for i, unit in enumerate(stable):
        answer = tuple(scorer.tokens(unit.medoid))
        if len(answer) >= MERGE_MIN_TOKENS:  # a one-word label shared is not one intent
            by_answer.setdefault(answer, []).append(i)
    answers = list(by_answer)
    for members in by_answer.values():
        if scorer.floor <= 1.0:  # identical answers: similarity 1
            for j in members[1:]:
                parent[root(j)] = root(members[0])
    for x, a in enumerate(answers):
        first_a, last_a = by_answer[a][0], by_answer[a][-1]
        matcher = difflib.SequenceMatcher(None, b=a, autojunk=False)
        for b in answers[x + 1 :]:
            first_b, last_b = by_answer[b][0], by_answer[b][-1]
            if root(first_a) == root(first_b):
                continue
            matcher.set_seq1(b)
            if matcher.real_quick_ratio() < scorer.floor or matcher.quick_ratio() < scorer.floor:
                continue  # upper bounds of the ratio, both ways
            if (first_a < last_b and similarity(a, b) >= scorer.floor) or (
                first_b < last_a and similarity(b, a) >= scorer.floor
            ):
                parent[root(first_b)] = root(first_a)
    return [root(i) for i in range(len(stable))]


def find_units(frame: pl.DataFrame, mined: Templates, config: Config) -> list[Unit]:
    """Workflow candidates (see the module docstring), best first (spend × consistency)."""
    cfg = lambda key: config.get("materialize", key)  # noqa: E731
    floor = min(float(cfg("min_consistency")[lv]) for lv in LEVELS)
    min_occ = int(cfg("min_occurrences"))
    scorer = _Scorer(frame["response"].to_list(), int(cfg("consistency_sample")), floor)
    units: list[Unit] = []
    for rows in _groups(np.arange(len(mined.labels)), mined.labels):
        template = int(mined.labels[rows[0]])
        if template >= 0:
            value, medoid = scorer.score(rows)
            if value >= floor:
                units.append(Unit("template", template, rows, value, medoid))
                continue
        units += _inner_units(rows, mined, template, scorer, min_occ)
    cost = frame["cost_usd"].fill_null(0.0).to_numpy()
    units.sort(key=lambda u: (-float(cost[u.rows].sum()) * u.consistency, int(u.rows[0])))
    return units


_WORD = re.compile(r"[a-z0-9_]+")
_FENCE = re.compile(r"```")
#: Copied words shorter than this are not counted (``i``, ``is``, ``can``: wording, not content).
COPIED_MIN_CHARS = 4


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _normal(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


@dataclass
class Invariance:
    """Whether a candidate's answers do not depend on what its slots hold.

    Attributes:
        values: distinct slot fills measured: distinct queries once case, spacing and
            punctuation are ignored (the masked slots and the wording around them).
        slot_words: words of the answers' differences that each call copied from its own
            query's masked slots (numbers, dates, names, ids, quoted values).
        content_words: words (at least :data:`COPIED_MIN_CHARS` characters) of the answers'
            differences copied from the rest of their own query (unmasked content).
        kind: ``invariant`` (the answers are the same whatever the slots hold) or
            ``slot_template`` (an answer template filled from the query's slots).
        reason: why it is not a script (``None`` when it is).
    """

    values: int
    slot_words: int
    content_words: list[str]
    kind: str
    reason: str | None

    @property
    def measured(self) -> bool:
        """Invariance measured on at least two distinct slot values (basis evidence)."""
        return self.reason is None and self.values >= 2


def invariance(frame: pl.DataFrame, unit: Unit) -> Invariance:
    """Whether ``unit``'s answers depend on what its slots hold (DESIGN §5.5, issue 16).

    Per call, the words where its answer differs from the stable answer (the medoid's) are
    compared with the words where its query differs from the medoid's query. Not a script:

    - queries carrying pasted content (a fenced block: code, a document): the answer is about
      that content;
    - a short label answer (fewer than :data:`MERGE_MIN_TOKENS` tokens): a classification of
      the content (a repeat of one labelled query is a cache hit, not a workflow);
    - answers whose differences copy more unmasked words from their own query than half the
      words they copy from its masked slots (``SUM(mrr) FROM subscriptions`` for the query
      about ``subscriptions (mrr, …)``): the answer depends on the content, and the stable
      answer would be wrong for every other value.

    Otherwise the answers are ``invariant`` (no copied words) or a ``slot_template`` (filled
    from the query's masked slots, as a weekly report from its figures).
    """
    rows = [int(r) for r in unit.rows]
    queries = frame["query"].gather(rows).to_list()
    answers = frame["response"].gather(rows).to_list()
    values = len({_normal(q) for q in queries})
    if any(_FENCE.search(q) for q in queries):
        return Invariance(values, 0, [], "invariant", "its queries carry pasted content")
    if len(tokens(frame["response"][unit.medoid])) < MERGE_MIN_TOKENS:
        return Invariance(values, 0, [], "invariant", "a label: a classification of the content")
    stable_q, stable_a = _words(frame["query"][unit.medoid]), _words(frame["response"][unit.medoid])
    slot_words: set[str] = set()
    content: set[str] = set()
    for query, answer in zip(queries, answers, strict=True):
        own = _words(query)
        copied = (_words(answer) - stable_a) & (own - stable_q)
        slots = own - _words(mask(query))
        slot_words |= copied & slots
        content |= {w for w in copied - slots if len(w) >= COPIED_MIN_CHARS}
    kind = "slot_template" if slot_words else "invariant"
    if len(content) > max(1, len(slot_words) / 2):
        shown = ", ".join(sorted(content)[:4])
        reason = f"its answers copy what its queries hold ({shown})"
        return Invariance(values, len(slot_words), sorted(content), kind, reason)
    return Invariance(values, len(slot_words), sorted(content), kind, None)


def _short(text: str, limit: int = _SHOWN_CHARS) -> str:
    return text if len(text) <= limit else text[: limit // 3] + " … " + text[-2 * limit // 3 :]


def evidence_row(
    frame: pl.DataFrame, mined: Templates, unit: Unit, thresholds: dict[Level, float], ngram: int
) -> dict[str, Any]:
    """One candidate for the evidence table: kind, query template (the text all its queries
    share, slots masked), calls, distinct prompts, spend (USD, the log's span), consistency, score
    (spend × consistency), the levels that script it, models, three example queries and the
    stable answer (the medoid response), the template id and the prompt template (system
    prompt included)."""
    rows = unit.rows
    prompts = frame["prompt"].gather(rows).to_list()
    seen: dict[int, int] = {}
    for r in rows.tolist():
        seen.setdefault(int(mined.variants[r]), r)
    costs = frame["cost_usd"].gather(rows)  # the unit's rows only: there are many units
    spend = float(costs.fill_null(0.0).to_numpy().sum())
    queries = frame["query"].gather(rows).to_list()
    return {
        "kind": unit.kind,
        "query_template": _short(common_skeleton(queries, ngram)),
        "calls": len(rows),
        "distinct_prompts": len(seen),
        "spend_usd": round(spend, 6),
        "unpriced_calls": costs.null_count(),
        "consistency": round(unit.consistency, 4),
        "score": round(spend * unit.consistency, 6),
        "levels": [lv for lv in LEVELS if unit.consistency >= thresholds[lv]],
        "models": sorted(set(frame["model"].gather(rows).drop_nulls().to_list())),
        "examples": [_short(frame["query"][r], 300) for r in list(seen.values())[:EXAMPLES]],
        "stable_answer": _short(frame["response"][unit.medoid]),
        "template_id": unit.template,
        "template": _short(common_skeleton(prompts, ngram)),
    }


__all__ = [
    "COPIED_MIN_CHARS",
    "EXAMPLES",
    "MERGE_MIN_TOKENS",
    "Invariance",
    "Unit",
    "consistency",
    "evidence_row",
    "find_units",
    "invariance",
    "similarity",
]
