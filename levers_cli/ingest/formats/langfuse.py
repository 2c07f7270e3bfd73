"""Langfuse observations: public-API exports (camelCase) and blob-storage exports (snake_case).

Sources (langfuse/langfuse-docs):

- ``content/docs/api-and-data-platform/features/observations-api.mdx`` — the v2
  ``GET /api/public/v2/observations`` row (``id``, ``traceId``, ``type``, ``startTime``,
  ``endTime``, ``providedModelName``, ``modelParameters``, ``usageDetails``, ``costDetails``,
  ``totalCost``, ``sessionId``, ``level``, ``statusMessage``; ``input``/``output`` as strings);
  the v1 API (fern ``observations.yml``) names the model ``model`` and the cost
  ``calculatedTotalCost``, and ``GET /api/public/traces/{id}`` nests ``observations`` in a trace.
- ``content/docs/api-and-data-platform/features/blob-storage-export-fields.mdx`` — the
  blob-storage columns (``trace_id``, ``start_time`` as ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC,
  ``provided_model_name``, ``usage_details``, ``cost_details``, ``total_cost``, ``session_id``;
  JSON-encoded strings in CSV); Parquet rows arrive through the same adapter.
- ``content/docs/observability/features/token-and-cost-tracking.mdx`` — "usage types are
  mutually exclusive buckets": ``input`` excludes every ``input_*`` key (``input_cached_tokens``,
  ``cache_read_input_tokens``, ``input_cache_creation_5m``, …) and ``output`` every ``output_*``
  key (``output_reasoning_tokens``); ``total`` is their sum. So levers' ``input_tokens`` (cached
  included) is the sum of the input buckets and ``output_tokens`` that of the output buckets
  (key names as in langfuse/langfuse ``worker/src/constants/default-model-prices.json``).

- langfuse/langfuse ``web/src/features/public-api/types/observations.ts`` — the v1
  ``GET /api/public/observations`` row (``APIObservation``): ``traceId`` is nullable, the
  types are GENERATION, SPAN, EVENT, AGENT, TOOL, CHAIN, RETRIEVER, EVALUATOR, EMBEDDING and
  GUARDRAIL, and ``userId``/``sessionId`` are left out of it.

Only ``GENERATION`` observations are model calls. Every export holds the others too (SPAN,
EVENT, …: the structure of a trace), so a standalone one is *skipped* with its type as the
reason (:class:`~levers_cli.ingest.formats.base.SkipRecord`), not rejected; inside a trace or an API
page (``{"data": [...]}``) they are part of the record, which counts once per GENERATION (a
container without any is skipped).

Conversations: Langfuse's ``sessionId`` groups the traces of one chat. Without one the
conversation is left to levers' linking by resent messages
(:func:`levers_cli.enrich.conversations.link_conversations`): Langfuse's OpenAI integration
logs every call as a trace of its own, so a trace is no conversation (it stays in
``metadata.trace_id``).
"""

from __future__ import annotations

import json
from typing import Any

from levers_cli.errors import RecordError
from levers_cli.ingest.fields import optional_float, parse_ts, token_count
from levers_cli.ingest.formats.base import MappedAdapter, PartialCall, Record, SkipRecord
from levers_cli.ingest.formats.pairs import last_user_text
from levers_cli.text.content import content_text

_PARAM_CAPS = ("max_tokens", "max_completion_tokens", "max_output_tokens", "maxTokens")
#: metadata key ← the observation's field names (camelCase API, snake_case export).
_EXTRAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("trace_id", ("traceId", "trace_id")),
    ("observation_name", ("name",)),
    ("parent_observation_id", ("parentObservationId", "parent_observation_id")),
    ("trace_name", ("traceName", "trace_name")),
    ("user_id", ("userId", "user_id")),
    ("tags", ("tags",)),
    ("environment", ("environment",)),
    ("release", ("release",)),
    ("prompt_name", ("promptName", "prompt_name")),
    ("prompt_version", ("promptVersion", "prompt_version")),
)


