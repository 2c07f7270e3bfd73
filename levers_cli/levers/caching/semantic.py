"""Semantic response caching for the caching lever: matches with guards, the threshold
sweep and the false-hit estimate (exact hits: :mod:`~levers_cli.levers.caching.calls`).

Method (../shared/DESIGN.md §5.3c):

- **Semantic**: among single-turn calls of one partition (model, system prompt, settings,
  category), each call's best earlier match by cosine similarity of the query embeddings,
  within the TTL, among matches the guards allow (:mod:`~levers_cli.levers.caching.guards`:
  same numbers, same negation, and every capitalized word, a named entity not at a sentence
  start, of one query present in the other). Every earlier successful call is a candidate
  entry, so a call's best match does not depend on the threshold and one pass gives the whole
  threshold curve.
- **False hits**: a hit is flagged when the two calls carry different labels (a label mapped
  into ``metadata``) or, without labels, when the cached answer differs from the answer the
  call actually got (TF-IDF cosine below a floor). Hits with neither are unverified.

Speed: a call is scored only against its partition's calls within the TTL (a block of the
float32 product), guards are computed once per distinct query and only for calls that meet a
candidate above the floor, and each distinct answer is tokenized once for TF-IDF. Scores come
from BLAS, whose rounding depends on the product's shape: two equal vectors can score a few
ulps apart in one product and alike in another, which can change the chosen source of a tie.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from levers_cli.levers.base import LEVELS, Level
from levers_cli.levers.caching.guards import Guard, LazyGuards, entities_agree

if TYPE_CHECKING:
    from levers_cli.levers.caching.calls import CallTable

#: Candidates above the lowest swept threshold checked per call before giving up.
_MAX_CANDIDATES = 64


@dataclass
class Matches:
    """Per call: the best earlier match the guards allow (``sim`` −1 and ``source`` −1 when
    none above the floor) and the best without guards (``raw``)."""

    sim: np.ndarray
    source: np.ndarray
    raw: np.ndarray


def _first_column(stamps: np.ndarray, t: float, ttl: float) -> int:
    """The first earlier call a call at ``t`` may still match (a lower bound: the exact TTL
    test runs on the block), when ``stamps`` are sorted with unknown times last."""
    if not (math.isfinite(t) and math.isfinite(ttl)):
        return 0
    slack = 1.0 + 1e-6 * abs(t)  # far above the rounding of ``t - stamp > ttl``
    finite = int(np.isfinite(stamps).sum())
    return int(np.searchsorted(stamps[:finite], t - ttl - slack, side="left"))


def best_matches(
    vectors: np.ndarray,
    eligible: np.ndarray,
    partition: list[Any],
    times: np.ndarray,
    ok: np.ndarray,
    guards: Sequence[Guard] | LazyGuards,
    ttl: float,
    floor: float,
) -> Matches:
    """Each eligible call's best earlier match in its partition (see the module docstring).

    Each call is scored only against the calls of its TTL window (calls are in time order),
    and the guards are checked only on candidates above ``floor`` (which must be above −1).

    Args:
        vectors: ``(n, d)`` unit query embeddings in time order (any row where not eligible).
        eligible: single-turn calls with an embedding.
        partition: each call's partition key.
        times: epoch seconds (NaN: unknown, no TTL).
        ok: calls whose answer may serve others.
        guards: each call's :class:`Guard`.
        ttl: seconds an answer may be reused.
        floor: the lowest threshold of interest; matches below it are not kept.
    """
    n = len(eligible)
    sim, raw = np.full(n, -1.0), np.full(n, -1.0)
    source = np.full(n, -1, dtype=np.int64)
    groups: dict[Any, list[int]] = {}
    for i in np.flatnonzero(eligible):
        groups.setdefault(partition[i], []).append(int(i))
    signature_ids: dict[Any, int] = {}
    for members in groups.values():
        idx = np.asarray(members)
        mat = vectors[idx].astype(np.float32)
        stamps, usable = times[idx], ok[idx]
        known = np.isfinite(stamps)
        ordered = bool(known[: known.sum()].all()) and bool((np.diff(stamps[known]) >= 0).all())
        sig = np.full(len(idx), -1, dtype=np.int64)  # filled on demand
        step = max(1, (1 << 22) // len(idx))
        for start in range(0, len(idx), step):
            stop = min(start + step, len(idx))
            lo = 0  # unknown times (last) match every earlier call
            if ordered and known[stop - 1]:
                lo = min(start, _first_column(stamps, stamps[start], ttl))
            rows, cols = np.arange(start, stop), np.arange(lo, stop)
            scores = mat[start:stop] @ mat[lo:stop].T
            invalid = cols[None, :] >= rows[:, None]
            invalid |= ~usable[lo:stop][None, :]
            invalid |= stamps[start:stop][:, None] - stamps[lo:stop][None, :] > ttl
            scores[invalid] = -1.0
            raw[idx[start:stop]] = scores.max(axis=1)
            above = scores >= floor
            rows = np.flatnonzero(above.any(axis=1))
            if not rows.size:
                continue
            cols = np.flatnonzero(above[rows].any(axis=0))
            for k in np.concatenate([start + rows, lo + cols]).tolist():
                if sig[k] < 0:
                    key = guards[idx[k]].signature
                    sig[k] = signature_ids.setdefault(key, len(signature_ids))
            # candidates: above the floor, same numbers and negation; the best first (the
            # lowest column among equal scores, as a stable sort orders them)
            allowed = above[rows] & (sig[lo:stop][None, :] == sig[start + rows][:, None])
            top = np.where(allowed, scores[rows], -np.inf).argmax(axis=1)
            found = allowed[np.arange(len(rows)), top]
            for k, (r, c) in enumerate(zip(rows.tolist(), top.tolist(), strict=True)):
                if not found[k]:
                    continue
                me, row = guards[idx[start + r]], scores[r]
                order = [c]
                if not entities_agree(me, guards[idx[lo + c]]):  # then the next best ones
                    candidates = np.flatnonzero(allowed[k])
                    ranked = np.argsort(-row[candidates], kind="stable")[:_MAX_CANDIDATES]
                    order = candidates[ranked].tolist()[1:]
                for c in order:
                    if entities_agree(me, guards[idx[lo + c]]):
                        sim[idx[start + r]], source[idx[start + r]] = float(row[c]), idx[lo + c]
                        break
    return Matches(sim, source, raw)


def response_similarity(pairs: list[tuple[str, str]]) -> np.ndarray:
    """TF-IDF cosine (word unigrams, sublinear tf, fitted on these texts) of each pair of
    answers: the cached one and the one the call got; NaN where either is empty."""
    out = np.full(len(pairs), np.nan)
    usable = [k for k, (a, b) in enumerate(pairs) if a.strip() and b.strip()]
    if not usable:
        return out
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

    texts = [pairs[k][0] for k in usable] + [pairs[k][1] for k in usable]
    # TfidfVectorizer(sublinear_tf=True).fit_transform(texts), with each distinct answer
    # tokenized once (answers repeat): the same counts, rows and terms in the same order
    first: dict[str, int] = {}
    rows = np.array([first.setdefault(t, len(first)) for t in texts], dtype=np.int64)
    try:
        counts = CountVectorizer(dtype=np.float64).fit_transform(list(first))
    except ValueError:  # only stop words / no tokens
        return out
    matrix = TfidfTransformer(sublinear_tf=True).fit_transform(counts[rows])
    half = len(usable)
    sims = np.asarray(matrix[:half].multiply(matrix[half:]).sum(axis=1)).ravel()
    out[usable] = sims
    return out


def false_flags(
    matches: Matches, labels: list[str | None], answer_sim: np.ndarray, floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """Which matches are likely false, and which could be judged at all.

    A match is judged by labels when both calls have one (false: they differ), else by the
    answers when both exist (false: similarity below ``floor``).

    Returns:
        ``(false bool (n,), judged bool (n,))``.
    """
    n = len(matches.sim)
    false, judged = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    for i in np.flatnonzero(matches.source >= 0):
        j = int(matches.source[i])
        if labels[i] is not None and labels[j] is not None:
            judged[i], false[i] = True, labels[i] != labels[j]
        elif not math.isnan(answer_sim[i]):
            judged[i], false[i] = True, bool(answer_sim[i] < floor)
    return false, judged


@dataclass
class SemanticResult:
    """Semantic hits per level (net of flagged false hits), the flagged count per level, the
    expected level's curve, gross hits, matches and flags (for the evidence)."""

    net: dict[Level, np.ndarray]
    flagged: dict[Level, int]
    curve: list[dict[str, Any]]
    gross: np.ndarray
    matches: Matches
    false: np.ndarray
    judged: np.ndarray


