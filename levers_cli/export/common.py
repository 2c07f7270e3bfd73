"""What every exporter shares: the output folder checks (a file in the way, not writable,
an earlier export that ``--force`` must allow to overwrite), the result record, and small
writers (JSON, JSONL, CSV, YAML). The "analyzed yet?" check is the workspace's own
(:meth:`levers_cli.store.Workspace.require_analysis`).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from levers_cli.errors import LeversError

#: Where exports go unless ``--out`` says otherwise (DESIGN §7: "into reports/").
DEFAULT_OUT = "reports"


class ExportError(LeversError):
    """An export cannot be written: nothing to export, or the output folder is unusable."""


@dataclass
class ExportResult:
    """What one export wrote.

    Attributes:
        kind: ``router-config``, ``caps``, ``workflows``, ``batch`` or ``lora``.
        out_dir: the folder written into.
        files: one row per file: ``{"path": str, "rows": int, "bytes": int, ...}``.
        counts: headline counts (requests, categories, examples …).
        redactions: placeholder type → spans replaced (empty when redaction was off or
            found nothing).
        notes: one-line remarks for the user (what was skipped and why, what is assumed).
        details: kind-specific figures for ``--json`` (route accuracy, token statistics …).
    """

    kind: str
    out_dir: str
    files: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    redactions: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add_file(self, path: Path, rows: int, **extra: Any) -> None:
        """Record a written file with its row count and size in bytes."""
        self.files.append({"path": str(path), "rows": rows, "bytes": path.stat().st_size, **extra})

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of everything above."""
        return {
            "kind": self.kind,
            "out_dir": self.out_dir,
            "files": self.files,
            "counts": self.counts,
            "redactions": self.redactions,
            "notes": self.notes,
            "details": self.details,
        }


def prepare_out_dir(out_dir: str | os.PathLike[str], names: Iterable[str], force: bool) -> Path:
    """Create ``out_dir`` if needed and make sure the files ``names`` may be written.

    Args:
        out_dir: the export folder.
        names: the file (or sub-folder) names the export will write inside it.
        force: allow overwriting files that exist.

    Returns:
        ``out_dir`` as a Path, existing and writable.

    Raises:
        ExportError: ``out_dir`` is a file, cannot be created or written, or one of
            ``names`` exists and ``force`` is False.
    """
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise ExportError(f"--out {path} is a file; name a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"--out {path}: cannot create the folder ({exc.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ExportError(f"--out {path}: the folder is not writable")
    if not force:
        for name in names:
            if (path / name).exists():
                raise ExportError(
                    f"{path / name} exists from an earlier export; pass --force to overwrite it"
                )
    return path


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented UTF-8 JSON with a final newline."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write one compact JSON object per line; return the number of lines."""
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1
    return count


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write a CSV with ``header``; return the number of data rows."""
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def write_yaml(path: Path, data: Any, header: str = "") -> None:
    """Write ``data`` as block-style YAML (PyYAML ``safe_dump``, key order kept), after
    ``header`` (comment lines, each starting with ``#``)."""
    import yaml

    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    path.write_text(header + text, encoding="utf-8")
