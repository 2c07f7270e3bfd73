"""Google Gemini ``generateContent`` calls: request/response pairs, streamed responses and
Vertex AI batch prediction output.

Sources: the Gemini API reference (``models.generateContent``, ``GenerateContentResponse``,
``UsageMetadata``: ai.google.dev/api/generate-content) and googleapis/python-genai
``google/genai/types.py``. A request holds ``contents`` (``{role: user|model, parts}``; a
part is ``text``, ``inlineData``, ``fileData``, ``functionCall`` or ``functionResponse``),
``systemInstruction`` (``system_instruction`` in snake case, as Vertex echoes it) and
``generationConfig.maxOutputTokens``. A response holds ``candidates[].content.parts``
(``thought: true`` parts are the model's thinking summary, not its answer),
``finishReason``, ``usageMetadata``, ``modelVersion`` and ``responseId``.

Usage (``UsageMetadata``): ``promptTokenCount`` *includes* ``cachedContentTokenCount``
("when cached_content is set, this is still the total effective prompt size"), so it is the
input and the cached part is the cache read; ``thoughtsTokenCount`` is *not* part of
``candidatesTokenCount`` but is billed as output, so output = candidates + thoughts and
reasoning = thoughts; ``toolUsePromptTokenCount`` (content a tool such as URL context or
search fetched into the prompt) is input the call is billed for and is added to it, as
simonw/llm-gemini ``set_usage`` does.

Streams (``streamGenerateContent``) are logged as the list of ``GenerateContentResponse``
chunks (the REST call without ``alt=sse`` returns a JSON array) or as the SSE text
(``data: {...}`` per chunk); text parts are concatenated and each chunk's ``usageMetadata``
is cumulative, so the last one is the call's.

Vertex AI batch prediction output (cloud.google.com/vertex-ai/generative-ai/docs/multimodal/
batch-prediction-from-cloud-storage) writes one line per request: ``{"status": "",
"processed_time": "…", "request": {...}, "response": {...}}``; a non-empty ``status`` is the
request's error. Those calls are marked ``is_batch``.
"""

from __future__ import annotations

import json
from typing import Any

from levers_cli.errors import RecordError
from levers_cli.ingest.fields import parse_ts, token_count
from levers_cli.ingest.formats.base import MappedAdapter, PartialCall, Record
from levers_cli.ingest.formats.openai_chat import sse_payloads
from levers_cli.ingest.formats.pairs import fill_extras, last_user_text
from levers_cli.schema import STATUS_ERROR, STATUS_NO_RESPONSE, STATUS_OK

#: Gemini ``finishReason`` → the OpenAI-style ``finish_reason`` levers stores.
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
#: Gemini content roles → chat roles.
_ROLES = {"user": "user", "model": "assistant", "function": "tool", "tool": "tool"}
#: Top-level keys of a Vertex AI batch prediction output line (besides request/response).
_BATCH_KEYS = ("processed_time", "status")


class GeminiAdapter(MappedAdapter):
    """``{"request": {"contents": …}, "response": GenerateContentResponse | [chunks] | SSE}``
    pairs, Vertex AI batch output lines and bare ``GenerateContentResponse`` objects."""

    name = "gemini"
    description = (
        "Google Gemini generateContent request/response pairs (whole or streamed) and "
        "Vertex AI batch prediction output"
    )
    example = (
        '{"request": {"contents": [{"role": "user", "parts": [{"text": "…"}]}]}, "response": '
        '{"candidates": [...], "usageMetadata": {"promptTokenCount": 9, '
        '"candidatesTokenCount": 10}, "modelVersion": "gemini-2.5-flash"}}'
    )

    def sniff(self, record: Record) -> bool:
        """True for a record whose response (or the record itself) is a
        ``GenerateContentResponse`` or a stream of them, or whose request has ``contents``
        next to a response."""
        if "response" not in record:
            return is_gemini_response(record) and "request" not in record
        request = record.get("request")
        if isinstance(request, dict) and "contents" in request:
            return True
        response = record["response"]
        if isinstance(response, dict):
            return is_gemini_response(response)
        if isinstance(response, list | str):
            try:
                chunks = gemini_chunks(response)
            except RecordError:
                return False
            return bool(chunks) and is_gemini_response(chunks[0])
        return False

    def normalize(self, record: Record) -> PartialCall:
        """Normalize one pair, batch output line or bare response.

        Raises:
            RecordError: the request is not an object, ``contents`` is malformed, a stream
                holds data that is not JSON, or a usage count is not a count.
        """
        if "response" not in record and "request" not in record:
            return gemini_call({}, record, {})
        request = record.get("request") or {}
        if not isinstance(request, dict):
            raise RecordError("not an object", field="request")
        batch = all(key in record for key in _BATCH_KEYS)
        framing = ("request", "response", *(_BATCH_KEYS if batch else ()))
        response, streamed = _whole_response(record.get("response"))
        partial = gemini_call(
            request, response, {k: v for k, v in record.items() if k not in framing}
        )
        if streamed:
            partial["metadata"]["streamed"] = True
        if batch:
            partial["is_batch"] = True
            partial["ts"] = parse_ts(record.get("processed_time"), field="processed_time")
            if record.get("status"):
                partial["status"] = STATUS_ERROR
                partial["error"] = str(record["status"])
        return partial


