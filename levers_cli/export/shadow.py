"""``levers export shadow``: a stratified sample of the calls a lever changes, with the change
applied, as provider batch input (the quality loop, ../shared/DESIGN.md §9).

- ``routing``: the same messages sent to the model the routing lever moves the call to at
  ``--level`` (its ``[tiers] cheap`` model), or to ``--target``.
- ``caps``: the same messages and model with the lever's cap as ``max_tokens`` and its
  instruction (``caps.DIRECT`` / ``caps.CONCISE``) appended to the last user message.

The sample is stratified by feature › category (:mod:`levers_cli.quality.sample`): ``--n``
in all, ``--per-category`` each, or per stratum the size a ``--confidence`` and ``--margin``
need. Requests are written by :func:`levers_cli.export.batch.write_requests` (OpenAI Batch
JSONL per endpoint and model, Anthropic Message Batches JSON, ``manifest.json``) under
``shadow/`` with ``custom_ids.csv`` (``custom_id,call_id,lever,variant,target_model,
provider,file,endpoint``); the requests are recorded in the workspace (``quality_requests``)
so ``levers analyze`` recognizes their batch output by ``custom_id`` and stores the answers as
variants, never as calls. What the shadow run will cost is priced before anything is written:
the sampled calls' logged tokens at the target's rate card with the batch factor
(:func:`levers_cli.pricing.plan.plan_cost`; caps: output at most the cap).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from levers_cli.errors import UsageError
from levers_cli.export.batch import load_calls, write_requests
from levers_cli.export.common import ExportError, ExportResult, prepare_out_dir, write_csv
from levers_cli.ingest.fields import provider_for_model
from levers_cli.pricing.plan import base_plan, plan_cost
from levers_cli.quality import FEATURE_SQL, allocate, draw, register_requests
from levers_cli.quality.stats import min_pairs
from levers_cli.schema import CATEGORY_ID

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.store import Workspace

ShadowLever = Literal["routing", "caps"]
SHADOW_LEVERS = ("routing", "caps")
FOLDER = "shadow"
MAP_COLUMNS = (
    "custom_id",
    "call_id",
    "lever",
    "variant",
    "target_model",
    "provider",
    "file",
    "endpoint",
)


def shadow_custom_id(call_id: str, lever: str, variant: str) -> str:
    """``shadow-<lever>-`` + 20 hex digits of SHA-256(call_id, lever, variant): valid for
    both batch APIs (``^[a-zA-Z0-9_-]{1,64}$``) and distinct per (call, lever, variant)."""
    digest = hashlib.sha256(f"{call_id}\x1f{lever}\x1f{variant}".encode()).hexdigest()[:20]
    return f"shadow-{lever}-{digest}"


def changed_calls(
    ws: Workspace, config: Config, lever: str, level: str, target: str | None
) -> pl.DataFrame:
    """The calls ``lever`` changes at ``level``: ``call_id``, ``target_model`` (``None``:
    the call's own), ``cap`` and ``instruction`` (caps), ``variant`` (a short name of the
    change).

    Raises:
        UsageError: an unknown lever.
    """
    if lever == "routing":
        from levers_cli.levers.routing import RoutingLever

        per_call = RoutingLever().analyze(ws, config).per_call
        if per_call is None or per_call.is_empty():
            return pl.DataFrame(schema={"call_id": pl.String, "target_model": pl.String})
        # the calls routing would move before measured quality kept any category back
        column = f"ungated_{level}" if f"ungated_{level}" in per_call.columns else f"route_{level}"
        moved = per_call.filter(pl.col(column) & pl.col("route_model").is_not_null())
        to = pl.lit(target) if target else pl.col("route_model")
        return moved.select(
            "call_id",
            to.alias("target_model"),
            pl.lit(None, pl.Int64).alias("cap"),
            pl.lit(None, pl.String).alias("instruction"),
        ).with_columns(("model=" + pl.col("target_model")).alias("variant"))
    if lever == "caps":
        from levers_cli.levers.caps import CapsLever, cap_table

        per_call = CapsLever().analyze(ws, config).per_call
        if per_call is None or per_call.is_empty():
            return pl.DataFrame(schema={"call_id": pl.String, "target_model": pl.String})
        instruction = {
            cid: row["instruction"] for row in cap_table(ws, config) for cid in row["call_ids"]
        }
        capped = per_call.filter(pl.col(f"cap_{level}").is_not_null())
        return capped.select(
            "call_id",
            pl.lit(target, pl.String).alias("target_model"),
            pl.col(f"cap_{level}").alias("cap"),
            pl.col("call_id").replace_strict(instruction, default=None).alias("instruction"),
        ).with_columns(
            ("max_tokens=" + pl.col("cap").cast(pl.String) + "+instruction").alias("variant")
        )
    raise UsageError(f"unknown lever {lever!r} for export shadow; choose one of: routing, caps")


def _strata(ws: Workspace, call_ids: list[str]) -> pl.DataFrame:
    ws.load_temp("_shadow_ids", {"call_id": call_ids})
    frame = pl.from_arrow(
        ws.con.sql(
            f"""SELECT c.call_id, {FEATURE_SQL} AS feature, coalesce(c.{CATEGORY_ID}, -1)
                   AS {CATEGORY_ID}, c.provider, c.model
                FROM calls c JOIN _shadow_ids USING (call_id)"""
        ).to_arrow_table()
    )
    assert isinstance(frame, pl.DataFrame)
    return frame


def apply_change(call: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """A copy of a :func:`~levers_cli.export.batch.load_calls` row with the change applied:
    ``target_model`` (and its provider), ``cap`` as the request's cap, ``instruction``
    appended to the last user message's text."""
    out = copy.deepcopy(call)
    target = change.get("target_model")
    if target:
        out["model"] = target
        out["provider"] = provider_for_model(target) or call["provider"]
    if change.get("cap"):
        out["max_tokens"] = int(change["cap"])
        out["params"] = {
            k: v
            for k, v in out["params"].items()
            if k not in ("max_tokens", "max_completion_tokens", "max_output_tokens")
        }
    text = change.get("instruction")
    if text:
        for message in reversed(out["messages"]):
            if message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    message["content"] = f"{content}\n\n{text}"
                elif isinstance(content, list):
                    message["content"] = [*content, {"type": "text", "text": text}]
                break
    return out


