"""``levers export router-config`` for LiteLLM's Auto Routing (``auto_router/complexity_router``)
on the analyzed sample (fake embedder).

The config is checked by LiteLLM's own code (1.110; tests skip without it): the proxy's
plugin resolver ``get_instance_fn`` imports the exported ``levers_classifier.py`` from the
config's folder, the proxy's start-up checks (settings placement, licensed capabilities)
pass, ``ComplexityRouterConfig`` validates it, and a ``litellm.Router`` built from the
``model_list`` routes requests: each route's utterance to its route's model through levers'
classifier, a keyword override through LiteLLM's own ``keyword_tier_rules``. No request
leaves the machine: the pre-routing hook only picks the model.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
import yaml

from levers_cli.config import load_config
from levers_cli.export import run_export
from levers_cli.export.litellm_classifier import LeversClassifier
from tests.helpers import FakeEmbedder, analyzed_sample_copy

# LiteLLM's TypedDicts use ReadOnly items, which pydantic warns about when building them
pytestmark = pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from levers_cli.store import Workspace

    path = analyzed_sample_copy(tmp_path_factory)
    out = tmp_path_factory.mktemp("router")
    with Workspace(path, create=False) as ws:
        run_export("router-config", ws, load_config(None), str(out), embedder=FakeEmbedder())
    native = json.loads((out / "levers-router.json").read_text())
    proxy = yaml.safe_load((out / "litellm-config.yaml").read_text())
    return out, native, proxy


def _auto(proxy: dict) -> dict:
    return next(e for e in proxy["model_list"] if e["model_name"] == "levers-auto-router")


@pytest.fixture
def litellm(monkeypatch):
    """LiteLLM, imported with its bundled model cost map (its default fetches one online)."""
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    return pytest.importorskip("litellm")


def test_routes_are_tiers_and_keyword_overrides_are_rules(exported):
    out, native, proxy = exported
    models = {e["model_name"]: e["litellm_params"]["model"] for e in proxy["model_list"]}
    config = _auto(proxy)["litellm_params"]
    assert config["model"] == "auto_router/complexity_router"
    router = config["complexity_router_config"]
    assert router["classifier_type"] == "custom"
    assert router["classifier_plugin"] == "levers_classifier.classifier"
    assert (out / "levers_classifier.py").exists()
    # one tier per route, the default route and the keyword route, each its route's model
    names = [r["name"] for r in native["routes"]]
    assert list(router["tiers"]) == [*names, "default", "keyword-strong"]
    for route in native["routes"]:
        assert models[router["tiers"][route["name"]]] == route["model"]
    assert models["default"] == native["default_route"]["model"] == "gpt-4o"
    # levers' keyword overrides (defaults.toml: OWASP and CVE → the strong tier)
    rules = [{"keywords": ["OWASP", "CVE"], "tier": "keyword-strong"}]
    assert router["keyword_tier_rules"] == rules
    assert models["keyword-strong"] == "gpt-4o"
    # a request levers' router declines or fails on goes to the default route
    assert router["classifier_fallback"] == "default_model"
    assert router["default_model"] == config["complexity_router_default_model"] == "default"
    assert (out / "litellm-config.yaml").read_text().startswith("# LiteLLM proxy config")
    readme = (out / "litellm-README.md").read_text()
    assert "deprecated upstream" in readme and "`levers-auto-router`" in readme


def test_classifier_names_the_route_levers_would(exported, registered_fake):
    """The plugin answers what ``levers route`` answers, from the messages LiteLLM hands it."""
    out, native, _ = exported
    classifier = LeversClassifier(out / "levers-router.json")
    route = native["routes"][3]
    context = SimpleNamespace(structured_messages=[
        {"role": "system", "content": "You are Aria."},
        {"role": "user", "content": [{"type": "text", "text": route["utterances"][0]}]},
    ])  # fmt: skip
    assert asyncio.run(classifier.classify(context)) == route["name"]
    assert route["name"] in classifier.tiers and "keyword-strong" in classifier.tiers
    empty = SimpleNamespace(structured_messages=[{"role": "system", "content": "x"}])
    assert asyncio.run(classifier.classify(empty)) is None  # no user text: LiteLLM falls back


def test_litellm_loads_the_config_and_routes_through_levers(exported, registered_fake, litellm):
    from litellm.proxy.types_utils.utils import get_instance_fn
    from litellm.router_api import RoutingContext
    from litellm.router_strategy.auto_router import auto_router_model_naming as naming
    from litellm.router_strategy.complexity_router.config import ComplexityRouterConfig

    out, native, proxy = exported
    entry = _auto(proxy)
    settings = entry["litellm_params"]["complexity_router_config"]
    # the proxy's start-up checks: settings under complexity_router_config, and no licensed
    # capability over an unlicensed proxy's limit of one router each
    assert naming.validate_complexity_router_config_placement(entry["litellm_params"]) is None
    for capability in naming.GATED_AUTO_ROUTER_CAPABILITIES:
        held = naming.count_capability_routers(proxy["model_list"], capability=capability)
        assert naming.capability_limit_violation(capability=capability, held=held, limit=1) is None
    # the proxy resolves the dotted path from the config's folder (resolve_classifier_plugin)
    plugin = get_instance_fn(
        settings["classifier_plugin"], config_file_path=str(out / "litellm-config.yaml")
    )
    assert isinstance(plugin, LeversClassifier)
    settings["classifier_plugin"] = plugin
    assert naming.validate_complexity_router_config_write(settings) is None
    parsed = ComplexityRouterConfig.model_validate(settings)
    assert parsed.has_custom_tiers and parsed.tier_names() == tuple(settings["tiers"])

    router = litellm.Router(model_list=proxy["model_list"])
    routing = RoutingContext(router)

    async def route(text: str):
        messages = [{"role": "user", "content": text}]
        return await routing.pre_routing_hook(
            model="levers-auto-router", request_kwargs={}, messages=messages
        )

    for listed in native["routes"][:8]:
        decision = asyncio.run(route(listed["utterances"][0]))
        assert decision.model == listed["name"], listed["name"]
        assert decision.routing_decision["cause"] == "classifier_plugin"
    decision = asyncio.run(route("What does OWASP say about session fixation?"))
    assert decision.model == "keyword-strong"
    assert decision.routing_decision["cause"] == "literal_keyword_match"


def test_semantic_config_parses_as_litellm_params(exported, litellm):
    """LiteLLM's semantic auto router imports semantic-router 0.1.x (its extra pins
    ``semantic-router>=0.1.15,<1.0``), which cannot sit beside the 1.1 that levers validates
    its v1 files with, so the deprecated config is checked by LiteLLM's deployment model."""
    from litellm.types.router import Deployment

    out, _, _ = exported
    proxy = yaml.safe_load((out / "litellm-config-semantic.yaml").read_text())
    deployments = [Deployment(**entry) for entry in proxy["model_list"]]
    auto = next(d for d in deployments if d.model_name == "levers-auto-router")
    assert auto.litellm_params.auto_router_config_path == "semantic-router-0x.json"
    assert auto.litellm_params.auto_router_embedding_model == "levers-embedding"
    embedding = next(d for d in deployments if d.model_name == "levers-embedding")
    assert embedding.litellm_params.api_base == "http://localhost:11434"