def semantic_by_level(
    calls: CallTable,
    exact_hit: dict[str, np.ndarray],
    settings: dict[Level, dict[str, Any]],
    grid: list[float],
    answer_floor: float,
) -> SemanticResult:
    """Semantic hits at each level.

    Args:
        calls: the calls (:class:`~levers_cli.levers.caching.calls.CallTable`).
        exact_hit: per level, the exact hits (never counted again here).
        settings: per level ``ttl`` (seconds), ``threshold`` (cosine) and ``verified``
            (count only hits judged true).
        grid: thresholds of the curve (expected level's TTL).
        answer_floor: TF-IDF cosine below which a cached answer counts as false.
    """
    floor = min([*grid, *(s["threshold"] for s in settings.values())])
    by_ttl: dict[float, tuple[Matches, np.ndarray, np.ndarray]] = {}
    net, flagged = {}, {}
    for level in LEVELS:
        ttl = float(settings[level]["ttl"])
        if ttl not in by_ttl:
            m = best_matches(
                calls.vectors,
                calls.eligible,
                calls.partition,
                calls.t,
                calls.ok,
                calls.guards,
                ttl,
                floor,
            )
            pairs = [
                (calls.response[j], calls.response[i]) if j >= 0 else ("", "")
                for i, j in enumerate(m.source)
            ]
            by_ttl[ttl] = (
                m,
                *false_flags(m, calls.labels, response_similarity(pairs), answer_floor),
            )
        m, false, judged = by_ttl[ttl]
        candidates = calls.eligible & ~exact_hit[level]
        hit = candidates & (m.sim >= settings[level]["threshold"])
        net[level] = hit & ~false & (judged if settings[level]["verified"] else True)
        flagged[level] = int((hit & false).sum())
        if level == "expected":
            result = SemanticResult(
                net, flagged, sweep(m, candidates, false, judged, grid), hit, m, false, judged
            )
    return result


