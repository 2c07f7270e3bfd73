"""App features: the unit route categories live within (../shared/DESIGN.md §4.5).

One app sends several kinds of traffic (an FAQ bot, a nightly ticket classifier, a coding
assistant); clustering the last user message across all of them puts "how do I export a CSV"
from the FAQ beside a triage ticket about CSV exports. So each call gets a ``feature`` first,
and categories are found within it. In order:

1. **A logged tag**: the first of ``[cluster] feature_keys`` present in the call's top-level
   ``metadata`` (``feature``, ``app``, …), its value as logged.
2. **A prompt template**: the call's system prompt, masked (dates, times, numbers, names, ids:
   :func:`levers_cli.query_templates.mask.tokens`), so a prompt that starts with the request
   time or a user's name is one template; a call with no system prompt is keyed by the first
   :data:`HEAD_TOKENS` masked tokens of the first line of its first user message (a templated
   request: "Classify the following support ticket…", "Write the weekly report for the week
   of <date>…"). A key is a template when at least ``feature_min_calls`` calls and at least
   ``feature_min_prompts`` distinct prompts (system prompt + first user message: a
   conversation's calls share theirs, and one question asked twice is no template) share it.
   A template whose tagged calls carry one tag (at least :data:`TAG_AGREEMENT` of them) gives
   that tag to its untagged calls (a job tagged only from some date on stays one feature);
   otherwise it is named after its text (:func:`template_name`).
3. **The whole log**: every other call is in :data:`REST` (:data:`ALL_CALLS` when no call has
   a feature at all).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass

from levers_cli.query_templates.mask import NEWLINE, tokens
from levers_cli.redact import redact
from levers_cli.schema import FEATURE
from levers_cli.store import Workspace

#: Masked tokens of the first user line that key a call without a system prompt (assumption:
#: 12 tokens hold a request template's fixed opening, "write the weekly operations report for
#: <name> for the week of <date> to", and rarely two free questions' common start).
HEAD_TOKENS = 12
#: Share of a template's tagged calls that must carry one tag for its untagged calls to take
#: it (assumption: nearly all; a template shared by two tagged features stays a template).
TAG_AGREEMENT = 0.9
#: Feature of the calls with no tag and no template, when some calls have a feature.
REST = "untagged"
#: Feature of every call when no call has a tag or a template: the whole log.
ALL_CALLS = "all calls"
#: Longest template name, and longest description after an assistant's name (characters
#: before the ellipsis; assumption: short enough for "feature › category" to fit a table cell).
NAME_CHARS = 40
DESCRIPTION_CHARS = 26

_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_YOU_ARE = re.compile(r"^\s*you are\s+", re.IGNORECASE)
_ARTICLE = re.compile(r"^(?:the|an?)\s+", re.IGNORECASE)
#: Masked slots that make a sentence a poor name (a timestamp line); names are fine.
_SLOT = re.compile(r"<(?!name>)[a-z]+>")


@dataclass(frozen=True)
class FeatureResult:
    """How calls were split into features: calls per feature, and per source."""

    features: dict[str, int]
    tagged_calls: int
    template_calls: int
    rest_calls: int


def _key(system_prompt: str | None, first_user: str | None) -> str | None:
    """The prompt-template key of a call: its masked system prompt, else the masked head of
    its first user message's first line; ``None`` when it has neither."""
    if system_prompt and system_prompt.strip():
        text = " ".join(tokens(system_prompt))
        return "s:" + hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
    if first_user and first_user.strip():
        head = tokens(first_user.strip().split("\n", 1)[0])[:HEAD_TOKENS]
        if head:
            return "u:" + " ".join(head)
    return None


def template_name(system_prompt: str | None, first_user: str | None) -> str:
    """A readable name for a template: the first sentence of its system prompt that holds
    three words and no masked slot but names ("You are" dropped; "X, the Y" written "X (Y)"),
    else the first user line, cut to :data:`NAME_CHARS` characters (the description in
    parentheses to :data:`DESCRIPTION_CHARS`) at a word boundary. Redacted first
    (:func:`levers_cli.redact.redact`): a name is shown in labels, reports and exports, and a
    first user line may hold an email or a key."""
    text = ""
    if system_prompt and system_prompt.strip():
        for sentence in _SENTENCE.findall(system_prompt):
            masked = " ".join(t for t in tokens(sentence) if t != NEWLINE)
            if len(sentence.split()) >= 3 and not _SLOT.search(masked):
                text = sentence
                break
        text = text or system_prompt
    elif first_user:
        text = first_user.strip().split("\n", 1)[0]
    text = redact(text).text
    text = _ARTICLE.sub("", " ".join(_YOU_ARE.sub("", text).split()).rstrip(".!?:"))
    head, comma, rest = text.partition(", ")
    if comma and len(head.split()) <= 3 and rest:  # "DevPilot, the internal coding assistant"
        rest = _ARTICLE.sub("", rest)
        return f"{head} ({_cut(rest, DESCRIPTION_CHARS)})"
    return _cut(text, NAME_CHARS) or "(empty prompt)"


