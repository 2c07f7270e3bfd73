"""Guards of the caching lever's semantic matches: what a semantic hit must keep of the query
it answers — the same numbers, the same negation, and every capitalized word (a named entity,
not at a sentence start) of one query present in the other (../shared/DESIGN.md §5.3c)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_NEGATION = re.compile(
    r"\b(?:not|no|never|none|nothing|nobody|neither|nor|cannot|without)\b|n[’']t\b", re.I
)
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                 "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                 "seventeen", "eighteen", "nineteen", "twenty"]  # fmt: skip
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.I)
_WORD = re.compile(r"[A-Za-z][A-Za-z’'-]*")
_NOT_ENTITIES = {"i", "i'm", "i've", "i'd", "i'll", "i’m", "i’ve", "i’d", "i’ll"}


@dataclass(frozen=True, slots=True)
class Guard:
    """What a semantic hit must keep: numbers and negation (``signature``), and the
    capitalized words (``entities``) that the other query must contain (``words``)."""

    signature: tuple[tuple[str, ...], bool]
    entities: frozenset[str]
    words: frozenset[str]


def guard_of(text: str | None) -> Guard:
    """The :class:`Guard` of a query."""
    text = text or ""
    numbers = [m.group() for m in _NUMBER.finditer(text)]
    numbers += [str(_NUMBER_WORDS.index(w.lower())) for w in _NUMBER_WORD.findall(text)]
    words, entities = set(), set()
    for match in _WORD.finditer(text):
        word = match.group().lower()
        words.add(word)
        k = match.start() - 1
        while k >= 0 and text[k] in " \t":
            k -= 1
        initial = k < 0 or text[k] in ".!?:\n\"'“(*-#>"
        if match.group()[0].isupper() and not initial and word not in _NOT_ENTITIES:
            entities.add(word)
    return Guard(
        (tuple(sorted(numbers)), bool(_NEGATION.search(text))),
        frozenset(entities),
        frozenset(words),
    )


def entities_agree(a: Guard, b: Guard) -> bool:
    """Whether each query's entities are words of the other."""
    return a.entities <= b.words and b.entities <= a.words


class LazyGuards:
    """Each call's :class:`Guard` (of ``guard_of("")`` where not eligible), computed on first
    use and once per distinct query: most calls never meet a candidate above the floor."""

    def __init__(self, queries: list[str], eligible: np.ndarray) -> None:
        self._queries, self._eligible = queries, eligible
        self._by_text: dict[str, Guard] = {}

    def __len__(self) -> int:
        return len(self._queries)

    def __getitem__(self, i: int) -> Guard:
        text = self._queries[i] if self._eligible[i] else ""
        guard = self._by_text.get(text)
        if guard is None:
            guard = self._by_text[text] = guard_of(text)
        return guard
