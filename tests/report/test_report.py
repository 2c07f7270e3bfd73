"""``levers report``: the report dict, the plan, HTML escaping, Markdown, JSON, redaction.

One small generated log (three kinds of traffic over two weeks, with XSS payloads and an email
address in some queries) is analyzed once per module with the fake embedder; the rendered
report is shared by the tests."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from levers_cli.cli import app
from levers_cli.config import load_config
from levers_cli.report import REPORT_SCHEMA_VERSION, gather, render_html, render_markdown
from levers_cli.report.actions import WHEN
from levers_cli.report.markdown import MAX_CHARS
from levers_cli.report.sanitize import md_cell
from levers_cli.store import Workspace
from tests.helpers import FakeEmbedder, openai_pair

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
EMAIL = "ana.lopez@example.com"
DAY = 86_400
START = 1_790_000_000  # 2026-09-21T12:53:20Z

TOPICS = {
    "billing": [
        "How do I cancel my subscription plan?",
        "Where can I download my invoices for last month?",
        "Why was my card charged twice this month?",
        "Can I switch my subscription plan to yearly billing?",
    ],
    "code": [
        "Why does my python script raise KeyError when the dict key is missing?",
        "How do I read a large csv file in python pandas without running out of memory?",
        "What is the difference between a python list and a tuple?",
        "How do I retry a failed http request in python with exponential backoff?",
    ],
    "translate": [
        "Translate to French: the meeting is moved to Thursday afternoon",
        "Translate to French: please send the signed contract by Friday",
        "Translate to French: our office is closed on public holidays",
        "Translate to French: thank you for your order, it ships tomorrow",
    ],
}


def write_log(
    path: Path,
    *,
    weeks: int = 2,
    payloads: bool = True,
    seed: int = 0,
    start: int = START,
    out_scale: int = 1,
) -> Path:
    """A gzipped OpenAI Chat Completions log: each topic's queries once a day per week, on
    gpt-4o (code) or gpt-4o-mini; with ``payloads`` two queries carry XSS payloads and one an
    email address; ``out_scale`` multiplies the output tokens. Returns ``path``."""
    records = []
    n = 0
    for day in range(7 * weeks):
        for topic, queries in TOPICS.items():
            query = queries[(day + seed) % len(queries)]
            if payloads and day == 3 and topic == "billing":
                query = f"My invoice shows {SCRIPT} as the company name, why?"
            if payloads and day == 4 and topic == "billing":
                query = f"Where can I download my invoices? Name: {IMG}"
            if payloads and day == 5 and topic == "billing":
                query = f"Please email my invoices to {EMAIL} every month"
            model = "gpt-4o-2024-08-06" if topic == "code" else "gpt-4o-mini-2024-07-18"
            n += 1
            records.append(
                openai_pair(
                    f"chatcmpl-{seed}-{n}",
                    model,
                    [{"role": "user", "content": query}],
                    f"Answer about {topic} number {day % 3}.",
                    start + day * DAY + 3600 * (1 + list(TOPICS).index(topic)),
                    400 + 10 * (day % 5),
                    (80 + 20 * (day % 4)) * out_scale,
                )
            )
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")
    return path


def analyzed(tmp: Path, log: Path) -> Path:
    from levers_cli.analysis import analyze

    db = tmp / "w.duckdb"
    with Workspace(db) as ws:
        analyze(ws, [str(log)], embedder=FakeEmbedder())
    return db


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("report")
    db = analyzed(tmp, write_log(tmp / "log.jsonl.gz"))
    cfg = load_config(None)
    with Workspace(db, create=False) as ws:
        data = gather(ws, cfg)
    return {"db": db, "data": data, "html": render_html(data), "md": render_markdown(data)}


def test_report_dict_has_schema_version_span_and_headline(small: dict) -> None:
    data = small["data"]
    assert data["schema_version"] == REPORT_SCHEMA_VERSION == 1
    # 14 days × 3 topics = 42 calls; first call day 0 + 1 h, last day 13 + 3 h
    assert data["span"]["calls"] == 42
    assert data["span"]["span_days"] == pytest.approx(13 + 2 / 24)
    head = data["headline"]
    low, high = head["plan_range_usd"]
    assert low <= head["plan_monthly_usd"] <= high <= head["monthly_cost_before"]
    assert data["price_data"].startswith("genai-prices ")
    json.dumps(data)  # everything is JSON-able


def test_plan_is_ordered_by_saving_per_effort_with_actions(small: dict) -> None:
    plan = small["data"]["plan"]
    assert sorted(p["id"] for p in plan) == [1, 2, 3, 4, 5, 6, 7]
    units = {"low": 1, "medium": 3, "high": 8}  # defaults.toml [report] effort_units
    paying = [p for p in plan if p["standalone_usd_month"] > 0]
    alone = {
        lv["id"]: lv["standalone_usd_month"]["expected"]
        for lv in small["data"]["simulation"]["levers"]
    }
    for p in paying:
        assert p["standalone_usd_month"] == alone[p["id"]]
        assert p["saving_per_effort"] == pytest.approx(
            p["standalone_usd_month"] / units[p["effort"]]
        )
        assert p["when"] in WHEN
    ratios = [p["saving_per_effort"] for p in paying]
    assert ratios == sorted(ratios, reverse=True)
    assert all(p["when"] == "not now" for p in plan[len(paying) :])
    assert [p["rank"] for p in plan] == list(range(1, 8))
    routing = next(p for p in plan if p["name"] == "routing")
    assert routing["export"] == "levers export router-config"
    assert all(p["action"] for p in plan)


def test_plan_slot_follows_effort_and_share() -> None:
    from levers_cli.report.actions import make_plan

    def lever(i: int, name: str, saving: float) -> dict:
        return {"id": i, "name": name, "basis": "evidence", "details": {}, "evidence": [],
                "saving_usd_month": {"expected": saving}}  # fmt: skip

    sim = {
        "monthly_cost_before": 100.0,
        "levers": [lever(4, "caps", 1.0), lever(7, "batch", 5.0), lever(6, "lora", 30.0)],
    }
    plan = make_plan(sim, {4: "low", 7: "low", 6: "high"}, load_config(None))
    by = {p["name"]: p for p in plan}
    # caps: low → this week, 1 % < minor_share 2 % → one slot later
    assert by["caps"]["when"] == "next sprint"
    assert by["batch"]["when"] == "this week"  # low, 5 %
    # lora: high → next quarter, 30 % ≥ major_share 20 % → one slot sooner
    assert by["lora"]["when"] == "next month"
    # saving per effort: batch 5/1 = 5, lora 30/8 = 3.75, caps 1/1 = 1
    assert [p["name"] for p in plan] == ["batch", "lora", "caps"]


def test_plan_ranks_by_the_lever_alone_and_shows_its_marginal_saving() -> None:
    """Batch saves $6 alone but $1 after the levers before it; caps $3 either way; LoRA $0.80
    alone and nothing after routing. Per effort unit (low 1, high 8): batch 6, caps 3, LoRA
    0.1; LoRA is not "not now" (it saves alone) but its share (0.8 % < minor_share 2 %) puts
    it one slot after next quarter, which is the last."""
    from levers_cli.report.actions import make_plan

    def lever(i: int, name: str, marginal: float, alone: float) -> dict:
        return {"id": i, "name": name, "basis": "evidence", "details": {}, "evidence": [],
                "saving_usd_month": {"expected": marginal},
                "standalone_usd_month": {"expected": alone}}  # fmt: skip

    sim = {
        "monthly_cost_before": 100.0,
        "levers": [lever(4, "caps", 3.0, 3.0), lever(6, "lora", 0.0, 0.8),
                   lever(7, "batch", 1.0, 6.0)],
    }  # fmt: skip
    plan = make_plan(sim, {4: "low", 6: "high", 7: "low"}, load_config(None))
    assert [(p["name"], p["standalone_usd_month"], p["saving_usd_month"]) for p in plan] == [
        ("batch", 6.0, 1.0),
        ("caps", 3.0, 3.0),
        ("lora", 0.8, 0.0),
    ]
    assert [p["saving_per_effort"] for p in plan] == pytest.approx([6.0, 3.0, 0.1])
    assert [p["when"] for p in plan] == ["this week", "this week", "next quarter"]


def test_report_shows_standalone_savings_and_the_claims(small: dict) -> None:
    """The plan and waterfall carry each lever's saving alone beside its marginal one, and
    the claims of claims.toml sit beside what was measured (one row per claim of a simulated
    lever: all ten here), in the Markdown and the HTML report alike."""
    from levers_cli.simulate import load_claims

    md, html, data = small["md"], small["html"], small["data"]
    assert "| alone/month | share | in waterfall/month |" in md
    assert "| alone (expected) | basis |" in md
    claims = data["simulation"]["claims"]
    assert len(claims) == len(load_claims()["claim"]) == 10
    assert "### Claims of the article levers grew from, beside what levers measured here" in md
    for claim in claims:
        assert md_cell(claim["wording"]) in md
        assert claim["wording"].replace("×", "&#215;") in html or claim["wording"] in html
    assert 'id="claims"' in html and "alone / month" in html


def test_xss_payloads_are_escaped_in_html(small: dict) -> None:
    html = small["html"]
    assert SCRIPT not in html
    assert "<img src=x" not in html
    # the payload text is on the page as text: in an escaped table cell or escaped JSON
    escaped = ("&lt;script&gt;alert(1)&lt;/script&gt;", "\\u003cscript\\u003ealert(1)")
    assert any(e in html for e in escaped)
    # the only <script> elements are the two of the page itself
    assert len(re.findall(r"<script\b", html)) == 2


def test_redaction_on_by_default(small: dict) -> None:
    data = small["data"]
    text = json.dumps(data)
    assert EMAIL not in text and EMAIL not in small["html"]
    assert data["redaction"] == {
        "enabled": True,
        "counts": {"EMAIL": data["redaction"]["counts"]["EMAIL"]},
    }
    assert data["redaction"]["counts"]["EMAIL"] >= 1
    assert any("[EMAIL]" in p["text"] for p in data["map"]["points"])


def test_html_is_self_contained(small: dict) -> None:
    html = small["html"]
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "vegaEmbed" in html and 'id="chart-waterfall"' in html
    assert 'id="chart-category-map"' in html


def test_category_map_points_are_real_queries(small: dict) -> None:
    points = small["data"]["map"]["points"]
    with Workspace(small["db"], create=False) as ws:
        distinct = ws.con.execute("SELECT count(DISTINCT query_hash) FROM calls").fetchone()[0]
    assert small["data"]["map"]["sampled"] == len(points) == distinct
    queries = {q for qs in TOPICS.values() for q in qs}
    assert sum(p["text"] in queries for p in points) == len(queries)


def test_markdown_escapes_and_fits(small: dict) -> None:
    md = small["md"]
    assert len(md) <= MAX_CHARS
    assert "### The plan" in md and "### Waterfall" in md
    assert "<script>" not in md and "<img" not in md
    assert md_cell("a|b <i>x</i> *y*") == "a\\|b &lt;i&gt;x&lt;/i&gt; \\*y\\*"


def test_markdown_is_cut_to_the_limit(small: dict) -> None:
    data = json.loads(json.dumps(small["data"]))
    data["spend_by_model"] = data["spend_by_model"] * 2000  # a huge table
    md = render_markdown(data)
    assert len(md) <= MAX_CHARS
    assert "### Waterfall" in md and "### Spend by model" not in md


def test_cli_report_json_and_md(small: dict, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["report", "-w", str(small["db"]), "--to", "json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["schema_version"] == 1 and len(data["plan"]) == 7
    md = tmp_path / "r.md"
    args = ["report", "-w", str(small["db"]), "--to", "md", "-o", str(md), "--compare", "7d"]
    result = runner.invoke(app, [*args, "--charts"])
    assert result.exit_code == 0, result.output
    text = md.read_text()
    assert "### Week over week" in text
    assert "](r-charts/waterfall.svg)" in text
    assert (tmp_path / "r-charts" / "waterfall.svg").read_text().startswith("<svg")


def test_cli_report_old_format_spelling_still_works_with_a_warning(
    small: dict, tmp_path: Path
) -> None:
    """`report -f` / `--format` (a log format in analyze) became `--to`; for one release the
    old spelling writes the same report and says so on stderr."""
    runner = CliRunner()
    out = tmp_path / "old.json"
    result = runner.invoke(app, ["report", "-w", str(small["db"]), "-f", "json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["schema_version"] == 1
    assert result.stderr.startswith(
        "warning: report --format/-f is deprecated and goes in the next release; use --to\n"
    )
    both = runner.invoke(app, ["report", "-w", str(tmp_path / "none"), "--to", "md", "-f", "json"])
    assert both.exit_code == 2
    assert both.stderr == (
        "error: report --format/-f and --to say different things; give --to only\n"
    )
    assert not (tmp_path / "none").exists()


def test_cli_report_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["report", "-w", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "Traceback" not in result.output
    result = runner.invoke(
        app, ["report", "-w", str(tmp_path / "x"), "--to", "pdf"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2  # bad usage (tests/cli/test_usage.py has every such option)
    assert "'pdf' is not one of 'html', 'md', 'json'" in result.output


def test_usd_formats_tiny_amounts_without_false_precision() -> None:
    from levers_cli.report.fmt import usd

    assert usd(-0.00000466) == "<$0.0001"  # a hundredth of a cent is the smallest shown
    assert usd(0.0000466) == "<$0.0001"
    assert usd(-1e-17) == usd(1e-17) == usd(0) == "$0"  # float noise is zero, unsigned
    assert usd(0.000123) == "$0.000123"
    assert usd(-0.0432) == "−$0.0432"
    assert usd(0.5) == "$0.50"
    assert usd(1234.5) == "$1,234.50"
    assert usd(None) == "unknown"


def _mixed(data: dict) -> dict:
    """``data`` with its caching lever's expected saving $0.30 on evidence and $0.10 on
    assumption: mixed, 75 % on evidence."""
    import copy

    from levers_cli.report.actions import make_plan

    out = copy.deepcopy(data)
    for lever in out["simulation"]["levers"]:
        if lever["name"] == "caching":
            lever["basis"] = "mixed"
            lever["saving_usd_month"]["expected"] = 0.4
            lever["saving_by_basis"]["expected"] = {"evidence": 0.3, "assumption": 0.1}
    efforts = {p["id"]: p["effort"] for p in out["plan"]}
    out["plan"] = make_plan(out["simulation"], efforts, load_config(None))
    return out


def test_mixed_basis_shows_its_evidence_share_in_html_and_markdown(small: dict) -> None:
    data = _mixed(small["data"])
    md = render_markdown(data)
    plan_row = next(line for line in md.splitlines() if "| 3. caching |" in line)
    waterfall_row = next(line for line in md.splitlines() if line.startswith("| 3 | caching |"))
    assert plan_row.endswith("| mixed 75 % |") and waterfall_row.endswith("| mixed 75 % |")
    html = render_html(data)
    assert html.count('<span class="tag mixed">mixed 75 %</span>') == 2  # plan + waterfall


def test_plan_actions_count_in_singular_and_never_end_on_a_blank_name() -> None:
    from levers_cli.report.actions import make_plan

    def lever(i: int, name: str, details: dict, evidence: list) -> dict:
        return {"id": i, "name": name, "basis": "evidence", "details": details,
                "evidence": evidence, "saving_usd_month": {"expected": 1.0}}  # fmt: skip

    sim = {
        "monthly_cost_before": 100.0,
        "levers": [
            lever(1, "routing", {"levels": {"expected": {"routed_calls": 1,
                  "routed_categories": [7]}}}, [{"category_id": 7, "label": "refunds"}]),
            lever(2, "context", {"summaries": {"expected": 1},
                  "tokens_removed": {"expected": 1}, "multi_turn_conversations": 1}, []),
            lever(3, "caching", {"exact_hits_by_level": {"expected": 1}}, []),
            lever(5, "materialize", {}, [{"calls": 1, "template": "status of order <num>"}]),
            lever(6, "lora", {}, [{"levels": ["expected"], "examples": 1, "label": ""}]),
            lever(7, "batch", {"moved_calls": {"expected": 1}},
                  [{"job": "", "query_start": "  "}]),
        ],
    }  # fmt: skip
    efforts = {1: "medium", 2: "medium", 3: "low", 5: "medium", 6: "high", 7: "low"}
    actions = {p["name"]: p["action"] for p in make_plan(sim, efforts, load_config(None))}
    assert actions["routing"] == (  # no provider given: every [tiers] cheap model, sorted
        "Route 1 call in 1 category to the cheap tier (claude-3-5-haiku-latest, "
        "gemini-2.0-flash, gpt-4o-mini): “refunds”"
    )
    assert actions["context"] == (
        "Summarize long conversation histories: 1 summary removes 1 re-sent input token over "
        "the log (1 multi-turn conversation)"
    )
    assert actions["caching"] == "Serve 1 repeat (1 exact, 0 semantic) from a cache"
    assert actions["materialize"] == (
        "Answer 1 recurring template (1 call) by script: “status of order <num>”"
    )
    assert actions["lora"] == "Fine-tune a LoRA model on 1 accepted answer from 1 category"
    # no query text and no job name: the action ends after what it says, not on ": "
    assert actions["batch"] == ("Send 1 call that needs no real-time answer through the Batch API")
    sim["levers"][-1]["evidence"] = [{"job": "nightly triage", "query_start": ""}]
    actions = {p["name"]: p["action"] for p in make_plan(sim, efforts, load_config(None))}
    assert actions["batch"].endswith("through the Batch API: “nightly triage”")