def sweep(
    matches: Matches,
    candidates: np.ndarray,
    false: np.ndarray,
    judged: np.ndarray,
    thresholds: list[float],
) -> list[dict[str, Any]]:
    """The hit-rate and false-hit-rate curve over ``thresholds``.

    Args:
        matches: from :func:`best_matches`.
        candidates: calls that may be semantic hits (eligible, not exact hits).
        false, judged: from :func:`false_flags`.
        thresholds: cosine thresholds, e.g. 0.80…0.99.

    Returns:
        one dict per threshold: ``threshold``, ``hits``, ``hit_rate`` (of candidate calls),
        ``refused_by_guard`` (above the threshold without guards, not with them), ``judged``,
        ``false_hits``, ``false_hit_rate`` (of judged hits; ``None`` if none), ``net_hits``.
    """
    total = int(candidates.sum())
    curve = []
    for threshold in thresholds:
        hit = candidates & (matches.sim >= threshold)
        refused = candidates & (matches.raw >= threshold) & ~hit
        n_judged, n_false = int((hit & judged).sum()), int((hit & false).sum())
        curve.append(
            {
                "threshold": round(float(threshold), 4),
                "hits": int(hit.sum()),
                "hit_rate": round(int(hit.sum()) / total, 4) if total else 0.0,
                "refused_by_guard": int(refused.sum()),
                "judged": n_judged,
                "false_hits": n_false,
                "false_hit_rate": round(n_false / n_judged, 4) if n_judged else None,
                "net_hits": int(hit.sum()) - n_false,
            }
        )
    return curve
