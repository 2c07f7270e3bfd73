"""What an ingest run gives back: counts per file and in total, and the first rejects.

Every record read ends as exactly one of stored, duplicate, skipped (no model call, counted by
reason: :class:`~levers_cli.ingest.formats.base.SkipRecord`) or rejected, so
``read == stored + duplicates + skipped + rejected`` for each file and for the run
(:func:`levers_cli.ingest.pipeline.ingest_files`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FileCounts:
    """What one file gave: ``read == stored + duplicates + skipped + rejected``."""

    path: str
    format: str | None = None
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0
    rejected: int = 0
    #: skipped records (no model call) by the adapter's reason
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    size_bytes: int = 0
    sha256: str = ""
    #: records whose id was already taken by a different record (stored under ``id~hash``)
    id_collisions: int = 0
    #: the ``--map`` options the file was read with (``field=path, …``; empty: none)
    mapping: str = ""


@dataclass
class IngestResult:
    """One ingest run: per-file counts, totals, the first rejects (file, line, reason), and
    the files left out of the folders read because their names are no log's (kind → count,
    e.g. ``{".txt": 2}``)."""

    run_id: int
    files: list[FileCounts] = field(default_factory=list)
    reject_samples: list[tuple[str, int, str]] = field(default_factory=list)
    skipped_files: dict[str, int] = field(default_factory=dict)

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
    def skipped(self) -> int:
        return sum(f.skipped for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        """Skipped records of every file, by reason (most first)."""
        total: Counter[str] = Counter()
        for f in self.files:
            total.update(f.skipped_by_reason)
        return dict(total.most_common())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "run_id": self.run_id,
            "read": self.read,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "rejected": self.rejected,
            "skipped_by_reason": self.skipped_by_reason,
            "skipped_files": self.skipped_files,
            "files": [asdict(f) for f in self.files],
            "reject_samples": [
                {"file": f, "line": n, "error": e} for f, n, e in self.reject_samples
            ],
        }
