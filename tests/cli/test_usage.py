"""Bad usage exits 2 (README), with the parser's one message and never a traceback: a value
outside an option's choices or range, and NaN or an infinity wherever a number is read
(``float()`` reads ``nan`` and ``inf``). The right values still reach the library."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from levers_cli.budget import backtest, solve_budget
from levers_cli.cli.options import Level
from levers_cli.config import load_config
from levers_cli.errors import UsageError
from levers_cli.levers import LEVELS
from levers_cli.report.check import check
from levers_cli.store import Workspace
from tests.helpers import analyzed_sample_copy

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def invoke(args: list[str]):
    from levers_cli.cli import app

    return CliRunner().invoke(app, args, env=ENV)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # issue 14: a traceback in report/fmt.py, "reachable", a silent pass
        (["simulate", "--budget", "nan"],
         "Invalid value for '--budget': nan is not a finite number"),
        (["simulate", "--budget", "inf"],
         "Invalid value for '--budget': inf is not a finite number"),
        (["simulate", "--budget", "0"], "Invalid value for '--budget': 0 is not above 0"),
        (["check", "--max-cost-growth", "nan"],
         "Invalid value for '--max-cost-growth': nan is not a finite number"),
        (["check", "--max-monthly-cost", "inf"],
         "Invalid value for '--max-monthly-cost': inf is not a finite number"),
        (["check", "--max-uncategorized-share", "nan"],
         "Invalid value for '--max-uncategorized-share': nan is not a finite number"),
        (["check", "--budget", "-inf"], "Invalid value for '--budget'"),
        (["report", "--budget", "nan"], "Invalid value for '--budget': nan is not a finite number"),
        (["simulate", "--backtest", "nan"],
         "Invalid value for '--backtest': nan is not a finite number"),
        # issue 14: exit 1 before
        (["simulate", "--level", "bogus"], "Invalid value for '--level'"),
        (["simulate", "--levers", "9"],
         "error: --levers: no lever 9; available: 1, 2, 3, 4, 5, 6, 7"),
        (["simulate", "--levers", "1,x"], "error: --levers '1,x': give lever ids 1–7"),
        (["simulate", "--backtest", "1.5"], "Invalid value for '--backtest': 1.5 is not below 1"),
        (["simulate", "--backtest", "0"], "Invalid value for '--backtest': 0 is not above 0"),
        (["report", "--to", "pdf"], "Invalid value for '--to'"),
        (["report", "--compare", "7d", "--compare-run", "1"],
         "error: --compare and --compare-run: give one of them"),
        (["report", "--compare-run", "0"], "Invalid value for '--compare-run'"),
        (["export", "caps", "--level", "bogus"], "Invalid value for '--level'"),
        (["export", "batch", "--select", "nope"], "Invalid value for '--select'"),
        (["export", "lora", "--level", "high"], "Invalid value for '--level'"),
        (["check", "--max-cost-growth", "-2"], "Invalid value for '--max-cost-growth'"),
        (["check", "--max-uncategorized-share", "1.5"],
         "Invalid value for '--max-uncategorized-share'"),
        (["analyze", "log.jsonl", "--embedder", "bogus", "-o", "out.json"],
         "error: unknown embedder 'bogus' (--embedder or [embed] embedder): not a registered "
         "embedder (auto, minilm, static, tfidf), not a model folder"),
    ],
)  # fmt: skip
def test_bad_usage_exits_2_with_one_message(tmp_path: Path, args: list[str], message: str) -> None:
    # no workspace: the usage error comes first (exit 1 "no workspace" otherwise)
    result = invoke([*args, "-w", str(tmp_path / "absent.duckdb")])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert result.stdout == ""
    assert not (tmp_path / "absent.duckdb").exists()


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(analyzed_sample_copy(tmp_path_factory))


@pytest.mark.parametrize(
    "args",
    [["simulate", "--budget", "nan"], ["simulate", "--budget", "inf"],
     ["check", "--max-cost-growth", "nan"], ["report", "--budget", "inf", "-o", "-"]],
)  # fmt: skip
def test_nan_and_inf_on_a_real_workspace(sample: str, args: list[str]) -> None:
    """As the issue met them: a traceback, "reachable" (exit 0), a silent pass (exit 0)."""
    result = invoke([*args, "-w", sample])
    assert result.exit_code == 2, result.output
    assert "is not a finite number" in result.stderr and result.stdout == ""


def test_the_level_choices_are_the_levers_levels() -> None:
    assert [level.value for level in Level] == list(LEVELS)


def test_a_chosen_level_reaches_the_simulation(sample: str) -> None:
    result = invoke(["simulate", "-w", sample, "--level", "aggressive", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data["monthly_cost_after"]) == ["aggressive"]
    assert data["monthly_cost_after"]["aggressive"] < data["monthly_cost_before"]


def test_a_chosen_selection_and_level_reach_the_export(sample: str, tmp_path: Path) -> None:
    args = ["export", "batch", "-w", sample, "-o", str(tmp_path), "--select", "candidates"]
    result = invoke([*args, "--level", "conservative", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"]["requests"] > 0
    assert (tmp_path / "batch" / "custom_ids.csv").exists()


def test_the_library_refuses_what_the_cli_refuses(ws: Workspace) -> None:
    """A notebook user calling the library gets the same usage error (exit_code 2)."""
    config = load_config(None)
    for budget in (math.nan, math.inf, 0.0):
        with pytest.raises(UsageError, match="finite number above 0"):
            solve_budget(ws, config, [], {}, budget)
    with pytest.raises(UsageError, match="between 0 and 1"):
        backtest(ws, config, [], math.nan)
    for limit in ("max_monthly_cost", "max_uncategorized_share", "max_cost_growth", "budget"):
        with pytest.raises(UsageError, match="give a finite number"):
            check(ws, config, **{limit: math.nan})
