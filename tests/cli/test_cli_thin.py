"""The CLI translates, the library works (STYLE.md §1, §7): one place turns a library error
into its exit code, every exporter's command shares one body and the same options, and no
SQL or redaction lives in ``levers_cli/cli/``."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from typer.main import get_command
from typer.testing import CliRunner

from levers_cli.cli import app
from levers_cli.cli.output import LeversGroup
from levers_cli.errors import LeversError, UsageError, WorkspaceError
from levers_cli.export import EXPORTERS
from levers_cli.store import Workspace

CLI = Path(__file__).resolve().parents[2] / "levers_cli" / "cli"
runner = CliRunner()


def _toy() -> typer.Typer:
    """An app with the levers group class, a subgroup, and commands that raise."""
    toy = typer.Typer(cls=LeversGroup)
    sub = typer.Typer()
    toy.add_typer(sub, name="sub")

    @toy.command("data")
    def data() -> None:
        raise LeversError("logs.jsonl:3: field 'model': not a string")

    @toy.command("usage")
    def usage() -> None:
        raise UsageError("--level 'high': choose conservative, expected or aggressive")

    @sub.command("deep")
    def deep() -> None:
        raise WorkspaceError("workspace w.duckdb holds no calls")

    return toy


def test_a_library_error_anywhere_is_one_line_and_its_exit_code() -> None:
    toy = _toy()
    for args, code, line in (
        (["data"], 1, "error: logs.jsonl:3: field 'model': not a string\n"),
        (["usage"], 2, "error: --level 'high': choose conservative, expected or aggressive\n"),
        (["sub", "deep"], 1, "error: workspace w.duckdb holds no calls\n"),
    ):
        result = runner.invoke(toy, args)
        assert result.exit_code == code, result.output
        assert result.stderr == line and result.stdout == ""
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_no_command_catches_a_library_error_itself() -> None:
    """``LeversGroup.invoke`` is the one handler (it was 12 copied try/except blocks)."""
    catching = [f.name for f in sorted(CLI.glob("*.py")) if "except LeversError" in f.read_text()]
    assert catching == ["output.py"]


def test_the_cli_holds_no_sql_and_no_redaction() -> None:
    sql = re.compile(r"\bSELECT\b|\.execute\(|\.sql\(|\bFROM rejects\b")
    redaction = re.compile(r"import .*\b(redact|redact_tree)\b|levers_cli\.redact\b")
    found = [
        f"{f.name}: {m.group(0)}"
        for f in sorted(CLI.glob("*.py"))
        for pattern in (sql, redaction)
        for m in pattern.finditer(f.read_text())
    ]
    assert found == []


def test_every_exporter_has_a_command_with_the_shared_options() -> None:
    group = get_command(app).commands["export"]  # type: ignore[attr-defined]
    shared = {"--workspace", "--config", "--out", "--force", "--level", "--no-redact", "--json"}
    own = {
        "batch": {"--select"},
        "lora": {"--category"},
        "shadow": {"--lever", "--n", "--per-category", "--target", "--confidence", "--margin"},
        "judge": {"--mode", "--judge-model"},
    }
    for kind in EXPORTERS:
        command = group.commands[kind]
        options = {opt for p in command.params for opt in p.opts if opt.startswith("--")}
        assert options == shared | own.get(kind, set()), kind
        assert command.help and command.help.startswith("Write ")


def test_workspace_rejects_lists_them_by_run_file_and_line(tmp_path: Path) -> None:
    with Workspace(tmp_path / "w.duckdb") as ws:
        ws.insert_rejects([("b.jsonl", 2, "not JSON", "{x"), ("a.jsonl", 9, "no model", "{}")], 1)
        ws.insert_rejects([("a.jsonl", 1, "not JSON", "[")], 2)
        assert ws.rejects(2) == [
            {"run_id": 1, "file": "a.jsonl", "line": 9, "error": "no model", "raw": "{}"},
            {"run_id": 1, "file": "b.jsonl", "line": 2, "error": "not JSON", "raw": "{x"},
        ]
        assert [r["run_id"] for r in ws.rejects()] == [1, 1, 2]


def test_route_file_that_is_missing_or_not_text_is_one_line(tmp_path: Path) -> None:
    binary = tmp_path / "queries.bin"
    binary.write_bytes(b"reset my password\n\xff\xfe\x00broken\n")
    result = runner.invoke(app, ["route", "--file", str(binary)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {binary}: not UTF-8 text (")
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["route", "--file", str(tmp_path / "none.txt")])
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"error: {tmp_path / 'none.txt'}: cannot read (No such file or directory)\n"
    )
