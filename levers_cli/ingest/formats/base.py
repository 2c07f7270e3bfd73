"""The log-adapter contract: one adapter per log format, behind one small protocol.

An adapter turns one parsed record (a ``dict``) into a *partial call row* — a
:class:`PartialCall`, a ``dict`` whose keys are column names of ``calls`` (see
:mod:`levers_cli.schema`) — or into a list of them when one record holds several calls (a
conversation transcript: one call per assistant turn).
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

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, runtime_checkable

if TYPE_CHECKING:
    from levers_cli.ingest.jsonpath import FieldPath
    from levers_cli.ingest.readers import RecordSource

Record = dict[str, Any]


class PartialCall(TypedDict, total=False):
    """What an adapter (or ``--map``) knows of one call: columns of ``calls``
    (:data:`levers_cli.schema.CALL_COLUMNS`), each left out or ``None`` when the log has no
    value. The pipeline adds the rest (``format``, ``tokens_source``, ``query_hash``, ids,
    ``source_*``, ``run_id``, ``record_hash``) and estimates missing tokens
    (:func:`levers_cli.ingest.rows.finish_row`). Token counts are tokens as the provider
    billed them; the keys are the columns ``--map`` can fill
    (:data:`levers_cli.ingest.mapping.CONVERTERS`) and ``metadata``.
    """

    call_id: str | None  # the log's own id of the call (request or response id)
    ts: datetime | None  # when the call was made, aware UTC
    provider: str | None  # openai, anthropic, … (from the model name when left out)
    model: str | None  # the model as logged (alias or dated snapshot)
    conversation_id: str | None  # the log's own conversation/session/thread id
    turn: int | None  # position of the call in its conversation, from 1
    system_prompt: str | None  # the system/developer instructions' text
    messages: list[dict[str, Any]] | None  # the request's messages, [{role, content}, …]
    query: str | None  # the last user message's text: what the call was asked
    response: str | None  # the answer's text
    input_tokens: int | None  # tokens in, cached ones included
    cache_read_tokens: int | None  # of input_tokens: read from the provider's prompt cache
    cache_write_tokens: int | None  # of input_tokens: written to the prompt cache
    output_tokens: int | None  # tokens out, reasoning included
    reasoning_tokens: int | None  # of output_tokens: thinking/reasoning
    cache_write_1h_tokens: int | None  # of cache_write_tokens: written with the 1-hour TTL
    input_audio_tokens: int | None  # of input_tokens: audio in
    output_audio_tokens: int | None  # of output_tokens: audio out
    max_tokens: int | None  # the request's output cap, tokens
    finish_reason: str | None  # why generation stopped, as the provider says (stop, length…)
    latency_ms: float | None  # request to complete response, milliseconds
    status: str | None  # ok, error or no_response (levers_cli.schema.STATUS_*); ok when left out
    error: str | None  # the provider's error message of a failed call
    is_batch: bool | None  # sent through a provider's batch API
    service_tier: str | None  # the tier that served the call (flex, priority, …)
    inference_geo: str | None  # where the provider ran it, as its usage reports (us, global)
    server_tool_uses: dict[str, int] | None  # {tool: uses} of provider-side tools billed per use
    gateway_cache_hit: bool | None  # answered from a gateway's own cache: no provider call
    logged_cost_usd: float | None  # the call's cost as the log states it, USD
    metadata: dict[str, Any]  # the log's other fields, stored as JSON


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


class AdapterClass(Protocol):
    """A registered adapter class (:data:`levers_cli.ingest.ADAPTERS`): the class attributes
    ``levers formats`` lists, and a constructor taking the ``--map`` fields and options."""

    name: str
    description: str
    example: str

    def __call__(
        self, mapping: dict[str, FieldPath] | None = None, **options: Any
    ) -> LogAdapter: ...


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
