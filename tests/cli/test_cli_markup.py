"""Log text is text: prompts, labels and model names holding Rich markup (``[/INST]``,
``[bold]``, ``[INST]``, Llama-2's chat tags) reach the terminal as written, never as markup."""

from __future__ import annotations

import json

from rich.console import Console
from typer.testing import CliRunner

from levers_cli.cli import app
from levers_cli.cli.progress import progress_bars
from levers_cli.cli.render import render_summary
from tests.helpers import openai_pair

runner = CliRunner()
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
SYSTEM = "You are [bold]Aria[/bold], answer in [INST] blocks [/INST] only. [red]Never[/red] guess."
ODD_MODEL = "acme/[bold]llama-[/INST]"
ORDERS = ("1042", "2211", "3379", "4410", "5512")


def _log(tmp_path):
    """60 calls: the same templated question about five orders (exact repeats, a stable
    template), under a system prompt full of tags, and 4 calls to an unpriced model whose
    name holds tags."""
    rows = []
    for i in range(60):
        order = ORDERS[i % len(ORDERS)]
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"[INST] Where is order {order} [/INST] [bold]now"},
        ]
        model = ODD_MODEL if i % 15 == 0 else "gpt-4o"
        rows.append(
            openai_pair(f"c{i}", model, messages, f"Order {order} ships today.",
                        1_767_225_600 + i * 3_600, 400, 20)
        )  # fmt: skip
    path = tmp_path / "logs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _analyze(tmp_path, registered_fake, *extra):
    args = ["analyze", _log(tmp_path), "-w", str(tmp_path / "w.duckdb")]
    args += ["-o", str(tmp_path / "a.json"), "--embedder", registered_fake, *extra]
    return runner.invoke(app, args, env=ENV)


def test_analyze_tables_show_log_text_as_written(tmp_path, registered_fake):
    result = _analyze(tmp_path, registered_fake)
    assert result.exit_code == 0, result.output
    # spend by model (provider inferred from the name) and the unpriced models table
    assert f"acme/{ODD_MODEL} " in result.stdout
    assert f"│ {ODD_MODEL} │" in result.stdout


def test_simulate_evidence_shows_templates_holding_closing_tags(tmp_path, registered_fake):
    assert _analyze(tmp_path, registered_fake).exit_code == 0
    result = runner.invoke(app, ["simulate", "-w", str(tmp_path / "w.duckdb")], env=ENV)
    assert result.exit_code == 0, result.output
    evidence = result.stdout.split("top evidence", 1)[1]
    assert "[/INST]" in evidence and "[INST]" in evidence


def test_summary_labels_and_models_are_not_markup(tmp_path, registered_fake):
    """Every log-derived cell of the analyze tables, with labels no clustering would make."""
    result = _analyze(tmp_path, registered_fake, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    odd = {
        "label": "[bold]refund[/bold] / [INST] / [/INST]",
        "top_model": "[link=x]gpt[/link]",
    }
    summary["categories"][0].update(odd)
    summary["categorization"]["warning"] = "queries like [/INST] stay apart"
    summary["since"] = "[7d]"
    console = Console(record=True, width=300, color_system=None)
    render_summary(console, summary)
    text = console.export_text()
    assert odd["label"] in text and odd["top_model"] in text
    assert "queries like [/INST] stay apart" in text
    assert "calls from [7d] on" in text


def test_progress_stage_text_is_not_markup():
    console = Console(record=True, width=200, color_system=None, force_terminal=False)
    with progress_bars(console) as progress:
        progress("embedder: minilm (pip install 'levers-cli[static]')", 1, 1)
    assert "levers-cli[static]" in console.export_text()
