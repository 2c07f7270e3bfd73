"""What an OpenTelemetry span says about an LLM call, in the conventions instrumentations use.

Conventions read (first present wins, in this order):

* OpenTelemetry GenAI semantic conventions (open-telemetry/semantic-conventions
  ``docs/gen-ai/gen-ai-spans.md``, now semantic-conventions-genai): ``gen_ai.operation.name``
  (``chat``, ``text_completion``, ``generate_content``), ``gen_ai.provider.name`` (formerly
  ``gen_ai.system``), ``gen_ai.request.model``, ``gen_ai.response.model``,
  ``gen_ai.usage.input_tokens`` ("SHOULD include all types of input tokens, including cached
  tokens"), ``gen_ai.usage.cache_read.input_tokens`` / ``cache_creation.input_tokens`` (parts
  of it), ``gen_ai.usage.output_tokens`` with ``gen_ai.usage.reasoning.output_tokens`` inside
  it, ``gen_ai.response.finish_reasons``; content in the ``gen_ai.input.messages`` /
  ``gen_ai.output.messages`` / ``gen_ai.system_instructions`` attributes (``{role, parts:
  [{type: text, content}]}``, ``non-normative/examples-llm-calls.md``), in a
  ``gen_ai.client.inference.operation.details`` event, or in the older per-message events
  ``gen_ai.system.message`` / ``gen_ai.user.message`` / ``gen_ai.assistant.message`` /
  ``gen_ai.tool.message`` / ``gen_ai.choice``.
* OpenLLMetry (traceloop/openllmetry ``semconv-ai``): ``gen_ai.prompt.N.role|content``,
  ``gen_ai.completion.N.content|finish_reason``, ``gen_ai.usage.prompt_tokens`` /
  ``completion_tokens``, ``llm.usage.*``, ``llm.request.type``; OpenLit's
  ``gen_ai.content.prompt`` / ``gen_ai.content.completion`` events.
* OpenInference (Arize-ai/openinference ``spec/semantic_conventions.md``):
  ``openinference.span.kind = LLM``, ``llm.model_name``, ``llm.provider``,
  ``llm.input_messages.N.message.role|content`` (nested lists too),
  ``llm.output_messages``, ``llm.token_count.prompt|completion`` with
  ``prompt_details.cache_read|cache_write`` and ``completion_details.reasoning``.
* Vercel AI SDK (``ai.prompt.messages``, ``ai.response.text``) and Logfire's OpenAI spans
  (``request_data`` / ``response_data``).

An instrumentation that reports cache or reasoning counts *outside* the totals (Anthropic's
``input_tokens`` excludes its cache buckets) is recognised by a part exceeding its total;
the part is then added.
"""

from __future__ import annotations

import json
import re
from typing import Any

from levers_cli.ingest.fields import optional_float, token_count
from levers_cli.ingest.formats.anthropic import STOP_REASONS
from levers_cli.ingest.formats.base import PartialCall
from levers_cli.ingest.formats.gemini import FINISH_REASONS as GEMINI_REASONS
from levers_cli.text.content import content_text

#: ``gen_ai.operation.name`` values that are one model call.
LLM_OPERATIONS = frozenset({"chat", "text_completion", "completion", "generate_content"})
#: OpenLLMetry ``llm.request.type`` values that are one model call.
_OPENLLMETRY_CALLS = frozenset({"chat", "completion"})
#: Provider names as instrumentations spell them → levers' provider ids.
_PROVIDERS = {
    "az.ai.openai": "azure",
    "azure.ai.openai": "azure",
    "azure_openai": "azure",
    "az.ai.inference": "azure",
    "aws.bedrock": "bedrock",
    "aws_bedrock": "bedrock",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "vertex_ai": "google",
    "vertexai": "google",
    "gemini": "google",
    "google_genai": "google",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
}
_EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_ROLE_LINE = re.compile(r"^(system|user|assistant|tool|developer): ", re.M)

Events = list[tuple[str, dict[str, Any]]]


def first(attributes: dict[str, Any], *keys: str) -> Any:
    """The value of the first key present with a value."""
    for key in keys:
        value = attributes.get(key)
        if value is not None and value != "":
            return value
    return None


