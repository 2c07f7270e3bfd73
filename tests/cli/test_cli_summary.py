"""What ``levers analyze`` prints about repeats: every query lands in a bucket of the
histogram, none is dropped for having a rare count."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from levers_cli.cli import app
from levers_cli.cli.render import occurrence_buckets
from tests.helpers import openai_pair

runner = CliRunner()
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
#: distinct queries per number of occurrences: 5 queries once, 3 twice, … 1 six and 1 eight times
PLANTED = {1: 5, 2: 3, 3: 2, 4: 2, 6: 1, 8: 1}


def test_the_repeat_histogram_shows_every_bucket(tmp_path, registered_fake):
    rows, n = [], 0
    for times, queries in PLANTED.items():
        for q in range(queries):
            for _ in range(times):
                n += 1
                question = f"question {times}-{q}: how do I rotate key number {times * 10 + q}?"
                rows.append(
                    openai_pair(f"c{n}", "gpt-4o-mini", [{"role": "user", "content": question}],
                                "Use the console.", 1_767_225_600 + n * 600, 50, 10)
                )  # fmt: skip
    logs = tmp_path / "logs.jsonl"
    logs.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = runner.invoke(
        app,
        ["analyze", str(logs), "-w", str(tmp_path / "w.duckdb"), "-o", str(tmp_path / "a.json"),
         "--embedder", registered_fake],
        env=ENV,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert n == 39
    assert "distinct queries by occurrences: 1× 5, 2× 3, 3× 2, 4× 2, 6× 1, 8× 1" in result.stdout


def test_counts_past_nine_share_wide_buckets():
    occurrences = {"1": 3928, "2": 198, "9": 1, "10": 2, "17": 1, "19": 1, "30": 2, "99": 1,
                   "100": 1, "999": 1, "1000": 4, "25000": 1}  # fmt: skip
    assert occurrence_buckets(occurrences) == [
        ("1×", 3928), ("2×", 198), ("9×", 1), ("10–19×", 4), ("20–49×", 2), ("50–99×", 1),
        ("100–999×", 2), ("1,000×+", 5),
    ]  # fmt: skip
