"""Redaction: replace personal data and secrets by typed placeholders before text leaves
the workspace (reports, datasets, exports).

``redact("mail me at ana@x.io")`` → ``Redacted(text="mail me at [EMAIL]", counts={"EMAIL": 1})``.

Placeholders and what they stand for, in the order they are applied (secrets first, because
a key can contain digit runs that would otherwise look like a card or phone number):

- ``[PRIVATE_KEY]``: PEM blocks ``-----BEGIN … PRIVATE KEY----- … -----END … PRIVATE KEY-----``.
- ``[API_KEY]``: OpenAI / Anthropic ``sk-…`` (incl. ``sk-proj-``, ``sk-ant-api03-``), AWS
  access key ids ``AKIA…``/``ASIA…`` (20 chars), GitHub ``ghp_``/``gho_``/``ghu_``/``ghs_``/
  ``ghr_``/``github_pat_``, Slack ``xoxb-``/``xoxp-``/…, Google ``AIza…``, Stripe
  ``sk_live_``/``rk_live_``, JWTs (``eyJ….eyJ….…``) and the token after ``Bearer``/``Basic``.
- ``[SECRET]``: the value in ``password=…``, ``api_key: "…"``, ``secret_access_key = …``
  assignments (the keyword stays, the value goes; values of 8+ characters that mix letters and
  digits, or are 16+ long).
- ``[CARD]``: 13–19 digits, optionally grouped by spaces or dashes, passing the Luhn check.
- ``[EMAIL]``: ``local@domain.tld``.
- ``[PHONE]``: ``+CC …`` international numbers (8–15 digits, E.164's maximum); North-American
  ``(415) 555-0132``, ``415-555-0132``, ``415.555.0132`` (NANP ``NXX-NXX-XXXX``; space-only
  ``415 555 0132`` is left alone, it is too often a run of numbers in code); trunk-prefixed
  national numbers such as ``020 7946 0958`` (9–12 digits).
- ``[IP]``: IPv4 addresses, only with ``ip=True`` (version strings look alike).

Why own regexes rather than a library: the candidates do not fit an offline, shared install.
Presidio needs a spaCy language model download to run at all; scrubadub pulls in its own NLP
stack and detectors we would switch off; detect-secrets is built to scan source files line by
line with entropy heuristics that flag ordinary prose. None is installed in the project's
environment. The formats matched here are the vendors' documented token shapes:
GitHub "Behind GitHub's new authentication token formats" (github.blog, 2021-04-05: prefix +
``_`` + 36 base62 chars), AWS IAM "Unique identifier prefixes" (``AKIA`` access keys, ``ASIA``
temporary keys; 20 upper-case alphanumerics, also the pattern of detect-secrets'
``plugins/aws.py``), Slack "Token types" (``xoxb-``, ``xoxp-``, ``xoxa-``, ``xoxr-``), RFC 7519
(JWT: three base64url segments, header JSON ⇒ ``eyJ``), RFC 6750 (Bearer tokens), the Luhn
check (ISO/IEC 7812-1) as Presidio's ``CreditCardRecognizer`` applies it, and ITU-T E.164
(at most 15 digits). Google's libphonenumber (``phonenumbers``) would parse phone numbers more
completely; it is not installed, so phone detection sticks to the unambiguous shapes above.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PLACEHOLDERS", "Redacted", "redact", "redact_many", "redact_value"]

PLACEHOLDERS = ("PRIVATE_KEY", "API_KEY", "SECRET", "CARD", "EMAIL", "PHONE", "IP")


@dataclass(frozen=True)
class Redacted:
    """A redacted text and how many spans of each type it replaced.

    Attributes:
        text: the text with every match replaced by ``[TYPE]``.
        counts: placeholder type (``"EMAIL"``, ``"API_KEY"``, …) → number replaced; types
            with no match are absent.
    """

    text: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Number of spans replaced, all types together."""
        return sum(self.counts.values())


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _luhn_ok(match: re.Match[str]) -> bool:
    digits = _digits(match.group(0))
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _digit_count(low: int, high: int) -> Callable[[re.Match[str]], bool]:
    def check(match: re.Match[str]) -> bool:
        return low <= len(_digits(match.group(0))) <= high

    return check


def _secret_value(match: re.Match[str]) -> bool:
    value = match.group("value")
    return len(value) >= 16 or (any(c.isdigit() for c in value) and any(c.isalpha() for c in value))