def _get(record: Record, *names: str) -> Any:
    """The first of ``names`` present in ``record`` with a value ('' counts as absent)."""
    for name in names:
        value = record.get(name)
        if value is not None and value != "":
            return value
    return None


def _as_dict(value: Any) -> dict[str, Any]:
    """A dict from a dict, a JSON object string (CSV) or Parquet map pairs; else ``{}``."""
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    if isinstance(value, list):  # pyarrow MapArray.to_pylist(): [(key, value), ...]
        pairs = [tuple(p) for p in value if isinstance(p, list | tuple) and len(p) == 2]
        value = dict(pairs) if len(pairs) == len(value) else {}
    return value if isinstance(value, dict) else {}


#: Observation types of Langfuse's public API (``ObservationType`` in observations.ts).
_TYPES = frozenset(
    ("GENERATION", "SPAN", "EVENT", "AGENT", "TOOL", "CHAIN", "RETRIEVER", "EVALUATOR",
     "EMBEDDING", "GUARDRAIL")
)  # fmt: skip


def _is_observation(record: Record) -> bool:
    """An observation row: an id, a start time and a type, with a trace id or (the v1 API's
    ``traceId`` may be null) a type Langfuse knows."""
    kind = record.get("type")
    return (
        "id" in record
        and isinstance(kind, str)
        and ("startTime" in record or "start_time" in record)
        and (_get(record, "traceId", "trace_id") is not None or kind.upper() in _TYPES)
    )


def _is_trace(record: Record) -> bool:
    return isinstance(record.get("observations"), list) and "timestamp" in record


def _bucket(key: str) -> str | None:
    """Which levers bucket a Langfuse usage key counts in (``None``: not a token count)."""
    if key == "input_cached_tokens" or "cache_read" in key:
        return "read"
    if "cache_creation" in key or "cache_write" in key:
        return "write"
    if "reasoning" in key:
        return "reasoning"
    if key in ("input", "input_tokens", "prompt_tokens") or key.startswith("input_"):
        return "input"  # prompt_/completion_tokens: OpenAI usage stored flat (extra keys)
    if key in ("output", "output_tokens", "completion_tokens") or key.startswith("output_"):
        return "output"
    return None


def langfuse_usage(details: dict[str, Any], metadata: dict[str, Any]) -> PartialCall:
    """Normalize Langfuse ``usage_details`` into ``calls`` token columns.

    The buckets are exclusive (see the module docstring), so input = every input bucket
    (cache reads and writes included) and output = every output bucket (reasoning included).
    When the logged ``total`` shows that an SDK broke the contract — it equals the bucket sum
    less the cached tokens (``input`` already held them) or less the reasoning tokens — that
    single reading is taken instead and ``metadata["usage_inclusive"]`` says which. Keys that
    are no token bucket go to ``metadata["usage_other"]``. All-zero or absent usage gives
    ``{}`` (the pipeline estimates the tokens).

    Raises:
        RecordError: a count is negative or not a whole number.
    """
    sums = {"input": 0, "read": 0, "write": 0, "output": 0, "reasoning": 0}
    seen: set[str] = set()
    for key, raw in details.items():
        if key in ("total", "total_tokens") or raw is None:
            continue
        kind = _bucket(str(key))
        if kind is None:
            metadata.setdefault("usage_other", {})[key] = raw
            continue
        sums[kind] += token_count(raw, field=f"usage_details.{key}") or 0
        seen.add(kind)
    if not seen or not any(sums.values()):
        return {}
    cached = sums["read"] + sums["write"]
    total_in, total_out = sums["input"] + cached, sums["output"] + sums["reasoning"]
    total = token_count(details.get("total"), field="usage_details.total")
    if total is not None and total != total_in + total_out:
        readings = {
            "input": (sums["input"], total_out) if cached and sums["input"] >= cached else None,
            "output": (total_in, sums["output"])
            if sums["reasoning"] and sums["output"] >= sums["reasoning"]
            else None,
        }
        matches = [k for k, v in readings.items() if v is not None and sum(v) == total]
        if len(matches) == 1:
            # matches names only readings that are not None
            total_in, total_out = readings[matches[0]]  # type: ignore[misc]
            metadata["usage_inclusive"] = matches[0]
        else:
            metadata["usage_total_mismatch"] = total
    return {
        "input_tokens": total_in,
        "cache_read_tokens": sums["read"],
        "cache_write_tokens": sums["write"],
        "output_tokens": total_out if "output" in seen or "reasoning" in seen else None,
        "reasoning_tokens": sums["reasoning"],
    }


