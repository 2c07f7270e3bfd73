"""``levers export batch``: the calls the batch lever selected, as provider batch input.

Formats and limits:

- OpenAI Batch API input: JSONL files, one request per line
  ``{"custom_id", "method": "POST", "url", "body"}``. A batch is created with one
  ``endpoint`` (``POST /v1/batches``: ``input_file_id``, ``endpoint``, ``completion_window``
  "24h"), and every line's ``url`` must be that endpoint; every line of one file must use the
  same model; at most 50,000 requests and 200 MB per file, and an ``/v1/embeddings`` batch at
  most 50,000 embedding inputs in all (platform.openai.com/docs/guides/batch, "Preparing your
  batch file" and "Rate limits"; openai-python ``BatchCreateParams``: ``endpoint`` and
  ``input_file_id`` docstrings). So calls are filed by (endpoint, model): a call logged from
  the Responses API stays a Responses request (``input``, ``instructions``,
  ``max_output_tokens``, ``reasoning``, ``text`` …) under ``/v1/responses``, a Chat
  Completions call a Chat request under ``/v1/chat/completions``, an embeddings call an
  embeddings request under ``/v1/embeddings`` (:mod:`levers_cli.export.request_bodies`).
  Files are named ``openai-<endpoint>-<model>-NNN.jsonl``.
- Anthropic Message Batches: the body of ``POST /v1/messages/batches``,
  ``{"requests": [{"custom_id", "params": {model, max_tokens, messages, system?}}]}``; at most
  100,000 requests or 256 MB per batch (docs.anthropic.com/en/docs/build-with-claude/
  batch-processing, "Batch limitations"); ``custom_id`` must match ``^[a-zA-Z0-9_-]{1,64}$``
  and be unique within the batch (API reference, "Create a Message Batch").

``manifest.json`` lists every file with the endpoint it is created with, its model, its
requests and bytes, and for OpenAI the ``POST /v1/batches`` body (less the ``input_file_id``
that uploading the file with ``purpose: batch`` returns).

Log ids rarely fit that pattern (``session-…/turn-0001/attempt-01``, ``req:2025-…``), and
cutting them to 64 characters makes ids that share a long prefix collide (../shared/cases
C15). An id that already fits is kept; any other becomes its cleaned first 51 characters,
``-`` and 12 hex digits of its SHA-256, so distinct call ids give distinct custom ids.
``custom_ids.csv`` maps each custom id back to its ``call_id``.

Text leaves the workspace here, so it is redacted unless ``redact=False``
(:mod:`levers_cli.redact`); turn it off only when the files go straight back to the account
the requests came from.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from levers_cli.export.common import (
    ExportError,
    ExportResult,
    prepare_out_dir,
    write_csv,
    write_json,
)
from levers_cli.export.request_bodies import (
    EMBEDDINGS,
    ENDPOINT_NAMES,
    anthropic_params,
    openai_body,
    openai_endpoint,
)
from levers_cli.redact import redact_value

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.store import Workspace

Selection = Literal["moved", "candidates", "all"]
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
#: (max requests, max bytes) per file; sources in the module docstring.
OPENAI_LIMITS = (50_000, 200 * 1024 * 1024)
ANTHROPIC_LIMITS = (100_000, 256 * 1024 * 1024)
#: Embedding inputs per ``/v1/embeddings`` batch (``BatchCreateParams.endpoint`` docstring).
OPENAI_EMBEDDING_INPUTS = 50_000
#: The one completion window the Batch API takes (``BatchCreateParams.completion_window``).
COMPLETION_WINDOW = "24h"
#: Where an Anthropic file is sent: it is the body of "Create a Message Batch".
ANTHROPIC_ENDPOINT = "/v1/messages/batches"
MANIFEST = "manifest.json"


def custom_ids(call_ids: list[str]) -> list[str]:
    """One valid, unique ``custom_id`` per call id, in order.

    Args:
        call_ids: the calls' ids, any characters, any length.

    Returns:
        Ids matching ``^[a-zA-Z0-9_-]{1,64}$``, pairwise distinct: a call id that fits
        stays as it is; another is cleaned (runs of other characters → ``_``), cut to 51
        characters and suffixed with ``-`` + the first 12 hex digits of its SHA-256.
    """
    out: list[str] = []
    seen: set[str] = set()
    for call_id in call_ids:
        if CUSTOM_ID.match(call_id):
            candidate = call_id
        else:
            clean = re.sub(r"[^a-zA-Z0-9_-]+", "_", call_id).strip("_")[:51] or "call"
            candidate = f"{clean}-{hashlib.sha256(call_id.encode()).hexdigest()[:12]}"
        base, n = candidate, 1
        while candidate in seen:
            suffix = f"-{n}"
            candidate, n = base[: 64 - len(suffix)] + suffix, n + 1
        seen.add(candidate)
        out.append(candidate)
    return out


def select_calls(
    ws: Workspace, config: Config, selection: Selection, level: str
) -> tuple[list[str], str]:
    """The call ids to export and a one-line description of the selection.

    Args:
        selection: ``moved`` (the batch lever's moved calls at ``level``), ``candidates``
            (every call a detection rule marks) or ``all`` (every call not already batched).
        level: ``conservative``, ``expected`` or ``aggressive`` (for ``moved``).
    """
    if selection == "all":
        rows = ws.con.execute(
            "SELECT call_id FROM calls WHERE NOT coalesce(is_batch, false) ORDER BY call_id"
        ).fetchall()
        return [r[0] for r in rows], "every call not already batched (--select all)"
    from levers_cli.levers.batch import BatchLever

    per_call = BatchLever().analyze(ws, config).per_call
    if per_call is None or per_call.is_empty():
        return [], "the batch lever found no candidate calls"
    if selection == "moved":
        per_call = per_call.filter(pl.col(f"batch_{level}"))
        why = f"calls the batch lever moves at the {level} level"
    else:
        why = "every call a batch detection rule marks (--select candidates)"
    return sorted(per_call["call_id"].to_list()), why


def load_calls(ws: Workspace, call_ids: list[str]) -> list[dict[str, Any]]:
    """The calls of `call_ids` as request rows (call_id, provider, model, format, messages,
    query, max_tokens, metadata, params), by time."""
    ws.load_temp("_export_ids", {"call_id": call_ids})
    rows = ws.con.execute(
        """SELECT c.call_id, c.provider, c.model, c.format, c.messages::VARCHAR, c.query,
                  c.max_tokens, c.metadata::VARCHAR
           FROM calls c JOIN _export_ids USING (call_id) ORDER BY c.ts NULLS LAST, c.call_id"""
    ).fetchall()
    keys = ("call_id", "provider", "model", "format", "messages", "query", "max_tokens",
            "metadata")  # fmt: skip
    out = [dict(zip(keys, row, strict=True)) for row in rows]
    for row in out:
        row["messages"] = json.loads(row["messages"] or "[]")
        row["metadata"] = json.loads(row["metadata"] or "{}") or {}
        row["params"] = row["metadata"].get("params") or {}
    return out


def _chunks(
    lines: list[tuple[str, str, int]], limits: tuple[int, int], overhead: int
) -> Iterator[list[tuple[str, str, int]]]:
    """Split (custom_id, json line, weight) items into runs within (weight, bytes) limits;
    the weight is 1 per request, or an embeddings request's number of inputs."""
    most, max_bytes = limits
    chunk: list[tuple[str, str, int]] = []
    size, weight = overhead, 0
    for item in lines:
        length = len(item[1].encode()) + 1
        if length + overhead > max_bytes:
            raise ExportError(f"request {item[0]} alone exceeds the {max_bytes:,}-byte file limit")
        if item[2] > most:
            raise ExportError(f"request {item[0]} alone has {item[2]:,} inputs; at most {most:,}")
        if chunk and (weight + item[2] > most or size + length > max_bytes):
            yield chunk
            chunk, size, weight = [], overhead, 0
        chunk.append(item)
        size += length
        weight += item[2]
    if chunk:
        yield chunk


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _line(item: dict[str, Any]) -> str:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


def export_batch(
    ws: Workspace,
    config: Config,
    out_dir: str,
    *,
    force: bool = False,
    selection: Selection = "moved",
    level: str = "expected",
    redact: bool = True,
    openai_limits: tuple[int, int] = OPENAI_LIMITS,
    anthropic_limits: tuple[int, int] = ANTHROPIC_LIMITS,
) -> ExportResult:
    """Write ``batch/`` under ``out_dir``: OpenAI JSONL per (endpoint, model), Anthropic
    requests JSON, ``manifest.json`` (each file's endpoint, model, requests, bytes) and
    ``custom_ids.csv`` (custom_id, call_id, provider, model, file, endpoint).

    Args:
        selection, level: which calls (see :func:`select_calls`).
        redact: pass the text through :func:`levers_cli.redact.redact_value`.
        openai_limits, anthropic_limits: (requests, bytes) per file; an OpenAI embeddings
            file also holds at most :data:`OPENAI_EMBEDDING_INPUTS` inputs.

    Returns:
        An :class:`ExportResult`; ``counts``: requests per provider and per OpenAI endpoint,
        and files; each row of ``files`` names its ``provider``, ``endpoint`` and ``model``.

    Raises:
        ExportError: nothing selected, no call of a provider with a batch API, the folder
            unusable, or an earlier export there without ``force``.
    """
    ids, why = select_calls(ws, config, selection, level)
    if not ids:
        wider = [s for s in ("candidates", "all") if s != selection and selection != "all"]
        hint = "; try " + " or ".join(f"--select {s}" for s in wider) if wider else ""
        raise ExportError(f"nothing to export: {why}{hint}")
    calls = load_calls(ws, ids)
    out = prepare_out_dir(out_dir, ["batch"], force)
    folder = out / "batch"
    result = ExportResult("batch", str(out), notes=[f"selection: {why}"])
    for call, cid in zip(calls, custom_ids([c["call_id"] for c in calls]), strict=True):
        call["custom_id"] = cid
    written = write_requests(
        folder, calls, config, result, redact=redact,
        openai_limits=openai_limits, anthropic_limits=anthropic_limits,
    )  # fmt: skip
    map_path = folder / "custom_ids.csv"
    rows = [
        (c["custom_id"], c["call_id"], *written.provider_of[c["custom_id"]][:2],
         written.file_of[c["custom_id"]], written.provider_of[c["custom_id"]][2])
        for c in calls
        if c["custom_id"] in written.file_of
    ]  # fmt: skip
    write_csv(map_path, ("custom_id", "call_id", "provider", "model", "file", "endpoint"), rows)
    result.add_file(map_path, len(rows))
    return result


@dataclass
class WrittenRequests:
    """What :func:`write_requests` wrote: custom_id → file name, custom_id → (provider,
    model, endpoint), and the requests per OpenAI endpoint and for Anthropic."""

    file_of: dict[str, str]
    provider_of: dict[str, tuple[str, str, str]]
    openai_by_endpoint: Counter[str]
    anthropic: int


def request_line(call: dict[str, Any], config: Config) -> tuple[str, str, dict[str, Any]] | None:
    """``(provider, endpoint, batch line)`` of one request: OpenAI ``{custom_id, method, url,
    body}``, Anthropic ``{custom_id, params}``; ``None`` for another provider. ``call`` is a
    :func:`load_calls` row with its ``custom_id`` (text not redacted here)."""
    provider = (call["provider"] or "").lower()
    cid = call["custom_id"]
    if provider == "openai":
        endpoint = openai_endpoint(call)
        body = openai_body(call, endpoint)
        return provider, endpoint, {"custom_id": cid, "method": "POST", "url": endpoint,
                                    "body": body}  # fmt: skip
    if provider == "anthropic":
        params = anthropic_params(call, int(config.get("export", "anthropic_default_max_tokens")))
        return provider, ANTHROPIC_ENDPOINT, {"custom_id": cid, "params": params}
    return None


def write_requests(
    folder: Path,
    calls: list[dict[str, Any]],
    config: Config,
    result: ExportResult,
    *,
    redact: bool = True,
    openai_limits: tuple[int, int] = OPENAI_LIMITS,
    anthropic_limits: tuple[int, int] = ANTHROPIC_LIMITS,
) -> WrittenRequests:
    """Write ``calls`` (:func:`load_calls` rows, each with a valid unique ``custom_id``) into
    ``folder`` (emptied first) as OpenAI JSONL per (endpoint, model) and Anthropic requests
    JSON within the limits, with ``manifest.json``; fill ``result``'s files, counts, details,
    redactions and notes. Shared by ``export batch``, ``export shadow`` and ``export judge``.

    Raises:
        ExportError: no call of a provider with a batch API, or a request over a limit.
    """
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    redactions: Counter[str] = Counter()
    openai_lines: dict[tuple[str, str], list[tuple[str, str, int]]] = {}
    anthropic_lines: list[tuple[str, str, int]] = []
    skipped: Counter[str] = Counter()
    provider_of: dict[str, tuple[str, str, str]] = {}
    for call in calls:
        made = request_line(call, config)
        if made is None:
            skipped[(call["provider"] or "").lower() or "(unknown)"] += 1
            continue
        provider, endpoint, line = made
        cid = call["custom_id"]
        key = "body" if provider == "openai" else "params"
        if redact:
            line[key] = redact_value(line[key], redactions)
        if provider == "openai":
            weight = len(line["body"]["input"]) if endpoint == EMBEDDINGS else 1
            openai_lines.setdefault((endpoint, call["model"]), []).append(
                (cid, _line(line), weight)
            )
        else:
            anthropic_lines.append((cid, _line(line), 1))
        provider_of[cid] = (provider, call["model"], endpoint)
    file_of = _write_openai(folder, openai_lines, openai_limits, result)
    wrapper = len('{"requests":[]}\n')
    for n, chunk in enumerate(_chunks(anthropic_lines, anthropic_limits, wrapper), start=1):
        path = folder / f"anthropic-{n:03d}.json"
        path.write_text(
            '{"requests":[' + ",".join(t for _, t, _ in chunk) + "]}\n", encoding="utf-8"
        )
        result.add_file(path, len(chunk), provider="anthropic", endpoint=ANTHROPIC_ENDPOINT)
        file_of.update((cid, path.name) for cid, _, _ in chunk)
    if not file_of:
        shutil.rmtree(folder)
        names = ", ".join(f"{p} ({n})" for p, n in skipped.most_common())
        raise ExportError(
            f"nothing to export: the selected calls are from {names}; "
            "only OpenAI and Anthropic batch formats are written"
        )
    batch_files = list(result.files)
    _write_manifest(folder / MANIFEST, batch_files)
    result.add_file(folder / MANIFEST, len(batch_files))
    by_endpoint: Counter[str] = Counter()
    for (endpoint, _), items in openai_lines.items():
        by_endpoint[endpoint] += len(items)
    result.counts = {
        "requests": len(file_of),
        "openai_requests": sum(len(v) for v in openai_lines.values()),
        **{
            f"openai_{ENDPOINT_NAMES[e].replace('-', '_')}_requests": n
            for e, n in sorted(by_endpoint.items())
        },
        "anthropic_requests": len(anthropic_lines),
        "files": len(batch_files),
        "skipped_calls": sum(skipped.values()),
    }
    result.details = {"files": _manifest_rows(batch_files)}
    result.redactions = dict(redactions) if redact else {}
    if skipped:
        result.notes.append(
            "skipped (no batch format written for the provider): "
            + ", ".join(f"{p} {n}" for p, n in skipped.most_common())
        )
    if openai_lines:
        result.notes.append(
            "OpenAI: upload each .jsonl with purpose=batch, then POST /v1/batches with the "
            f"endpoint of its row (one endpoint per file; {MANIFEST})"
        )
    if anthropic_lines:
        result.notes.append(f"Anthropic: POST each .json to {ANTHROPIC_ENDPOINT}")
    result.notes.append("redaction on" if redact else "redaction off (--no-redact)")
    return WrittenRequests(file_of, provider_of, by_endpoint, len(anthropic_lines))


def _write_openai(
    folder: Path,
    lines: dict[tuple[str, str], list[tuple[str, str, int]]],
    limits: tuple[int, int],
    result: ExportResult,
) -> dict[str, str]:
    """Write one run of files per (endpoint, model); return custom_id → file name."""
    file_of: dict[str, str] = {}
    for endpoint, model in sorted(lines):
        most = min(limits[0], OPENAI_EMBEDDING_INPUTS) if endpoint == EMBEDDINGS else limits[0]
        chunks = _chunks(lines[endpoint, model], (most, limits[1]), 0)
        for n, chunk in enumerate(chunks, start=1):
            name = f"openai-{ENDPOINT_NAMES[endpoint]}-{_safe(model)}-{n:03d}.jsonl"
            path = folder / name
            path.write_text("".join(text + "\n" for _, text, _ in chunk), encoding="utf-8")
            result.add_file(path, len(chunk), provider="openai", endpoint=endpoint, model=model)
            file_of.update((cid, name) for cid, _, _ in chunk)
    return file_of


def _manifest_rows(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One manifest row per batch file: name, provider, endpoint, model, requests, bytes and,
    for OpenAI, the ``POST /v1/batches`` body less ``input_file_id``."""
    rows = []
    for row in files:
        entry = {
            "file": Path(row["path"]).name, "provider": row["provider"],
            "endpoint": row["endpoint"], "model": row.get("model"),
            "requests": row["rows"], "bytes": row["bytes"],
        }  # fmt: skip
        if row["provider"] == "openai":
            entry["create_batch"] = {
                "endpoint": row["endpoint"],
                "completion_window": COMPLETION_WINDOW,
            }
        rows.append(entry)
    return rows


def _write_manifest(path: Path, files: list[dict[str, Any]]) -> None:
    write_json(path, {"format": "levers-batch-manifest/1", "files": _manifest_rows(files)})
