"""Simulation: the levers applied to a per-call plan in the waterfall's order, and the savings.

The per-call plan and its cost are :mod:`levers_cli.pricing.plan`'s: each lever changes the
plan's ``plan_*`` columns, and each step's saving is what the plan costs less after it. The
"before" figure is the base plan priced the same way, so the waterfall adds up to the cent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import polars as pl

from levers_cli.engine import Engine, call_partitions, group_partitions
from levers_cli.errors import WorkspaceError
from levers_cli.levers.base import (
    LEVELS,
    Finding,
    Level,
    Lever,
    basis_of_split,
    evidence_mask,
)
from levers_cli.pricing.plan import base_plan, log_span_days, plan_cost
from levers_cli.store import Workspace

#: What each metric measured beside a claim of :data:`CLAIMS_FILE` means (all on the lever
#: alone on the logged plan against the logged plan, over the calls whose cost it changes
#: unless said otherwise).
CLAIM_METRICS = {
    "calls_share": "calls it changes, of all calls",
    "cost_ratio": "cost before ÷ after, on the calls it changes",
    "cut_on_changed": "cost saved on the calls it changes",
    "input_cut": "input cost saved on the calls it changes (net of what it adds)",
    "output_cut": "output tokens removed on the calls it changes",
    "cost_share": "cost saved, of the whole log's",
}
#: The claims of the article levers grew from, in its wording (``claims.toml``).
CLAIMS_FILE = "claims.toml"

if TYPE_CHECKING:
    from levers_cli.config import Config


@dataclass
class Simulation:
    """The waterfall of one level: monthly cost before, after each lever, and the findings."""

    level: Level
    span_days: float
    monthly_factor: float
    before_usd: float
    steps: list[dict[str, Any]] = field(default_factory=list)
    #: the plan after every lever (``None`` from a partitioned run: no task holds every call)
    plan: pl.DataFrame | None = None
    #: USD per call (plan row order) before any lever, then after each step (empty from a
    #: partitioned run)
    call_costs: list[pl.Series] = field(default_factory=list)
    #: the base plan (before any lever), for measuring what the levers changed
    base: pl.DataFrame | None = None

    @property
    def after_usd(self) -> float:
        """Monthly cost after every enabled lever."""
        return self.steps[-1]["after_usd_month"] if self.steps else self.before_usd


def _step(lever: Lever, current: float, cost: float, evidence: float, factor: float) -> dict:
    """One waterfall step from summed costs (USD over the log) and its evidence part."""
    evidence_usd = evidence * factor
    return {
        "id": lever.id,
        "name": lever.name,
        "saving_usd_month": (current - cost) * factor,
        "after_usd_month": cost * factor,
        "saving_by_basis": {  # float noise (±1e-17) shown as 0
            part: value if abs(value) > 1e-12 else 0.0
            for part, value in (
                ("evidence", evidence_usd),
                ("assumption", (current - cost) * factor - evidence_usd),
            )
        },
    }


def _waterfall_costs(
    plan: pl.DataFrame,
    levers: list[Lever],
    findings: dict[int, Finding],
    config: Config,
    level: Level,
) -> tuple[pl.DataFrame, list[pl.Series], list[float]]:
    """The plan after ``levers`` in order, the per-call costs before and after each, and each
    step's saving on evidence (USD over the log, unscaled)."""
    costs = plan_cost(plan, config)
    call_costs, evidence = [costs], []
    for lever in levers:
        plan = lever.apply(plan, findings[lever.id], config, level)
        previous, costs = costs, plan_cost(plan, config)
        call_costs.append(costs)
        saved = (previous - costs).to_numpy()
        on_evidence = evidence_mask(findings[lever.id], plan["call_id"], level)
        evidence.append(float((saved * on_evidence).sum()))
    return plan, call_costs, evidence


def run_waterfall(
    ws: Workspace,
    levers: list[Lever],
    findings: dict[int, Finding],
    config: Config,
    level: Level,
    days_per_month: float = 30.0,
) -> Simulation:
    """Apply ``levers`` in the order given (the waterfall's: :data:`levers_cli.levers.WATERFALL`,
    as :func:`~levers_cli.levers.all_levers` returns them) at ``level``; each step's saving is
    its marginal saving given the levers before it (USD per month: cost × days_per_month / log
    span)."""
    span = log_span_days(ws)
    factor = days_per_month / span
    base = base_plan(ws)
    plan, call_costs, evidence = _waterfall_costs(base, levers, findings, config, level)
    current = float(call_costs[0].sum())
    sim = Simulation(level, span, factor, current * factor, base=base)
    sim.call_costs = call_costs
    for lever, costs, on_evidence in zip(levers, call_costs[1:], evidence, strict=True):
        cost = float(costs.sum())
        sim.steps.append(_step(lever, current, cost, on_evidence, factor))
        current = cost
    sim.plan = plan
    return sim


