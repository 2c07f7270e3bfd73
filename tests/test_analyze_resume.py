"""An interrupted ``analyze`` (Ctrl-C or a failing embedder while embedding) never yields a
plan: every command that reads categories refuses the workspace with one line saying how to
finish it, and ``levers analyze`` with no files finishes it from the stored embeddings."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from levers_cli.cli import app
from levers_cli.embed import EMBEDDERS
from levers_cli.errors import WorkspaceError
from levers_cli.store import Workspace
from tests.helpers import SAMPLE_LOGS, FakeEmbedder

runner = CliRunner()
ENV = {"COLUMNS": "120", "NO_COLOR": "1"}
#: the first records of the shipped sample: three features, enough for every lever to act
SAMPLE_RECORDS = 400
#: texts the flaky embedder encodes before Ctrl-C; two chunks of CHUNK reach the workspace
INTERRUPT_AFTER = 40
CHUNK = 16


class FlakyEmbedder(FakeEmbedder):
    """The fake embedder (same key, same vectors) that is interrupted after
    :data:`INTERRUPT_AFTER` texts, as a user pressing Ctrl-C while embedding."""

    name = "flaky"
    chunk_rows = CHUNK

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self.encoded = 0

    def encode(self, texts: list[str]):
        if self.encoded + len(texts) > INTERRUPT_AFTER:
            raise KeyboardInterrupt
        self.encoded += len(texts)
        return super().encode(texts)


@pytest.fixture
def logs(tmp_path: Path) -> str:
    with gzip.open(SAMPLE_LOGS, "rt", encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(SAMPLE_RECORDS)]
    path = tmp_path / "logs.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    return str(path)


@pytest.fixture
def embedders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EMBEDDERS, "fake", FakeEmbedder)
    monkeypatch.setitem(EMBEDDERS, "flaky", FlakyEmbedder)


def _levers(*args: str):
    return runner.invoke(app, list(args), env=ENV)


def _interrupted(tmp_path: Path, logs: str) -> str:
    """A workspace whose analyze was interrupted while embedding."""
    ws = str(tmp_path / "interrupted.duckdb")
    out = str(tmp_path / "interrupted.json")
    result = _levers("analyze", logs, "-w", ws, "-o", out, "--embedder", "flaky")
    assert result.exit_code == 130, result.output
    assert f"run `levers analyze -w {ws}` with no files to finish" in result.stderr
    return ws


def _distinct_queries(ws_path: str) -> int:
    with Workspace(ws_path, create=False) as ws:
        return ws.con.execute(
            "SELECT count(DISTINCT query_hash) FROM calls WHERE trim(coalesce(query, '')) <> ''"
        ).fetchone()[0]


def test_interrupted_analyze_is_refused_then_finished_with_the_same_figures(
    tmp_path, logs, embedders
):
    ws = _interrupted(tmp_path, logs)
    with Workspace(ws, create=False) as w:
        assert w.count("calls") == SAMPLE_RECORDS  # the ingest was committed
        assert w.count("calls", "category_id IS NULL") == SAMPLE_RECORDS
        assert w.count("embeddings") == 2 * CHUNK  # the chunks embedded before Ctrl-C

    refused = _levers("simulate", "-w", ws)
    assert refused.exit_code == 1
    assert refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"error: workspace {ws} is not fully analyzed (calls without a category: "
        f"{SAMPLE_RECORDS} of {SAMPLE_RECORDS}; an analyze was interrupted, or the calls were "
        f"only ingested); run `levers analyze -w {ws}` with no files to finish it"
    ]

    finished = _levers(
        "analyze", "-w", ws, "-o", str(tmp_path / "a.json"), "--embedder", "fake", "--json"
    )
    assert finished.exit_code == 0, finished.output
    categorization = json.loads(finished.stdout)["categorization"]
    distinct = _distinct_queries(ws)
    assert categorization["embedded_now"] == distinct - 2 * CHUNK  # only the rest embedded

    whole = str(tmp_path / "whole.duckdb")
    straight = _levers(
        "analyze", logs, "-w", whole, "-o", str(tmp_path / "b.json"), "--embedder", "fake"
    )
    assert straight.exit_code == 0, straight.output
    resumed = _levers("simulate", "-w", ws, "--json")
    uninterrupted = _levers("simulate", "-w", whole, "--json")
    assert resumed.exit_code == uninterrupted.exit_code == 0
    a, b = json.loads(resumed.stdout), json.loads(uninterrupted.stdout)
    assert a["monthly_cost_after"] == b["monthly_cost_after"]
    assert a["waterfall"] == b["waterfall"]
    # the figures are a plan, not the $0 levers an uncategorized workspace gave
    routing = next(lv for lv in a["levers"] if lv["name"] == "routing")
    assert routing["saving_usd_month"]["expected"] > 0


@pytest.mark.parametrize(
    "command",
    [
        ["simulate"],
        ["simulate", "--budget", "1"],
        ["simulate", "--backtest", "0.5"],
        ["report", "--to", "md"],
        ["report", "--to", "json"],
        ["check", "--max-monthly-cost", "1000"],
        ["export", "router-config"],
        ["export", "caps"],
        ["export", "lora"],
        ["export", "workflows"],
        ["export", "batch"],
        ["export", "label-sheet"],
    ],
    ids=" ".join,
)
def test_every_command_reading_categories_refuses_an_unfinished_workspace(
    tmp_path, logs, command, monkeypatch
):
    from levers_cli.ingest.pipeline import ingest_files

    ws = str(tmp_path / "ingested.duckdb")
    with Workspace(ws) as w:  # calls only read, never categorized: `levers ingest`
        ingest_files(w, [logs])
    monkeypatch.chdir(tmp_path)
    result = _levers(*command, "-w", ws)
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: workspace {ws} is not fully analyzed")
    assert lines[0].endswith(f"run `levers analyze -w {ws}` with no files to finish it")
    assert not (tmp_path / "reports").exists()  # nothing written from a half workspace


def test_new_calls_of_an_interrupted_second_run_are_refused_then_categorized(
    tmp_path, logs, embedders, fake_embedder
):
    from levers_cli.analysis import analyze

    week1, week2 = tmp_path / "week1.jsonl", tmp_path / "week2.jsonl"
    lines = Path(logs).read_text(encoding="utf-8").splitlines(keepends=True)
    week1.write_text("".join(lines[:300]), encoding="utf-8")
    week2.write_text("".join(lines[300:]), encoding="utf-8")
    path = tmp_path / "w.duckdb"
    with Workspace(path) as ws:
        analyze(ws, [str(week1)], embedder=fake_embedder)
        with pytest.raises(KeyboardInterrupt):
            analyze(ws, [str(week2)], embedder=FlakyEmbedder())
        with pytest.raises(WorkspaceError, match=r"calls without a category: 100 of 400;"):
            ws.require_analysis()
        result = analyze(ws, [], embedder=fake_embedder)
        assert result.ingest.read == 0
        ws.require_analysis()  # finished: nothing raised
        assert ws.count("calls", "category_id IS NULL") == 0


def test_an_interrupted_category_write_leaves_nothing_half_written(
    tmp_path, logs, fake_embedder, monkeypatch
):
    """Ctrl-C while the categories are written rolls the write back: no call is left marked
    uncategorized (-1), which would pass for a finished analysis."""
    import importlib

    from levers_cli.analysis import analyze

    module = importlib.import_module("levers_cli.cluster.categorize")

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "central_exemplars", interrupted)
    with Workspace(tmp_path / "w.duckdb") as ws:
        with pytest.raises(KeyboardInterrupt):
            analyze(ws, [logs], embedder=fake_embedder)
        assert ws.count("calls", "category_id IS NULL") == SAMPLE_RECORDS
        assert ws.count("categories") == 0
        with pytest.raises(WorkspaceError, match="not fully analyzed"):
            ws.require_analysis()


def test_analyze_without_files_needs_a_workspace(tmp_path):
    ws = tmp_path / "none.duckdb"
    result = _levers("analyze", "-w", str(ws), "-o", str(tmp_path / "a.json"))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: give the log files to analyze (no workspace at {ws} to finish)"
    )
    assert not ws.exists()
