"""Anthropic Messages request/response pairs, the response whole or streamed.

Usage normalization (Anthropic API reference, Messages, ``usage``; prompt-caching guide):
``input_tokens`` counts only the tokens after the last cache breakpoint, so the total prompt
is ``input_tokens + cache_creation_input_tokens + cache_read_input_tokens`` — the three
buckets are additive (../shared/cases C02). ``output_tokens`` includes extended thinking;
``output_tokens_details.thinking_tokens`` (SDK type ``OutputTokensDetails``, "always ≤
output_tokens") is stored as ``reasoning_tokens`` when logged. ``service_tier: "batch"`` marks
a call made through the Message Batches API.

Streaming (https://docs.anthropic.com/en/docs/build-with-claude/streaming; SDK types
``RawMessageStreamEvent`` and ``MessageDeltaUsage`` in anthropics/anthropic-sdk-python
``src/anthropic/types/``): ``message_start`` carries the message with empty content and the
first usage; each content block is ``content_block_start`` + ``content_block_delta``
(``text_delta``, ``thinking_delta``, ``signature_delta``, ``input_json_delta``,
``citations_delta``) + ``content_block_stop``; ``message_delta`` carries ``stop_reason`` and
usage whose counts are *cumulative* — they replace the ``message_start`` ones (a server-tool
turn raises ``input_tokens`` there), never add to them; ``message_stop`` ends it, ``ping`` is
noise and an ``error`` event fails the call. A logged stream is read as the list of event
objects or as the raw SSE text, and reassembled into the message it streamed.
"""

from __future__ import annotations

import json
from typing import Any

from levers_cli.errors import RecordError
from levers_cli.ingest.fields import token_count
from levers_cli.ingest.formats.base import MappedAdapter, PartialCall, Record
from levers_cli.ingest.formats.pairs import (
    fill_extras,
    last_user_text,
    pair_response,
    request_messages,
    split_pair,
)
from levers_cli.text.content import content_text

#: Anthropic ``stop_reason`` → the OpenAI-style ``finish_reason`` levers stores.
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
}


class AnthropicAdapter(MappedAdapter):
    """``{"request": {...}, "response": {"type": "message", ...}}`` pairs; the response may
    also be a stream (a list of events or the SSE text)."""

    name = "anthropic"
    description = "Anthropic Messages request/response pairs (whole or streamed responses)"
    example = (
        '{"request": {"model": "claude-sonnet-4-5", "system": "...", "messages": [...]}, '
        '"response": {"type": "message", "content": [...], "usage": {"input_tokens": 12, ...}}}'
    )

    def sniff(self, record: Record) -> bool:
        """True for a pair whose response is a ``message`` (or error) with content blocks,
        or a ``message_start``… event stream."""
        if "request" in record and is_event_stream(record.get("response")):
            return True
        response = pair_response(record)
        if response is None:
            return False
        return response.get("type") in ("message", "error") and "choices" not in response

    def normalize(self, record: Record) -> PartialCall:
        """Normalize one pair.

        Raises:
            RecordError: no request messages, a usage field that is not a count, or a
                stream without ``message_start`` or with data that is not JSON.
        """
        streamed = is_event_stream(record.get("response"))
        complete = True
        if streamed:
            message, complete = reassemble_stream(record["response"])
            record = {**record, "response": message}
        request, response, extras = split_pair(record)
        messages = request_messages(request)
        system = request.get("system")
        system_text = content_text(system) if system else None
        full_messages = ([{"role": "system", "content": system}] if system else []) + messages
        partial: PartialCall = {
            "provider": "anthropic",
            "model": response.get("model") or request.get("model"),
            "call_id": response.get("id"),
            "messages": full_messages,
            "system_prompt": system_text,
            "query": last_user_text(messages),
            "max_tokens": token_count(request.get("max_tokens"), field="request.max_tokens"),
        }
        fill_extras(partial, request, extras)
        if streamed:
            partial["metadata"]["streamed"] = True
            if not complete:
                partial["metadata"]["stream_incomplete"] = True
        partial.update(message_fields(response, partial["metadata"]))
        return partial


def message_fields(response: dict[str, Any], metadata: dict[str, Any]) -> PartialCall:
    """The response-side columns of one Messages API response (or error response).

    Returns status and error for ``{"type": "error", ...}``; otherwise response text,
    finish_reason, status ``ok``, the token columns from ``usage`` (:func:`anthropic_usage`),
    the tier that served the call (``usage.service_tier``: ``standard``, ``priority``,
    ``batch``, which also sets ``is_batch``) and where it ran (``usage.inference_geo``).
    ``metadata`` is the call's metadata (kept for adapters that add to it).

    Raises:
        RecordError: a usage count is negative or not a number.
    """
    if response.get("type") == "error":
        error = response.get("error") or {}
        message = error.get("message") if isinstance(error, dict) else None
        return {"status": "error", "error": message or json.dumps(error)}
    stop = response.get("stop_reason")
    fields: PartialCall = {
        "response": reply_text(response.get("content") or []),
        "finish_reason": STOP_REASONS.get(stop or "", stop),
        "status": "ok",
    }
    usage = response.get("usage")
    if isinstance(usage, dict):
        fields.update(anthropic_usage(usage))
        for key in ("service_tier", "inference_geo"):
            if isinstance(usage.get(key), str) and usage[key]:
                fields[key] = usage[key]
        if usage.get("service_tier") == "batch":
            fields["is_batch"] = True
    return fields


