"""Plain text out of logged values: a chat message's content as one string, and a text cut
to one line for display."""

from __future__ import annotations

import json
from typing import Any


def content_text(content: Any) -> str:
    """Return the plain text of a chat message ``content``.

    Handles a string, OpenAI/Anthropic content-part lists (``{"type": "text", "text": ...}``,
    tool calls/results serialized as JSON) and, for anything else, its JSON form.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
                elif part.get("type") in ("image_url", "image", "input_image"):
                    parts.append("[image]")
                else:
                    parts.append(json.dumps(part, ensure_ascii=False, sort_keys=True))
        return "\n".join(p for p in parts if p)
    if isinstance(content, dict) and isinstance(content.get("text"), str):
        return content["text"]
    return json.dumps(content, ensure_ascii=False, sort_keys=True)


def shorten(text: str | None, limit: int = 160) -> str:
    """``text`` on one line, at most ``limit`` characters (an ellipsis marks a cut)."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 call``, ``2 calls``, ``1,000 calls``; ``many`` for a plural that is not ``word``
    + s (``plural(1, "summary", "summaries")``)."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"
