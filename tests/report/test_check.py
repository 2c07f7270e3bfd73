"""``levers check`` and ``--compare``: limits on a small workspace with hand-computed figures."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from levers_cli.cli import app
from levers_cli.config import load_config
from levers_cli.report.check import check
from levers_cli.report.compare import compare
from levers_cli.store import Workspace
from tests.helpers import FakeEmbedder, openai_pair

DAY = 86_400
T0 = 1_790_000_000


@pytest.fixture(scope="module")
def two_weeks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gpt-4o-mini calls at days 1…7 (1,000 input + 100 output tokens) and days 8…14
    (1,000 + 200). Two of the second week's calls are then marked uncategorized."""
    from levers_cli.analysis import analyze

    tmp = tmp_path_factory.mktemp("check")
    log = tmp / "log.jsonl.gz"
    with gzip.open(log, "wt") as fh:
        for day in range(1, 15):
            out = 100 if day <= 7 else 200
            messages = [{"role": "user", "content": f"what is on the menu on day {day}"}]
            record = openai_pair(f"c{day}", "gpt-4o-mini-2024-07-18", messages, "soup",
                                 T0 + day * DAY, 1000, out)  # fmt: skip
            fh.write(json.dumps(record) + "\n")
    db = tmp / "w.duckdb"
    with Workspace(db) as ws:
        analyze(ws, [str(log)], embedder=FakeEmbedder())
        ws.con.execute("UPDATE calls SET category_id = 0")
        ws.con.execute("UPDATE calls SET category_id = -1 WHERE call_id IN ('c13', 'c14')")
    return db


def test_compare_week_over_week_by_hand(two_weeks: Path) -> None:
    with Workspace(two_weeks, create=False) as ws:
        c = compare(ws, load_config(None), period="7d", budget=0.01)
    # gpt-4o-mini list prices: $0.15 / $0.60 per million input / output tokens
    # week 1: 7 × (1000 × 0.15 + 100 × 0.60) / 1e6 = 7 × 0.00021 = 0.00147 USD over 6 days
    # week 2: 7 × (1000 × 0.15 + 200 × 0.60) / 1e6 = 7 × 0.00027 = 0.00189 USD over 6 days
    # (the 7d window ends at day 14; day 7 falls on its start, which belongs to week 1)
    assert c["previous"]["calls"] == 7 and c["current"]["calls"] == 7
    assert c["previous"]["spend_usd"] == pytest.approx(0.00147)
    assert c["current"]["spend_usd"] == pytest.approx(0.00189)
    assert c["current"]["monthly_run_rate_usd"] == pytest.approx(0.00189 * 30 / 6)
    assert c["run_rate_change"] == pytest.approx(0.00189 / 0.00147 - 1)  # +28.57 %
    assert c["current"]["uncategorized_share"] == pytest.approx(2 / 7)
    # new traffic: the two uncategorized calls (category 0 existed the week before)
    assert c["new_traffic"]["calls"] == 2
    assert c["budget"] == {"budget_usd_month": 0.01, "run_rate_usd_month": pytest.approx(0.00945),
                           "within": True}  # fmt: skip


def test_check_breaches_one_line_each(two_weeks: Path) -> None:
    with Workspace(two_weeks, create=False) as ws:
        result = check(
            ws, load_config(None), max_monthly_cost=0.009, max_uncategorized_share=0.25,
            max_cost_growth=0.2,
        )  # fmt: skip
    # run rate 0.00945 > 0.009; share 2/7 = 28.6 % > 25 %; growth 28.6 % > 20 %
    assert not result["passed"]
    assert result["breaches"] == [
        "monthly cost $0.00945 (run rate of the last 7d) is over the limit $0.009",
        "uncategorized share 28.6 % of the last 7d's calls is over the limit 25.0 %",
        "cost grew +28.6 % over the 7d before ($0.00735 → $0.00945 a month), over the limit "
        "+20.0 %",
    ]


def test_check_cli_exit_codes(two_weeks: Path) -> None:
    runner = CliRunner()
    base = ["check", "-w", str(two_weeks)]
    tight = runner.invoke(app, [*base, "--max-monthly-cost", "0.009", "--max-cost-growth", "0.3"])
    assert tight.exit_code == 4, tight.output
    assert tight.stdout.strip().splitlines() == [
        "monthly cost $0.00945 (run rate of the last 7d) is over the limit $0.009"
    ]
    loose = runner.invoke(app, [*base, "--max-monthly-cost", "0.01", "--max-cost-growth", "0.3"])
    assert loose.exit_code == 0 and "ok: within every limit" in loose.stdout
    as_json = runner.invoke(app, [*base, "--max-uncategorized-share", "0.1", "--json"])
    assert as_json.exit_code == 4
    assert json.loads(as_json.stdout)["measured"]["uncategorized_share"] == pytest.approx(2 / 7)
    none = runner.invoke(app, base)
    assert none.exit_code == 2 and "give at least one limit" in none.output
