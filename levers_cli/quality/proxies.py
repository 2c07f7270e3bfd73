"""Proxies of answer acceptability without a judge, each labelled as a proxy.

A proxy compares a variant's answer with the original call's answer (the reference) and
says acceptable, not acceptable, or nothing (``None``: the proxy does not apply to the pair):

- ``exact_match``: short answers from a closed set (classification labels, tags): the
  original has at most ``[quality] exact_match_max_words`` words; acceptable when both are
  equal after SQuAD's ``normalize_answer`` (lower case, punctuation and the articles a/an/the
  removed, whitespace collapsed: Rajpurkar et al. 2016, the official evaluation script
  ``evaluate-v1.1.py``).
- ``json_fields``: structured outputs: the original parses as a JSON object (a fenced
  ```json block is unwrapped); acceptable when the variant parses too and at least
  ``[quality] json_field_agreement`` of the original's top-level keys have equal values.
- ``similarity``: free text (neither of the above): cosine similarity of the two answers'
  embeddings (the workspace's embedder) at least ``[quality] similarity_min``.
- ``length_ratio``: free text: the variant's length over the original's (characters)
  within ``[quality] length_ratio`` [low, high] (an answer much shorter or longer than the
  reference is suspect whatever its words).

A proxy is not a grade: ``levers quality`` shows proxy acceptability apart from judged.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.embed.base import Embedder

#: The proxies, in display order.
PROXIES = ("exact_match", "json_fields", "similarity", "length_ratio")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n\s*```\s*$", re.S)


@dataclass(frozen=True)
class ProxySettings:
    """The ``[quality]`` proxy settings (see :data:`levers_cli.defaults.toml`)."""

    exact_match_max_words: int = 5
    json_field_agreement: float = 1.0
    similarity_min: float = 0.85
    length_ratio: tuple[float, float] = (0.5, 2.0)

    @classmethod
    def from_config(cls, config: Config) -> ProxySettings:
        """Read ``[quality]``."""
        q = lambda k: config.get("quality", k)  # noqa: E731
        low, high = q("length_ratio")
        return cls(
            int(q("exact_match_max_words")),
            float(q("json_field_agreement")),
            float(q("similarity_min")),
            (float(low), float(high)),
        )


def normalize_answer(text: str) -> str:
    """SQuAD's ``normalize_answer``: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def parse_json(text: str) -> Any:
    """The JSON value of ``text`` (a fenced block unwrapped), or ``None`` when it is none
    or not an object/array."""
    match = _FENCE.match(text or "")
    body = match.group(1) if match else (text or "").strip()
    if not body or body[0] not in "[{":
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None


def field_agreement(original: dict[str, Any], variant: Any) -> float:
    """Share of ``original``'s top-level keys whose value ``variant`` repeats exactly
    (0.0 when ``variant`` is no object; 1.0 for an empty original)."""
    if not isinstance(variant, dict):
        return 0.0
    if not original:
        return 1.0
    return sum(1 for k, v in original.items() if k in variant and variant[k] == v) / len(original)


def kind_of(original: str, settings: ProxySettings) -> str:
    """Which proxy family applies to a reference answer: ``exact_match`` (a short answer),
    ``json_fields`` (a JSON object or array) or ``free_text``."""
    if parse_json(original) is not None:
        return "json_fields"
    if 0 < len(original.split()) <= settings.exact_match_max_words:
        return "exact_match"
    return "free_text"


def proxy_verdicts(
    originals: Sequence[str],
    variants: Sequence[str],
    settings: ProxySettings,
    embedder: Embedder | None = None,
) -> list[dict[str, bool | None]]:
    """Per pair, each proxy's verdict (``True`` acceptable, ``False`` not, ``None`` the proxy
    does not apply).

    Args:
        originals, variants: the pairs' answers, same length.
        settings: thresholds.
        embedder: for ``similarity`` (``None``: that proxy is left out, all ``None``).

    Returns:
        One dict per pair keyed by :data:`PROXIES`.
    """
    if len(originals) != len(variants):
        raise ValueError("originals and variants differ in length")
    out: list[dict[str, bool | None]] = []
    free: list[int] = []
    for i, (orig, var) in enumerate(zip(originals, variants, strict=True)):
        orig, var = orig or "", var or ""
        row: dict[str, bool | None] = dict.fromkeys(PROXIES)
        kind = kind_of(orig, settings)
        if kind == "exact_match":
            row["exact_match"] = normalize_answer(orig) == normalize_answer(var)
        elif kind == "json_fields":
            ref = parse_json(orig)
            got = parse_json(var)
            if isinstance(ref, dict):
                row["json_fields"] = field_agreement(ref, got) >= settings.json_field_agreement
            else:
                row["json_fields"] = got == ref
        elif orig.strip():
            ratio = len(var) / len(orig)
            row["length_ratio"] = settings.length_ratio[0] <= ratio <= settings.length_ratio[1]
            free.append(i)
        out.append(row)
    if embedder is not None and free:
        a = embedder.encode([originals[i] for i in free])
        b = embedder.encode([variants[i] or "" for i in free])
        sims = np.sum(np.asarray(a) * np.asarray(b), axis=1)
        for i, sim in zip(free, sims, strict=True):
            out[i]["similarity"] = bool(sim >= settings.similarity_min)
    return out


def similarities(
    originals: Sequence[str], variants: Sequence[str], embedder: Embedder
) -> list[float]:
    """Cosine similarity per pair (the embedder's vectors are L2-normalized)."""
    a = np.asarray(embedder.encode(list(originals)))
    b = np.asarray(embedder.encode(list(variants)))
    return [float(x) for x in np.sum(a * b, axis=1)]
