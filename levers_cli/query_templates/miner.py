"""Query-template mining for lever 5 (materialize).

Mining finds templates whose slots hold free text too (a pasted ticket, a question), over the
masked prompts (:mod:`levers_cli.query_templates.mask`). It counts, over the distinct masked
prompts, in how many prompts (weighted by their calls) each token ``ngram``-gram occurs. Tokens
covered by a frequent n-gram (an *anchor*) are the template's fixed text; runs of the others
become ``<*>``. The result is a *skeleton*; prompts with the same skeleton recurring at least
``min_occurrences`` times form a template, and a skeleton is also put into the most frequent
template whose skeleton matches it as a glob (``<*>`` = one or more tokens) while keeping at
least ``generalize_share`` of its fixed tokens (free text next to a slot that happens to be
frequent, e.g. "what is", must not split a template). Anchors are tried at a support threshold
of ``anchor_share`` of all calls, then 2×, 4× and 8× that (``anchor_levels``: frequent content
phrases drop out), and last, for what is left, at ``min_occurrences`` calls among the
leftovers, where a skeleton must be at least ``rare_fixed_share`` fixed text (a rare template
is only told from common phrases when it dominates the prompt: the weekly report). Last, each
template is merged into the most frequent other one whose skeleton matches it (a template found
at a higher threshold can be more general than one found before it); the merged ones are kept
as *subtemplates*. The idea is log-template mining (Drain, He et al. 2017, ICWS) without its
fixed-length assumption.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
import polars as pl

from levers_cli.query_templates.mask import NEWLINE, STAR, line_tokens

_SMALL = 100_000  # arrays up to this size are ranked with numpy, larger ones with polars


@dataclass(frozen=True, slots=True)
class Templates:
    """Mined templates.

    Attributes:
        labels: ``(n,)`` template id of each input prompt (``-1``: none), ids by calls, most
            first.
        variants: ``(n,)`` id of each input's masked token sequence (equal ids: the same
            prompt once slots are masked, case and spacing ignored).
        skeletons: template id → skeleton text (fixed tokens and ``<*>``).
        subtemplates: ``(n,)`` the more specific template each prompt had before templates
            were merged into more general ones (``-1``: none), ids by calls.
        sub_skeletons: subtemplate id → skeleton text.
    """

    labels: np.ndarray
    variants: np.ndarray
    skeletons: list[str]
    subtemplates: np.ndarray
    sub_skeletons: list[str]


def _segments(pattern: tuple[str, ...]) -> list[str]:
    """The literal runs of a skeleton between its ``<*>``, each as `` a b c `` (spaces around)."""
    parts: list[list[str]] = [[]]
    for token in pattern:
        if token == STAR:
            parts.append([])
        else:
            parts[-1].append(token)
    return [f" {' '.join(p)} " if p else "" for p in parts]


def _glob(segments: list[str], text: str) -> bool:
    """Whether the skeleton whose :func:`_segments` are ``segments`` (``<*>`` = one or more
    tokens) matches ``text`` (a skeleton joined by spaces, a space at both ends); greedy
    leftmost search, linear in ``text``."""
    if len(segments) == 1:
        return text == segments[0]
    first, middle, last = segments[0], segments[1:-1], segments[-1]
    if first and not text.startswith(first):
        return False
    pos = len(first) - 1 if first else 0
    for segment in middle:
        found = text.find(segment, pos + 1) if segment else pos
        if found < 0:
            return False
        pos = found + len(segment) - 1 if segment else pos
    if not last:
        return pos < len(text) - 1
    return text.endswith(last) and len(text) - len(last) >= pos + 1


def _dense_ids(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense ids ``0…k-1`` of ``values`` (equal values, equal ids) and ``k``."""
    if not len(values):
        return np.zeros(0, dtype=np.int64), 0
    if len(values) < _SMALL:  # numpy: no polars call overhead (one miner per candidate)
        found, ranks = np.unique(values, return_inverse=True)
        return ranks.astype(np.int64), len(found)
    ranks = pl.Series(values).rank("dense").to_numpy().astype(np.int64) - 1
    return ranks, int(ranks.max()) + 1


