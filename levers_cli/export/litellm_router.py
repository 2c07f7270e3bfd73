"""The LiteLLM proxy files of ``levers export router-config``.

- ``litellm-config.yaml``: Auto Routing, LiteLLM's current auto router
  (``model: auto_router/complexity_router``; docs.litellm.ai/docs/proxy/auto_routing,
  docs.litellm.ai/docs/autorouter_sdk/classifiers; schema: ``ComplexityRouterConfig`` in
  ``litellm/router_strategy/complexity_router/config.py``, LiteLLM 1.110). levers' routes are
  its tiers (``tiers``: tier name → ``model_list`` entry; one tier per route, one for the
  default route, one per keyword route), levers' keyword overrides its ``keyword_tier_rules``
  (matched before any classifier, whole word and any case, as ``levers route`` matches
  them), and levers' own router its classifier (``classifier_type: custom``,
  ``classifier_plugin: levers_classifier.classifier``: :mod:`levers_cli.export.
  litellm_classifier`). A request the classifier declines (no user text) or that fails goes
  to the default route (``classifier_fallback: default_model``).
- ``levers_classifier.py``: the plugin module LiteLLM imports from the config's folder.
- ``litellm-config-semantic.yaml``: the semantic auto router
  (``auto_router_config_path`` → ``semantic-router-0x.json``,
  ``auto_router_default_model``, ``auto_router_embedding_model``), which LiteLLM's docs
  mark deprecated since 2026-10 in favour of Auto Routing
  (docs.litellm.ai/docs/proxy/auto_routing_semantic); kept for deployments that run it.
  Its embedding model is a ``model_list`` entry served locally (Ollama's ``all-minilm``,
  the all-MiniLM family levers embeds with, at ``http://localhost:11434``) unless
  ``[export] router_litellm_embedding_model`` says otherwise: never a hosted API by
  default.
- ``litellm-README.md``: what each file is and how to start the proxy with it.

Both configs expose the router as ``model_name: levers-auto-router``, so clients keep the
model name when a deployment moves from the semantic router to Auto Routing.
"""

from __future__ import annotations

from typing import Any

#: The ``model_name`` clients call.
AUTO_ROUTER = "levers-auto-router"
#: The classifier module written beside the config, and the dotted path naming its object.
CLASSIFIER_FILE = "levers_classifier.py"
CLASSIFIER_PATH = "levers_classifier.classifier"
AUTO_ROUTING_HEADER = """\
# LiteLLM proxy config: Auto Routing (auto_router/complexity_router) with levers' routes as
# tiers, its keyword overrides as keyword_tier_rules, and levers' router as the classifier.
# Written by `levers export router-config`. Keep levers_classifier.py and levers-router.json
# beside this file, install levers-cli in the proxy's Python environment, then:
#   litellm --config litellm-config.yaml
# Clients call model "levers-auto-router". See litellm-README.md.
"""
SEMANTIC_HEADER = """\
# DEPRECATED upstream: LiteLLM's semantic auto router (auto_router_config_path) is marked
# deprecated since 2026-10 in favour of Auto Routing (docs.litellm.ai/docs/proxy/
# auto_routing_semantic). Kept for deployments that run it; new ones: litellm-config.yaml.
# Written by `levers export router-config`. The embedding entry points at a local server
# (Ollama's all-minilm by default), not a hosted embedding API. See litellm-README.md.
"""
CLASSIFIER_SOURCE = '''\
"""levers' router as the classifier of LiteLLM Auto Routing.

Written by `levers export router-config`. LiteLLM's proxy imports this file from the
folder of litellm-config.yaml (complexity_router_config.classifier_plugin:
levers_classifier.classifier). It needs levers-cli installed in the proxy's Python
environment and levers-router.json beside this file.
"""

from pathlib import Path

from levers_cli.export.litellm_classifier import LeversClassifier

classifier = LeversClassifier(Path(__file__).with_name("levers-router.json"))
'''


def route_models(native: dict) -> list[dict[str, Any]]:
    """``model_list`` entries: one per route (``model_name`` = route name → its target
    model), one for the default route, one per keyword route."""
    entries = {r["name"]: r["model"] for r in native["routes"]}
    entries[native["default_route"]["name"]] = native["default_route"]["model"]
    for rule in native.get("keyword_overrides", {}).values():
        entries.setdefault(rule["route"], rule["model"])
    return [{"model_name": n, "litellm_params": {"model": m}} for n, m in entries.items()]


def keyword_rules(native: dict) -> list[dict[str, Any]]:
    """levers' keyword overrides as ``keyword_tier_rules``: one rule per keyword route."""
    words: dict[str, list[str]] = {}
    for word, rule in native.get("keyword_overrides", {}).items():
        words.setdefault(rule["route"], []).append(word)
    return [{"keywords": found, "tier": route} for route, found in words.items()]


