"""Contract tests: every registered piece keeps its registry's promise (issue 15 point 11).

Parametrized over the registries themselves (``WATERFALL``, ``ADAPTERS``, ``EXPORTERS``,
``EMBEDDERS``), so a lever, adapter, exporter or embedder added later is checked the day it
is registered, with no test of its own needed for these points:

- a lever's plan keeps the base plan's rows and columns (the waterfall hands one lever's plan
  to the next), never raises the plan's cost at any level, and analyzes an empty workspace
  without failing;
- an adapter is registered under its own name and claims none of the other formats' records;
- an exporter is reachable from the CLI and refuses a workspace with no calls, one line;
- an embedder class names itself as registered and declares the contract's abilities.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from levers_cli.cli import app
from levers_cli.config import load_config
from levers_cli.embed import EMBEDDERS
from levers_cli.embed.base import Embedder
from levers_cli.errors import WorkspaceError
from levers_cli.export import EXPORTERS, get_exporter, run_export
from levers_cli.ingest import ADAPTERS, get_adapter
from levers_cli.levers import LEVELS, WATERFALL, Lever
from levers_cli.pricing.plan import base_plan, plan_cost
from levers_cli.store import Workspace
from tests.helpers import analyzed_sample_copy

runner = CliRunner()

#: one record of each of a few formats, as their APIs write them: an adapter claims only its own
RECORDS = {
    "openai-chat": {
        "request": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        "response": {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "gpt-4o-mini",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "hello"},
                 "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10},
        },
    },
    "anthropic": {
        "request": {"model": "claude-sonnet-4-5", "max_tokens": 64,
                    "messages": [{"role": "user", "content": "hi"}]},
        "response": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "hello"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 8, "output_tokens": 2},
        },
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory):
    """The analyzed sample (fake embedder), its base plan and every lever's finding."""
    ws = Workspace(analyzed_sample_copy(tmp_path_factory))
    config = load_config()
    levers = [lever() for lever in WATERFALL]
    findings = {lever.id: lever.analyze(ws, config) for lever in levers}
    yield ws, config, base_plan(ws), findings
    ws.close()


@pytest.mark.parametrize("lever_class", WATERFALL, ids=lambda c: c.name)
def test_a_lever_keeps_the_plan_shape_and_never_raises_its_cost(sample, lever_class) -> None:
    _, config, base, findings = sample
    lever: Lever = lever_class()
    before = float(plan_cost(base, config).sum())
    for level in LEVELS:
        plan = lever.apply(base, findings[lever.id], config, level)
        assert plan.columns == base.columns, level
        assert plan.schema == base.schema, level
        assert plan["call_id"].to_list() == base["call_id"].to_list(), level
        after = float(plan_cost(plan, config).sum())
        assert after <= before + 1e-9, (level, before, after)


@pytest.mark.parametrize("lever_class", WATERFALL, ids=lambda c: c.name)
def test_a_lever_describes_itself_and_analyzes_an_empty_workspace(tmp_path, lever_class) -> None:
    lever: Lever = lever_class()
    assert lever.name and lever.label and lever.effort
    assert lever.export_command is None or lever.export_command.startswith("levers ")
    with Workspace(tmp_path / "empty.duckdb") as ws:
        finding = lever.analyze(ws, load_config())
    assert finding.lever_id == lever.id and finding.calls_affected == 0
    assert finding.per_call is None or finding.per_call.height == 0


def test_the_waterfall_ids_are_the_levers_in_order() -> None:
    # the order they compound is the tuple's, ids 1..7 as DESIGN numbers them
    assert [lever.id for lever in WATERFALL] == list(range(1, len(WATERFALL) + 1))
    assert len({lever.name for lever in WATERFALL}) == len(WATERFALL)


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_an_adapter_is_registered_under_its_name(name: str) -> None:
    adapter = get_adapter(name)
    assert adapter.name == name


@pytest.mark.parametrize("fmt", list(RECORDS))
def test_only_its_own_adapter_claims_a_record(fmt: str) -> None:
    record = json.loads(json.dumps(RECORDS[fmt]))
    claimed = []
    for name in ADAPTERS:
        if name == "generic":  # the fallback that --map drives claims any record by design
            continue
        if get_adapter(name).sniff(record):
            claimed.append(name)
    # detection order: the first adapter that claims a record reads it
    assert claimed[:1] == [fmt], claimed


@pytest.mark.parametrize("kind", list(EXPORTERS))
def test_an_exporter_is_a_documented_command(kind: str) -> None:
    exporter = get_exporter(kind)
    assert exporter.__doc__ and "Raises" in exporter.__doc__
    result = runner.invoke(app, ["export", kind, "--help"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("kind", list(EXPORTERS))
def test_an_exporter_refuses_a_workspace_without_calls(tmp_path: Path, kind: str) -> None:
    with Workspace(tmp_path / "empty.duckdb") as ws, pytest.raises(WorkspaceError) as caught:
        run_export(kind, ws, load_config(), str(tmp_path / "out"))
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", list(EMBEDDERS))
def test_an_embedder_class_keeps_the_contract(name: str) -> None:
    embedder = EMBEDDERS[name]
    assert issubclass(embedder, Embedder)
    assert embedder.name == name
    assert callable(embedder.from_settings) and callable(embedder.encode)


def test_plan_cost_is_per_call_in_plan_order(sample) -> None:
    # the contract the lever tests above lean on: one USD figure per plan row
    _, config, base, _ = sample
    costs = plan_cost(base, config)
    assert isinstance(costs, pl.Series) and costs.len() == base.height
    assert float(costs.min()) >= 0.0
