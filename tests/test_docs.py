"""docs/cli.md is the ``--help`` of every command (scripts/cli_docs.py writes it), and every
command and option has a help text: a command or option added without one, or without
regenerating the reference, fails here."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("cli_docs", ROOT / "scripts" / "cli_docs.py")
assert _spec and _spec.loader
cli_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cli_docs)


def test_the_cli_reference_is_current() -> None:
    """Regenerated in memory, docs/cli.md is unchanged (else: python scripts/cli_docs.py)."""
    assert cli_docs.DOCS.read_text(encoding="utf-8") == cli_docs.render(), (
        "docs/cli.md is stale: run python scripts/cli_docs.py"
    )


def test_every_command_and_option_is_documented() -> None:
    assert cli_docs.undocumented() == []


def test_the_reference_covers_every_command_of_the_app() -> None:
    """Each command path of the app (13 commands, 3 groups) has its section, in --help order."""
    text = cli_docs.DOCS.read_text(encoding="utf-8")
    headings = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert headings[:3] == ["levers", "levers analyze", "levers ingest"]
    for path in ("levers route", "levers config show", "levers export batch"):
        assert path in headings
    command, ctx = cli_docs.root_context()
    assert headings == [sub_ctx.command_path for _, sub_ctx in cli_docs.walk(command, ctx)]


def _toy_app() -> typer.Typer:
    """A group with a subgroup, a hidden command, a hidden option and one option without help."""
    app = typer.Typer(name="levers", help="A toy.")
    tools = typer.Typer(help="Tools.")
    app.add_typer(tools, name="tools")

    @app.command("run")
    def run(
        speed: Annotated[int, typer.Option("--speed", help="How fast.")] = 1,
        old: Annotated[int, typer.Option("--old", hidden=True)] = 1,
    ) -> None:
        """Run it."""

    @tools.command("shadow")
    def shadow(
        n: Annotated[int, typer.Option("--n")] = 3,  # no help: undocumented
    ) -> None:
        """Replay calls."""

    @app.command("secret", hidden=True)
    def secret() -> None:
        """Hidden."""

    return app


def test_a_new_command_needs_only_a_regenerate() -> None:
    """The generator walks whatever the app holds: a subgroup's new command gets its section,
    hidden commands and options stay out, as --help leaves them out."""
    app = _toy_app()
    text = cli_docs.render(app)
    headings = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["levers", "levers run", "levers tools", "levers tools shadow"]
    assert "--speed" in text and "How fast." in text
    assert "--old" not in text and "secret" not in text


def test_an_undocumented_option_or_a_stale_reference_is_reported() -> None:
    app = _toy_app()
    text = cli_docs.render(app)
    assert cli_docs.undocumented(app, text) == ["levers tools shadow --n: no help text"]
    # the reference written before `shadow` existed
    before = text.split("\n## levers tools shadow")[0]
    assert cli_docs.undocumented(app, before) == [
        "levers tools shadow: no section in the reference",
        "levers tools shadow --n: no help text",
    ]
    # an option the reference does not name
    no_speed = text.replace("--speed", "--pace")
    assert cli_docs.undocumented(app, no_speed) == [
        "levers run --speed: not in the reference",
        "levers tools shadow --n: no help text",
    ]
