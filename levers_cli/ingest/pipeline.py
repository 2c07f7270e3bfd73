"""The ingest run: files → adapter → partial calls → finished rows → ``calls``/``rejects``.

Every record read ends as exactly one of stored, duplicate (its ``call_id`` is stored
already, or came earlier in this run), skipped (no model call, e.g. a Langfuse SPAN: counted
by reason, see :class:`~levers_cli.ingest.formats.base.SkipRecord`) or rejected (kept in ``rejects``
with its reason), so ``read == stored + duplicates + skipped + rejected`` for every run. One
run is one transaction. A detected format is checked record by record: a record it does
not sniff is read by the adapter that does (:mod:`levers_cli.ingest.detect`).

Parsing and normalizing (:mod:`levers_cli.ingest.rows`) depend on one record only; for a
large JSONL file they run in worker processes (:mod:`levers_cli.ingest.workers`) while this
process assigns ids in file order, drops duplicates and inserts Arrow batches.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from levers_cli.ingest import ADAPTERS, get_adapter
from levers_cli.ingest.detect import RecordDetector
from levers_cli.ingest.formats.base import LogAdapter
from levers_cli.ingest.jsonpath import FieldPath
from levers_cli.ingest.mapping import check_columns
from levers_cli.ingest.readers import (
    STDIN,
    LineChunk,
    RawRecord,
    RecordSource,
    find_inputs,
    open_records,
    parse_chunk,
)
from levers_cli.ingest.reread_guard import earlier_reads, refuse_reading_differently
from levers_cli.ingest.result import FileCounts, IngestResult
from levers_cli.ingest.rows import Batch, process_records
from levers_cli.ingest.sink import FileSink, RunState
from levers_cli.ingest.workers import ChunkRunner
from levers_cli.store import Workspace
from levers_cli.version import __version__

#: Lines of a JSONL file normalized in this process before worker processes take the rest
#: (they take a second to start; small files never need them).
PARALLEL_AFTER = 5_000
#: DuckDB's memory cap during an ingest run: above it, DuckDB drops the blocks of the run's
#: rows it has written already (and spills the rest) instead of growing the process.
INGEST_MEMORY_LIMIT = "1GB"

#: ``progress(stage, advance)``: called as records are read, ``("ingest", 1)`` per record
#: (the analysis' :data:`levers_cli.cluster.categorize.ProgressFn` also passes a total).
ReadProgressFn = Callable[[str, int], None]


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
            if adapter.claims_file(path):
                return adapter.open_file(path), adapter
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
    progress: ReadProgressFn | None = None,
    command: str = "ingest",
    exclude: frozenset[str] = frozenset(),
    workers: int | None = None,
) -> IngestResult:
    """Read ``paths`` into the workspace, in one transaction.

    Args:
        ws: the open workspace.
        paths: files or directories (read recursively); ``-`` reads standard input.
        format: an adapter name to force; ``None`` detects it per file.
        mapping: ``--map`` fields; without ``format`` they select the ``generic`` adapter.
        options: format-specific options passed to every adapter (e.g. ``batch_input``).
        progress: called with ``("ingest", 1)`` for each record read.
        command: the command recorded in ``runs``.
        exclude: real paths to leave out when expanding folders (levers' own outputs).
        workers: processes that parse and normalize large JSONL files; ``None`` for one per
            core (:func:`levers_cli.ingest.workers.default_workers`), 1 for none.

    Returns:
        The run's counts per file and its first rejects. Counts are in calls: a record that
        holds several calls (a transcript) counts once per call; a skipped or rejected record
        once.

    Raises:
        InputFileError: a file is missing or cannot be read at all.
        UnknownFormatError: ``format`` names no adapter. (A file whose format cannot be
            detected is not an error of the run: its records are rejected with the reason.)
        MappingError: a mapped column is missing from a CSV/Parquet header.
    """
    mapping = mapping or {}
    options = options or {}
    forced = get_adapter(format, mapping, **options) if format else None
    inputs = find_inputs(paths, exclude)
    started = datetime.now(UTC)
    runner = ChunkRunner(mapping, options, workers)
    with ws.memory_limit(INGEST_MEMORY_LIMIT):
        ws.con.execute("BEGIN TRANSACTION")
        try:
            result = IngestResult(run_id=ws.next_run_id(), skipped_files=inputs.skipped)
            run = RunState(ws, result, check_stored=ws.count("calls") > 0)
            earlier = earlier_reads(ws)
            mapped = ", ".join(sorted(f"{k}={v.text}" for k, v in mapping.items()))
            for path in inputs.files:
                counts = _ingest_file(run, path, forced, mapping, options, runner, progress)
                counts.mapping = mapped
                refuse_reading_differently(counts, earlier)
                result.files.append(counts)
            ws.record_run(
                result.run_id,
                command,
                started,
                datetime.now(UTC),
                [asdict(f) for f in result.files],
                (result.read, result.stored, result.duplicates, result.skipped, result.rejected),
                __version__,
            )
            ws.con.execute("COMMIT")
        except BaseException:
            ws.con.execute("ROLLBACK")
            raise
        finally:
            runner.close()
    return result


def _ingest_file(
    run: RunState,
    path: str,
    forced: LogAdapter | None,
    mapping: dict[str, FieldPath],
    options: dict[str, Any],
    runner: ChunkRunner,
    progress: ReadProgressFn | None,
) -> FileCounts:
    with ThreadPoolExecutor(1) as hasher:  # hashlib lets go of the GIL: read + hash meanwhile
        identity = hasher.submit(_file_identity, path)
        try:
            counts = FileCounts(path=path)
            sink = FileSink(run, counts)
            for batch in _file_batches(run, path, forced, mapping, options, runner, counts):
                sink.take(batch)
                if progress is not None:
                    for _ in range(batch.read):  # one call per record, as callers count them
                        progress("ingest", 1)
            sink.flush()
        finally:
            counts.size_bytes, counts.sha256 = identity.result()
    return counts


def _file_batches(
    run: RunState,
    path: str,
    forced: LogAdapter | None,
    mapping: dict[str, FieldPath],
    options: dict[str, Any],
    runner: ChunkRunner,
    counts: FileCounts,
) -> Iterator[Batch]:
    """The file's records as batches, in file order (sets ``counts.format``)."""
    source, owner = _open_source(path, forced, mapping, options)
    if source.columns is not None and mapping:
        check_columns(path, source.columns, mapping)
    run_id = run.result.run_id
    adapter = owner or forced
    detected = adapter is None and not mapping  # then each record may name its own format
    if source.line_chunks is not None:
        chunks: Iterator[LineChunk] = source.line_chunks
        undetected = None
        if adapter is None:
            adapter, head, undetected = _detect_chunks(chunks, path, mapping, options)
            chunks = chain(head, chunks)
        counts.format = adapter.name if adapter else None
        if adapter is not None:
            yield from runner.batches(
                chunks,
                adapter,
                path=path,
                run_id=run_id,
                serial_first=PARALLEL_AFTER,
                per_record=detected,
            )
            return
        records: Iterator[RawRecord] = (r for chunk in chunks for r in parse_chunk(chunk))
    else:
        records = iter(source)
        undetected = None
        if adapter is None:
            adapter, seen, undetected = _detect(records, path, mapping, options)
            records = chain(seen, records)
        counts.format = adapter.name if adapter else None
    detector = RecordDetector(adapter, options) if detected and adapter is not None else None
    while group := _take(records, CHUNK_RECORDS):
        yield process_records(
            group,
            adapter,
            mapping,
            path=path,
            run_id=run_id,
            undetected=undetected,
            detector=detector,
        )


#: Records normalized per batch when the source is not JSONL lines.
CHUNK_RECORDS = 1_000


def _take(records: Iterator[RawRecord], n: int) -> list[RawRecord]:
    group = []
    for record in records:
        group.append(record)
        if len(group) >= n:
            break
    return group


def _detect_chunks(
    chunks: Iterator[LineChunk],
    path: str,
    mapping: dict[str, FieldPath],
    options: dict[str, Any],
) -> tuple[LogAdapter | None, list[LineChunk], str | None]:
    """:func:`_detect` over chunks of lines: the adapter, the chunks read so far (to be
    processed first), and why none matched."""
    head: list[LineChunk] = []
    for chunk in chunks:
        head.append(chunk)
        records = parse_chunk(chunk)
        if any(record.data is not None for record in records):
            adapter, _, undetected = _detect(iter(records), path, mapping, options)
            return adapter, head, undetected
    return None, head, None
