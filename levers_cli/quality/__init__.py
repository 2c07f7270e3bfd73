"""The quality loop below the levers: what each saving costs in answers, measured offline on
the user's own calls (../shared/DESIGN.md §9).

Parts: :mod:`~levers_cli.quality.stats` (Wilson intervals, sample sizes),
:mod:`~levers_cli.quality.sample` (the stratified shadow sample),
:mod:`~levers_cli.quality.tables` (the ``quality_requests``, ``variants`` and ``grades``
tables), :mod:`~levers_cli.quality.proxies` (acceptability without a judge, each a labelled
proxy), :mod:`~levers_cli.quality.judge` (judge prompts and verdict parsing),
:mod:`~levers_cli.quality.results` (a shadow or judge batch output read into variants and
grades), :mod:`~levers_cli.quality.report` (the ``levers quality`` table and the per-category
decisions routing reads).
"""

from __future__ import annotations

from levers_cli.quality.proxies import PROXIES, ProxySettings, proxy_verdicts
from levers_cli.quality.report import (
    BELOW,
    MEETS,
    UNMEASURED,
    Bar,
    category_decisions,
    quality_report,
)
from levers_cli.quality.sample import allocate, draw
from levers_cli.quality.stats import Interval, sample_size, wilson
from levers_cli.quality.tables import (
    FEATURE_SQL,
    grades_by_variant,
    known_requests,
    pairs,
    register_requests,
    store_grades,
    store_variants,
)

__all__ = [
    "BELOW",
    "FEATURE_SQL",
    "MEETS",
    "PROXIES",
    "UNMEASURED",
    "Bar",
    "Interval",
    "ProxySettings",
    "allocate",
    "category_decisions",
    "draw",
    "grades_by_variant",
    "known_requests",
    "pairs",
    "proxy_verdicts",
    "quality_report",
    "register_requests",
    "sample_size",
    "store_grades",
    "store_variants",
    "wilson",
]
