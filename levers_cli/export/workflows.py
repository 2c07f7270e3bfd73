"""``levers export workflows``: the materialize lever's workflow candidates, as a brief for
whoever writes the script (``workflows.json`` for tools, ``workflows.md`` for people).

Per candidate (best first: spend × consistency, :mod:`levers_cli.levers.materialize`):
the prompt template and the query template (slots masked as ``<num>``, ``<date>``,
``<name>`` …, free text as ``<*>``; :func:`~levers_cli.query_templates.miner.
common_skeleton`), the slot values seen (per slot type, most frequent first, with counts),
example queries, the stable answer (the medoid response) and — when the logged answers differ
only in their slots — the answer template (the stable answer, masked), frequency (calls in the
log and per month), monthly cost (USD at list prices, ``spend × days_per_month / log span``),
consistency (mean pairwise similarity of the masked answers) and a suggested script outline
(steps, not code). Everything is evidence from the logs except the outline (a suggestion).

Slot values are read by lining a query up with its masked form
(:func:`~levers_cli.query_templates.mask.mask`): the text between two slots is copied
unchanged, so each slot's value is what lies between the literal runs around it. Text leaves
the workspace here, so every string is redacted (:mod:`levers_cli.redact`) unless told not to.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from levers_cli.export.common import ExportError, ExportResult, prepare_out_dir, write_json
from levers_cli.query_templates.mask import SLOT_KINDS
from levers_cli.redact import redact, redact_value

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.store import Workspace

FILES = ("workflows.json", "workflows.md")
SLOT = re.compile(r"<(" + "|".join(SLOT_KINDS) + r")>")
#: slots whose values are never shown: what redaction replaces
PRIVATE_SLOTS = frozenset({"secret", "card", "phone", "email"})
#: Distinct values shown per slot type.
TOP_VALUES = 10


def slot_values(text: str) -> list[tuple[str, str]]:
    """``(slot type, value)`` of each slot of ``text``, in order.

    Example: ``"refund order 4417 for Ana Lima"`` → ``[("num", "4417"), ("name", "Ana Lima")]``.
    """
    from levers_cli.query_templates.mask import mask

    parts = SLOT.split(mask(text))  # literal, kind, literal, kind, …, literal
    literals, kinds = parts[0::2], parts[1::2]
    if not kinds or not text.startswith(literals[0]) or not text.endswith(literals[-1]):
        return []
    out: list[tuple[str, str]] = []
    pos = len(literals[0])
    for i, kind in enumerate(kinds):
        nxt = literals[i + 1]
        if i == len(kinds) - 1:
            end = len(text) - len(nxt)
        else:
            end = text.find(nxt, pos + 1) if nxt else pos + 1
        if end <= pos:
            return out
        out.append((kind, text[pos:end]))
        pos = end + len(nxt)
    return out


def _outline(row: dict[str, Any], kinds: list[str], varies: bool) -> list[str]:
    """The suggested script as steps."""
    match = {
        "template": "Match a first-turn query whose text, slots masked, fits the query template.",
        "prompt": "Match a first-turn query that equals the known prompt once slots are masked.",
        "intent": f"Match a first-turn query to one of the {row['distinct_prompts']} known "
        "wordings of this question (exact after masking, or by embedding similarity to them).",
    }[row["kind"]]
    steps = [match]
    if kinds:
        steps.append(f"Extract the slots ({', '.join(kinds)}) and validate each value's format.")
    if varies:
        steps.append(
            "Fill the answer template's slots from the extracted values (or the record they "
            "identify) and return it."
        )
    else:
        steps.append("Return the stable answer verbatim.")
    models = ", ".join(row["models"]) or "the current model"
    steps.append(f"Fall back to {models} when the query does not match or a slot fails.")
    steps.append(
        f"Before switching: replay the {row['calls']:,} logged queries through the script and "
        f"compare with the logged answers (consistency {row['consistency']:.2f}); then compare "
        "a sample of live traffic with the model's answers each week."
    )
    return steps


def candidates(ws: Workspace, config: Config, level: str) -> list[dict[str, Any]]:
    """The workflow candidates scripted at ``level``, best first (unredacted).

    Returns:
        One dict per candidate: rank, kind, template, query_template, slots (type →
        ``[{"value", "count"}]``), examples, stable_answer, answer_template (or ``None``),
        calls, calls_per_month, spend_usd (the log's span), monthly_cost_usd, consistency,
        score, levels, models, script_outline (steps).
    """
    from levers_cli.levers.materialize import MaterializeLever
    from levers_cli.pricing.plan import log_span_days
    from levers_cli.query_templates.mask import mask
    from levers_cli.query_templates.miner import common_skeleton

    finding = MaterializeLever().analyze(ws, config)
    if finding.per_call is None or not finding.evidence:
        return []
    months = log_span_days(ws) / float(config.get("analysis", "days_per_month"))
    ids = finding.per_call.select("call_id", "candidate")
    ws.load_temp("_wf_calls", ids.to_dict(as_series=False))
    rows = ws.con.execute(
        """SELECT w.candidate, c.query, coalesce(c.response, '') FROM calls c
           JOIN _wf_calls w USING (call_id) ORDER BY w.candidate, c.ts NULLS LAST, c.call_id"""
    ).fetchall()
    queries: dict[int, list[str]] = {}
    answers: dict[int, set[str]] = {}
    for index, query, response in rows:
        queries.setdefault(index, []).append(query)
        answers.setdefault(index, set()).add(response.strip())
    out: list[dict[str, Any]] = []
    for index, row in enumerate(finding.evidence):
        if level not in row["levels"]:
            continue
        seen: dict[str, Counter[str]] = {}
        for query in queries.get(index, []):
            for kind, value in slot_values(query):
                shown = f"[{kind.upper()}]" if kind in PRIVATE_SLOTS else redact(value).text
                seen.setdefault(kind, Counter())[shown] += 1
        masked = mask(row["stable_answer"])
        varies = len(answers.get(index, ())) > 1 and masked != row["stable_answer"]
        kinds = sorted(seen)
        out.append({
            "rank": len(out) + 1, "kind": row["kind"], "template": row["template"],
            "query_template": common_skeleton(queries.get(index, []))[:600],
            "slots": {k: [{"value": v, "count": n} for v, n in seen[k].most_common(TOP_VALUES)]
                      for k in kinds},
            "examples": row["examples"], "stable_answer": row["stable_answer"],
            "answer_template": masked if varies else None,
            "calls": row["calls"], "distinct_prompts": row["distinct_prompts"],
            "calls_per_month": round(row["calls"] / months, 1),
            # a candidate whose calls are all of unknown price costs "unknown", never $0
            "spend_usd": None if row["unpriced_calls"] == row["calls"] else row["spend_usd"],
            "monthly_cost_usd": (
                None if row["unpriced_calls"] == row["calls"]
                else round(row["spend_usd"] / months, 6)
            ),
            "unpriced_calls": row["unpriced_calls"],
            "consistency": row["consistency"], "score": row["score"], "levels": row["levels"],
            "models": row["models"], "script_outline": _outline(row, kinds, varies),
        })  # fmt: skip
    return out


def _fenced(text: str) -> list[str]:
    """``text`` in a code fence longer than any backtick run inside it (CommonMark 4.5)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", text, fence]


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.4f}"


