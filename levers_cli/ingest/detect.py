"""Format detection record by record, for files whose records are not all in one format.

A file's format is detected from its first records (:func:`levers_cli.ingest.pipeline`);
a custom logger may still write Chat Completions pairs, Responses objects and bare requests
into one JSONL. :class:`RecordDetector` keeps the detected adapter for every record it
sniffs and asks the other registered adapters, in registry order, about a record it does
not; a record no adapter sniffs stays with the detected one (which then rejects it with its
own reason, as before).
"""

from __future__ import annotations

from typing import Any

from levers_cli.ingest.formats.base import LogAdapter, Record


class RecordDetector:
    """Chooses the adapter of each record of one auto-detected file.

    Args:
        first: the adapter detected from the file's first records.
        options: the run's adapter options (each adapter is built once, with them).

    Adapters are built on first need and kept, so a format whose ``normalize`` counts
    across records (``llm-logs`` conversation turns) keeps its state within a process.
    """

    def __init__(self, first: LogAdapter, options: dict[str, Any]) -> None:
        self.first = first
        self.options = options
        self._others: list[LogAdapter] | None = None

    def adapter_for(self, record: Record) -> LogAdapter:
        """The adapter for ``record``: the detected one when it sniffs the record, else the
        first other registered adapter that does, else the detected one."""
        if self.first.sniff(record):
            return self.first
        for adapter in self._candidates():
            if adapter.sniff(record):
                return adapter
        return self.first

    def _candidates(self) -> list[LogAdapter]:
        if self._others is None:
            from levers_cli.ingest import ADAPTERS, get_adapter

            self._others = [
                get_adapter(name, None, **self.options)
                for name in ADAPTERS
                if name != self.first.name
            ]
        return self._others
