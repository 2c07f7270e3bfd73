"""``levers export judge``: batch requests that grade every variant without a grade
(the quality loop, ../shared/DESIGN.md §9).

``single``: one request per variant, MT-Bench's reference-guided grading with the original
call's answer as the reference ("Rating: [[n]]"). ``pairwise``: two requests per variant, the
original as assistant A and the variant as B, then swapped (Arena-Hard's prompt and verdicts).
Prompts: :mod:`levers_cli.quality.judge`. The question shown to the judge is the call's
query (its last user message). Requests go through
:func:`levers_cli.export.batch.write_requests` (the judge model's provider's batch format,
``temperature`` 0) under ``judge/`` with ``custom_ids.csv`` (``custom_id,call_id,lever,
variant,variant_id,mode,swapped,judge_model,file``); they are recorded in the workspace so
``levers analyze`` parses their output into grades.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Literal

from levers_cli.errors import UsageError
from levers_cli.export.batch import write_requests
from levers_cli.export.common import ExportError, ExportResult, prepare_out_dir, write_csv
from levers_cli.ingest.fields import provider_for_model
from levers_cli.quality import register_requests
from levers_cli.quality.judge import JUDGE_MAX_TOKENS, pair_prompt, single_prompt

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.store import Workspace

FOLDER = "judge"
MAP_COLUMNS = (
    "custom_id",
    "call_id",
    "lever",
    "variant",
    "variant_id",
    "mode",
    "swapped",
    "judge_model",
    "file",
)


def judge_custom_id(variant_id: str, mode: str, judge_model: str, swapped: bool) -> str:
    """``judge-<s|p>-`` + 20 hex digits of SHA-256(variant, mode, judge, order)."""
    key = f"{variant_id}\x1f{mode}\x1f{judge_model}\x1f{int(swapped)}"
    return f"judge-{mode[0]}-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def _ungraded(ws: Workspace, mode: str, judge_model: str) -> list[dict[str, Any]]:
    cursor = ws.con.execute(
        """SELECT v.variant_id, v.call_id, v.lever, v.variant, c.query, c.response, v.response
           FROM variants v JOIN calls c USING (call_id)
           WHERE v.status = 'ok' AND v.response IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM grades g WHERE g.variant_id = v.variant_id AND g.mode = ?
                   AND g.judge_model = ?)
           ORDER BY v.variant_id""",
        [mode, judge_model],
    )
    keys = ("variant_id", "call_id", "lever", "variant", "query", "original", "answer")
    return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]


def export_judge(
    ws: Workspace,
    config: Config,
    out_dir: str,
    *,
    force: bool = False,
    mode: Literal["single", "pairwise"] = "single",
    judge_model: str = "gpt-4o",
    level: str = "expected",
    redact: bool = True,
) -> ExportResult:
    """Write ``judge/`` under ``out_dir`` (see the module docstring).

    Args:
        mode: ``single`` or ``pairwise``.
        judge_model: the judge; its provider (from the model id) picks the batch format.
        level: unused (every export takes it).
        redact: redact the text (:mod:`levers_cli.redact`).

    Raises:
        UsageError: an unknown mode.
        ExportError: no variant without a grade (run ``export shadow`` and ``analyze`` its
            output first), or a judge whose provider has no batch format.
    """
    del level
    if mode not in ("single", "pairwise"):
        raise UsageError(f"unknown --mode {mode!r}; choose single or pairwise")
    todo = _ungraded(ws, mode, judge_model)
    if not todo:
        raise ExportError(
            f"nothing to export: no variant without a {mode} grade by {judge_model}; run "
            "`levers export shadow`, the batch, and `levers analyze <its output>` first"
        )
    provider = provider_for_model(judge_model) or "openai"
    requests: list[dict[str, Any]] = []
    meta: dict[str, dict[str, Any]] = {}
    for pair in todo:
        question, original, answer = pair["query"] or "", pair["original"] or "", pair["answer"]
        orders = [False] if mode == "single" else [False, True]
        for swapped in orders:
            if mode == "single":
                messages = single_prompt(question, original, answer)
            elif swapped:
                messages = pair_prompt(question, answer, original)
            else:
                messages = pair_prompt(question, original, answer)
            cid = judge_custom_id(pair["variant_id"], mode, judge_model, swapped)
            requests.append(
                {
                    "custom_id": cid,
                    "call_id": pair["call_id"],
                    "provider": provider,
                    "model": judge_model,
                    "format": "openai-chat",
                    "messages": messages,
                    "query": question,
                    "max_tokens": JUDGE_MAX_TOKENS,
                    "metadata": {},
                    "params": {"temperature": 0},
                }
            )
            meta[cid] = {**pair, "swapped": swapped}
    out = prepare_out_dir(out_dir, [FOLDER], force)
    result = ExportResult(
        "judge",
        str(out),
        notes=[f"{len(todo)} variants to grade, {len(requests)} {mode} requests to {judge_model}"],
    )
    written = write_requests(out / FOLDER, requests, config, result, redact=redact)
    rows = [
        (
            cid,
            m["call_id"],
            m["lever"],
            m["variant"],
            m["variant_id"],
            mode,
            m["swapped"],
            judge_model,
            written.file_of[cid],
        )
        for cid, m in meta.items()
        if cid in written.file_of
    ]
    map_path = out / FOLDER / "custom_ids.csv"
    write_csv(map_path, MAP_COLUMNS, rows)
    result.add_file(map_path, len(rows))
    register_requests(
        ws,
        [
            {
                "custom_id": r[0],
                "kind": "judge",
                "call_id": r[1],
                "lever": r[2],
                "variant": r[3],
                "variant_id": r[4],
                "mode": mode,
                "swapped": r[6],
                "judge_model": judge_model,
            }
            for r in rows
        ],
    )
    result.counts.update(variants=len(todo))
    result.notes.append(
        "then: levers analyze <judge batch output> parses the grades; levers quality shows them"
    )
    return result
