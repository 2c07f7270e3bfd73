"""Lever 3, caching: prefix (prompt) caching at the provider, and exact and semantic response
caching in front of it.

Method: ../shared/DESIGN.md §5.3, in helper modules — :mod:`~levers_cli.levers.caching.calls`
(the calls; exact keys and hits), :mod:`~levers_cli.levers.caching.prefix` (token prefixes
under ``provider_rules.toml``, measured on the log's prompts),
:mod:`~levers_cli.levers.caching.planned` (those prefixes priced on the plan: the prompt and
model each earlier lever leaves, every write paid), :mod:`~levers_cli.levers.caching.breakers`
(volatile values that break a prefix), :mod:`~levers_cli.levers.caching.templates` (user
prompts filled from templates, and the fixed text their slots keep out of the cache),
:mod:`~levers_cli.levers.caching.semantic` (semantic matches, the threshold curve) with
:mod:`~levers_cli.levers.caching.guards` (what a semantic hit must keep),
:mod:`~levers_cli.levers.caching.calibration` (each category's decision: noise floor,
content dependence, labelled pairs), :mod:`~levers_cli.levers.caching.pairs` (the labelled
pairs sheet) and :mod:`~levers_cli.levers.caching.report` (evidence, each part's saving).

Per level (``[caching]`` in defaults.toml): the response-cache TTL, the semantic threshold and
precision target, whether semantic hits need labelled categories, whether detected prefix
breakers are fixed, a longer prefix TTL where the provider charges no write premium and the
provider's extended retention. The parts differ in effort (prefix caching: low, a prompt
change; exact and semantic response caching: medium, a cache service), so
``details["parts"]`` prices each alone for the budget solver.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from levers_cli.levers.base import (
    LEVELS,
    Effort,
    Figure,
    Finding,
    Level,
    Lever,
    chain_links,
    combine_basis,
)
from levers_cli.levers.caching.calibration import CalibrationPolicy
from levers_cli.levers.caching.calls import exact_hits, load_calls
from levers_cli.levers.caching.pairs import (
    SHEET_COLUMNS as PAIR_SHEET_COLUMNS,
)
from levers_cli.levers.caching.pairs import (
    PairSheetError,
    candidate_pairs,
    is_pair_sheet,
    load_verdicts,
    read_verdicts,
)
from levers_cli.levers.caching.planned import PrefixSettings, prefix_on_plan
from levers_cli.levers.caching.prefix import prefix_by_level
from levers_cli.levers.caching.report import (
    below_minimum_rows,
    breaker_rows,
    evidence_rows,
    gateway_realized,
    part_savings,
)
from levers_cli.levers.caching.semantic import SemanticSettings, semantic_by_level
from levers_cli.levers.caching.templates import prompt_templates, template_summary
from levers_cli.pricing.prefix import ensure_prefix_columns
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
        fix = _per_level(config, "prefix_fix_breakers")
        prefix_ttl = _per_level(config, "prefix_ttl_seconds")
        extended = _per_level(config, "prefix_extended_retention")

        found = prefix_by_level(
            calls.prompts, calls.first_system, calls.model, calls.t, calls.rules, fix,
            prefix_ttl, calls.turns, extended, calls.batch,
        )  # fmt: skip
        prefix = found.by_level
        exact = {lv: exact_hits(calls.exact_keys, calls.t, calls.ok, ttl[lv]) for lv in LEVELS}
        template_of, templates = prompt_templates(calls, config)
        semantic = semantic_by_level(
            calls,
            {lv: exact[lv][0] for lv in LEVELS},
            semantic_settings(config),
            [float(t) for t in config.get(SECTION, "semantic_sweep")],
            float(config.get(SECTION, "answer_similarity_floor")),
            load_verdicts(ws),
            (template_of, {t.template_id: t.skeleton for t in templates}),
        )
        ids = calls.call_id
        per_call = pl.DataFrame({"call_id": ids}).with_columns(
            *(
                pl.Series(f"{name}_{lv}", values)
                for lv in LEVELS
                for name, values in (
                    ("exact_hit", exact[lv][0]),
                    ("semantic_hit", semantic.net[lv]),
                    ("prefix_read", prefix[lv].read),
                    ("prefix_write", prefix[lv].write),
                    ("prefix_shared", prefix[lv].shared),
                )
            ),
            *(
                pl.Series(
                    f"prefix_source_{lv}",
                    [ids[j] if j >= 0 else None for j in prefix[lv].source.tolist()],
                    dtype=pl.String,
                )
                for lv in LEVELS
            ),
            # exact repeats and prefix reuse are read from the logs (with the providers'
            # documented rules); a semantic hit is evidence only where labelled pairs
            # calibrated its category's threshold
            *(
                pl.Series(
                    f"evidence_{lv}", ~semantic.net[lv] | exact[lv][0] | semantic.measured[lv]
                )
                for lv in LEVELS
            ),
            pl.Series("prefix_static", found.static),
            pl.Series("prefix_end", found.at_end),
            pl.Series("prefix_group", calls.prefix_groups()),
            pl.Series("ttl_1h", calls.ttl_1h),
        )
        by_level = {
            "exact_hits": {lv: int(exact[lv][0].sum()) for lv in LEVELS},
            "semantic_hits": {lv: int(semantic.net[lv].sum()) for lv in LEVELS},
            "semantic_measured_hits": {lv: int(semantic.measured[lv].sum()) for lv in LEVELS},
            "semantic_excluded_hits": semantic.excluded,
            "prefix_cached_tokens": {lv: int(prefix[lv].read.sum()) for lv in LEVELS},
            "prefix_new_tokens": {
                lv: int(np.maximum(prefix[lv].read - calls.cache_read, 0).sum()) for lv in LEVELS
            },
            "prefix_write_tokens": {lv: int(prefix[lv].write.sum()) for lv in LEVELS},
        }
        breaker_evidence = breaker_rows(
            found.breakers,
            prefix["conservative"].read,
            prefix["expected"].read if fix["expected"] else None,
        )
        template_rows = [t.as_row() for t in templates]
        realized = gateway_realized(calls)
        below = below_minimum_rows(calls)
        n, repeats = len(calls.call_id), calls.query_repeats()
        apply_parts = partial(self._apply_parts, settings=prefix_settings(config))
        parts, losing = part_savings(ws, config, per_call, apply_parts)
        category_rows = [e.as_row() for e in semantic.categories["expected"].values()]
        category_rows.sort(key=lambda r: (r["basis"] != "excluded", -r["near_duplicate_pairs"]))
        details = {
            "exact_hits": by_level["exact_hits"]["expected"],
            "exact_realized_hits": realized["calls"],
            "exact_realized": realized,
            "semantic_hits": by_level["semantic_hits"]["expected"],
            "prefix_cached_tokens": by_level["prefix_cached_tokens"]["expected"],
            "prefix_realized_tokens": int(calls.cache_read.sum()),
            **{f"{key}_by_level": value for key, value in by_level.items()},
            "semantic_categories": category_rows,
            "semantic_eligible_calls": int(calls.eligible.sum()),
            "semantic_embedder": calls.embedder,
            "semantic_curve": semantic.curve,
            "exact_repeat_calls": repeats,
            "exact_repeat_share": round(repeats / n, 4) if n else 0.0,
            "prefix_breakers": breaker_evidence,
            "prefix_below_minimum": below,
            "prefix_templates_not_planned": losing,
            "prompt_templates": template_summary(templates),
            "effort_by_part": EFFORT_BY_PART,
            "parts": parts,
            "provider_rules": calls.rules_used(),
        }
        figures = self._figures(by_level, details, ttl, threshold, prefix_ttl)
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
            + losing
            + [r for r in category_rows if r["basis"] == "excluded"]
            + [r for r in template_rows if r["fixed_after_tokens"]][:10]
            + evidence_rows(calls, exact["expected"], semantic, prefix["expected"].read),
            per_call=per_call,
            details=details,
        )

    @staticmethod
    def _figures(
        by_level: dict[str, dict[Level, int]],
        details: dict[str, Any],
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
                "semantic_hit_calls", by_level["semantic_hits"], "calls", "assumption",
                "single-turn calls whose query embedding matches an earlier one of the same "
                "category, model, system prompt and settings above the category's threshold, "
                "in categories cacheable by meaning; the threshold is an assumption unless "
                "labelled pairs calibrated it (semantic_measured_calls)",
            ),
            Figure(
                "semantic_measured_calls", by_level["semantic_measured_hits"], "calls",
                "evidence", "semantic hits in categories whose threshold labelled pairs "
                "(levers export cache-pairs → levers label) calibrated to the precision target",
            ),
            Figure(
                "semantic_excluded_calls", by_level["semantic_excluded_hits"], "calls",
                "evidence", "matches above the threshold in categories whose answers differ "
                "across near-duplicate queries more than across exact repeats (the answer "
                "depends on the content), or whose labelled precision is below target",
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

    def partition_links(self, finding: Finding) -> list[tuple[str, str]]:
        """Each call with its prefix source at every level (it reads the source's cache), and
        the calls of each prompt template (``prefix_group``: prefix caching is planned per
        template where it pays for its writes)."""
        pc = finding.per_call
        if pc is None or pc.is_empty():
            return []
        links = chain_links(pc, "prefix_group")
        for lv in LEVELS:
            column = f"prefix_source_{lv}"
            if column in pc.columns:
                pairs = pc.filter(pl.col(column).is_not_null()).select("call_id", column)
                links += zip(pairs["call_id"].to_list(), pairs[column].to_list(), strict=True)
        return links

    def apply(
        self, plan: pl.DataFrame, finding: Finding, config: Config, level: Level
    ) -> pl.DataFrame:
        """With the lever's ``parts``: serve exact and semantic hits free; plan each call's
        prefix cache on the prompt and model the earlier levers left
        (:func:`~levers_cli.levers.caching.planned.prefix_on_plan`). Rows already free stay
        as they are; tokens the log already shows cached (same model) are kept, not saved
        twice."""
        return self._apply_parts(
            plan, finding.per_call, level, self.parts, settings=prefix_settings(config)
        )

    @staticmethod
    def _apply_parts(
        plan: pl.DataFrame,
        per_call: pl.DataFrame | None,
        level: str,
        parts: tuple[str, ...],
        settings: dict[str, PrefixSettings] | None = None,
        templates: list[pl.DataFrame] | None = None,
    ) -> pl.DataFrame:
        """:meth:`apply` with only some of ``prefix``, ``exact``, ``semantic``; the templates
        priced by the prefix part are appended to ``templates`` when given."""
        if per_call is None or per_call.is_empty():
            return plan
        plan = ensure_prefix_columns(plan)
        hits = [f"{name}_{level}" for name in ("exact_hit", "semantic_hit")]
        prefix = [f"prefix_shared_{level}", f"prefix_source_{level}"]
        prefix += ["prefix_static", "prefix_end", "prefix_group", "ttl_1h"]
        wanted = [c for c in [*hits, *prefix] if c in per_call.columns]
        joined = plan.join(per_call.select("call_id", *wanted), on="call_id", how="left")
        was_free = pl.col("plan_free")
        hit = pl.lit(False)
        for part, col in (("exact", hits[0]), ("semantic", hits[1])):
            if part in parts and col in joined.columns:
                hit = hit | pl.col(col).fill_null(False)
        joined = joined.with_columns((was_free | hit).alias("plan_free"))
        if "prefix" in parts and set(prefix) <= set(joined.columns):
            chosen = (settings or {}).get(level, PrefixSettings())
            joined, priced = prefix_on_plan(joined, level, chosen)
            if templates is not None:
                templates.append(priced)
        return joined.select(plan.columns)


def prefix_settings(config: Config | None) -> dict[str, PrefixSettings]:
    """Each level's :class:`~levers_cli.levers.caching.planned.PrefixSettings` from
    ``[caching] prefix_ttl_seconds`` and ``prefix_extended_retention``."""
    if config is None:
        return {lv: PrefixSettings() for lv in LEVELS}
    ttl = _per_level(config, "prefix_ttl_seconds")
    extended = _per_level(config, "prefix_extended_retention")
    return {lv: PrefixSettings(float(ttl[lv]), bool(extended[lv])) for lv in LEVELS}


def semantic_settings(config: Config) -> dict[str, SemanticSettings]:
    """Each level's :class:`~levers_cli.levers.caching.semantic.SemanticSettings` from
    ``[caching]``."""
    values = {
        key: _per_level(config, key)
        for key in (
            "exact_ttl_seconds", "semantic_threshold", "semantic_require_verified",
            "semantic_min_precision",
        )
    }  # fmt: skip
    grid = tuple(sorted(float(t) for t in config.get(SECTION, "semantic_sweep")))
    return {
        lv: SemanticSettings(
            float(values["exact_ttl_seconds"][lv]),
            bool(values["semantic_require_verified"][lv]),
            CalibrationPolicy(
                threshold=float(values["semantic_threshold"][lv]),
                target_precision=float(values["semantic_min_precision"][lv]),
                min_pairs=int(config.get(SECTION, "semantic_min_pairs")),
                margin=float(config.get(SECTION, "semantic_disagreement_margin")),
                assumed_floor=float(config.get(SECTION, "semantic_assumed_noise_floor")),
                grid=grid,
            ),
        )
        for lv in LEVELS
    }


__all__ = [
    "ALL_PARTS",
    "EFFORT_BY_PART",
    "PAIR_SHEET_COLUMNS",
    "CachingLever",
    "PairSheetError",
    "candidate_pairs",
    "is_pair_sheet",
    "load_verdicts",
    "prefix_settings",
    "read_verdicts",
    "semantic_settings",
]