def _cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a word boundary, with an ellipsis."""
    if len(text) > limit:
        return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return text


def assign_features(
    ws: Workspace,
    feature_keys: list[str],
    *,
    min_calls: int = 3,
    min_prompts: int = 3,
    keep_assigned: bool = False,
) -> FeatureResult:
    """Write ``calls.feature`` for every call (see the module docstring for the method).

    With ``keep_assigned`` (a later run of a weekly job) a call that already has a feature
    keeps it, so its category id stays stable; only calls without one (new calls, or a
    workspace made before features) get theirs now, from templates seen over the whole log.

    Args:
        ws: the workspace.
        feature_keys: top-level metadata keys that name a call's feature, first present wins.
        min_calls: calls a prompt template needs.
        min_prompts: distinct prompts (system prompt + first user message) a template needs.

    Returns:
        calls per feature, and calls whose feature came from a tag, a template or neither.
    """
    tag_sql = "NULL"
    if feature_keys:
        parts = ", ".join(
            f"nullif(trim(metadata->>'$.\"{k.replace(chr(34), '')}\"'), '')" for k in feature_keys
        )
        tag_sql = f"coalesce({parts})"
    rows = ws.con.execute(
        f"""WITH m AS (
               SELECT call_id, {tag_sql} AS tag, system_prompt, {FEATURE} AS kept,
                      list_filter(
                          CAST(CASE WHEN json_type(messages) = 'ARRAY' THEN messages END
                               AS JSON[]),
                          lambda m: m->>'role' = 'user')[1]->>'content' AS first_user
               FROM calls)
           SELECT tag, system_prompt, first_user, count(*)::BIGINT,
                  list(call_id ORDER BY call_id),
                  histogram(kept) FILTER (WHERE kept IS NOT NULL)
           FROM m GROUP BY tag, system_prompt, first_user
           ORDER BY 4 DESC, 2 NULLS FIRST, 3 NULLS FIRST, 1 NULLS FIRST"""
    ).fetchall()
    # a later run: the feature each template's stored calls already have keeps its name
    # (a name is made from the template's most frequent prompt, which new calls can change)
    key_kept: dict[str, Counter[str]] = defaultdict(Counter)
    # per key: calls, distinct prompts, tag counts, and the most frequent prompt (for a name)
    key_calls: Counter[str] = Counter()
    key_prompts: dict[str, set[int]] = defaultdict(set)
    key_tags: dict[str, Counter[str]] = defaultdict(Counter)
    key_example: dict[str, tuple[int, str | None, str | None]] = {}
    grouped: list[tuple[str | None, str | None, list[str]]] = []
    for tag, system_prompt, first_user, calls, ids, kept in rows:
        key = _key(system_prompt, first_user)
        grouped.append((tag, key, ids))
        if key is None:
            continue
        key_calls[key] += calls
        if keep_assigned and kept:
            key_kept[key].update(kept)
        key_prompts[key].add(hash((system_prompt, first_user)))
        if tag is not None:
            key_tags[key][tag] += calls
        if calls > key_example.get(key, (0, None, None))[0]:
            key_example[key] = (calls, system_prompt, first_user)
    tags = {tag for tag, _, _ in grouped if tag is not None}
    names: dict[str, str] = {}
    used = set(tags)
    for key in sorted(key_calls, key=lambda k: (-key_calls[k], k)):
        if key_calls[key] < min_calls or len(key_prompts[key]) < min_prompts:
            continue
        if key_kept.get(key):
            names[key] = key_kept[key].most_common(1)[0][0]
            used.add(names[key])
            continue
        counts = key_tags.get(key)
        if counts:
            top, n = counts.most_common(1)[0]
            if n >= TAG_AGREEMENT * sum(counts.values()):
                names[key] = top
                continue
        _, system_prompt, first_user = key_example[key]
        name = base = template_name(system_prompt, first_user)
        suffix = 2
        while name in used:
            name, suffix = f"{base} #{suffix}", suffix + 1
        used.add(name)
        names[key] = name
    rest = REST if (tags or names) else ALL_CALLS
    out: dict[str, list[str]] = {"call_id": [], FEATURE: []}
    by_source = Counter[str]()
    for tag, key, ids in grouped:
        if tag is not None:
            feature, source = tag, "tag"
        elif key is not None and key in names:
            feature, source = names[key], "template"
        else:
            feature, source = rest, "rest"
        by_source[source] += len(ids)
        out["call_id"].extend(ids)
        out[FEATURE].extend([feature] * len(ids))
    ws.load_temp("call_features", out)
    ws.con.execute(
        f"""UPDATE calls SET {FEATURE} = f.{FEATURE} FROM call_features f
            WHERE calls.call_id = f.call_id
              {f"AND calls.{FEATURE} IS NULL" if keep_assigned else ""}"""
    )
    ws.con.execute("DROP TABLE call_features")
    counts = Counter[str](
        dict(ws.con.execute(f"SELECT {FEATURE}, count(*) FROM calls GROUP BY ALL").fetchall())
    )
    return FeatureResult(
        features=dict(counts.most_common()),
        tagged_calls=by_source["tag"],
        template_calls=by_source["template"],
        rest_calls=by_source["rest"],
    )


__all__ = ["ALL_CALLS", "REST", "FeatureResult", "assign_features", "template_name"]
