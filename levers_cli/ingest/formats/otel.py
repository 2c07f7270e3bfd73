"""OpenTelemetry GenAI spans: OTLP JSON trace files, the JSON lines a collector's file
exporter writes, and spans printed one by one (``ConsoleSpanExporter``, Phoenix exports).

Containers (OTLP/JSON encoding, opentelemetry-proto ``docs/specification.md`` and
``examples/trace.json``): a record is an export request ``{"resourceSpans": [{"resource",
"scopeSpans": [{"scope", "spans": [...]}]}]}`` (the collector's file exporter writes one per
line), a bare ``ResourceSpans`` object, or one flat span ``{"name", "context": {trace_id,
span_id}, "attributes": {...}}`` (opentelemetry-python ``ReadableSpan.to_json``; OpenInference
``spec/llm_spans.md``). Attributes are OTLP ``[{key, value: {stringValue | intValue |
doubleValue | boolValue | arrayValue | kvlistValue}}]`` (int64 as a JSON string or number; a
protobufjs ``{low, high}`` Long and ``{type: "Buffer", data}`` ids, as JavaScript collectors
re-serialize them, are read too) or a plain mapping.

One record can hold many spans; each span that is an LLM call becomes a call, the others
(HTTP, database, agent and tool spans) are left out, and a record with none is skipped
(:class:`~levers_cli.ingest.formats.base.SkipRecord`), not rejected. What makes an LLM call, and
what is read from it, is in :mod:`levers_cli.ingest.formats.otel_content`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from levers_cli.errors import RecordError
from levers_cli.ingest.fields import parse_ts
from levers_cli.ingest.formats.base import MappedAdapter, PartialCall, Record, SkipRecord
from levers_cli.ingest.formats.otel_content import is_llm_span, span_call
from levers_cli.schema import STATUS_ERROR, STATUS_OK

#: The reason counted for a record that holds no LLM call span.
NO_LLM_SPAN = "no LLM call span (OpenTelemetry)"
_STATUS_ERROR = (2, "2", "STATUS_CODE_ERROR", "ERROR")
#: ``Span.kind`` numbers of the OTLP enum → names.
_KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


class OTelAdapter(MappedAdapter):
    """OTLP JSON export requests, ``ResourceSpans`` objects and flat spans; one call per
    GenAI (LLM) span."""

    name = "otel"
    description = (
        "OpenTelemetry GenAI spans: OTLP JSON files, collector JSON lines, flat span dumps "
        "(OpenLLMetry, OpenInference, Logfire, …); non-LLM spans are skipped"
    )
    example = (
        '{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "chat gpt-4o", "attributes": '
        '[{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}, {"key": '
        '"gen_ai.usage.input_tokens", "value": {"intValue": "52"}}, …]}]}]}]}'
    )

    def sniff(self, record: Record) -> bool:
        """True for an OTLP export request, a ``ResourceSpans`` object or a flat span."""
        if isinstance(record.get("resourceSpans"), list):
            return True
        if isinstance(record.get("scopeSpans"), list):
            return True
        return is_flat_span(record)

    def normalize(self, record: Record) -> list[PartialCall]:
        """One partial call per LLM span of the record, in file order.

        Raises:
            SkipRecord: the record holds no LLM call span.
            RecordError: a span's timestamp or token count is not one.
        """
        calls: list[PartialCall] = []
        for span, resource, scope in iter_spans(record):
            attributes = decode_attributes(span.get("attributes"))
            events = [
                (str(event.get("name") or ""), decode_attributes(event.get("attributes")))
                for event in span.get("events") or []
                if isinstance(event, dict)
            ]
            if not is_llm_span(attributes, events, span):
                continue
            call = span_call(attributes, events)
            fields, provenance = _span_fields(span, resource, scope)
            call.update(fields)
            call["metadata"] = {**provenance, **call["metadata"]}
            calls.append(call)
        if not calls:
            raise SkipRecord(NO_LLM_SPAN)
        return calls


def is_flat_span(record: Record) -> bool:
    """True for one span printed on its own: a name, attributes and a span id (in
    ``context`` or at the top level)."""
    if "name" not in record or "attributes" not in record:
        return False
    context = record.get("context")
    return isinstance(context, dict) or "spanId" in record or "span_id" in record


def iter_spans(record: Record) -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """``(span, resource attributes, scope)`` of every span of a record, in order."""
    if is_flat_span(record) and "scopeSpans" not in record:
        resource = record["resource"] if isinstance(record.get("resource"), dict) else {}
        yield record, decode_attributes(resource.get("attributes")), {}
        return
    groups = record.get("resourceSpans") if "resourceSpans" in record else [record]
    for group in groups or []:
        if not isinstance(group, dict):
            continue
        resource = decode_attributes((group.get("resource") or {}).get("attributes"))
        scopes = group.get("scopeSpans") or group.get("instrumentationLibrarySpans") or []
        for scoped in scopes:
            if not isinstance(scoped, dict):
                continue
            scope = scoped.get("scope") or scoped.get("instrumentationLibrary") or {}
            for span in scoped.get("spans") or []:
                if isinstance(span, dict):
                    yield span, resource, scope


def decode_attributes(value: Any) -> dict[str, Any]:
    """Attributes as a plain mapping: OTLP ``[{key, value: AnyValue}]`` decoded, a mapping
    kept as it is."""
    if isinstance(value, dict):
        return dict(value)
    if not isinstance(value, list):
        return {}
    return {
        str(item["key"]): any_value(item.get("value"))
        for item in value
        if isinstance(item, dict) and "key" in item
    }


def any_value(value: Any) -> Any:
    """The Python value of an OTLP ``AnyValue`` (``{"stringValue": …}``, ``{"intValue":
    "42"}``, ``{"arrayValue": {"values": [...]}}``, …); ``None`` for an empty one."""
    if not isinstance(value, dict):
        return value
    for key in ("stringValue", "boolValue", "doubleValue", "bytesValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return whole_number(value["intValue"])
    if "arrayValue" in value:
        return [any_value(v) for v in (value["arrayValue"] or {}).get("values") or []]
    if "kvlistValue" in value:
        return decode_attributes((value["kvlistValue"] or {}).get("values"))
    return None


def whole_number(value: Any) -> int | None:
    """An OTLP int64: a number, a decimal string, or a protobufjs ``{low, high, unsigned}``
    Long; ``None`` when it is none of these."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    if isinstance(value, dict) and "low" in value and "high" in value:
        low, high = int(value["low"]) & 0xFFFFFFFF, int(value["high"])
        if value.get("unsigned"):
            high &= 0xFFFFFFFF
        return (high << 32) + low
    return None