def is_llm_span(attributes: dict[str, Any], events: Events, span: dict[str, Any]) -> bool:
    """True when a span is one model call (not an HTTP, database, agent, tool, chain or
    embedding span): the convention's own marker when it has one, else a model name next to
    token counts or message content."""
    kind = attributes.get("openinference.span.kind") or span.get("span_kind")
    if kind is not None:
        return str(kind).upper() == "LLM"
    operation = attributes.get("gen_ai.operation.name")
    if operation is not None:
        return str(operation) in LLM_OPERATIONS
    request_type = attributes.get("llm.request.type")
    if request_type is not None:
        return str(request_type) in _OPENLLMETRY_CALLS
    if attributes.get("traceloop.span.kind") is not None:
        return False
    if model_of(attributes) is None:
        return False
    return any(
        key.startswith(("gen_ai.usage.", "llm.usage.", "gen_ai.prompt", "gen_ai.input."))
        for key in attributes
    ) or any(name.startswith("gen_ai.") for name, _ in events)


def model_of(attributes: dict[str, Any]) -> str | None:
    """The model a span names: the response's model, else the request's."""
    value = first(
        attributes,
        "gen_ai.response.model",
        "gen_ai.request.model",
        "llm.response.model",
        "llm.request.model",
        "llm.model_name",
        "ai.model.id",
    )
    return str(value) if value is not None else None


def provider_of(attributes: dict[str, Any]) -> str | None:
    """levers' provider id for a span's provider attribute (``OpenAI`` → ``openai``,
    ``aws.bedrock`` → ``bedrock``, ``openai.chat`` (Vercel AI SDK) → ``openai``)."""
    value = first(
        attributes,
        "gen_ai.provider.name",
        "gen_ai.system",
        "llm.provider",
        "llm.system",
        "ai.model.provider",
    )
    if value is None:
        return None
    name = str(value).strip().lower()
    if name in _PROVIDERS:
        return _PROVIDERS[name]
    return name.split(".", 1)[0] if "." in name else name


def span_call(attributes: dict[str, Any], events: Events) -> PartialCall:
    """The partial call one LLM span describes (without its id, time and status).

    Raises:
        RecordError: a token count is negative or not a whole number.
    """
    details = _operation_details(events)
    lookup = {**details, **attributes}
    messages = input_messages(lookup, events)
    reply, finish = output_of(lookup, events)
    model = model_of(attributes)
    partial: PartialCall = {
        "provider": provider_of(attributes),
        "model": model,
        "messages": messages,
        "system_prompt": "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        or None,
        "query": next((m["content"] for m in reversed(messages) if m["role"] == "user"), ""),
        "response": reply,
        "finish_reason": _finish(
            finish or _first_item(attributes.get("gen_ai.response.finish_reasons"))
        ),
        "max_tokens": _max_tokens(attributes),
        "conversation_id": first(
            attributes, "gen_ai.conversation.id", "session.id", "langfuse.session.id"
        ),
        "metadata": _metadata(attributes),
    }
    partial.update(usage_of(attributes))
    cost = first(attributes, "gen_ai.usage.cost", "llm.usage.cost")
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        partial["logged_cost_usd"] = float(cost)
    return partial


def usage_of(attributes: dict[str, Any]) -> PartialCall:
    """Token columns from a span's usage attributes.

    Raises:
        RecordError: a count is negative or not a whole number.
    """

    def count(*keys: str) -> int | None:
        key = next((k for k in keys if attributes.get(k) not in (None, "")), keys[0])
        return token_count(attributes.get(key), field=key)

    total_in = count(
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.usage.prompt_tokens",
        "llm.token_count.prompt",
        "ai.usage.promptTokens",
    )
    total_out = count(
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.usage.completion_tokens",
        "llm.token_count.completion",
        "ai.usage.completionTokens",
    )
    read = (
        count(
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_read_input_tokens",
            "llm.token_count.prompt_details.cache_read",
        )
        or 0
    )
    write = (
        count(
            "gen_ai.usage.cache_creation.input_tokens",
            "gen_ai.usage.cache_creation_input_tokens",
            "llm.token_count.prompt_details.cache_write",
        )
        or 0
    )
    reasoning = (
        count(
            "gen_ai.usage.reasoning.output_tokens",
            "gen_ai.usage.reasoning_tokens",
            "llm.token_count.completion_details.reasoning",
        )
        or 0
    )
    if total_in is not None and read + write > total_in:  # counted outside the total
        total_in += read + write
    if total_out is not None and reasoning > total_out:
        total_out += reasoning
    return {
        "input_tokens": total_in,
        "cache_read_tokens": read,
        "cache_write_tokens": write,
        "output_tokens": total_out,
        "reasoning_tokens": reasoning,
    }


