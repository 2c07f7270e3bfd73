"""The semantic cache's evidence per category: whether a category may be served by meaning,
at what threshold, and on what basis (DESIGN §5.3c).

A real cache never sees the answer a call would have got, so no hit is judged by it. What
the logs can say is per category, before serving:

- **Noise floor**: how often the model's own answers differ when the very same request is
  sent again (exact repeats): a cached answer cannot be held to a stricter standard.
- **Content dependence**: how often answers differ across near-duplicate queries, against
  that floor (Fisher's exact test, one-sided, and by at least a margin). Near-duplicates are
  the matches the cache would serve in the category, and the queries filling one prompt
  template (lever 5's miner) with different slot values: the same instruction applied to
  other content. A category whose own matches disagree that much, or most of whose
  candidates fill a template whose answers change with what its slot holds (classifying
  different tickets), answers the *content*, not the phrasing: the embedding's similarity
  there measures the instruction, so the category is not cacheable by meaning and is left
  out, with the rates as the reason.
- **Labelled pairs**: a person's same/different verdicts on candidate pairs (``levers export
  cache-pairs`` → ``levers label``), or labels mapped into ``metadata`` on both calls (same
  label: same answer). They calibrate the category's threshold: the lowest threshold of the
  sweep whose precision's Wilson 95 % interval lies above the level's target. Without labels
  the level's threshold is an assumption.

:func:`category_evidence` is the one place these decisions are made, so a measured
acceptability per (feature, category, lever) from the quality loop can join them there.
Two answers "differ" when their TF-IDF cosine
(:func:`~levers_cli.levers.caching.semantic.response_similarity`) is below
``[caching] answer_similarity_floor``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class CalibrationPolicy:
    """A level's calibration settings (``[caching]`` in defaults.toml).

    Attributes:
        threshold: the level's cosine threshold, used where labels do not calibrate one.
        target_precision: share of labelled pairs above a threshold that must be "same"
            (the Wilson interval's lower bound) for labels to calibrate it.
        min_pairs: near-duplicate pairs a category needs before its content dependence is
            judged, and exact-repeat pairs before its own noise floor is used (else the
            log's).
        margin: how much more often answers must differ across near-duplicates than across
            exact repeats for the category to count as content-dependent.
        assumed_floor: the noise floor when the log has no exact repeats at all.
        grid: thresholds labels may choose from (ascending).
    """

    threshold: float
    target_precision: float
    min_pairs: int
    margin: float
    assumed_floor: float
    grid: tuple[float, ...] = field(default_factory=tuple)


def wilson(successes: int, n: int) -> tuple[float, float] | None:
    """The 95 % Wilson score interval of a proportion (``scipy.stats.binomtest``'s
    ``proportion_ci(method="wilson")``); ``None`` when ``n`` is 0."""
    if n <= 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(n)).proportion_ci(method="wilson")
    return round(float(ci.low), 4), round(float(ci.high), 4)


def more_often(differ: int, n: int, floor_differ: int, floor_n: int, floor_rate: float) -> float:
    """One-sided p-value that answers differ more often in ``differ / n`` than in the floor:
    Fisher's exact test against the measured floor (``scipy.stats.fisher_exact``), or a
    binomial test against ``floor_rate`` where no floor pair was measured."""
    from scipy.stats import binomtest, fisher_exact

    if floor_n > 0:
        table = np.array([[differ, n - differ], [floor_differ, floor_n - floor_differ]])
        return float(fisher_exact(table, alternative="greater").pvalue)
    return float(binomtest(differ, n, floor_rate, alternative="greater").pvalue)


@dataclass
class CategoryEvidence:
    """What the logs say about serving one category by meaning at one level (see the module
    docstring). ``basis``: ``evidence`` (labels calibrated the threshold), ``assumption``
    (the level's threshold, unlabelled), ``excluded`` (not cacheable by meaning; ``reason``
    says why)."""

    category_id: Any
    exact_pairs: int
    exact_differ: int
    floor_scope: str
    floor_rate: float | None
    near_pairs: int
    near_differ: int
    content_dependent: bool
    labelled: int
    labelled_same: int
    threshold: float
    precision: float | None
    precision_ci: tuple[float, float] | None
    basis: str
    reason: str

    @property
    def cacheable(self) -> bool:
        """Whether the category may be served by meaning at all."""
        return self.basis != "excluded"

    def as_row(self) -> dict[str, Any]:
        """The evidence row (``kind: semantic_category``)."""
        near = self.near_differ / self.near_pairs if self.near_pairs else None
        return {
            "kind": "semantic_category",
            "category_id": self.category_id,
            "basis": self.basis,
            "near_duplicate_differ_rate": None if near is None else round(near, 4),
            "noise_floor": None if self.floor_rate is None else round(self.floor_rate, 4),
            "reason": self.reason,
            "threshold": self.threshold,
            "exact_repeat_pairs": self.exact_pairs,
            "exact_repeat_differ_rate": (
                round(self.exact_differ / self.exact_pairs, 4) if self.exact_pairs else None
            ),
            "noise_floor_from": self.floor_scope,
            "near_duplicate_pairs": self.near_pairs,
            "labelled_pairs": self.labelled,
            "labelled_same": self.labelled_same,
            "precision": self.precision,
            "precision_wilson_95": list(self.precision_ci) if self.precision_ci else None,
        }


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


@dataclass(frozen=True, slots=True)
class TemplateFills:
    """Calls filling mined prompt templates (lever 5's miner over the last user message).

    Attributes:
        template_of: ``(n,)`` each call's template id (``-1``: none, or no slot).
        pairs: ``(call, answers differ)`` for each call and the previous call of its
            template with a different query (another value in its slots).
        skeletons: template id → its skeleton (slots as ``<*>``), for the reasons.
    """

    template_of: np.ndarray
    pairs: list[tuple[int, bool]]
    skeletons: dict[int, str]


def _depends_on_content(
    differ: int, n: int, floor: list[bool], floor_rate: float, policy: CalibrationPolicy
) -> bool:
    """Whether answers differ in ``differ`` of ``n`` near-duplicate pairs significantly (one-sided
    p < 0.05) and by at least ``policy.margin`` more often than across exact repeats."""
    if n < policy.min_pairs:
        return False
    p = more_often(differ, n, sum(floor), len(floor), floor_rate)
    return p < 0.05 and differ / n - floor_rate >= policy.margin


def content_templates(
    fills: TemplateFills, exact_pairs: list[tuple[int, bool]], policy: CalibrationPolicy
) -> dict[int, str]:
    """The templates whose answers depend on what their slots hold: template id → reason
    (answers differ across different fills significantly more than across exact repeats of
    its queries, or of the whole log's when it has fewer than ``policy.min_pairs``)."""
    floor_all = [d for _, d in exact_pairs]
    own_floor: dict[int, list[bool]] = defaultdict(list)
    for i, differ in exact_pairs:
        own_floor[int(fills.template_of[i])].append(differ)
    by_template: dict[int, list[bool]] = defaultdict(list)
    for i, differ in fills.pairs:
        by_template[int(fills.template_of[i])].append(differ)
    out = {}
    for template, pairs in by_template.items():
        own = own_floor.get(template, [])
        floor = own if len(own) >= policy.min_pairs else floor_all
        floor_rate = sum(floor) / len(floor) if floor else policy.assumed_floor
        if _depends_on_content(sum(pairs), len(pairs), floor, floor_rate, policy):
            skeleton = " ".join(fills.skeletons.get(template, "").split())
            skeleton = skeleton if len(skeleton) <= 90 else skeleton[:89] + "…"
            out[template] = (
                f"its queries fill the template '{skeleton}', whose answers differ across "
                f"{len(pairs):,} different fills {_pct(sum(pairs) / len(pairs))} of the time "
                f"against {_pct(floor_rate)} across {len(floor):,} exact repeats"
            )
    return out


def category_evidence(
    category: list[Any],
    exact_pairs: list[tuple[int, bool]],
    near: list[tuple[int, float, bool | None]],
    labelled: list[tuple[int, float, bool]],
    policy: CalibrationPolicy,
    fills: TemplateFills | None = None,
) -> dict[Any, CategoryEvidence]:
    """Each category's semantic-cache decision at one level (see the module docstring).

    Args:
        category: each call's category id.
        exact_pairs: ``(call, answers differ)`` for each call repeating an earlier identical
            request whose answers both exist.
        near: ``(call, similarity, answers differ or None)`` for each candidate call (single
            turn, not an exact hit) and its best earlier match the guards allow.
        labelled: ``(call, similarity, same)`` for the candidate pairs a verdict or both
            calls' labels judge.
        policy: the level's settings.
        fills: the calls filling prompt templates (None: no template is judged).

    Returns:
        category id → :class:`CategoryEvidence`, for every category with a candidate.
    """
    by_content = content_templates(fills, exact_pairs, policy) if fills is not None else {}
    filled: dict[Any, list[int]] = defaultdict(list)
    if fills is not None:
        for i, _, _ in near:
            filled[category[i]].append(int(fills.template_of[i]))
    floor_all = [d for _, d in exact_pairs]
    exact_by: dict[Any, list[bool]] = defaultdict(list)
    for i, repeat_differs in exact_pairs:
        exact_by[category[i]].append(repeat_differs)
    near_by: dict[Any, list[tuple[float, bool | None]]] = defaultdict(list)
    for i, sim, near_differs in near:
        near_by[category[i]].append((sim, near_differs))
    labels_by: dict[Any, list[tuple[float, bool]]] = defaultdict(list)
    for i, sim, same in labelled:
        labels_by[category[i]].append((sim, same))
    out: dict[Any, CategoryEvidence] = {}
    for cat, pairs in near_by.items():
        own = exact_by.get(cat, [])
        if len(own) >= policy.min_pairs:
            floor, scope = own, "category"
        elif floor_all:
            floor, scope = floor_all, "log"
        else:
            floor, scope = [], "assumed"
        floor_rate = sum(floor) / len(floor) if floor else policy.assumed_floor
        judged: list[bool] = [d for _, d in pairs if d is not None]
        differ = sum(judged)
        dependent = _depends_on_content(differ, len(judged), floor, floor_rate, policy)
        templates = filled.get(cat, [])
        template = max(set(templates), key=templates.count) if templates else -1
        by_template = template in by_content and templates.count(template) * 2 > len(templates)
        verdicts = labels_by.get(cat, [])
        threshold, precision, ci, basis = policy.threshold, None, None, "assumption"
        calibrated = _calibrate(verdicts, policy)
        if calibrated is not None:
            threshold, precision, ci = calibrated
            basis = "evidence"
        elif verdicts:
            at = [same for s, same in verdicts if s >= policy.threshold]
            if at:
                precision = round(sum(at) / len(at), 4)
                ci = wilson(sum(at), len(at))
        floor_text = (
            f"{_pct(floor_rate)} across {len(floor):,} exact repeats"
            + ("" if scope == "category" else " of the whole log")
            if floor
            else f"an assumed {_pct(floor_rate)} (no exact repeats in the log)"
        )
        if dependent:
            basis = "excluded"
            reason = (
                f"answers differ across {len(judged):,} near-duplicate queries "
                f"{_pct(differ / len(judged))} of the time, against a noise floor of "
                f"{floor_text}: the answer depends on the content, not the phrasing"
            )
        elif by_template:
            dependent, basis = True, "excluded"
            reason = (
                f"{templates.count(template):,} of its {len(templates):,} candidates: "
                f"{by_content[template]}: the answer depends on the content (what the slot "
                "holds), not the phrasing"
            )
        elif ci is not None and basis != "evidence" and ci[1] < policy.target_precision:
            basis = "excluded"
            reason = (
                f"labelled precision {precision} (Wilson 95 % {ci[0]}–{ci[1]}) at "
                f"{threshold} is below the {policy.target_precision} target"
            )
        elif basis == "evidence":
            assert ci is not None
            reason = (
                f"{len(verdicts)} labelled pairs: precision {precision} (Wilson 95 % "
                f"{ci[0]}–{ci[1]}) from {threshold}; noise floor {floor_text}"
            )
        else:
            reason = (
                f"no labelled pairs calibrate it: the {threshold} threshold is an assumption; "
                f"answers differ across near-duplicates "
                + (f"{_pct(differ / len(judged))}" if judged else "(not measured)")
                + f", noise floor {floor_text}"
            )
        out[cat] = CategoryEvidence(
            category_id=cat,
            exact_pairs=len(own),
            exact_differ=sum(own),
            floor_scope=scope,
            floor_rate=floor_rate,
            near_pairs=len(judged),
            near_differ=differ,
            content_dependent=dependent,
            labelled=len(verdicts),
            labelled_same=sum(same for _, same in verdicts),
            threshold=threshold,
            precision=precision,
            precision_ci=ci,
            basis=basis,
            reason=reason,
        )
    return out


def _calibrate(
    verdicts: list[tuple[float, bool]], policy: CalibrationPolicy
) -> tuple[float, float, tuple[float, float]] | None:
    """The lowest threshold of the grid whose labelled pairs' precision has a Wilson lower
    bound at or above the target: ``(threshold, precision, interval)``; ``None`` if none."""
    if not verdicts:
        return None
    sims = np.array([s for s, _ in verdicts])
    same = np.array([v for _, v in verdicts], dtype=bool)
    for t in sorted(policy.grid or (policy.threshold,)):
        above = sims >= t
        n = int(above.sum())
        if not n:
            break
        ci = wilson(int(same[above].sum()), n)
        if ci is not None and ci[0] >= policy.target_precision:
            return float(t), round(float(same[above].mean()), 4), ci
    return None


__all__ = [
    "CalibrationPolicy",
    "CategoryEvidence",
    "TemplateFills",
    "category_evidence",
    "content_templates",
    "more_often",
    "wilson",
]