def reply_text(blocks: Any) -> str:
    """The assistant text of Messages content blocks; tool calls serialized as JSON,
    thinking blocks left out (their tokens are in ``output_tokens``)."""
    if isinstance(blocks, str):
        return blocks
    parts: list[str] = []
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            parts.append(block.get("text", ""))
        elif block.get("type") in ("tool_use", "server_tool_use"):
            parts.append(json.dumps(block, ensure_ascii=False))
    return "\n".join(parts)


def anthropic_usage(usage: dict[str, Any]) -> PartialCall:
    """Normalize an Anthropic ``usage`` object into ``calls`` token columns.

    Returns input = input + cache write + cache read (all three buckets), cache read,
    cache write, output (thinking included), reasoning (``output_tokens_details.
    thinking_tokens`` when logged, else 0), the 1-hour part of the cache writes
    (``cache_creation.ephemeral_1h_input_tokens``, billed at 2× input rather than the
    5-minute 1.25×; ``cache_creation_input_tokens`` is the sum of both TTLs: prompt-caching
    guide, "Pricing") and the server tools used (``server_tool_use.web_search_requests``,
    ``web_fetch_requests``: only uses, never tools merely offered).

    Raises:
        RecordError: a count is negative or not a number, thinking exceeds output, or the
            TTL parts exceed the cache writes.
    """
    uncached = token_count(usage.get("input_tokens"), field="usage.input_tokens")
    write = token_count(
        usage.get("cache_creation_input_tokens"), field="usage.cache_creation_input_tokens"
    )
    read = token_count(usage.get("cache_read_input_tokens"), field="usage.cache_read_input_tokens")
    output = token_count(usage.get("output_tokens"), field="usage.output_tokens")
    details = usage.get("output_tokens_details") or {}
    thinking = token_count(
        details.get("thinking_tokens"), field="usage.output_tokens_details.thinking_tokens"
    )
    if thinking is not None and output is not None and thinking > output:
        raise RecordError(
            f"thinking_tokens {thinking} exceed output_tokens {output}",
            field="usage.output_tokens_details.thinking_tokens",
        )
    ttl = usage["cache_creation"] if isinstance(usage.get("cache_creation"), dict) else {}
    five = token_count(
        ttl.get("ephemeral_5m_input_tokens"),
        field="usage.cache_creation.ephemeral_5m_input_tokens",
    )
    one_hour = token_count(
        ttl.get("ephemeral_1h_input_tokens"),
        field="usage.cache_creation.ephemeral_1h_input_tokens",
    )
    if write is None and (five or one_hour):  # only the TTL parts logged
        write = (five or 0) + (one_hour or 0)
    if one_hour and one_hour > (write or 0):
        raise RecordError(
            f"ephemeral_1h_input_tokens {one_hour} exceed cache_creation_input_tokens {write}",
            field="usage.cache_creation.ephemeral_1h_input_tokens",
        )
    total = None if uncached is None else uncached + (write or 0) + (read or 0)
    fields: PartialCall = {
        "input_tokens": total,
        "cache_read_tokens": read or 0,
        "cache_write_tokens": write or 0,
        "output_tokens": output,
        "reasoning_tokens": thinking or 0,
        "cache_write_1h_tokens": one_hour or 0,
    }
    tools = server_tool_uses(usage.get("server_tool_use"))
    if tools:
        fields["server_tool_uses"] = tools
    return fields


#: ``usage.server_tool_use`` counters → ``calls.server_tool_uses`` keys.
_SERVER_TOOL_COUNTERS = {
    "web_search_requests": "web_search",
    "web_fetch_requests": "web_fetch",
}


def server_tool_uses(counters: Any) -> dict[str, int]:
    """``{tool: uses}`` of an Anthropic ``usage.server_tool_use`` object (SDK type
    ``ServerToolUsage``: ``web_search_requests``, ``web_fetch_requests``); zero counts left
    out.

    Raises:
        RecordError: a count is negative or not a number.
    """
    if not isinstance(counters, dict):
        return {}
    uses = {}
    for key, tool in _SERVER_TOOL_COUNTERS.items():
        n = token_count(counters.get(key), field=f"usage.server_tool_use.{key}")
        if n:
            uses[tool] = n
    return uses


