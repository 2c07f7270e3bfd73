"""The caching lever's report: each part's saving priced as the simulation prices a plan
(:mod:`levers_cli.pricing`), and the evidence rows (prefix breakers, prefix templates, exact
and semantic hits)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from levers_cli.levers.base import LEVELS
from levers_cli.pricing.plan import base_plan, log_span_days, plan_cost
from levers_cli.pricing.rates import rate_card
from levers_cli.schema import CATEGORY_ID

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.levers.caching.breakers import Breaker
    from levers_cli.levers.caching.calls import CallTable
    from levers_cli.levers.caching.semantic import SemanticResult
    from levers_cli.store import Workspace

_TEXT = 80


def part_savings(
    ws: Workspace, config: Config, per_call: pl.DataFrame, apply_parts: Callable[..., Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Each part's saving alone, per level (USD per month, priced as the simulation prices),
    so a budget solver can take the low-effort part without the medium-effort one; and the
    prompt templates whose prefix caching the expected level leaves unplanned because its
    writes would cost more than its reads save (evidence rows)."""
    plan = base_plan(ws)
    if plan.is_empty():
        return {}, []
    factor = float(config.get("analysis", "days_per_month")) / log_span_days(ws)
    before = float(plan_cost(plan, config).sum())
    parts = {
        "prefix": (("prefix",), "low"),
        "exact": (("exact",), "medium"),
        "semantic": (("semantic",), "medium"),
        "response_cache": (("exact", "semantic"), "medium"),
        "all": (("prefix", "exact", "semantic"), None),
    }
    out: dict[str, Any] = {}
    priced: list[pl.DataFrame] = []
    for part, (names, effort) in parts.items():
        saving = {}
        for level in LEVELS:
            found: list[pl.DataFrame] = []
            after_plan = apply_parts(plan, per_call, level, names, templates=found)
            after = float(plan_cost(after_plan, config).sum())
            saving[level] = round((before - after) * factor, 6)
            if part == "prefix" and level == "expected":
                priced = found
        out[part] = (
            {"effort": effort, "saving_usd_month": saving}
            if effort
            else {"saving_usd_month": saving}
        )
    return out, _unplanned(priced, factor)


def _unplanned(priced: list[pl.DataFrame], factor: float) -> list[dict[str, Any]]:
    """Evidence rows of the templates whose prefix caching would cost more than it saves."""
    if not priced or priced[0].is_empty():
        return []
    rows = []
    for r in priced[0].filter(~pl.col("planned")).iter_rows(named=True):
        rows.append(
            {
                "kind": "prefix_not_planned",
                "provider": r["provider"],
                "model": r["plan_model"],
                "calls": r["calls"],
                "net_usd_month": round(r["net_usd"] * factor, 6),
                "reason": (
                    "every cache write is charged, read or not: writing this template's "
                    "prefix would cost more than its reads save; left as logged"
                ),
            }
        )
    return rows


def gateway_realized(calls: CallTable) -> dict[str, Any]:
    """The calls a gateway's own cache answered (``gateway_cache_hit``): exact hits already
    realized, not a new saving. Their count, the tokens they replayed (not provider tokens)
    and what the provider would have charged for them (USD over the log, list prices; calls
    of unpriced models left out)."""
    from levers_cli.pricing.rates import rate_card

    idx = np.flatnonzero(calls.gateway_hit)
    usd = 0.0
    for i in idx:
        card = rate_card(calls.provider[i], calls.model[i])
        if card is not None:
            inp, read = int(calls.input_tokens[i]), int(calls.cache_read[i])
            out = int(calls.output_tokens[i])
            usd += (inp - read) * card.input + read * card.cache_read + out * card.output
    return {
        "calls": len(idx),
        "replayed_input_tokens": int(calls.input_tokens[idx].sum()),
        "replayed_output_tokens": int(calls.output_tokens[idx].sum()),
        "saved_usd": round(usd, 9),
    }


