"""OpenAI Chat Completions request/response pairs.

Usage normalization (OpenAI API reference, "The chat completion object", ``usage``):
``prompt_tokens`` already includes ``prompt_tokens_details.cached_tokens``, and
``completion_tokens`` already includes ``completion_tokens_details.reasoning_tokens``; both
are subsets, never added on top (../shared/cases C01, C03).
"""

from __future__ import annotations

import json
from typing import Any

from levers_cli.errors import RecordError
from levers_cli.ingest.base import MappedAdapter, PartialCall, Record
from levers_cli.ingest.fields import content_text, parse_ts, token_count
from levers_cli.ingest.pairs import (
    fill_extras,
    last_user_text,
    pair_response,
    request_messages,
    split_pair,
)


class OpenAIChatAdapter(MappedAdapter):
    """``{"request": {...}, "response": {...}}`` or a response with ``messages`` beside it."""

    name = "openai-chat"
    description = "OpenAI Chat Completions request/response pairs"
    example = (
        '{"request": {"model": "gpt-4o", "messages": [...]}, "response": {"id": "chatcmpl-…", '
        '"choices": [...], "usage": {"prompt_tokens": 12, "completion_tokens": 5}}}'
    )

    def sniff(self, record: Record) -> bool:
        """True for a pair whose response has ``choices`` or is a ``chat.completion``."""
        response = pair_response(record)
        if response is None:
            return False
        if "error" in response and "type" not in response:  # a failed call: {"error": {...}}
            return isinstance(response["error"], dict)
        return "choices" in response or response.get("object") == "chat.completion"

    def normalize(self, record: Record) -> PartialCall:
        """Normalize one pair.

        Raises:
            RecordError: no request messages, or a usage field that is not a count.
        """
        request, response, extras = split_pair(record)
        messages = request_messages(request)
        system = [
            content_text(m.get("content"))
            for m in messages
            if m.get("role") in ("system", "developer")
        ]
        partial: PartialCall = {
            "provider": "openai",
            "model": response.get("model") or request.get("model"),
            "call_id": response.get("id"),
            "ts": parse_ts(response.get("created"), field="response.created"),
            "messages": messages,
            "system_prompt": "\n\n".join(system) if system else None,
            "query": last_user_text(messages),
            "max_tokens": token_count(
                request.get("max_completion_tokens", request.get("max_tokens")),
                field="request.max_tokens",
            ),
        }
        fill_extras(partial, request, extras)
        if isinstance(response.get("error"), dict) and not response.get("choices"):
            partial["status"] = "error"
            partial["error"] = response["error"].get("message") or json.dumps(response["error"])
            return partial
        choices = response.get("choices") or []
        first = choices[0] if choices and isinstance(choices[0], dict) else {}
        message = first.get("message") or {}
        partial["response"] = _reply_text(message)
        partial["finish_reason"] = first.get("finish_reason")
        partial["status"] = "ok"
        usage = response.get("usage")
        if isinstance(usage, dict):
            partial.update(openai_usage(usage))
        return partial


def _reply_text(message: dict[str, Any]) -> str:
    text = content_text(message.get("content")) or message.get("refusal") or ""
    calls = message.get("tool_calls")
    if calls:
        text = (text + "\n" if text else "") + json.dumps(calls, ensure_ascii=False)
    return text


def openai_usage(usage: dict[str, Any]) -> dict[str, int | None]:
    """Normalize an OpenAI Chat Completions ``usage`` object into ``calls`` token columns.

    Returns input (cached included), cache read, cache write (always 0: OpenAI charges no
    write premium), output (reasoning included) and reasoning tokens.

    Raises:
        RecordError: a count is negative or not a number, or cached > prompt tokens.
    """
    prompt = token_count(usage.get("prompt_tokens"), field="usage.prompt_tokens")
    completion = token_count(usage.get("completion_tokens"), field="usage.completion_tokens")
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    cached = token_count(
        prompt_details.get("cached_tokens"), field="usage.prompt_tokens_details.cached_tokens"
    )
    reasoning = token_count(
        completion_details.get("reasoning_tokens"),
        field="usage.completion_tokens_details.reasoning_tokens",
    )
    if prompt is not None and cached is not None and cached > prompt:
        raise RecordError(
            f"cached_tokens {cached} exceed prompt_tokens {prompt}",
            field="usage.prompt_tokens_details.cached_tokens",
        )
    if completion is not None and reasoning is not None and reasoning > completion:
        raise RecordError(
            f"reasoning_tokens {reasoning} exceed completion_tokens {completion}",
            field="usage.completion_tokens_details.reasoning_tokens",
        )
    return {
        "input_tokens": prompt,
        "cache_read_tokens": cached or 0,
        "cache_write_tokens": 0,
        "output_tokens": completion,
        "reasoning_tokens": reasoning or 0,
    }
