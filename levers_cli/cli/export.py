"""The ``levers export`` group: ``label-sheet`` (:mod:`levers_cli.cli.labels`) and
``{router-config, caps, workflows, batch, lora}``, each lever's artifacts.

Each command parses its options, calls :func:`levers_cli.export.run_export` and prints what
was written (or the result as JSON with ``--json``).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from levers_cli.cli import labels as label_commands
from levers_cli.cli.options import ConfigOpt, JsonOpt, Level, LevelOpt, WorkspaceOpt
from levers_cli.cli.output import err_console, fail, out_console

if TYPE_CHECKING:
    from levers_cli.export import ExportResult

export_app = typer.Typer(
    help="Write the artifacts that put the plan into practice.", no_args_is_help=True
)
export_app.command("label-sheet")(label_commands.label_sheet)

OutOpt = Annotated[
    str, typer.Option("--out", "-o", help="Folder to write into (created if missing).")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an earlier export there.")]
NoRedactOpt = Annotated[
    bool,
    typer.Option(
        "--no-redact", help="Keep emails, phone numbers, card numbers and keys as logged."
    ),
]


class Selection(StrEnum):
    """``levers export batch --select``: which calls go into the batch files."""

    moved = "moved"
    candidates = "candidates"
    all = "all"


def _run(
    kind: str, workspace: str | None, config: str | None, json_out: bool, **options: Any
) -> ExportResult:
    from levers_cli.config import load_config
    from levers_cli.errors import LeversError
    from levers_cli.export import run_export
    from levers_cli.store import Workspace

    options = {k: v.value if isinstance(v, StrEnum) else v for k, v in options.items()}
    try:
        cfg = load_config(config)
        with Workspace(workspace, create=False) as ws:
            result = run_export(kind, ws, cfg, **options)
    except LeversError as exc:
        fail(str(exc), exc.exit_code)
    except OSError as exc:
        fail(f"{exc.filename or options.get('out_dir')}: cannot write ({exc.strerror})")
    if json_out:
        out_console.print_json(json.dumps(result.as_dict(), default=str))
        return result
    table = Table(title=f"levers export {kind} → {escape(result.out_dir)}", title_justify="left")
    table.add_column("file")
    # batch files: the endpoint each file is created with (OpenAI takes one per batch)
    endpoints = any("endpoint" in row for row in result.files)
    if endpoints:
        table.add_column("endpoint")
    table.add_column("rows", justify="right")
    table.add_column("bytes", justify="right")
    for row in result.files:
        cells = [row["path"], *([row.get("endpoint", "")] if endpoints else [])]
        cells = [escape(str(c)) for c in cells]
        table.add_row(*cells, f"{row['rows']:,}", f"{row['bytes']:,}")
    out_console.print(table)
    counts = ", ".join(f"{key.replace('_', ' ')} {value:,}" for key, value in result.counts.items())
    out_console.print(counts, highlight=False)
    if result.redactions:
        summary = ", ".join(f"{k} {v:,}" for k, v in sorted(result.redactions.items()))
        out_console.print(f"redacted: {summary}", highlight=False)
    for note in result.notes:
        err_console.print(note, highlight=False, markup=False)
    return result


@export_app.command("batch")
def batch(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    out: OutOpt = "reports",
    force: ForceOpt = False,
    select: Annotated[
        Selection,
        typer.Option(
            "--select",
            help="moved (the calls the batch lever moves at --level), candidates (every call "
            "a detection rule marks) or all (every call not already batched).",
        ),
    ] = Selection.moved,
    level: LevelOpt = Level.expected,
    no_redact: NoRedactOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Write OpenAI Batch API JSONL (one endpoint and model per file: Responses calls under
    /v1/responses, Chat Completions under /v1/chat/completions) and Anthropic Message
    Batches requests for the batch lever's calls, with manifest.json (the endpoint each file
    is created with) and custom_ids.csv mapping ids back to calls.

    Example: levers export batch --out reports --select candidates
    """
    _run(
        "batch", workspace, config, json_out, out_dir=out, force=force, selection=select,
        level=level, redact=not no_redact,
    )  # fmt: skip


@export_app.command("router-config")
def router_config(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    out: OutOpt = "reports",
    force: ForceOpt = False,
    level: LevelOpt = Level.expected,
    no_redact: NoRedactOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Write the categories as routes: levers-router.json (for `levers route`),
    semantic-router v1 YAML/JSON and 0.x JSON, a LiteLLM Auto Routing config.yaml with
    levers' router as its classifier plugin, and the deprecated semantic auto-router config;
    report the route accuracy on 20 % held-out queries and the per-query latency.

    Example: levers export router-config --out reports
    """
    _run(
        "router-config", workspace, config, json_out, out_dir=out, force=force, level=level,
        redact=not no_redact,
    )  # fmt: skip


@export_app.command("caps")
def caps(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    out: OutOpt = "reports",
    force: ForceOpt = False,
    level: LevelOpt = Level.expected,
    no_redact: NoRedactOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Write caps.csv, caps.json and caps.yaml: per category (and model family) max_tokens,
    the instruction suffix "Answer directly in at most N words.", reasoning effort and the
    expected truncation share.

    Example: levers export caps --out reports --level conservative
    """
    _run(
        "caps", workspace, config, json_out, out_dir=out, force=force, level=level,
        redact=not no_redact,
    )  # fmt: skip


@export_app.command("workflows")
def workflows(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    out: OutOpt = "reports",
    force: ForceOpt = False,
    level: LevelOpt = Level.expected,
    no_redact: NoRedactOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Write workflows.json and workflows.md: each workflow candidate's template, slot
    values, examples, stable answer, frequency, monthly cost, consistency and a script outline.

    Example: levers export workflows --out reports
    """
    _run(
        "workflows", workspace, config, json_out, out_dir=out, force=force, level=level,
        redact=not no_redact,
    )  # fmt: skip


@export_app.command("lora")
def lora(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    out: OutOpt = "reports",
    force: ForceOpt = False,
    level: LevelOpt = Level.expected,
    category: Annotated[
        list[int] | None,
        typer.Option(
            "--category", help="Export this category id (repeatable) instead of the lever's."
        ),
    ] = None,
    no_redact: NoRedactOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Write lora/<category>/train.jsonl, validation.jsonl (chat format, split by
    conversation, deduplicated, redacted) and a dataset card README.md per selected category.

    Example: levers export lora --out reports --level aggressive
    """
    _run(
        "lora", workspace, config, json_out, out_dir=out, force=force, level=level,
        categories=category, redact=not no_redact,
    )  # fmt: skip
