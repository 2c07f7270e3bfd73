"""The per-record half of an ingest run: parsed record → adapter → finished call rows →
Arrow columns. Everything here depends on one record only, so it runs in worker processes
(:mod:`levers_cli.ingest.pipeline` hands them chunks of lines); what depends on the records
before (content-id occurrences, duplicates, id collisions) stays in the pipeline.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from levers_cli.errors import LeversError, RecordError
from levers_cli.ingest.detect import RecordDetector
from levers_cli.ingest.fields import optional_float, provider_for_model
from levers_cli.ingest.formats.base import LogAdapter, PartialCall, SkipRecord
from levers_cli.ingest.jsonpath import FieldPath
from levers_cli.ingest.mapping import apply_mapping
from levers_cli.ingest.records import RawRecord
from levers_cli.schema import (
    INGEST_COLUMNS,
    JSON_COLUMNS,
    REJECT_RAW_LIMIT,
    STATUS_ERROR,
    STATUS_OK,
    TOKEN_PARTS,
    TOKENS_ESTIMATED,
    TOKENS_FROM_USAGE,
)
from levers_cli.store import call_arrow_schema
from levers_cli.text.query import query_hash
from levers_cli.text.tokens import count_messages, count_text

#: ``json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)``, built once: the
#: canonical form behind ``record_hash`` and content ids, which must never change (stored
#: hashes of earlier runs are compared with new ones). ``json.dumps`` with these arguments
#: builds a new encoder per call; this one gives the same bytes.
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str)
#: How ``json`` writes a str (``ensure_ascii=False``), an int and ``None`` in a list.
_ENCODE_PLAIN: dict[type, Any] = {
    str: json.encoder.encode_basestring,
    int: int.__repr__,
    type(None): lambda _: "null",
}
_PLAIN_TYPES = frozenset(_ENCODE_PLAIN)
#: The ``messages``/``metadata`` JSON of a row the fallback path writes (orjson is tried first).
_PLAIN = json.JSONEncoder(ensure_ascii=False, default=lambda value: _json_default(value))


def call_fingerprint(row: dict[str, Any]) -> str:
    """Hash of what a call is — time, query, reply, token counts, status — not of how it was
    logged: the same call exported twice in different framings (SSE chunking, key order,
    history rebuilt another way, the model alias or its resolved snapshot) has one
    fingerprint; two calls that share a logged id but differ in any of these do not."""
    ts = row.get("ts")
    key = [
        ts.isoformat() if ts is not None else None,
        row.get("query"),
        row.get("response"),
        row.get("input_tokens"),
        row.get("output_tokens"),
        row.get("status"),
    ]
    if all(type(value) in _PLAIN_TYPES for value in key):
        # what the encoder writes for a flat list of strings, ints and nulls, without
        # building it (the fingerprint is computed for every record)
        canonical = "[" + ", ".join(_ENCODE_PLAIN[type(value)](value) for value in key) + "]"
    else:
        canonical = _CANONICAL.encode(key)
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


def record_digest(record: dict[str, Any]) -> str:
    """BLAKE2b-128 hex digest of a record's canonical JSON (sorted keys): the content id of
    records without an id of their own."""
    return hashlib.blake2b(_CANONICAL.encode(record).encode(), digest_size=16).hexdigest()


def finish_row(partial: PartialCall, adapter_name: str) -> dict[str, Any]:
    """Complete a partial call: provider, status, token estimates, query hash.

    Token columns the log's usage filled are kept (``tokens_source='usage'``); when input or
    output tokens are missing they are estimated from the text with tiktoken
    (``tokens_source='estimated'``). A failed call without usage is counted as 0 tokens (the
    providers do not bill failed requests).

    The parts of token columns billed at rates of their own (1-hour cache writes, audio
    tokens: :data:`levers_cli.schema.TOKEN_PARTS`) default to 0; ``gateway_cache_hit`` to
    False. A log's own cost that an adapter left in ``metadata.logged_cost_usd`` (rather
    than in the column) is moved to the column.

    Raises:
        RecordError: cached input tokens exceed input tokens, or a token part exceeds the
            column it is part of.
    """
    row: dict[str, Any] = dict(partial)
    row["format"] = adapter_name
    if not row.get("provider"):
        row["provider"] = provider_for_model(row.get("model"))
    status = row.get("status") or STATUS_OK
    row["status"] = status
    if row.get("input_tokens") is not None and row.get("output_tokens") is not None:
        row["tokens_source"] = TOKENS_FROM_USAGE
    elif status == STATUS_ERROR:
        row["tokens_source"] = TOKENS_ESTIMATED
        row["input_tokens"] = row.get("input_tokens") or 0
        row["output_tokens"] = row.get("output_tokens") or 0
    else:
        row["tokens_source"] = TOKENS_ESTIMATED
        model = row.get("model")
        if row.get("input_tokens") is None:
            row["input_tokens"] = count_messages(row.get("messages") or [], model)
        if row.get("output_tokens") is None:
            row["output_tokens"] = count_text(row.get("response") or "", model)
    for name in ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens", *TOKEN_PARTS):
        row[name] = row.get(name) or 0
    if row["cache_read_tokens"] + row["cache_write_tokens"] > row["input_tokens"]:
        raise RecordError(
            f"cached input tokens ({row['cache_read_tokens']} read + "
            f"{row['cache_write_tokens']} written) exceed input tokens ({row['input_tokens']})",
            field="input_tokens",
        )
    for part, whole in TOKEN_PARTS.items():
        if row[part] > row[whole]:
            raise RecordError(f"{part} {row[part]} exceed {whole} {row[whole]}", field=part)
    metadata = row.get("metadata")
    if row.get("logged_cost_usd") is None and isinstance(metadata, dict):
        logged = metadata.pop("logged_cost_usd", None)
        if logged is not None:
            row["logged_cost_usd"] = optional_float(logged, field="metadata.logged_cost_usd")
    row["server_tool_uses"] = row.get("server_tool_uses") or None
    row["gateway_cache_hit"] = bool(row.get("gateway_cache_hit"))
    row["is_batch"] = bool(row.get("is_batch"))
    row["query_hash"] = query_hash(row.get("query"))
    return row


def partial_rows(
    data: dict[str, Any], adapter: LogAdapter, mapping: dict[str, FieldPath]
) -> tuple[list[dict[str, Any]], str | None]:
    """The finished call rows of one parsed record (several for a transcript), each with its
    ``record_hash`` (:func:`call_fingerprint`), and the record's content digest when a row
    has no id of its own (``None`` otherwise; the pipeline turns it into ``h:…`` ids).

    Raises:
        SkipRecord: the record is no model call.
        RecordError: the record (as a whole) is not usable.
    """
    normalized = adapter.normalize(data)
    partials = normalized if isinstance(normalized, list) else [normalized]
    if not partials:
        raise RecordError("holds no model call")
    if mapping and adapter.name != "generic":
        for partial in partials:
            # --map sets a column by its name (CONVERTERS: PartialCall keys) or a metadata key
            apply_mapping(cast("dict[str, Any]", partial), data, mapping)
    rows = [finish_row(partial, adapter.name) for partial in partials]
    digest = None
    for row in rows:
        row["record_hash"] = call_fingerprint(row)
        if digest is None and not row.get("call_id"):  # only then (ingest speed)
            digest = record_digest(data)
    return rows, digest


@dataclass
class Batch:
    """What a chunk of records gave, in file order.

    Attributes:
        records: ``(line, content digest or None, number of rows)`` of each record that gave
            rows; its rows are the next ``number`` rows of ``columns``.
        rejects: ``(line, reason, raw text)`` of each rejected record.
        skipped: records that are no model call
            (:class:`~levers_cli.ingest.formats.base.SkipRecord`), counted by reason.
        table: the rows, a pyarrow table of :data:`levers_cli.schema.INGEST_COLUMNS`
            (:func:`levers_cli.store.call_arrow_schema`); ``messages`` and ``metadata`` as JSON
            text. Rows without an id of their own have a null or empty ``call_id``.
        read: records read (for progress).
    """

    records: list[tuple[int, str | None, int]] = field(default_factory=list)
    rejects: list[tuple[int, str, str]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    table: Any = None
    read: int = 0


def process_records(
    records: list[RawRecord],
    adapter: LogAdapter | None,
    mapping: dict[str, FieldPath],
    *,
    path: str,
    run_id: int,
    undetected: str | None = None,
    detector: RecordDetector | None = None,
) -> Batch:
    """Normalize parsed records into a :class:`Batch` (the rows of ``path`` in run ``run_id``).

    A record is rejected (with its reason) when it did not parse, when no adapter was found
    (``undetected`` says why), or when the adapter or the row checks refuse it; it is
    skipped (counted by reason) when the adapter says it holds no model call. With a
    ``detector`` (a file whose format was detected, not forced), each record is read by the
    adapter it chooses.

    Raises:
        LeversError: an adapter error that is not about one record (it ends the run).
    """
    import pyarrow as pa

    batch = Batch()
    finished: list[dict[str, Any]] = []
    for raw in records:
        batch.read += 1
        if raw.data is None or adapter is None:
            batch.rejects.append(_reject(raw, raw.error or undetected or "unreadable record"))
            continue
        reader = adapter if detector is None else detector.adapter_for(raw.data)
        try:
            rows, digest = partial_rows(raw.data, reader, mapping)
        except SkipRecord as skip:
            batch.skipped[skip.reason] += 1
            continue
        except RecordError as exc:
            batch.rejects.append(_reject(raw, str(exc)))
            continue
        except LeversError:
            raise
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            reason = f"{reader.name}: unexpected record shape ({type(exc).__name__}: {exc})"
            batch.rejects.append(_reject(raw, reason))
            continue
        batch.records.append((raw.line, digest, len(rows)))
        for row in rows:
            row["source_line"] = raw.line
        finished.extend(rows)
    columns = {name: [row.get(name) for row in finished] for name in INGEST_COLUMNS}
    for name in JSON_COLUMNS:
        columns[name] = [None if v is None else dump_json(v) for v in columns[name]]
    columns["source_file"] = [path] * len(finished)
    columns["run_id"] = [run_id] * len(finished)
    batch.table = pa.Table.from_pydict(columns, schema=call_arrow_schema())
    return batch


def _reject(raw: RawRecord, reason: str) -> tuple[int, str, str]:
    return raw.line, reason, raw.text[:REJECT_RAW_LIMIT]


def dump_json(value: Any) -> str:
    """JSON text of a ``messages``/``metadata`` value: orjson (compact), or ``json`` for what
    orjson refuses (integers beyond 64 bits, lone surrogates); datetimes as ISO 8601, other
    non-JSON values as ``str()``."""
    import orjson

    try:
        return orjson.dumps(value, default=_json_default, option=_ORJSON_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError
        return _PLAIN.encode(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _orjson_options() -> int:
    import orjson

    # datetimes, dataclasses and subclasses of builtins go through _json_default, as json did
    return (
        orjson.OPT_PASSTHROUGH_DATETIME
        | orjson.OPT_PASSTHROUGH_DATACLASS
        | orjson.OPT_PASSTHROUGH_SUBCLASS
    )


_ORJSON_OPTIONS = _orjson_options()
