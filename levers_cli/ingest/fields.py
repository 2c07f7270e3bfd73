"""Small, shared conversions used by every adapter: timestamps, token counts and provider
names (a message's plain text: :func:`levers_cli.text.content.content_text`).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from levers_cli.errors import RecordError

#: Epoch values above this are taken as milliseconds (year 5138 in seconds).
_EPOCH_MS_THRESHOLD = 1e11


def parse_ts(value: Any, *, field: str = "ts") -> datetime | None:
    """Parse a timestamp into an aware UTC ``datetime``.

    Accepts epoch seconds (int/float or a numeric string; values above 1e11 are taken as
    epoch milliseconds), ISO 8601 strings (``Z`` or offsets; naive ones are taken as UTC),
    and ``datetime`` objects. ``None``/empty gives ``None``.

    Raises:
        RecordError: the value is not a timestamp.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, bool):
        raise RecordError(f"not a timestamp: {value!r}", field=field)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise RecordError(f"not a timestamp: {text[:60]!r}", field=field) from None
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if isinstance(value, int | float):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise RecordError(f"not a timestamp: {value!r}", field=field)
        if abs(seconds) > _EPOCH_MS_THRESHOLD:
            seconds /= 1000.0
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise RecordError(f"timestamp out of range: {value!r}", field=field) from None
    raise RecordError(f"not a timestamp: {value!r}", field=field)


def token_count(value: Any, *, field: str) -> int | None:
    """Return a non-negative whole token count, ``None`` when absent.

    Raises:
        RecordError: the value is negative, fractional or not a number.
    """
    if type(value) is int and value >= 0:  # the common case, first (ingest speed)
        return value
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"not a token count: {value!r}", field=field)
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise RecordError(f"not a token count: {value[:40]!r}", field=field) from None
    if isinstance(value, float):
        if not value.is_integer():
            raise RecordError(f"not a whole token count: {value!r}", field=field)
        value = int(value)
    if not isinstance(value, int):
        raise RecordError(f"not a token count: {value!r}", field=field)
    if value < 0:
        raise RecordError(f"negative token count: {value}", field=field)
    return value


def optional_float(value: Any, *, field: str) -> float | None:
    """Return ``value`` as a float, ``None`` when absent.

    Raises:
        RecordError: the value is not a number.
    """
    if value is None or value == "":
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise RecordError(f"not a number: {value!r}", field=field) from None
    if not math.isfinite(result):
        raise RecordError(f"not a finite number: {value!r}", field=field)
    return result


_PROVIDER_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-", "openai"),
    ("chatgpt", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("text-davinci", "openai"),
    ("davinci", "openai"),
    ("ft:gpt", "openai"),
    ("claude", "anthropic"),
    ("gemini", "google"),
    ("mistral", "mistral"),
    ("command", "cohere"),
)


def provider_for_model(model: str | None) -> str | None:
    """Guess the provider from a model id (``gpt-4o`` → ``openai``); ``None`` when unknown.

    A ``provider/model`` id (LiteLLM style) names its provider before the slash.
    """
    if not model:
        return None
    name = model.strip().lower()
    if "/" in name:
        return name.split("/", 1)[0]
    for prefix, provider in _PROVIDER_PREFIXES:
        if name.startswith(prefix):
            return provider
    return None