def input_messages(attributes: dict[str, Any], events: Events) -> list[dict[str, Any]]:
    """The request's messages, ``[{role, content}]`` with text content, from whichever
    convention the span follows."""
    messages: list[dict[str, Any]] = []
    system = _json(attributes.get("gen_ai.system_instructions"))
    if system:
        messages.append({"role": "system", "content": parts_text(system)})
    semconv = _json(attributes.get("gen_ai.input.messages"))
    if isinstance(semconv, list) and semconv:
        return messages + [_message(m) for m in semconv if isinstance(m, dict)]
    for prefix in ("gen_ai.prompt", "llm.prompts", "llm.input_messages"):
        indexed = indexed_items(attributes, prefix)
        if indexed:
            return messages + [_message(m) for m in indexed]
    from_events = [
        {"role": _EVENT_ROLES[name], "content": _event_content(values)}
        for name, values in events
        if name in _EVENT_ROLES
    ]
    if from_events:
        return messages + from_events
    for name, values in events:
        if name == "gen_ai.content.prompt" and isinstance(values.get("gen_ai.prompt"), str):
            return messages + role_lines(values["gen_ai.prompt"])
    for key, field in (("ai.prompt.messages", None), ("request_data", "messages")):
        value = _json(attributes.get(key))
        if field is not None and isinstance(value, dict):
            value = value.get(field)
        if isinstance(value, list) and value:
            return messages + [_message(m) for m in value if isinstance(m, dict)]
    text = first(attributes, "input.value", "ai.prompt")
    if isinstance(text, str) and text:
        messages.append({"role": "user", "content": text})
    return messages


def output_of(attributes: dict[str, Any], events: Events) -> tuple[str, str | None]:
    """``(reply text, finish reason)`` of the span's response."""
    semconv = _json(attributes.get("gen_ai.output.messages"))
    if isinstance(semconv, list) and semconv and isinstance(semconv[0], dict):
        return _message(semconv[0])["content"], semconv[0].get("finish_reason")
    for prefix in ("gen_ai.completion", "llm.completions", "llm.output_messages"):
        indexed = indexed_items(attributes, prefix)
        if indexed:
            return _message(indexed[0])["content"], indexed[0].get("finish_reason")
    for name, values in events:
        if name == "gen_ai.choice":
            body = _json(values.get("message")) or _json(values.get("gen_ai.event.content"))
            if isinstance(body, dict) and isinstance(body.get("message"), dict):
                body = body["message"]
            text = _message(body)["content"] if isinstance(body, dict) else str(body or "")
            return text, values.get("finish_reason")
        if name == "gen_ai.content.completion" and values.get("gen_ai.completion") is not None:
            return str(values["gen_ai.completion"]), None
    response = _json(attributes.get("response_data"))
    if isinstance(response, dict) and isinstance(response.get("message"), dict):
        return _message(response["message"])["content"], None
    text = first(attributes, "ai.response.text", "output.value")
    return (str(text) if text is not None else ""), None


