"""The suite owns its world (conftest.py): HOME is an empty folder of pytest's, each test has
its own working folder, cache folder and workspace, the CLI's default outputs land there, and
plain ``pytest`` imports the shared helpers as ``python -m pytest`` does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from typer.testing import CliRunner

from levers_cli.cli import app
from levers_cli.embed.base import cache_dir
from levers_cli.embed.minilm import MiniLMEmbedder
from levers_cli.store import default_workspace_path
from tests.helpers import ROOT, openai_pair, user_files

#: The world each test of this module saw, by test name.
SEEN: dict[str, Path] = {}


def test_home_is_an_empty_folder_of_pytest(sandbox, tmp_path_factory) -> None:
    base = tmp_path_factory.getbasetemp()
    assert Path.home() == sandbox["home"] and Path.home().is_relative_to(base)
    assert os.path.expanduser("~/.cache/levers").startswith(str(base))
    # nothing any test wrote so far (the session fails at its end if anything appears later)
    assert list(sandbox["home"].rglob("*")) == []
    assert not any(os.environ.get(v) for v in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME"))
    assert Path(tempfile.gettempdir()) == sandbox["tmp"]


def test_each_test_has_its_own_cache_workspace_and_folder(own_world, tmp_path_factory) -> None:
    base = tmp_path_factory.getbasetemp()
    assert Path.cwd() == own_world["cwd"] and Path.cwd().is_relative_to(base)
    assert cache_dir() == own_world["cache"] and list(cache_dir().iterdir()) == [
        cache_dir() / "minilm-onnx"
    ]
    assert default_workspace_path() == str(own_world["workspace"])
    assert not own_world["workspace"].exists()
    SEEN["cache"] = own_world["cache"]


def test_another_test_gets_another_world(own_world) -> None:
    assert "cache" in SEEN  # the test above ran first (file order)
    assert own_world["cache"] != SEEN["cache"]


def test_only_the_onnx_export_is_shared(own_world, sandbox) -> None:
    """The MiniLM ONNX export (a product of the installed model alone) is made once per
    session, in pytest's temp folder, and seen through each test's own cache folder."""
    path = MiniLMEmbedder().onnx_path
    assert path.is_relative_to(own_world["cache"] / "minilm-onnx")
    assert path.resolve().is_relative_to(sandbox["minilm-onnx"].resolve())


def test_cli_defaults_land_in_the_test_world(own_world, registered_fake, sandbox) -> None:
    """``levers analyze`` and ``levers report`` with no -w / -o write ./reports/ and the
    workspace of this test, never the repository's reports/ or the user's HOME."""
    before = user_files(ROOT)
    log = own_world["cwd"] / "calls.jsonl"
    queries = ["reset my password", "cancel my plan", "reset my password"] * 4
    rows = [
        openai_pair(
            f"c{i}",
            "gpt-4o-mini",
            [{"role": "user", "content": q}],
            "ok",
            1_767_225_600 + i * 3600,
            12,
            3,
        )
        for i, q in enumerate(queries)
    ]
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    runner = CliRunner()
    result = runner.invoke(app, ["analyze", log.name, "--embedder", "fake"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["report", "--to", "md"])
    assert result.exit_code == 0, result.output
    written = sorted(str(p.relative_to(own_world["cwd"])) for p in own_world["cwd"].rglob("*"))
    assert written == [
        "calls.jsonl",
        "reports",
        "reports/analysis.json",
        "reports/levers-report.md",
    ]
    assert own_world["workspace"].exists()
    assert user_files(ROOT) == before
    assert list(sandbox["home"].rglob("*")) == []


def test_the_guard_sees_what_a_test_would_write(tmp_path: Path) -> None:
    """The session's closing check (``user_files``) notices a new or rewritten file
    in reports/ or .levers/ and a new top-level entry, and ignores pytest's own cache."""
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "analysis.json").write_text("{}")
    before = user_files(tmp_path)
    assert before["reports/analysis.json"] is not None
    (tmp_path / ".pytest_cache").mkdir()
    assert user_files(tmp_path) == before
    os.utime(tmp_path / "reports" / "analysis.json", ns=(1, 1))
    (tmp_path / ".levers").mkdir()
    (tmp_path / ".levers" / "levers.duckdb").write_bytes(b"x")
    (tmp_path / "stray.png").write_bytes(b"x")
    after = user_files(tmp_path)
    changed = {k for k in set(before) | set(after) if before.get(k, 0) != after.get(k, 0)}
    assert changed == {"reports/analysis.json", ".levers", ".levers/levers.duckdb", "stray.png"}


def test_plain_pytest_imports_every_test_file(own_world) -> None:
    """``pytest`` (not ``python -m pytest``, which puts the working folder on sys.path) finds
    ``tests.helpers`` through pyproject's ``pythonpath``: every file is collected."""
    pytest_bin = Path(sys.executable).with_name("pytest")
    result = subprocess.run(
        [str(pytest_bin), "--collect-only", "-q", "-p", "no:cacheprovider", str(ROOT / "tests")],
        cwd=own_world["cwd"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    collected = {line.split("::")[0] for line in result.stdout.splitlines() if "::" in line}
    files = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("test_*.py")}
    assert len(files) > 60 and any("/levers/" in f for f in files)  # the package's mirror
    assert collected == files
