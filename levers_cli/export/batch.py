"""``levers export batch``: the calls the batch lever selected, as provider batch input.

Formats and limits:

- OpenAI Batch API input: a JSONL file, one request per line
  ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}``; every
  line of one file must use the same model; at most 50,000 requests and 200 MB per file
  (platform.openai.com/docs/guides/batch, "Preparing your batch file" and "Rate limits"; the
  SDK's ``BatchCreateParams.input_file_id`` docstring repeats both limits).
- Anthropic Message Batches: the body of ``POST /v1/messages/batches``,
  ``{"requests": [{"custom_id", "params": {model, max_tokens, messages, system?}}]}``; at most
  100,000 requests or 256 MB per batch (docs.anthropic.com/en/docs/build-with-claude/
  batch-processing, "Batch limitations"); ``custom_id`` must match ``^[a-zA-Z0-9_-]{1,64}$``
  and be unique within the batch (API reference, "Create a Message Batch").

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
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from levers_cli.export.common import ExportError, ExportResult, prepare_out_dir, write_csv
from levers_cli.redact import redact_value

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.store import Workspace

Selection = Literal["moved", "candidates", "all"]
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
#: (max requests, max bytes) per file; sources in the module docstring.
OPENAI_LIMITS = (50_000, 200 * 1024 * 1024)
ANTHROPIC_LIMITS = (100_000, 256 * 1024 * 1024)
OPENAI_URL = "/v1/chat/completions"
#: Request settings kept from the log (``metadata.params``), per API (the parameters of
#: Chat Completions and of Messages in their API references).
_OPENAI_PARAMS = (
    "temperature", "top_p", "n", "stop", "seed", "presence_penalty", "frequency_penalty",
    "logit_bias", "logprobs", "top_logprobs", "tools", "tool_choice", "parallel_tool_calls",
    "response_format", "reasoning_effort", "max_completion_tokens", "max_tokens",
)  # fmt: skip
_ANTHROPIC_PARAMS = (
    "temperature", "top_p", "top_k", "stop_sequences", "tools", "tool_choice", "thinking",
)  # fmt: skip
_OPENAI_MESSAGE_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id", "refusal")
#: Reasoning models take ``max_completion_tokens`` and refuse ``max_tokens`` (OpenAI API
#: reference, Chat Completions: "max_tokens … not compatible with o-series models").
_REASONING = re.compile(r"^(o\d|gpt-5)")


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


def _load(ws: Workspace, call_ids: list[str]) -> list[dict[str, Any]]:
    ws.load_temp("_export_ids", {"call_id": call_ids})
    rows = ws.con.execute(
        """SELECT c.call_id, c.provider, c.model, c.messages::VARCHAR, c.max_tokens,
                  c.metadata::VARCHAR
           FROM calls c JOIN _export_ids USING (call_id) ORDER BY c.ts NULLS LAST, c.call_id"""
    ).fetchall()
    keys = ("call_id", "provider", "model", "messages", "max_tokens", "metadata")
    out = [dict(zip(keys, row, strict=True)) for row in rows]
    for row in out:
        row["messages"] = json.loads(row["messages"] or "[]")
        row["params"] = (json.loads(row["metadata"] or "{}") or {}).get("params") or {}
    return out


def openai_body(call: dict[str, Any]) -> dict[str, Any]:
    """The Chat Completions request body of a logged call (model, messages, settings)."""
    messages = [
        {k: m[k] for k in _OPENAI_MESSAGE_KEYS if k in m}
        for m in call["messages"]
        if m.get("role") in ("system", "developer", "user", "assistant", "tool")
    ]
    body: dict[str, Any] = {"model": call["model"], "messages": messages}
    body.update({k: call["params"][k] for k in _OPENAI_PARAMS if k in call["params"]})
    cap = call["max_tokens"]
    body.pop("max_tokens", None)
    body.pop("max_completion_tokens", None)
    if cap:
        key = "max_completion_tokens" if _REASONING.match(call["model"] or "") else "max_tokens"
        body[key] = int(cap)
    return body


def anthropic_params(call: dict[str, Any], default_max_tokens: int) -> dict[str, Any]:
    """The Messages API parameters of a logged call; ``max_tokens`` (required there) is the
    logged cap, else ``default_max_tokens``."""
    system = [m["content"] for m in call["messages"] if m.get("role") == "system"]
    messages = [
        {"role": m["role"], "content": m.get("content") or ""}
        for m in call["messages"]
        if m.get("role") in ("user", "assistant")
    ]
    params: dict[str, Any] = {
        "model": call["model"],
        "max_tokens": int(call["max_tokens"] or default_max_tokens),
        "messages": messages,
    }
    if system:
        texts = [s if isinstance(s, str) else json.dumps(s) for s in system]
        params["system"] = "\n\n".join(texts)
    params.update({k: call["params"][k] for k in _ANTHROPIC_PARAMS if k in call["params"]})
    return params


def _chunks(lines: list[tuple[str, str]], limits: tuple[int, int], overhead: int):
    """Split (custom_id, json line) pairs into runs within (requests, bytes) limits."""
    most, max_bytes = limits
    chunk: list[tuple[str, str]] = []
    size = overhead
    for item in lines:
        length = len(item[1].encode()) + 1
        if length + overhead > max_bytes:
            raise ExportError(f"request {item[0]} alone exceeds the {max_bytes:,}-byte file limit")
        if chunk and (len(chunk) >= most or size + length > max_bytes):
            yield chunk
            chunk, size = [], overhead
        chunk.append(item)
        size += length
    if chunk:
        yield chunk


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


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
    """Write ``batch/`` under ``out_dir``: OpenAI JSONL per model, Anthropic requests JSON,
    and ``custom_ids.csv`` (custom_id, call_id, provider, model, file).

    Args:
        selection, level: which calls (see :func:`select_calls`).
        redact: pass the text through :func:`levers_cli.redact.redact_value`.
        openai_limits, anthropic_limits: (requests, bytes) per file.

    Returns:
        An :class:`ExportResult`; ``counts``: requests per provider and files.

    Raises:
        ExportError: nothing selected, no call of a provider with a batch API, the folder
            unusable, or an earlier export there without ``force``.
    """
    ids, why = select_calls(ws, config, selection, level)
    if not ids:
        wider = [s for s in ("candidates", "all") if s != selection and selection != "all"]
        hint = "; try " + " or ".join(f"--select {s}" for s in wider) if wider else ""
        raise ExportError(f"nothing to export: {why}{hint}")
    calls = _load(ws, ids)
    out = prepare_out_dir(out_dir, ["batch"], force)
    folder = out / "batch"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    result = ExportResult("batch", str(out), notes=[f"selection: {why}"])
    redactions: Counter[str] = Counter()
    default_max = int(config.get("export", "anthropic_default_max_tokens"))
    id_of = dict(
        zip([c["call_id"] for c in calls], custom_ids([c["call_id"] for c in calls]), strict=True)
    )
    openai_lines: dict[str, list[tuple[str, str]]] = {}
    anthropic_lines: list[tuple[str, str]] = []
    skipped: Counter[str] = Counter()
    provider_of: dict[str, tuple[str, str]] = {}
    for call in calls:
        cid = id_of[call["call_id"]]
        provider = (call["provider"] or "").lower()
        if provider == "openai":
            body = openai_body(call)
            body = redact_value(body, redactions) if redact else body
            line = {"custom_id": cid, "method": "POST", "url": OPENAI_URL, "body": body}
            openai_lines.setdefault(call["model"], []).append(
                (cid, json.dumps(line, ensure_ascii=False, separators=(",", ":")))
            )
        elif provider == "anthropic":
            params = anthropic_params(call, default_max)
            params = redact_value(params, redactions) if redact else params
            item = {"custom_id": cid, "params": params}
            anthropic_lines.append(
                (cid, json.dumps(item, ensure_ascii=False, separators=(",", ":")))
            )
        else:
            skipped[provider or "(unknown)"] += 1
            continue
        provider_of[cid] = (provider, call["model"])
    file_of: dict[str, str] = {}
    for model in sorted(openai_lines):
        for n, chunk in enumerate(_chunks(openai_lines[model], openai_limits, 0), start=1):
            path = folder / f"openai-{_safe(model)}-{n:03d}.jsonl"
            path.write_text("".join(text + "\n" for _, text in chunk), encoding="utf-8")
            result.add_file(path, len(chunk), provider="openai", model=model)
            file_of.update((cid, path.name) for cid, _ in chunk)
    wrapper = len('{"requests":[]}\n')
    for n, chunk in enumerate(_chunks(anthropic_lines, anthropic_limits, wrapper), start=1):
        path = folder / f"anthropic-{n:03d}.json"
        path.write_text('{"requests":[' + ",".join(t for _, t in chunk) + "]}\n", encoding="utf-8")
        result.add_file(path, len(chunk), provider="anthropic")
        file_of.update((cid, path.name) for cid, _ in chunk)
    if not file_of:
        shutil.rmtree(folder)
        names = ", ".join(f"{p} ({n})" for p, n in skipped.most_common())
        raise ExportError(
            f"nothing to export: the selected calls are from {names}; "
            "only OpenAI and Anthropic batch formats are written"
        )
    map_path = folder / "custom_ids.csv"
    rows = [
        (cid, call_id, *provider_of[cid], file_of[cid])
        for call_id, cid in id_of.items()
        if cid in file_of
    ]
    write_csv(map_path, ("custom_id", "call_id", "provider", "model", "file"), rows)
    result.add_file(map_path, len(rows))
    result.counts = {
        "requests": len(file_of),
        "openai_requests": sum(len(v) for v in openai_lines.values()),
        "anthropic_requests": len(anthropic_lines),
        "files": len(result.files) - 1,
        "skipped_calls": sum(skipped.values()),
    }
    result.redactions = dict(redactions) if redact else {}
    if skipped:
        result.notes.append(
            "skipped (no batch format written for the provider): "
            + ", ".join(f"{p} {n}" for p, n in skipped.most_common())
        )
    result.notes.append("redaction on" if redact else "redaction off (--no-redact)")
    return result