def auto_routing_config(native: dict, classifier: str = CLASSIFIER_PATH) -> dict[str, Any]:
    """The Auto Routing proxy config of a native router config.

    Args:
        native: the ``levers-router.json`` content.
        classifier: the dotted path of the classifier plugin object.

    Returns:
        ``{"model_list": [...]}``: the route entries and the ``levers-auto-router`` entry.
        Tier order is severity order for LiteLLM (when a prompt matches keywords of two
        rules, the later tier wins): routes, then the default route, then keyword routes.
    """
    entries = route_models(native)
    default = native["default_route"]["name"]
    router_config: dict[str, Any] = {
        "classifier_type": "custom",
        "classifier_plugin": classifier,
        "classifier_fallback": "default_model",
        "default_model": default,
        "tiers": {e["model_name"]: e["model_name"] for e in entries},
    }
    rules = keyword_rules(native)
    if rules:
        router_config["keyword_tier_rules"] = rules
    entries.append({
        "model_name": AUTO_ROUTER,
        "litellm_params": {
            "model": "auto_router/complexity_router",
            "complexity_router_default_model": default,
            "complexity_router_config": router_config,
        },
    })  # fmt: skip
    return {"model_list": entries}


def semantic_config(native: dict, sr_path: str, embedding: dict[str, Any]) -> dict[str, Any]:
    """The (deprecated) semantic auto router proxy config of a native router config.

    Args:
        native: the ``levers-router.json`` content.
        sr_path: the semantic-router 0.x route file (``semantic-router-0x.json``).
        embedding: the ``litellm_params`` of the embedding model the auto router calls.
    """
    keyword_routes = {rule["route"] for rule in native.get("keyword_overrides", {}).values()}
    entries = [e for e in route_models(native) if e["model_name"] not in keyword_routes]
    entries.append({"model_name": "levers-embedding", "litellm_params": dict(embedding)})
    entries.append({
        "model_name": AUTO_ROUTER,
        "litellm_params": {
            "model": "auto_router/levers",
            "auto_router_config_path": sr_path,
            "auto_router_default_model": native["default_route"]["name"],
            "auto_router_embedding_model": "levers-embedding",
        },
    })  # fmt: skip
    return {"model_list": entries}


def readme(native: dict) -> str:
    """``litellm-README.md``: the files, how to run them, and each tier's model."""
    rows = "\n".join(
        f"| `{e['model_name']}` | `{e['litellm_params']['model']}` |" for e in route_models(native)
    )
    return f"""# LiteLLM proxy files (written by `levers export router-config`)

- `litellm-config.yaml`: Auto Routing (`auto_router/complexity_router`): levers' routes as
  tiers, its keyword overrides as `keyword_tier_rules`, levers' router as the classifier
  (`classifier_type: custom`).
- `levers_classifier.py`: the classifier plugin LiteLLM imports from this folder; it loads
  `levers-router.json` (levers' native router, as `levers route` runs it).
- `litellm-config-semantic.yaml`: **deprecated upstream**: the semantic auto router
  (`auto_router_config_path`), marked deprecated by LiteLLM since 2026-10 in favour of Auto
  Routing; kept for deployments that run it. Its routes: `semantic-router-0x.json`.

## Auto Routing

1. Keep `litellm-config.yaml`, `levers_classifier.py` and `levers-router.json` together.
2. Install levers in the proxy's Python environment (`pip install levers-cli`, with the
   embedder the routes were built with; the bundled MiniLM runs locally, no embedding API
   is called).
3. `litellm --config litellm-config.yaml`; clients call model `{AUTO_ROUTER}`.

Keyword rules are matched by LiteLLM before the classifier (whole word, any case). When a
prompt holds keywords of two rules, LiteLLM picks the later tier of `tiers`, where
`levers route` picks the first keyword in the text. A request without user text, or one
the classifier fails on, goes to the default route (`classifier_fallback: default_model`).
Tier names outside SIMPLE / MEDIUM / COMPLEX / REASONING with a custom classifier are one of
LiteLLM's licensed auto-router customizations: a proxy without the `auto_router` license
feature runs one such router.

## Tiers

| tier (`model_name`) | model |
|---|---|
{rows}

## Semantic auto router (deprecated)

`litellm --config litellm-config-semantic.yaml` needs LiteLLM's `semantic-router` extra
(`pip install 'litellm[semantic-router]'`: semantic-router 0.1.x) in the proxy's environment
and the embedding entry `levers-embedding` served: by default Ollama's
`all-minilm` on `http://localhost:11434` (`ollama pull all-minilm`); set
`[export] router_litellm_embedding_model` and `router_litellm_embedding_api_base` in
levers.toml to use another server.
"""
