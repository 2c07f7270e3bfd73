"""The log-adapter contract: one adapter per log format, behind one small protocol.

An adapter turns one parsed record (a ``dict``) into a *partial call row* — a ``dict`` whose
keys are column names of ``calls`` (see :mod:`levers_cli.schema`) — or into a list of them
when one record holds several calls (a conversation transcript: one call per assistant turn).
Keys an adapter cannot fill are left out; the ingest pipeline fills tokens (tiktoken), hashes
and ids afterwards.

Most formats are lines or rows of a JSONL/JSON/CSV/Parquet file, read by
:mod:`levers_cli.ingest.readers`. An adapter whose format is a container of its own (a SQLite
database) overrides ``claims_file(path) -> bool`` and ``open_file(path) -> RecordSource``; the
pipeline asks every adapter before the generic readers (:class:`MappedAdapter` claims none).

A record that is well formed but is no model call (a Langfuse SPAN or EVENT observation, the
structure around the calls of a trace) is not an error: ``normalize`` raises
:class:`SkipRecord` with a short reason, and the run counts it as *skipped* under that reason,
so ``read == stored + duplicates + skipped + rejected``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from levers_cli.ingest.jsonpath import FieldPath
    from levers_cli.ingest.readers import RecordSource

Record = dict[str, Any]
PartialCall = dict[str, Any]


@runtime_checkable
class LogAdapter(Protocol):
    """A log format levers can read.

    Attributes:
        name: the format's name, as given to ``--format``.
        description: one line for ``levers formats``.
        example: one example record (a JSON line or CSV header) for ``levers formats``.
    """

    name: str
    description: str
    example: str

    def sniff(self, record: Record) -> bool:
        """Return True when ``record`` (the first record of a file) is in this format."""
        ...

    def claims_file(self, path: str) -> bool:
        """Return True when ``path`` is a container of this format's own (a SQLite database)
        that :meth:`open_file` reads instead of the generic readers."""
        ...

    def open_file(self, path: str) -> RecordSource:
        """Open a file this adapter claims, as records."""
        ...

    def normalize(self, record: Record) -> PartialCall | list[PartialCall]:
        """Turn one record into a partial call row (or several, in order).

        Raises:
            SkipRecord: the record is well formed but not a model call; the pipeline counts
                it as skipped under the reason.
            RecordError: the record is not usable; the pipeline quarantines it in ``rejects``.
        """
        ...


class SkipRecord(Exception):
    """Raised by :meth:`LogAdapter.normalize` for a record that is not a model call.

    Not a :class:`~levers_cli.errors.LeversError`: nothing is wrong with the record or the
    run. The pipeline counts skipped records per reason (``FileCounts.skipped_by_reason``).

    Args:
        reason: what the record is, short and the same for every record of its kind
            (``"Langfuse SPAN observation"``): it is the key records are counted under.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MappedAdapter:
    """Base of the shipped adapters: keeps the ``--map`` fields and the format-specific
    options (e.g. ``batch_input`` files) it was built with."""

    def __init__(self, mapping: dict[str, FieldPath] | None = None, **options: Any) -> None:
        self.mapping = mapping or {}
        self.options = options

    def claims_file(self, path: str) -> bool:
        """No file of its own: the generic readers read this format (see :class:`LogAdapter`)."""
        return False

    def open_file(self, path: str) -> RecordSource:
        """Never called, as :meth:`claims_file` claims no file.

        Raises:
            NotImplementedError: always.
        """
        raise NotImplementedError(f"{type(self).__name__} claims no file of its own: {path}")