class _Miner:
    """One mining run over the distinct masked prompts, held as flat token-id arrays
    (``STAR`` is id 0)."""

    def __init__(self, docs: list[list[int]], weights: np.ndarray, vocab: list[str], n: int):
        self.weights, self.n = weights, n
        self.words = np.array(vocab, dtype=object)
        self.lengths = np.array([len(d) for d in docs], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.flat = np.fromiter(
            chain.from_iterable(docs), dtype=np.int64, count=int(self.lengths.sum())
        )
        self.doc_of = np.repeat(np.arange(len(docs)), self.lengths)
        starts = np.arange(max(len(self.flat) - n + 1, 0))
        ends = np.minimum(starts + n - 1, max(len(self.flat) - 1, 0))
        self.gram_at = starts[self.doc_of[starts] == self.doc_of[ends]] if len(starts) else starts
        grams = np.zeros(len(self.gram_at), dtype=np.uint64)
        for j in range(n):
            grams = grams * np.uint64(1_000_003) + self.flat[self.gram_at + j].astype(np.uint64)
        self.gram_id, self.n_grams = _dense_ids(grams)
        pairs = self.doc_of[self.gram_at] * max(self.n_grams, 1) + self.gram_id
        pairs = np.unique(pairs) if len(pairs) < _SMALL else pl.Series(pairs).unique().to_numpy()
        self.pair_doc, self.pair_gram = np.divmod(pairs, max(self.n_grams, 1))
        self.word_id = {word: i for i, word in enumerate(vocab)}
        self.frequency = np.bincount(self.flat, minlength=len(vocab))
        self.keys: list[int] = []  #: each template's rarest fixed token (-1: none)
        #: templates: skeleton, calls when found, fixed tokens, literal segments
        self.patterns: list[tuple[tuple[str, ...], float, int, list[str]]] = []
        self.known: set[tuple[str, ...]] = set()
        self.label = np.full(len(docs), -1, dtype=np.int64)

    def anchors(self, pool: np.ndarray) -> np.ndarray:
        """Document frequency of each n-gram (weighted by calls) over the docs in ``pool``."""
        inside = np.zeros(len(self.lengths), dtype=bool)
        inside[pool] = True
        chosen = inside[self.pair_doc]
        return np.bincount(
            self.pair_gram[chosen],
            weights=self.weights[self.pair_doc[chosen]],
            minlength=self.n_grams,
        )

    def skeletons(self, df: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every doc's skeleton at support ``tau``: ``(token ids, 0 for a slot; offsets per doc
        into them; fixed tokens per doc)``."""
        covered = np.zeros(len(self.flat) + 1, dtype=np.int64)
        starts = self.gram_at[df[self.gram_id] >= tau]
        np.add.at(covered, starts, 1)
        np.add.at(covered, starts + self.n, -1)
        fixed = np.cumsum(covered)[: len(self.flat)] > 0
        previous = np.concatenate([[True], fixed[:-1]])
        previous[self.offsets[:-1][self.lengths > 0]] = True
        keep = fixed | previous
        ids = np.where(fixed, self.flat, 0)[keep]
        kept = np.bincount(self.doc_of[keep], minlength=len(self.lengths))
        fixed_per_doc = np.bincount(self.doc_of, weights=fixed, minlength=len(self.lengths))
        return ids, np.concatenate([[0], np.cumsum(kept)]), fixed_per_doc

    def step(self, pool: np.ndarray, df: np.ndarray, tau: float, rules: dict[str, float]) -> None:
        """Skeletons of ``pool`` at ``tau``; new templates from recurring skeletons; then each
        skeleton joins the largest template that matches it (see the module docstring)."""
        ids, offsets, fixed = self.skeletons(df, tau)
        floor = np.maximum(rules["min_fixed"], rules["fixed_share"] * self.lengths)
        groups: dict[bytes, list[int]] = defaultdict(list)
        for i in pool[fixed[pool] >= floor[pool]].tolist():
            groups[ids[offsets[i] : offsets[i + 1]].tobytes()].append(i)
        skeletons: dict[bytes, tuple[tuple[str, ...], int]] = {}
        for key in groups:
            codes = np.frombuffer(key, dtype=np.int64)
            skeletons[key] = tuple(self.words[codes].tolist()), int(np.count_nonzero(codes))
        for key, members in groups.items():
            weight, (skel, count) = float(self.weights[members].sum()), skeletons[key]
            if weight >= rules["min_occ"] and skel not in self.known:
                self.known.add(skel)
                self.patterns.append((skel, weight, count, _segments(skel)))
        order = sorted(range(len(self.patterns)), key=lambda p: -self.patterns[p][1])
        index = self._index(order)
        for key, members in groups.items():
            skel, count = skeletons[key]
            places = index.candidates(
                np.frombuffer(key, dtype=np.int64), count, rules["generalize"]
            )
            text = f" {' '.join(skel)} " if len(places) else ""
            for place in places.tolist():
                if _glob(self.patterns[order[place]][3], text):
                    self.label[members] = order[place]
                    break

    def _index(self, patterns: list[int]) -> _Index:
        """An :class:`_Index` of ``patterns`` (template ids), each by its rarest fixed token
        (computed once per template)."""
        for p in range(len(self.keys), len(self.patterns)):
            fixed = [self.word_id[w] for w in self.patterns[p][0] if w != STAR]
            self.keys.append(min(fixed, key=lambda t: (self.frequency[t], t)) if fixed else -1)
        return _Index(
            np.array([self.keys[p] for p in patterns], dtype=np.int64),
            np.array([self.patterns[p][2] for p in patterns], dtype=np.int64),
            len(self.words),
        )

    def consolidate(self, generalize: float) -> None:
        """Merge each template into the most frequent other template whose skeleton matches
        it, most specific first (one found at a later, higher threshold can be more general
        than one found before it)."""
        totals = np.bincount(
            self.label[self.label >= 0],
            weights=self.weights[self.label >= 0],
            minlength=len(self.patterns),
        )
        active = [p for p in range(len(self.patterns)) if totals[p] > 0]
        index, alive = self._index(active), set(active)
        for specific in sorted(active, key=lambda p: (-self.patterns[p][2], p)):
            skel, _, count, _ = self.patterns[specific]
            text = f" {' '.join(skel)} "
            ids = np.array([self.word_id[w] for w in skel], dtype=np.int64)
            matches = [
                p
                for p in (active[place] for place in index.candidates(ids, count, generalize))
                if p != specific and p in alive and _glob(self.patterns[p][3], text)
            ]
            if matches:
                target = max(matches, key=lambda p: (totals[p], -self.patterns[p][2], -p))
                self.label[self.label == specific] = target
                totals[target] += totals[specific]
                alive.remove(specific)


class _Index:
    """Templates in a given order by one fixed token each: a skeleton a template matches
    holds every fixed token of the template, so only the templates keyed by one of its
    tokens, of a fitting size, can match it (exact, and no Python loop over templates)."""

    def __init__(self, keys: np.ndarray, sizes: np.ndarray, vocab: int):
        self.keys = np.where(keys < 0, vocab, keys)  # no fixed token: always a candidate
        self.sizes = sizes
        self.present = np.zeros(vocab + 1, dtype=bool)
        self.present[vocab] = True

    def candidates(self, ids: np.ndarray, count: int, generalize: float) -> np.ndarray:
        """Places (ascending) of the templates keyed by a token of ``ids`` (a skeleton with
        ``count`` fixed tokens) having ``generalize × count`` to ``count`` fixed tokens."""
        self.present[ids] = True
        fits = (self.sizes >= generalize * count) & (self.sizes <= count)
        found = np.flatnonzero(self.present[self.keys] & fits)
        self.present[ids] = False
        self.present[-1] = True
        return found


def _prepare(prompts: Sequence[str], ngram: int) -> tuple[_Miner, np.ndarray]:
    """A :class:`_Miner` over the distinct masked prompts and each prompt's doc (variant)."""
    vocab: dict[str, int] = {STAR: 0, NEWLINE: 1}
    lines: dict[str, tuple[int, ...]] = {}
    seen: dict[str, int] = {}
    distinct: dict[tuple[int, ...], int] = {}
    variants = np.zeros(len(prompts), dtype=np.int64)
    for row, prompt in enumerate(prompts):
        if prompt not in seen:
            ids: list[int] = []
            for line in prompt.split("\n"):
                if line not in lines:
                    lines[line] = tuple(vocab.setdefault(t, len(vocab)) for t in line_tokens(line))
                if lines[line]:
                    ids += [1, *lines[line]] if ids else lines[line]
            seen[prompt] = distinct.setdefault(tuple(ids), len(distinct))
        variants[row] = seen[prompt]
    weights = np.bincount(variants, minlength=len(distinct)).astype(np.float64)
    return _Miner([list(ids) for ids in distinct], weights, list(vocab), ngram), variants


def common_skeleton(prompts: Sequence[str], ngram: int = 4) -> str:
    """The text every one of ``prompts`` shares: tokens covered by ``ngram``-grams found in
    all of them, the rest ``<*>`` (the most frequent such skeleton when they differ)."""
    miner, _ = _prepare(prompts, ngram)
    if not len(prompts) or not len(miner.flat):
        return ""
    if len(miner.lengths) == 1:  # one prompt (slots masked): all of it is fixed
        return " ".join(miner.words[miner.flat].tolist())
    ids, offsets, _ = miner.skeletons(miner.anchors(np.arange(len(miner.lengths))), len(prompts))
    counts: dict[bytes, float] = defaultdict(float)
    for doc, weight in enumerate(miner.weights.tolist()):
        counts[ids[offsets[doc] : offsets[doc + 1]].tobytes()] += weight
    best = max(counts, key=lambda key: counts[key])
    return " ".join(miner.words[np.frombuffer(best, dtype=np.int64)].tolist())


#: The ``[materialize]`` settings :func:`mine_templates` takes: the caching lever's prompt
#: templates are mined with them too, so both levers name the same templates.
MINING_KEYS = (
    "min_occurrences",
    "ngram",
    "anchor_share",
    "anchor_levels",
    "min_fixed_tokens",
    "generalize_share",
    "rare_fixed_share",
)


def mine_templates(
    prompts: Sequence[str],
    *,
    min_occurrences: int = 3,
    ngram: int = 4,
    anchor_share: float = 0.005,
    anchor_levels: int = 4,
    min_fixed_tokens: int = 4,
    generalize_share: float = 0.55,
    rare_fixed_share: float = 0.5,
) -> Templates:
    """Find the templates of ``prompts`` (one per call; repeats count as calls).

    Args:
        prompts: the full prompts (system + last user message), one per call.
        min_occurrences: calls a template needs.
        ngram: anchor length (tokens).
        anchor_share: first support threshold, a share of all calls.
        anchor_levels: thresholds tried (``anchor_share`` × 1, 2, 4 …).
        min_fixed_tokens: fixed tokens a skeleton needs.
        generalize_share: share of a skeleton's fixed tokens a matching template must keep.
        rare_fixed_share: share of fixed tokens of a skeleton in the last (rare) pass.

    Returns:
        :class:`Templates` (see the module docstring for the method).
    """
    miner, variants = _prepare(prompts, ngram)
    everything = np.arange(len(miner.lengths))
    df = miner.anchors(everything)
    tau0 = max(min_occurrences, math.ceil(anchor_share * len(prompts)))
    rules = {
        "min_occ": min_occurrences,
        "min_fixed": min_fixed_tokens,
        "generalize": generalize_share,
        "fixed_share": 0.0,
    }
    for level in range(anchor_levels):
        miner.step(everything[miner.label < 0], df, tau0 * 2**level, rules)
    rest = everything[miner.label < 0]
    miner.step(
        rest, miner.anchors(rest), min_occurrences, rules | {"fixed_share": rare_fixed_share}
    )
    before = miner.label.copy()
    miner.consolidate(generalize_share)
    labels, kept = _renumber(miner.label, miner.weights, min_occurrences)
    subs, sub_kept = _renumber(np.where(labels >= 0, before, -1), miner.weights, min_occurrences)
    return Templates(
        labels[variants],
        variants,
        [" ".join(miner.patterns[p][0]) for p in kept],
        subs[variants],
        [" ".join(miner.patterns[p][0]) for p in sub_kept],
    )


def _renumber(
    label: np.ndarray, weights: np.ndarray, min_calls: int
) -> tuple[np.ndarray, list[int]]:
    """Labels renumbered ``0…`` by calls, most first, dropping those under ``min_calls``
    (then ``-1``); and the old id of each new one."""
    found = label >= 0
    totals = np.bincount(label[found], weights=weights[found])
    kept = [int(p) for p in np.argsort(-totals, kind="stable") if totals[p] >= min_calls]
    renumber = np.full(len(totals) + 1, -1, dtype=np.int64)
    renumber[kept] = np.arange(len(kept))
    return renumber[label], kept


__all__ = ["Templates", "common_skeleton", "mine_templates"]
