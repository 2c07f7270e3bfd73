"""What the request/response-pair formats (OpenAI, Anthropic) share: splitting a record
into request, response and the logger's own fields around them.
"""

from __future__ import annotations

from typing import Any

from levers_cli.errors import RecordError
from levers_cli.ingest.fields import optional_float, parse_ts
from levers_cli.ingest.formats.base import PartialCall, Record
from levers_cli.text.content import content_text

#: Top-level fields a logger commonly writes beside the request and response.
_TS_KEYS = ("ts", "timestamp", "created_at", "start_time", "request_time")
_LATENCY_KEYS = ("latency_ms", "duration_ms")
#: Request fields that are not generation settings (kept elsewhere or too large).
_NOT_SETTINGS = {"messages", "model", "metadata", "user", "system", "stream", "store"}


def pair_response(record: Record) -> dict[str, Any] | None:
    """The response object of a logged request/response pair, or ``None`` when ``record``
    is not one: no ``request`` and no ``messages`` beside a bare response, or a ``response``
    without a ``request`` (another logger's record, e.g. a LiteLLM payload)."""
    if "response" in record and "request" not in record:
        return None
    response = record.get("response", record)
    if not isinstance(response, dict):
        return None
    if "request" not in record and "messages" not in record:
        return None
    return response


def split_pair(record: Record) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Return ``(request, response, extras)`` of a logged pair.

    Accepts ``{"request": {...}, "response": {...}, ...}`` and a bare response object that
    carries the request's ``messages`` beside it. ``extras`` holds the remaining top-level
    fields (timestamps, latency, the logger's metadata).

    Raises:
        RecordError: the request or the response is not an object.
    """
    if "request" in record or "response" in record:
        request, response = record.get("request"), record.get("response")
        if not isinstance(request, dict):
            raise RecordError("missing or not an object", field="request")
        if not isinstance(response, dict):
            raise RecordError("missing or not an object", field="response")
        extras = {k: v for k, v in record.items() if k not in ("request", "response")}
        return request, response, extras
    request = {k: record[k] for k in ("messages", "system", "max_tokens") if k in record}
    return request, record, {}


def request_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's ``messages`` list.

    Raises:
        RecordError: absent, empty, or not a list of objects.
    """
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RecordError("missing or empty", field="request.messages")
    if not all(isinstance(m, dict) for m in messages):
        raise RecordError("not a list of {role, content} objects", field="request.messages")
    return messages


def system_text(messages: list[dict[str, Any]]) -> str | None:
    """The system and developer messages' text, joined by blank lines (``None`` if none)."""
    parts = [
        content_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")
    ]
    return "\n\n".join(parts) if parts else None


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """Text of the last ``user`` message ('' when there is none)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def fill_extras(partial: PartialCall, request: dict[str, Any], extras: dict[str, Any]) -> None:
    """Fill ts, latency and metadata from the logger's fields and the request, in place.

    ``metadata`` gets the request's own ``metadata`` keys, ``user``, the generation settings
    under ``params`` (temperature, max_tokens, … — part of an exact-cache key), and the
    logger's other top-level fields.
    """
    metadata: dict[str, Any] = {}
    if isinstance(request.get("metadata"), dict):
        metadata.update(request["metadata"])
    if request.get("user") is not None:
        metadata["user"] = request["user"]
    params = {k: v for k, v in request.items() if k not in _NOT_SETTINGS}
    if params:
        metadata["params"] = params
    for key, value in extras.items():
        if key in _TS_KEYS and partial.get("ts") is None:
            partial["ts"] = parse_ts(value, field=key)
        elif key in _LATENCY_KEYS:
            partial["latency_ms"] = optional_float(value, field=key)
        elif key == "metadata" and isinstance(value, dict):
            metadata.update(value)
        elif key not in _TS_KEYS:
            metadata[key] = value
    partial["metadata"] = metadata
