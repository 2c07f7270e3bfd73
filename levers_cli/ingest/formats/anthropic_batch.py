"""Anthropic Message Batches results (``anthropic-batch``): one JSONL line per request.

Format (API reference "Retrieve Message Batch results",
https://docs.anthropic.com/en/api/retrieving-message-batch-results, and the batch-processing
guide https://docs.anthropic.com/en/docs/build-with-claude/batch-processing; SDK types
``MessageBatchIndividualResponse``, ``MessageBatch{Succeeded,Errored,Canceled,Expired}Result``
and ``shared.ErrorResponse`` in anthropics/anthropic-sdk-python ``src/anthropic/types/``)::

    {"custom_id": "req-1", "result": {"type": "succeeded", "message": {<Message>}}}
    {"custom_id": "req-2", "result": {"type": "errored",
        "error": {"type": "error", "error": {"type": "invalid_request_error", "message": "…"}}}}
    {"custom_id": "req-3", "result": {"type": "canceled"}}
    {"custom_id": "req-4", "result": {"type": "expired"}}

Results come in any order; ``custom_id`` matches them to the requests.

Choices:

- Every line is one call with ``is_batch = True`` (prices get the ``[batch]`` factor).
- ``succeeded``: the message is normalized like an ``anthropic`` response (additive usage
  buckets, thinking, 1-hour cache writes).
- ``errored``: status ``error`` with the API's error message.
- ``canceled`` / ``expired``: also status ``error`` (``"canceled: …"``, ``"expired: …"``).
  They were submitted and belong to the batch's outcome, but never ran: no usage, so 0 tokens
  and $0, and they count in failure rates. ``metadata.batch_result`` names the result type.
- The request is not in the results file, so ``messages`` stay empty and ``query`` is ``''``
  — unless the ``batch_input`` option names the request file(s): JSONL lines
  ``{"custom_id": …, "params": {<Messages request>}}`` (the ``requests`` items of "Create a
  Message Batch") or that request body itself; they are joined on ``custom_id``.
  ``custom_id`` is always kept in ``metadata``.
"""

from __future__ import annotations

from typing import Any

from levers_cli.errors import RecordError
from levers_cli.ingest.formats.anthropic import AnthropicAdapter, message_fields
from levers_cli.ingest.formats.base import MappedAdapter, PartialCall, Record
from levers_cli.ingest.readers import open_records

#: ``result.type`` values of a results line.
RESULT_TYPES = ("succeeded", "errored", "canceled", "expired")
#: Error text stored for the results that never ran.
NOT_RUN = {
    "canceled": "canceled: the batch was canceled before this request was processed",
    "expired": "expired: the batch ended (24 h limit) before this request was processed",
}


class AnthropicBatchAdapter(MappedAdapter):
    """Lines of a Message Batches results file (``.jsonl``)."""

    name = "anthropic-batch"
    description = "Anthropic Message Batches results (.jsonl; --batch-input adds the requests)"
    example = (
        '{"custom_id": "req-1", "result": {"type": "succeeded", "message": {"id": "msg_…", '
        '"type": "message", "content": [...], "usage": {"input_tokens": 12, ...}}}}'
    )

    def __init__(self, mapping: Any = None, **options: Any) -> None:
        super().__init__(mapping, **options)
        self._requests: dict[str, dict[str, Any]] | None = None

    def sniff(self, record: Record) -> bool:
        """True for ``{"custom_id", "result": {"type": succeeded|errored|canceled|expired}}``."""
        result = record.get("result")
        return (
            "custom_id" in record
            and isinstance(result, dict)
            and result.get("type") in RESULT_TYPES
        )

    def normalize(self, record: Record) -> PartialCall:
        """Normalize one results line.

        Raises:
            RecordError: no ``custom_id``, an unknown result type, a succeeded result
                without a message object, or a usage count that is not a count.
            InputFileError: a ``batch_input`` file cannot be read.
        """
        custom_id = record.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            raise RecordError("missing or not a string", field="custom_id")
        result = record.get("result")
        kind = result.get("type") if isinstance(result, dict) else None
        if kind not in RESULT_TYPES:
            raise RecordError(f"unknown result type {kind!r}", field="result.type")
        assert isinstance(result, dict)
        response = _response_of(kind, result)
        params = self._batch_requests().get(custom_id)
        if params is not None:
            partial = AnthropicAdapter().normalize({"request": params, "response": response})
        else:
            partial = {
                "provider": "anthropic",
                "model": response.get("model"),
                "call_id": response.get("id"),
                "messages": [],
                "query": "",
                "metadata": {},
            }
            partial.update(message_fields(response, partial["metadata"]))
        partial["is_batch"] = True
        partial["metadata"].update({"custom_id": custom_id, "batch_result": kind})
        if kind == "errored" and isinstance(response.get("error"), dict):
            partial["metadata"]["error_type"] = response["error"].get("type")
        return partial

    def _batch_requests(self) -> dict[str, dict[str, Any]]:
        """The ``params`` of the requests named by the ``batch_input`` option, by
        ``custom_id`` (read once)."""
        if self._requests is None:
            self._requests = {}
            paths = self.options.get("batch_input") or []
            for path in [paths] if isinstance(paths, str) else paths:
                self._requests.update(read_batch_requests(path))
        return self._requests


def _response_of(kind: str, result: dict[str, Any]) -> dict[str, Any]:
    """The Messages response (or error response) a result stands for."""
    if kind == "succeeded":
        message = result.get("message")
        if not isinstance(message, dict):
            raise RecordError("missing or not an object", field="result.message")
        return message
    if kind == "errored":
        outer = result.get("error")
        # ErrorResponse {"type": "error", "error": {type, message}}; tolerate the bare object
        inner = outer.get("error") if isinstance(outer, dict) else None
        error = inner if isinstance(inner, dict) else outer if isinstance(outer, dict) else {}
        return {"type": "error", "error": error or {"message": "errored (no error object)"}}
    return {"type": "error", "error": {"type": kind, "message": NOT_RUN[kind]}}


def read_batch_requests(path: str) -> dict[str, dict[str, Any]]:
    """Messages request ``params`` by ``custom_id`` from a batch request file.

    Accepts JSONL (or a JSON array) of ``{"custom_id", "params"}`` items, or the "Create a
    Message Batch" body ``{"requests": [...]}``. Items of other shapes (an OpenAI batch input
    line, which the same ``--batch-input`` option may name) are skipped.

    Raises:
        InputFileError: the file is missing or not a readable JSON/JSONL/CSV/Parquet file.
    """
    found: dict[str, dict[str, Any]] = {}
    for raw in open_records(path):
        data = raw.data or {}
        items = data["requests"] if isinstance(data.get("requests"), list) else [data]
        for item in items:
            if (
                isinstance(item, dict)
                and isinstance(item.get("custom_id"), str)
                and isinstance(item.get("params"), dict)
            ):
                found[item["custom_id"]] = item["params"]
    return found
