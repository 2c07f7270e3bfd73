"""LiteLLM logs: StandardLoggingPayload records (``litellm-payload``) and LiteLLM_SpendLogs
rows (``litellm-spendlogs``).

Formats: the StandardLoggingPayload every logging callback receives
(docs.litellm.ai/docs/proxy/logging_spec; ``litellm/types/utils.py`` in BerriAI/litellm), and
the proxy's spend table exported from its database, a row being what ``get_logging_payload``
(``litellm/proxy/spend_tracking/spend_tracking_utils.py``) writes: ``metadata`` a JSON string
with ``usage_object``, ``additional_usage_values`` and ``error_information``; ``messages`` and
``response`` ``"{}"`` unless prompts are stored (the request is then in
``proxy_server_request``). A row without text still counts, priced from its token fields.

Usage is OpenAI-shaped (docs.litellm.ai/docs/completion/prompt_caching): ``prompt_tokens``
includes ``prompt_tokens_details.cached_tokens``, ``completion_tokens`` includes
``reasoning_tokens``. For Anthropic, ``calculate_usage`` (``litellm/llms/anthropic/chat/
transformation.py``) now sets ``prompt_tokens = input + cache_creation_input_tokens +
cache_read_input_tokens`` (reads also in ``cached_tokens``, writes in ``prompt_tokens_details.
cache_creation_tokens``; v1.80.11 in BerriAI/litellm#11364: 98,805 = 10 + 32,435 + 66,360),
but some 2025 releases added only the reads and mid-2024 ones neither (BerriAI/litellm#5285).
So input = ``prompt_tokens`` when it can hold both buckets, else the bucket(s) it cannot hold
are added (``metadata.prompt_tokens_logged`` keeps the logged figure). An Anthropic-native
usage (``input_tokens``: the /v1/messages route) is read as Anthropic's. LiteLLM's own cost
(``response_cost``/``spend``) goes to ``logged_cost_usd``.
"""

from __future__ import annotations

import json
from typing import Any

from levers_cli.errors import RecordError
from levers_cli.ingest.fields import optional_float, parse_ts, token_count
from levers_cli.ingest.formats.anthropic import STOP_REASONS, anthropic_usage, reply_text
from levers_cli.ingest.formats.base import MappedAdapter, PartialCall, Record
from levers_cli.ingest.formats.pairs import last_user_text
from levers_cli.ingest.mapping import gateway_hit
from levers_cli.text.content import content_text

#: Fields copied into ``calls.metadata`` when set (record level and LiteLLM ``metadata``).
_META_KEYS = (
    "call_type", "trace_id", "session_id", "end_user", "user", "team_id", "organization_id",
    "model_group", "model_id", "user_api_key_alias", "user_api_key_team_alias",
    "user_api_key_user_id", "user_api_key_end_user_id", "user_api_key_org_id",
)  # fmt: skip
#: Request fields that are not generation settings.
_NOT_PARAMS = {"messages", "model", "metadata", "user", "stream", "input", "prompt"}


class LiteLLMPayloadAdapter(MappedAdapter):
    """One StandardLoggingPayload per record."""

    name = "litellm-payload"
    description = "LiteLLM StandardLoggingPayload records (logging callbacks, bucket logs)"
    example = (
        '{"id": "chatcmpl-…", "call_type": "acompletion", "model": "gpt-4o", "messages": [...], '
        '"response": {"choices": [...], "usage": {...}}, "prompt_tokens": 10, '
        '"completion_tokens": 20, "response_cost": 0.000225, "startTime": 1737710446.8}'
    )

    def sniff(self, record: Record) -> bool:
        """True for a record with ``response_cost``, ``call_type`` and payload timing."""
        return (
            "response_cost" in record
            and "call_type" in record
            and ("startTime" in record or "model_map_information" in record)
        )

    def normalize(self, record: Record) -> PartialCall:
        """Normalize one payload.

        Raises:
            RecordError: a token count, cost or timestamp of the wrong type.
        """
        meta = _dict(_json(record.get("metadata"), "metadata"))
        response = _json(record.get("response"), "response")
        usage = _dict(response).get("usage") or meta.get("usage_object")
        info = _dict(record.get("error_information"))
        return build_call(
            record,
            meta,
            messages=_json(record.get("messages"), "messages"),
            response=response,
            usage=_dict(usage),
            params=_dict(_json(record.get("model_parameters"), "model_parameters")),
            cost=("response_cost", record.get("response_cost")),
            failed=record.get("status") == "failure",
            error=record.get("error_str") or info.get("error_message"),
        )


