"""Lever 5, materialize: query templates that recur with near-identical answers become scripts.

Method (../shared/DESIGN.md §5.5). The full prompt of each first-turn call (system prompt +
last user message) is masked (numbers, dates, times, ids, e-mails, URLs, quoted strings,
capitalized names) and mined for templates (:mod:`levers_cli.query_templates.miner`).
A template whose answers are near-identical — mean pairwise similarity of the masked responses
of up to ``[materialize] consistency_sample`` calls spread over time, at least the lowest
``min_consistency`` — is a workflow candidate as a whole. In a template whose answers vary,
its more specific templates (found before mining merged them into the general one) with
stable answers are candidates, else each exact prompt (same text once slots are masked)
recurring ``min_occurrences`` times with stable answers; such candidates of one template whose
stable answers are near-identical too are merged into one *intent* (the FAQ wordings of one
question). Candidates are ranked by frequency × cost × consistency (= spend × consistency) and
carry the template, three example queries and the stable answer (the medoid response); see
:mod:`levers_cli.levers.materialize.candidates`.

Departures from DESIGN: only first turns count (``first_turn_only``: a later turn's answer
depends on the conversation, which the template does not carry); the candidates inside
varying templates are an addition (an FAQ bot is one template whose answer depends on the
question). A group with stable answers is a candidate only if its answers do not depend on
what its slots hold — the same answer whatever the values, or an answer template filled from
the query's masked slots (:func:`levers_cli.levers.materialize.candidates.invariance`); a
candidate's basis is evidence only when that was seen on at least two distinct slot values.
``apply``: the calls of candidates at least as consistent as the level's
``min_consistency`` are served by a script (``plan_free``); writing the script is a one-time
effort, not USD.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from levers_cli.levers.base import LEVELS, Figure, Finding, Lever, combine_basis, quoted_names
from levers_cli.levers.materialize.candidates import evidence_row, find_units, invariance
from levers_cli.query_templates.miner import MINING_KEYS, mine_templates
from levers_cli.text.content import plural

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.levers.base import ActionContext, Basis, Level
    from levers_cli.store import Workspace

_CONSISTENCY_SOURCE = (
    "[materialize] min_consistency (assumption: mean pairwise difflib ratio of masked answers)"
)


def load_calls(ws: Workspace, first_turn_only: bool) -> pl.DataFrame:
    """Successful calls with a query, in time order, with their full ``prompt`` (unpriced
    calls count for templates; their ``cost_usd`` is null)."""
    turn = "AND coalesce(turn, 1) <= 1" if first_turn_only else ""
    frame = pl.from_arrow(
        ws.con.sql(
            f"""SELECT call_id, model, query, coalesce(response, '') AS response,
                       CASE WHEN coalesce(system_prompt, '') = '' THEN query
                            ELSE system_prompt || chr(10) || query END AS prompt,
                       cost_usd::DOUBLE AS cost_usd,
                       coalesce(input_tokens, 0) + coalesce(output_tokens, 0) AS tokens
                FROM calls
                WHERE coalesce(status, 'ok') = 'ok'
                  AND trim(coalesce(query, '')) <> '' {turn}
                ORDER BY ts NULLS LAST, call_id"""
        ).to_arrow_table()
    )
    assert isinstance(frame, pl.DataFrame)
    return frame


class MaterializeLever(Lever):
    """Lever 5 (see the module docstring)."""

    id = 5
    name = "materialize"
    effort = "medium"
    export_command = "levers export workflows"

    def analyze(self, ws: Workspace, config: Config) -> Finding:
        """Templates, their answer consistency and the workflow candidates.

        Returns:
            A :class:`Finding` whose evidence lists the candidates best first and whose
            ``per_call`` holds ``call_id``, ``candidate`` (its index in the evidence),
            ``consistency`` (of that candidate) and ``script_<level>`` (served by a script at
            that level) for every candidate call.
        """
        cfg = lambda key: config.get("materialize", key)  # noqa: E731
        thresholds = {lv: float(cfg("min_consistency")[lv]) for lv in LEVELS}
        frame = load_calls(ws, bool(cfg("first_turn_only")))
        mined = mine_templates(frame["prompt"].to_list(), **{k: cfg(k) for k in MINING_KEYS})
        found = find_units(frame, mined, config) if frame.height else []
        checks = [invariance(frame, unit) for unit in found]
        units = [u for u, c in zip(found, checks, strict=True) if c.reason is None]
        kept = [c for c in checks if c.reason is None]
        rejected: dict[str, int] = {}
        for unit, check in zip(found, checks, strict=True):
            if check.reason is not None:
                key = check.reason.split(" (")[0]
                rejected[key] = rejected.get(key, 0) + len(unit.rows)
        ids, index, values, measured = [], [], [], []
        for i, (unit, check) in enumerate(zip(units, kept, strict=True)):
            ids += frame["call_id"].gather(unit.rows).to_list()
            index += [i] * len(unit.rows)
            values += [unit.consistency] * len(unit.rows)
            measured += [check.measured] * len(unit.rows)
        per_call = pl.DataFrame(
            {
                "call_id": pl.Series(ids, dtype=pl.String),
                "candidate": pl.Series(index, dtype=pl.Int64),
                "consistency": pl.Series(values, dtype=pl.Float64),
                # evidence: the answers were seen not to depend on the slots, on at least two
                # distinct slot values; else the script is an assumption
                "evidence": pl.Series(measured, dtype=pl.Boolean),
            }
        ).with_columns(
            (pl.col("consistency") >= thresholds[lv]).alias(f"script_{lv}") for lv in LEVELS
        )
        joined = frame.join(per_call, on="call_id")
        calls = {lv: int(joined[f"script_{lv}"].sum()) for lv in LEVELS}
        spend = {
            lv: round(float(joined.filter(pl.col(f"script_{lv}"))["cost_usd"].sum()), 6)
            for lv in LEVELS
        }
        templated = int((mined.labels >= 0).sum())
        expected_calls = joined.filter(pl.col("script_expected"))
        on_evidence = int(expected_calls["evidence"].sum())
        parts: list[Basis] = []
        if on_evidence:
            parts.append("evidence")
        if expected_calls.height - on_evidence:
            parts.append("assumption")
        script_basis = combine_basis(parts or ["evidence"])
        figures = [
            Figure("templates", len(mined.skeletons), "templates", "evidence", _MINED),
            Figure("templated_calls", templated, "calls", "evidence", _MINED),
            Figure("workflow_candidates", len(units), "candidates", "evidence", _CANDIDATES),
            Figure("script_calls", calls, "calls", script_basis, _CANDIDATES),
            Figure("script_spend_usd", spend, "USD", script_basis, f"{_CANDIDATES} (log span)"),
            Figure("script_calls_measured", on_evidence, "calls", "evidence", _MEASURED),
            Figure("rejected_calls", sum(rejected.values()), "calls", "evidence", _REJECTED),
            Figure("min_consistency", thresholds, "share", "assumption", _CONSISTENCY_SOURCE),
        ]
        expected = joined.filter(pl.col("script_expected"))
        return Finding(
            lever_id=self.id,
            name=self.name,
            calls_affected=expected.height,
            tokens_affected=int(expected["tokens"].sum()),
            basis=combine_basis([f.basis for f in figures]),
            figures=figures,
            evidence=[
                {
                    **evidence_row(frame, mined, u, thresholds, int(cfg("ngram"))),
                    "answers": c.kind,
                    "distinct_values": c.values,
                    "basis": "evidence" if c.measured else "assumption",
                }
                for u, c in zip(units, kept, strict=True)
            ],
            per_call=per_call,
            details={
                "templates": len(mined.skeletons),
                "templated_calls": templated,
                "calls_considered": frame.height,
                "candidates": len(units),
                "rejected": rejected,
                "per_level": {
                    lv: {
                        "candidates": sum(u.consistency >= thresholds[lv] for u in units),
                        "calls": calls[lv],
                        "spend_usd": spend[lv],
                    }
                    for lv in LEVELS
                },
                "similarity": "mean pairwise difflib ratio of masked response tokens",
                "script_effort": "one script per candidate: a one-time effort, not USD",
            },
        )

    def next_action(self, result: dict[str, Any], context: ActionContext) -> str:
        """Answer the recurring templates by script, naming two."""
        rows = result["evidence"]
        calls = sum(r.get("calls", 0) for r in rows)
        queries = [{"q": str(r.get("template", "")).split(" … ")[-1]} for r in rows]
        return (
            f"Answer {plural(len(rows), 'recurring template')} ({plural(calls, 'call')}) by script"
            + quoted_names(queries, "q", 2)
        )

    def apply(
        self, plan: pl.DataFrame, finding: Finding, config: Config, level: Level
    ) -> pl.DataFrame:
        """Calls of the level's candidates become ``plan_free`` (served by a script)."""
        if finding.per_call is None or finding.per_call.is_empty() or plan.is_empty():
            return plan
        scripted = finding.per_call.filter(pl.col(f"script_{level}")).select(
            "call_id", pl.lit(True).alias("_script")
        )
        joined = plan.join(scripted, on="call_id", how="left", maintain_order="left")
        return joined.with_columns(
            (pl.col("plan_free") | pl.col("_script").fill_null(False)).alias("plan_free")
        ).drop("_script")


_MINED = "first-turn prompts (system + last user message) mined for templates, slots masked"
_CANDIDATES = "calls of candidates whose masked answers are at least [materialize] min_consistency"
_MEASURED = (
    "candidate calls whose answers were seen not to depend on the slots on at least two "
    "distinct slot values"
)
_REJECTED = (
    "calls of stable-answer groups whose answers depend on what the query holds (pasted "
    "content, labels, copied content): not scripts"
)

__all__ = ["MaterializeLever", "load_calls"]
