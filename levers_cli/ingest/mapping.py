"""``--map field=path``: point a ``calls`` column (or a metadata key) at a field of the log.

``field`` is a column of ``calls`` (``query``, ``response``, ``model``, ``ts``,
``input_tokens``, …), one of the aliases below, or any other name, which is stored in
``metadata`` (``--map label=category`` keeps ground-truth labels for scoring categories).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from levers_cli.errors import MappingError, RecordError
from levers_cli.ingest.fields import optional_float, parse_ts, token_count
from levers_cli.ingest.jsonpath import FieldPath, parse_path
from levers_cli.text.content import content_text

FIELD_ALIASES: dict[str, str] = {
    "id": "call_id",
    "cost": "logged_cost_usd",
    "cost_usd": "logged_cost_usd",
    "timestamp": "ts",
    "prompt": "query",
    "completion": "response",
}


def _text(value: Any, field: str) -> str | None:
    return None if value is None else content_text(value)


def _integer(value: Any, field: str) -> int | None:
    return token_count(value, field=field)


def _parsed(value: Any, field: str, what: str) -> Any:
    """``value``, parsed when it is JSON text (a CSV cell); ``None`` when empty.

    Raises:
        RecordError: text that is not JSON (``what`` says what was expected).
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise RecordError(f"not a JSON {what}", field=field) from None
    return value


def _messages(value: Any, field: str) -> list[dict[str, Any]] | None:
    value = _parsed(value, field, "list of messages")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise RecordError("not a list of {role, content} messages", field=field)
    return value


def _boolean(value: Any, field: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y", "t"):
        return True
    if text in ("0", "false", "no", "n", "f"):
        return False
    raise RecordError(f"not a boolean: {value!r}", field=field)


#: Gateway cache statuses that mean the gateway answered from its own cache (Portkey's
#: ``cache_status``: HIT, SEMANTIC HIT, MISS, REFRESH, DISABLED; Helicone and LiteLLM:
#: true/false).
_CACHE_HIT_WORDS = frozenset({"hit", "semantic hit", "semantic_hit", "cache_hit"})
_CACHE_MISS_WORDS = frozenset({"miss", "refresh", "disabled", "bypass", "none", "null"})


def gateway_hit(value: Any, field: str) -> bool | None:
    """A gateway's cache status as a flag: booleans and true/false words, or the statuses
    above (a hit of any kind is True).

    Raises:
        RecordError: a value that is none of these.
    """
    if isinstance(value, str) and value.strip().lower() in _CACHE_HIT_WORDS:
        return True
    if isinstance(value, str) and value.strip().lower() in _CACHE_MISS_WORDS:
        return False
    return _boolean(value, field)


def _tool_uses(value: Any, field: str) -> dict[str, int] | None:
    value = _parsed(value, field, "object of tool uses")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RecordError("not an object of {tool: uses}", field=field)
    uses = {str(k): token_count(v, field=f"{field}.{k}") for k, v in value.items()}
    return {k: v for k, v in uses.items() if v}


def _float(value: Any, field: str) -> float | None:
    return optional_float(value, field=field)


def _timestamp(value: Any, field: str) -> Any:
    return parse_ts(value, field=field)


def _string(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


#: Columns ``--map`` can fill, with the converter applied to the mapped value.
CONVERTERS: dict[str, Callable[[Any, str], Any]] = {
    "call_id": _string,
    "ts": _timestamp,
    "provider": _string,
    "model": _string,
    "conversation_id": _string,
    "turn": _integer,
    "system_prompt": _text,
    "messages": _messages,
    "query": _text,
    "response": _text,
    "input_tokens": _integer,
    "cache_read_tokens": _integer,
    "cache_write_tokens": _integer,
    "output_tokens": _integer,
    "reasoning_tokens": _integer,
    "cache_write_1h_tokens": _integer,
    "input_audio_tokens": _integer,
    "output_audio_tokens": _integer,
    "max_tokens": _integer,
    "finish_reason": _string,
    "latency_ms": _float,
    "status": _string,
    "error": _string,
    "is_batch": _boolean,
    "service_tier": _string,
    "inference_geo": _string,
    "server_tool_uses": _tool_uses,
    "gateway_cache_hit": gateway_hit,
    "logged_cost_usd": _float,
}


def parse_mapping(options: Iterable[str]) -> dict[str, FieldPath]:
    """Parse ``--map`` options (``field=path``) into ``{field: FieldPath}``.

    Raises:
        MappingError: an option lacks ``=`` or names an empty field or path.
    """
    mapping: dict[str, FieldPath] = {}
    for option in options:
        field, sep, path = option.partition("=")
        field = field.strip()
        if not sep or not field or not path.strip():
            raise MappingError(
                f"bad --map {option!r}; write field=path, e.g. --map query=messages[0].content"
            )
        mapping[FIELD_ALIASES.get(field, field)] = parse_path(path)
    return mapping


def convert(field: str, value: Any) -> Any:
    """Convert a mapped value for ``field``; metadata keys keep the value as it is.

    Raises:
        RecordError: the value does not fit the column (a word where a count belongs).
    """
    converter = CONVERTERS.get(field)
    return value if converter is None else converter(value, field)


def apply_mapping(
    partial: dict[str, Any], record: dict[str, Any], mapping: dict[str, FieldPath]
) -> None:
    """Fill ``partial`` (a partial call row) from ``record`` by ``mapping``, in place.

    Columns of ``calls`` are set; any other field goes into ``partial["metadata"]``.
    """
    metadata: dict[str, Any] = partial.setdefault("metadata", {})
    for field, path in mapping.items():
        value = convert(field, path.resolve(record))
        if field in CONVERTERS:
            if value is not None:
                partial[field] = value
        else:
            metadata[field] = value


def check_columns(path: str, columns: list[str], mapping: dict[str, FieldPath]) -> None:
    """Fail early when a mapped path's root column is not in a CSV/Parquet header.

    Raises:
        MappingError: naming the file, the column and the columns it has.
    """
    for field, fpath in mapping.items():
        if fpath.text not in columns and fpath.root not in columns:
            shown = ", ".join(columns[:20]) + (" …" if len(columns) > 20 else "")
            raise MappingError(
                f"{path}:1: column '{fpath.root}' (mapped to {field}) is not in the header; "
                f"columns are: {shown}",
                exit_code=1,
            )