class LiteLLMSpendLogsAdapter(MappedAdapter):
    """One LiteLLM_SpendLogs row per record (JSON columns as objects or JSON strings)."""

    name = "litellm-spendlogs"
    description = "LiteLLM proxy LiteLLM_SpendLogs rows (DB export: JSON, JSONL, CSV, Parquet)"
    example = (
        "request_id,call_type,startTime,endTime,model,custom_llm_provider,spend,"
        "prompt_tokens,completion_tokens,metadata,messages,response,status"
    )

    def sniff(self, record: Record) -> bool:
        """True for a row with ``request_id``, ``spend`` and ``startTime``."""
        return "request_id" in record and "spend" in record and "startTime" in record

    def normalize(self, record: Record) -> PartialCall:
        """Normalize one row.

        Raises:
            RecordError: a JSON column that is not JSON, or a count, cost or timestamp of
                the wrong type.
        """
        meta = _dict(_json(record.get("metadata"), "metadata"))
        request = _dict(_json(record.get("proxy_server_request"), "proxy_server_request"))
        messages = _json(record.get("messages"), "messages")
        if not messages:
            messages = request.get("messages") or request.get("input") or request.get("prompt")
        usage = meta.get("usage_object") or meta.get("additional_usage_values")
        status = record.get("status") or meta.get("status")
        partial = build_call(
            record,
            meta,
            messages=messages,
            response=_json(record.get("response"), "response"),
            usage=_dict(usage),
            params={k: v for k, v in request.items() if k not in _NOT_PARAMS},
            cost=("spend", record.get("spend")),
            failed=status == "failure",
            error=_dict(meta.get("error_information")).get("error_message"),
        )
        partial["call_id"] = record.get("request_id") or None
        tags = _json(record.get("request_tags"), "request_tags")
        if tags:
            partial["metadata"]["tags"] = tags
        return partial


def build_call(
    record: Record,
    meta: dict[str, Any],
    *,
    messages: Any,
    response: Any,
    usage: dict[str, Any],
    params: dict[str, Any],
    cost: tuple[str, Any],
    failed: bool,
    error: Any,
) -> PartialCall:
    """The partial call of one LiteLLM record, from its parts (shared by both formats).

    Raises:
        RecordError: a token count, cost or timestamp of the wrong type.
    """
    provider = str(record.get("custom_llm_provider") or "").strip().lower() or None
    model = str(record.get("model") or "") or None
    if model and provider and model.lower().startswith(provider + "/"):
        model = model[len(provider) + 1 :]
    chat = _chat_messages(messages)
    system = [
        content_text(m.get("content")) for m in chat if m.get("role") in ("system", "developer")
    ]
    start = parse_ts(record.get("startTime"), field="startTime")
    end = parse_ts(record.get("endTime"), field="endTime")
    partial: PartialCall = {
        "call_id": record.get("id") or None,
        "provider": provider,
        "model": model,
        "ts": start,
        "latency_ms": (end - start).total_seconds() * 1000 if start and end else None,
        "messages": chat,
        "system_prompt": "\n\n".join(system) if system else None,
        "query": last_user_text(chat),
        "max_tokens": token_count(
            params.get("max_completion_tokens", params.get("max_tokens")), field="max_tokens"
        ),
        "logged_cost_usd": optional_float(cost[1], field=cost[0]),
        "metadata": _metadata(record, meta, params),
        # served from LiteLLM's own cache: no provider call; the token columns replay the
        # original call's (docs.litellm.ai/docs/proxy/caching, SpendLogs ``cache_hit``)
        "gateway_cache_hit": gateway_hit(record.get("cache_hit"), "cache_hit") or False,
    }
    if failed:
        partial["status"] = "error"
        partial["error"] = str(error or "failure (no error message logged)")
    else:
        partial["status"] = "ok"
        partial["response"], partial["finish_reason"] = chat_reply(response)
    native = "input_tokens" in usage and "input_tokens_details" not in usage
    if native and "prompt_tokens" not in usage:  # an Anthropic usage object, as sent
        partial.update(anthropic_usage(usage))
    else:
        prompt = record.get("prompt_tokens", usage.get("prompt_tokens", usage.get("input_tokens")))
        done = record.get("completion_tokens", usage.get("completion_tokens"))
        partial.update(litellm_tokens(prompt, done, usage, partial["metadata"]))
    return partial