_TOKEN = r"[A-Za-z0-9\-._~+/]"
# (type, pattern, validator or None, group to replace: 0 = whole match, or a group name)
_RULES: list[tuple[str, re.Pattern[str], Callable[[re.Match[str]], bool] | None, int | str]] = [
    (
        "PRIVATE_KEY",
        re.compile(
            r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----.*?-----END (?:[A-Z]+ )*PRIVATE KEY-----",
            re.DOTALL,
        ),
        None,
        0,
    ),
    (
        "API_KEY",
        re.compile(r"\b(?:Bearer|Basic)\s+(?P<value>" + _TOKEN + r"{16,}=*)", re.IGNORECASE),
        None,
        "value",
    ),
    ("API_KEY", re.compile(r"\beyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}"), None, 0),
    ("API_KEY", re.compile(r"(?<![\w-])sk-[A-Za-z0-9_-]{20,}"), None, 0),
    ("API_KEY", re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"), None, 0),
    ("API_KEY", re.compile(r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"), None, 0),
    ("API_KEY", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{22,})"), None, 0),
    ("API_KEY", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), None, 0),
    ("API_KEY", re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), None, 0),
    (
        "SECRET",
        re.compile(
            r"(?i)\b[\w-]*(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token"
            r"|client[_-]?secret)[\w-]*[\"']?\s*[:=]\s*[\"']?(?P<value>[A-Za-z0-9+/=_.!@#$%^&*-]{8,})"
        ),
        _secret_value,
        "value",
    ),
    ("CARD", re.compile(r"(?<![\d.-])\d(?:[ -]?\d){12,18}(?![\d-])"), _luhn_ok, 0),
    (
        "EMAIL",
        re.compile(
            r"\b[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
        ),
        None,
        0,
    ),
    (
        "PHONE",
        re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){1,6}(?![\w-])"),
        _digit_count(8, 15),
        0,
    ),
    (
        "PHONE",
        re.compile(
            r"(?<![\w.+-])(?:1[ .-]?)?(?:\([2-9]\d\d\)\s?[2-9]\d\d[ .-]"
            r"|[2-9]\d\d(?P<sep>[.-])[2-9]\d\d(?P=sep))\d{4}(?![\w-])"
        ),
        None,
        0,
    ),
    (
        "PHONE",
        re.compile(r"(?<![\w.+-])0\d{1,4}(?:[ /-]\d{2,8}){1,4}(?![\w-]|\.\d)"),
        _digit_count(9, 12),
        0,
    ),
    (
        "IP",
        re.compile(
            r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"
        ),
        None,
        0,
    ),
]


#: Text without any of these cannot match a rule above (each rule needs digits, an ``@``, a
#: key prefix or a secret's keyword), so it skips the rules: most log text has none.
_HINT = re.compile(
    r"\d[ -]?\d|@|sk-|[sr]k_|AKIA|ASIA|ABIA|ACCA|A3T|gh[pousr]_|github_pat|xox|AIza|eyJ"
    r"|bearer|basic|passw|pwd|secret|key|token",
    re.IGNORECASE,
)


def redact(text: str, *, ip: bool = False) -> Redacted:
    """Replace emails, phone numbers, card numbers, keys and secrets by ``[TYPE]``.

    Args:
        text: any text (a query, a response, a system prompt); ``None``-free.
        ip: also replace IPv4 addresses by ``[IP]`` (off by default: ``1.2.3.4``-style version
            numbers look the same).

    Returns:
        The redacted text and the count per placeholder type. Idempotent: redacting the
        output again changes nothing.
    """
    if not ip and not _HINT.search(text):
        return Redacted(text=text, counts={})
    counts: Counter[str] = Counter()
    for kind, pattern, valid, group in _RULES:
        if kind == "IP" and not ip:
            continue

        def swap(
            match: re.Match[str],
            kind: str = kind,
            valid: Callable[[re.Match[str]], bool] | None = valid,
            group: int | str = group,
        ) -> str:
            if valid is not None and not valid(match):
                return match.group(0)
            counts[kind] += 1
            if group == 0:
                return f"[{kind}]"
            start, end = match.span(group)
            whole_start = match.start()
            whole = match.group(0)
            return whole[: start - whole_start] + f"[{kind}]" + whole[end - whole_start :]

        text = pattern.sub(swap, text)
    return Redacted(text=text, counts=dict(counts))


def redact_many(texts: Iterable[str], *, ip: bool = False) -> tuple[list[str], Counter[str]]:
    """Redact each text; return them in order with the counts summed over all of them.

    Args:
        texts: texts to redact.
        ip: as in :func:`redact`.

    Returns:
        ``(redacted_texts, counts)``: a list as long as ``texts``, and placeholder type →
        spans replaced in total.
    """
    counts: Counter[str] = Counter()
    out: list[str] = []
    for text in texts:
        done = redact(text, ip=ip)
        out.append(done.text)
        counts.update(done.counts)
    return out, counts


def redact_value(value: Any, counts: Counter[str], *, ip: bool = False) -> Any:
    """Redact every string inside a JSON-like value (dicts, lists, strings); keys stay.

    Args:
        value: a decoded JSON value (a message list, a request body …).
        counts: updated in place with the spans replaced.
        ip: as in :func:`redact`.

    Returns:
        A copy of ``value`` with each string redacted; other scalars unchanged.
    """
    if isinstance(value, str):
        done = redact(value, ip=ip)
        counts.update(done.counts)
        return done.text
    if isinstance(value, dict):
        return {key: redact_value(item, counts, ip=ip) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_value(item, counts, ip=ip) for item in value]
    return value
