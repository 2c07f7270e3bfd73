"""Exact and near-duplicate removal for training sets (``levers export lora``).

- Exact: the same text once lower-cased and with whitespace runs collapsed.
- Near: Jaccard similarity of word ``w``-gram shingles (Broder 1997, "On the resemblance and
  containment of documents") at least ``threshold``. Candidate pairs come from MinHash
  signatures (128 permutations, ``(a·x + b) mod (2^61 − 1)`` over CRC-32 shingle hashes)
  banded for locality-sensitive hashing (32 bands × 4 rows: a pair at Jaccard 0.8 becomes a
  candidate with probability 1 − (1 − 0.8⁴)³² > 0.99999; Leskovec, Rajaraman & Ullman,
  *Mining of Massive Datasets*, ch. 3.4); every candidate is then checked with the exact
  Jaccard of its shingle sets, so nothing below the threshold is ever dropped. This is the
  method of Lee et al. 2022 (arXiv:2107.06499) at a smaller scale.

Texts are processed in order; a text that duplicates an earlier kept one is dropped, so the
earliest of a group stays.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

_PRIME = (1 << 61) - 1
_PERMUTATIONS, _BANDS = 128, 32
_WORD = re.compile(r"\w+")


def normalized(text: str) -> str:
    """Lower-cased, whitespace runs collapsed to one space, ends trimmed."""
    return " ".join(text.lower().split())


def shingles(text: str, words: int) -> set[int]:
    """CRC-32 hashes of the word ``words``-grams of ``text`` (lower-cased ``\\w+`` words); a
    text shorter than ``words`` words is one shingle of all of them (empty text: empty set)."""
    tokens = _WORD.findall(text.lower())
    if len(tokens) < words:
        return {zlib.crc32(" ".join(tokens).encode())} if tokens else set()
    return {
        zlib.crc32(" ".join(tokens[i : i + words]).encode()) for i in range(len(tokens) - words + 1)
    }


def _signature(hashes: set[int], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    values = np.fromiter(hashes, dtype=np.uint64, count=len(hashes))
    return ((np.outer(values, a) + b) % _PRIME).min(axis=0)


def duplicates(texts: Sequence[str], words: int, threshold: float) -> list[str | None]:
    """Which texts to drop.

    Args:
        texts: in priority order (the earliest of a duplicate group is kept).
        words: shingle length in words.
        threshold: Jaccard similarity (0–1] at or above which two texts are near duplicates.

    Returns:
        One entry per text: ``None`` (kept), ``"exact"`` or ``"near"`` (dropped).
    """
    rng = np.random.default_rng(20_240_601)
    a = rng.integers(1, 1 << 29, _PERMUTATIONS, dtype=np.uint64)  # a·x < 2^61: no overflow
    b = rng.integers(0, 1 << 32, _PERMUTATIONS, dtype=np.uint64)
    rows = _PERMUTATIONS // _BANDS
    seen: set[str] = set()
    kept_sets: list[set[int]] = []
    buckets: dict[tuple[int, bytes], list[int]] = {}
    out: list[str | None] = []
    for text in texts:
        key = normalized(text)
        if key in seen:
            out.append("exact")
            continue
        seen.add(key)
        current = shingles(text, words)
        keys: list[tuple[int, bytes]] = []
        if current:
            sig = _signature(current, a, b)
            keys = [(n, sig[n * rows : (n + 1) * rows].tobytes()) for n in range(_BANDS)]
            candidates = {j for k in keys for j in buckets.get(k, ())}
            if any(
                len(current & kept_sets[j]) / len(current | kept_sets[j]) >= threshold
                for j in candidates
            ):
                out.append("near")
                continue
        index = len(kept_sets)
        kept_sets.append(current)
        for k in keys:
            buckets.setdefault(k, []).append(index)
        out.append(None)
    return out


__all__ = ["duplicates", "normalized", "shingles"]
