"""OpenAI Batch API output (and error) files, optionally joined to their input files.

Sources: the OpenAPI spec's ``BatchRequestOutput`` ("the per-line object of the batch output
and error files": ``id``, ``custom_id``, ``response {status_code, request_id, body}`` — body
being "the JSON body of the response" — and ``error {code, message}``, both nullable) and
``BatchRequestInput`` (``custom_id``, ``method``, ``url``, ``body``), as published in the
OpenAI API reference ("Batch — the request input object / the request output object") and
mirrored in docs.rs ``openai-struct`` ``models/batch_request_output.rs``; the Batch guide
(platform.openai.com/docs/guides/batch: outputs are matched to inputs by ``custom_id`` only,
their order may differ; expired requests are written to the error file).

A line's ``body`` is a Chat Completions or Responses object and is normalized by
:func:`~levers_cli.ingest.formats.openai_chat.chat_call` /
:func:`~levers_cli.ingest.formats.openai_responses.responses_call`. The output file holds no request
messages; pass the batch input file(s) as the ``batch_input`` option (``--batch-input``) to
recover them. Every call is ``is_batch`` (priced at the ``[batch]`` discount). A non-200
``status_code`` or a non-null top-level ``error`` is a failed call (status ``error``, zero
tokens); a line with neither a usable body nor an error is a :class:`RecordError`.
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

from levers_cli.errors import RecordError
from levers_cli.ingest.formats.base import MappedAdapter, PartialCall, Record
from levers_cli.ingest.formats.openai_chat import chat_call, openai_provider
from levers_cli.ingest.formats.openai_responses import input_messages, responses_call
from levers_cli.ingest.formats.pairs import fill_extras, last_user_text
from levers_cli.ingest.readers import open_records

InputIndex = dict[str, dict[str, Any]]


class OpenAIBatchAdapter(MappedAdapter):
    """Lines ``{"id", "custom_id", "response": {"status_code", "request_id", "body"},
    "error"}``; the ``batch_input`` option names the input files to join on ``custom_id``."""

    name = "openai-batch"
    description = "OpenAI Batch API output/error files (--batch-input adds the requests)"
    example = (
        '{"id": "batch_req_…", "custom_id": "request-1", "response": {"status_code": 200, '
        '"request_id": "…", "body": {"object": "chat.completion", ...}}, "error": null}'
    )

    #: The last input files read, by (path, size, mtime) — shared by the adapter instances
    #: the pipeline builds per file, so one ``--batch-input`` set is read once.
    _cache: ClassVar[tuple[tuple[Any, ...], InputIndex] | None] = None

    def sniff(self, record: Record) -> bool:
        """True for a batch output line: a ``custom_id`` with a ``response`` or ``error``."""
        if "request" in record or not isinstance(record.get("custom_id"), str):
            return False
        return "response" in record and ("error" in record or "id" in record)

    def normalize(self, record: Record) -> PartialCall:
        """Normalize one output line.

        Raises:
            RecordError: no ``custom_id``, or neither a usable response body nor an error.
        """
        custom_id = record.get("custom_id")
        if not isinstance(custom_id, str):
            raise RecordError("missing or not a string", field="custom_id")
        joined = self.inputs().get(custom_id) or {}
        request = joined["body"] if isinstance(joined.get("body"), dict) else {}
        response = record.get("response")
        metadata: dict[str, Any] = {"custom_id": custom_id, "batch_request_id": record.get("id")}
        if joined.get("url"):
            metadata["url"] = joined["url"]
        if isinstance(response, dict):
            metadata["request_id"] = response.get("request_id")
            metadata["status_code"] = response.get("status_code")
        line_error = record.get("error")
        if line_error is not None:
            return self._failed(record, request, _error_text(line_error), metadata)
        if not isinstance(response, dict):
            raise RecordError("no response and no error", field="response")
        status_code = response.get("status_code")
        body = response.get("body")
        if status_code is not None and status_code != 200:
            error = body.get("error") if isinstance(body, dict) else None
            text = _error_text(error) if error else f"HTTP {status_code}"
            return self._failed(record, request, text, metadata)
        if not isinstance(body, dict) or not body:
            raise RecordError("empty or missing response body", field="response.body")
        if body.get("object") == "response":
            partial = responses_call(request, body, {})
        elif "choices" in body or body.get("object") == "chat.completion":
            partial = chat_call(request, body, {}, messages_required=False)
        elif isinstance(body.get("error"), dict):
            return self._failed(record, request, _error_text(body["error"]), metadata)
        else:
            kind = body.get("object")
            raise RecordError(
                f"not a chat completion or response object (object={kind!r})",
                field="response.body",
            )
        partial["call_id"] = partial.get("call_id") or record.get("id")
        partial["is_batch"] = True
        partial["metadata"].update(metadata)
        return partial

    def _failed(
        self,
        record: Record,
        request: dict[str, Any],
        error: str,
        metadata: dict[str, Any],
    ) -> PartialCall:
        """A failed request: what the input tells of it, status ``error``, no tokens."""
        if "input" in request or "instructions" in request:
            messages = input_messages(request.get("input"), request.get("instructions"))
        else:
            found = request.get("messages")
            messages = [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []
        system = [m.get("content") for m in messages if m.get("role") in ("system", "developer")]
        partial: PartialCall = {
            "provider": openai_provider(request.get("model")),
            "model": request.get("model"),
            "call_id": record.get("id"),
            "messages": messages,
            "system_prompt": "\n\n".join(str(s) for s in system) if system else None,
            "query": last_user_text(messages),
            "status": "error",
            "error": error,
            "is_batch": True,
        }
        settings = {k: v for k, v in request.items() if k not in ("input", "instructions")}
        fill_extras(partial, settings, {})
        partial["metadata"].update(metadata)
        return partial

    def inputs(self) -> InputIndex:
        """The batch input requests by ``custom_id`` (``{}`` without ``batch_input``); read
        on first use. Lines without a ``custom_id`` and an object ``body`` are skipped; the
        first line of a repeated ``custom_id`` wins.

        Raises:
            InputFileError: an input file is missing or unreadable.
        """
        paths = self.options.get("batch_input") or []
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        if not paths:
            return {}
        key = tuple(_file_key(str(p)) for p in paths)
        cached = OpenAIBatchAdapter._cache
        if cached is not None and cached[0] == key:
            return cached[1]
        index: InputIndex = {}
        for path in paths:
            for raw in open_records(str(path)):
                data = raw.data or {}
                if isinstance(data.get("custom_id"), str) and isinstance(data.get("body"), dict):
                    index.setdefault(data["custom_id"], data)
        OpenAIBatchAdapter._cache = (key, index)
        return index


def _file_key(path: str) -> tuple[str, int, int]:
    try:
        stat = os.stat(path)
    except OSError:
        return (path, -1, -1)
    return (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        message = error.get("message")
        code = error.get("code")
        if message and code:
            return f"{code}: {message}"
        return str(message or code or json.dumps(error, ensure_ascii=False))
    return str(error)
