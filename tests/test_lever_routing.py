"""Lever 1, routing: difficulty, the calibrated threshold, evidence vs assumption, labels, apply.

Hand-made workspace (OpenAI pairs, one day long, categories set by hand); default [routing]
settings: feature scales input 4000, code 20, depth 4, reasoning 1000, output 500, equal
weights, category quantile 0.75, mix weight 0.5; strong share 0.75 / 0.5 / 0.25; difficulty
ceiling 0.1 / 0.15 / 0.2. Prices (genai-prices, USD per token): gpt-4o 2.5e-6 in, 1e-5 out;
gpt-4o-mini 1.5e-7 in, 6e-7 out. Routing one call saves in × 2.35e-6 + out × 9.4e-6.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl
import pytest

from levers_cli.analysis import analyze
from levers_cli.config import load_config
from levers_cli.errors import InputFileError
from levers_cli.export.label_sheet import export_label_sheet
from levers_cli.levers import LEVERS
from levers_cli.levers.routing import RoutingLever
from levers_cli.levers.routing.features import is_strong_or_pricier, wilson_lower
from levers_cli.levers.routing.labels import LabelSheetError, read_labels
from levers_cli.pricing.models import model_family
from levers_cli.pricing.plan import base_plan
from levers_cli.simulate import run_waterfall
from levers_cli.store import Workspace
from tests.helpers import ROOT, FakeEmbedder, analyzed_sample_copy, openai_pair

SAMPLE = ROOT / "sample_logs" / "app_logs.jsonl.gz"
TRUTHS = json.loads((ROOT / "sample_logs" / "truths.json").read_text())
T0 = 1_790_000_000
CODE = "\n".join(f"x{i} = {i}" for i in range(20))


def _pair(cid: str, model: str, query: str, prompt: int, completion: int, t: int) -> dict:
    question = [{"role": "user", "content": query}]
    return openai_pair(cid, model, question, "ok", T0 + t, prompt, completion)


def _tiny(ws: Workspace, tmp_path: Path) -> None:
    """cat 0 notes: n1-n4 gpt-4o (1000 in, 100 out), n5 the same but about OWASP (forced
    strong), n6 on gpt-4o-mini (a cheap answer). cat 1 code: c1-c5 gpt-4o (4000 in, 500 out,
    20 lines of code), c6 the same with 400 out. cat 2 mid: m1, m2 gpt-4o (2000 in, 250 out).
    The last call is one day after the first: monthly = log × 30."""
    rows = [_pair(f"n{i}", "gpt-4o", f"summarize notes {i}", 1000, 100, i - 1) for i in range(1, 5)]
    rows.append(_pair("n5", "gpt-4o", "check notes 5 against OWASP", 1000, 100, 5))
    rows.append(_pair("n6", "gpt-4o-mini", "summarize notes 6", 1000, 100, 6))
    for i in range(1, 7):
        out = 400 if i == 6 else 500
        rows.append(
            _pair(f"c{i}", "gpt-4o", f"fix bug {i}:\n```python\n{CODE}\n```", 4000, out, 10 + i)
        )
    rows.append(_pair("m1", "gpt-4o", "plan the release", 2000, 250, 20))
    rows.append(_pair("m2", "gpt-4o", "plan the migration", 2000, 250, 86_400))
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    analyze(ws, [str(path)], embedder=FakeEmbedder())
    ws.con.execute(
        "UPDATE calls SET category_id = CASE left(call_id, 1) WHEN 'n' THEN 0 WHEN 'c' THEN 1 "
        "ELSE 2 END"
    )
    ws.con.execute("DELETE FROM categories")
    ws.con.execute(
        "INSERT INTO categories (category_id, label, size) VALUES "
        "(0, 'notes', 6), (1, 'code', 6), (2, 'mid', 2)"
    )


@pytest.fixture
def tiny(ws, tmp_path):
    _tiny(ws, tmp_path)
    return ws


def _routed(finding, level: str) -> set[str]:
    return set(finding.per_call.filter(pl.col(f"route_{level}"))["call_id"])


def test_registered_and_model_tiers():
    config = load_config()
    assert LEVERS[1] is RoutingLever and RoutingLever.effort == "medium"
    assert model_family("gpt-4o-2024-08-06") == "gpt-4o"
    assert model_family("claude-3-5-haiku-20241022") == model_family("claude-3-5-haiku-latest")
    assert is_strong_or_pricier(config, "openai", "gpt-4o-2024-08-06")
    assert not is_strong_or_pricier(config, "openai", "gpt-4o-mini-2024-07-18")  # the cheap tier
    assert not is_strong_or_pricier(config, "openai", "o4-mini")  # 1.1/4.4 < 2.5/10 USD/MTok
    assert is_strong_or_pricier(config, "anthropic", "claude-opus-4-1")  # 15/75 ≥ 3/15
    assert not is_strong_or_pricier(config, "openai", "no-such-model")


def test_wilson_lower_bound_by_hand():
    # p = 3/4, z² = 3.8416: (0.75 + 0.4802 − 1.96·√(0.046875 + 0.060025)) / (1 + 0.9604)
    #   = (1.2302 − 0.640834) / 1.9604 = 0.30064
    assert wilson_lower(3, 4, 1.96) == pytest.approx(0.30064, abs=1e-5)
    assert wilson_lower(3, 4, 0.0) == 0.75 and wilson_lower(0, 0, 1.96) == 0.0


def test_difficulty_threshold_and_evidence(tiny):
    finding = RoutingLever().analyze(tiny, load_config())
    rows = {r["category_id"]: r for r in finding.evidence}
    # scores: notes (1000/5000 + 100/600)/5 = 0.073333; with 1 of 6 calls on the cheap tier:
    # 0.073333 × (1 − 0.5/6) = 0.067222. code: (0.5 + 20/40 + 0.5)/5 = 0.3 (c6: 0.288889; the
    # 0.75 quantile of the six is 0.3). mid: (2000/6000 + 250/750)/5 = 0.133333.
    assert rows[0]["difficulty"] == pytest.approx(0.0672, abs=1e-4)
    assert rows[1]["difficulty"] == pytest.approx(0.3, abs=1e-4)
    assert rows[2]["difficulty"] == pytest.approx(0.1333, abs=1e-4)
    assert rows[1]["mean_code_lines"] == 20
    levels = finding.details["levels"]
    # 13 eligible gpt-4o calls; movable: notes 4 (n5 is forced), mid 2, code 6.
    # conservative: 0.25 × 13 = 3.25 < 4 → threshold at notes' difficulty, nothing routes.
    assert levels["conservative"]["threshold"] == pytest.approx(0.0672, abs=1e-4)
    assert _routed(finding, "conservative") == set()
    # expected: 6.5 ≥ 4 + 2; code (0.3) is above the 0.15 ceiling → threshold 0.15.
    assert levels["expected"]["threshold"] == 0.15
    assert _routed(finding, "expected") == {"n1", "n2", "n3", "n4", "m1", "m2"}
    assert levels["expected"]["strong_share_achieved"] == pytest.approx(1 - 6 / 13, abs=1e-4)
    assert _routed(finding, "aggressive") == _routed(finding, "expected")
    assert finding.details["keyword_forced"] == {"strong": 1, "cheap": 0}
    # 4 × (1000 × 2.35e-6 + 100 × 9.4e-6) + 2 × (2000 × 2.35e-6 + 250 × 9.4e-6)
    #   = 4 × 0.00329 + 2 × 0.00705 = 0.02726 USD in the log, × 30 a month
    assert levels["expected"]["saving_usd"] == pytest.approx(0.02726, abs=1e-6)
    assert levels["expected"]["saving_usd_month"] == pytest.approx(0.8178, abs=1e-4)
    # evidence: notes hold one cheap-tier answer (ok, not truncated); mid holds none
    assert (rows[0]["basis"], rows[0]["cheap_answers"], rows[0]["cheap_ok"]) == ("evidence", 1, 1)
    assert rows[2]["basis"] == "assumed"
    figures = {f.name: f for f in finding.figures}
    assert figures["routed_calls_with_evidence"].value == 4
    assert figures["routed_calls_assumed"].value == 2
    assert figures["routed_calls"].basis == "mixed" and finding.basis == "mixed"
    assert finding.calls_affected == 6
    assert finding.tokens_affected == 4 * 1100 + 2 * 2250
    # curve: notes (4 calls, 0.01316), + mid (6, 0.02726), + code (12: 5 × 0.0141 + 0.01316)
    curve = [(p["routed_calls"], p["saving_usd"]) for p in finding.details["curve"]]
    assert curve == [(4, 0.01316), (6, 0.02726), (12, pytest.approx(0.11092, abs=1e-6))]
    assert finding.details["curve"][1]["routed_share"] == pytest.approx(6 / 13, abs=1e-4)


def test_waterfall_saving_and_apply_rules(tiny):
    config = load_config()
    finding = RoutingLever().analyze(tiny, config)
    sim = run_waterfall(tiny, [RoutingLever()], {1: finding}, config, "expected")
    assert sim.span_days == 1.0
    assert sim.steps[0]["saving_usd_month"] == pytest.approx(0.02726 * 30, abs=1e-9)
    assert run_waterfall(tiny, [RoutingLever()], {1: finding}, config, "conservative").steps[0][
        "saving_usd_month"
    ] == pytest.approx(0.0, abs=1e-12)
    # apply never touches free rows and moves only calls whose plan model is strong or pricier
    plan = base_plan(tiny).with_columns(
        (pl.col("call_id") == "n1").alias("plan_free"),
        pl.when(pl.col("call_id") == "m1")
        .then(pl.lit("o4-mini"))
        .otherwise(pl.col("plan_model"))
        .alias("plan_model"),
    )
    after = dict(
        RoutingLever()
        .apply(plan, finding, config, "expected")
        .select("call_id", "plan_model")
        .rows()
    )
    assert after["n1"] == "gpt-4o"  # free: untouched
    assert after["m1"] == "o4-mini"  # cheaper than gpt-4o already: no move
    assert after["n2"] == after["m2"] == "gpt-4o-mini"  # the [tiers] cheap id
    assert after["n5"] == after["c1"] == "gpt-4o"  # forced by OWASP; code is not routed


def test_label_sheet_round_trip(tiny, tmp_path):
    config = load_config()
    sheet = tmp_path / "labels.csv"
    assert export_label_sheet(tiny, sheet, n=100, config=config) == 14
    rows = list(csv.DictReader(sheet.open(encoding="utf-8")))
    assert list(rows[0]) == [
        "query",
        "category_id",
        "category",
        "predicted_tier",
        "tier",
        "query_hash",
    ]
    assert {r["category_id"] for r in rows[:3]} == {"0", "1", "2"}  # round-robin over categories
    assert all(r["tier"] == "" for r in rows)
    predicted = {r["query"].split(":")[0]: r["predicted_tier"] for r in rows}
    assert predicted["summarize notes 1"] == predicted["plan the release"] == "cheap"
    assert predicted["summarize notes 6"] == "cheap"  # cheap already; its category routes
    assert predicted["check notes 5 against OWASP"] == predicted["fix bug 1"] == "strong"
    assert export_label_sheet(tiny, tmp_path / "again.csv", n=100, config=config) == 14
    assert (tmp_path / "again.csv").read_text() == sheet.read_text()  # seeded

    fill = {"fix bug 1": "Cheap", "fix bug 2": "weak", "fix bug 3": "cheap", "fix bug 4": "strong"}
    for r in rows:
        r["tier"] = fill.get(r["query"].split(":")[0], "")
    with sheet.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert read_labels(tiny, sheet) == 4
    config.set("routing", "min_labels", 4)
    finding = RoutingLever().analyze(tiny, config)
    code = next(r for r in finding.evidence if r["category_id"] == 1)
    assert code["basis"] == "labels" and code["labelled"] == {"labelled": 4, "cheap_labels": 3}
    levels = finding.details["levels"]
    assert levels["expected"]["label_shares"] == {"1": 0.75}
    assert levels["conservative"]["label_shares"] == {"1": pytest.approx(0.3006, abs=1e-4)}
    # labelled calls follow their label; of c5, c6 the easiest floor(0.75 × 2) = 1 (c6, 400
    # out) routes at expected, floor(0.3006 × 2) = 0 at conservative. The threshold pool is
    # now notes + mid (7 eligible): expected 3.5 < 4 notes → none; aggressive 5.25 ≥ 4 → notes.
    assert _routed(finding, "conservative") == {"c1", "c2", "c3"}
    assert _routed(finding, "expected") == {"c1", "c2", "c3", "c6"}
    assert _routed(finding, "aggressive") == {"c1", "c2", "c3", "c6", "n1", "n2", "n3", "n4"}


def test_label_sheet_errors(tiny, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("query,tier\nsummarize notes 1,medium\n")
    with pytest.raises(LabelSheetError, match="medium"):
        read_labels(tiny, bad)
    # a quoted query over three lines: the bad tier's record starts on physical line 5
    bad.write_text('query,tier\n"a\nmulti-line\nquery",cheap\nsummarize notes 1,medium\n')
    with pytest.raises(LabelSheetError, match=r"bad\.csv:5: tier 'medium'"):
        read_labels(tiny, bad)
    bad.write_text("query,label\nsummarize notes 1,cheap\n")
    with pytest.raises(LabelSheetError, match="'tier' column"):
        read_labels(tiny, bad)
    with pytest.raises(InputFileError):
        read_labels(tiny, tmp_path / "missing.csv")
    # a sheet without query_hash is matched by hashing the query as ingest does
    ok = tmp_path / "ok.csv"
    ok.write_text("query,tier\n  Summarize   NOTES 1 ,strong\n")
    assert read_labels(tiny, ok) == 1
    finding = RoutingLever().analyze(tiny, load_config())
    assert "n1" not in _routed(finding, "expected")


# --- the shipped sample logs (analyzed once, shared with tests/test_lever_caps.py) ----------


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = analyzed_sample_copy(tmp_path_factory)
    with Workspace(path) as ws:
        yield ws, RoutingLever().analyze(ws, load_config())


@pytest.fixture(scope="module")
def sample_by_feature(tmp_path_factory):
    """The sample with one category per planted feature (call_labels in truths.json), so the
    routing lever is judged on its own and not on how the test embedder happens to cluster
    (category quality has its own tests and benchmark)."""
    path = analyzed_sample_copy(tmp_path_factory)
    features = sorted({v["feature"] for v in TRUTHS["call_labels"].values()})
    with Workspace(path) as ws:
        ws.load_temp(
            "planted",
            {
                "call_id": list(TRUTHS["call_labels"]),
                "category": [features.index(v["feature"]) for v in TRUTHS["call_labels"].values()],
            },
        )
        ws.con.execute(
            "UPDATE calls SET category_id = p.category FROM planted p "
            "WHERE calls.call_id = p.call_id"
        )
        ws.con.execute("DELETE FROM categories")
        for i, name in enumerate(features):
            ws.con.execute("INSERT INTO categories (category_id, label) VALUES (?, ?)", [i, name])
        yield ws, RoutingLever().analyze(ws, load_config())


def test_sample_routes_summaries_not_coding_chats(sample_by_feature):
    ws, finding = sample_by_feature
    labels = TRUTHS["call_labels"]
    feature = {cid: v["feature"] for cid, v in labels.items()}
    frame = finding.per_call.with_columns(
        pl.col("call_id").replace_strict(feature, default=None).alias("feature")
    )
    assert finding.details["eligible_calls"] == TRUTHS["models"]["gpt-4o-2024-08-06"]["calls"]
    models = dict(ws.con.execute("SELECT call_id, model FROM calls").fetchall())
    for level in ("conservative", "expected", "aggressive"):
        routed = frame.filter(pl.col(f"route_{level}"))
        assert {models[c] for c in routed["call_id"]} <= {"gpt-4o-2024-08-06"}
    expected = frame.filter(pl.col("route_expected"))
    by_feature = dict(expected.group_by("feature").len().rows())
    assert by_feature["meeting-notes"] == TRUTHS["features"]["meeting-notes"]["calls"] == 148
    assert by_feature["weekly-report"] == len(TRUTHS["weekly_report"]["calls"]) == 4
    long_chats = [
        rid
        for item in TRUTHS["conversations"]["items"]
        if item["turns"] >= 10
        for rid in item["response_ids"]
    ]
    routed_long = frame.filter(pl.col("call_id").is_in(long_chats) & pl.col("route_expected"))
    assert routed_long.height <= 0.1 * len(long_chats)
    levels = finding.details["levels"]
    counts = [levels[lv]["routed_calls"] for lv in ("conservative", "expected", "aggressive")]
    assert counts == sorted(counts) and counts[1] == finding.calls_affected


def test_sample_curve_and_waterfall_agree(sample):
    ws, finding = sample
    config = load_config()
    savings = [p["saving_usd"] for p in finding.details["curve"]]
    assert savings == sorted(savings)
    assert finding.details["curve"][-1]["routed_calls"] <= finding.details["eligible_calls"]
    for level in ("conservative", "expected", "aggressive"):
        sim = run_waterfall(ws, [RoutingLever()], {1: finding}, config, level)
        assert sim.steps[0]["saving_usd_month"] == pytest.approx(
            finding.details["levels"][level]["saving_usd_month"], abs=1e-4
        )
    assert finding.details["categories_assumed"] + finding.details["categories_evidence"] == len(
        finding.details["levels"]["expected"]["routed_categories"]
    )


def test_sample_label_sheet_covers_categories(sample, tmp_path):
    ws, _ = sample
    sheet = tmp_path / "sheet.csv"
    written = export_label_sheet(ws, sheet, n=1000)
    rows = list(csv.DictReader(sheet.open(encoding="utf-8")))
    assert written == len(rows) <= 1000
    assert len({r["query_hash"] for r in rows}) == len(rows)
    categories = {
        str(c)
        for (c,) in ws.con.execute(
            "SELECT DISTINCT category_id FROM calls WHERE category_id >= 0"
        ).fetchall()
    }
    # round-robin: the first len(categories) rows hold one query of every category
    assert {r["category_id"] for r in rows[: len(categories)]} == categories
