"""Prefix breakers for the caching lever: templates whose system prompt starts (or goes on)
with a volatile value — a timestamp, an id, a name — so no two calls share a cacheable prefix.

Found from the data, not from a list of known templates: the calls of one model whose system
prompts end alike but differ early form a template; where they first differ is the volatile
value (moved back to the start of the date, id or name that covers it), and what they share
after it is what caching would gain if the value moved to the end (OpenAI prompt caching
guide: static content first, variable content last).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from levers_cli.rules import ProviderRule
from levers_cli.text.tokens import count_text

#: A template group is the system prompts of one model that end in the same characters.
_SUFFIX_KEY_CHARS = 200
#: Volatile content that breaks a cached prefix, first match wins: (name, regex).
VOLATILE_PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "ISO-8601 timestamp",
        r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?",
    ),
    ("date", r"\d{4}-\d\d-\d\d|\d{1,2}/\d{1,2}/\d{2,4}|\d{1,2}\.\d{1,2}\.\d{4}"),
    ("time of day", r"\b\d{1,2}:\d\d(?::\d\d)?\b"),
    ("UUID", r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    ("email", r"\b[\w.+-]+@[\w-]+\.[\w.]+\b"),
    ("hex id", r"\b[0-9a-fA-F]{12,}\b"),
    ("number or id", r"\b[A-Za-z_-]*\d[\w-]*\b"),
    ("name", r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*\b"),
)


@dataclass
class Breaker:
    """A template whose cached prefix a volatile value breaks.

    Attributes:
        model: the model its calls use.
        members: indices of its calls.
        char_position: where the volatile text starts in the system prompt (characters).
        token_position: tokens of the system prompt before it.
        line: the system prompt's line it is on (1 = first).
        pattern: what it looks like (``ISO-8601 timestamp``, ``name``, …).
        regex: the regex that matched it (``None``: varying text of no known kind).
        example: the volatile text in the first call (up to 80 characters).
        stable_tokens: tokens of the system prompt after it, shared by every call.
        suffix_chars: characters of that shared tail (the end of the volatile span).
    """

    model: str | None
    members: list[int]
    char_position: int
    token_position: int
    line: int
    pattern: str
    regex: str | None
    example: str
    stable_tokens: int
    suffix_chars: int


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    for k in range(n):
        if a[k] != b[k]:
            return k
    return n


def find_breakers(
    first_system: list[str | None],
    models: list[str | None],
    rules: list[ProviderRule | None],
) -> list[Breaker]:
    """Templates whose system prompts differ early but share a cacheable tail.

    Calls of one model whose system prompt (the first message, when it is a system or
    developer message) ends in the same :data:`_SUFFIX_KEY_CHARS` characters form a template.
    When its distinct prompts differ at character ``p`` but share a tail of at least the
    provider's minimum cacheable tokens, the text from ``p`` on is volatile and breaks the
    prefix; ``p`` moves back to the start of the volatile value that covers it.

    Returns:
        the breakers, most calls first.
    """
    groups: dict[tuple[str | None, str], list[int]] = {}
    for i, (text, rule) in enumerate(zip(first_system, rules, strict=True)):
        if text and rule is not None and len(text) > _SUFFIX_KEY_CHARS:
            groups.setdefault((models[i], text[-_SUFFIX_KEY_CHARS:]), []).append(i)
    found: list[Breaker] = []
    for (model, _), members in groups.items():
        distinct = sorted({first_system[i] or "" for i in members})
        if len(distinct) < 2:
            continue
        lcp = _common_prefix(distinct[0], distinct[-1])
        rev = sorted(text[::-1] for text in distinct)
        lcs = min(_common_prefix(rev[0], rev[-1]), min(len(t) for t in distinct) - lcp)
        example_text = first_system[members[0]] or ""
        stable = count_text(example_text[len(example_text) - lcs :], model)
        rule = rules[members[0]]
        if rule is None or stable < rule.min_cacheable_tokens:
            continue
        position, pattern, regex = lcp, "varying text", None
        for name, candidate in VOLATILE_PATTERNS:
            hits = [m for m in re.finditer(candidate, example_text) if m.end() > lcp]
            if hits and hits[0].start() <= lcp:
                position, pattern, regex = hits[0].start(), name, candidate
                break
        end = max(position, len(example_text) - lcs)
        found.append(
            Breaker(
                model=model,
                members=members,
                char_position=position,
                token_position=count_text(example_text[:position], model),
                line=example_text[:position].count("\n") + 1,
                pattern=pattern,
                regex=regex,
                example=example_text[position:end][:80],
                stable_tokens=stable,
                suffix_chars=lcs,
            )
        )
    return sorted(found, key=lambda b: -len(b.members))


def move_volatile_last(text: str, start: int, suffix_chars: int) -> str:
    """``text`` with its paragraphs (split at blank lines) that overlap the volatile span
    ``[start, len(text) - suffix_chars)`` moved to the end, in order: the fix a breaker asks
    for (static content first, variable content last)."""
    end = max(start + 1, len(text) - suffix_chars)
    paragraphs = text.split("\n\n")
    keep: list[str] = []
    moved: list[str] = []
    offset = 0
    for paragraph in paragraphs:
        stop = offset + len(paragraph)
        (moved if offset < end and stop > start else keep).append(paragraph)
        offset = stop + 2
    return "\n\n".join(keep + moved)
