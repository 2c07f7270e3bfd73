"""Worker processes for ingest: chunks of JSONL lines parsed and normalized on every core.

Python parses and normalizes one record at a time under one interpreter lock, so a single
process reaches a few thousand records per second at best; DuckDB's own ``read_json`` uses
every core. :class:`ChunkRunner` hands chunks to a pool of worker processes (spawned, so no
DuckDB thread is forked) and gives their :class:`~levers_cli.ingest.rows.Batch` es back in
file order, a few chunks ahead of the caller, which meanwhile inserts the previous ones.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from levers_cli.ingest.detect import RecordDetector
from levers_cli.ingest.formats.base import LogAdapter
from levers_cli.ingest.jsonpath import FieldPath
from levers_cli.ingest.records import LineChunk, parse_chunk
from levers_cli.ingest.rows import Batch, process_records

#: Formats whose ``normalize`` depends on the record alone (no sibling file, no history of
#: earlier records), so any process may normalize any record of them.
PARALLEL_FORMATS = frozenset(
    {
        "openai-chat",
        "openai-responses",
        "anthropic",
        "langfuse",
        "litellm-payload",
        "litellm-spendlogs",
        "helicone",
        "chat-messages",
        "sharegpt",
        "transcript",
        "gemini",
        "bedrock",
        "otel",
        "request-only",
        "generic",
    }
)
#: Most worker processes started (each holds one chunk and an adapter).
MAX_WORKERS = 8


def default_workers() -> int:
    """Worker processes to use: the cores this process may run on, at most
    :data:`MAX_WORKERS` (1 means no workers)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


class ChunkRunner:
    """Turns chunks of lines into batches for one ingest run, in this process or in worker
    processes started on first need (and stopped by :meth:`close`).

    Args:
        mapping: the run's ``--map`` fields.
        options: the run's adapter options.
        workers: worker processes; ``None`` for :func:`default_workers`, 1 for none.
    """

    def __init__(
        self, mapping: dict[str, FieldPath], options: dict[str, Any], workers: int | None = None
    ) -> None:
        self.mapping = mapping
        self.options = options
        self.workers = default_workers() if workers is None else max(1, workers)
        self._pool: ProcessPoolExecutor | None = None

    def batches(
        self,
        chunks: Iterator[LineChunk],
        adapter: LogAdapter,
        *,
        path: str,
        run_id: int,
        serial_first: int,
        per_record: bool = False,
    ) -> Iterator[Batch]:
        """The batches of ``chunks``, in order: the first ``serial_first`` lines here, the
        rest in worker processes when the format allows it (:data:`PARALLEL_FORMATS`).
        With ``per_record`` (a detected format), a record ``adapter`` does not sniff is read
        by the adapter that does (:class:`~levers_cli.ingest.detect.RecordDetector`).

        Raises:
            LeversError: as :func:`~levers_cli.ingest.rows.process_records` (a chunk that
                fails in a worker is redone here, so the error keeps its type).
        """
        parallel = self.workers > 1 and adapter.name in PARALLEL_FORMATS
        detector = RecordDetector(adapter, self.options) if per_record else None
        done = 0
        for chunk in chunks:
            yield self._here(chunk, adapter, path, run_id, detector)
            done += chunk.count
            if parallel and done >= serial_first:
                break
        else:
            return
        pending: deque[tuple[LineChunk, Future[Batch] | None]] = deque()
        for chunk in chunks:
            future = self._submit(chunk, adapter.name, path, run_id, per_record)
            pending.append((chunk, future))
            if len(pending) > 2 * self.workers:
                yield self._collect(*pending.popleft(), adapter, path, run_id, detector)
        while pending:
            yield self._collect(*pending.popleft(), adapter, path, run_id, detector)

    def close(self) -> None:
        """Stop the worker processes (queued chunks are dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _here(
        self,
        chunk: LineChunk,
        adapter: LogAdapter,
        path: str,
        run_id: int,
        detector: RecordDetector | None = None,
    ) -> Batch:
        return process_records(
            parse_chunk(chunk), adapter, self.mapping, path=path, run_id=run_id, detector=detector
        )

    def _submit(
        self, chunk: LineChunk, format_name: str, path: str, run_id: int, per_record: bool
    ) -> Future[Batch] | None:
        try:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker,
                    initargs=(self.mapping, self.options),
                )
            return self._pool.submit(_process_chunk, chunk, format_name, path, run_id, per_record)
        except RuntimeError:  # a broken pool (BrokenProcessPool) or an interpreter shutting down
            return None

    def _collect(
        self,
        chunk: LineChunk,
        future: Future[Batch] | None,
        adapter: LogAdapter,
        path: str,
        run_id: int,
        detector: RecordDetector | None = None,
    ) -> Batch:
        if future is not None:
            try:
                return future.result()
            except Exception:  # redone here: a record error keeps its type, a dead worker its chunk
                pass
        return self._here(chunk, adapter, path, run_id, detector)


# --- in the worker processes ---------------------------------------------------------------

_STATE: dict[str, Any] = {}


def _init_worker(mapping: dict[str, FieldPath], options: dict[str, Any]) -> None:
    _STATE["mapping"] = mapping
    _STATE["options"] = options
    _STATE["adapters"] = {}
    parent = os.getppid()
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    """End this worker when the process that started it is gone (killed: it could not stop
    its pool), instead of waiting on its queue for ever."""
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_S)
    os._exit(1)


#: How often a worker checks that its parent is alive (seconds).
_PARENT_POLL_S = 0.5


def _process_chunk(
    chunk: LineChunk, format_name: str, path: str, run_id: int, per_record: bool = False
) -> Batch:
    from levers_cli.ingest import get_adapter

    adapters: dict[str, LogAdapter] = _STATE["adapters"]
    if format_name not in adapters:
        adapters[format_name] = get_adapter(format_name, _STATE["mapping"], **_STATE["options"])
    detectors: dict[str, RecordDetector] = _STATE.setdefault("detectors", {})
    if per_record and format_name not in detectors:
        detectors[format_name] = RecordDetector(adapters[format_name], _STATE["options"])
    return process_records(
        parse_chunk(chunk),
        adapters[format_name],
        _STATE["mapping"],
        path=path,
        run_id=run_id,
        detector=detectors.get(format_name) if per_record else None,
    )
