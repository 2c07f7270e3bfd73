"""Redaction: each placeholder type on hand-written strings, and look-alikes left alone."""

from __future__ import annotations

import pytest

from levers_cli.redact import Redacted, redact, redact_many

# Visa test number 4111 1111 1111 1111: Luhn sum = 30 (the doubled 4 and 1s give 8+2·7 = 22,
# the undoubled 1s give 8) → 30 % 10 == 0, valid. Changing the last digit to 2 makes it 31.
CARD_OK = "4111 1111 1111 1111"
CARD_BAD = "4111 1111 1111 1112"


@pytest.mark.parametrize(
    ("text", "expected", "counts"),
    [
        ("write to ana.silva@tidewater.org today", "write to [EMAIL] today", {"EMAIL": 1}),
        ("call +44 20 7946 0958 now", "call [PHONE] now", {"PHONE": 1}),
        ("call (415) 555-0132 or 415-555-0132", "call [PHONE] or [PHONE]", {"PHONE": 2}),
        ("office 020 7946 0958.", "office [PHONE].", {"PHONE": 1}),
        # libphonenumber: an extension belongs to the number (the old regexes left
        # "415-555-0132x12" whole), a German and a French national number are valid in their
        # plans (Bundesnetzagentur 030 Berlin; ARCEP 01 Île-de-France)
        ("call 415-555-0132x12", "call [PHONE]", {"PHONE": 1}),
        ("call +1 (415) 555-0132 ext. 204 today", "call [PHONE] today", {"PHONE": 1}),
        ("ruf 030 901820 an, oder 01 42 68 53 00", "ruf [PHONE] an, oder [PHONE]", {"PHONE": 2}),
        (f"card {CARD_OK} ok", "card [CARD] ok", {"CARD": 1}),
        ("amex 378282246310005", "amex [CARD]", {"CARD": 1}),
        ("key sk-proj-abcDEF1234567890abcdef123456", "key [API_KEY]", {"API_KEY": 1}),
        ("sk-ant-api03-AbCdEf0123456789AbCdEf0123-xyz", "[API_KEY]", {"API_KEY": 1}),
        ("id AKIAIOSFODNN7EXAMPLE end", "id [API_KEY] end", {"API_KEY": 1}),
        ("tok ghp_" + "a1" * 18, "tok [API_KEY]", {"API_KEY": 1}),
        ("slack xoxb-1234567890-abcdefghij", "slack [API_KEY]", {"API_KEY": 1}),
        (
            "Authorization: Bearer abc123DEF456ghi789jkl",
            "Authorization: Bearer [API_KEY]",
            {"API_KEY": 1},
        ),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9P",
            "jwt [API_KEY]",
            {"API_KEY": 1},
        ),
        ('password = "hunter2hunter"', 'password = "[SECRET]"', {"SECRET": 1}),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----",
            "[PRIVATE_KEY]",
            {"PRIVATE_KEY": 1},
        ),
    ],
)
def test_each_type_is_replaced_and_counted(text: str, expected: str, counts: dict) -> None:
    result = redact(text)
    assert result == Redacted(expected, counts)
    assert redact(result.text).text == result.text  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        CARD_BAD,  # fails Luhn
        "2026-10-01 12:30:45",  # a timestamp
        "sizes 128 256 512 1024",  # numbers in code, NANP-shaped but space-separated
        "invoice INV-20931 for 12 seats",
        "python 3.11.4 and 10.0.0.1",  # IPs only with ip=True
        "aws_secret_access_key=testing",  # too short and no digit: a placeholder, not a secret
        "the task-1234567890abcdefghijkl id",  # "sk-" inside a word
        # digit groups no numbering plan allows: no country code 10 (ITU-T E.164 list), and
        # 00 is the international prefix, not a trunk 0; the old regexes took all three
        "scores +10 20 30 40",
        "ids 0042 1337 9001",
        "pin 0000 0000 00",
    ],
)
def test_look_alikes_stay(text: str) -> None:
    assert redact(text) == Redacted(text, {})


def test_ip_is_optional() -> None:
    assert redact("host 10.0.0.1", ip=True) == Redacted("host [IP]", {"IP": 1})


def test_redact_many_sums_counts() -> None:
    texts, counts = redact_many(["a@b.io and c@d.io", "none", f"pay {CARD_OK}"])
    assert texts == ["[EMAIL] and [EMAIL]", "none", "pay [CARD]"]
    assert counts == {"EMAIL": 2, "CARD": 1}
    assert redact("x@y.co z@w.co").total == 2


def test_categories_never_show_a_secret(ws, tmp_path):
    """Twelve queries of one kind, each with an address and a key pasted in: the category's
    label, keywords and exemplars (shown by analyze, the report and the router) hold the
    placeholders, never an address, a key or a fragment of one ("doe", "example")."""
    import json

    from levers_cli.analysis import analyze
    from tests.helpers import FakeEmbedder, openai_pair

    key = "sk-proj-abcdefghijklmnopqrstuvwx"
    rows = [
        openai_pair(
            f"c{i}", "gpt-4o-mini",
            [{"role": "user", "content": f"ticket {i}: john.doe@example.com says {key} fails"}],
            "ok", 1_767_225_600 + 60 * i, 30, 2,
        )
        for i in range(12)
    ]  # fmt: skip
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    analyze(ws, [str(path)], embedder=FakeEmbedder())
    shown = json.dumps(
        ws.con.execute("SELECT label, keywords, exemplars FROM categories").fetchall()
    )
    assert "[EMAIL]" in shown and "[API_KEY]" in shown
    for fragment in ("john", "doe", "example.com", "sk-proj", "abcdefghijklmnop"):
        assert fragment not in shown
