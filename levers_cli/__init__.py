"""levers: read the logs of an application's LLM calls, find where the money goes, and plan
how to spend less.

The library is usable without the CLI (``docs/python-api.md`` shows each entry point in
use)::

    import levers_cli as lv

    with lv.Workspace("levers.duckdb") as ws:
        lv.analyze(ws, ["logs.jsonl"])
        result = lv.simulate(ws, lv.load_config(), lv.all_levers())

Every name in :data:`__all__` is the library's own object (the real function, with its real
signature), imported on first use (PEP 562 ``__getattr__``): ``import levers_cli`` loads
nothing but the version, and ``levers_cli.Workspace`` does not load numpy, polars or torch.

Why the names are resolved from strings here: this package root stands above every layer of
the layers contract (``[tool.importlinter]`` in ``pyproject.toml`` places its subpackages;
the root is the facade over all of them, the CLI included), and no module inside the package
imports it. The ``TYPE_CHECKING`` block below gives type checkers and editors the same names
and shows import-linter and ``scripts/check_import_cycles.py`` the edges, so a module that
imported the root would close a cycle and fail CI.
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

from levers_cli.version import __version__

if TYPE_CHECKING:
    from levers_cli.analysis import AnalysisResult, analyze
    from levers_cli.budget import BudgetPlan, solve_budget
    from levers_cli.config import Config, load_config
    from levers_cli.embed import Embedder, EmbedSettings, get_embedder
    from levers_cli.errors import LeversError, UsageError, WorkspaceError
    from levers_cli.export import ExportResult, run_export
    from levers_cli.export.batch import export_batch
    from levers_cli.export.caps import export_caps
    from levers_cli.export.lora import export_lora
    from levers_cli.export.router_config import export_router_config
    from levers_cli.export.workflows import export_workflows
    from levers_cli.levers import (
        LEVERS,
        WATERFALL,
        BatchLever,
        CachingLever,
        CapsLever,
        ContextLever,
        Finding,
        Lever,
        LoraLever,
        MaterializeLever,
        RoutingLever,
        all_levers,
    )
    from levers_cli.report import gather as gather_report
    from levers_cli.report import render_html, render_markdown
    from levers_cli.router import RouteMatch, Router
    from levers_cli.simulate import SimulationResult, simulate
    from levers_cli.store import Workspace

#: public name → (module, name there), imported on first use.
_API: dict[str, tuple[str, str]] = {
    # the workspace, configuration, errors
    "Workspace": ("levers_cli.store", "Workspace"),
    "load_config": ("levers_cli.config", "load_config"),
    "Config": ("levers_cli.config", "Config"),
    "LeversError": ("levers_cli.errors", "LeversError"),
    "UsageError": ("levers_cli.errors", "UsageError"),
    "WorkspaceError": ("levers_cli.errors", "WorkspaceError"),
    # ingest → price → embed and cluster → summarize
    "analyze": ("levers_cli.analysis", "analyze"),
    "AnalysisResult": ("levers_cli.analysis", "AnalysisResult"),
    "get_embedder": ("levers_cli.embed", "get_embedder"),
    "Embedder": ("levers_cli.embed", "Embedder"),
    "EmbedSettings": ("levers_cli.embed", "EmbedSettings"),
    # the levers, in the order they compound
    "all_levers": ("levers_cli.levers", "all_levers"),
    "LEVERS": ("levers_cli.levers", "LEVERS"),
    "WATERFALL": ("levers_cli.levers", "WATERFALL"),
    "Lever": ("levers_cli.levers", "Lever"),
    "Finding": ("levers_cli.levers", "Finding"),
    "RoutingLever": ("levers_cli.levers", "RoutingLever"),
    "ContextLever": ("levers_cli.levers", "ContextLever"),
    "CachingLever": ("levers_cli.levers", "CachingLever"),
    "CapsLever": ("levers_cli.levers", "CapsLever"),
    "MaterializeLever": ("levers_cli.levers", "MaterializeLever"),
    "LoraLever": ("levers_cli.levers", "LoraLever"),
    "BatchLever": ("levers_cli.levers", "BatchLever"),
    # the waterfall and the budget
    "simulate": ("levers_cli.simulate", "simulate"),
    "SimulationResult": ("levers_cli.simulate", "SimulationResult"),
    "solve_budget": ("levers_cli.budget", "solve_budget"),
    "BudgetPlan": ("levers_cli.budget", "BudgetPlan"),
    # reports
    "gather_report": ("levers_cli.report", "gather"),
    "render_html": ("levers_cli.report", "render_html"),
    "render_markdown": ("levers_cli.report", "render_markdown"),
    # exports
    "run_export": ("levers_cli.export", "run_export"),
    "ExportResult": ("levers_cli.export", "ExportResult"),
    "export_router_config": ("levers_cli.export.router_config", "export_router_config"),
    "export_caps": ("levers_cli.export.caps", "export_caps"),
    "export_batch": ("levers_cli.export.batch", "export_batch"),
    "export_lora": ("levers_cli.export.lora", "export_lora"),
    "export_workflows": ("levers_cli.export.workflows", "export_workflows"),
    # the runtime router
    "Router": ("levers_cli.router", "Router"),
    "RouteMatch": ("levers_cli.router", "RouteMatch"),
}

#: the public names (a test checks they are exactly ``_API``'s and the version)
__all__ = [
    "LEVERS",
    "WATERFALL",
    "AnalysisResult",
    "BatchLever",
    "BudgetPlan",
    "CachingLever",
    "CapsLever",
    "Config",
    "ContextLever",
    "EmbedSettings",
    "Embedder",
    "ExportResult",
    "Finding",
    "Lever",
    "LeversError",
    "LoraLever",
    "MaterializeLever",
    "RouteMatch",
    "Router",
    "RoutingLever",
    "SimulationResult",
    "UsageError",
    "Workspace",
    "WorkspaceError",
    "__version__",
    "all_levers",
    "analyze",
    "export_batch",
    "export_caps",
    "export_lora",
    "export_router_config",
    "export_workflows",
    "gather_report",
    "get_embedder",
    "load_config",
    "render_html",
    "render_markdown",
    "run_export",
    "simulate",
    "solve_budget",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use, and keep the name here after that."""
    try:
        module, attribute = _API[name]
    except KeyError:
        raise AttributeError(f"module 'levers_cli' has no attribute {name!r}") from None
    value = getattr(import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})


class _Package(ModuleType):
    """This package's module type: where a public name is also the name of the submodule
    that defines it (``simulate``, in ``levers_cli/simulate.py``), the import system's
    ``setattr(levers_cli, "simulate", <module>)`` after importing that submodule keeps the
    public function instead, so ``levers_cli.simulate`` is the function whichever module was
    imported first. The submodule stays in ``sys.modules`` for ``from levers_cli.simulate
    import …``."""

    def __setattr__(self, name: str, value: Any) -> None:
        public = _API.get(name)
        if public is not None and isinstance(value, ModuleType) and value.__name__ == public[0]:
            value = getattr(value, public[1])
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
