"""The in-order half of an ingest run: content ids, duplicates, id collisions and counts
for each batch of a file, then Arrow inserts (:meth:`levers_cli.store.Workspace.append_calls`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from levers_cli.ingest.rows import Batch
from levers_cli.store import Workspace

if TYPE_CHECKING:
    from levers_cli.ingest.result import FileCounts, IngestResult

#: Rows inserted per DuckDB statement.
BATCH_ROWS = 20_000


def collision_id(call_id: str, record_hash: str) -> str:
    """The id of a record whose logged id another record already has (some servers repeat
    ``chatcmpl-123``; weekly CSV exports restart their ids): ``id~`` + its content hash."""
    return f"{call_id}~{record_hash[:12]}"


def content_id(digest: str, occurrence: int) -> str:
    """Id of a record without its own: its content hash, plus ``#k`` for the k-th identical
    record of a file (identical calls are real calls; re-reading the file gives the same ids).
    """
    return f"h:{digest}" if occurrence == 1 else f"h:{digest}#{occurrence}"


@dataclass
class RunState:
    """What the files of one run share: ids seen so far (→ their ``record_hash``), and
    whether the workspace held calls before the run (then every batch is also checked
    against the stored ones; else ``seen`` alone knows every stored id)."""

    ws: Workspace
    result: IngestResult
    check_stored: bool
    seen: dict[str, str] = field(default_factory=dict)


class FileSink:
    """Takes one file's batches in order: content ids, duplicates, id collisions, counts
    (skipped records are counted only); inserts the rows and rejects every
    :data:`BATCH_ROWS` rows."""

    def __init__(self, run: RunState, counts: FileCounts) -> None:
        self.run = run
        self.counts = counts
        self.occurrences: Counter[str] = Counter()
        self.tables: list[Any] = []
        self.rows = 0
        self.rejects: list[tuple[str, int, str, str]] = []

    def take(self, batch: Batch) -> None:
        """Count a batch and queue its new rows (file order: batches must come in order)."""
        counts, path, samples = self.counts, self.counts.path, self.run.result.reject_samples
        if batch.skipped:
            skipped = sum(batch.skipped.values())
            counts.read += skipped
            counts.skipped += skipped
            for reason, n in batch.skipped.items():
                counts.skipped_by_reason[reason] = counts.skipped_by_reason.get(reason, 0) + n
        for line, reason, text in batch.rejects:
            counts.read += 1
            counts.rejected += 1
            self.rejects.append((path, line, reason, text))
            if len(samples) < 50:
                samples.append((path, line, reason))
        table = batch.table
        if table is None or table.num_rows == 0:
            return
        import pyarrow as pa

        ids = table.column("call_id").to_pylist()
        hashes = table.column("record_hash").to_pylist()
        keep = self._settle(batch.records, ids, hashes)
        column = table.schema.get_field_index("call_id")
        table = table.set_column(column, "call_id", pa.array(ids, pa.string()))
        if not all(keep):  # filtering copies every column: only when something is dropped
            table = table.filter(pa.array(keep, pa.bool_()))
        self.tables.append(table)
        self.rows += table.num_rows
        if self.rows >= BATCH_ROWS:
            self.flush()

    def _settle(
        self, records: list[tuple[int, str | None, int]], ids: list[Any], hashes: list[str]
    ) -> list[bool]:
        """Give id-less rows their content ids and drop duplicates, in place; returns which
        rows to store."""
        counts, seen, occurrences = self.counts, self.run.seen, self.occurrences
        keep = []
        position = 0
        for _line, digest, n_rows in records:
            if digest is not None:
                occurrences[digest] += 1
            for index in range(1, n_rows + 1):
                call_id, record_hash = ids[position], hashes[position]
                if not call_id:
                    part = digest if n_rows == 1 else f"{digest}.{index}"
                    call_id = content_id(str(part), occurrences[str(digest)])
                counts.read += 1
                known = seen.get(call_id)
                new = known != record_hash
                if new and known is not None:  # the same id on a different record
                    call_id = collision_id(call_id, record_hash)
                    counts.id_collisions += 1
                    new = seen.get(call_id) != record_hash
                if new:
                    seen[call_id] = record_hash
                else:
                    counts.duplicates += 1
                ids[position] = call_id
                keep.append(new)
                position += 1
        return keep

    def flush(self) -> None:
        """Insert the queued rows and rejects."""
        if self.tables:
            import pyarrow as pa

            table = pa.concat_tables(self.tables) if len(self.tables) > 1 else self.tables[0]
            stored, collisions = self.run.ws.append_calls(table, check_stored=self.run.check_stored)
            self.counts.id_collisions += collisions
            self.counts.stored += stored
            self.counts.duplicates += table.num_rows - stored
            self.tables, self.rows = [], 0
        self.run.ws.insert_rejects(self.rejects, self.run.result.run_id)
        self.rejects.clear()
