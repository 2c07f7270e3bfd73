"""Lever 4, caps: per category an output-token cap (``max_tokens``) and a concise instruction.

Method (../shared/DESIGN.md §5.4), per cap group — a category and the model family serving it
(a reasoning model's output includes its reasoning, so one cap for both models of a category
would cut the reasoning model off; a departure from DESIGN's "per category"):
output-token p50/p90/p95/p99 (numpy's linear percentile), the share already truncated
(``finish_reason = 'length'``), reasoning tokens. Cap = the level's ``[caps] percentile``
rounded up to a multiple of ``[caps] round_up_to``. Two parts, two bases:

- the hard cap (measured): it removes the tokens above it, read from the logs' outputs, with
  the share of calls it would truncate (above the cap, or cut at it already) as the risk;
- the instruction (assumed): "Answer directly in at most N words." (N: :func:`word_budget`
  of the cap) removes ``[caps] concise_reduction`` of what the cap leaves, and only from
  answers longer than N words (an answer already shorter is not assumed to shrink).

Groups whose p95 output is at most ``[caps] simple_max_output`` tokens are "simple": they get
"answer directly" and low reasoning effort. ``apply``: plan_output = min(plan_output, cap) ×
(1 − concise reduction where it applies), rounded to whole tokens; the simulation counts the
hard cap's share of each call's cut as evidence and the instruction's as assumption.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from levers_cli.levers.base import LEVELS, Figure, Finding, Level, Lever, combine_basis
from levers_cli.pricing.models import model_family
from levers_cli.pricing.rates import rate_card
from levers_cli.schema import CATEGORY_ID

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.levers.base import ActionContext, Level
    from levers_cli.store import Workspace

PERCENTILES = (50, 90, 95, 99)
DIRECT = "Answer directly, without preamble or restating the question."
CONCISE = "Be concise: no preamble, no restating the question, no closing summary."
_CONCISE_SOURCE = "[caps] concise_reduction (assumption after Renze & Guven 2024, arXiv:2401.05618)"


def word_budget(cap_tokens: int, visible_share: float, words_per_token: float) -> int:
    """Words an answer may take to fit under ``cap_tokens``.

    Args:
        cap_tokens: the cap (output tokens, reasoning included).
        visible_share: share of the group's output tokens that are not reasoning (0–1].
        words_per_token: English words per token (about 0.75; ``[export]
            caps_words_per_token``, OpenAI Help Center "What are tokens and how to count
            them?").

    Returns:
        ``floor(cap × visible_share × words_per_token)``, at least 1; from 10 words on,
        rounded down to a multiple of 5 (e.g. cap 400, share 1, 0.75 → 300).
    """
    words = max(1, math.floor(cap_tokens * visible_share * words_per_token))
    return words - words % 5 if words >= 10 else words


def _calls(ws: Workspace) -> pl.DataFrame:
    frame = pl.from_arrow(
        ws.con.sql(
            """SELECT c.call_id, c.category_id, k.label, c.provider, c.model,
                      coalesce(c.input_tokens, 0) AS input_tokens,
                      coalesce(c.output_tokens, 0) AS output_tokens,
                      coalesce(c.reasoning_tokens, 0) AS reasoning_tokens,
                      c.max_tokens, coalesce(c.finish_reason = 'length', false) AS truncated
               FROM calls c LEFT JOIN categories k USING (category_id)
               WHERE c.category_id >= 0 AND c.cost_usd IS NOT NULL ORDER BY c.call_id"""
        ).to_arrow_table()
    )
    assert isinstance(frame, pl.DataFrame)
    families = {m: model_family(m) for m in frame["model"].unique().to_list()}
    return frame.with_columns(pl.col("model").replace_strict(families, default="").alias("family"))


def cap_table(ws: Workspace, config: Config) -> list[dict[str, Any]]:
    """The cap table of the workspace's calls (see :func:`_cap_rows`)."""
    return _cap_rows(_calls(ws), config)


def _cap_rows(frame: pl.DataFrame, config: Config) -> list[dict[str, Any]]:
    """One row per cap group (category × model family with at least ``[caps] min_calls``
    calls): calls, output percentiles (tokens), truncation now, reasoning, the cap per level,
    the share of calls it would cut and the tokens above it, the instruction and reasoning
    effort. Sorted by output spend (USD, list prices), largest first."""
    cfg = lambda key: config.get("caps", key)  # noqa: E731
    step, min_calls = int(cfg("round_up_to")), int(cfg("min_calls"))
    simple_max = float(cfg("simple_max_output"))
    per_word = float(config.get("export", "caps_words_per_token"))
    rows: list[dict[str, Any]] = []
    for (cid, family), group in frame.group_by(CATEGORY_ID, "family", maintain_order=True):
        if group.height < min_calls:
            continue
        out = group["output_tokens"].to_numpy().astype(float)
        # a call already cut at its max_tokens wanted more than it got: any cap at or below
        # its output cuts it again (its true length is censored, so percentiles are low)
        cut_now = group["truncated"].to_numpy().astype(bool)
        pct = {p: float(np.percentile(out, p)) for p in PERCENTILES}
        card = rate_card(group["provider"][0], group["model"][0])
        caps = {
            lv: int(math.ceil(np.percentile(out, float(cfg("percentile")[lv])) / step) * step)
            for lv in LEVELS
        }
        simple = pct[95] <= simple_max
        reasoning = group["reasoning_tokens"].to_numpy().astype(float)
        visible = 1.0 - reasoning.sum() / out.sum() if out.sum() else 1.0
        words = {lv: word_budget(caps[lv], max(visible, 0.05), per_word) for lv in LEVELS}
        # the instruction can only shorten answers longer than the words it allows
        longer = {lv: (out - reasoning) * per_word > words[lv] for lv in LEVELS}
        rows.append(
            {
                CATEGORY_ID: int(cid),
                "label": group["label"][0],
                "model": family,
                "calls": group.height,
                **{f"p{p}": round(v, 1) for p, v in pct.items()},
                "max": int(out.max()),
                "mean_output": round(float(out.mean()), 1),
                "max_tokens_now": group["max_tokens"].max(),
                # polars types a Series' mean as any Python value; a boolean column's is a float
                "truncated_share": round(float(group["truncated"].mean()), 4),  # type: ignore[arg-type]
                "reasoning_tokens": int(group["reasoning_tokens"].sum()),
                "cap": caps,
                "cut_share": {
                    lv: round(float(((out > caps[lv]) | (cut_now & (out >= caps[lv]))).mean()), 4)
                    for lv in LEVELS
                },
                "censored": bool(cut_now.any()),
                "tokens_above_cap": {
                    lv: int(np.clip(out - caps[lv], 0, None).sum()) for lv in LEVELS
                },
                "words": words,
                "instruction_calls": {lv: int(longer[lv].sum()) for lv in LEVELS},
                "instruction_base_tokens": {
                    lv: int(np.minimum(out, caps[lv])[longer[lv]].sum()) for lv in LEVELS
                },
                "call_instructed": {lv: longer[lv].tolist() for lv in LEVELS},
                "simple": simple,
                "instruction": DIRECT if simple else CONCISE,
                "reasoning_effort": "low" if simple else None,
                "output_usd": round(float(out.sum()) * (card.output if card else 0.0), 6),
                "call_ids": group["call_id"].to_list(),
            }
        )
    rows.sort(key=lambda r: (-r["output_usd"], r[CATEGORY_ID], r["model"]))
    return rows


class CapsLever(Lever):
    """Lever 4 (see the module docstring)."""

    id = 4
    name = "caps"
    effort = "low"
    export_command = "levers export caps"

    def analyze(self, ws: Workspace, config: Config) -> Finding:
        """The cap table and its two estimates.

        Returns:
            A :class:`Finding` whose evidence is the cap table and whose ``per_call`` holds
            ``call_id``, ``cap_<level>`` (tokens, null outside capped groups) and
            ``concise_<level>`` (share) for every capped call.
        """
        reduction = {lv: float(config.get("caps", "concise_reduction")[lv]) for lv in LEVELS}
        frame = _calls(ws)
        table = _cap_rows(frame, config)
        ids: list[str] = []
        outs: list[int] = []
        caps: dict[Level, list[int]] = {lv: [] for lv in LEVELS}
        told: dict[Level, list[bool]] = {lv: [] for lv in LEVELS}
        output = dict(frame.select("call_id", "output_tokens").iter_rows())
        for row in table:
            ids += row["call_ids"]
            outs += [int(output[c]) for c in row["call_ids"]]
            for lv in LEVELS:
                caps[lv] += [row["cap"][lv]] * len(row["call_ids"])
                told[lv] += row["call_instructed"][lv]
        per_call = pl.DataFrame(
            {
                "call_id": pl.Series(ids, dtype=pl.String),
                "_out": pl.Series(outs, dtype=pl.Float64),
                **{f"cap_{lv}": pl.Series(caps[lv], dtype=pl.Int64) for lv in LEVELS},
                **{
                    f"concise_{lv}": pl.Series(
                        [reduction[lv] if t else 0.0 for t in told[lv]], dtype=pl.Float64
                    )
                    for lv in LEVELS
                },
            }
        )
        # per call, the share of its cut that the hard cap makes (measured); the rest is the
        # instruction's (assumed)
        per_call = per_call.with_columns(
            (
                (pl.col("_out") - pl.col(f"cap_{lv}")).clip(lower_bound=0)
                / (
                    (pl.col("_out") - pl.col(f"cap_{lv}")).clip(lower_bound=0)
                    + pl.min_horizontal("_out", f"cap_{lv}") * pl.col(f"concise_{lv}")
                )
            )
            .fill_nan(1.0)
            .alias(f"evidence_{lv}")
            for lv in LEVELS
        ).drop("_out")
        calls = sum(r["calls"] for r in table)
        above = {lv: sum(r["tokens_above_cap"][lv] for r in table) for lv in LEVELS}
        cut = {lv: sum(r["cut_share"][lv] * r["calls"] for r in table) for lv in LEVELS}
        concise = {
            lv: round(sum(r["instruction_base_tokens"][lv] for r in table) * reduction[lv])
            for lv in LEVELS
        }
        instructed = {lv: sum(r["instruction_calls"][lv] for r in table) for lv in LEVELS}
        truncated = sum(r["truncated_share"] * r["calls"] for r in table)
        figures = [
            Figure(
                "capped_groups",
                len(table),
                "groups",
                "evidence",
                "categories × model families with at least [caps] min_calls calls",
            ),
            Figure(
                "tokens_above_cap",
                above,
                "tokens",
                "evidence",
                "hard cap (measured): output tokens above each group's cap ([caps] percentile) "
                "in the logs",
            ),
            Figure(
                "truncation_risk",
                {lv: round(cut[lv] / calls, 4) if calls else 0.0 for lv in LEVELS},
                "share",
                "evidence",
                "share of capped calls whose output exceeds the cap (they would be cut)",
            ),
            Figure(
                "truncated_now",
                round(truncated / calls, 4) if calls else 0.0,
                "share",
                "evidence",
                "capped calls with finish_reason = 'length' in the logs",
            ),
            Figure("concise_reduction", reduction, "share", "assumption", _CONCISE_SOURCE),
            Figure(
                "instructed_calls",
                instructed,
                "calls",
                "evidence",
                "capped calls whose answer is longer than the instruction's word budget "
                "(the only ones the instruction is assumed to shorten)",
            ),
            Figure(
                "concise_tokens",
                concise,
                "tokens",
                "assumption",
                f"instruction (assumed): output left under the caps of the instructed calls × "
                f"{_CONCISE_SOURCE}",
            ),
        ]
        hidden = ("call_ids", "call_instructed", "instruction_calls", "instruction_base_tokens")
        evidence: list[dict[str, Any]] = []
        for r in table:
            base = {k: v for k, v in r.items() if k not in hidden}
            evidence.append({"part": "hard cap", "basis": "evidence", **base})
            evidence.append(
                {
                    "part": "instruction",
                    "basis": "assumption",
                    CATEGORY_ID: r[CATEGORY_ID],
                    "label": r["label"],
                    "model": r["model"],
                    "calls": r["calls"],
                    "instruction": r["instruction"],
                    "words": r["words"],
                    "instructed_calls": r["instruction_calls"],
                    "concise_tokens": {
                        lv: round(r["instruction_base_tokens"][lv] * reduction[lv]) for lv in LEVELS
                    },
                    "reasoning_effort": r["reasoning_effort"],
                }
            )
        changed = frame.join(per_call, on="call_id", how="inner").filter(
            (pl.col("output_tokens") > pl.col("cap_expected")) | (pl.col("concise_expected") > 0)
        )
        return Finding(
            lever_id=self.id,
            name=self.name,
            calls_affected=changed.height,
            tokens_affected=int((changed["input_tokens"] + changed["output_tokens"]).sum()),
            basis=combine_basis([f.basis for f in figures]),
            figures=figures,
            evidence=evidence,
            per_call=per_call,
            details={
                "cap_groups": len(table),
                "capped_calls": calls,
                "percentile": dict(config.get("caps", "percentile")),
                "tokens_above_cap": above,
                "concise_tokens": concise,
                "simple_groups": sum(1 for r in table if r["simple"]),
            },
        )

    def next_action(self, result: dict[str, Any], context: ActionContext) -> str:
        """Set max_tokens per category and model, with the top row as an example."""
        rows = [r for r in result["evidence"] if r.get("part", "hard cap") == "hard cap"]
        example = ""
        if rows:
            r = rows[0]
            example = f", e.g. “{r['label']}” on {r['model']}: {r['cap']['expected']} (p95)"
        return f"Set max_tokens per category and model ({len(rows):,} shown){example}"

    def apply(
        self, plan: pl.DataFrame, finding: Finding, config: Config, level: Level
    ) -> pl.DataFrame:
        """plan_output = round(min(plan_output, cap) × (1 − concise)) for capped, non-free calls."""
        if finding.per_call is None or finding.per_call.is_empty() or plan.is_empty():
            return plan
        caps = finding.per_call.select(
            "call_id", pl.col(f"cap_{level}").alias("_cap"), pl.col(f"concise_{level}").alias("_r")
        )
        joined = plan.join(caps, on="call_id", how="left", maintain_order="left")
        capped = pl.min_horizontal("plan_output", "_cap") * (1 - pl.col("_r"))
        new = (capped + 0.5).floor().cast(plan.schema["plan_output"])
        return joined.with_columns(
            pl.when(pl.col("_cap").is_not_null() & ~pl.col("plan_free"))
            .then(new)
            .otherwise(pl.col("plan_output"))
            .alias("plan_output")
        ).drop("_cap", "_r")


__all__ = ["CONCISE", "DIRECT", "PERCENTILES", "CapsLever", "cap_table", "word_budget"]