def _whole_response(value: Any) -> tuple[dict[str, Any], bool]:
    """``(response, streamed)``: a logged stream reassembled into one response; ``{}`` for
    no response.

    Raises:
        RecordError: a stream element or ``data:`` field is not a JSON object.
    """
    if isinstance(value, list | str):
        return assemble_chunks(gemini_chunks(value)), True
    return (value if isinstance(value, dict) else {}), False


def is_gemini_response(value: Any) -> bool:
    """True for a ``GenerateContentResponse``: ``candidates``, ``usageMetadata`` or
    ``promptFeedback`` with no OpenAI/Anthropic response marker."""
    if not isinstance(value, dict) or "choices" in value or "type" in value:
        return False
    return isinstance(value.get("candidates"), list) or (
        isinstance(value.get("usageMetadata"), dict)
        or isinstance(value.get("promptFeedback"), dict)
    )


def gemini_chunks(stream: list[Any] | str) -> list[dict[str, Any]]:
    """The ``GenerateContentResponse`` chunks of a logged stream (a list of chunk objects or
    the SSE text).

    Raises:
        RecordError: an element or ``data:`` field is not a JSON object.
    """
    if isinstance(stream, str):
        return sse_payloads(stream)
    if not all(isinstance(chunk, dict) for chunk in stream):
        raise RecordError("a stream must be a list of JSON objects", field="response")
    return list(stream)


