"""``analyze``: ingest → price → embed and cluster → summarize, as one library call."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from levers_cli.cluster import ClusterParams, categorize
from levers_cli.cluster.categorize import ProgressFn
from levers_cli.config import Config, load_config
from levers_cli.embed import (
    AUTO,
    EMBEDDERS,
    Embedder,
    EmbedderChoice,
    EmbedSettings,
    choose_embedder,
    embedder_name,
    get_embedder,
)
from levers_cli.enrich.conversations import link_conversations
from levers_cli.enrich.prices import price_calls
from levers_cli.errors import UsageError, WorkspaceError
from levers_cli.ingest.jsonpath import FieldPath
from levers_cli.ingest.pipeline import ingest_files
from levers_cli.ingest.result import IngestResult
from levers_cli.quality.results import QualityResults, is_quality_output, read_quality_outputs
from levers_cli.schema import CATEGORY_ID
from levers_cli.store import Workspace
from levers_cli.summary import summarize

if TYPE_CHECKING:
    from levers_cli.engine import Engine


@dataclass
class AnalysisResult:
    """The ingest run and the summary (a JSON-ready dict, see :mod:`levers_cli.summary`)."""

    ingest: IngestResult
    summary: dict[str, Any]


def cluster_params(config: Config) -> ClusterParams:
    """``[cluster]`` settings as :class:`ClusterParams`."""
    section = config.values["cluster"]
    fields = ClusterParams.__dataclass_fields__
    return ClusterParams(**{k: v for k, v in section.items() if k in fields})


def resolve_embedder(ws: Workspace, config: Config) -> tuple[Embedder, EmbedderChoice]:
    """The embedder ``[embed] embedder`` names (a registered embedder or a
    sentence-transformers model: :func:`levers_cli.embed.get_embedder`), resolving ``auto``
    from the workspace's distinct queries (:func:`levers_cli.embed.choose_embedder`): a
    workspace whose categories were made with a named model keeps it while the model is
    on this machine.

    Raises:
        UsageError: the configured name is no embedder.
    """
    name = config.get("embed", "embedder")
    settings = EmbedSettings.from_config(config)
    if name != AUTO:
        return get_embedder(name, settings), EmbedderChoice(
            name, "chosen with --embedder or [embed] embedder"
        )
    limit = int(config.get("embed", "auto_minilm_max_queries"))
    stored = ws.con.execute("SELECT any_value(embedder) FROM categories").fetchone()[0]
    stored_name = embedder_name(stored) if stored else None
    if stored_name is not None and stored_name not in EMBEDDERS:
        try:  # a named model: kept where it can be loaded, else chosen afresh below
            return get_embedder(stored_name, settings), EmbedderChoice(
                stored_name,
                f"the workspace's categories were made with {stored_name}; kept for stable ids",
            )
        except UsageError:
            stored_name = None
    to_embed = ws.con.execute(
        """SELECT count(DISTINCT c.query_hash) FROM calls c
           WHERE trim(coalesce(c.query, '')) <> '' AND NOT EXISTS (
               SELECT 1 FROM embeddings e
               WHERE e.query_hash = c.query_hash AND e.embedder LIKE 'minilm:%')"""
    ).fetchone()[0]
    if stored_name == "minilm" and to_embed > limit:
        stored_name = None  # too many new queries for minilm: refit with static
    choice = choose_embedder(int(to_embed), limit, stored_name)
    embedder = get_embedder(choice.name, settings)
    if choice.name == "static" and not _static_ready(embedder):
        choice = EmbedderChoice(
            "minilm",
            f"{choice.reason}, but the static model is not distilled on this machine and "
            "model2vec's distill extra is missing (pip install 'levers-cli[static]'): "
            "minilm instead, slower",
        )
        embedder = get_embedder("minilm", settings)
    return embedder, choice


def _static_ready(embedder: Embedder) -> bool:
    """The static model is cached, or can be distilled here (model2vec's distill extra)."""
    if embedder.is_cached():
        return True
    try:
        import model2vec.distill  # noqa: F401
    except ImportError:
        return False
    return True


def analyze(
    ws: Workspace,
    paths: list[str],
    *,
    format: str | None = None,
    mapping: dict[str, FieldPath] | None = None,
    options: dict[str, Any] | None = None,
    config: Config | None = None,
    embedder: Embedder | None = None,
    since: str | None = None,
    recluster: bool = False,
    progress: ProgressFn | None = None,
    exclude: frozenset[str] = frozenset(),
    engine: Engine | None = None,
) -> AnalysisResult:
    """Run the main job on ``paths``, or finish it on the stored calls when ``paths`` is empty.

    Each step works on the whole workspace, so a run that stopped early (Ctrl-C, a failed
    embedder: calls stored without categories, refused by
    :meth:`~levers_cli.store.Workspace.require_analysis`) is finished by another run with no
    paths: conversations and prices are redone, and only the queries not yet embedded are
    embedded (the vectors are written chunk by chunk as they come).

    Args:
        ws: the open workspace (calls already there are kept; duplicates are skipped).
        paths: log files or folders; empty to analyze the calls already stored.
        format: adapter to force (``None``: detect per file).
        mapping: ``--map`` fields.
        options: format-specific adapter options (``batch_input``).
        config: effective configuration (defaults + ``levers.toml`` when ``None``).
        embedder: the embedder (``None``: ``[embed] embedder`` from the config, ``auto``
            resolved by :func:`resolve_embedder`).
        since: restrict the summary to a period (``7d`` before the newest call, or a date).
        recluster: fit categories afresh instead of keeping the stored ones' ids.
        exclude: real paths to leave out when reading folders (the summary being written).
        engine: where the distinct queries not embedded yet are embedded
            (:mod:`levers_cli.engine`; ``None``: in this process).
        progress: progress callback for a CLI, ``progress(stage, advance, total)``; stages
            ``ingest`` (total unknown: 0), ``embed``, ``cluster``, ``assign``.

    Raises:
        WorkspaceError: no calls to analyze (``paths`` held none, or none is given and the
            workspace holds none).
        LeversError: any input, format, mapping, config or model-loading problem.
    """
    config = config or load_config()
    quality = _quality_outputs(ws, paths, options)
    if quality is not None:
        done = set(p for p in (f["path"] for f in quality.files))
        paths = [p for p in paths if p not in done]
        if not paths and ws.count("calls") and not ws.count("calls", f"{CATEGORY_ID} IS NULL"):
            # only shadow/judge results: no call changed, the analysis stands as it is
            summary = summarize(
                ws, config, since=since, ingest=IngestResult(run_id=0).as_dict(),
                categorization={"skipped": "only quality result files were read"},
            )  # fmt: skip
            summary["quality_results"] = {**quality.as_dict(), "only": True}
            return AnalysisResult(IngestResult(run_id=0), summary)
    if paths:
        ingest_progress = (lambda stage, n: progress(stage, n, 0)) if progress else None
        ingested = ingest_files(
            ws,
            paths,
            format=format,
            mapping=mapping,
            options=options,
            progress=ingest_progress,
            command="analyze",
            exclude=exclude,
        )
        if progress is not None:  # the ingest bar's total was unknown until now
            progress("ingest", 0, ingested.read)
    else:
        ws.require_calls()
        ingested = IngestResult(run_id=0)  # nothing read: run 0 is no run of the workspace
    if ws.count("calls") == 0:
        raise WorkspaceError(
            f"no calls to analyze: {', '.join(paths)} held no readable records "
            f"(read {ingested.read}, skipped {ingested.skipped}, rejected {ingested.rejected})"
        )
    link_conversations(ws, float(config.get("conversations", "retry_window_s")))
    pricing = price_calls(ws, config)
    if embedder is None:
        embedder, choice = resolve_embedder(ws, config)
    else:
        choice = EmbedderChoice(embedder.name, "given by the caller")
    if progress is not None:
        progress(f"embedder: {choice.name} ({choice.reason})", 1, 1)
    categorized = categorize(
        ws,
        embedder,
        cluster_params(config),
        keywords=config.get("cluster", "keywords_per_category"),
        exemplars=config.get("cluster", "exemplars_per_category"),
        recluster=recluster,
        progress=progress,
        engine=engine,
        feature_keys=list(config.get("cluster", "feature_keys")),
        feature_min_calls=int(config.get("cluster", "feature_min_calls")),
        feature_min_prompts=int(config.get("cluster", "feature_min_prompts")),
    )
    summary = summarize(
        ws,
        config,
        since=since,
        ingest=ingested.as_dict(),
        prices=pricing.as_dict(),
        categorization={**asdict(categorized), "embedder_choice": asdict(choice)},
    )
    if quality is not None:
        summary["quality_results"] = quality.as_dict()
    return AnalysisResult(ingested, summary)


def _quality_outputs(
    ws: Workspace, paths: list[str], options: dict[str, Any] | None
) -> QualityResults | None:
    """Read the files among ``paths`` that are batch output of a shadow or judge export
    (their ``custom_id``\\ s were registered by it) as variants and grades
    (:mod:`levers_cli.quality.results`); ``None`` when there is none."""
    if not paths or not ws.count("quality_requests"):
        return None
    found = [p for p in paths if p != "-" and os.path.isfile(p) and is_quality_output(ws, p)]
    if not found:
        return None
    batch_input = (options or {}).get("batch_input") or []
    if isinstance(batch_input, str):
        batch_input = [batch_input]
    return read_quality_outputs(ws, found, [str(p) for p in batch_input])
