"""What log text may show in a report: redacted (``levers_cli.redact``, on by default) and
shortened. Escaping is the renderer's job (Jinja2 autoescape for HTML, :func:`md_cell` for
Markdown); this module only decides *which* text leaves the workspace."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from levers_cli.redact import redact
from levers_cli.text.content import shorten

#: keys whose string values are structure, not log text (ids, timestamps, model names, units)
_STRUCTURAL = frozenset(
    {
        "kind", "model", "provider", "basis", "unit", "source", "name", "level", "verdict",
        "first_ts", "last_ts", "ts", "since", "workspace", "generated_at", "price_data",
        "conversation_id", "first_call_id", "example_call_id", "call_id", "volatile_regex",
        "when", "effort", "export", "plan_model", "top_model", "monthly_basis",
        "monthly_run_rate_basis", "factor_source", "levers_version", "pattern", "fix",
        "embedder", "projection", "schema_version", "label_basis",
    }
)  # fmt: skip
_ISO = re.compile(r"^\d{4}-\d\d-\d\d([T ][\d:.]+([+-]\d\d:?\d\d|Z)?)?$")


def redact_tree(value: Any, counts: Counter[str], key: str = "") -> Any:
    """A copy of ``value`` (nested dicts/lists of JSON values) with every string of log text
    redacted; ``counts`` gains the placeholders replaced (``{"EMAIL": 2, …}``).

    Strings under :data:`_STRUCTURAL` keys and ISO timestamps are kept as they are."""
    if isinstance(value, dict):
        return {k: redact_tree(v, counts, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_tree(v, counts, key) for v in value]
    if isinstance(value, str) and key not in _STRUCTURAL and not _ISO.match(value):
        found = redact(value)
        counts.update(found.counts)
        return found.text
    return value


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def md_cell(value: Any, limit: int = 120) -> str:
    """A value as Markdown table-cell text: one line, shortened, Markdown specials
    backslash-escaped and ``<``, ``>``, ``&`` as entities, so log text never becomes markup
    (GitHub renders inline HTML in comments)."""
    if value is None:
        return ""
    text = shorten(str(value), limit)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)
