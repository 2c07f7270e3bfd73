"""What an ingest run gives back: counts per file and in total, and the first rejects.

Every record read ends as exactly one of stored, duplicate or rejected, so
``read == stored + duplicates + rejected`` for each file and for the run
(:func:`levers_cli.ingest.pipeline.ingest_files`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
    #: the ``--map`` options the file was read with (``field=path, …``; empty: none)
    mapping: str = ""


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
