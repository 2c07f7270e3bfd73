"""The lever contract: every lever measures itself on the workspace (``analyze``) and changes
a per-call plan (``apply``) for the simulation, at one of three levels; it also names its next
action for the report's plan and the export that puts it into practice.

Source of the method: ../shared/DESIGN.md §5 (levers) and §6 (simulation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from levers_cli.text.content import shorten

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from levers_cli.config import Config
    from levers_cli.store import Workspace

Level = Literal["conservative", "expected", "aggressive"]
LEVELS: tuple[Level, ...] = ("conservative", "expected", "aggressive")
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
    value: float | Mapping[str, float] | Mapping[Level, float]
    unit: str
    basis: Basis
    source: str


@dataclass
class Finding:
    """What one lever found in the workspace.

    Attributes:
        lever_id: the lever's id (1–7).
        name: ``routing``, ``context``, ``caching``, ``caps``, ``materialize``, ``lora``,
            ``batch``.
        calls_affected: calls the lever applies to (at the expected level).
        tokens_affected: input + output tokens of those calls.
        basis: ``evidence``, ``assumption`` or ``mixed`` over the figures; the simulation
            replaces it with the basis of the saving's dollars at the expected level
            (:func:`basis_of_split` of ``saving_by_basis``).
        figures: headline numbers, each with its basis.
        evidence: the rows that justify it (categories, templates, prefixes …), best first.
        per_call: ``call_id`` plus the lever's per-call columns that ``apply`` reads
            (a polars DataFrame), or ``None``. A boolean ``evidence_<level>`` (or
            ``evidence``) column marks the calls whose saving rests on evidence in the logs;
            the simulation splits the lever's dollars by it (see :func:`evidence_mask`).
        details: lever-specific extras for the JSON output (e.g. caching's ``exact_hits``).
        saving_usd_month: filled by the simulation: this lever's marginal saving in the
            waterfall (given the levers before it), per level, USD per month.
        standalone_usd_month: filled by the simulation: this lever alone, per level.
        saving_by_basis: filled by the simulation: per level, the marginal saving split into
            ``{"evidence": USD/month, "assumption": USD/month}``.
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
    saving_by_basis: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What a lever's next action may name besides its own result.

    Attributes:
        config: the effective configuration (routing names the ``[tiers] cheap`` models).
        providers: the providers in the logs (routing names only their cheap tiers).
    """

    config: Config
    providers: frozenset[str] = frozenset()


@runtime_checkable
class Lever(Protocol):
    """A cost lever.

    ``analyze`` and ``apply`` are the contract; the rest are optional abilities with the
    defaults below, which a lever inherits by subclassing ``Lever``.

    Attributes:
        id: 1–7 (routing, context, caching, caps, materialize, lora, batch): the id
            ``--levers`` selects and the JSON shows. The order levers compound in is
            :data:`levers_cli.levers.WATERFALL`'s.
        name: as in :data:`Finding.name`.
        effort: ``low``, ``medium`` or ``high`` (used by the budget solver).
        export_command: the ``levers export`` command that puts the lever into practice
            (``None``: it is a change in the application).
    """

    id: int
    name: str
    effort: Effort
    export_command: str | None = None

    def analyze(self, ws: Workspace, config: Config) -> Finding:
        """Measure the lever on the workspace's calls."""
        ...

    def apply(
        self, plan: pl.DataFrame, finding: Finding, config: Config, level: Level
    ) -> pl.DataFrame:
        """Return ``plan`` with this lever's changes (see :mod:`levers_cli.pricing.plan` for
        the plan's columns); rows served free by an earlier lever (``plan_free``) stay as
        they are."""
        ...

    def next_action(self, result: dict[str, Any], context: ActionContext) -> str:
        """The concrete next step the report's plan names for this lever, computed from its
        simulation result (one entry of ``SimulationResult.as_dict()["levers"]``: ``details``,
        ``evidence`` …); ``""`` when the lever names none."""
        return ""

    @property
    def label(self) -> str:
        """The name a budget shows: :attr:`name`, or which part of the lever an option is
        (``caching (prefix)``)."""
        return self.name

    def partition_links(self, finding: Finding) -> list[tuple[str, str]]:
        """Pairs of ``call_id`` whose plans ``apply`` decides together (a cache source and
        its reader, the calls of one group it prices as a whole): the simulation never puts
        the two calls of a pair in different partitions (:mod:`levers_cli.engine.partitions`).
        ``[]`` (the default): ``apply`` changes each call from its own per-call columns."""
        return []

    def budget_options(self) -> list[Lever]:
        """The budget solver's options for this lever: the lever itself, or, for a lever made
        of parts of different effort, one lever per group of parts, each applying its parts
        with the same finding (and named by :attr:`label`)."""
        return [self]


def quoted_names(rows: list[dict[str, Any]], key: str, n: int = 3, fallback: str = "") -> str:
    """``: “a”, “b” …``: the first ``n`` rows' non-blank ``key`` (else ``fallback``) values,
    quoted and shortened to 70 characters, with `` …`` when more rows have one; empty when no
    row has one, so a next action never ends in a colon and no name."""
    texts = [str(r.get(key) or r.get(fallback) or "").strip() for r in rows]
    picked = [f"“{shorten(t, 70)}”" for t in texts if t][:n]
    if not picked:
        return ""
    return ": " + ", ".join(picked) + (" …" if sum(map(bool, texts)) > n else "")


def chain_links(per_call: pl.DataFrame | None, key: str) -> list[tuple[str, str]]:
    """Links (:meth:`Lever.partition_links`) that keep the calls of each value of ``key`` (a
    column of ``per_call``; nulls are no group) together: each call paired with the previous
    call of its group."""
    if per_call is None or per_call.is_empty() or key not in per_call.columns:
        return []
    import polars as pl

    grouped = per_call.filter(pl.col(key).is_not_null()).select(
        "call_id", pl.col("call_id").shift(1).over(key).alias("_previous")
    )
    pairs = grouped.filter(pl.col("_previous").is_not_null())
    return list(zip(pairs["call_id"].to_list(), pairs["_previous"].to_list(), strict=True))


def combine_basis(bases: list[Basis]) -> Basis:
    """``evidence`` or ``assumption`` when all agree, else ``mixed`` (``evidence`` if empty)."""
    distinct = set(bases)
    if not distinct:
        return "evidence"
    if len(distinct) == 1:
        return next(iter(distinct))
    return "mixed"


def basis_of_split(split: dict[str, float], tolerance: float = 0.01) -> Basis | None:
    """The basis of a saving from its dollar split.

    Args:
        split: ``{"evidence": USD, "assumption": USD}``.
        tolerance: a part under this share of the total (absolute values) is ignored.

    Returns:
        ``evidence`` or ``assumption`` when one part carries all but ``tolerance`` of it,
        ``mixed`` otherwise, ``None`` when there is no saving to split.
    """
    evidence, assumption = abs(split.get("evidence", 0.0)), abs(split.get("assumption", 0.0))
    total = evidence + assumption
    if total <= 1e-12:
        return None
    if assumption <= tolerance * total:
        return "evidence"
    if evidence <= tolerance * total:
        return "assumption"
    return "mixed"


def evidence_mask(finding: Finding, call_ids: pl.Series, level: Level) -> np.ndarray:
    """Which share of each call's saving from this lever rests on evidence in the logs.

    Reads the finding's ``per_call`` column ``evidence_<level>`` (or ``evidence``): a boolean
    (the whole saving or none) or a float share in [0, 1] (a lever whose saving on one call has
    a measured and an assumed part, as caps' hard cap and instruction); a lever without one
    counts wholly as its ``basis`` says (``mixed`` without a column counts as assumption, the
    cautious reading).

    Args:
        finding: the lever's finding.
        call_ids: the plan's ``call_id`` column, in plan order.
        level: the simulation level.

    Returns:
        ``(len(call_ids),)`` float array of shares (0–1) in plan order.
    """
    import numpy as np
    import polars as pl

    frame = finding.per_call
    column = next(
        (c for c in (f"evidence_{level}", "evidence") if frame is not None and c in frame.columns),
        None,
    )
    if column is None or frame is None:
        return np.full(len(call_ids), float(finding.basis == "evidence"))
    shares = (
        pl.DataFrame({"call_id": call_ids})
        .join(frame.select("call_id", column), on="call_id", how="left", maintain_order="left")
        .get_column(column)
        .cast(pl.Float64)
        .fill_null(0.0)
    )
    return shares.to_numpy().clip(0.0, 1.0)