def alone_sums(
    base: pl.DataFrame, plan: pl.DataFrame, before: pl.Series, after: pl.Series, config: Config
) -> dict[str, float]:
    """The sums :func:`measures_of` turns into one lever's measures, over the calls of ``base``
    (the plan before the lever) and ``plan`` (after it), priced ``before`` and ``after``
    (USD per call): every one a sum over calls, so partitions' sums add up
    (:func:`waterfall_task`). Keys: ``calls``, ``changed`` (calls whose cost moved),
    ``total``/``after_total`` (USD), ``cost_before``/``cost_after`` (USD of the changed
    calls), ``in_before``/``in_after`` (their input cost, USD), ``out_before``/``out_after``
    (their output tokens).

    Input cost is the plan priced with no output tokens (cache reads and writes at their
    rates, plus what the lever adds: summaries, training); output tokens are ``plan_output``,
    none for a call served free (script, cache hit).
    """
    changed = (before - after).abs() > 1e-12

    def inputs(frame: pl.DataFrame) -> float:
        rows = frame.filter(changed)
        none = pl.lit(0).cast(frame.schema["plan_output"]).alias("plan_output")
        return float(plan_cost(rows.with_columns(none), config).sum()) if rows.height else 0.0

    def outputs(frame: pl.DataFrame) -> float:  # a call served free generates nothing
        made = pl.when(pl.col("plan_free")).then(0).otherwise(pl.col("plan_output"))
        return float(frame.filter(changed).select(made.sum()).item() or 0)

    return {
        "calls": float(base.height),
        "changed": float(changed.sum()),
        "total": float(before.sum()),
        "after_total": float(after.sum()),
        "cost_before": float(before.filter(changed).sum()),
        "cost_after": float(after.filter(changed).sum()),
        "in_before": inputs(base),
        "in_after": inputs(plan),
        "out_before": outputs(base),
        "out_after": outputs(plan),
    }


def measures_of(sums: dict[str, float]) -> dict[str, float | None]:
    """One lever's measures from :func:`alone_sums`, in the terms of :data:`CLAIM_METRICS`:
    ``calls_share``, ``cost_share``, ``cost_ratio``, ``cut_on_changed``, ``input_cut``,
    ``output_cut`` (shares 0–1, ratio ×; ``None`` where nothing was changed or the calls
    became free, so a ratio has no finite value)."""

    def share(cut: float, whole: float) -> float | None:
        return cut / whole if whole > 0 else None

    cost_before, cost_after = sums["cost_before"], sums["cost_after"]
    return {
        "calls_share": sums["changed"] / sums["calls"] if sums["calls"] else None,
        "cost_share": share(sums["total"] - sums["after_total"], sums["total"]),
        "cost_ratio": cost_before / cost_after if cost_after > 0 else None,
        "cut_on_changed": share(cost_before - cost_after, cost_before),
        "input_cut": share(sums["in_before"] - sums["in_after"], sums["in_before"]),
        "output_cut": share(sums["out_before"] - sums["out_after"], sums["out_before"]),
    }


def measure_alone(sim: Simulation, config: Config) -> dict[str, float | None]:
    """What one lever did alone (``sim``: a waterfall of that lever only): :func:`measures_of`
    its :func:`alone_sums`."""
    assert sim.base is not None and sim.plan is not None
    return measures_of(
        alone_sums(sim.base, sim.plan, sim.call_costs[0], sim.call_costs[-1], config)
    )


def load_claims() -> dict[str, Any]:
    """``claims.toml``: ``source`` and ``claim`` rows (lever, wording, metric, low, high), the
    claims of the article levers grew from; shown beside measurements, never computed with."""
    import tomllib
    from importlib.resources import files

    text = files("levers_cli").joinpath(CLAIMS_FILE).read_text(encoding="utf-8")
    return tomllib.loads(text)


