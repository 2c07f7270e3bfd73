"""Image input tokens of a request whose log has no usage: each provider's documented rule
from the image's size (and detail), never from the length of its base64 text.

Rules:

* OpenAI, "tile" models (Images and vision guide, "Calculating costs":
  https://platform.openai.com/docs/guides/images-vision#calculating-costs): ``detail: low``
  costs the base tokens; otherwise the image is scaled to fit 2048×2048, then its shortest
  side to 768 px, and each 512 px tile costs the tile tokens, plus the base (gpt-4o, gpt-4.1,
  gpt-4.5: 85 + 170 per tile; gpt-5: 70 + 140; o1, o3: 75 + 150; gpt-4o-mini: 2,833 + 5,667).
* OpenAI, "patch" models (same guide): 32 px patches covering the image, at most 1,536 (a
  larger image is scaled down to fit), times the model's multiplier (gpt-4.1-mini and
  gpt-5-mini 1.62, gpt-4.1-nano and gpt-5-nano 2.46, o4-mini 1.72).
* Anthropic (Vision guide, "Calculate image costs":
  https://platform.claude.com/docs/en/build-with-claude/vision): an image whose long edge
  exceeds 1,568 px is scaled down first; tokens = width × height / 750, at most ~1,600.

The size is read from the image header (Pillow) of inline base64 data. An image given by URL,
or whose data cannot be read, counts as the rule's largest image for its detail (an upper
bound: 8 tiles, 1,536 patches, 1,600 tokens), so an estimate never hides a large image.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from typing import Any

#: Content-part types that carry an image (OpenAI Chat, OpenAI Responses, Anthropic).
IMAGE_PART_TYPES = frozenset({"image_url", "input_image", "image"})

#: OpenAI tile models: model id prefix → (base tokens, tokens per 512 px tile); first match.
_TILES = (
    ("gpt-4o-mini", (2833, 5667)),
    ("gpt-5-chat", (70, 140)),
    ("gpt-5", (70, 140)),
    ("o1", (75, 150)),
    ("o3", (75, 150)),
)
_DEFAULT_TILE = (85, 170)  # gpt-4o, gpt-4.1, gpt-4.5, gpt-4-turbo
#: OpenAI patch models: model id prefix → tokens per 32 px patch.
_PATCHES = (
    ("gpt-4.1-mini", 1.62),
    ("gpt-4.1-nano", 2.46),
    ("gpt-5-mini", 1.62),
    ("gpt-5-nano", 2.46),
    ("o4-mini", 1.72),
)
_MAX_PATCHES = 1536
_ANTHROPIC_LONG_EDGE, _ANTHROPIC_MAX_TOKENS = 1568, 1600


def is_image_part(part: Any) -> bool:
    """True for a content part that carries an image."""
    return isinstance(part, dict) and part.get("type") in IMAGE_PART_TYPES


def image_tokens(part: dict[str, Any], model: str | None) -> int:
    """Input tokens of one image content part for ``model`` (see the module docstring):
    Anthropic's rule for ``claude`` models, OpenAI's for the rest."""
    name = (model or "").lower().split("/")[-1]
    size = image_size(part)
    if name.startswith("claude") or "anthropic" in (model or "").lower():
        return anthropic_image_tokens(size)
    detail = _detail(part)
    for prefix, per_patch in _PATCHES:
        if name.startswith(prefix):
            return openai_patch_tokens(size, per_patch)
    base, tile = next((bt for prefix, bt in _TILES if name.startswith(prefix)), _DEFAULT_TILE)
    return openai_tile_tokens(size, detail, base, tile)


def openai_tile_tokens(size: tuple[int, int] | None, detail: str, base: int, tile: int) -> int:
    """OpenAI's tile rule (``size``: width, height in px; ``None``: unknown, the largest)."""
    if detail == "low":
        return base
    if size is None:
        return base + tile * 8  # 2048 × 768 after scaling: 4 × 2 tiles
    width, height = (float(v) for v in size)
    if max(width, height) > 2048:
        scale = 2048 / max(width, height)
        width, height = width * scale, height * scale
    if min(width, height) > 768:
        scale = 768 / min(width, height)
        width, height = width * scale, height * scale
    tiles = math.ceil(width / 512) * math.ceil(height / 512)
    return base + tile * tiles


def openai_patch_tokens(size: tuple[int, int] | None, per_patch: float) -> int:
    """OpenAI's patch rule: 32 px patches (at most 1,536) × the model's multiplier."""
    if size is None:
        return math.ceil(_MAX_PATCHES * per_patch)
    width, height = (float(v) for v in size)
    patches = math.ceil(width / 32) * math.ceil(height / 32)
    if patches > _MAX_PATCHES:
        shrink = math.sqrt(32 * 32 * _MAX_PATCHES / (width * height))
        across, down = width * shrink / 32, height * shrink / 32
        shrink *= min(math.floor(across) / across, math.floor(down) / down)
        patches = math.ceil(width * shrink / 32) * math.ceil(height * shrink / 32)
    return math.ceil(min(patches, _MAX_PATCHES) * per_patch)


def anthropic_image_tokens(size: tuple[int, int] | None) -> int:
    """Anthropic's rule: width × height / 750 after scaling the long edge to 1,568 px, at
    most ~1,600 tokens."""
    if size is None:
        return _ANTHROPIC_MAX_TOKENS
    width, height = (float(v) for v in size)
    if max(width, height) > _ANTHROPIC_LONG_EDGE:
        scale = _ANTHROPIC_LONG_EDGE / max(width, height)
        width, height = width * scale, height * scale
    return min(math.ceil(width * height / 750), _ANTHROPIC_MAX_TOKENS)


def image_size(part: dict[str, Any]) -> tuple[int, int] | None:
    """``(width, height)`` in px of an image part's inline base64 data (a data URL, or
    Anthropic's ``source.data``), read from its header; ``None`` when given by URL or
    unreadable."""
    data = _inline_data(part)
    if not data:
        return None
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    return (int(width), int(height)) if width > 0 and height > 0 else None


def _inline_data(part: dict[str, Any]) -> str | None:
    source = part.get("source")
    if isinstance(source, dict) and source.get("type") == "base64":
        data = source.get("data")
        return data if isinstance(data, str) else None
    url = part.get("image_url")
    if isinstance(url, dict):
        url = url.get("url")
    if isinstance(url, str) and url.startswith("data:") and "," in url:
        return url.split(",", 1)[1]
    return None


def _detail(part: dict[str, Any]) -> str:
    url = part.get("image_url")
    detail = url.get("detail") if isinstance(url, dict) else part.get("detail")
    return str(detail or "auto").lower()
