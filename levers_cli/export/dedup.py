"""Exact and near-duplicate removal for training sets (``levers export lora``).

- Exact: the same text once lower-cased and with whitespace runs collapsed.
- Near: Jaccard similarity of word ``w``-gram shingles (Broder 1997, "On the resemblance and
  containment of documents") at least ``threshold``. Candidate pairs come from datasketch's
  ``MinHash`` (128 permutations of each shingle's CRC-32, its ``affine32`` scheme) and
  ``MinHashLSH`` banded 32 × 4 (``params=(32, 4)``: a pair at Jaccard 0.8 becomes a candidate
  with probability 1 − (1 − 0.8⁴)³² > 0.99999; Leskovec, Rajaraman & Ullman, *Mining of
  Massive Datasets*, ch. 3.4. datasketch's own choice for ``threshold=0.8`` is 9 × 13, which
  balances false positives against misses and finds a Jaccard-0.8 pair only 40 % of the
  time: a candidate costs one exact check here, a miss a duplicate in the training set);
  every candidate is then checked with the exact Jaccard of its shingle sets, so nothing
  below the threshold is ever dropped. This is the method of Lee et al. 2022
  (arXiv:2107.06499) at a smaller scale.

Measured against our own MinHash that this replaces (issue 15): it drew its 128 hash
functions as ``(a·x + b) mod (2^61 − 1)`` with ``a·x`` below the modulus, so every function
kept the same shingle (the smallest CRC-32) and a pair became a candidate with probability
J, not 1 − (1 − J⁴)³². On 2,500 support transcripts (Bitext) with shuffled copies of 1–4
changed words, the exact all-pairs answer has 177 near duplicates: ours missed 20, datasketch
none. Speed (same machine, same run): the 4,514 transcripts (~730 characters each) 4.6 s ours,
2.5 s here; with 2,000 changed copies (6,514 texts) 6.9 s ours, 4.6 s here.

Texts are processed in order; a text that duplicates an earlier kept one is dropped, so the
earliest of a group stays.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

_PERMUTATIONS, _BANDS = 128, 32
_SEED = 20_240_601
_WORD = re.compile(r"\w+")


def normalized(text: str) -> str:
    """Lower-cased, whitespace runs collapsed to one space, ends trimmed."""
    return " ".join(text.lower().split())


def shingles(text: str, words: int) -> set[bytes]:
    """The word ``words``-grams of ``text`` (lower-cased ``\\w+`` words, joined by one space,
    UTF-8); a text shorter than ``words`` words is one shingle of all of them (empty text:
    empty set)."""
    tokens = _WORD.findall(text.lower())
    if len(tokens) < words:
        return {" ".join(tokens).encode()} if tokens else set()
    return {" ".join(tokens[i : i + words]).encode() for i in range(len(tokens) - words + 1)}


def duplicates(texts: Sequence[str], words: int, threshold: float) -> list[str | None]:
    """Which texts to drop.

    Args:
        texts: in priority order (the earliest of a duplicate group is kept).
        words: shingle length in words.
        threshold: Jaccard similarity (0–1] at or above which two texts are near duplicates.

    Returns:
        One entry per text: ``None`` (kept), ``"exact"`` or ``"near"`` (dropped).
    """
    from datasketch import MinHash, MinHashLSH  # imports scipy: only when deduplicating

    index = MinHashLSH(num_perm=_PERMUTATIONS, params=(_BANDS, _PERMUTATIONS // _BANDS))
    # one set of permutations for all signatures (drawing them per MinHash costs a third of
    # the time)
    permutations = MinHash(_PERMUTATIONS, _SEED, scheme="affine32").permutations
    seen: set[str] = set()
    kept_sets: list[set[bytes]] = []
    out: list[str | None] = []
    for text in texts:
        key = normalized(text)
        if key in seen:
            out.append("exact")
            continue
        seen.add(key)
        current = shingles(text, words)
        signature = None
        if current:
            signature = MinHash(
                _PERMUTATIONS, _SEED, hashfunc=zlib.crc32, permutations=permutations,
                scheme="affine32",
            )  # fmt: skip
            signature.update_batch(current)
            if any(
                len(current & kept_sets[j]) / len(current | kept_sets[j]) >= threshold
                for j in index.query(signature)
            ):
                out.append("near")
                continue
        if signature is not None:
            index.insert(len(kept_sets), signature)
        kept_sets.append(current)
        out.append(None)
    return out


__all__ = ["duplicates", "normalized", "shingles"]