def span_id(value: Any) -> str | None:
    """A trace or span id as lower-case hex: a hex string (``0x`` dropped), or a
    ``{type: "Buffer", data: [...]}`` byte list."""
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        return bytes(int(b) & 0xFF for b in value["data"]).hex() or None
    if isinstance(value, str) and value:
        return value.lower().removeprefix("0x")
    return None


def _instant(value: Any, field: str) -> datetime | None:
    """A span time: epoch nanoseconds (OTLP) or an ISO 8601 string (flat spans).

    Raises:
        RecordError: the value is not a time.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str) and not value.strip().isdigit():
        return parse_ts(value, field=field)
    nanos = whole_number(value)
    if nanos is None:
        raise RecordError(f"not a time: {value!r}", field=field)
    if nanos <= 0:
        return None
    return datetime.fromtimestamp(nanos / 1e9, tz=UTC)


def _span_fields(
    span: dict[str, Any], resource: dict[str, Any], scope: dict[str, Any]
) -> tuple[PartialCall, dict[str, Any]]:
    """``(columns, metadata)`` of one span: its id (``trace:span``), start time, latency
    and status; its trace, name, kind, scope and service."""
    context = span["context"] if isinstance(span.get("context"), dict) else {}
    trace = span_id(span.get("traceId") or context.get("trace_id") or span.get("trace_id"))
    own = span_id(span.get("spanId") or context.get("span_id") or span.get("span_id"))
    start = _instant(span.get("startTimeUnixNano", span.get("start_time")), "startTimeUnixNano")
    end = _instant(span.get("endTimeUnixNano", span.get("end_time")), "endTimeUnixNano")
    fields: PartialCall = {
        "call_id": f"{trace}:{own}" if trace and own else own,
        "ts": start,
        "latency_ms": (end - start).total_seconds() * 1000 if start and end else None,
    }
    status = span["status"] if isinstance(span.get("status"), dict) else {}
    code = status.get("code", status.get("status_code", span.get("status_code")))
    if code in _STATUS_ERROR:
        fields["status"] = STATUS_ERROR
        message = status.get("message") or status.get("description") or span.get("status_message")
        fields["error"] = str(message or "span status ERROR")
    else:
        fields["status"] = STATUS_OK
    provenance = {
        "trace_id": trace,
        "span_name": span.get("name"),
        "span_kind": _KINDS.get(span["kind"], span["kind"]) if "kind" in span else None,
        "scope": scope.get("name") if isinstance(scope, dict) else None,
        "service_name": resource.get("service.name"),
    }
    return fields, {k: v for k, v in provenance.items() if v is not None}
