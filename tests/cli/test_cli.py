"""The CLI through Typer's CliRunner: exit codes first, then output."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from levers_cli.cli import app

runner = CliRunner()
ENV = {"COLUMNS": "120", "NO_COLOR": "1"}


def _logs(tmp_path, bad_line=False):
    rows = []
    for day in range(1, 11):  # 10 days, 2 calls a day
        for n, (question, answer) in enumerate(
            [
                ("How do I reset my password?", "Use the reset link."),
                ("Where is my invoice for March?", "Billing > Invoices."),
            ]
        ):
            rows.append(
                json.dumps(
                    {
                        "request": {
                            "model": "gpt-4o-mini",
                            "messages": [{"role": "user", "content": question}],
                        },
                        "response": {
                            "id": f"c-{day}-{n}",
                            "object": "chat.completion",
                            "created": 1_735_689_600 + day * 86_400 + n * 60,
                            "model": "gpt-4o-mini",
                            "choices": [
                                {
                                    "index": 0,
                                    "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": answer},
                                }
                            ],
                            "usage": {"prompt_tokens": 1000, "completion_tokens": 100},
                        },
                    }
                )
            )
    if bad_line:
        rows.insert(3, "{this is not json")
    path = tmp_path / "logs.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def test_analyze_json_summary(tmp_path, registered_fake):
    out = tmp_path / "analysis.json"
    result = runner.invoke(
        app,
        [
            "analyze",
            _logs(tmp_path),
            "-w",
            str(tmp_path / "w.duckdb"),
            "--embedder",
            "fake",
            "--out",
            str(out),
            "--json",
        ],
        env=ENV,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == json.loads(out.read_text())
    assert summary["calls"] == 20
    # gpt-4o-mini: 1,000 × 0.15 + 100 × 0.60 = 210 µ$ per call → 20 calls = $0.0042
    assert abs(summary["spend_usd"] - 0.0042) < 1e-12
    # first call day 1 00:00, last day 10 00:01 → span 9 days + 60 s; monthly = 0.0042 × 30 / span
    span_days = 9 + 60 / 86_400
    assert abs(summary["monthly_run_rate_usd"] - 0.0042 * 30 / span_days) < 1e-12
    assert summary["repeats"]["occurrences"] == {"10": 2}
    assert summary["ingest"]["read"] == 20 and summary["ingest"]["stored"] == 20
    assert "read 20, stored 20, duplicates 0, skipped 0, rejected 0" in result.stderr


def test_analyze_table_output_and_rerun_is_duplicates(tmp_path, registered_fake):
    args = [
        "analyze",
        _logs(tmp_path),
        "-w",
        str(tmp_path / "w.duckdb"),
        "--embedder",
        "fake",
        "--out",
        str(tmp_path / "a.json"),
    ]
    first = runner.invoke(app, args, env=ENV)
    assert first.exit_code == 0, first.output
    assert "gpt-4o-mini" in first.stdout and "Categories" in first.stdout
    second = runner.invoke(app, args, env=ENV)
    assert second.exit_code == 0
    assert "read 20, stored 0, duplicates 20, skipped 0, rejected 0" in second.stderr


def test_bad_json_line_exit_1_one_line_and_good_records_stored(tmp_path, registered_fake):
    path = _logs(tmp_path, bad_line=True)
    result = runner.invoke(
        app,
        [
            "analyze",
            path,
            "-w",
            str(tmp_path / "w.duckdb"),
            "--embedder",
            "fake",
            "--out",
            str(tmp_path / "a.json"),
        ],
        env=ENV,
    )
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {path}:4: not JSON (Expecting property name enclosed in double quotes at column 2)"
    ]
    assert "Traceback" not in result.output
    assert "read 21, stored 20, duplicates 0, skipped 0, rejected 1" in result.stderr


def test_input_errors_are_one_line_exit_1(tmp_path):
    missing = runner.invoke(
        app, ["analyze", str(tmp_path / "nope.jsonl"), "-w", str(tmp_path / "w.duckdb")], env=ENV
    )
    assert missing.exit_code == 1
    assert missing.stderr.strip() == f"error: {tmp_path / 'nope.jsonl'}: no such file"
    logs = _logs(tmp_path)
    unknown = runner.invoke(
        app, ["ingest", logs, "--format", "fooo", "-w", str(tmp_path / "w.duckdb")], env=ENV
    )
    assert unknown.exit_code == 2  # an option value levers does not know: bad usage
    assert unknown.stderr.strip().startswith("error: unknown log format 'fooo'; choose one of:")
    since = runner.invoke(
        app, ["analyze", logs, "--since", "banana", "-w", str(tmp_path / "w.duckdb")], env=ENV
    )
    assert since.exit_code == 2 and since.stderr.startswith(
        "error: --since 'banana' is not a period"
    )
    nothing = runner.invoke(app, ["route"], env=ENV)
    assert nothing.exit_code == 2
    assert nothing.stderr.strip() == "error: give a query TEXT or --file FILE (one query per line)"
    empty = runner.invoke(app, ["route", "  "], env=ENV)
    assert empty.exit_code == 2
    assert empty.stderr.strip() == "error: the query is empty; give the text to route"
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("text,category\nhello,greet\n")
    column = runner.invoke(
        app,
        ["analyze", str(csv_path), "--map", "query=utterance", "-w", str(tmp_path / "w.duckdb")],
        env=ENV,
    )
    assert column.exit_code == 1
    assert column.stderr.strip().startswith(f"error: {csv_path}:1: column 'utterance'")
    assert "Traceback" not in missing.output + unknown.output + column.output


def test_ingest_and_formats(tmp_path):
    result = runner.invoke(
        app, ["ingest", _logs(tmp_path), "-w", str(tmp_path / "w.duckdb"), "--json"], env=ENV
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["stored"] == 20
    formats = runner.invoke(app, ["formats", "--json"], env=ENV)
    names = [f["name"] for f in json.loads(formats.stdout)]
    from levers_cli.ingest import ADAPTERS

    assert names == list(ADAPTERS) and names[-1] == "generic"
    assert {"openai-chat", "anthropic", "gemini", "bedrock", "otel", "request-only"} <= set(names)


def test_ingest_counts_skipped_spans(tmp_path):
    from tests.helpers import FIXTURES

    otel = FIXTURES / "otel"
    files = [str(otel / "otlp_proto_trace_example.json"), str(otel / "semconv_examples.jsonl")]
    result = runner.invoke(app, ["ingest", *files, "-w", str(tmp_path / "w.duckdb")], env=ENV)
    assert result.exit_code == 0, result.output
    printed = " ".join(result.stdout.split())  # Rich wraps long paths
    assert f"{files[0]}: otel: read 1, stored 0, duplicates 0, skipped 1, rejected 0" in printed
    assert "read 4, stored 2, duplicates 1, skipped 1, rejected 0" in result.stderr


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys; from levers_cli.cli import app; from typer.testing import CliRunner; "
        "r = CliRunner().invoke(app, ['analyze', '--help']); assert r.exit_code == 0; "
        "heavy = [m for m in ('torch', 'sentence_transformers', 'umap', 'hdbscan', 'sklearn') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_workspace_that_is_not_duckdb_is_refused(tmp_path):
    logs = _logs(tmp_path)
    result = runner.invoke(app, ["ingest", logs, "-w", logs], env=ENV)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: workspace {logs} is not a DuckDB database (is it a log file?); "
        "pass the logs as arguments and -w a .duckdb file"
    )


def test_out_folder_and_empty_input_fail_early_on_one_line(tmp_path):
    logs = _logs(tmp_path)
    folder = tmp_path / "out"
    folder.mkdir()
    result = runner.invoke(
        app, ["analyze", logs, "-w", str(tmp_path / "w.duckdb"), "--out", str(folder)], env=ENV
    )
    assert result.exit_code == 1
    assert result.stderr.strip().startswith(f"error: --out {folder} is a folder")
    assert not (tmp_path / "w.duckdb").exists()  # failed before any work
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = runner.invoke(
        app,
        [
            "analyze",
            str(empty),
            "-w",
            str(tmp_path / "w.duckdb"),
            "--out",
            str(tmp_path / "a.json"),
        ],
        env=ENV,
    )
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: no calls to analyze: {empty} held no readable records "
        "(read 0, skipped 0, rejected 0)"
    )


def test_rejects_are_not_recorded_twice_on_a_reread(tmp_path):
    logs = _logs(tmp_path, bad_line=True)
    workspace = str(tmp_path / "w.duckdb")
    for _ in range(2):
        assert runner.invoke(app, ["ingest", logs, "-w", workspace], env=ENV).exit_code == 1
    listed = runner.invoke(app, ["rejects", "-w", workspace, "--json"], env=ENV)
    assert json.loads(listed.stdout)["count"] == 1


def test_out_is_never_an_input_and_own_outputs_are_skipped(tmp_path, registered_fake):
    logs = _logs(tmp_path)
    same = runner.invoke(
        app, ["analyze", logs, "-w", str(tmp_path / "w.duckdb"), "-o", logs], env=ENV
    )
    assert same.exit_code == 1
    assert (
        same.stderr.strip() == f"error: --out {logs} is one of the input logs; write the "
        "summary elsewhere"
    )
    folder_args = [
        "analyze",
        str(tmp_path),
        "-w",
        str(tmp_path / "w.duckdb"),
        "--embedder",
        "fake",
        "-o",
        str(tmp_path / "reports" / "analysis.json"),
    ]
    first = runner.invoke(app, folder_args, env=ENV)
    second = runner.invoke(app, folder_args, env=ENV)  # the summary of the first run is skipped
    assert (first.exit_code, second.exit_code) == (0, 0), second.output
    assert "read 20, stored 0, duplicates 20, skipped 0, rejected 0" in second.stderr


def test_bad_since_fails_before_any_work_and_empty_period_is_zero(tmp_path, registered_fake):
    workspace = tmp_path / "w.duckdb"
    bad = runner.invoke(
        app, ["analyze", _logs(tmp_path), "-w", str(workspace), "--since", "banana"], env=ENV
    )
    assert bad.exit_code == 2 and not workspace.exists()  # a bad option value: usage
    assert "is not a period (7d, 24h, 2w) or an ISO date" in bad.stderr
    empty = runner.invoke(
        app,
        [
            "analyze",
            _logs(tmp_path),
            "-w",
            str(workspace),
            "--embedder",
            "fake",
            "--since",
            "2030-01-01",
            "--json",
            "-o",
            str(tmp_path / "a.json"),
        ],
        env=ENV,
    )
    summary = json.loads(empty.stdout)
    assert (summary["calls"], summary["spend_usd"]) == (0, 0.0)
    assert summary["monthly_run_rate_basis"] == "no run rate: no calls in this period"


def test_read_only_commands_need_an_existing_workspace(tmp_path):
    missing = tmp_path / "nowhere.duckdb"
    for args in (["rejects"], ["simulate"]):
        result = runner.invoke(app, [*args, "-w", str(missing)], env=ENV)
        assert result.exit_code == 1, args
        assert result.stderr.strip().startswith(f"error: no workspace at {missing}")
    assert not missing.exists()


def test_mistyped_input_creates_no_workspace_and_no_reports(tmp_path, monkeypatch):
    from levers_cli.store import default_workspace_path

    monkeypatch.chdir(tmp_path)
    for command in ("analyze", "ingest"):
        result = runner.invoke(app, [command, "logz.jsonl"], env=ENV)
        assert result.exit_code == 1, command
        assert result.stderr.strip() == "error: logz.jsonl: no such file"
        assert not os.path.exists(default_workspace_path()), command
        assert not (tmp_path / "reports").exists(), command


def test_folder_run_says_how_many_non_log_files_it_skipped(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "logs.jsonl").write_text(Path(_logs(tmp_path)).read_text())
    (folder / "README.txt").write_text("not a log")
    (folder / "notes.txt").write_text("not a log")
    (folder / "chart.png").write_bytes(b"\x89PNG")
    workspace = folder / ".levers" / "w.duckdb"  # levers' own files are not counted
    for command in ("ingest", "analyze"):
        args = [command, str(folder), "-w", str(workspace)]
        if command == "analyze":
            args += ["--embedder", "tfidf", "-o", str(folder / "reports" / "a.json")]
        result = runner.invoke(app, args, env=ENV)
        assert result.exit_code == 0, result.output
        assert "skipped 3 non-log files in the folders read (.txt: 2, .png: 1)" in result.stderr
    assert "read 20, stored 0, duplicates 20, skipped 0, rejected 0" in result.stderr


def test_sqlite_file_without_llm_tables_is_named_as_such(tmp_path):
    other = tmp_path / "app.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE users (id INTEGER, name TEXT)")
    con.commit()
    con.close()
    result = runner.invoke(app, ["ingest", str(other), "-w", str(tmp_path / "w.duckdb")], env=ENV)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: {other}: a SQLite database, but not an llm logs database: no table `responses` "
        "(or `turns`) with llm's columns (tables: users); levers reads SQLite only as "
        "simonw/llm's logs.db"
    )
    text = tmp_path / "notes.db"
    text.write_text("not a database")
    result = runner.invoke(app, ["ingest", str(text), "-w", str(tmp_path / "w.duckdb")], env=ENV)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: {text}: not an llm logs database: levers reads .db/.sqlite files only as "
        "simonw/llm's SQLite logs.db (--format llm-logs), and this file is not one"
    )


def test_busy_workspace_names_the_process_that_holds_it(tmp_path):
    workspace = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
            "print('open', flush=True); time.sleep(120)",
            str(workspace),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        result = runner.invoke(app, ["ingest", _logs(tmp_path), "-w", str(workspace)], env=ENV)
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "IO Error" not in lines[0]
    assert lines[0].startswith(
        f"error: workspace {workspace} is in use by another process (PID {holder.pid}, "
    )
    assert lines[0].endswith(
        "e.g. a levers run that has not finished; wait for it to end, or use another "
        "workspace with -w"
    )
