"""Lever 3, caching: prefix (prompt) caching at the provider, and exact and semantic response
caching in front of it.

Method: ../shared/DESIGN.md §5.3, in helper modules — :mod:`~levers_cli.levers.caching.calls`
(the calls; exact keys and hits), :mod:`~levers_cli.levers.caching.prefix` (token prefixes
under ``provider_rules.toml``), :mod:`~levers_cli.levers.caching.breakers` (volatile values
that break a prefix), :mod:`~levers_cli.levers.caching.templates` (user prompts filled from
templates, and the fixed text their slots keep out of the cache),
:mod:`~levers_cli.levers.caching.semantic` (semantic matches, false hits, the threshold curve)
with :mod:`~levers_cli.levers.caching.guards` (what a semantic hit must keep) and
:mod:`~levers_cli.levers.caching.report` (evidence, each part's saving).

Per level (``[caching]`` in defaults.toml): the response-cache TTL, the semantic threshold,
whether a semantic hit must be verified, whether detected prefix breakers are fixed, and a
longer prefix TTL where the provider charges no write premium. The parts differ in effort
(prefix caching: low, a prompt change; exact and semantic response caching: medium, a cache
service), so ``details["parts"]`` prices each alone for the budget solver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from levers_cli.levers.base import LEVELS, Effort, Figure, Finding, Level, Lever, combine_basis
from levers_cli.levers.caching.calls import exact_hits, load_calls
from levers_cli.levers.caching.prefix import prefix_by_level
from levers_cli.levers.caching.report import (
    below_minimum_rows,
    breaker_rows,
    evidence_rows,
    gateway_realized,
    part_savings,
)
from levers_cli.levers.caching.semantic import semantic_by_level
from levers_cli.levers.caching.templates import prompt_templates, template_summary
from levers_cli.text.content import plural

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.levers.base import ActionContext, Effort, Level
    from levers_cli.store import Workspace

SECTION = "caching"
EFFORT_BY_PART = {"prefix": "low", "exact": "medium", "semantic": "medium"}
ALL_PARTS = ("prefix", "exact", "semantic")


def _per_level(config: Config, key: str) -> dict[str, Any]:
    value = config.get(SECTION, key)
    return {lv: value[lv] if isinstance(value, dict) else value for lv in LEVELS}


def _assumed(key: str, why: str) -> str:
    return f"[{SECTION}] {key} in levers_cli/defaults.toml ({why})"


class CachingLever(Lever):
    """Lever 3 (see the module docstring).

    Args:
        parts: the parts ``apply`` uses (all by default). ``("prefix",)`` is the low-effort
            lever alone, ``("exact", "semantic")`` the medium-effort response cache alone, so
            a budget solver can take one without the other (``effort`` follows).

    Raises:
        ValueError: an unknown part.
    """

    id = 3
    name = "caching"
    effort: Effort = "low"

    def __init__(self, parts: tuple[str, ...] = ALL_PARTS) -> None:
        unknown = set(parts) - set(ALL_PARTS)
        if unknown or not parts:
            raise ValueError(f"caching parts must be among {ALL_PARTS}, got {parts!r}")
        self.parts = tuple(parts)
        self.effort = "low" if "prefix" in self.parts else "medium"

    @property
    def label(self) -> str:
        """``caching``, or ``caching (prefix)`` for a lever of some of the parts."""
        if set(self.parts) == set(ALL_PARTS):
            return self.name
        return f"{self.name} ({'+'.join(self.parts)})"

    def budget_options(self) -> list[Lever]:
        """Prefix caching (low effort) and the response cache (medium) as two options, when
        this lever holds both."""
        if len(self.parts) < 2 or "prefix" not in self.parts:
            return [self]
        rest = tuple(part for part in self.parts if part != "prefix")
        return [CachingLever(("prefix",)), CachingLever(rest)]

    def analyze(self, ws: Workspace, config: Config) -> Finding:
        """Measure prefix, exact and semantic caching on the workspace's calls.

        Raises:
            ConfigError: a ``[caching]`` setting is missing.
        """
        calls = load_calls(ws, config.get(SECTION, "label_key"))
        ttl = _per_level(config, "exact_ttl_seconds")
        threshold = _per_level(config, "semantic_threshold")
        verified = _per_level(config, "semantic_require_verified")
        fix = _per_level(config, "prefix_fix_breakers")
        prefix_ttl = _per_level(config, "prefix_ttl_seconds")

        prefix, breakers = prefix_by_level(
            calls.prompts, calls.first_system, calls.model, calls.t, calls.rules, fix, prefix_ttl
        )
        exact = {lv: exact_hits(calls.exact_keys, calls.t, calls.ok, ttl[lv]) for lv in LEVELS}
        settings = {
            lv: {"ttl": ttl[lv], "threshold": threshold[lv], "verified": verified[lv]}
            for lv in LEVELS
        }
        semantic = semantic_by_level(
            calls,
            {lv: exact[lv][0] for lv in LEVELS},
            settings,
            [float(t) for t in config.get(SECTION, "semantic_sweep")],
            float(config.get(SECTION, "false_hit_response_similarity")),
        )
        per_call = pl.DataFrame({"call_id": calls.call_id}).with_columns(
            *(
                pl.Series(f"{name}_{lv}", values)
                for lv in LEVELS
                for name, values in (
                    ("exact_hit", exact[lv][0]),
                    ("semantic_hit", semantic.net[lv]),
                    ("prefix_read", prefix[lv].read),
                    ("prefix_write", prefix[lv].write),
                )
            ),
            # exact repeats and prefix reuse are read from the logs (with the providers'
            # documented rules); a semantic hit rests on the similarity threshold
            *(pl.Series(f"evidence_{lv}", ~semantic.net[lv] | exact[lv][0]) for lv in LEVELS),
            pl.Series("ttl_1h", calls.ttl_1h),
        )
        by_level = {
            "exact_hits": {lv: int(exact[lv][0].sum()) for lv in LEVELS},
            "semantic_hits": {lv: int(semantic.net[lv].sum()) for lv in LEVELS},
            "prefix_cached_tokens": {lv: int(prefix[lv].read.sum()) for lv in LEVELS},
            "prefix_new_tokens": {
                lv: int(np.maximum(prefix[lv].read - calls.cache_read, 0).sum()) for lv in LEVELS
            },
            "prefix_write_tokens": {lv: int(prefix[lv].write.sum()) for lv in LEVELS},
        }
        breaker_evidence = breaker_rows(
            breakers,
            prefix["conservative"].read,
            prefix["expected"].read if fix["expected"] else None,
        )
        _, templates = prompt_templates(calls, config)
        template_rows = [t.as_row() for t in templates]
        realized = gateway_realized(calls)
        below = below_minimum_rows(calls)
        n, repeats = len(calls.call_id), calls.query_repeats()
        details = {
            "exact_hits": by_level["exact_hits"]["expected"],
            "exact_realized_hits": realized["calls"],
            "exact_realized": realized,
            "semantic_hits": by_level["semantic_hits"]["expected"],
            "prefix_cached_tokens": by_level["prefix_cached_tokens"]["expected"],
            "prefix_realized_tokens": int(calls.cache_read.sum()),
            **{f"{key}_by_level": value for key, value in by_level.items()},
            "semantic_false_hits_excluded": semantic.flagged,
            "semantic_eligible_calls": int(calls.eligible.sum()),
            "semantic_embedder": calls.embedder,
            "semantic_curve": semantic.curve,
            "exact_repeat_calls": repeats,
            "exact_repeat_share": round(repeats / n, 4) if n else 0.0,
            "prefix_breakers": breaker_evidence,
            "prefix_below_minimum": below,
            "prompt_templates": template_summary(templates),
            "effort_by_part": EFFORT_BY_PART,
            "parts": part_savings(ws, config, per_call, self._apply_parts),
            "provider_rules": calls.rules_used(),
        }
        figures = self._figures(by_level, details, semantic.flagged, ttl, threshold, prefix_ttl)
        hits = exact["expected"][0] | semantic.net["expected"]
        affected = hits | (prefix["expected"].read > calls.cache_read)
        return Finding(
            lever_id=self.id,
            name=self.name,
            calls_affected=int(affected.sum()),
            tokens_affected=int((calls.input_tokens + calls.output_tokens)[affected].sum()),
            basis=combine_basis([f.basis for f in figures]),
            figures=figures,
            evidence=breaker_evidence
            + below
            + [r for r in template_rows if r["fixed_after_tokens"]][:10]
            + evidence_rows(calls, exact["expected"], semantic, prefix["expected"].read),
            per_call=per_call,
            details=details,
        )

    @staticmethod
    def _figures(
        by_level: dict[str, dict[Level, int]],
        details: dict[str, Any],
        flagged: dict[Level, int],
        ttl: dict[str, Any],
        threshold: dict[str, Any],
        prefix_ttl: dict[str, Any],
    ) -> list[Figure]:
        """The headline numbers: counts read from the log (evidence) and the settings they
        rest on (assumptions, with their config key)."""
        return [
            Figure(
                "exact_hit_calls", by_level["exact_hits"], "calls", "evidence",
                "calls repeating an earlier successful call's model, messages (last query "
                "normalized) and generation settings within the TTL",
            ),
            Figure(
                "exact_realized_calls", details["exact_realized_hits"], "calls", "evidence",
                "calls a gateway's own cache answered (calls.gateway_cache_hit: LiteLLM "
                "cache_hit, Helicone cache reference): realized, not a new saving",
            ),
            Figure(
                "semantic_hit_calls", by_level["semantic_hits"], "calls", "evidence",
                "single-turn calls whose query embedding matches an earlier one of the same "
                "category, model, system prompt and settings; net of flagged false hits",
            ),
            Figure(
                "semantic_false_hits_excluded", flagged, "calls", "evidence",
                "hits whose labels differ, or whose cached answer differs from the actual one",
            ),
            Figure(
                "prefix_cached_tokens", by_level["prefix_cached_tokens"], "tokens", "evidence",
                "longest token prefix shared with an earlier call of the model within the TTL, "
                "from the provider minimum in its increments (provider_rules.toml)",
            ),
            Figure(
                "prefix_realized_tokens", details["prefix_realized_tokens"], "tokens", "evidence",
                "cache_read_tokens already in the log: realized, not a new saving",
            ),
            Figure(
                "prompt_template_calls", details["prompt_templates"]["templated_calls"], "calls",
                "evidence", "calls whose last user message fills a mined template (the miner "
                "of lever 5 over the user messages)",
            ),
            Figure(
                "template_reorder_tokens", details["prompt_templates"]["tokens_if_moved"],
                "tokens", "evidence", "cached input tokens moving each template's slots after "
                "its fixed text would add, where that reaches the provider minimum; reported, "
                "not simulated",
            ),
            Figure(
                "exact_ttl_seconds", ttl, "seconds", "assumption",
                _assumed("exact_ttl_seconds", "assumption: how long an answer stays valid"),
            ),
            Figure(
                "semantic_threshold", threshold, "cosine", "assumption",
                _assumed("semantic_threshold", "semantic-cache defaults; banking77 curve"),
            ),
            Figure(
                "prefix_ttl_seconds", prefix_ttl, "seconds", "assumption",
                _assumed("prefix_ttl_seconds", "OpenAI prompt caching guide")
                + "; 0 = provider_rules.toml TTL (each row names its provider page)",
            ),
        ]  # fmt: skip

    def next_action(self, result: dict[str, Any], context: ActionContext) -> str:
        """Move the worst prefix breaker to the end of its prompt; serve repeats from a cache."""
        breakers = [e for e in result["evidence"] if e.get("kind") == "prefix_breaker"]
        hits = result["details"].get("exact_hits_by_level", {}).get("expected", 0)
        semantic = result["details"].get("semantic_hits_by_level", {}).get("expected", 0)
        parts = []
        if breakers:
            b = breakers[0]
            parts.append(
                f"move the {b['pattern']} at token {b['token_position']} of the {b['model']} "
                f"system prompt to its end ({plural(b['calls'], 'call')})"
            )
        if hits or semantic:
            repeats = plural(hits + semantic, "repeat")
            parts.append(f"serve {repeats} ({hits:,} exact, {semantic:,} semantic) from a cache")
        text = "; ".join(parts) or "keep prompts' static content first"
        return text[0].upper() + text[1:]

    def apply(
        self, plan: pl.DataFrame, finding: Finding, config: Config, level: Level
    ) -> pl.DataFrame:
        """With the lever's ``parts``: serve exact and (net) semantic hits free; raise the
        plan's cached input to the cacheable prefix (and its cache write where the provider
        charges one), never above the plan's input. Rows already free stay as they are; the
        rest start from the plan's current values, so tokens the log already shows cached are
        not saved twice."""
        return self._apply_parts(plan, finding.per_call, level, self.parts)

    @staticmethod
    def _apply_parts(
        plan: pl.DataFrame, per_call: pl.DataFrame | None, level: str, parts: tuple[str, ...]
    ) -> pl.DataFrame:
        """:meth:`apply` with only some of ``prefix``, ``exact``, ``semantic``."""
        if per_call is None or per_call.is_empty():
            return plan
        cols = [f"{name}_{level}" for name in ("exact_hit", "semantic_hit", "prefix_read")]
        cols.append(f"prefix_write_{level}")
        extra = ["ttl_1h"] if "ttl_1h" in per_call.columns else []
        joined = plan.join(per_call.select("call_id", *cols, *extra), on="call_id", how="left")
        was_free = pl.col("plan_free")
        hit = pl.lit(False)
        for part, col in (("exact", cols[0]), ("semantic", cols[1])):
            if part in parts:
                hit = hit | pl.col(col).fill_null(False)
        read, write, limit = (
            pl.col(c) for c in ("plan_cache_read", "plan_cache_write", "plan_input")
        )
        if "prefix" in parts:
            new_read = pl.min_horizontal(pl.max_horizontal(read, pl.col(cols[2])), limit)
            new_write = pl.min_horizontal(
                pl.max_horizontal(write, pl.col(cols[3])), limit - new_read
            )
            read = pl.when(was_free).then(read).otherwise(new_read)
            write = pl.when(was_free).then(write).otherwise(new_write)
        changed = [
            (was_free | hit).alias("plan_free"),
            read.cast(plan.schema["plan_cache_read"]).alias("plan_cache_read"),
            write.cast(plan.schema["plan_cache_write"]).alias("plan_cache_write"),
        ]
        if "prefix" in parts and extra and "plan_cache_write_1h" in plan.columns:
            # a call that wrote with the 1-hour TTL keeps it: what the lever adds to its
            # writes is written for an hour too
            added = write - pl.col("plan_cache_write")
            write_1h = (
                pl.when(pl.col("ttl_1h").fill_null(False) & ~was_free)
                .then(pl.col("plan_cache_write_1h") + added)
                .otherwise(pl.col("plan_cache_write_1h"))
            )
            changed.append(
                write_1h.cast(plan.schema["plan_cache_write_1h"]).alias("plan_cache_write_1h")
            )
        return joined.with_columns(changed).select(plan.columns)


__all__ = ["ALL_PARTS", "EFFORT_BY_PART", "CachingLever"]