def _is_message_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, dict) and "role" in m for m in value)


def _parse_io(value: Any) -> Any:
    """``input``/``output`` as logged: v2 and blob exports give JSON-encoded strings."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _messages(value: Any) -> list[dict[str, Any]]:
    """The request messages of a generation's ``input`` (a message list, ``{"messages"}``,
    one message, or plain text/JSON, taken as one user message)."""
    value = _parse_io(value)
    if value is None or value == "":
        return []
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        system = value.get("system")
        head = [{"role": "system", "content": system}] if system else []
        return head + _messages(value["messages"])
    if isinstance(value, dict) and "role" in value:
        return [value]
    if _is_message_list(value):
        return value
    return [
        {"role": "user", "content": value if isinstance(value, str | list) else content_text(value)}
    ]


def _reply(value: Any) -> tuple[str, str | None]:
    """(text, finish reason) of a generation's ``output``."""
    parsed = _parse_io(value)
    if parsed is None:
        return "", None
    if isinstance(parsed, dict) and isinstance(parsed.get("choices"), list) and parsed["choices"]:
        first = parsed["choices"][0] if isinstance(parsed["choices"][0], dict) else {}
        text, _ = _reply(first.get("message") or first.get("text"))
        return text, first.get("finish_reason")
    if isinstance(parsed, dict) and ("content" in parsed or "tool_calls" in parsed):
        text = content_text(parsed.get("content"))
        if parsed.get("tool_calls"):
            calls = json.dumps(parsed["tool_calls"], ensure_ascii=False)
            text = (text + "\n" if text else "") + calls
        return text, parsed.get("finish_reason") or parsed.get("stop_reason")
    if _is_message_list(parsed):
        replies = [_reply(m)[0] for m in parsed if m.get("role") == "assistant"]
        return "\n".join(replies), None
    if isinstance(value, str) and not isinstance(parsed, list):
        return value, None  # plain text, or a structured (JSON) answer kept as written
    return content_text(parsed), None


def _cap(params: dict[str, Any]) -> int | None:
    for name in _PARAM_CAPS:
        try:
            cap = token_count(params.get(name), field=f"modelParameters.{name}")
        except RecordError:  # Langfuse keeps e.g. "Infinity" verbatim: no usable cap
            continue
        if cap is not None:
            return cap
    return None