def litellm_tokens(
    prompt: Any, completion: Any, usage: dict[str, Any], metadata: dict[str, Any]
) -> PartialCall:
    """Token columns from LiteLLM's OpenAI-shaped counts (see the module docstring).

    Raises:
        RecordError: a count is negative or not a number, or reasoning exceeds output.
    """
    total = token_count(prompt, field="prompt_tokens")
    output = token_count(completion, field="completion_tokens")
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    done = usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
    read = token_count(
        _first(usage.get("cache_read_input_tokens"), details.get("cached_tokens")),
        field="usage.cache_read_input_tokens",
    )
    write = token_count(
        _first(usage.get("cache_creation_input_tokens"), details.get("cache_creation_tokens")),
        field="usage.cache_creation_input_tokens",
    )
    reasoning = token_count(done.get("reasoning_tokens"), field="usage.reasoning_tokens")
    audio_in = token_count(
        details.get("audio_tokens"), field="usage.prompt_tokens_details.audio_tokens"
    )
    audio_out = token_count(
        done.get("audio_tokens"), field="usage.completion_tokens_details.audio_tokens"
    )
    read, write = read or 0, write or 0
    if total is not None and total < read + write:
        metadata["prompt_tokens_logged"] = total
        total += write + (read if total < read else 0)
    if output is not None and reasoning is not None and reasoning > output:
        raise RecordError(
            f"reasoning_tokens {reasoning} exceed completion_tokens {output}",
            field="usage.completion_tokens_details.reasoning_tokens",
        )
    return {
        "input_tokens": total,
        "cache_read_tokens": read,
        "cache_write_tokens": write,
        "output_tokens": output,
        "reasoning_tokens": reasoning or 0,
        "input_audio_tokens": audio_in or 0,
        "output_audio_tokens": audio_out or 0,
    }


def chat_reply(response: Any) -> tuple[str, str | None]:
    """``(text, finish_reason)`` of a logged response: Chat Completions (``choices``), text
    completions, Responses API ``output``, an Anthropic message, or a plain string."""
    if isinstance(response, str):
        return response, None
    if not isinstance(response, dict):
        return "", None
    if response.get("type") == "message":
        stop = response.get("stop_reason")
        return reply_text(response.get("content") or []), STOP_REASONS.get(stop or "", stop)
    choices = response.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        first = choices[0]
        message = first.get("message") or {}
        text = content_text(message.get("content")) or str(first.get("text") or "")
        calls = message.get("tool_calls")
        if calls:
            text = (text + "\n" if text else "") + json.dumps(calls, ensure_ascii=False)
        return text, first.get("finish_reason")
    parts = [
        part.get("text", "")
        for item in response.get("output") or []
        if isinstance(item, dict)
        for part in item.get("content") or []
        if isinstance(part, dict) and part.get("type") == "output_text"
    ]
    return "\n".join(parts), None


def _metadata(record: Record, meta: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """``calls.metadata``: who/what fields, user tags, generation settings, cache hits."""
    out: dict[str, Any] = {}
    for source in (meta, record):
        for key in _META_KEYS:
            if source.get(key) not in (None, "", [], {}):
                out[key] = source[key]
    for key in ("spend_logs_metadata", "requester_metadata"):
        if isinstance(meta.get(key), dict):
            out.update(meta[key])
    if record.get("request_tags") and isinstance(record["request_tags"], list):
        out["tags"] = record["request_tags"]
    if str(record.get("cache_hit")).lower() == "true":
        out["litellm_cache_hit"] = True  # served from LiteLLM's own cache
    if params:
        out["params"] = params
    return out


def _chat_messages(value: Any) -> list[dict[str, Any]]:
    """The request's messages as ``{role, content}`` dicts (a prompt string or a list of
    strings becomes user messages; anything else, e.g. SpendLogs' ``{}``, none)."""
    if isinstance(value, str) and value.strip():
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        return []
    return [m if isinstance(m, dict) else {"role": "user", "content": str(m)} for m in value]


def _json(value: Any, field: str) -> Any:
    """A JSON column's value: objects pass through, JSON strings are parsed.

    Raises:
        RecordError: a string that is not JSON.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text or text == "None":
        return None
    if text[0] not in "[{":
        return value  # a plain string (a text prompt or reply)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise RecordError(f"not JSON: {text[:60]!r}", field=field) from None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)
