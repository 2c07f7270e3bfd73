"""Requests logged before they were sent, with no response: an OpenAI Chat Completions or
Responses request body, an Anthropic Messages request or a Gemini ``generateContent``
request, bare or as ``{"request": {...}}`` without a response.

Such a record is a call whose answer was never logged (the logger writes before sending, or
the response was lost). It is read with the request's own fields (model, messages, system
prompt, output cap, settings), with status ``no_response``: its input tokens are estimated
with tiktoken from the messages *and the tool definitions the request sends* (billed input
too; on the 26 requests of simonw/llm's cassettes the estimate reaches 82 % of the providers'
counted prompt tokens, 28 % without the tools), and it has no output, so no output cost.
Request shapes: the OpenAI API reference (Create chat completion, Create a model response:
``model``, ``messages`` | ``input``, ``instructions``, ``max_completion_tokens`` /
``max_output_tokens``), the Anthropic Messages API (``system`` beside ``messages``,
``max_tokens``) and the Gemini API (``contents``, ``systemInstruction``).
"""

from __future__ import annotations

import json
from typing import Any

from levers_cli.errors import RecordError
from levers_cli.ingest.fields import token_count
from levers_cli.ingest.formats.base import MappedAdapter, PartialCall, Record
from levers_cli.ingest.formats.gemini import gemini_call
from levers_cli.ingest.formats.openai_responses import input_messages
from levers_cli.ingest.formats.pairs import (
    fill_extras,
    last_user_text,
    request_messages,
    system_text,
)
from levers_cli.schema import STATUS_NO_RESPONSE
from levers_cli.text.content import content_text

#: Keys of a response or of a logged result: a record with one of them is not request-only.
_ANSWER_KEYS = (
    "response",
    "choices",
    "output",
    "usage",
    "object",
    "candidates",
    "error",
    "completion",
    "content",
    "usageMetadata",
)
#: Generation settings: a message list beside one of them is a request, even one ending with
#: an assistant turn (an Anthropic prefill), not a conversation dataset.
_SETTING_KEYS = (
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "stop_sequences",
    "stream",
    "tools",
)
#: Request keys that are content, not settings.
_CONTENT_KEYS = ("messages", "input", "instructions", "system", "contents", "model")


class RequestOnlyAdapter(MappedAdapter):
    """A request body with no response: ``{"model", "messages"}``, ``{"model", "input"}``,
    ``{"contents"}``, or ``{"request": {...}}`` with no (or a null) ``response``."""

    name = "request-only"
    description = (
        "Requests logged before sending, no response (OpenAI Chat/Responses, Anthropic, "
        "Gemini): input tokens estimated, status no_response"
    )
    example = (
        '{"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "…"}, '
        '{"role": "user", "content": "…"}], "max_tokens": 256}'
    )

    def sniff(self, record: Record) -> bool:
        """True for a request body (bare, or under ``request`` with no response)."""
        if "request" in record:
            return record.get("response") is None and is_request(record["request"], bare=False)
        return is_request(record, bare=True)

    def normalize(self, record: Record) -> PartialCall:
        """Normalize one request.

        Raises:
            RecordError: the request is not an object, or its messages, ``input`` or
                ``contents`` are malformed.
        """
        if "request" in record:
            request = record["request"]
            if not isinstance(request, dict):
                raise RecordError("not an object", field="request")
            extras = {k: v for k, v in record.items() if k not in ("request", "response")}
        else:
            request, extras = record, {}
        return request_call(request, extras)


def is_request(value: Any, *, bare: bool) -> bool:
    """True for a request body: chat ``messages`` whose last message is not the
    assistant's (else it is a conversation, not a request) unless generation settings sit
    beside them (a prefill), a Responses ``input``, or Gemini ``contents``. A bare body must
    name its ``model`` (Gemini's is in the URL) and hold no response field."""
    if not isinstance(value, dict):
        return False
    if bare and any(key in value for key in _ANSWER_KEYS):
        return False
    messages = value.get("messages")
    if isinstance(messages, list) and messages:
        last = messages[-1]
        # a request may end with an assistant prefill when it carries generation settings
        prefill = any(key in value for key in _SETTING_KEYS)
        return (
            isinstance(last, dict)
            and (last.get("role") != "assistant" or prefill)
            and all(isinstance(m, dict) and "role" in m for m in messages)
            and (not bare or isinstance(value.get("model"), str))
        )
    if "input" in value and isinstance(value["input"], str | list):
        return not bare or isinstance(value.get("model"), str)
    contents = value.get("contents")
    return isinstance(contents, list) and all(
        isinstance(c, dict) and "parts" in c for c in contents
    )


def request_call(request: dict[str, Any], extras: dict[str, Any]) -> PartialCall:
    """The partial call of a request that got no logged response (status ``no_response``).

    Raises:
        RecordError: malformed ``messages``, ``input`` or ``contents``.
    """
    if "contents" in request and "messages" not in request:
        partial = gemini_call(request, {}, dict(extras))
        partial["status"] = STATUS_NO_RESPONSE
        partial["input_tokens"] = estimate_input(
            partial.get("messages") or [], request.get("tools"), partial.get("model")
        )
        return partial
    model = request.get("model")
    if "messages" in request:
        messages = request_messages(request)
        system = request.get("system")
        anthropic = system is not None or "anthropic_version" in request
        if system:
            messages = [{"role": "system", "content": system}, *messages]
        cap = request.get("max_completion_tokens", request.get("max_tokens"))
    else:
        messages = input_messages(request.get("input"), request.get("instructions"))
        anthropic = False
        cap = request.get("max_output_tokens")
    partial = {
        "model": model,
        "messages": messages,
        "system_prompt": content_text(request["system"])
        if request.get("system")
        else system_text(messages),
        "query": last_user_text(messages),
        "response": "",
        "max_tokens": token_count(cap, field="request.max_tokens"),
        "status": STATUS_NO_RESPONSE,
    }
    if anthropic:
        partial["provider"] = "anthropic"
    settings = {k: v for k, v in request.items() if k not in _CONTENT_KEYS}
    fill_extras(partial, settings, extras)
    partial["input_tokens"] = estimate_input(messages, request.get("tools"), model)
    return partial


def estimate_input(messages: list[dict[str, Any]], tools: Any, model: str | None) -> int:
    """Estimated input tokens of a request: its messages (tiktoken, per-message overhead
    included) plus its tool definitions as JSON text."""
    # imported here: enrich.tokens imports ingest.fields, so a module-level import would
    # cycle through this package's __init__ (rows.py imports it the same way, later)
    from levers_cli.text.tokens import count_messages, count_text

    tokens = count_messages(messages, model)
    if tools:
        tokens += count_text(json.dumps(tools, ensure_ascii=False, sort_keys=True), model)
    return tokens
