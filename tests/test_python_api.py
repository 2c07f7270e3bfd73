"""The Python API (``import levers_cli``): the documented names, imported on first use with
their real signatures, and ``docs/python-api.md``'s examples run in order on a hand-made log."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import levers_cli
from levers_cli.embed import EMBEDDERS
from tests.helpers import ROOT, openai_pair

DOC = ROOT / "docs" / "python-api.md"
HEAVY = ("torch", "sentence_transformers", "transformers", "umap", "hdbscan", "sklearn",
         "numpy", "polars", "duckdb", "pyarrow")  # fmt: skip


def _run(code: str) -> str:
    """``code``'s output in a fresh interpreter that imports this checkout's levers_cli."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return out.stdout.strip()


def test_import_loads_nothing_heavy():
    """``import levers_cli`` loads only the version; the workspace class loads no numpy."""
    loaded = _run(
        f"import sys, levers_cli; before = [m for m in {HEAVY!r} if m in sys.modules]; "
        "levers_cli.Workspace; levers_cli.LeversError; levers_cli.load_config; "
        f"print(before, [m for m in {HEAVY!r} if m in sys.modules])"
    )
    assert loaded == "[] []"


def test_every_public_name_is_the_library_object_with_its_real_signature():
    from levers_cli.analysis import analyze
    from levers_cli.report import gather
    from levers_cli.simulate import simulate
    from levers_cli.store import Workspace

    expected = {
        "analyze", "simulate", "load_config", "Workspace", "LeversError", "Router",
        "gather_report", "render_html", "render_markdown", "export_router_config", "run_export",
        "all_levers", "RoutingLever", "BatchLever", "solve_budget", "get_embedder",
    }  # fmt: skip
    assert expected <= set(levers_cli.__all__)
    assert set(levers_cli.__all__) == {"__version__", *levers_cli._API}
    for name in levers_cli.__all__:
        assert getattr(levers_cli, name) is not None, name
    assert levers_cli.analyze is analyze
    assert levers_cli.Workspace is Workspace and levers_cli.gather_report is gather
    parameters = inspect.signature(levers_cli.analyze).parameters
    assert list(parameters)[:2] == ["ws", "paths"] and "embedder" in parameters
    assert levers_cli.simulate is simulate  # the function, though a submodule has its name
    assert sorted(dir(levers_cli)) == dir(levers_cli) and "solve_budget" in dir(levers_cli)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        levers_cli.nope  # noqa: B018


def test_simulate_is_the_function_whichever_module_was_imported_first():
    """``levers_cli/simulate.py`` shares its name with the function: importing the module
    first (the budget solver does) still leaves ``levers_cli.simulate`` the function."""
    assert (
        _run(
            "import levers_cli.budget, levers_cli, inspect; "
            "from levers_cli.simulate import SimulationResult; "
            "print(inspect.isfunction(levers_cli.simulate), levers_cli.simulate.__module__)"
        )
        == "True levers_cli.simulate"
    )


def _log(path: Path) -> None:
    """Four kinds of support query, each asked three ways a day for 14 days."""
    kinds = {
        "gpt-4o-mini": [
            "How do I reset my password?", "I forgot my password, how can I reset it?",
            "password reset link is not working", "Where is my invoice for March?",
            "Send me a copy of my last invoice", "download my invoice as PDF",
            "Translate 'good morning' to French", "translate to German: thank you",
            "Translate this sentence to Spanish: see you soon",
        ],
        "gpt-4o": [
            "Summarize this meeting transcript: we agreed to ship on Friday",
            "Summarize the article about solar panels", "give me a summary of this email thread",
        ],
    }  # fmt: skip
    rows = []
    for day in range(14):
        for model, queries in kinds.items():
            for query in queries:
                n = len(rows)
                messages = [
                    {"role": "system", "content": "You are Acme's support assistant. Be brief."},
                    {"role": "user", "content": query},
                ]
                created = 1_767_225_600 + day * 86_400 + n * 60
                rows.append(openai_pair(f"c{n}", model, messages, "Done.", created, 900, 120))
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def python_blocks(markdown: str) -> list[str]:
    """The fenced ```python blocks of ``markdown``, in order."""
    return re.findall(r"^```python\n(.*?)^```$", markdown, flags=re.M | re.S)


def test_the_documented_examples_run(tmp_path, monkeypatch, registered_fake, capsys):
    """Each block of docs/python-api.md, in order, in one namespace, in an empty folder with
    a hand-made log and a levers.toml choosing the fake embedder (so no model loads)."""
    monkeypatch.chdir(tmp_path)
    _log(tmp_path / "logs.jsonl")
    (tmp_path / "levers.toml").write_text(f'[embed]\nembedder = "{registered_fake}"\n')
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 8
    namespace: dict = {"__name__": "docs"}
    registered = dict(EMBEDDERS)  # the page registers an embedder of its own: undone below
    try:
        for number, block in enumerate(blocks, 1):
            try:
                exec(compile(block, f"{DOC.name} block {number}", "exec"), namespace)
            except Exception as exc:  # name the block that failed
                raise AssertionError(f"{DOC.name} block {number} failed: {exc!r}\n{block}") from exc
    finally:
        EMBEDDERS.clear()
        EMBEDDERS.update(registered)
    printed = capsys.readouterr().out
    assert printed.startswith("168 168\n")  # 14 days × 12 queries, all stored
    assert (tmp_path / "exports" / "router" / "levers-router.json").is_file()
    assert (tmp_path / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert namespace["match"].model in {"gpt-4o", "gpt-4o-mini"}
    assert "not in the Hugging Face cache" in printed  # the embedders section's fallback
    assert namespace["again"].summary["categorization"]["embedder"].startswith("tfidf:")
    assert "(1, 26)" in printed