def is_event_stream(value: Any) -> bool:
    """True when ``value`` is a logged Messages stream: SSE text or a list of events that
    starts with ``message_start``."""
    if isinstance(value, str):
        head = value.lstrip()[:4000]
        return head.startswith(("event:", "data:")) and "message_start" in head
    if isinstance(value, list) and value:
        first = _event_object(value[0]) if isinstance(value[0], dict | str) else {}
        return first.get("type") == "message_start"
    return False


def reassemble_stream(stream: str | list[Any]) -> tuple[dict[str, Any], bool]:
    """Rebuild the Messages response a stream delivered.

    Args:
        stream: the raw SSE text, or the list of event objects (each ``{"type": ...}`` or
            ``{"event": ..., "data": {...} | "json"}``).

    Returns:
        ``(message, complete)``: the message as a non-streamed call returns it (content
        blocks, ``stop_reason``, usage from ``message_start`` updated by ``message_delta``),
        or ``{"type": "error", "error": ...}`` for a stream that reported an error; and
        whether ``message_stop`` was seen.

    Raises:
        RecordError: no ``message_start`` event, or an event that is not JSON.
    """
    events = _sse_events(stream) if isinstance(stream, str) else [_event_object(e) for e in stream]
    message: dict[str, Any] | None = None
    usage: dict[str, Any] = {}
    blocks: dict[int, dict[str, Any]] = {}
    tool_json: dict[int, list[str]] = {}
    complete = False
    for event in events:
        kind = event.get("type")
        if kind == "error":
            return {"type": "error", "error": event.get("error") or {}}, True
        if kind == "message_start":
            message = dict(event.get("message") or {})
            usage = dict(message.get("usage") or {})
        elif message is None:
            continue
        elif kind == "content_block_start":
            index = _index(event, len(blocks))
            blocks[index] = dict(event.get("content_block") or {})
        elif kind == "content_block_delta":
            index = _index(event, max(blocks, default=0))
            _apply_delta(blocks, tool_json, index, event.get("delta") or {})
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            message.update({k: v for k, v in delta.items() if v is not None})
            usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
        elif kind == "message_stop":
            complete = True
    if message is None:
        raise RecordError("streamed response has no message_start event", field="response")
    for index, parts in tool_json.items():
        text = "".join(parts)
        if text:
            try:
                blocks[index]["input"] = json.loads(text)
            except json.JSONDecodeError:  # a cut-off stream: keep what arrived
                blocks[index]["input"] = text
    message["content"] = [blocks[i] for i in sorted(blocks)]
    message["usage"] = usage
    return message, complete


def _index(event: dict[str, Any], default: int) -> int:
    index = event.get("index")
    return index if isinstance(index, int) else default


def _apply_delta(
    blocks: dict[int, dict[str, Any]],
    tool_json: dict[int, list[str]],
    index: int,
    delta: dict[str, Any],
) -> None:
    block = blocks.setdefault(index, {"type": "text", "text": ""})
    kind = delta.get("type")
    if kind == "text_delta":
        block["text"] = block.get("text", "") + delta.get("text", "")
    elif kind == "thinking_delta":
        block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
    elif kind == "signature_delta":
        block["signature"] = block.get("signature", "") + delta.get("signature", "")
    elif kind == "input_json_delta":
        tool_json.setdefault(index, []).append(delta.get("partial_json", ""))
    elif kind == "citations_delta":
        block.setdefault("citations", []).append(delta.get("citation"))


def _event_object(item: Any) -> dict[str, Any]:
    """One logged stream event as its JSON object (``{"event", "data"}`` wrappers and JSON
    strings unwrapped)."""
    if isinstance(item, dict) and "type" not in item and "data" in item:
        item = item["data"]
    if isinstance(item, str):
        return _decode_data(item)
    if not isinstance(item, dict):
        raise RecordError(f"stream event is a {type(item).__name__}", field="response")
    return item


def _decode_data(data: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except json.JSONDecodeError:
        raise RecordError(
            f"stream event data is not JSON: {data[:60]!r}", field="response"
        ) from None
    if not isinstance(value, dict):
        raise RecordError("stream event data is not an object", field="response")
    return value


def _sse_events(text: str) -> list[dict[str, Any]]:
    """Events of an SSE body: ``data:`` lines joined per blank-line-separated event.

    Split on ``\\n`` only (``\\r`` stripped): U+2028 and friends inside JSON strings are
    text, not line breaks.
    """
    events: list[dict[str, Any]] = []
    data: list[str] = []
    for raw in [*text.split("\n"), ""]:
        line = raw.rstrip("\r")
        if not line.strip():
            if data and "".join(data).strip() != "[DONE]":
                events.append(_decode_data("\n".join(data)))
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    return events
