"""``levers analyze``, ``levers ingest`` and ``levers formats``."""

from __future__ import annotations

import json
import os
import shlex
from typing import Annotated, Any

import typer
from rich.markup import escape

from levers_cli.cli.options import (
    BatchInputOpt,
    ConfigOpt,
    EngineOpt,
    FilesArg,
    FormatOpt,
    JsonOpt,
    MapOpt,
    MaxRejectsOpt,
    WorkspaceOpt,
)
from levers_cli.cli.output import err_console, fail, out_console
from levers_cli.cli.progress import progress_bars
from levers_cli.cli.render import plural, reconciliation, render_summary, skipped_notes

DEFAULT_OUT = os.path.join("reports", "analysis.json")


def _check_writable(out: str) -> None:
    """Fail before any work when ``--out`` cannot be written (a folder, a read-only place)."""
    if os.path.isdir(out):
        fail(f"--out {out} is a folder; name a file, e.g. {os.path.join(out, 'analysis.json')}")
    folder = os.path.dirname(out) or "."
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        fail(f"--out {out}: cannot create {folder} ({exc.strerror})")
    if not os.access(folder, os.W_OK):
        fail(f"--out {out}: {folder} is not writable")


def _own_outputs(workspace: str | None, out: str | None = None) -> frozenset[str]:
    """Real paths of levers' own files, left out when a folder is read: the summary being
    written and the workspace with DuckDB's write-ahead log beside it (``….duckdb.wal``)."""
    from levers_cli.store import default_workspace_path

    path = workspace or default_workspace_path()
    return frozenset(os.path.realpath(p) for p in (path, path + ".wal", *([out] if out else [])))


def _check_inputs(files: list[str], exclude: frozenset[str] = frozenset()) -> None:
    """Fail before any work (no workspace, no ``reports/``) when an input path is missing."""
    from levers_cli.ingest.readers import find_inputs

    find_inputs(files, exclude)


def _print_run(ingest: dict) -> None:
    """The run's counts on stderr: the reconciliation line, then what was skipped."""
    err_console.print(reconciliation(ingest), highlight=False)
    for note in skipped_notes(ingest):
        err_console.print(note, markup=False, highlight=False)


def _adapter_options(batch_input: list[str] | None) -> dict[str, object]:
    """Format-specific options for the adapters, from their command-line flags."""
    return {"batch_input": batch_input} if batch_input else {}


def _report_rejects(ingest: dict, max_rejects: int) -> None:
    """One stderr line per distinct (file, reason) among the first rejects and a count of the
    rest, then exit 1 when more than ``max_rejects`` records were rejected."""
    if ingest["rejected"]:
        shown: dict[tuple[str, str], int] = {}
        for sample in ingest["reject_samples"]:
            key = (sample["file"], sample["error"])
            if key in shown:
                shown[key] += 1
                continue
            if len(shown) < 10:
                shown[key] = 1
                err_console.print(
                    f"error: {sample['file']}:{sample['line']}: {sample['error']}",
                    markup=False,
                    highlight=False,
                )
        listed = len(shown)  # a line each; repeats of a shown error are among the "more"
        if ingest["rejected"] > listed:
            err_console.print(
                f"error: … {ingest['rejected'] - listed:,} more rejected records "
                "(levers rejects lists them)"
            )
    if ingest["rejected"] > max_rejects:
        raise typer.Exit(1)


#: ``analyze``'s files are optional: none finishes an interrupted analyze of the workspace.
ResumableFilesArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Log files or folders (.jsonl/.json/.csv/.parquet, .gz). None: finish the "
        "workspace's stored calls (after an interrupted analyze, or `levers ingest`).",
        show_default=False,
    ),
]


