"""``levers quality``: acceptability per feature › category, lever and target model, judged
and per proxy apart, each with its Wilson interval, and the decision at the quality bar.

A pair is one variant (a shadow answer) with its original call. **Judged** acceptable: its
single-answer grade (the mean when several judges graded it) is at least ``[quality]
min_grade``; without a single grade, its pairwise verdicts (variant's preference in [-2, 2],
:mod:`levers_cli.quality.judge`) average at least 0 over the orders judged (it at least ties
the original once position bias is cancelled). **Proxy** acceptable: per proxy
(:mod:`levers_cli.quality.proxies`), among the pairs it applies to.

The decision compares the lower end of the judged interval (at ``[quality] confidence``) with
``[quality] min_acceptable``: ``meets`` (the lever's saving there is evidence), ``below``
(the category should not take the change), ``unmeasured`` (no judged pair: the saving stays
an assumption). Proxies inform, they never decide.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from levers_cli.quality.proxies import PROXIES, ProxySettings, proxy_verdicts
from levers_cli.quality.stats import wilson
from levers_cli.quality.tables import grades_by_variant, pairs

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.embed.base import Embedder
    from levers_cli.store import Workspace

MEETS, BELOW, UNMEASURED = "meets", "below", "unmeasured"
TOTAL = "(all)"


@dataclass(frozen=True)
class Bar:
    """The quality bar: a judged grade ≥ ``min_grade`` in ≥ ``min_acceptable`` of calls,
    checked on the Wilson lower bound at ``confidence``; ``source`` says where it came from."""

    min_grade: float
    min_acceptable: float
    confidence: float
    source: str

    @classmethod
    def from_config(cls, config: Config) -> Bar:
        """``[quality] min_grade``, ``min_acceptable``, ``confidence`` and their origin."""
        keys = ("min_grade", "min_acceptable", "confidence")
        origins = sorted({config.origin.get(f"quality.{k}", "default") for k in keys})
        where = ", ".join(
            "defaults.toml (assumption of issue 17)" if o == "default" else o for o in origins
        )
        return cls(
            float(config.get("quality", "min_grade")),
            float(config.get("quality", "min_acceptable")),
            float(config.get("quality", "confidence")),
            f"[quality] from {where}",
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "min_grade": self.min_grade,
            "min_acceptable": self.min_acceptable,
            "confidence": self.confidence,
            "source": self.source,
        }


def judged_acceptable(grades: list[dict[str, Any]], min_grade: float) -> bool | None:
    """A variant's judged verdict from its grades (see the module docstring); ``None``
    without a grade."""
    single = [g["score"] for g in grades if g["mode"] == "single"]
    if single:
        return sum(single) / len(single) >= min_grade
    pair = [g["score"] for g in grades if g["mode"] == "pairwise"]
    if pair:
        return sum(pair) / len(pair) >= 0
    return None


def decide(low: float | None, n: int, bar: Bar) -> str:
    """``meets`` / ``below`` / ``unmeasured`` (see the module docstring)."""
    if n == 0 or low is None:
        return UNMEASURED
    return MEETS if low >= bar.min_acceptable - 1e-12 else BELOW


def pair_verdicts(
    ws: Workspace, config: Config, embedder: Embedder | None = None, lever: str | None = None
) -> list[dict[str, Any]]:
    """Every pair (:func:`levers_cli.quality.tables.pairs`) with ``judged`` (bool or
    ``None``), ``grades`` (their count) and ``proxy`` (proxy → bool or ``None``)."""
    rows = pairs(ws, lever)
    graded = grades_by_variant(ws)
    min_grade = float(config.get("quality", "min_grade"))
    proxies = proxy_verdicts(
        [r["original"] or "" for r in rows],
        [r["answer"] or "" for r in rows],
        ProxySettings.from_config(config),
        embedder,
    )
    for row, proxy in zip(rows, proxies, strict=True):
        found = graded.get(row["variant_id"], [])
        row["grades"] = len(found)
        row["judged"] = judged_acceptable(found, min_grade)
        row["proxy"] = proxy
    return rows


def _summary(group: list[dict[str, Any]], bar: Bar) -> dict[str, Any]:
    judged = [r["judged"] for r in group if r["judged"] is not None]
    j = wilson(sum(judged), len(judged), bar.confidence)
    proxy = {}
    for name in PROXIES:
        seen = [r["proxy"][name] for r in group if r["proxy"][name] is not None]
        proxy[name] = wilson(sum(seen), len(seen), bar.confidence).as_dict()
    return {
        "pairs": len(group),
        "judged": j.as_dict(),
        "proxy": proxy,
        "decision": decide(j.low, j.n, bar),
    }


def quality_report(
    ws: Workspace, config: Config, embedder: Embedder | None = None
) -> dict[str, Any]:
    """The ``levers quality`` table.

    Returns:
        ``{"bar": {min_grade, min_acceptable, confidence, source}, "proxies": [names],
        "rows": [...]}``; each row: ``feature``, ``category_id``, ``category``, ``lever``,
        ``target_model``, ``pairs``, ``judged`` {n, acceptable, rate, low, high},
        ``proxy`` {name: {n, acceptable, rate, low, high}}, ``decision`` and ``total``
        (``True`` on the one row per (lever, target model) over all categories, whose
        feature and category are ``"(all)"``).
    """
    bar = Bar.from_config(config)
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    totals: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in pair_verdicts(ws, config, embedder):
        key = (
            row["lever"],
            row["target_model"],
            row["feature"],
            row["category_id"],
            row["category"],
        )
        groups[key].append(row)
        totals[row["lever"], row["target_model"]].append(row)
    out = []
    for lever, target in sorted(totals):
        keys = sorted(k for k in groups if k[:2] == (lever, target))
        for _, _, feature, cat, label in keys:
            out.append(
                {
                    "feature": feature,
                    "category_id": cat,
                    "category": label,
                    "lever": lever,
                    "target_model": target,
                    "total": False,
                    **_summary(groups[lever, target, feature, cat, label], bar),
                }
            )
        out.append(
            {
                "feature": TOTAL,
                "category_id": None,
                "category": TOTAL,
                "lever": lever,
                "target_model": target,
                "total": True,
                **_summary(totals[lever, target], bar),
            }
        )
    return {"bar": bar.as_dict(), "proxies": list(PROXIES), "rows": out}


def category_decisions(
    ws: Workspace, config: Config, lever: str = "routing"
) -> dict[tuple[int, str], dict[str, Any]]:
    """Per (category id, target model), the judged decision of ``lever`` for the levers that
    use it (routing: :mod:`levers_cli.levers.routing`), over every feature of the category.

    Returns:
        ``{(category_id, target_model): {"decision", "n", "acceptable", "rate", "low",
        "high"}}``; only pairs with a judged grade count; no entry for an unmeasured pair.
    """
    bar = Bar.from_config(config)
    if not ws.count("variants", "lever = " + "'" + lever.replace("'", "''") + "'"):
        return {}
    groups: dict[tuple[int, str], list[bool]] = defaultdict(list)
    graded = grades_by_variant(ws)
    for row in pairs(ws, lever):
        verdict = judged_acceptable(graded.get(row["variant_id"], []), bar.min_grade)
        if verdict is not None:
            groups[int(row["category_id"]), row["target_model"]].append(verdict)
    out = {}
    for key, verdicts in groups.items():
        interval = wilson(sum(verdicts), len(verdicts), bar.confidence)
        out[key] = {
            "decision": decide(interval.low, interval.n, bar),
            **interval.as_dict(),
            "bar": bar.min_acceptable,
        }
    return out
