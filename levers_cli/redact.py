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
- ``[PHONE]``: phone numbers as Google's libphonenumber (``phonenumbers``) finds and validates
  them: international ``+CC …`` numbers of any country and North-American ones (``(415)
  555-0132``, ``415-555-0132``, ``415.555.0132``, ``1-800-356-9377``), each with its
  extension (``x12``, ``ext. 204``), valid in their numbering plan (``PhoneNumberMatcher``,
  ``Leniency.VALID``; space-only ``415 555 0132`` is left alone, it is too often a run of
  numbers in code); and trunk-prefixed national numbers such as ``020 7946 0958`` (9–12
  digits, valid in one of :data:`TRUNK_ZERO_REGIONS`).
- ``[IP]``: IPv4 addresses, only with ``ip=True`` (version strings look alike).

Phone numbers: phonenumbers (libphonenumber's Python port) replaced our own three regexes
(issue 15). Measured on the existing tests (unchanged, all pass) and on realistic text, the
same run on one machine: 9,028 Bitext support instructions and responses 2.22 s → 2.14 s,
22,720 strings of the shipped sample logs 10.3 s → 11.1 s (the matcher runs only on text with
a 7-digit run), identical output on both; whole JSON records, numbers everywhere, 17.6 s →
33.3 s. What changed: an extension is part of the number (``415-555-0132x12`` was left whole),
and numbers no plan allows stay (``+10 20 30 40``, ``0042 1337 9001``). The matcher run for
six countries' national numbers (US, GB, FR, DE, IN, AU) found 1,824 "numbers" in those JSON
records, ids and timestamps valid somewhere, against 2 real ones: national numbers outside
North America are checked only in the trunk-0 shape.

Why own regexes for the rest rather than a library: the candidates do not fit an offline,
shared install. Presidio needs a spaCy language model download to run at all; scrubadub pulls
in its own NLP stack and detectors we would switch off; detect-secrets is built to scan source
files line by line with entropy heuristics that flag ordinary prose. The formats matched here
are the vendors' documented token shapes:
GitHub "Behind GitHub's new authentication token formats" (github.blog, 2021-04-05: prefix +
``_`` + 36 base62 chars), AWS IAM "Unique identifier prefixes" (``AKIA`` access keys, ``ASIA``
temporary keys; 20 upper-case alphanumerics, also the pattern of detect-secrets'
``plugins/aws.py``), Slack "Token types" (``xoxb-``, ``xoxp-``, ``xoxa-``, ``xoxr-``), RFC 7519
(JWT: three base64url segments, header JSON ⇒ ``eyJ``), RFC 6750 (Bearer tokens), and the Luhn
check (ISO/IEC 7812-1) as Presidio's ``CreditCardRecognizer`` applies it.
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


def _secret_value(match: re.Match[str]) -> bool:
    value = match.group("value")
    return len(value) >= 16 or (any(c.isdigit() for c in value) and any(c.isalpha() for c in value))


_TOKEN = r"[A-Za-z0-9\-._~+/]"
# (type, pattern, validator or None, group to replace: 0 = whole match, or a group name),
# in the order applied; phone numbers (``_replace_phones``) and IPv4 addresses come after
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
]
#: IPv4 addresses, replaced only with ``ip=True``.
_IP_RULE: tuple[str, re.Pattern[str], None, int] = (
    "IP",
    re.compile(
        r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"
    ),
    None,
    0,
)

#: phonenumbers' matcher runs only on text with a run of 7 digits (each next one at most two
#: of `` ().-/`` away): NANP numbers have 10, the trunk-0 candidates below 9–12, and an
#: international number shorter than 7 digits with its country code is left alone.
_PHONE_HINT = re.compile(r"\d(?:[ ().\-/]{0,2}\d){6}")
#: The region whose national numbers are found without ``+``: the North American Numbering
#: Plan (``(415) 555-0132``; every NANP country, as libphonenumber validates by number).
_NATIONAL_REGION = "US"
#: National numbers written with the trunk prefix 0 (``020 7946 0958``): a candidate is a
#: phone number when it is valid in one of these numbering plans (the largest countries that
#: dial a leading 0 within the country; libphonenumber's metadata).
TRUNK_ZERO_REGIONS = (
    "GB", "IE", "DE", "AT", "CH", "FR", "BE", "NL", "IT", "SE", "FI", "AU", "NZ", "IN", "ZA",
    "JP", "CN", "TR",
)  # fmt: skip
#: Candidate national numbers with a trunk 0: 9–12 digits in groups.
_TRUNK_CANDIDATE = re.compile(r"(?<![\w.+-])0\d{1,4}(?:[ /-]\d{2,8}){1,4}(?![\w-]|\.\d)")
#: A national number written with spaces only (``415 555 0132``): left alone, as runs of
#: numbers in code and tables look the same (``512 768 1024``).
_SPACES_ONLY = re.compile(r"[\d ]+")


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
    for rule in _RULES:
        text = _apply(rule, text, counts)
    text = _replace_phones(text, counts)
    if ip:
        text = _apply(_IP_RULE, text, counts)
    return Redacted(text=text, counts=dict(counts))


def _apply(
    rule: tuple[str, re.Pattern[str], Callable[[re.Match[str]], bool] | None, int | str],
    text: str,
    counts: Counter[str],
) -> str:
    """``text`` with each valid match of ``rule`` (the whole match or its group) replaced by
    ``[TYPE]``, counted in ``counts``."""
    kind, pattern, valid, group = rule

    def swap(match: re.Match[str]) -> str:
        if valid is not None and not valid(match):
            return match.group(0)
        counts[kind] += 1
        if group == 0:
            return f"[{kind}]"
        start, end = match.span(group)
        whole_start = match.start()
        whole = match.group(0)
        return whole[: start - whole_start] + f"[{kind}]" + whole[end - whole_start :]

    return pattern.sub(swap, text)


def _replace_phones(text: str, counts: Counter[str]) -> str:
    """``text`` with its phone numbers replaced by ``[PHONE]`` (counted in ``counts``):
    phonenumbers' ``PhoneNumberMatcher`` at ``Leniency.VALID`` for international numbers
    (``+CC …``, any country) and NANP ones, less national numbers written with spaces only;
    then trunk-0 national candidates valid in one of :data:`TRUNK_ZERO_REGIONS`."""
    if not _PHONE_HINT.search(text):
        return text
    import phonenumbers

    spans = [
        (m.start, m.end)
        for m in phonenumbers.PhoneNumberMatcher(
            text, _NATIONAL_REGION, leniency=phonenumbers.Leniency.VALID
        )
        if m.raw_string.startswith("+") or not _SPACES_ONLY.fullmatch(m.raw_string)
    ]
    for match in _TRUNK_CANDIDATE.finditer(text):
        start, end = match.span()
        if any(s < end and start < e for s, e in spans):
            continue
        if 9 <= len(_digits(match.group(0))) <= 12 and _valid_somewhere(match.group(0)):
            spans.append((start, end))
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + "[PHONE]" + text[end:]
    if spans:
        counts["PHONE"] += len(spans)
    return text


def _valid_somewhere(number: str) -> bool:
    """Whether ``number`` (national, trunk 0) is a valid number of one of
    :data:`TRUNK_ZERO_REGIONS` (libphonenumber's metadata)."""
    import phonenumbers

    for region in TRUNK_ZERO_REGIONS:
        try:
            parsed = phonenumbers.parse(number, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return True
    return False


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
