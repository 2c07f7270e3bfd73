"""Earlier reads of a file: a file whose calls a run stored under one format and ``--map``
must not be read again under another, as its records would get other call ids and every call
would be stored twice (``runs.files`` records each file's sha256, format and ``--map``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from levers_cli.errors import InputFileError

if TYPE_CHECKING:
    from levers_cli.ingest.result import FileCounts
    from levers_cli.store import Workspace

#: sha256 → ``(run id, format, --map text)`` of each run that stored calls from the file.
EarlierReads = dict[str, list[tuple[int, str | None, str]]]


def earlier_reads(ws: Workspace) -> EarlierReads:
    """Files stored by earlier runs: sha256 → ``(run id, format, --map text)`` of each run
    that stored calls from them."""
    found: EarlierReads = {}
    for run_id, files in ws.con.execute("SELECT run_id, files FROM runs").fetchall():
        for entry in json.loads(files) if files else []:
            if entry.get("sha256") and entry.get("stored"):
                read = (int(run_id), entry.get("format"), entry.get("mapping") or "")
                found.setdefault(entry["sha256"], []).append(read)
    return found


def refuse_reading_differently(counts: FileCounts, earlier: EarlierReads) -> None:
    """Stop the run (its transaction rolls back) when this file's calls were stored before
    under another format or ``--map``: its records would get other call ids and be stored a
    second time, counting every call twice.

    Raises:
        InputFileError: naming the earlier run, format and mapping.
    """
    if not counts.stored:
        return
    for run_id, fmt, mapping in earlier.get(counts.sha256, []):
        if (fmt, mapping) != (counts.format, counts.mapping):
            before = f"{fmt or 'an undetected format'}" + (
                f" with --map {mapping}" if mapping else ""
            )
            raise InputFileError(
                counts.path,
                f"this file's calls were stored by run {run_id}, read as {before}; reading it "
                f"as {counts.format}"
                + (f" with --map {counts.mapping}" if counts.mapping else "")
                + " would store them twice. Read it as before, or into a new workspace (-w)",
            )
