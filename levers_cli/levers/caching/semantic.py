"""Semantic response caching for the caching lever: matches with guards, each category's
decision and the threshold sweep (exact hits: :mod:`~levers_cli.levers.caching.calls`).

Method (../shared/DESIGN.md §5.3c):

- **Semantic**: among single-turn calls of one partition (model, system prompt, settings,
  category), each call's best earlier match by cosine similarity of the query embeddings,
  within the TTL, among matches the guards allow (:mod:`~levers_cli.levers.caching.guards`:
  same numbers, same negation, and every capitalized word, a named entity not at a sentence
  start, of one query present in the other). Every earlier successful call is a candidate
  entry, so a call's best match does not depend on the threshold and one pass gives the whole
  threshold curve.
- **Per category, never per hit**: no hit is judged by the answer the call really got (a
  real cache cannot see it). :func:`~levers_cli.levers.caching.calibration.category_evidence`
  decides, per category and level, whether it is cacheable by meaning (its answers differ
  across near-duplicate queries no more than across exact repeats, the noise floor), at which
  threshold (labelled pairs calibrate it; else the level's, an assumption) and on what basis.
  The curve's false-hit rates come from labelled pairs only.

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
from levers_cli.levers.caching.calibration import (
    CalibrationPolicy,
    CategoryEvidence,
    TemplateFills,
    category_evidence,
    wilson,
)
from levers_cli.levers.caching.calls import exact_hits
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


@dataclass(frozen=True, slots=True)
class SemanticSettings:
    """A level's semantic-cache settings (``[caching]`` in defaults.toml): the response-cache
    ``ttl`` (seconds), whether only label-calibrated categories count (``verified``), and
    its :class:`~levers_cli.levers.caching.calibration.CalibrationPolicy`."""

    ttl: float
    verified: bool
    policy: CalibrationPolicy


@dataclass
class SemanticResult:
    """Semantic hits per level; per level the hits refused because their category is not
    cacheable by meaning (``excluded``), the categories' evidence and which hits rest on
    labelled pairs (``measured``); the expected level's curve, its matches above the
    threshold before any category was left out (``gross``), and each match's verdict
    (``same``: True / False where labelled, None where not)."""

    net: dict[Level, np.ndarray]
    excluded: dict[Level, int]
    categories: dict[Level, dict[Any, CategoryEvidence]]
    measured: dict[Level, np.ndarray]
    curve: list[dict[str, Any]]
    gross: np.ndarray
    matches: Matches
    same: list[bool | None]


def pair_verdicts(
    calls: CallTable, source: np.ndarray, verdicts: dict[tuple[str, str], bool]
) -> list[bool | None]:
    """Each match's verdict: the person's (``verdicts``, keyed by the two queries' hashes in
    either order) first, else both calls' mapped labels (same label: same answer), else
    ``None``."""
    out: list[bool | None] = [None] * len(source)
    hashes, labels = calls.query_hash, calls.labels
    for i in np.flatnonzero(source >= 0).tolist():
        j = int(source[i])
        a, b = hashes[i] or "", hashes[j] or ""
        found = verdicts.get((a, b), verdicts.get((b, a)))
        if found is None and labels[i] is not None and labels[j] is not None:
            found = labels[i] == labels[j]
        out[i] = found
    return out


def answers_differ(
    calls: CallTable, pairs: list[tuple[int, int]], floor: float
) -> list[bool | None]:
    """Per ``(call, earlier call)`` pair, whether their answers differ (TF-IDF cosine below
    ``floor``; one TF-IDF fitted on all pairs' answers); ``None`` where either is empty."""
    sims = response_similarity([(calls.response[j], calls.response[i]) for i, j in pairs])
    return [None if np.isnan(x) else bool(x < floor) for x in sims.tolist()]


def fill_pairs(
    calls: CallTable, template_of: np.ndarray, skeletons: dict[int, str]
) -> list[tuple[int, int]]:
    """For each call filling a template with a slot, ``(call, earlier call)``: the latest
    earlier call of the same template with a different query (another slot value)."""
    slotted = {t for t, skeleton in skeletons.items() if "<*>" in skeleton}
    recent: dict[int, list[tuple[int, Any]]] = {}  # the last call, and the last unlike it
    pairs = []
    for i in range(len(template_of)):
        t = int(template_of[i])
        if t not in slotted or not calls.ok[i]:
            continue
        h = calls.query_hash[i]
        seen = recent.setdefault(t, [])
        other = next((j for j, g in reversed(seen) if g != h), None)
        if other is not None:
            pairs.append((i, other))
        if not seen or seen[-1][1] != h:
            recent[t] = [*seen[-1:], (i, h)]
    return pairs


def semantic_by_level(
    calls: CallTable,
    exact_hit: dict[str, np.ndarray],
    settings: dict[str, SemanticSettings],
    grid: list[float],
    answer_floor: float,
    verdicts: dict[tuple[str, str], bool] | None = None,
    templates: tuple[np.ndarray, dict[int, str]] | None = None,
) -> SemanticResult:
    """Semantic hits at each level, per category as
    :func:`~levers_cli.levers.caching.calibration.category_evidence` decides.

    Args:
        calls: the calls (:class:`~levers_cli.levers.caching.calls.CallTable`).
        exact_hit: per level, the exact hits (never counted again here).
        settings: per level (:class:`SemanticSettings`).
        grid: thresholds of the curve (expected level's TTL), ascending.
        answer_floor: TF-IDF cosine below which two answers differ.
        verdicts: a person's same/different verdicts on pairs of queries (by hash).
        templates: ``((n,) template id per call, -1 none; template id → skeleton)`` from the
            miner of lever 5, for the template test of content dependence.
    """
    floor = min([*grid, *(s.policy.threshold for s in settings.values())])
    repeat_hit, repeat_source = exact_hits(calls.exact_keys, calls.t, calls.ok, float("inf"))
    repeats = [(int(i), int(repeat_source[i])) for i in np.flatnonzero(repeat_hit)]
    fills_at = fill_pairs(calls, *templates) if templates is not None else []
    by_ttl: dict[float, tuple[Matches, list[bool | None], list[bool | None]]] = {}
    exact_pairs: list[tuple[int, bool]] = []
    fills: TemplateFills | None = None
    net, excluded, categories, measured = {}, {}, {}, {}
    result: SemanticResult | None = None
    for level in LEVELS:
        ttl = float(settings[level].ttl)
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
            near = [(int(i), int(m.source[i])) for i in np.flatnonzero(m.source >= 0)]
            differ = answers_differ(calls, near + repeats + fills_at, answer_floor)
            cut = len(near) + len(repeats)
            exact_pairs = [
                (i, d) for (i, _), d in zip(repeats, differ[len(near) : cut], strict=True)
                if d is not None
            ]  # fmt: skip
            if templates is not None:
                fills = TemplateFills(
                    templates[0],
                    [(i, d) for (i, _), d in zip(fills_at, differ[cut:], strict=True)
                     if d is not None],
                    templates[1],
                )  # fmt: skip
            near_differ: list[bool | None] = [None] * len(calls.call_id)
            for (i, _), d in zip(near, differ[: len(near)], strict=True):
                near_differ[i] = d
            by_ttl[ttl] = (m, near_differ, pair_verdicts(calls, m.source, verdicts or {}))
        m, near_differ, same = by_ttl[ttl]
        policy = settings[level].policy
        pool = calls.eligible & ~exact_hit[level]
        candidates = pool & (m.source >= 0)
        rows = np.flatnonzero(candidates).tolist()
        found = category_evidence(
            calls.category,
            exact_pairs,
            [(i, float(m.sim[i]), near_differ[i]) for i in rows],
            [(i, float(m.sim[i]), bool(same[i])) for i in rows if same[i] is not None],
            policy,
            fills,
        )
        threshold = np.array(
            [found[c].threshold if c in found else policy.threshold for c in calls.category]
        )
        ok = np.array([c in found and found[c].cacheable for c in calls.category], dtype=bool)
        labelled = np.array(
            [c in found and found[c].basis == "evidence" for c in calls.category], dtype=bool
        )
        above = candidates & (m.sim >= threshold)
        hit = above & ok & (labelled if settings[level].verified else True)
        net[level], measured[level], categories[level] = hit, hit & labelled, found
        excluded[level] = int((candidates & (m.sim >= policy.threshold) & ~ok).sum())
        if level == "expected":
            result = SemanticResult(
                net, excluded, categories, measured,
                sweep(m, pool, ok, same, grid),
                candidates & (m.sim >= policy.threshold), m, same,
            )  # fmt: skip
    assert result is not None
    return result


def sweep(
    matches: Matches,
    candidates: np.ndarray,
    cacheable: np.ndarray,
    same: list[bool | None],
    thresholds: list[float],
) -> list[dict[str, Any]]:
    """The hit-rate and labelled false-hit-rate curve over ``thresholds``.

    Args:
        matches: from :func:`best_matches`.
        candidates: calls that may be semantic hits (eligible, not exact hits).
        cacheable: calls whose category may be served by meaning (expected level).
        same: each match's verdict (:func:`pair_verdicts`).
        thresholds: cosine thresholds, e.g. 0.80…0.99.

    Returns:
        one dict per threshold: ``threshold``, ``hits`` and ``hit_rate`` (of candidate
        calls), ``hits_cacheable`` (in categories cacheable by meaning), ``refused_by_guard``
        (above the threshold without guards, not with them), ``judged`` (labelled pairs),
        ``false_hits`` (labelled different), ``false_hit_rate`` (of judged; ``None`` if none)
        with its Wilson 95 % interval, ``net_hits`` (hits − labelled false ones).
    """
    total = int(candidates.sum())
    judged_mask = np.array([v is not None for v in same], dtype=bool)
    false_mask = np.array([v is False for v in same], dtype=bool)
    curve = []
    for threshold in thresholds:
        hit = candidates & (matches.sim >= threshold)
        refused = candidates & (matches.raw >= threshold) & ~hit
        n_judged, n_false = int((hit & judged_mask).sum()), int((hit & false_mask).sum())
        curve.append(
            {
                "threshold": round(float(threshold), 4),
                "hits": int(hit.sum()),
                "hit_rate": round(int(hit.sum()) / total, 4) if total else 0.0,
                "hits_cacheable": int((hit & cacheable).sum()),
                "refused_by_guard": int(refused.sum()),
                "judged": n_judged,
                "false_hits": n_false,
                "false_hit_rate": round(n_false / n_judged, 4) if n_judged else None,
                "false_hit_wilson_95": wilson(n_false, n_judged),
                "net_hits": int(hit.sum()) - n_false,
            }
        )
    return curve
