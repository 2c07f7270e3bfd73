"""Reading the batch output of a shadow or judge export: ``levers analyze`` hands a file here
when its ``custom_id``\\ s are requests levers wrote (``quality_requests``).

Lines are the providers' own batch output formats, parsed by the ingest adapters
(:class:`~levers_cli.ingest.formats.openai_batch.OpenAIBatchAdapter`: ``{"id", "custom_id",
"response": {"status_code", "request_id", "body"}, "error"}``;
:class:`~levers_cli.ingest.formats.anthropic_batch.AnthropicBatchAdapter`: ``{"custom_id",
"result": {"type": "succeeded", "message": {…}}}``). A shadow answer becomes a **variant**
paired with its original call (``variants``), never a call: spend, categories and run rates
do not see it. A judge's answer is parsed into a **grade** (:mod:`levers_cli.quality.judge`);
an unparseable judgment, a failed request or a line whose ``custom_id`` levers did not write
is a reject with its line (``rejects``), never a grade of 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from levers_cli.errors import LeversError
from levers_cli.ingest.readers import open_records
from levers_cli.quality.judge import JudgmentError, parse_pair, parse_single
from levers_cli.quality.tables import known_requests, store_grades, store_variants

if TYPE_CHECKING:
    from levers_cli.store import Workspace

#: Records read to decide whether a file is a quality result file.
PEEK = 20


@dataclass
class QualityResults:
    """What reading quality result files stored: per file the kind and counts."""

    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def variants(self) -> int:
        """Variants stored over all files."""
        return sum(f["variants"] for f in self.files)

    @property
    def grades(self) -> int:
        """Grades stored over all files."""
        return sum(f["grades"] for f in self.files)

    @property
    def rejected(self) -> int:
        """Lines rejected over all files."""
        return sum(f["rejected"] for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: files and totals."""
        return {
            "files": self.files,
            "variants": self.variants,
            "grades": self.grades,
            "rejected": self.rejected,
        }


def _custom_ids(path: str, limit: int = PEEK) -> list[str]:
    ids: list[str] = []
    try:
        for raw in open_records(path):
            data = raw.data
            if isinstance(data, dict) and isinstance(data.get("custom_id"), str):
                ids.append(data["custom_id"])
            if len(ids) >= limit:
                break
    except LeversError:
        return []
    return ids


def is_quality_output(ws: Workspace, path: str) -> bool:
    """True when the first records of ``path`` carry ``custom_id``\\ s of requests a shadow
    or judge export wrote into this workspace."""
    ids = _custom_ids(path)
    return bool(ids) and bool(known_requests(ws, ids))


def _adapter(record: dict[str, Any], batch_input: list[str]) -> Any:
    from levers_cli.ingest.formats.anthropic_batch import AnthropicBatchAdapter
    from levers_cli.ingest.formats.openai_batch import OpenAIBatchAdapter

    if isinstance(record.get("result"), dict):
        return AnthropicBatchAdapter(batch_input=batch_input)
    return OpenAIBatchAdapter(batch_input=batch_input)


def read_quality_output(
    ws: Workspace, path: str, run_id: int, batch_input: list[str] | None = None
) -> dict[str, Any]:
    """Store the variants or grades of one batch output file.

    Args:
        ws: the workspace the export registered its requests in.
        path: an OpenAI Batch output (or error) JSONL, or an Anthropic results JSONL.
        run_id: the run the rows and rejects are filed under.
        batch_input: the request files (``--batch-input``; optional: the request is known
            from the workspace).

    Returns:
        ``{"path", "kind", "variants", "grades", "rejected"}``.

    Raises:
        InputFileError: the file cannot be read.
    """
    variants: list[dict[str, Any]] = []
    grades: list[dict[str, Any]] = []
    rejects: list[tuple[str, int, str, str]] = []
    records = [(raw.line, raw.data, raw.text) for raw in open_records(path)]
    ids = [
        d["custom_id"]
        for _, d, _ in records
        if isinstance(d, dict) and isinstance(d.get("custom_id"), str)
    ]
    known = known_requests(ws, ids)
    adapters: dict[str, Any] = {}
    kinds: set[str] = set()
    for line, data, text in records:

        def reject(why: str, line: int = line, text: str = text) -> None:
            rejects.append((path, line, why, text[:10_000]))

        if not isinstance(data, dict):
            reject("not a JSON object")
            continue
        cid = data.get("custom_id")
        request = known.get(cid) if isinstance(cid, str) else None
        if request is None:
            reject(f"custom_id {cid!r} is no request of a levers shadow or judge export")
            continue
        kinds.add(request["kind"])
        key = "anthropic" if isinstance(data.get("result"), dict) else "openai"
        adapter = adapters.setdefault(key, _adapter(data, batch_input or []))
        try:
            partial = adapter.normalize(data)
        except LeversError as exc:
            reject(str(exc))
            continue
        ok = partial.get("status", "ok") in (None, "ok")
        if request["kind"] == "shadow":
            variants.append(
                {
                    "variant_id": cid,
                    "call_id": request["call_id"],
                    "lever": request["lever"],
                    "variant": request["variant"],
                    "target_model": request["target_model"],
                    "provider": partial.get("provider"),
                    "response": partial.get("response"),
                    "input_tokens": partial.get("input_tokens"),
                    "output_tokens": partial.get("output_tokens"),
                    "status": "ok" if ok else "error",
                    "error": partial.get("error"),
                    "source_file": path,
                    "source_line": line,
                    "run_id": run_id,
                }
            )
            continue
        if not ok:
            reject(f"judge request failed: {partial.get('error') or 'no answer'}")
            continue
        judgment = partial.get("response") or ""
        try:
            if request["mode"] == "pairwise":
                verdict = parse_pair(judgment, bool(request["swapped"]))
            else:
                verdict = parse_single(judgment)
        except JudgmentError as exc:
            reject(f"unparseable judgment: {exc}")
            continue
        grades.append(
            {
                "custom_id": cid,
                "variant_id": request["variant_id"],
                "call_id": request["call_id"],
                "mode": request["mode"],
                "swapped": request["swapped"],
                "judge_model": request["judge_model"],
                "score": verdict.score,
                "verdict": verdict.verdict,
                "judgment": judgment,
                "source_file": path,
                "source_line": line,
                "run_id": run_id,
            }
        )
    store_variants(ws, variants)
    store_grades(ws, grades)
    ws.insert_rejects(rejects, run_id)
    kind = "+".join(sorted(kinds)) or "unknown"
    return {
        "path": path,
        "kind": kind,
        "variants": len(variants),
        "grades": len(grades),
        "rejected": len(rejects),
    }


def read_quality_outputs(
    ws: Workspace, paths: list[str], batch_input: list[str] | None = None
) -> QualityResults:
    """:func:`read_quality_output` for each path under one run (recorded in ``runs`` with
    command ``analyze:quality``), in one transaction."""
    from datetime import UTC, datetime

    from levers_cli.version import __version__

    out = QualityResults()
    started = datetime.now(UTC)
    with ws.transaction():
        run_id = ws.next_run_id()
        for path in paths:
            out.files.append(read_quality_output(ws, path, run_id, batch_input))
        stored = out.variants + out.grades
        read = stored + out.rejected
        files = [{"path": f["path"], "format": f"quality-{f['kind']}"} for f in out.files]
        ws.record_run(
            run_id,
            "analyze:quality",
            started,
            datetime.now(UTC),
            json.loads(json.dumps(files)),
            (read, stored, 0, 0, out.rejected),
            __version__,
        )
    return out
