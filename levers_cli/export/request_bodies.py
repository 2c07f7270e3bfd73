"""The provider request body of a logged call, in the shape of the API it was logged from.

A batch line (``levers export batch``) re-sends a logged call, so it keeps that call's API:

- OpenAI Chat Completions, ``POST /v1/chat/completions``: ``model``, ``messages``, the cap as
  ``max_tokens`` (``max_completion_tokens`` for reasoning models) and the settings of
  openai-python ``types/chat/completion_create_params.py``.
- OpenAI Responses, ``POST /v1/responses``: ``model``, ``input`` (input items: messages with
  role user / assistant / system / developer, ``function_call`` and ``function_call_output``
  items, other items as logged), ``instructions``, the cap as ``max_output_tokens`` and the
  settings of ``types/responses/response_create_params.py`` (``reasoning``, ``text``,
  ``tools``, ``truncation`` …).
- OpenAI Embeddings, ``POST /v1/embeddings``: ``model`` and ``input`` (a list of strings;
  ``types/embedding_create_params.py``).
- Anthropic Messages (the ``params`` of a Message Batches request): ``model``,
  ``max_tokens`` (required), ``messages``, ``system`` and the Messages settings.

:func:`openai_endpoint` tells which OpenAI API a call was logged from. The Batch API takes
one ``endpoint`` per batch (``POST /v1/batches``: ``endpoint`` is one of ``/v1/responses``,
``/v1/chat/completions``, ``/v1/embeddings`` …; every line's ``url`` must match it: OpenAI
API reference, "Create batch" and "The request input object"), so the exporter files calls
by endpoint before it files them by model.
"""

from __future__ import annotations

import json
import re
from typing import Any

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
EMBEDDINGS = "/v1/embeddings"
#: Endpoint → the short name used in file names.
ENDPOINT_NAMES = {CHAT: "chat-completions", RESPONSES: "responses", EMBEDDINGS: "embeddings"}

#: Request settings kept from the log (``metadata.params``), per API (the parameters of
#: Chat Completions, Responses and Messages in their API references). Streaming, storage and
#: service-tier settings are left out: a batch is neither streamed nor served by a tier.
_CHAT_PARAMS = (
    "temperature", "top_p", "n", "stop", "seed", "presence_penalty", "frequency_penalty",
    "logit_bias", "logprobs", "top_logprobs", "tools", "tool_choice", "parallel_tool_calls",
    "response_format", "reasoning_effort", "max_completion_tokens", "max_tokens",
)  # fmt: skip
_RESPONSES_PARAMS = (
    "temperature", "top_p", "top_logprobs", "tools", "tool_choice", "parallel_tool_calls",
    "reasoning", "text", "truncation", "max_tool_calls", "previous_response_id",
    "conversation", "prompt", "prompt_cache_key", "safety_identifier",
)  # fmt: skip
_EMBEDDING_PARAMS = ("dimensions", "encoding_format")
_ANTHROPIC_PARAMS = (
    "temperature", "top_p", "top_k", "stop_sequences", "tools", "tool_choice", "thinking",
)  # fmt: skip
_CHAT_MESSAGE_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id", "refusal")
#: Settings only the Responses API takes: a call logged with one was a Responses call.
_RESPONSES_ONLY = (
    "max_output_tokens", "previous_response_id", "truncation", "max_tool_calls", "conversation",
)  # fmt: skip
#: Responses settings that are objects there (``text.format``, ``reasoning.effort``, a
#: ``prompt`` template reference); a string ``prompt`` is the legacy Completions API's.
_RESPONSES_OBJECTS = ("text", "reasoning", "prompt")
#: Content-part types only Responses ``input`` uses (Chat uses ``text`` / ``image_url``).
_RESPONSES_PARTS = ("input_text", "input_image", "input_file", "input_audio", "output_text")
#: LiteLLM ``call_type`` values (its ``CallTypes`` enum) → endpoint.
_CALL_TYPES = {
    "responses": RESPONSES, "aresponses": RESPONSES,
    "embedding": EMBEDDINGS, "aembedding": EMBEDDINGS,
    "completion": CHAT, "acompletion": CHAT,
}  # fmt: skip
#: Reasoning models take ``max_completion_tokens`` and refuse ``max_tokens`` (OpenAI API
#: reference, Chat Completions: "max_tokens … not compatible with o-series models").
_REASONING = re.compile(r"^(o\d|gpt-5)")


