"""Prompt templates for the caching lever: user prompts built from one template, and how much
of each the provider's prefix cache can read.

A prompt caches only up to the first character that differs from an earlier call (the prefix
rule of every provider: OpenAI's and Anthropic's prompt-caching guides). In a prompt filled
from a template, that is the first slot: the template's fixed text *after* a slot is sent again
in full on every call, because the slot value before it differs. Moving the slots to the end
("static content first, variable content last", OpenAI prompt caching guide) makes the whole
fixed text a cacheable prefix — once the system prompt plus that text reach the provider's
minimum cacheable tokens (``provider_rules.toml``).

Templates are found by the same miner as lever 5 (:func:`mine_templates`, run over the last
user message of each call), so both levers name the same templates. The gains reported here
are evidence (the templates and their calls are in the logs, the minimums are the providers'
documented rules) but they are not added to the simulated saving: reordering a template is a
prompt change the simulation does not assume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from levers_cli.query_templates.mask import NEWLINE, STAR
from levers_cli.query_templates.miner import MINING_KEYS, mine_templates
from levers_cli.text.tokens import count_text

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.levers.caching.calls import CallTable


@dataclass
class PromptTemplate:
    """One template of user prompts and what prefix caching makes of it.

    Attributes:
        template_id: the miner's id (most calls first).
        skeleton: the template with slots as ``<*>`` (lower-cased, tokenized by the miner).
        model: the most frequent model of its calls.
        calls: calls filled from it.
        slot_first: the prompt starts with a slot, so no call shares a prefix in it.
        fixed_before_tokens: tokens of fixed text before the first slot (cacheable today).
        fixed_after_tokens: tokens of fixed text after the first slot (resent in full
            today; counted on the skeleton's words, so approximate by a few tokens).
        system_tokens: median tokens of the system prompt sent before it.
        min_cacheable_tokens: the provider's minimum (``None``: no rule for the provider).
        cacheable_if_moved: system prompt + all fixed text reach that minimum.
        tokens_if_moved: cached input tokens the reorder would add over the log: every call
            after the first reads ``fixed_after_tokens`` more (0 when not cacheable).
        example: one prompt (up to 120 characters).
    """

    template_id: int
    skeleton: str
    model: str | None
    calls: int
    slot_first: bool
    fixed_before_tokens: int
    fixed_after_tokens: int
    system_tokens: int
    min_cacheable_tokens: int | None
    cacheable_if_moved: bool
    tokens_if_moved: int
    example: str

    def as_row(self) -> dict[str, Any]:
        """The evidence row (``kind: prompt_template``)."""
        return {"kind": "prompt_template", **self.__dict__, "skeleton": self.skeleton[:160]}


def _fixed_tokens(skeleton: str, model: str | None) -> tuple[bool, int, int]:
    """``(slot first, tokens before the first slot, tokens after it)`` of a skeleton."""
    words = [w for w in skeleton.split() if w != NEWLINE]
    first = words.index(STAR) if STAR in words else len(words)
    before = " ".join(words[:first])
    after = " ".join(w for w in words[first:] if w != STAR)
    return first == 0, count_text(before, model), count_text(after, model)


def prompt_templates(calls: CallTable, config: Config) -> tuple[np.ndarray, list[PromptTemplate]]:
    """The templates of the calls' last user messages, with their prefix-caching figures.

    Args:
        calls: the caching lever's call table (time order).
        config: the settings; mining uses lever 5's ``[materialize]`` keys, so both levers
            see the same templates.

    Returns:
        ``((n,) template id per call, -1 for none; templates, most calls first)``.
    """
    queries = [q or "" for q in calls.query]
    if not any(q.strip() for q in queries):
        return np.full(len(queries), -1, dtype=np.int64), []
    mined = mine_templates(queries, **{k: config.get("materialize", k) for k in MINING_KEYS})
    labels = np.asarray(mined.labels, dtype=np.int64)
    # each template's calls in time order: one stable sort instead of a scan per template
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(len(mined.skeletons) + 1))
    counted: dict[tuple[str, str | None], int] = {}  # system prompts repeat: count each once

    def system_tokens(text: str, model: str | None) -> int:
        if (text, model) not in counted:
            counted[text, model] = count_text(text, model)
        return counted[text, model]

    found: list[PromptTemplate] = []
    for template_id, skeleton in enumerate(mined.skeletons):
        members = order[bounds[template_id] : bounds[template_id + 1]]
        if not len(members):
            continue
        models = [calls.model[i] for i in members]
        model = max(set(models), key=lambda m: (models.count(m), m or ""))
        slot_first, before, after = _fixed_tokens(skeleton, model)
        system = int(np.median([system_tokens(calls.system[i] or "", model) for i in members[:50]]))
        rule = next((calls.rules[i] for i in members if calls.rules[i] is not None), None)
        minimum = rule.min_cacheable_tokens if rule is not None else None
        reachable = minimum is not None and system + before + after >= minimum
        found.append(
            PromptTemplate(
                template_id=template_id,
                skeleton=skeleton,
                model=model,
                calls=len(members),
                slot_first=slot_first,
                fixed_before_tokens=before,
                fixed_after_tokens=after,
                system_tokens=system,
                min_cacheable_tokens=minimum,
                cacheable_if_moved=reachable,
                tokens_if_moved=(len(members) - 1) * after if reachable else 0,
                example=queries[members[0]][:120],
            )
        )
    found.sort(key=lambda t: (-t.calls, t.template_id))
    return labels, found


def template_summary(templates: list[PromptTemplate]) -> dict[str, Any]:
    """Counts for the finding's details: templates, their calls, those whose slots come
    first, fixed tokens resent after the first slot, and the cached tokens a reorder adds."""
    return {
        "templates": len(templates),
        "templated_calls": sum(t.calls for t in templates),
        "slot_first_templates": sum(t.slot_first for t in templates),
        "fixed_tokens_after_first_slot": sum(t.calls * t.fixed_after_tokens for t in templates),
        "cacheable_if_moved_templates": sum(t.cacheable_if_moved for t in templates),
        "tokens_if_moved": sum(t.tokens_if_moved for t in templates),
    }
