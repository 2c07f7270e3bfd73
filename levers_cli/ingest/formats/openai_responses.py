"""OpenAI Responses API objects (``"object": "response"``), bare or as request/response pairs.

Sources: openai-python ``src/openai/types/responses/response.py`` (the Response object:
``id``, ``created_at`` in epoch seconds, ``status`` one of completed / failed / in_progress /
cancelled / queued / incomplete, ``error {code, message}``, ``incomplete_details.reason``,
``instructions``, ``max_output_tokens``, ``output`` items), ``response_usage.py`` (``usage``:
``input_tokens`` with ``input_tokens_details.cached_tokens`` inside it, ``output_tokens`` with
``output_tokens_details.reasoning_tokens`` inside it — the same subset rules as Chat
Completions), ``response_create_params.py`` (``input``: a string or a list of items —
messages with ``role``/``content``, ``function_call``, ``function_call_output``,
``reasoning``) and the streaming events (``response.created`` … ``response.completed`` /
``response.incomplete`` / ``response.failed``, each carrying the whole Response object).

Accepted records: a bare Response object (its echoed settings stand for the request; an
``input`` field beside it is read when a logger adds one), or ``{"request": {...},
"response": ...}`` where the response is the object, its list of stream events, or the raw
SSE text. Reasoning input items are encrypted and carry no text, so they are left out of
``messages``.
"""

from __future__ import annotations

import json
from typing import Any

from levers_cli.errors import RecordError
from levers_cli.ingest.fields import parse_ts, token_count
from levers_cli.ingest.formats.base import MappedAdapter, PartialCall, Record
from levers_cli.ingest.formats.openai_chat import openai_provider, openai_usage, stream_payloads
from levers_cli.ingest.formats.pairs import fill_extras, last_user_text, system_text

#: Response fields that echo the request's settings (used when only the response is logged).
_ECHOED = (
    "model",
    "instructions",
    "max_output_tokens",
    "temperature",
    "top_p",
    "reasoning",
    "text",
    "tools",
    "tool_choice",
    "truncation",
    "metadata",
    "user",
    "input",
)
#: Request fields that are content, not settings (kept in ``messages``/``system_prompt``).
_CONTENT_KEYS = ("input", "instructions", "include")
_FINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")
_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}


class OpenAIResponsesAdapter(MappedAdapter):
    """Responses API objects, bare or in ``{"request", "response"}`` pairs."""

    name = "openai-responses"
    description = "OpenAI Responses API objects (bare, paired with the request, or streamed)"
    example = (
        '{"request": {"model": "gpt-4o", "input": "..."}, "response": {"object": "response", '
        '"output": [...], "usage": {"input_tokens": 12, "output_tokens": 5}}}'
    )

    def sniff(self, record: Record) -> bool:
        """True for a Response object, or a pair whose response is one (or its stream)."""
        if record.get("object") == "response" and "output" in record:
            return True
        if "request" not in record:
            return False
        response = record.get("response")
        if isinstance(response, dict):
            return response.get("object") == "response"
        if isinstance(response, list | str):
            try:
                events = stream_payloads(response)
            except RecordError:
                return False
            return bool(events) and str(events[0].get("type", "")).startswith("response.")
        return False

    def normalize(self, record: Record) -> PartialCall:
        """Normalize one record.

        Raises:
            RecordError: the request or response is not an object, the stream holds no
                Response, ``input`` is malformed, or a usage count is not a count.
        """
        if "request" not in record and "response" not in record:
            echoed = {k: record[k] for k in _ECHOED if record.get(k) is not None}
            return responses_call(echoed, record, {})
        request = record.get("request")
        if not isinstance(request, dict):
            raise RecordError("missing or not an object", field="request")
        response = record.get("response")
        streamed = False
        if isinstance(response, list | str):
            streamed = True
            response = response_from_events(stream_payloads(response))
        if not isinstance(response, dict):
            raise RecordError("missing or not an object", field="response")
        extras = {k: v for k, v in record.items() if k not in ("request", "response")}
        partial = responses_call(request, response, extras)
        if streamed:
            partial["metadata"]["streamed"] = True
        return partial


def responses_call(
    request: dict[str, Any], response: dict[str, Any], extras: dict[str, Any]
) -> PartialCall:
    """The partial call of one Responses API request and its Response object.

    Args:
        request: the request body (``input``, ``instructions``, ``model``, settings); ``{}``
            when unknown.
        response: the Response object.
        extras: the logger's fields beside the pair.

    Raises:
        RecordError: ``input`` is malformed, or a usage count is not a count.
    """
    instructions = request.get("instructions", response.get("instructions"))
    messages = input_messages(request.get("input"), instructions)
    model = response.get("model") or request.get("model")
    partial: PartialCall = {
        "provider": openai_provider(model),
        "model": model,
        "call_id": response.get("id"),
        "ts": parse_ts(response.get("created_at"), field="response.created_at"),
        "messages": messages,
        "system_prompt": system_text(messages),
        "query": last_user_text(messages),
        "max_tokens": token_count(
            request.get("max_output_tokens", response.get("max_output_tokens")),
            field="request.max_output_tokens",
        ),
    }
    settings = {k: v for k, v in request.items() if k not in _CONTENT_KEYS}
    fill_extras(partial, settings, extras)
    for key in ("previous_response_id", "status"):
        if response.get(key) is not None:
            partial["metadata"][key] = response[key]
    if isinstance(response.get("service_tier"), str) and response["service_tier"]:
        partial["service_tier"] = response["service_tier"]  # served, not the one asked for
    tools = tool_calls_billed(response.get("output"))
    if tools:
        partial["server_tool_uses"] = tools
    text, called_tool = output_text(response.get("output"))
    partial["response"] = text
    status = response.get("status")
    error = response.get("error")
    if isinstance(error, dict) or status in ("failed", "cancelled"):
        partial["status"] = "error"
        error = error if isinstance(error, dict) else {}
        partial["error"] = error.get("message") or error.get("code") or f"response {status}"
    else:
        partial["status"] = "ok"
        partial["finish_reason"] = _finish_reason(response, called_tool)
    usage = response.get("usage")
    if isinstance(usage, dict):
        partial.update(openai_usage(usage))
    return partial