def assemble_chunks(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``GenerateContentResponse`` a stream of chunks spells out: the first candidate's
    parts in order (adjacent text parts of the same kind merged), its last
    ``finishReason``, the last ``usageMetadata`` (cumulative) and the first
    ``modelVersion``/``responseId``."""
    head: dict[str, Any] = {}
    parts: list[dict[str, Any]] = []
    finish = None
    for chunk in chunks:
        for key in ("modelVersion", "responseId", "createTime"):
            if key not in head and chunk.get(key):
                head[key] = chunk[key]
        if isinstance(chunk.get("usageMetadata"), dict):
            head["usageMetadata"] = chunk["usageMetadata"]
        if isinstance(chunk.get("promptFeedback"), dict):
            head["promptFeedback"] = chunk["promptFeedback"]
        candidates = chunk.get("candidates") or []
        first = candidates[0] if candidates and isinstance(candidates[0], dict) else {}
        for part in (first.get("content") or {}).get("parts") or []:
            if not isinstance(part, dict):
                continue
            last = parts[-1] if parts else None
            if (
                last is not None
                and isinstance(part.get("text"), str)
                and isinstance(last.get("text"), str)
                and bool(part.get("thought")) == bool(last.get("thought"))
            ):
                last["text"] += part["text"]
            else:
                parts.append(dict(part))
        finish = first.get("finishReason") or finish
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}}
    if finish:
        candidate["finishReason"] = finish
    return {**head, "candidates": [candidate]}


def gemini_call(
    request: dict[str, Any], response: dict[str, Any], extras: dict[str, Any]
) -> PartialCall:
    """The partial call of one ``generateContent`` request and its (whole) response.

    Args:
        request: the request body (``contents``, ``systemInstruction``,
            ``generationConfig``); ``{}`` when only the response was logged.
        response: the ``GenerateContentResponse``; ``{}`` when none was logged.
        extras: the logger's fields beside the pair (``model``, timestamps, metadata).

    Raises:
        RecordError: ``contents`` is malformed or a usage count is not a count.
    """
    messages = request_messages(request)
    logged_model = extras.pop("model", None)
    model = model_name(response.get("modelVersion") or logged_model or request.get("model"))
    config = request.get("generationConfig") or request.get("generation_config") or {}
    cap = config.get("maxOutputTokens", config.get("max_output_tokens"))
    partial: PartialCall = {
        "provider": "google",
        "model": model,
        "call_id": response.get("responseId"),
        "ts": parse_ts(response.get("createTime"), field="response.createTime"),
        "messages": messages,
        "system_prompt": next((m["content"] for m in messages if m["role"] == "system"), None),
        "query": last_user_text(messages),
        "max_tokens": token_count(cap, field="request.generationConfig.maxOutputTokens"),
    }
    settings = {
        k: v
        for k, v in request.items()
        if k not in ("contents", "systemInstruction", "system_instruction", "model")
    }
    fill_extras(partial, settings, extras)
    candidates = response.get("candidates") or []
    first = candidates[0] if candidates and isinstance(candidates[0], dict) else {}
    parts = (first.get("content") or {}).get("parts") or []
    partial["response"] = reply_text(parts)
    reason = first.get("finishReason")
    called = any(isinstance(p, dict) and "functionCall" in p for p in parts)
    partial["finish_reason"] = (
        "tool_calls"
        if called and reason in (None, "STOP")
        else FINISH_REASONS.get(reason or "", reason)
    )
    if isinstance(first.get("finishReason"), str) and first.get("finishMessage"):
        partial["metadata"]["finish_message"] = first["finishMessage"]
    blocked = (response.get("promptFeedback") or {}).get("blockReason")
    if blocked and not candidates:
        partial["status"] = STATUS_ERROR
        partial["error"] = f"prompt blocked: {blocked}"
    elif response:
        partial["status"] = STATUS_OK
    else:
        partial["status"] = STATUS_NO_RESPONSE
    usage = response.get("usageMetadata")
    if isinstance(usage, dict):
        partial.update(gemini_usage(usage))
        if usage.get("serviceTier") or usage.get("trafficType"):
            partial["metadata"]["service_tier"] = usage.get("serviceTier") or usage["trafficType"]
    return partial


def gemini_usage(usage: dict[str, Any]) -> PartialCall:
    """Normalize a Gemini ``usageMetadata`` into ``calls`` token columns.

    Returns input = prompt (cached included) + tool-use prompt tokens, cache read = cached
    content, cache write 0 (explicit caches are billed for storage time, not per write),
    output = candidates + thoughts, reasoning = thoughts.

    Raises:
        RecordError: a count is negative or not a number, or cached > prompt tokens.
    """

    def count(key: str) -> int | None:
        return token_count(usage.get(key), field=f"usageMetadata.{key}")

    prompt, cached = count("promptTokenCount"), count("cachedContentTokenCount") or 0
    candidates, thoughts = count("candidatesTokenCount"), count("thoughtsTokenCount") or 0
    tool = count("toolUsePromptTokenCount") or 0
    if prompt is not None and cached > prompt:
        raise RecordError(
            f"cachedContentTokenCount {cached} exceeds promptTokenCount {prompt}",
            field="usageMetadata.cachedContentTokenCount",
        )
    output = None if candidates is None and not thoughts else (candidates or 0) + thoughts
    return {
        "input_tokens": None if prompt is None else prompt + tool,
        "cache_read_tokens": cached,
        "cache_write_tokens": 0,
        "output_tokens": output,
        "reasoning_tokens": thoughts,
    }


def request_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat messages of a ``generateContent`` request: the system instruction first
    (role ``system``), then ``contents`` with ``model`` turns as ``assistant``.

    Raises:
        RecordError: ``contents`` is not a list of ``{role, parts}`` objects.
    """
    messages: list[dict[str, Any]] = []
    system = request.get("systemInstruction", request.get("system_instruction"))
    if system:
        text = parts_text(system.get("parts") if isinstance(system, dict) else system)
        if text:
            messages.append({"role": "system", "content": text})
    contents = request.get("contents") or []
    if isinstance(contents, str | dict):
        contents = [contents]
    if not isinstance(contents, list):
        raise RecordError("not a list of {role, parts} objects", field="request.contents")
    for position, content in enumerate(contents):
        if isinstance(content, str):
            messages.append({"role": "user", "content": content})
            continue
        if not isinstance(content, dict):
            raise RecordError("not a {role, parts} object", field=f"request.contents[{position}]")
        role = _ROLES.get(str(content.get("role") or "user").lower(), "user")
        parts = content.get("parts") or []
        if (
            role == "user"
            and parts
            and all(isinstance(p, dict) and "functionResponse" in p for p in parts)
        ):
            role = "tool"
        messages.append({"role": role, "content": parts_text(parts)})
    return messages


def parts_text(parts: Any) -> str:
    """Text of Gemini content parts: text (thinking summaries left out), function calls and
    responses as JSON, ``[mime/type]`` for inline data and ``[file uri]`` for file data."""
    if isinstance(parts, str):
        return parts
    texts = map(_part_text, parts if isinstance(parts, list) else [parts])
    return "\n".join(text for text in texts if text)


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict) or part.get("thought"):
        return ""
    if isinstance(part.get("text"), str):
        return part["text"]
    call = {k: part[k] for k in ("functionCall", "functionResponse") if k in part}
    if call:
        return json.dumps(call, ensure_ascii=False, sort_keys=True)
    inline = part.get("inlineData") or part.get("inline_data")
    if isinstance(inline, dict):
        return f"[{inline.get('mimeType') or inline.get('mime_type') or 'inline data'}]"
    stored = part.get("fileData") or part.get("file_data")
    if isinstance(stored, dict):
        return f"[{stored.get('fileUri') or stored.get('file_uri') or 'file'}]"
    return ""


def reply_text(parts: list[Any]) -> str:
    """The answer of a candidate: :func:`parts_text` of its parts."""
    return parts_text(parts)


def model_name(value: Any) -> str | None:
    """A Gemini model id without its resource path or Vertex version alias
    (``models/gemini-2.5-flash``, ``publishers/google/models/gemini-2.0-flash-001@default``
    → ``gemini-2.5-flash``, ``gemini-2.0-flash-001``)."""
    if not isinstance(value, str) or not value.strip():
        return None
    name = value.strip().rsplit("/", 1)[-1]
    return name.split("@", 1)[0] or None
