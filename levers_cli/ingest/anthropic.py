"""Anthropic Messages request/response pairs.

Usage normalization (Anthropic API reference, Messages, ``usage``; prompt-caching guide):
``input_tokens`` counts only the tokens after the last cache breakpoint, so the total prompt
is ``input_tokens + cache_creation_input_tokens + cache_read_input_tokens`` — the three
buckets are additive (../shared/cases C02). ``output_tokens`` includes extended thinking.
"""

from __future__ import annotations

import json
from typing import Any

from levers_cli.ingest.base import MappedAdapter, PartialCall, Record
from levers_cli.ingest.fields import content_text, token_count
from levers_cli.ingest.pairs import (
    fill_extras,
    last_user_text,
    pair_response,
    request_messages,
    split_pair,
)

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
    """``{"request": {...}, "response": {"type": "message", ...}}`` pairs."""

    name = "anthropic"
    description = "Anthropic Messages request/response pairs"
    example = (
        '{"request": {"model": "claude-sonnet-4-5", "system": "...", "messages": [...]}, '
        '"response": {"type": "message", "content": [...], "usage": {"input_tokens": 12, ...}}}'
    )

    def sniff(self, record: Record) -> bool:
        """True for a pair whose response is a ``message`` (or error) with content blocks."""
        response = pair_response(record)
        if response is None:
            return False
        return response.get("type") in ("message", "error") and "choices" not in response

    def normalize(self, record: Record) -> PartialCall:
        """Normalize one pair.

        Raises:
            RecordError: no request messages, or a usage field that is not a count.
        """
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
        if response.get("type") == "error":
            error = response.get("error") or {}
            partial["status"] = "error"
            partial["error"] = error.get("message") or json.dumps(error)
            return partial
        blocks = response.get("content") or []
        partial["response"] = _reply_text(blocks)
        stop = response.get("stop_reason")
        partial["finish_reason"] = STOP_REASONS.get(stop, stop)
        partial["status"] = "ok"
        usage = response.get("usage")
        if isinstance(usage, dict):
            partial.update(anthropic_usage(usage))
            five_m_h = usage.get("cache_creation") or {}
            one_hour = token_count(
                five_m_h.get("ephemeral_1h_input_tokens"),
                field="usage.cache_creation.ephemeral_1h_input_tokens",
            )
            if one_hour:
                partial["metadata"]["cache_write_1h_tokens"] = one_hour
        return partial


def _reply_text(blocks: Any) -> str:
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


def anthropic_usage(usage: dict[str, Any]) -> dict[str, int | None]:
    """Normalize an Anthropic ``usage`` object into ``calls`` token columns.

    Returns input = input + cache write + cache read (all three buckets), cache read,
    cache write, output (thinking included) and reasoning (not reported separately: 0).

    Raises:
        RecordError: a count is negative or not a number.
    """
    uncached = token_count(usage.get("input_tokens"), field="usage.input_tokens")
    write = token_count(
        usage.get("cache_creation_input_tokens"), field="usage.cache_creation_input_tokens"
    )
    read = token_count(usage.get("cache_read_input_tokens"), field="usage.cache_read_input_tokens")
    output = token_count(usage.get("output_tokens"), field="usage.output_tokens")
    total = None if uncached is None else uncached + (write or 0) + (read or 0)
    return {
        "input_tokens": total,
        "cache_read_tokens": read or 0,
        "cache_write_tokens": write or 0,
        "output_tokens": output,
        "reasoning_tokens": 0,
    }