#: Responses ``output`` item types of built-in tools billed per call → ``server_tool_uses``
#: keys (openai-python ``types/responses/response_output_item.py``; prices: OpenAI pricing
#: page, "Built-in tools").
_TOOL_ITEMS = {
    "web_search_call": "web_search",
    "file_search_call": "file_search",
    "code_interpreter_call": "code_execution",
}


def tool_calls_billed(output: Any) -> dict[str, int]:
    """``{tool: uses}`` of the built-in tools a Response's ``output`` items used: one per
    web or file search call, one per Code Interpreter container (distinct
    ``container_id``; the fee is per container). Tools the request merely offered are not
    in ``output`` and cost nothing."""
    uses: dict[str, int] = {}
    containers: set[Any] = set()
    for item in output if isinstance(output, list) else []:
        if not isinstance(item, dict) or item.get("type") not in _TOOL_ITEMS:
            continue
        tool = _TOOL_ITEMS[item["type"]]
        if tool == "code_execution":
            container = item.get("container_id") or item.get("id")
            if container in containers:
                continue
            containers.add(container)
        uses[tool] = uses.get(tool, 0) + 1
    return uses


def _finish_reason(response: dict[str, Any], called_tool: bool) -> str | None:
    if response.get("status") == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        return _INCOMPLETE.get(reason or "", reason)
    if called_tool:
        return "tool_calls"
    return "stop" if response.get("status") == "completed" else None


def input_messages(items: Any, instructions: Any = None) -> list[dict[str, Any]]:
    """Chat-style messages of a Responses ``input`` (a string or a list of items), with
    ``instructions`` first as a system message.

    Function calls become assistant ``tool_calls`` messages and their outputs ``tool``
    messages; reasoning items are dropped; other items are kept as JSON text.

    Raises:
        RecordError: ``input`` is neither a string nor a list of objects.
    """
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    if items is None:
        return messages
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    if not isinstance(items, list):
        raise RecordError("neither a string nor a list of items", field="request.input")
    for item in items:
        if not isinstance(item, dict):
            raise RecordError("an input item is not an object", field="request.input")
        kind = item.get("type")
        if "role" in item and kind in (None, "message"):
            messages.append({"role": item["role"], "content": item.get("content")})
        elif kind == "function_call":
            function = {"name": item.get("name"), "arguments": item.get("arguments")}
            call = {"id": item.get("call_id"), "type": "function", "function": function}
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            call_id, output = item.get("call_id"), item.get("output")
            messages.append({"role": "tool", "tool_call_id": call_id, "content": output})
        elif kind != "reasoning":
            role = "tool" if str(kind).endswith("_output") else "assistant"
            text = json.dumps(item, ensure_ascii=False, sort_keys=True)
            messages.append({"role": role, "content": text})
    return messages


def output_text(output: Any) -> tuple[str, bool]:
    """The reply text of a Response's ``output`` items, and whether it called a function.

    Message ``output_text`` (and ``refusal``) parts are joined; function and custom tool
    calls are appended as JSON (as Chat Completions tool calls are); reasoning is left out.
    """
    parts: list[str] = []
    called = False
    for item in output if isinstance(output, list) else []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    parts.append(part["text"])
                elif isinstance(part, dict) and isinstance(part.get("refusal"), str):
                    parts.append(part["refusal"])
        elif kind in ("function_call", "custom_tool_call"):
            called = True
            keys = ("call_id", "name", "arguments", "input")
            parts.append(json.dumps({k: item[k] for k in keys if k in item}, ensure_ascii=False))
    return "\n".join(p for p in parts if p), called


def response_from_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The Response object a stream of Responses events ends with.

    The ``response.completed`` / ``incomplete`` / ``failed`` event carries the whole object
    with its usage. A stream cut short has none: the last Response seen is rebuilt with the
    finished output items (or the text deltas) and no usage, so tokens are estimated; an
    ``error`` event marks it failed.

    Raises:
        RecordError: no event carries a Response object.
    """
    latest: dict[str, Any] | None = None
    items: dict[int, Any] = {}
    deltas: dict[int, list[str]] = {}
    error: dict[str, Any] | None = None
    for event in events:
        kind = event.get("type")
        if isinstance(event.get("response"), dict):
            latest = event["response"]
            if kind in _FINAL_EVENTS:
                return latest
        position = event.get("output_index") or 0
        if kind == "response.output_item.done" and isinstance(event.get("item"), dict):
            items[position] = event["item"]
        elif kind == "response.output_text.delta" and isinstance(event.get("delta"), str):
            deltas.setdefault(position, []).append(event["delta"])
        elif kind == "error":
            error = {"code": event.get("code"), "message": event.get("message")}
    if latest is None:
        raise RecordError("the stream holds no Response object", field="response")
    for position, pieces in deltas.items():
        if position not in items:
            text = {"type": "output_text", "text": "".join(pieces)}
            items[position] = {"type": "message", "role": "assistant", "content": [text]}
    rebuilt = dict(latest, output=[items[k] for k in sorted(items)], usage=None)
    if error is not None:
        rebuilt.update(status="failed", error=error)
    return rebuilt
