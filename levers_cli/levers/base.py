"""The lever contract: every lever measures itself on the workspace (``analyze``) and changes
a per-call plan (``apply``) for the simulation, at one of three levels.

Source of the method: ../shared/DESIGN.md §5 (levers) and §6 (simulation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import polars as pl

    from levers_cli.config import Config
    from levers_cli.store import Workspace

Level = Literal["conservative", "expected", "aggressive"]
LEVELS: tuple[Level, ...] = ("conservative", "expected", "aggressive")  # = simulate.LEVELS
Basis = Literal["evidence", "assumption", "mixed"]
Effort = Literal["low", "medium", "high"]


@dataclass(frozen=True, slots=True)
class Figure:
    """One headline number and what it rests on.

    Attributes:
        name: what it measures (``exact_hit_calls``).
        value: the number, or one per level (``{"expected": 0.3, ...}``).
        unit: ``calls``, ``tokens``, ``USD``, ``share``, ``seconds`` …
        basis: ``evidence`` (read from the logs) or ``assumption`` (from config).
        source: for an assumption, the config key and its documented source; for evidence,
            what in the logs it was read from.
    """

    name: str
    value: float | int | dict[str, float]
    unit: str
    basis: Basis
    source: str


@dataclass
class Finding:
    """What one lever found in the workspace.

    Attributes:
        lever_id: 1–7, the order levers compound in.
        name: ``routing``, ``context``, ``caching``, ``caps``, ``materialize``, ``lora``,
            ``batch``.
        calls_affected: calls the lever applies to (at the expected level).
        tokens_affected: input + output tokens of those calls.
        basis: ``evidence``, ``assumption`` or ``mixed`` over the figures.
        figures: headline numbers, each with its basis.
        evidence: the rows that justify it (categories, templates, prefixes …), best first.
        per_call: ``call_id`` plus the lever's per-call columns that ``apply`` reads
            (a polars DataFrame), or ``None``.
        details: lever-specific extras for the JSON output (e.g. caching's ``exact_hits``).
        saving_usd_month: filled by the simulation: this lever's marginal saving in the
            waterfall (given the levers before it), per level, USD per month.
        standalone_usd_month: filled by the simulation: this lever alone, per level.
    """

    lever_id: int
    name: str
    calls_affected: int = 0
    tokens_affected: int = 0
    basis: Basis = "evidence"
    figures: list[Figure] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    per_call: pl.DataFrame | None = None
    details: dict[str, Any] = field(default_factory=dict)
    saving_usd_month: dict[str, float] = field(default_factory=dict)
    standalone_usd_month: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Lever(Protocol):
    """A cost lever.

    Attributes:
        id: 1–7 (routing, context, caching, caps, materialize, lora, batch).
        name: as in :data:`Finding.name`.
        effort: ``low``, ``medium`` or ``high`` (used by the budget solver).
    """

    id: int
    name: str
    effort: Effort

    def analyze(self, ws: Workspace, config: Config) -> Finding:
        """Measure the lever on the workspace's calls."""
        ...

    def apply(
        self, plan: pl.DataFrame, finding: Finding, config: Config, level: Level
    ) -> pl.DataFrame:
        """Return ``plan`` with this lever's changes (see :mod:`levers_cli.simulate` for the
        plan's columns); rows served free by an earlier lever (``plan_free``) stay as they are."""
        ...


def combine_basis(bases: list[Basis]) -> Basis:
    """``evidence`` or ``assumption`` when all agree, else ``mixed`` (``evidence`` if empty)."""
    distinct = set(bases)
    if not distinct:
        return "evidence"
    if len(distinct) == 1:
        return next(iter(distinct))
    return "mixed"