def below_minimum_rows(calls: CallTable) -> list[dict[str, Any]]:
    """Per model, the calls whose whole prompt (the log's own token count) is shorter than
    the model's minimum cacheable prefix: prefix caching does nothing for them (a
    ``cache_control`` breakpoint is ignored, without an error), with the rule's source."""
    groups: dict[tuple[Any, int], list[int]] = defaultdict(list)
    for i, rule in enumerate(calls.rules):
        if rule is not None and 0 < calls.input_tokens[i] < rule.min_cacheable_tokens:
            groups[calls.model[i], id(rule)].append(i)
    rows = []
    for (model, _), members in groups.items():
        rule = calls.rules[members[0]]
        assert rule is not None
        largest = int(calls.input_tokens[members].max())
        rows.append(
            {
                "kind": "prefix_below_minimum",
                "model": model,
                "calls": len(members),
                "largest_prompt_tokens": largest,
                "min_cacheable_tokens": rule.min_cacheable_tokens,
                "cacheable_tokens": 0,
                "reason": (
                    f"prompts of at most {largest:,} tokens are below {model}'s minimum "
                    f"cacheable prefix of {rule.min_cacheable_tokens:,} tokens: nothing to cache"
                ),
                "source": rule.source,
            }
        )
    return sorted(rows, key=lambda r: (-r["calls"], str(r["model"])))


def _cut(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= _TEXT else text[: _TEXT - 1] + "…"


def breaker_rows(
    breakers: list[Breaker], now: np.ndarray, fixed: np.ndarray | None
) -> list[dict[str, Any]]:
    """One evidence row per prefix breaker: where the volatile text sits (character and
    token position in the system prompt, line), its pattern, its calls, and the cached tokens
    now and once the text moves to the end (``fixed``: reads with breakers fixed, or None)."""
    return [
        {
            "kind": "prefix_breaker",
            "model": b.model,
            "calls": len(b.members),
            "char_position": b.char_position,
            "token_position": b.token_position,
            "line": b.line,
            "pattern": b.pattern,
            "volatile_regex": b.regex,
            "example": b.example,
            "stable_tokens": b.stable_tokens,
            "cached_tokens_now": int(now[b.members].sum()),
            "cached_tokens_if_fixed": None if fixed is None else int(fixed[b.members].sum()),
            "fix": "move the volatile text to the end of the prompt (static content first)",
        }
        for b in breakers
    ]


def evidence_rows(
    calls: CallTable,
    exact: tuple[np.ndarray, np.ndarray],
    semantic: SemanticResult,
    prefix_read: np.ndarray,
) -> list[dict[str, Any]]:
    """Prefix templates, exact-hit queries and semantic pairs at the expected level (semantic:
    every hit above the threshold with its verdict; false ones save nothing), each with its
    saving over the log (USD, list prices), best first (at most 25)."""
    rows: list[dict[str, Any]] = []
    cost = np.nan_to_num(calls.cost)
    new = np.maximum(prefix_read - calls.cache_read, 0)
    groups: dict[tuple[Any, Any], list[int]] = defaultdict(list)
    for i in np.flatnonzero(new > 0):
        groups[calls.model[i], (calls.system[i] or "")[-200:]].append(int(i))
    for (model, _), members in groups.items():
        rule = calls.rules[members[0]]
        card = rate_card(rule.provider if rule else None, model)
        tokens = int(new[members].sum())
        rows.append(
            {
                "kind": "prefix",
                "model": model,
                "system_prompt": _cut(calls.system[members[0]]),
                "calls": len(members),
                "new_cached_tokens": tokens,
                "realized_cached_tokens": int(calls.cache_read[members].sum()),
                "saving_usd": round(tokens * (card.input - card.cache_read), 6) if card else None,
            }
        )
    hit, source = exact
    by_source: dict[int, list[int]] = defaultdict(list)
    for i in np.flatnonzero(hit):
        by_source[int(source[i])].append(int(i))
    for j, members in by_source.items():
        rows.append(
            {
                "kind": "exact",
                "model": calls.model[j],
                "query": _cut(calls.query[j]),
                "hits": len(members),
                "saving_usd": round(float(cost[members].sum()), 6),
            }
        )
    m = semantic.matches
    decided = semantic.categories["expected"]
    for i in np.flatnonzero(semantic.gross):
        same = semantic.same[i]
        category = decided.get(calls.category[i])
        rows.append(
            {
                "kind": "semantic",
                "query": _cut(calls.query[i]),
                "cached_query": _cut(calls.query[int(m.source[i])]),
                "similarity": round(float(m.sim[i]), 4),
                CATEGORY_ID: calls.category[i],
                "verdict": "unlabelled"
                if same is None
                else "labelled same"
                if same
                else "labelled different",
                "category_basis": category.basis if category else None,
                "saving_usd": round(float(cost[i]), 6) if semantic.net["expected"][i] else 0.0,
            }
        )
    rows.sort(key=lambda r: -(r["saving_usd"] or 0.0))
    return rows[:25]