class LangfuseAdapter(MappedAdapter):
    """Langfuse GENERATION observations (API or blob export), traces and API pages."""

    name = "langfuse"
    description = "Langfuse observations: public API (camelCase) or blob-storage export"
    example = (
        '{"id": "obs-1", "traceId": "t-1", "type": "GENERATION", "startTime": "…", '
        '"providedModelName": "gpt-4o", "usageDetails": {"input": 98, "output": 68}, …}'
    )

    def sniff(self, record: Record) -> bool:
        """True for an observation, a trace with ``observations``, or an API page of them."""
        if _is_observation(record) or _is_trace(record):
            return True
        data = record.get("data")
        return (
            isinstance(data, list)
            and bool(data)
            and isinstance(data[0], dict)
            and (_is_observation(data[0]) or _is_trace(data[0]))
        )

    def normalize(self, record: Record) -> PartialCall | list[PartialCall]:
        """Normalize one observation, or every GENERATION of a trace or API page.

        Raises:
            SkipRecord: an observation of another type (SPAN, EVENT, …), or a trace or page
                of observations without a GENERATION.
            RecordError: a trace whose observations are ids only, or a bad timestamp or
                usage count.
        """
        if _is_observation(record):
            kind = str(record["type"]).upper()
            if kind != "GENERATION":
                raise SkipRecord(f"Langfuse {kind} observation")
            return self._generation(record, {})
        page = isinstance(record.get("data"), list)
        items = record["data"] if page else [record]
        calls: list[PartialCall] = []
        observations = 0
        for item in items:
            if not isinstance(item, dict):
                continue
            if _is_trace(item):
                trace = {
                    "session_id": _get(item, "sessionId", "session_id"),
                    "user_id": _get(item, "userId", "user_id"),
                    "tags": item.get("tags"),
                    "trace_name": item.get("name"),
                    "release": item.get("release"),
                }
                nested = [o for o in item["observations"] if isinstance(o, dict)]
            else:
                trace, nested = {}, [item]
            for obs in nested:
                if not _is_observation(obs):
                    continue
                observations += 1
                if str(obs["type"]).upper() == "GENERATION":
                    calls.append(self._generation(obs, trace))
        if calls:
            return calls
        if not observations:
            raise RecordError(
                "no observations in it, or their ids only (GET /api/public/traces lists ids): "
                "export the observations (GET /api/public/observations) instead",
                field="observations",
            )
        raise SkipRecord(f"Langfuse {'API page' if page else 'trace'} without a GENERATION")

    def _generation(self, obs: Record, trace: dict[str, Any]) -> PartialCall:
        start = parse_ts(_get(obs, "startTime", "start_time"), field="startTime")
        end = parse_ts(_get(obs, "endTime", "end_time"), field="endTime")
        first = parse_ts(
            _get(obs, "completionStartTime", "completion_start_time"), field="completionStartTime"
        )
        params = _as_dict(_get(obs, "modelParameters", "model_parameters"))
        messages = _messages(obs.get("input"))
        system = [
            content_text(m.get("content"))
            for m in messages
            if m.get("role") in ("system", "developer")
        ]
        response, finish = _reply(obs.get("output"))
        metadata: dict[str, Any] = {**_as_dict(obs.get("metadata"))}
        for key, names in _EXTRAS:
            value = _get(obs, *names) or trace.get(key)
            if value not in (None, []):
                metadata[key] = value
        if params:
            metadata["params"] = params
        if start and first:
            metadata["time_to_first_token_ms"] = (first - start).total_seconds() * 1000
        partial: PartialCall = {
            "call_id": str(obs["id"]),
            "ts": start,
            "model": _get(obs, "providedModelName", "provided_model_name", "model"),
            "conversation_id": _get(obs, "sessionId", "session_id") or trace.get("session_id"),
            "messages": messages,
            "system_prompt": "\n\n".join(system) if system else None,
            "query": last_user_text(messages),
            "response": response,
            "finish_reason": finish,
            "max_tokens": _cap(params),
            "latency_ms": (end - start).total_seconds() * 1000 if start and end else None,
            "metadata": metadata,
        }
        details = _as_dict(_get(obs, "usageDetails", "usage_details"))
        if not details:  # v1 API: the deprecated input/output/total counts
            legacy = _as_dict(obs.get("usage"))
            pairs = {
                "input": _get(legacy, "input") or obs.get("promptTokens"),
                "output": _get(legacy, "output") or obs.get("completionTokens"),
            }
            details = {k: v for k, v in pairs.items() if v is not None}
        if details:
            metadata["usage_details"] = details
        partial.update(langfuse_usage(details, metadata))
        costs = _as_dict(_get(obs, "costDetails", "cost_details"))
        if costs:
            metadata["cost_details"] = costs
        cost = _get(obs, "totalCost", "calculatedTotalCost", "total_cost")
        if cost is None and costs:
            cost = costs.get("total", sum(v for v in costs.values() if isinstance(v, int | float)))
        partial["logged_cost_usd"] = optional_float(cost, field="totalCost")
        if str(obs.get("level") or "").upper() == "ERROR":
            partial["status"] = "error"
            partial["error"] = _get(obs, "statusMessage", "status_message") or "level ERROR"
        else:
            partial["status"] = "ok"
        return partial
