"""Generic tabular or JSON logs (JSONL, JSON, CSV, Parquet) read through ``--map``.

Fields not mapped explicitly are taken from well-known column names (``prompt``/``query``/
``text`` for the query, ``model``, ``timestamp``, ``prompt_tokens``, …). Columns used by
neither go to ``metadata`` unchanged.
"""

from __future__ import annotations

from typing import Any, cast

from levers_cli.errors import RecordError
from levers_cli.ingest.formats.base import MappedAdapter, PartialCall, Record
from levers_cli.ingest.mapping import apply_mapping, convert

#: Column names taken for a field when ``--map`` does not name one (first present wins).
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "query": ("query", "prompt", "text", "input", "question", "instruction", "user_message"),
    "response": ("response", "completion", "output", "answer", "assistant_message"),
    "model": ("model", "model_name", "model_id"),
    "provider": ("provider",),
    "ts": ("ts", "timestamp", "created_at", "created", "tstamp", "time", "start_time"),
    "call_id": ("call_id", "id", "request_id"),
    "system_prompt": ("system_prompt", "system"),
    "conversation_id": ("conversation_id", "session_id", "thread_id"),
    "input_tokens": ("input_tokens", "prompt_tokens"),
    "output_tokens": ("output_tokens", "completion_tokens"),
    "cache_read_tokens": ("cache_read_tokens", "cached_tokens"),
    "cache_write_tokens": ("cache_write_tokens",),
    "reasoning_tokens": ("reasoning_tokens",),
    "latency_ms": ("latency_ms",),
    "logged_cost_usd": ("cost_usd", "cost"),
    # a gateway's own cache answered the call (Portkey's cache_status HIT, LiteLLM cache_hit)
    "gateway_cache_hit": ("gateway_cache_hit", "cache_hit", "cache_status"),
}


class GenericAdapter(MappedAdapter):
    """Any record with a query column, read through ``--map`` and well-known column names."""

    name = "generic"
    description = "JSONL/JSON/CSV/Parquet rows read through --map field=path"
    example = "text,category  (levers analyze file.csv --map query=text --map label=category)"

    def sniff(self, record: Record) -> bool:
        """True when the mapping names a query or the record has a well-known query column."""
        if "query" in self.mapping:
            return self.mapping["query"].resolve(record) is not None
        return any(isinstance(record.get(c), str) for c in DEFAULT_COLUMNS["query"])

    def normalize(self, record: Record) -> PartialCall:
        """Map one row into a partial call; unused columns go to ``metadata``.

        Raises:
            RecordError: the query is missing or a mapped value has the wrong type.
        """
        partial: dict[str, Any] = {}  # keyed by names (DEFAULT_COLUMNS, --map): a PartialCall
        used = {path.root for path in self.mapping.values()}
        for field, names in DEFAULT_COLUMNS.items():
            if field in self.mapping:
                continue
            for name in names:
                if name in record and name not in used and record[name] not in (None, ""):
                    partial[field] = convert(field, record[name])
                    used.add(name)
                    break
        partial["metadata"] = {k: v for k, v in record.items() if k not in used}
        apply_mapping(partial, record, self.mapping)
        if not partial.get("query"):
            field = self.mapping["query"].text if "query" in self.mapping else "query"
            raise RecordError("no query text", field=field)
        messages: list[dict[str, Any]] = []
        if partial.get("system_prompt"):
            messages.append({"role": "system", "content": partial["system_prompt"]})
        messages.append({"role": "user", "content": partial["query"]})
        partial.setdefault("messages", messages)
        # DEFAULT_COLUMNS' and CONVERTERS' keys are PartialCall keys
        # (tests/ingest/test_partial_call.py)
        return cast(PartialCall, partial)
