"""The ingest run: files → adapter → partial calls → finished rows → ``calls``/``rejects``.

Every record read ends as exactly one of stored, duplicate (its ``call_id`` is stored
already, or came earlier in this run) or rejected (kept in ``rejects`` with its reason), so
``read == stored + duplicates + rejected`` for every run. One run is one transaction.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from levers_cli import __version__
from levers_cli.enrich.tokens import count_messages, count_text
from levers_cli.errors import LeversError, RecordError
from levers_cli.ingest import ADAPTERS, get_adapter
from levers_cli.ingest.base import LogAdapter, PartialCall
from levers_cli.ingest.fields import provider_for_model
from levers_cli.ingest.jsonpath import FieldPath
from levers_cli.ingest.mapping import apply_mapping, check_columns
from levers_cli.ingest.readers import STDIN, RawRecord, RecordSource, expand_inputs, open_records
from levers_cli.schema import (
    REJECT_RAW_LIMIT,
    STATUS_ERROR,
    STATUS_OK,
    TOKENS_ESTIMATED,
    TOKENS_FROM_USAGE,
)
from levers_cli.store import Workspace

#: Rows inserted per DuckDB statement.
BATCH_ROWS = 5_000

#: ``progress(stage, advance)``: called as records are read; a CLI draws a bar from it.
ProgressFn = Callable[[str, int], None]


@dataclass
class FileCounts:
    """What one file gave: ``read == stored + duplicates + rejected``."""

    path: str
    format: str | None = None
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    size_bytes: int = 0
    sha256: str = ""
    #: records whose id was already taken by a different record (stored under ``id~hash``)
    id_collisions: int = 0


@dataclass
class IngestResult:
    """One ingest run: per-file counts, totals, and the first rejects (file, line, reason)."""

    run_id: int
    files: list[FileCounts] = field(default_factory=list)
    reject_samples: list[tuple[str, int, str]] = field(default_factory=list)

    @property
    def read(self) -> int:
        return sum(f.read for f in self.files)

    @property
    def stored(self) -> int:
        return sum(f.stored for f in self.files)

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "run_id": self.run_id,
            "read": self.read,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "files": [asdict(f) for f in self.files],
            "reject_samples": [
                {"file": f, "line": n, "error": e} for f, n, e in self.reject_samples
            ],
        }


def normalize_query(text: str | None) -> str:
    """The exact-match form of a query: trimmed, whitespace collapsed, lowercased."""
    return " ".join((text or "").split()).lower()


def query_hash(text: str | None) -> str:
    """Hash of the normalized query (32 hex chars, BLAKE2b-128): the exact-match and
    embedding-cache key."""
    return hashlib.blake2b(normalize_query(text).encode(), digest_size=16).hexdigest()


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
    canonical = json.dumps(key, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


def collision_id(call_id: str, record_hash: str) -> str:
    """The id of a record whose logged id another record already has (some servers repeat
    ``chatcmpl-123``; weekly CSV exports restart their ids): ``id~`` + its content hash."""
    return f"{call_id}~{record_hash[:12]}"


def _content_id(digest: str, occurrence: int) -> str:
    """Id of a record without its own: its content hash, plus ``#k`` for the k-th identical
    record of a file (identical calls are real calls; re-reading the file gives the same ids).
    """
    return f"h:{digest}" if occurrence == 1 else f"h:{digest}#{occurrence}"


def finish_row(partial: PartialCall, adapter_name: str) -> dict[str, Any]:
    """Complete a partial call: provider, status, token estimates, query hash.

    Token columns the log's usage filled are kept (``tokens_source='usage'``); when input or
    output tokens are missing they are estimated from the text with tiktoken
    (``tokens_source='estimated'``). A failed call without usage is counted as 0 tokens (the
    providers do not bill failed requests).
    """
    row = dict(partial)
    row["format"] = adapter_name
    row.setdefault("provider", None)
    if not row["provider"]:
        row["provider"] = provider_for_model(row.get("model"))
    status = row.get("status") or STATUS_OK
    row["status"] = status
    has_usage = row.get("input_tokens") is not None and row.get("output_tokens") is not None
    if has_usage:
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
    for name in ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens"):
        row[name] = row.get(name) or 0
    if row["cache_read_tokens"] + row["cache_write_tokens"] > row["input_tokens"]:
        raise RecordError(
            f"cached input tokens ({row['cache_read_tokens']} read + "
            f"{row['cache_write_tokens']} written) exceed input tokens ({row['input_tokens']})",
            field="input_tokens",
        )
    row["is_batch"] = bool(row.get("is_batch"))
    row["query_hash"] = query_hash(row.get("query"))
    return row


def _detect(
    records: Iterator[RawRecord],
    path: str,
    mapping: dict[str, FieldPath],
    options: dict[str, Any],
) -> tuple[LogAdapter | None, list[RawRecord], str | None]:
    """Find the adapter for a file from its first parsable record.

    Returns:
        The adapter (``None`` when no format matches), the records read so far (to be
        processed first), and why none matched.
    """
    seen: list[RawRecord] = []
    for raw in records:
        seen.append(raw)
        if raw.data is None:
            continue
        names = ["generic"] if mapping else list(ADAPTERS)
        for name in names:
            adapter = get_adapter(name, mapping, **options)
            if adapter.sniff(raw.data):
                return adapter, seen, None
        keys = ", ".join(list(raw.data)[:8])
        return (
            None,
            seen,
            f"cannot tell the log format of this file from line {raw.line} (keys: {keys}); "
            f"pass --format ({', '.join(ADAPTERS)}) or --map query=FIELD",
        )
    return None, seen, None


def _open_source(
    path: str, forced: LogAdapter | None, mapping: dict[str, FieldPath], options: dict[str, Any]
) -> tuple[RecordSource, LogAdapter | None]:
    """Open ``path`` with the adapter that owns its container (a SQLite ``logs.db``) when one
    claims it, else with the generic readers. Returns the source and the claiming adapter."""
    candidates = (
        [forced]
        if forced is not None
        else [get_adapter(name, mapping, **options) for name in ADAPTERS]
    )
    if path != STDIN:
        for adapter in candidates:
            claims = getattr(adapter, "claims_file", None)
            if claims is not None and claims(path):
                return adapter.open_file(path), adapter  # type: ignore[attr-defined]
    return open_records(path), None


def _file_identity(path: str) -> tuple[int, str]:
    """Size in bytes and SHA-256 of a file (``0, ""`` for standard input)."""
    if path == STDIN:
        return 0, ""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return os.path.getsize(path), digest.hexdigest()


def ingest_files(
    ws: Workspace,
    paths: list[str],
    *,
    format: str | None = None,
    mapping: dict[str, FieldPath] | None = None,
    options: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
    command: str = "ingest",
    exclude: frozenset[str] = frozenset(),
) -> IngestResult:
    """Read ``paths`` into the workspace, in one transaction.

    Args:
        ws: the open workspace.
        paths: files or directories (read recursively); ``-`` reads standard input.
        format: an adapter name to force; ``None`` detects it per file.
        mapping: ``--map`` fields; without ``format`` they select the ``generic`` adapter.
        options: format-specific options passed to every adapter (e.g. ``batch_input``).
        progress: called with ``("ingest", n_calls)`` as records are read.
        command: the command recorded in ``runs``.
        exclude: real paths to leave out when expanding folders (levers' own outputs).

    Returns:
        The run's counts per file and its first rejects. Counts are in calls: a record that
        holds several calls (a transcript) counts once per call; a rejected record once.

    Raises:
        InputFileError: a file is missing or cannot be read at all.
        UnknownFormatError: ``format`` names no adapter. (A file whose format cannot be
            detected is not an error of the run: its records are rejected with the reason.)
        MappingError: a mapped column is missing from a CSV/Parquet header.
    """
    mapping = mapping or {}
    options = options or {}
    forced = get_adapter(format, mapping, **options) if format else None
    files = expand_inputs(paths, exclude)
    started = datetime.now(UTC)
    ws.con.execute("BEGIN TRANSACTION")
    try:
        result = IngestResult(run_id=ws.next_run_id())
        seen_ids: dict[str, str] = {}
        for path in files:
            counts = _ingest_file(ws, path, forced, mapping, options, seen_ids, result, progress)
            result.files.append(counts)
        ws.record_run(
            result.run_id,
            command,
            started,
            datetime.now(UTC),
            [asdict(f) for f in result.files],
            (result.read, result.stored, result.duplicates, result.rejected),
            __version__,
        )
        ws.con.execute("COMMIT")
    except BaseException:
        ws.con.execute("ROLLBACK")
        raise
    return result


def record_rows(
    raw: RawRecord,
    adapter: LogAdapter,
    mapping: dict[str, FieldPath],
    occurrences: Counter[str],
) -> list[dict[str, Any]]:
    """The finished call rows of one parsed record (several for a transcript).

    Every row carries ``record_hash`` (:func:`call_fingerprint`). Rows without an id of their
    own get the hash of the record's content as their id (``h:…``), with ``.k`` for the k-th
    call of a multi-call record and ``#n`` for the n-th identical record of the file.

    Raises:
        RecordError: the record (as a whole) is not usable.
    """
    assert raw.data is not None
    normalized = adapter.normalize(raw.data)
    partials = normalized if isinstance(normalized, list) else [normalized]
    if not partials:
        raise RecordError("holds no model call")
    if mapping and adapter.name != "generic":
        for partial in partials:
            apply_mapping(partial, raw.data, mapping)
    rows = [finish_row(partial, adapter.name) for partial in partials]
    digest = None
    for index, row in enumerate(rows, 1):
        row["record_hash"] = call_fingerprint(row)
        if not row.get("call_id"):
            if digest is None:  # only records without ids need their content hash (ingest speed)
                canonical = json.dumps(raw.data, sort_keys=True, ensure_ascii=False, default=str)
                digest = hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()
                occurrences[digest] += 1
            part = digest if len(rows) == 1 else f"{digest}.{index}"
            row["call_id"] = _content_id(part, occurrences[digest])
    return rows


def _ingest_file(
    ws: Workspace,
    path: str,
    forced: LogAdapter | None,
    mapping: dict[str, FieldPath],
    options: dict[str, Any],
    seen_ids: dict[str, str],
    result: IngestResult,
    progress: ProgressFn | None,
) -> FileCounts:
    size, sha256 = _file_identity(path)
    counts = FileCounts(path=path, size_bytes=size, sha256=sha256)
    source, owner = _open_source(path, forced, mapping, options)
    if source.columns is not None and mapping:
        check_columns(path, source.columns, mapping)
    records = iter(source)
    head: list[RawRecord] = []
    adapter = owner or forced
    undetected: str | None = None
    if adapter is None:
        adapter, head, undetected = _detect(records, path, mapping, options)
    counts.format = adapter.name if adapter else None
    occurrences: Counter[str] = Counter()
    pending: list[dict[str, Any]] = []
    rejects: list[tuple[str, int, str, str]] = []

    def flush() -> None:
        stored, collisions = ws.insert_calls(pending)
        counts.id_collisions += collisions
        counts.stored += stored
        counts.duplicates += len(pending) - stored
        pending.clear()
        ws.insert_rejects(rejects, result.run_id)
        rejects.clear()

    def reject(raw: RawRecord, reason: str) -> None:
        counts.read += 1
        counts.rejected += 1
        rejects.append((path, raw.line, reason, raw.text[:REJECT_RAW_LIMIT]))
        if len(result.reject_samples) < 50:
            result.reject_samples.append((path, raw.line, reason))

    for raw in _chain(head, records):
        if progress is not None:
            progress("ingest", 1)
        if raw.data is None or adapter is None:
            reject(raw, raw.error or undetected or "unreadable record")
            continue
        try:
            rows = record_rows(raw, adapter, mapping, occurrences)
        except RecordError as exc:
            reject(raw, str(exc))
            continue
        except LeversError:
            raise
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            reject(raw, f"{adapter.name}: unexpected record shape ({type(exc).__name__}: {exc})")
            continue
        for row in rows:
            counts.read += 1
            row["source_file"] = path
            row["source_line"] = raw.line
            row["run_id"] = result.run_id
            known = seen_ids.get(row["call_id"])
            if known == row["record_hash"]:
                counts.duplicates += 1
                continue
            if known is not None:  # the same id on a different record: not a duplicate
                row["call_id"] = collision_id(row["call_id"], row["record_hash"])
                counts.id_collisions += 1
                if seen_ids.get(row["call_id"]) == row["record_hash"]:
                    counts.duplicates += 1
                    continue
            seen_ids[row["call_id"]] = row["record_hash"]
            pending.append(row)
        if len(pending) >= BATCH_ROWS:
            flush()
    flush()
    return counts


def _chain(head: list[RawRecord], rest: Iterator[RawRecord]) -> Iterator[RawRecord]:
    yield from head
    yield from rest