def indexed_items(attributes: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Items spelled as ``prefix.N.field`` attributes (``gen_ai.prompt.0.content``) or as a
    list under ``prefix`` (nested OpenInference spans), in index order, each as a mapping of
    its fields with ``message.`` stripped (``{"role": …, "content": …}``)."""
    nested = attributes.get(prefix)
    if isinstance(nested, list):
        return [_strip_message(item) for item in nested if isinstance(item, dict)]
    items: dict[int, dict[str, Any]] = {}
    start = prefix + "."
    for key, value in attributes.items():
        if not key.startswith(start):
            continue
        index, _, field = key[len(start) :].partition(".")
        if index.isdigit() and field:
            items.setdefault(int(index), {})[field] = value
    return [_strip_message(items[i]) for i in sorted(items)]


def _strip_message(item: dict[str, Any]) -> dict[str, Any]:
    """OpenInference message fields without their ``message.`` prefix; its
    ``contents.N.message_content.text`` parts joined into ``content``."""
    out: dict[str, Any] = {}
    parts: dict[int, str] = {}
    for key, value in item.items():
        name = key.removeprefix("message.")
        match = re.fullmatch(r"contents\.(\d+)\.message_content\.text", name)
        if match:
            parts[int(match.group(1))] = str(value)
        else:
            out[name] = value
    if parts and out.get("content") in (None, ""):
        out["content"] = "\n".join(parts[i] for i in sorted(parts))
    return out


def _message(message: dict[str, Any]) -> dict[str, Any]:
    """A message in any of the conventions as ``{role, content}`` with text content."""
    role = str(message.get("role") or "user")
    if "parts" in message:
        text = parts_text(message["parts"])
    else:
        content = message.get("content")
        decoded = _json(content)  # OpenLLMetry logs content-part lists as JSON text
        if isinstance(decoded, list) and all(isinstance(p, dict) and "type" in p for p in decoded):
            content = decoded
        text = content_text(content)
        calls = message.get("tool_calls")
        if calls:
            text = (text + "\n" if text else "") + json.dumps(calls, ensure_ascii=False)
    return {"role": role, "content": text}


def parts_text(parts: Any) -> str:
    """Text of GenAI semconv message parts (``{type: text, content}``); tool calls and
    their responses as JSON, reasoning left out, other parts as ``[type]``."""
    if isinstance(parts, str):
        return parts
    texts = [_semconv_part(part) for part in (parts if isinstance(parts, list) else [parts])]
    return "\n".join(text for text in texts if text)


def _semconv_part(part: Any) -> str:
    if not isinstance(part, dict):
        return part if isinstance(part, str) else ""
    kind = part.get("type", "text")
    if kind == "text":
        return str(part.get("content") or part.get("text") or "")
    if kind in ("tool_call", "tool_call_response"):
        return json.dumps(part, ensure_ascii=False, sort_keys=True)
    return "" if kind == "reasoning" else f"[{kind}]"


def role_lines(text: str) -> list[dict[str, Any]]:
    """OpenLit's prompt text (``"user: …\\nassistant: …"``) as messages; text without role
    prefixes is one user message."""
    marks = list(_ROLE_LINE.finditer(text))
    if not marks or marks[0].start() != 0:
        return [{"role": "user", "content": text}]
    messages = []
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following else len(text)
        messages.append({"role": mark.group(1), "content": text[mark.end() : end].strip()})
    return messages


def _operation_details(events: Events) -> dict[str, Any]:
    for name, values in events:
        if name == "gen_ai.client.inference.operation.details":
            return values
    return {}


def _event_content(values: dict[str, Any]) -> str:
    body = _json(values.get("gen_ai.event.content"))
    if isinstance(body, dict):
        return _message(body)["content"]
    return content_text(_json(values.get("content")))


def _json(value: Any) -> Any:
    """A JSON-encoded attribute decoded (instrumentations store structures as JSON text)."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _first_item(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _finish(reason: Any) -> str | None:
    if reason is None or reason == "":
        return None
    name = str(reason)
    return STOP_REASONS.get(name) or GEMINI_REASONS.get(name) or name


def _max_tokens(attributes: dict[str, Any]) -> int | None:
    value = first(attributes, "gen_ai.request.max_tokens", "llm.request.max_tokens")
    if value is None:
        params = _json(attributes.get("llm.invocation_parameters"))
        if isinstance(params, dict):
            value = params.get("max_tokens", params.get("max_completion_tokens"))
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return None  # an instrumentation's "not set" (-1)
    return token_count(value, field="gen_ai.request.max_tokens")


def _metadata(attributes: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    params = {
        key.removeprefix("gen_ai.request."): value
        for key, value in attributes.items()
        if key.startswith("gen_ai.request.") and key not in ("gen_ai.request.model",)
    }
    if params:
        metadata["params"] = params
    for key, name in (
        ("gen_ai.response.id", "response_id"),
        ("gen_ai.operation.name", "operation"),
        ("user.id", "user"),
        ("enduser.id", "user"),
        ("langfuse.user.id", "user"),
        ("gen_ai.agent.name", "agent"),
    ):
        if attributes.get(key) not in (None, "") and name not in metadata:
            metadata[name] = attributes[key]
    latency = optional_float(attributes.get("gen_ai.server.time_to_first_token"), field="ttft")
    if latency is not None:
        metadata["time_to_first_token_s"] = latency
    return metadata