def analyze(
    files: ResumableFilesArg = None,
    format: FormatOpt = None,
    map: MapOpt = None,
    batch_input: BatchInputOpt = None,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    embedder: Annotated[
        str | None,
        typer.Option(
            "--embedder",
            help="Embedder for categories: auto (minilm up to embed.auto_minilm_max_queries "
            "distinct queries, static above), minilm, static (model2vec, distilled once), "
            "tfidf (no model), or any sentence-transformers model: a folder, or a Hugging Face "
            "id in your Hugging Face cache (never downloaded).",
            show_default="auto",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Summarize only calls from this period: 7d, 24h, 2w before the newest call, "
            "or a date (2026-10-15).",
        ),
    ] = None,
    recluster: Annotated[
        bool,
        typer.Option(
            "--recluster",
            help="Fit categories afresh; by default known queries keep their category ids "
            "and new ones join the nearest category.",
        ),
    ] = False,
    out: Annotated[
        str, typer.Option("--out", "-o", help="Where to write the JSON summary.")
    ] = DEFAULT_OUT,
    max_rejects: MaxRejectsOpt = 0,
    engine: EngineOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Read logs, price every call, find route categories and show where the money goes.

    Run it with no files to finish an analyze that was interrupted (Ctrl-C, a failed
    embedder): the stored calls are categorized, embedding only the queries not embedded yet.

    \b
    Example: levers analyze logs.jsonl.gz
             levers analyze test.csv --map query=text --map label=category
             levers analyze   (finish the workspace's stored calls)
    """
    from levers_cli.analysis import analyze as run_analysis
    from levers_cli.config import load_config
    from levers_cli.embed import AUTO, get_embedder
    from levers_cli.engine import chosen_engine
    from levers_cli.ingest.mapping import parse_mapping
    from levers_cli.store import Workspace, default_workspace_path

    # usage first (exit 2), then the files named (exit 1), before anything is created
    files = files or []
    ws_path = workspace or default_workspace_path()
    if not files and not os.path.exists(ws_path):
        fail(f"give the log files to analyze (no workspace at {ws_path} to finish)", code=2)
    if since is not None:
        from levers_cli.summary import check_since

        check_since(since)
    cfg = load_config(config)
    if embedder:
        cfg.set("embed", "embedder", embedder)
    name = cfg.get("embed", "embedder")
    if name != AUTO:
        get_embedder(name)  # an unknown name fails now, before any work
    mapping = parse_mapping(map or [])
    own_outputs = _own_outputs(ws_path, out)
    _check_inputs(files, own_outputs)
    _check_writable(out)
    if os.path.realpath(out) in {os.path.realpath(f) for f in files if f != "-"}:
        fail(f"--out {out} is one of the input logs; write the summary elsewhere")
    runner = chosen_engine(cfg, engine.value if engine else None)
    try:
        with Workspace(ws_path) as ws, progress_bars(err_console, not json_out) as progress:
            if not files:
                err_console.print(
                    f"no files given: analyzing the {plural(ws.count('calls'), 'call')} stored "
                    f"in {ws_path}", markup=False, highlight=False,
                )  # fmt: skip
            result = run_analysis(
                ws,
                files,
                format=format,
                mapping=mapping,
                options=_adapter_options(batch_input),
                config=cfg,
                since=since,
                recluster=recluster,
                exclude=own_outputs,
                progress=progress,
                engine=runner,
            )
    except KeyboardInterrupt:
        err_console.print(
            f"interrupted: the plan is not ready; run `levers analyze -w {shlex.quote(ws_path)}` "
            "with no files to finish (queries embedded so far are kept)",
            markup=False, highlight=False,
        )  # fmt: skip
        raise typer.Exit(130) from None
    finally:
        if runner is not None:
            runner.close()
    summary = result.summary
    if summary.get("quality_results", {}).get("only"):
        # only shadow/judge results were read: no call changed, the summary stands
        _print_quality(summary["quality_results"])
        if json_out:
            typer.echo(json.dumps(summary["quality_results"], indent=2, ensure_ascii=False))
        return
    try:
        with open(out, "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2, ensure_ascii=False)
    except OSError as exc:
        fail(f"{out}: cannot write the summary ({exc.strerror})")
    _print_run(summary["ingest"])
    _print_quality(summary.get("quality_results"))
    choice = summary["categorization"].get("embedder_choice")
    if choice:
        err_console.print(
            f"embedder: {choice['name']} ({choice['reason']})", markup=False, highlight=False
        )
    if json_out:
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        render_summary(out_console, summary)
        out_console.print(f"[dim]summary written to {escape(out)}[/dim]")
    _report_rejects(summary["ingest"], max_rejects)


def _print_quality(results: dict[str, Any] | None) -> None:
    """One line per shadow/judge result file read (variants and grades stored, rejects)."""
    for row in (results or {}).get("files", []):
        err_console.print(
            f"{row['path']}: {row['kind']} results: {plural(row['variants'], 'variant')}, "
            f"{plural(row['grades'], 'grade')} stored, {row['rejected']:,} rejected "
            "(never counted as traffic; see `levers quality`, `levers rejects`)",
            markup=False, highlight=False,
        )  # fmt: skip


def ingest(
    files: FilesArg,
    format: FormatOpt = None,
    map: MapOpt = None,
    batch_input: BatchInputOpt = None,
    workspace: WorkspaceOpt = None,
    max_rejects: MaxRejectsOpt = 0,
    json_out: JsonOpt = False,
) -> None:
    """Read logs into the workspace without pricing or clustering them.

    Example: levers ingest week-48/*.jsonl.gz
    """
    from levers_cli.ingest.mapping import parse_mapping
    from levers_cli.ingest.pipeline import ingest_files
    from levers_cli.store import Workspace

    own_outputs = _own_outputs(workspace)
    _check_inputs(files, own_outputs)
    mapping = parse_mapping(map or [])
    with Workspace(workspace) as ws, progress_bars(err_console, not json_out) as progress:
        bar = (lambda stage, n: progress(stage, n, 0)) if progress else None
        result = ingest_files(
            ws,
            files,
            format=format,
            mapping=mapping,
            options=_adapter_options(batch_input),
            progress=bar,
            exclude=own_outputs,
        )
    data = result.as_dict()
    if json_out:
        typer.echo(json.dumps(data, indent=2))
    else:
        for f in data["files"]:
            out_console.print(
                f"{f['path']}: {f['format'] or '?'}: {reconciliation(f)}",
                highlight=False,
                markup=False,
            )
    _print_run(data)
    if data["read"] == 0:
        err_console.print(
            "warning: no records found in " + ", ".join(files), markup=False, highlight=False
        )
    _report_rejects(data, max_rejects)


def formats(json_out: JsonOpt = False) -> None:
    """List the log formats levers reads, with one example each.

    Example: levers formats
    """
    from levers_cli.ingest import ADAPTERS

    rows = [
        {"name": name, "description": cls.description, "example": cls.example}
        for name, cls in ADAPTERS.items()
    ]
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        out_console.print(f"[bold]{row['name']}[/bold]  {row['description']}")
        out_console.print(f"  {row['example']}", markup=False, highlight=False)


def rejects(
    workspace: WorkspaceOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 50,
    json_out: JsonOpt = False,
) -> None:
    """List the records that could not be read, with file, line and reason.

    Example: levers rejects --limit 20
    """
    from levers_cli.store import Workspace

    with Workspace(workspace, create=False) as ws:
        total = ws.count("rejects")
        rows = ws.rejects(limit)
    if json_out:
        typer.echo(json.dumps({"count": total, "rejects": rows}, indent=2, ensure_ascii=False))
        return
    for row in rows:
        out_console.print(
            f"{row['file']}:{row['line']}: {row['error']}", markup=False, highlight=False
        )
    err_console.print(
        f"{total:,} rejected records" + (f", {len(rows)} shown" if total > len(rows) else "")
    )
