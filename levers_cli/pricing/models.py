"""Model names as tiers and cap groups compare them: the family, without a provider prefix
or a snapshot suffix."""

from __future__ import annotations

import re

_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{3}|latest|preview)$")


def model_family(model: str | None) -> str:
    """``model`` without a provider prefix or snapshot suffix (``gpt-4o-2024-08-06`` → ``gpt-4o``,
    ``claude-3-5-haiku-20241022`` → ``claude-3-5-haiku``), lowercased; ``""`` for ``None``."""
    name = (model or "").strip().lower().rsplit("/", 1)[-1]
    return _SNAPSHOT.sub("", name)


def same_model(a: str | None, b: str | None) -> bool:
    """Whether two model ids name the same model, snapshots aside."""
    return bool(a) and bool(b) and model_family(a) == model_family(b)
