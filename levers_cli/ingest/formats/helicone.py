"""Helicone request exports (``helicone``): JSON/JSONL/CSV from ``npx @helicone/export`` or the
``POST /v1/request/query-clickhouse`` REST API.

Format: docs.helicone.ai/tools/export and docs.helicone.ai/rest/request/post-v1requestquery-
clickhouse; the record is Helicone's ``HeliconeRequest`` (``packages/llm-mapper/types.ts``)
as selected by ``getRequestsClickhouse`` (``valhalla/jawn/src/lib/stores/request/request.ts``):
``request_id``, ``response_id``, ``request_created_at``, ``response_status``,
``request_body``/``response_body`` (the provider's own JSON; the export tool fills them from
the signed body URL with ``--include-body``), ``model``/``request_model``, ``provider``,
``delay_ms`` (``latency`` in the CSV export, ms), ``prompt_tokens``,
``prompt_cache_read_tokens``, ``prompt_cache_write_tokens``, ``completion_tokens``,
``reasoning_tokens``, ``cost`` (USD; ``costUSD`` in older exports), ``request_user_id``,
``request_properties``/``properties`` (``Helicone-*`` headers and custom properties),
``cache_reference_id``, ``feedback_rating``, ``scores``.

Tokens: when the response body carries the provider's ``usage`` it is normalized exactly like
an ``openai-chat`` or ``anthropic`` response. Otherwise Helicone's columns are used, and they
are *not* OpenAI-style: Helicone stores ``prompt_tokens`` without the cached tokens —
``ModelUsage.input`` "Excluding cached or audio tokens" (``packages/cost/usage/types.ts``);
its OpenAI processors subtract ``cached_tokens`` from ``prompt_tokens`` and its Anthropic
processor stores ``input_tokens``, which excludes both cache buckets
(``valhalla/jawn/src/lib/shared/bodyProcessors/openaiBodyProcessor.ts``,
``anthropicBodyProcessor.ts``) — and ``completion_tokens`` without reasoning ("reasoning/
thinking tokens are now tracked separately and NOT included in completion tokens",
``getCompletionTokens`` in ``valhalla/jawn/src/lib/handlers/HandlerContext.ts``). So
input = prompt + cache read + cache write, output = completion + reasoning. Audio token
columns are kept in metadata only (Helicone's own handling of them changed between releases).
"""

from __future__ import annotations

import json
from typing import Any

from levers_cli.errors import RecordError
from levers_cli.ingest.fields import optional_float, parse_ts, token_count
from levers_cli.ingest.formats.anthropic import anthropic_usage
from levers_cli.ingest.formats.base import MappedAdapter, PartialCall, Record
from levers_cli.ingest.formats.litellm import chat_reply
from levers_cli.ingest.formats.openai_chat import openai_usage
from levers_cli.ingest.formats.pairs import last_user_text
from levers_cli.text.content import content_text

#: Helicone's ``cache_reference_id`` of a request that was not served from its cache.
NO_CACHE_REFERENCE = "00000000-0000-0000-0000-000000000000"
#: Request fields that are not generation settings.
_NOT_PARAMS = {"messages", "model", "metadata", "user", "system", "stream", "tools"}