def openai_endpoint(call: dict[str, Any]) -> str:
    """The OpenAI endpoint a logged call was made with.

    Args:
        call: ``format`` (the ingest adapter's name), ``metadata`` (dict), ``params`` (the
            logged request settings) and ``messages``.

    Returns:
        :data:`RESPONSES`, :data:`EMBEDDINGS` or :data:`CHAT`, from the first that tells:
        the batch line's own ``url`` (``metadata.url``, OpenAI batch input), the adapter
        (``openai-responses``), LiteLLM's ``call_type``, a setting only Responses takes
        (``max_output_tokens``, ``reasoning``, ``text`` …), Responses content parts
        (``input_text`` …); Chat Completions otherwise.
    """
    metadata = call.get("metadata") or {}
    url = metadata.get("url")
    if url in ENDPOINT_NAMES:
        return url
    if call.get("format") == "openai-responses":
        return RESPONSES
    call_type = str(metadata.get("call_type") or "").lower()
    if call_type in _CALL_TYPES:
        return _CALL_TYPES[call_type]
    params = call.get("params") or {}
    if any(key in params for key in _RESPONSES_ONLY) or any(
        isinstance(params.get(key), dict) for key in _RESPONSES_OBJECTS
    ):
        return RESPONSES
    for message in call.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        parts = content if isinstance(content, list) else []
        if any(isinstance(p, dict) and p.get("type") in _RESPONSES_PARTS for p in parts):
            return RESPONSES
    return CHAT


