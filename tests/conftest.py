"""Fixtures: every test owns its world (HOME, cache folder, workspace, working folder, temp
folder), a deterministic fake embedder, temp workspaces. Shared helpers (paths to ../shared,
the fake embedder's class, the analyzed sample) are in ``tests/helpers.py``.

Tests own their world (STYLE §13): for the whole session ``HOME`` is an empty folder under
pytest's temp folder (nothing may appear in it: the session fails when something does), the
system temp folder is one of pytest's, and each test runs in its own working folder with its
own ``LEVERS_CACHE_DIR`` and ``LEVERS_WORKSPACE``. So the suite passes on a machine that has
never run levers, never reads what an earlier run left there, and never writes the user's
``./reports``, ``.levers/`` or ``~/.cache/levers``. One exception, for speed: every test's
cache shares ``minilm-onnx/`` (the bundled MiniLM exported to ONNX once per session, a
deterministic product of the installed model, ~30 s), still under pytest's temp folder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from levers_cli.embed import EMBEDDERS
from levers_cli.store import Workspace
from tests.helpers import (
    ROOT,
    FakeEmbedder,
    user_files,
)

# One compute thread per library (torch's OpenMP pool, numba, MKL) unless the caller set
# it. On a busy 2-core machine (CI's, or one running several suites) waiting OpenMP threads
# spin: the MiniLM fork test took 155 s with torch's default 2 threads at load average 4 and
# 25 s with OMP_NUM_THREADS=1 (measured here). Set when pytest loads this file, before any
# test imports torch (nothing above does); child processes (CLI subprocesses) inherit it.
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

#: Environment variables that would send a library's files somewhere other than ``HOME``.
_HOME_OVERRIDES = ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")


@pytest.fixture(scope="session", autouse=True)
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The session's empty ``HOME``, temp folder and shared ONNX folder, all under pytest's
    temp folder. On exit, fails the session when a file appeared in that ``HOME`` or one of
    the user's files (see :func:`tests.helpers.user_files`) was written."""
    places = {
        name: tmp_path_factory.mktemp(name, numbered=False)
        for name in ("home", "tmp", "minilm-onnx")
    }
    watched = {folder: user_files(folder) for folder in {ROOT, Path.cwd()}}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(places["home"]))
        for name in _HOME_OVERRIDES:
            mp.delenv(name, raising=False)
        # ONNX Runtime writes a telemetry device id in HOME when imported, unless this is set
        # then (levers' ONNX path sets it; a test importing onnxruntime first would not)
        mp.setenv("ORT_DISABLE_TELEMETRY", "1")
        # tiktoken's data-gym-cache, torch's inductor cache: in pytest's temp folder too
        mp.setenv("TMPDIR", str(places["tmp"]))
        mp.setattr(tempfile, "tempdir", str(places["tmp"]))
        yield places
    written = sorted(str(p.relative_to(places["home"])) for p in places["home"].rglob("*"))
    for folder, before in watched.items():
        after = user_files(folder)
        written += [
            str(folder / key)
            for key in sorted(set(before) | set(after))
            if before.get(key, "absent") != after.get(key, "absent")
        ]
    if written:
        pytest.fail(
            "the tests wrote outside pytest's temp folders (HOME is "
            f"{places['home']}): {', '.join(written[:20])}",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def own_world(
    sandbox: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Path]:
    """This test's working folder (the current one), ``LEVERS_CACHE_DIR`` and
    ``LEVERS_WORKSPACE`` (not created), in a fresh folder of its own."""
    world = tmp_path_factory.mktemp("world")
    places = {"cwd": world / "cwd", "cache": world / "cache", "workspace": world / "ws.duckdb"}
    places["cwd"].mkdir()
    places["cache"].mkdir()
    (places["cache"] / "minilm-onnx").symlink_to(sandbox["minilm-onnx"], target_is_directory=True)
    monkeypatch.chdir(places["cwd"])
    monkeypatch.setenv("LEVERS_CACHE_DIR", str(places["cache"]))
    monkeypatch.setenv("LEVERS_WORKSPACE", str(places["workspace"]))
    return places


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