class HeliconeAdapter(MappedAdapter):
    """One Helicone request (request + response + Helicone's metrics) per record."""

    name = "helicone"
    description = "Helicone request export (npx @helicone/export JSON/JSONL/CSV, REST query)"
    example = (
        '{"request_id": "…", "request_created_at": "2025-03-01T10:00:00Z", "model": "gpt-4o", '
        '"request_body": {"messages": [...]}, "response_body": {...}, "prompt_tokens": 70, '
        '"prompt_cache_read_tokens": 30, "completion_tokens": 20, "cost": 0.0004, "delay_ms": 812}'
    )

    def sniff(self, record: Record) -> bool:
        """True for a record with ``request_created_at`` and a request or response id."""
        return "request_created_at" in record and (
            "request_id" in record or "response_id" in record
        )

    def normalize(self, record: Record) -> PartialCall:
        """Normalize one Helicone request.

        Raises:
            RecordError: a body that is not JSON, or a count, cost, latency or timestamp of
                the wrong type.
        """
        request = _body(record.get("request_body"), "request_body")
        response = _body(record.get("response_body"), "response_body")
        provider = str(record.get("provider") or "").strip().lower() or None
        messages = request["messages"] if isinstance(request.get("messages"), list) else []
        system = request.get("system")
        chat = ([{"role": "system", "content": system}] if system else []) + messages
        system_parts = [
            content_text(m.get("content"))
            for m in chat
            if isinstance(m, dict) and m.get("role") in ("system", "developer")
        ]
        latency = record.get("delay_ms", record.get("latency"))
        partial: PartialCall = {
            "call_id": record.get("request_id") or record.get("response_id") or None,
            "provider": provider,
            "model": record.get("model")
            or record.get("request_model")
            or response.get("model")
            or request.get("model"),
            "ts": parse_ts(record.get("request_created_at"), field="request_created_at"),
            "latency_ms": optional_float(latency, field="delay_ms"),
            "messages": chat,
            "system_prompt": "\n\n".join(system_parts) if system_parts else None,
            "query": last_user_text([m for m in messages if isinstance(m, dict)]),
            "max_tokens": token_count(
                request.get("max_completion_tokens", request.get("max_tokens")),
                field="request_body.max_tokens",
            ),
            "logged_cost_usd": optional_float(
                record.get("cost", record.get("costUSD")), field="cost"
            ),
            "metadata": _metadata(record, request),
        }
        status = optional_float(record.get("response_status"), field="response_status")
        status = 200 if status is None else int(status)  # Helicone logs -1 etc. for no reply
        error = response.get("error")
        if not 200 <= status < 300 or error:
            partial["status"] = "error"
            message = error.get("message") if isinstance(error, dict) else error
            partial["error"] = str(message or f"HTTP status {status}")
        else:
            partial["status"] = "ok"
            partial["response"], partial["finish_reason"] = chat_reply(response)
        partial.update(_tokens(record, response, provider))
        partial["gateway_cache_hit"] = bool(partial["metadata"].get("helicone_cache_hit"))
        return partial


def _tokens(record: Record, response: dict[str, Any], provider: str | None) -> PartialCall:
    """Token columns: the provider's usage in the response body when present, else
    Helicone's columns (prompt and completion exclusive of cache and reasoning)."""
    usage = response.get("usage")
    if isinstance(usage, dict) and "prompt_tokens" in usage:
        return openai_usage(usage)
    anthropic_keys = ("cache_read_input_tokens", "cache_creation_input_tokens")
    if (
        isinstance(usage, dict)
        and "input_tokens" in usage
        and (provider == "anthropic" or any(key in usage for key in anthropic_keys))
    ):
        return anthropic_usage(usage)
    prompt = token_count(record.get("prompt_tokens"), field="prompt_tokens")
    completion = token_count(record.get("completion_tokens"), field="completion_tokens")
    read = token_count(record.get("prompt_cache_read_tokens"), field="prompt_cache_read_tokens")
    write = token_count(record.get("prompt_cache_write_tokens"), field="prompt_cache_write_tokens")
    reasoning = token_count(record.get("reasoning_tokens"), field="reasoning_tokens")
    return {
        "input_tokens": None if prompt is None else prompt + (read or 0) + (write or 0),
        "cache_read_tokens": read or 0,
        "cache_write_tokens": write or 0,
        "output_tokens": None if completion is None else completion + (reasoning or 0),
        "reasoning_tokens": reasoning or 0,
    }


def _metadata(record: Record, request: dict[str, Any]) -> dict[str, Any]:
    """User, Helicone and custom properties, feedback, scores, cache hits, settings."""
    out: dict[str, Any] = {}
    properties = _body(record.get("request_properties"), "request_properties")
    properties = properties or _body(record.get("properties"), "properties")
    for key, value in properties.items():  # "Helicone-Session-Id" → "session_id"
        if key.startswith("Helicone-"):
            key = key.removeprefix("Helicone-").lower().replace("-", "_")
        out[key] = value
    user = record.get("request_user_id") or record.get("helicone_user")
    if user:
        out["user"] = user
    for key in ("feedback_rating", "scores", "prompt_id", "country_code", "target_url"):
        if record.get(key) not in (None, "", {}, []):
            out[key] = record[key]
    for key in ("prompt_audio_tokens", "completion_audio_tokens"):
        if record.get(key):
            out[key] = record[key]
    reference = record.get("cache_reference_id")
    if reference and reference != NO_CACHE_REFERENCE:
        out["helicone_cache_hit"] = True  # served from Helicone's cache, not the provider
    params = {k: v for k, v in request.items() if k not in _NOT_PARAMS}
    if params:
        out["params"] = params
    return out


def _body(value: Any, field: str) -> dict[str, Any]:
    """A JSON body or map column as a dict (``{}`` when absent, not an object, or only
    Helicone's "fetching body from signed_url" placeholder)."""
    if isinstance(value, str) and value.strip():
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise RecordError(f"not JSON: {value[:60]!r}", field=field) from None
    if not isinstance(value, dict) or set(value) == {"helicone_message"}:
        return {}
    return value