@dataclass
class SimulationResult:
    """Every level's waterfall over the chosen levers, with their findings; monthly figures
    are cost × ``days_per_month`` (``[analysis] days_per_month``) / ``span_days``."""

    findings: dict[int, Finding]
    levels: dict[str, Simulation]
    lever_ids: list[int]
    span_days: float
    days_per_month: float = 30.0
    #: lever or budget-option label ("caching (prefix)") → level → :func:`measure_alone`'s
    #: figures; ``together`` → level → the whole waterfall's ``cost_share``
    measures: dict[str, dict[str, dict[str, float | None]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape of ``levers simulate --json`` (other tools read it):
        ``levers`` (one object per lever: id, name, saving_usd_month per level, basis,
        details), ``monthly_cost_before``, ``monthly_cost_after`` per level, ``log_span_days``;
        plus ``waterfall`` per level and each lever's ``evidence`` and ``figures``; ``claims``
        (each claim of the article levers grew from: ``lever``, ``lever_id``, ``wording``,
        ``metric``, ``metric_meaning``, ``claimed`` [low, high], ``measured`` per level, on the
        lever alone, ``changed_calls_share`` per level) with ``claims_source``."""
        expected = self.levels.get("expected") or next(iter(self.levels.values()))
        levers = []
        order = self.lever_ids + sorted(set(self.findings) - set(self.lever_ids))
        for lever_id in order:
            finding = self.findings[lever_id]
            levers.append(
                {
                    "id": lever_id,
                    "name": finding.name,
                    "saving_usd_month": dict(finding.saving_usd_month),
                    "standalone_usd_month": dict(finding.standalone_usd_month),
                    "basis": finding.basis,
                    "saving_by_basis": dict(finding.saving_by_basis),
                    "calls_affected": finding.calls_affected,
                    "tokens_affected": finding.tokens_affected,
                    "details": finding.details,
                    "figures": [
                        {
                            "name": f.name,
                            "value": f.value,
                            "unit": f.unit,
                            "basis": f.basis,
                            "source": f.source,
                        }
                        for f in finding.figures
                    ],
                    "evidence": finding.evidence[:20],
                }
            )
        return {
            "levers": levers,
            "monthly_cost_before": expected.before_usd,
            "monthly_cost_after": {name: sim.after_usd for name, sim in self.levels.items()},
            "log_span_days": self.span_days,
            "monthly_basis": (
                f"cost × {self.days_per_month:g} days / {self.span_days:.2f}-day span of the log"
            ),
            "waterfall": {name: sim.steps for name, sim in self.levels.items()},
            "claims_source": load_claims()["source"],
            "claims": self.claims(),
        }

    def claims(self) -> list[dict[str, Any]]:
        """Each claim of ``claims.toml`` whose lever was simulated, beside what was measured
        (see :meth:`as_dict`), in the waterfall's order, ``together`` last."""
        ids = {f.name: lever_id for lever_id, f in self.findings.items()}
        rows = []
        for claim in load_claims()["claim"]:
            label = claim["lever"]
            measured = self.measures.get(label)
            if measured is None:
                continue
            rows.append(
                {
                    "lever": label,
                    "lever_id": ids.get(label.split(" (")[0]),
                    "wording": claim["wording"],
                    "metric": claim["metric"],
                    "metric_meaning": CLAIM_METRICS[claim["metric"]]
                    + (" (all the levers in the waterfall)" if label == "together" else ""),
                    "claimed": [claim["low"], claim["high"]],
                    "measured": {lv: m.get(claim["metric"]) for lv, m in measured.items()},
                    "changed_calls_share": {
                        lv: m.get("calls_share", 1.0) for lv, m in measured.items()
                    },
                }
            )
        order = {lever_id: i for i, lever_id in enumerate(self.lever_ids)}
        rows.sort(key=lambda r: order.get(r["lever_id"], len(order)))
        return rows


def simulate(
    ws: Workspace,
    config: Config,
    levers: list[Lever],
    *,
    levels: tuple[Level, ...] = LEVELS,
    findings: dict[int, Finding] | None = None,
    engine: Engine | None = None,
) -> SimulationResult:
    """Analyze each lever once, then run the waterfall (``levers`` in their order) at every
    level and each lever alone.

    Fills each finding's ``saving_usd_month`` (marginal, in the waterfall) and
    ``standalone_usd_month`` (the lever alone), and the result's ``measures`` (each lever
    alone, and each budget option of a lever made of parts, by :func:`measure_alone`; the
    whole waterfall's share saved as ``together``) for the claims of ``claims.toml``.

    With an ``engine`` (:mod:`levers_cli.engine`) the same work runs as its tasks: each
    lever's analysis is one task (the analyses are independent), and the waterfalls run per
    group of call partitions (:func:`levers_cli.engine.call_partitions`, joined where a lever
    links calls: :meth:`~levers_cli.levers.base.Lever.partition_links`), each task pricing
    its calls at every level, the sums added here. The figures equal the unpartitioned
    ones but for the order of float additions (well under a cent); the levels' ``plan``
    and ``call_costs`` are left empty (no task holds every call). An engine whose tasks
    run elsewhere gets the workspace file released for the duration.

    Raises:
        WorkspaceError: the workspace holds no calls, is not fully analyzed (some calls have
            no category: :meth:`~levers_cli.store.Workspace.require_analysis`), or holds no
            priced calls; an engine that runs tasks in other processes on an in-memory
            workspace.
    """
    ws.require_analysis()
    if ws.count("calls", "cost_usd IS NOT NULL") == 0:
        raise WorkspaceError(
            f"workspace {ws.path} holds no priced calls; run `levers analyze LOGS` first"
        )
    days = float(config.get("analysis", "days_per_month"))
    found = dict(findings or {})
    if engine is not None:
        return _simulate_partitioned(ws, config, levers, levels, found, days, engine)
    for lever in levers:
        if lever.id not in found:
            found[lever.id] = lever.analyze(ws, config)
    result_levels: dict[str, Simulation] = {}
    measures: dict[str, dict[str, dict[str, float | None]]] = {}
    for level in levels:
        sim = run_waterfall(ws, levers, found, config, level, days)
        result_levels[level] = sim
        for step in sim.steps:
            found[step["id"]].saving_usd_month[level] = step["saving_usd_month"]
            found[step["id"]].saving_by_basis[level] = step["saving_by_basis"]
        measures.setdefault("together", {})[level] = {
            "cost_share": 1 - sim.after_usd / sim.before_usd if sim.before_usd else None
        }
        for lever in levers:
            alone = run_waterfall(ws, [lever], found, config, level, days)
            found[lever.id].standalone_usd_month[level] = alone.steps[0]["saving_usd_month"]
            measures.setdefault(lever.name, {})[level] = measure_alone(alone, config)
            options = lever.budget_options()
            for option in options if len(options) > 1 else ():
                part = run_waterfall(ws, [option], found, config, level, days)
                measures.setdefault(option.label, {})[level] = measure_alone(part, config)
    return _result(ws, levers, levels, found, result_levels, days, measures)


def _result(
    ws: Workspace,
    levers: list[Lever],
    levels: tuple[Level, ...],
    found: dict[int, Finding],
    result_levels: dict[str, Simulation],
    days: float,
    measures: dict[str, dict[str, dict[str, float | None]]] | None = None,
) -> SimulationResult:
    reference = "expected" if "expected" in levels else levels[0]
    for lever in levers:
        split = found[lever.id].saving_by_basis.get(reference, {})
        found[lever.id].basis = basis_of_split(split) or found[lever.id].basis
    span = log_span_days(ws)
    return SimulationResult(
        found, result_levels, [lv.id for lv in levers], span, days, measures or {}
    )


# --- partition functions: picklable inputs, the workspace opened by path in the task ---

#: workspaces open in this process, by path: an in-process engine's tasks use them (DuckDB
#: refuses a second, read-only, connection to a file this process holds read-write).
_OPEN: dict[str, Workspace] = {}


@contextmanager
def _task_workspace(path: str) -> Iterator[Workspace]:
    if path in _OPEN:
        yield _OPEN[path]
        return
    ws = Workspace(path, read_only=True)
    try:
        yield ws
    finally:
        ws.close()


@contextmanager
def _shared(ws: Workspace, engine: Engine) -> Iterator[None]:
    """The workspace reachable by the engine's tasks for the block: registered for an
    in-process engine, else its file released for other processes to read."""
    if engine.in_process:
        _OPEN[ws.path] = ws
        try:
            yield
        finally:
            _OPEN.pop(ws.path, None)
    else:
        with ws.released():
            yield


def analyze_task(task: tuple[str, Config, Lever]) -> Finding:
    """Partition function: one lever's analysis, ``(workspace path, config, lever)`` →
    its :class:`~levers_cli.levers.base.Finding`."""
    path, config, lever = task
    with _task_workspace(path) as ws:
        return lever.analyze(ws, config)


@dataclass(frozen=True, slots=True)
class WaterfallTask:
    """One group of call partitions to price at every level.

    Attributes:
        path: the workspace file.
        config: the effective configuration.
        levers: the waterfall's levers, in order.
        findings: their findings, ``per_call`` restricted to ``call_ids``.
        levels: the levels to price.
        call_ids: the group's calls.
    """

    path: str
    config: Config
    levers: list[Lever]
    findings: dict[int, Finding]
    levels: tuple[Level, ...]
    call_ids: list[str]


@dataclass(frozen=True, slots=True)
class WaterfallSums:
    """What one group's calls cost (USD over the log, unscaled), per level: ``before``;
    ``after`` and ``evidence`` per step of the waterfall; ``alone`` after each lever alone
    (with its ``alone_evidence``); ``measures`` (:func:`alone_sums` per lever alone)."""

    before: float
    after: dict[str, list[float]]
    evidence: dict[str, list[float]]
    alone: dict[str, list[float]]
    #: per lever alone, and per budget option of a lever made of parts (by name or label),
    #: per level: its :func:`alone_sums` over the group's calls
    measures: dict[str, dict[str, dict[str, float]]]


def waterfall_task(task: WaterfallTask) -> WaterfallSums:
    """Partition function: the waterfall and each lever alone, at every level, over one
    group's calls (see :class:`WaterfallTask`)."""
    with _task_workspace(task.path) as ws:
        plan = base_plan(ws, task.call_ids)
    before = float(plan_cost(plan, task.config).sum())
    after: dict[str, list[float]] = {}
    evidence: dict[str, list[float]] = {}
    alone: dict[str, list[float]] = {}
    measures: dict[str, dict[str, dict[str, float]]] = {}
    for level in task.levels:
        _, costs, on_evidence = _waterfall_costs(
            plan, task.levers, task.findings, task.config, level
        )
        after[level] = [float(c.sum()) for c in costs[1:]]
        evidence[level] = on_evidence
        alone[level] = []
        for lever in task.levers:
            options = lever.budget_options()
            parts = [(lever.name, lever)] + (
                [(o.label, o) for o in options] if len(options) > 1 else []
            )
            for name, part in parts:
                done, part_costs, _ = _waterfall_costs(
                    plan, [part], task.findings, task.config, level
                )
                if part is lever:
                    alone[level].append(float(part_costs[1].sum()))
                measures.setdefault(name, {})[level] = alone_sums(
                    plan, done, part_costs[0], part_costs[1], task.config
                )
    return WaterfallSums(before, after, evidence, alone, measures)


def _restricted(finding: Finding, call_ids: list[str]) -> Finding:
    if finding.per_call is None:
        return finding
    kept = finding.per_call.filter(pl.col("call_id").is_in(call_ids))
    return replace(finding, per_call=kept)


def _simulate_partitioned(
    ws: Workspace,
    config: Config,
    levers: list[Lever],
    levels: tuple[Level, ...],
    found: dict[int, Finding],
    days: float,
    engine: Engine,
) -> SimulationResult:
    todo = [lever for lever in levers if lever.id not in found]
    partitions = call_partitions(ws)
    span = log_span_days(ws)
    factor = days / span
    per_group = int(config.get("engine", "partition_calls"))
    total = sum(len(p.call_ids) for p in partitions)
    with _shared(ws, engine):
        analyses = engine.map(analyze_task, [(ws.path, config, lever) for lever in todo])
        found.update({lever.id: finding for lever, finding in zip(todo, analyses, strict=True)})
        links = [pair for lever in levers for pair in lever.partition_links(found[lever.id])]
        bins = max(engine.workers, -(-total // max(per_group, 1)))
        groups = group_partitions(partitions, links, bins)
        tasks = [
            WaterfallTask(
                ws.path,
                config,
                levers,
                {lv.id: _restricted(found[lv.id], group) for lv in levers},
                levels,
                group,
            )
            for group in groups
        ]
        sums = engine.map(waterfall_task, tasks)
    result_levels: dict[str, Simulation] = {}
    before = sum(part.before for part in sums)
    for level in levels:
        sim = Simulation(level, span, factor, before * factor)
        current = before
        for i, lever in enumerate(levers):
            cost = sum(part.after[level][i] for part in sums)
            on_evidence = sum(part.evidence[level][i] for part in sums)
            sim.steps.append(_step(lever, current, cost, on_evidence, factor))
            current = cost
            alone = sum(part.alone[level][i] for part in sums)
            found[lever.id].standalone_usd_month[level] = (before - alone) * factor
        for step in sim.steps:
            found[step["id"]].saving_usd_month[level] = step["saving_usd_month"]
            found[step["id"]].saving_by_basis[level] = step["saving_by_basis"]
        result_levels[level] = sim
    measures: dict[str, dict[str, dict[str, float | None]]] = {}
    for level in levels:
        sim = result_levels[level]
        measures.setdefault("together", {})[level] = {
            "cost_share": 1 - sim.after_usd / sim.before_usd if sim.before_usd else None
        }
    for name in sums[0].measures if sums else ():
        for level in levels:
            added: dict[str, float] = {}
            for part in sums:
                for key, value in part.measures[name][level].items():
                    added[key] = added.get(key, 0.0) + value
            measures.setdefault(name, {})[level] = measures_of(added)
    return _result(ws, levers, levels, found, result_levels, days, measures)