def openai_body(call: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """The request body of a logged call for ``endpoint`` (see :func:`openai_endpoint`).

    Raises:
        ValueError: ``endpoint`` is not one of :data:`ENDPOINT_NAMES`.
    """
    if endpoint == RESPONSES:
        return responses_body(call)
    if endpoint == EMBEDDINGS:
        return embeddings_body(call)
    if endpoint == CHAT:
        return chat_body(call)
    raise ValueError(f"no request body for endpoint {endpoint!r}")


def chat_body(call: dict[str, Any]) -> dict[str, Any]:
    """The Chat Completions request body of a logged call (model, messages, settings)."""
    messages = [
        {k: m[k] for k in _CHAT_MESSAGE_KEYS if k in m}
        for m in call["messages"]
        if m.get("role") in ("system", "developer", "user", "assistant", "tool")
    ]
    body: dict[str, Any] = {"model": call["model"], "messages": messages}
    body.update(_settings(call, _CHAT_PARAMS))
    cap = call["max_tokens"]
    body.pop("max_tokens", None)
    body.pop("max_completion_tokens", None)
    if cap:
        key = "max_completion_tokens" if _REASONING.match(call["model"] or "") else "max_tokens"
        body[key] = int(cap)
    return body


def responses_body(call: dict[str, Any]) -> dict[str, Any]:
    """The Responses API request body of a logged call.

    The ingest keeps ``instructions`` as a leading system message and turns function calls
    and their outputs into Chat-style messages (:func:`levers_cli.ingest.formats.openai_responses.
    input_messages`); this undoes both: a leading system message with text becomes
    ``instructions``, assistant ``tool_calls`` become ``function_call`` items, ``tool``
    messages ``function_call_output`` items, and items kept as JSON text are restored.
    Reasoning items are not in the log (encrypted, no text), so they are not re-sent.
    """
    messages = [m for m in call["messages"] if isinstance(m, dict)]
    body: dict[str, Any] = {"model": call["model"]}
    if messages and messages[0].get("role") == "system" and isinstance(messages[0]["content"], str):
        body["instructions"] = messages[0]["content"]
        messages = messages[1:]
    body["input"] = [item for m in messages for item in _input_items(m)]
    if call["max_tokens"]:
        body["max_output_tokens"] = int(call["max_tokens"])
    body.update(_settings(call, _RESPONSES_PARAMS))
    return body


def embeddings_body(call: dict[str, Any]) -> dict[str, Any]:
    """The Embeddings request body of a logged call: the text of each user message (the
    logged ``input`` strings), else the call's query."""
    from levers_cli.text.content import content_text

    texts = [
        content_text(m.get("content"))
        for m in call["messages"]
        if isinstance(m, dict) and m.get("role") in (None, "user")
    ]
    texts = [t for t in texts if t] or [call.get("query") or ""]
    return {"model": call["model"], "input": texts, **_settings(call, _EMBEDDING_PARAMS)}


def anthropic_params(call: dict[str, Any], default_max_tokens: int) -> dict[str, Any]:
    """The Messages API parameters of a logged call; ``max_tokens`` (required there) is the
    logged cap, else ``default_max_tokens``."""
    system = [m["content"] for m in call["messages"] if m.get("role") == "system"]
    messages = [
        {"role": m["role"], "content": m.get("content") or ""}
        for m in call["messages"]
        if m.get("role") in ("user", "assistant")
    ]
    params: dict[str, Any] = {
        "model": call["model"],
        "max_tokens": int(call["max_tokens"] or default_max_tokens),
        "messages": messages,
    }
    if system:
        texts = [s if isinstance(s, str) else json.dumps(s) for s in system]
        params["system"] = "\n\n".join(texts)
    params.update(_settings(call, _ANTHROPIC_PARAMS))
    return params


def _settings(call: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    params = call.get("params") or {}
    return {k: params[k] for k in keys if k in params}


def _input_items(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The Responses input items one stored message stands for."""
    role, content = message.get("role"), message.get("content")
    if role == "tool":
        item = _logged_item(content)
        if item is not None:
            return [item]
        output = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        return [{"type": "function_call_output", "call_id": message.get("tool_call_id"),
                 "output": output}]  # fmt: skip
    if role == "assistant":
        item = _logged_item(content)
        if item is not None:
            return [item]
        items: list[dict[str, Any]] = (
            [{"role": "assistant", "content": _text(content)}] if content else []
        )
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            items.append({
                "type": "function_call", "call_id": call.get("id"),
                "name": function.get("name"), "arguments": function.get("arguments") or "",
            })  # fmt: skip
        return items
    if role in ("user", "system", "developer"):
        return [{"role": role, "content": _input_content(content)}]
    return []


def _logged_item(content: Any) -> dict[str, Any] | None:
    """An input item the ingest kept as JSON text (a non-message item of the logged
    ``input``), or ``None`` when ``content`` is not one."""
    if not isinstance(content, str) or not content.startswith("{"):
        return None
    try:
        item = json.loads(content)
    except json.JSONDecodeError:
        return None
    if isinstance(item, dict) and isinstance(item.get("type"), str) and item["type"] != "message":
        return item
    return None


def _text(content: Any) -> str:
    """An assistant message's text (Responses ``output_text`` parts joined)."""
    from levers_cli.text.content import content_text

    return content_text(content)


def _input_content(content: Any) -> Any:
    """User / system content as Responses takes it: a string, or input parts (Chat-style
    ``text`` and ``image_url`` parts rewritten as ``input_text`` / ``input_image``)."""
    if not isinstance(content, list):
        return content if isinstance(content, str) else _text(content)
    parts: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, dict):
            parts.append({"type": "input_text", "text": str(part)})
        elif part.get("type") == "text":
            parts.append({"type": "input_text", "text": part.get("text") or ""})
        elif part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            detail = (image.get("detail") if isinstance(image, dict) else None) or "auto"
            parts.append({"type": "input_image", "image_url": url, "detail": detail})
        else:
            parts.append(part)
    return parts