def shadow_cost(ws: Workspace, config: Config, changes: pl.DataFrame) -> float:
    """USD the shadow requests cost at batch prices: each sampled call's logged tokens at its
    target's rate card (its own model when none), output at most the cap, batch factor on."""
    plan = base_plan(ws).join(changes.select("call_id", "target_model", "cap"), on="call_id")
    if plan.is_empty():
        return 0.0
    plan = plan.with_columns(
        pl.coalesce("target_model", "plan_model").alias("plan_model"),
        pl.when(pl.col("cap").is_not_null())
        .then(pl.min_horizontal("plan_output", "cap"))
        .otherwise(pl.col("plan_output"))
        .cast(plan.schema["plan_output"])
        .alias("plan_output"),
        pl.lit(True).alias("plan_batch"),
        pl.lit(False).alias("plan_free"),
    )
    return float(plan_cost(plan, config).sum())


def export_shadow(
    ws: Workspace,
    config: Config,
    out_dir: str,
    *,
    force: bool = False,
    lever: ShadowLever = "routing",
    level: str = "expected",
    n: int | None = None,
    per_category: int | None = None,
    target: str | None = None,
    confidence: float | None = None,
    margin: float | None = None,
    redact: bool = True,
    announce: Callable[[str], None] | None = None,
) -> ExportResult:
    """Write ``shadow/`` under ``out_dir`` (see the module docstring).

    Args:
        lever: ``routing`` or ``caps``.
        level: the lever's level whose changes are sampled.
        n: total requests (split over feature › category strata in proportion).
        per_category: requests per stratum.
        target: the model to send the requests to (routing: instead of the lever's).
        confidence, margin: per-stratum size when neither ``n`` nor ``per_category`` is
            given (default ``[quality] sample_confidence`` / ``sample_margin``).
        redact: redact the text (:mod:`levers_cli.redact`).
        announce: called with the run's cost line before anything is written (the CLI
            prints it); without it the line is the result's first note.

    Returns:
        An :class:`ExportResult`; ``counts`` adds ``sampled``, ``changed_calls``,
        ``strata``; ``details["cost_usd_batch"]`` the shadow run's price.

    Raises:
        UsageError: ``n`` and ``per_category`` both given, or one below 1.
        ExportError: the lever changes no call, or nothing writable.
    """
    if n is not None and per_category is not None:
        raise UsageError("give --n or --per-category, not both")
    if (n is not None and n < 1) or (per_category is not None and per_category < 1):
        raise UsageError("--n and --per-category must be at least 1")
    conf = float(
        confidence if confidence is not None else config.get("quality", "sample_confidence")
    )
    marg = float(margin if margin is not None else config.get("quality", "sample_margin"))
    if not (0 < conf < 1 and 0 < marg < 1):
        raise UsageError("--confidence and --margin must lie between 0 and 1")
    changes = changed_calls(ws, config, lever, level, target)
    if changes.is_empty():
        raise ExportError(
            f"nothing to export: the {lever} lever changes no call at the {level} level"
        )
    strata = _strata(ws, changes["call_id"].to_list())
    groups: dict[Any, list[str]] = {}
    for cid, feature, cat in strata.select("call_id", "feature", CATEGORY_ID).iter_rows():
        groups.setdefault((feature, int(cat)), []).append(cid)
    counts = allocate(
        {k: len(v) for k, v in groups.items()},
        total=n,
        per_stratum=per_category,
        confidence=conf,
        margin=marg,
    )
    sampled = draw(groups, counts, int(config.get("quality", "seed")))
    chosen = changes.filter(pl.col("call_id").is_in(sampled))
    cost = shadow_cost(ws, config, chosen)
    by_id = {row["call_id"]: row for row in chosen.iter_rows(named=True)}
    requests = []
    for call in load_calls(ws, sampled):
        change = by_id[call["call_id"]]
        request = apply_change(call, change)
        request["custom_id"] = shadow_custom_id(call["call_id"], lever, change["variant"])
        request["_variant"] = change["variant"]
        requests.append(request)
    how = (
        f"--n {n}"
        if n is not None
        else f"--per-category {per_category}"
        if per_category is not None
        else f"confidence {conf:g}, margin {marg:g} per stratum"
    )
    cost_line = (
        f"shadow run: {len(requests)} requests, about ${cost:,.4f} at batch prices "
        f"(the sampled calls' logged tokens at the target's rates)"
    )
    if announce is not None:
        announce(cost_line)
    out = prepare_out_dir(out_dir, [FOLDER], force)
    result = ExportResult(
        "shadow",
        str(out),
        notes=[
            *([] if announce is not None else [cost_line]),
            f"sample: {len(sampled)} of {changes.height} calls the {lever} lever changes at "
            f"the {level} level, {len(groups)} feature › category strata ({how})",
        ],
    )
    written = write_requests(out / FOLDER, requests, config, result, redact=redact)
    rows = [
        (
            r["custom_id"],
            r["call_id"],
            lever,
            r["_variant"],
            r["model"],
            *written.provider_of[r["custom_id"]][:1],
            written.file_of[r["custom_id"]],
            written.provider_of[r["custom_id"]][2],
        )
        for r in requests
        if r["custom_id"] in written.file_of
    ]
    map_path = out / FOLDER / "custom_ids.csv"
    write_csv(map_path, MAP_COLUMNS, rows)
    result.add_file(map_path, len(rows))
    register_requests(
        ws,
        [
            {
                "custom_id": r[0],
                "kind": "shadow",
                "call_id": r[1],
                "lever": lever,
                "variant": r[3],
                "target_model": r[4],
            }
            for r in rows
        ],
    )
    result.counts.update(sampled=len(rows), changed_calls=changes.height, strata=len(groups))
    bar, conf_bar = (float(config.get("quality", k)) for k in ("min_acceptable", "confidence"))
    need = min_pairs(bar, conf_bar)
    short = sum(1 for k in groups if need is None or counts.get(k, 0) < need)
    if short:
        result.notes.append(
            f"{short} of {len(groups)} strata have fewer than {need} pairs, the fewest that can "
            f"meet the bar ([quality] min_acceptable {bar:g} on the {conf_bar:.0%} Wilson lower "
            "bound, all acceptable): there they can only be measured below it"
        )
    result.details["cost_usd_batch"] = round(cost, 6)
    result.notes.append(
        "then: levers analyze <batch output> (--batch-input <this input>) "
        "stores the answers as variants; levers quality shows them"
    )
    return result
