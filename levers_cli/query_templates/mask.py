"""Slot masking and tokens for lever 5 (materialize).

Masking replaces what varies inside a query template with typed slots: first what
:func:`levers_cli.redact.redact` finds — keys, tokens and secrets (``<secret>``), card numbers
(``<card>``), phone numbers (``<phone>``), e-mail addresses — so no template, skeleton or
label built from masked text ever holds one; then URLs, e-mail addresses, dates, times, ids
(UUIDs, tokens mixing letters and digits, ``#123``), quoted strings, numbers and capitalized
names (a run of Capitalized words, except a single word opening a sentence). Tokens are the
lower-cased words and punctuation of the masked text; a line break is one ``¶`` token.
"""

from __future__ import annotations

import re
from functools import lru_cache

from levers_cli.redact import redact

_SLOTS = (
    ("url", r"\bhttps?://[^\s<>\"')\]]+|\bwww\.[^\s<>\"')\]]+"),
    ("email", r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
    (
        "date",
        r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
        r"|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
        r"|\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.? \d{1,2}"
        r"(?:st|nd|rd|th)?(?:,? \d{4})?\b",
    ),
    ("time", r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\s?[ap]\.?m\.?)?\b"),
    (
        "id",
        r"\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b"
        r"|\b(?=[A-Za-z_-]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)+\b"
        r"|\b(?=[a-z]*\d)(?=\d*[a-zA-Z])[A-Za-z0-9]{6,}\b|#\d+\b",
    ),
    ("quote", r"\"[^\"\n]{1,200}\"|“[^”\n]{1,200}”|(?<!\w)'[^'\n]{1,200}'(?!\w)"),
    ("num", r"[-+]?\$?\d(?:[\d,]*\d)?(?:\.\d+)?%?"),
    ("name", r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)*\b"),
)
_MASK = re.compile("|".join(f"(?P<{kind}>{pattern})" for kind, pattern in _SLOTS))
#: redaction placeholder → slot (``levers_cli.redact.PLACEHOLDERS``)
_REDACTED = {
    "PRIVATE_KEY": "secret",
    "API_KEY": "secret",
    "SECRET": "secret",
    "CARD": "card",
    "EMAIL": "email",
    "PHONE": "phone",
    "IP": "num",
}
_PLACEHOLDER = re.compile(r"\[(" + "|".join(_REDACTED) + r")\]")
#: every slot kind :func:`mask` writes
SLOT_KINDS = ("secret", "card", "phone", *(kind for kind, _ in _SLOTS))
_SENTENCE_START = frozenset(".!?:\n\"“'(*#-")
_TOKEN = re.compile(r"<[a-z]+>|\w+|[^\w\s]")
NEWLINE = "¶"
STAR = "<*>"


def mask(text: str) -> str:
    """``text`` with its slots replaced by ``<secret>``, ``<card>``, ``<phone>``, ``<url>``,
    ``<email>``, ``<date>``, ``<time>``, ``<id>``, ``<quote>``, ``<num>`` and ``<name>``."""

    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup
        if kind == "name" and " " not in match.group(0):
            # the character before the word, spaces and tabs skipped (looking back from the
            # match, not stripping the whole text before it: a long line has many names)
            i = match.start() - 1
            while i >= 0 and text[i] in " \t":
                i -= 1
            if i < 0 or text[i] in _SENTENCE_START:
                return match.group(0)
        return f"<{kind}>"

    text = _PLACEHOLDER.sub(lambda m: f"<{_REDACTED[m.group(1)]}>", redact(text).text)
    return _MASK.sub(replace, text)


@lru_cache(maxsize=1 << 16)
def line_tokens(line: str) -> tuple[str, ...]:
    """Tokens of one line after :func:`mask` (cached: system prompts repeat)."""
    return tuple(_TOKEN.findall(mask(line).lower()))


def tokens(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens of ``text`` after :func:`mask`; a line break
    (or several) is one ``¶``. Lines are masked one at a time (no slot spans lines) and
    cached, so a system prompt resent with every call is masked once."""
    out: list[str] = []
    for line in text.split("\n"):
        found = line_tokens(line)
        if found:
            if out:
                out.append(NEWLINE)
            out.extend(found)
    return out


__all__ = ["NEWLINE", "SLOT_KINDS", "STAR", "line_tokens", "mask", "tokens"]
