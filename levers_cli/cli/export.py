"""The ``levers export`` group: ``label-sheet`` and ``cache-pairs`` (sheets a person fills,
:mod:`levers_cli.cli.labels`) and one command per exporter of
:data:`levers_cli.export.EXPORTERS` (``router-config``, ``caps``, ``workflows``, ``batch``,
``lora``).

The exporters' commands share one body (:func:`export_command`): the options every export
takes (:data:`COMMON_OPTIONS`), the exporter's own (:data:`EXPORT_COMMANDS`), one call of
:func:`levers_cli.export.run_export`, and the table of what was written (or the result as
JSON with ``--json``). A new exporter is one row of :data:`EXPORT_COMMANDS`.
"""

from __future__ import annotations

import inspect
import json
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from levers_cli.cli import labels as label_commands
from levers_cli.cli.options import (
    ConfigOpt,
    ForceOpt,
    JsonOpt,
    Level,
    LevelOpt,
    NoRedactOpt,
    OutDirOpt,
    WorkspaceOpt,
)
from levers_cli.cli.output import err_console, out_console

if TYPE_CHECKING:
    pass

export_app = typer.Typer(
    help="Write the artifacts that put the plan into practice.", no_args_is_help=True
)
export_app.command("label-sheet")(label_commands.label_sheet)
export_app.command("cache-pairs")(label_commands.cache_pairs)


class Selection(StrEnum):
    """``levers export batch --select``: which calls go into the batch files."""

    moved = "moved"
    candidates = "candidates"
    all = "all"


class ShadowLever(StrEnum):
    """``levers export shadow --lever``: the lever whose changed calls are replayed."""

    routing = "routing"
    caps = "caps"


class JudgeMode(StrEnum):
    """``levers export judge --mode``: single-answer grading or pairwise comparison."""

    single = "single"
    pairwise = "pairwise"


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=annotation)  # fmt: skip


#: The options of every exporter's command, in ``--help`` order; an exporter's own options go
#: between ``level`` and ``no_redact``.
COMMON_OPTIONS = (
    _option("workspace", WorkspaceOpt, None),
    _option("config", ConfigOpt, None),
    _option("out", OutDirOpt, "reports"),
    _option("force", ForceOpt, False),
    _option("level", LevelOpt, Level.expected),
)
CLOSING_OPTIONS = (_option("no_redact", NoRedactOpt, False), _option("json_out", JsonOpt, False))