def _markdown(document: dict[str, Any]) -> str:
    lines = [
        "# Workflow candidates",
        "",
        f"Level: {document['level']}. {document['basis']}",
        "",
        "| # | kind | calls | calls/month | USD/month | consistency |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for c in document["candidates"]:
        lines.append(
            f"| {c['rank']} | {c['kind']} | {c['calls']:,} | {c['calls_per_month']:,} | "
            f"{_money(c['monthly_cost_usd'])} | {c['consistency']:.2f} |"
        )
    for c in document["candidates"]:
        lines += ["", f"## {c['rank']}. {c['kind']} ({', '.join(c['models'])})", ""]
        lines += ["Query template:", "", *_fenced(c["query_template"] or c["template"])]
        if c["slots"]:
            lines += ["", "Slot values seen:", ""]
            for kind, values in c["slots"].items():
                shown = ", ".join(f"`{v['value']}` ×{v['count']}" for v in values)
                lines.append(f"- `<{kind}>`: {shown}")
        lines += ["", "Examples:", ""] + [f"- {q}" for q in c["examples"]]
        label = "Answer template" if c["answer_template"] else "Stable answer"
        answer = c["answer_template"] or c["stable_answer"]
        lines += ["", f"{label}:", "", *_fenced(answer), "", "Script outline:", ""]
        lines += [f"{i}. {step}" for i, step in enumerate(c["script_outline"], start=1)]
    return "\n".join(lines) + "\n"


def export_workflows(
    ws: Workspace, config: Config, out_dir: str, *, force: bool = False,
    level: str = "expected", redact: bool = True,
) -> ExportResult:  # fmt: skip
    """Write ``workflows.json`` and ``workflows.md`` into ``out_dir``.

    Args:
        level: export the candidates consistent enough at this level
            (``[materialize] min_consistency``).
        redact: pass every string through :func:`levers_cli.redact.redact_value`.

    Returns:
        An :class:`ExportResult`; ``counts``: candidates, calls, calls per month.

    Raises:
        ExportError: no candidate at ``level``, or the folder unusable / an earlier export
            there without ``force``.
    """
    found = candidates(ws, config, level)
    if not found:
        raise ExportError(
            f"nothing to export: the materialize lever found no workflow candidate at the "
            f"{level} level; try --level aggressive"
        )
    counts: Counter[str] = Counter()
    if redact:
        found = redact_value(found, counts)
    out = prepare_out_dir(out_dir, FILES, force)
    threshold = config.get("materialize", "min_consistency")[level]
    document = {
        "level": level,
        "basis": "Templates, slot values, answers, frequency, cost and consistency are read "
        f"from the logs (consistency ≥ {threshold}); the script outline is a suggestion.",
        "candidates": found,
    }
    result = ExportResult("workflows", str(out))
    write_json(out / FILES[0], document)
    (out / FILES[1]).write_text(_markdown(document), encoding="utf-8")
    for name in FILES:
        result.add_file(out / name, len(found))
    result.counts = {
        "candidates": len(found),
        "calls": sum(c["calls"] for c in found),
    }
    result.details = {
        "monthly_cost_usd": round(sum(c["monthly_cost_usd"] or 0.0 for c in found), 6),
        "calls_per_month": round(sum(c["calls_per_month"] for c in found), 1),
    }
    result.redactions = dict(counts)
    return result
