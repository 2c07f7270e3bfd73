"""Shared fixtures: a deterministic fake embedder and temp workspaces. Shared helpers (paths
to ../shared, the fake embedder's class, the analyzed sample) are in ``tests/helpers.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from levers_cli.embed import EMBEDDERS
from levers_cli.store import Workspace
from tests.helpers import (
    CASES,
    DATA,
    FIXTURES,
    ROOT,
    SAMPLE_LOGS,
    SHARED,
    FakeEmbedder,
    analyzed_sample_copy,
    need_shared,
    openai_pair,
)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def registered_fake(monkeypatch: pytest.MonkeyPatch) -> str:
    """Register the fake embedder as ``fake`` for CLI tests (``--embedder fake``)."""
    monkeypatch.setitem(EMBEDDERS, "fake", FakeEmbedder)
    return "fake"


@pytest.fixture
def ws(tmp_path: Path):
    with Workspace(tmp_path / "ws.duckdb") as workspace:
        yield workspace


#: The helpers stay importable from ``tests.conftest`` for tests written before helpers.py.
__all__ = [
    "CASES",
    "DATA",
    "FIXTURES",
    "ROOT",
    "SAMPLE_LOGS",
    "SHARED",
    "FakeEmbedder",
    "analyzed_sample_copy",
    "need_shared",
    "openai_pair",
]