#: kind → (help, the exporter's own options, each named as the exporter's keyword argument).
EXPORT_COMMANDS: dict[str, tuple[str, tuple[inspect.Parameter, ...]]] = {
    "router-config": (
        """Write the categories as routes for levers, semantic-router and LiteLLM.

        Files: levers-router.json (for `levers route`),
        semantic-router v1 YAML/JSON and 0.x JSON, a LiteLLM Auto Routing config.yaml with
        levers' router as its classifier plugin, and the deprecated semantic auto-router
        config; report the route accuracy on 20 % held-out queries and the per-query latency.

        Example: levers export router-config --out reports
        """,
        (),
    ),
    "caps": (
        """Write the output caps per category: caps.csv, caps.json and caps.yaml.

        Per category (and model family)
        max_tokens, the instruction suffix "Answer directly in at most N words.", reasoning
        effort and the expected truncation share.

        Example: levers export caps --out reports --level conservative
        """,
        (),
    ),
    "workflows": (
        """Write the workflow candidates to materialize: workflows.json and workflows.md.

        Each workflow candidate's template, slot
        values, examples, stable answer, frequency, monthly cost, consistency and a script
        outline.

        Example: levers export workflows --out reports
        """,
        (),
    ),
    "lora": (
        """Write a fine-tuning dataset per selected category.

        Files: lora/<category>/train.jsonl, validation.jsonl (chat format, split by
        conversation, deduplicated, redacted) and a dataset card README.md per selected
        category.

        Example: levers export lora --out reports --level aggressive
        """,
        (
            _option(
                "categories",
                Annotated[
                    list[int] | None,
                    typer.Option(
                        "--category",
                        help="Export this category id (repeatable) instead of the lever's.",
                    ),
                ],
                None,
            ),
        ),
    ),
    "batch": (
        """Write batch API input files for the calls that can wait.

        OpenAI Batch API JSONL (one endpoint and model per file: Responses calls
        under /v1/responses, Chat Completions under /v1/chat/completions) and Anthropic
        Message Batches requests for the batch lever's calls, with manifest.json (the endpoint
        each file is created with) and custom_ids.csv mapping ids back to calls.

        Example: levers export batch --out reports --select candidates
        """,
        (
            _option(
                "selection",
                Annotated[
                    Selection,
                    typer.Option(
                        "--select",
                        help="moved (the calls the batch lever moves at --level), candidates "
                        "(every call a detection rule marks) or all (every call not already "
                        "batched).",
                    ),
                ],
                Selection.moved,
            ),
        ),
    ),
    "shadow": (
        """Write shadow batch requests: a sample of the calls a lever changes, changed.

        A stratified sample (feature › category) of the calls the lever changes at
        --level, with the change applied (routing: the same messages to the cheaper model;
        caps: with the cap and the concise instruction), as OpenAI Batch JSONL and
        Anthropic Message Batches JSON, with custom_ids.csv (custom_id, call_id, lever,
        variant). Prints what the shadow run costs at batch prices. Run the files through
        the provider's batch API, then `levers analyze <output> --batch-input <input>`
        stores the answers as variants paired with the original calls (never as traffic).

        Example: levers export shadow --lever routing --per-category 20 --out reports
        """,
        (
            _option(
                "lever",
                Annotated[
                    ShadowLever,
                    typer.Option("--lever", help="The lever whose changed calls to replay."),
                ],
                ShadowLever.routing,
            ),
            _option(
                "n",
                Annotated[
                    int | None,
                    typer.Option(
                        "--n",
                        help="Requests in all, split over feature › category "
                        "strata in proportion to their calls.",
                    ),
                ],
                None,
            ),
            _option(
                "per_category",
                Annotated[
                    int | None,
                    typer.Option("--per-category", help="Requests per feature › category."),
                ],
                None,
            ),
            _option(
                "target",
                Annotated[
                    str | None,
                    typer.Option(
                        "--target",
                        help="Send the requests to this model "
                        "(default: the model the lever moves each call to).",
                    ),
                ],
                None,
            ),
            _option(
                "confidence",
                Annotated[
                    float | None,
                    typer.Option(
                        "--confidence",
                        help="Confidence of the per-stratum sample "
                        "size when --n/--per-category are not given "
                        "(default [quality] sample_confidence, 0.9).",
                    ),
                ],
                None,
            ),
            _option(
                "margin",
                Annotated[
                    float | None,
                    typer.Option(
                        "--margin",
                        help="Margin (± share) of the per-stratum sample "
                        "size (default [quality] sample_margin, 0.1).",
                    ),
                ],
                None,
            ),
        ),
    ),
    "judge": (
        """Write judge batch requests that grade every variant without a grade.

        single: the judge grades the variant's answer against the original answer as
        reference and ends "Rating: [[n]]" (1-10; MT-Bench's reference-guided prompt).
        pairwise: the judge compares both answers twice, once in each order, and ends with
        [[A>>B]], [[A>B]], [[A=B]], [[B>A]] or [[B>>A]] (Arena-Hard's verdicts). Run them
        through the batch API, then `levers analyze <output>` parses the grades.

        Example: levers export judge --mode single --judge-model gpt-4o --out reports
        """,
        (
            _option(
                "mode",
                Annotated[
                    JudgeMode,
                    typer.Option(
                        "--mode",
                        help="single (graded against the original) or pairwise (both orders).",
                    ),
                ],
                JudgeMode.single,
            ),
            _option(
                "judge_model",
                Annotated[
                    str,
                    typer.Option(
                        "--judge-model",
                        help="The judge model (its provider's batch format is written).",
                    ),
                ],
                "gpt-4o",
            ),
        ),
    ),
}


def export_command(kind: str, help: str, own: tuple[inspect.Parameter, ...] = ()) -> Any:
    """The command of ``levers export <kind>``: the options of :data:`COMMON_OPTIONS`, then
    ``own`` (passed to the exporter by their names), then ``--no-redact`` and ``--json``."""

    def command(**params: Any) -> None:
        _run(kind, **params)

    command.__name__ = kind.replace("-", "_")
    command.__doc__ = help
    command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [*COMMON_OPTIONS, *own, *CLOSING_OPTIONS], return_annotation=None
    )
    return command


def _run(
    kind: str,
    *,
    workspace: str | None,
    config: str | None,
    out: str,
    no_redact: bool,
    json_out: bool,
    **options: Any,
) -> None:
    """Run the exporter of ``kind`` on the workspace and print what it wrote."""
    from levers_cli.config import load_config
    from levers_cli.export import get_exporter, run_export
    from levers_cli.store import Workspace

    options = {k: v.value if isinstance(v, StrEnum) else v for k, v in options.items()}
    if "announce" in inspect.signature(get_exporter(kind)).parameters and not json_out:
        # what the export will cost (export shadow), shown before anything is written
        options["announce"] = lambda text: err_console.print(text, markup=False, highlight=False)
    cfg = load_config(config)
    with Workspace(workspace, create=False) as ws:
        result = run_export(kind, ws, cfg, out_dir=out, redact=not no_redact, **options)
    if json_out:
        out_console.print_json(json.dumps(result.as_dict(), default=str))
        return
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


for _kind, (_help, _own) in EXPORT_COMMANDS.items():
    export_app.command(_kind)(export_command(_kind, inspect.cleandoc(_help), _own))
