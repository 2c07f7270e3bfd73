"""OpenAI Chat Completions request/response pairs, whole or streamed.

Usage (OpenAI API reference, "The chat completion object", ``usage``): ``prompt_tokens``
includes ``prompt_tokens_details.cached_tokens`` and ``completion_tokens`` includes
``completion_tokens_details.reasoning_tokens``; both are subsets, never added on top
(../shared/cases C01, C03). The Responses API names them ``input_tokens``/``output_tokens``
(openai-python ``types/responses/response_usage.py``); :func:`openai_usage` reads both.

Streams (openai-python ``types/chat/chat_completion_chunk.py``; ``include_usage`` in the
OpenAPI spec's ``ChatCompletionStreamOptions``) are logged as the list of
``chat.completion.chunk`` objects or the raw SSE text (``data: {...}`` … ``data: [DONE]``).
Chunks share ``id``, ``created`` and ``model``; content and tool-call argument pieces are
concatenated; with ``include_usage`` a last chunk carries the request's ``usage`` (empty
``choices`` at OpenAI; OpenRouter-style proxies add ``usage.cost`` in USD). Without it,
tokens are left to the estimator.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from levers_cli.errors import RecordError
from levers_cli.ingest.fields import optional_float, parse_ts, provider_for_model, token_count
from levers_cli.ingest.formats.base import MappedAdapter, PartialCall, Record
from levers_cli.ingest.formats.pairs import (
    fill_extras,
    last_user_text,
    pair_response,
    request_messages,
    split_pair,
    system_text,
)
from levers_cli.text.content import content_text

CHUNK_OBJECT = "chat.completion.chunk"


class OpenAIChatAdapter(MappedAdapter):
    """``{"request": {...}, "response": {...}}`` or a response with ``messages`` beside it;
    the response may be a list of stream chunks or the raw SSE text."""

    name = "openai-chat"
    description = "OpenAI Chat Completions request/response pairs (whole or streamed)"
    example = (
        '{"request": {"model": "gpt-4o", "messages": [...]}, "response": {"id": "chatcmpl-…", '
        '"choices": [...], "usage": {"prompt_tokens": 12, "completion_tokens": 5}}}'
    )

    def sniff(self, record: Record) -> bool:
        """True for a pair whose response has ``choices``, is a ``chat.completion``, is a
        failed call (``{"error": {...}}``), or is a stream of ``chat.completion.chunk``s."""
        streamed = record.get("response")
        if "request" in record and isinstance(streamed, list | str):
            try:
                chunks = stream_payloads(streamed)
            except RecordError:
                return False
            return bool(chunks) and chunks[0].get("object") == CHUNK_OBJECT
        response = pair_response(record)
        if response is None or response.get("object") == "response":  # the Responses API
            return False
        if "error" in response and "type" not in response:  # a failed call: {"error": {...}}
            return isinstance(response["error"], dict)
        return "choices" in response or response.get("object") == "chat.completion"

    def normalize(self, record: Record) -> PartialCall:
        """Normalize one pair (a streamed response is reassembled first).

        Raises:
            RecordError: no request messages, a broken stream, or a usage field that is not
                a count.
        """
        streamed = isinstance(record.get("response"), list | str)
        if streamed:
            chunks = stream_payloads(record["response"])
            if not chunks:
                raise RecordError("the stream holds no chunks", field="response")
            record = {**record, "response": assemble_chunks(chunks)}
        partial = chat_call(*split_pair(record))
        if streamed:
            partial["metadata"]["streamed"] = True
        return partial


def chat_call(
    request: dict[str, Any],
    response: dict[str, Any],
    extras: dict[str, Any],
    *,
    messages_required: bool = True,
) -> PartialCall:
    """The partial call of one Chat Completions request and its (whole) response.

    Args:
        request: the request body (``messages``, ``model``, settings); may be ``{}`` when
            ``messages_required`` is False (a batch output line without its input).
        response: a ``chat.completion`` object or an ``{"error": {...}}`` body.
        extras: the logger's fields beside the pair (timestamps, latency, metadata).
        messages_required: raise when the request has no messages.

    Raises:
        RecordError: missing messages (when required) or a usage count that is not a count.
    """
    if messages_required or request.get("messages") is not None:
        messages = request_messages(request)
    else:
        messages = []
    model = response.get("model") or request.get("model")
    partial: PartialCall = {
        "provider": openai_provider(model),
        "model": model,
        "call_id": response.get("id"),
        "ts": parse_ts(response.get("created"), field="response.created"),
        "messages": messages,
        "system_prompt": system_text(messages),
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
    if isinstance(response.get("service_tier"), str) and response["service_tier"]:
        partial["service_tier"] = response["service_tier"]  # served, not the one asked for
    usage = response.get("usage")
    if isinstance(usage, dict):
        partial.update(openai_usage(usage))
        cost = optional_float(usage.get("cost"), field="usage.cost")
        if cost is not None:  # OpenRouter-style proxies report the charge in USD
            partial["logged_cost_usd"] = cost
    return partial


def openai_provider(model: str | None) -> str:
    """``openai``, or the provider a ``provider/model`` id names (a proxy such as OpenRouter
    serving another vendor's model through the OpenAI format)."""
    if model and "/" in model:
        return provider_for_model(model) or "openai"
    return "openai"


def _reply_text(message: dict[str, Any]) -> str:
    text = content_text(message.get("content")) or message.get("refusal") or ""
    calls = message.get("tool_calls")
    if calls:
        text = (text + "\n" if text else "") + json.dumps(calls, ensure_ascii=False)
    return text


def stream_payloads(stream: list[Any] | str) -> list[dict[str, Any]]:
    """The JSON objects of a logged stream, in order.

    Args:
        stream: a list of parsed chunk objects (or of ``data: ...`` strings), or the raw
            server-sent-events text.

    Raises:
        RecordError: an element or a ``data:`` field is not a JSON object.
    """
    if isinstance(stream, str):
        return sse_payloads(stream)
    if all(isinstance(item, str) for item in stream):
        return sse_payloads("\n\n".join(stream))
    if not all(isinstance(item, dict) for item in stream):
        raise RecordError("a stream must be a list of JSON objects", field="response")
    return list(stream)


def sse_payloads(text: str) -> list[dict[str, Any]]:
    """JSON objects of the ``data:`` fields of a server-sent-events text, up to
    ``data: [DONE]``; ``event:``, ``id:`` and comment lines are skipped.

    An event's ``data:`` lines are joined with newlines (SSE spec); when that is not JSON,
    each line is read on its own (loggers that drop the blank separator lines).

    Raises:
        RecordError: a ``data:`` field is neither ``[DONE]`` nor a JSON object.
    """
    payloads: list[dict[str, Any]] = []
    lines: list[str] = []

    def flush() -> None:
        if not lines:
            return
        try:
            parts = [json.loads("\n".join(lines))]
        except json.JSONDecodeError:
            try:
                parts = [json.loads(line) for line in lines]
            except json.JSONDecodeError as exc:
                reason = f"stream event is not JSON ({exc.msg})"
                raise RecordError(reason, field="response") from None
        lines.clear()
        for part in parts:
            if not isinstance(part, dict):
                raise RecordError("stream event is not a JSON object", field="response")
            payloads.append(part)

    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped:
            flush()
        elif stripped.startswith("data:"):
            data = stripped[5:].strip()
            if data == "[DONE]":
                break
            lines.append(data)
    flush()
    return payloads


def assemble_chunks(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Rebuild the ``chat.completion`` object a stream of chunks spells out.

    Content and refusal pieces are concatenated per choice; tool calls are merged by their
    ``index`` (the id, type and name are kept from the first chunk that has them, argument
    pieces are concatenated); the last ``finish_reason`` and the last ``usage`` win.
    """
    head: dict[str, Any] = {"object": "chat.completion"}
    texts: dict[int, list[str]] = defaultdict(list)
    refusals: dict[int, list[str]] = defaultdict(list)
    calls: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
    finish: dict[int, str] = {}
    for chunk in chunks:
        for key in ("id", "created", "model", "system_fingerprint", "service_tier"):
            if head.get(key) in (None, "") and chunk.get(key) not in (None, ""):
                head[key] = chunk[key]
        if isinstance(chunk.get("usage"), dict):
            head["usage"] = chunk["usage"]
        if isinstance(chunk.get("error"), dict):
            head["error"] = chunk["error"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index") or 0
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                texts[index].append(delta["content"])
            if isinstance(delta.get("refusal"), str):
                refusals[index].append(delta["refusal"])
            for piece in delta.get("tool_calls") or []:
                _merge_tool_call(calls[index], piece)
            if choice.get("finish_reason"):
                finish[index] = choice["finish_reason"]
    indexes = sorted(set(texts) | set(refusals) | set(calls) | set(finish))
    choices = []
    for index in indexes:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(texts[index]) or None}
        if refusals[index]:
            message["refusal"] = "".join(refusals[index])
        if calls[index]:
            message["tool_calls"] = [calls[index][k] for k in sorted(calls[index])]
        choices.append({"index": index, "message": message, "finish_reason": finish.get(index)})
    head["choices"] = choices
    return head


def _merge_tool_call(slots: dict[int, dict[str, Any]], piece: Any) -> None:
    if not isinstance(piece, dict):
        return
    slot = slots.setdefault(
        piece.get("index") or 0,
        {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
    )
    if piece.get("id") and not slot["id"]:
        slot["id"] = piece["id"]
    if piece.get("type"):
        slot["type"] = piece["type"]
    function = piece.get("function") or {}
    if function.get("name") and not slot["function"]["name"]:
        slot["function"]["name"] = function["name"]
    if isinstance(function.get("arguments"), str):
        slot["function"]["arguments"] += function["arguments"]


def openai_usage(usage: dict[str, Any]) -> PartialCall:
    """Normalize an OpenAI ``usage`` object into ``calls`` token columns.

    Reads Chat Completions names (``prompt_tokens``, ``completion_tokens``,
    ``*_tokens_details``) or, when those are absent, Responses API names (``input_tokens``,
    ``output_tokens``, ``input_tokens_details``, ``output_tokens_details``). Returns input
    (cached included), cache read, cache write (always 0: OpenAI charges no write premium),
    output (reasoning included), reasoning tokens and the audio parts of input and output
    (``*_tokens_details.audio_tokens``: parts of the totals, billed at the model's audio
    rates; OpenAI API reference, "The chat completion object", ``usage``).

    Raises:
        RecordError: a count is negative or not a number, cached or audio > input tokens,
            or reasoning or audio > output tokens.
    """
    chat = "prompt_tokens" in usage or "completion_tokens" in usage
    prompt_name, completion_name = (
        ("prompt_tokens", "completion_tokens") if chat else ("input_tokens", "output_tokens")
    )
    prompt, (cached, audio_in) = _total_and_parts(usage, prompt_name, "cached_tokens")
    completion, (reasoning, audio_out) = _total_and_parts(
        usage, completion_name, "reasoning_tokens"
    )
    return {
        "input_tokens": prompt,
        "cache_read_tokens": cached,
        "cache_write_tokens": 0,
        "output_tokens": completion,
        "reasoning_tokens": reasoning,
        "input_audio_tokens": audio_in,
        "output_audio_tokens": audio_out,
    }


def _total_and_parts(
    usage: dict[str, Any], total_name: str, detail: str
) -> tuple[int | None, tuple[int, int]]:
    """``usage[total_name]`` and its ``{detail, audio_tokens}`` parts (0 when absent).

    Raises:
        RecordError: a count is not a count, or a part exceeds the total.
    """
    total = token_count(usage.get(total_name), field=f"usage.{total_name}")
    details = usage.get(f"{total_name}_details") or {}
    parts = []
    for name in (detail, "audio_tokens"):
        field = f"usage.{total_name}_details.{name}"
        part = token_count(details.get(name), field=field)
        if total is not None and part is not None and part > total:
            raise RecordError(f"{name} {part} exceed {total_name} {total}", field=field)
        parts.append(part or 0)
    return total, (parts[0], parts[1])
