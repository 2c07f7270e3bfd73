"""Lever 1, routing: difficulty, the calibrated threshold, evidence vs assumption, labels, apply.

Hand-made workspace (OpenAI pairs, one day long, categories set by hand, centroids the mean of
their members' fake-embedder vectors); default [routing] settings: request features only
(scales input 4000, code 20, depth 4, tools 2, equal weights), category quantile 0.75; strong
share 0.75 / 0.5 / 0.25; difficulty ceiling 0.1 / 0.15 / 0.2. Prices (genai-prices, USD per
token): gpt-4o 2.5e-6 in, 1e-5 out; gpt-4o-mini 1.5e-7 in, 6e-7 out; o4-mini 1.1e-6 in, 4.4e-6
out. Routing one gpt-4o call saves in × 2.35e-6 + out × 9.4e-6.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from levers_cli.analysis import analyze
from levers_cli.config import load_config
from levers_cli.errors import InputFileError
from levers_cli.export.label_sheet import export_label_sheet
from levers_cli.export.router_config import export_router_config
from levers_cli.levers import LEVERS
from levers_cli.levers.routing import RoutingLever, routing_evidence
from levers_cli.levers.routing.features import wilson_lower
from levers_cli.levers.routing.labels import LabelSheetError, read_labels
from levers_cli.pricing.models import model_family
from levers_cli.pricing.plan import base_plan
from levers_cli.router import Router
from levers_cli.simulate import run_waterfall
from levers_cli.store import Workspace
from tests.helpers import ROOT, FakeEmbedder, analyzed_sample_copy, openai_pair

TRUTHS = json.loads((ROOT / "sample_logs" / "truths.json").read_text())
T0 = 1_790_000_000
CODE = "\n".join(f"x{i} = {i}" for i in range(20))


def _pair(
    cid: str, model: str, query: str, prompt: int, completion: int, t: int, reasoning: int = 0
) -> dict:
    question = [{"role": "user", "content": query}]
    record = openai_pair(cid, model, question, "ok", T0 + t, prompt, completion)
    if reasoning:
        details = {"reasoning_tokens": reasoning}
        record["response"]["usage"]["completion_tokens_details"] = details
    return record


def _set_categories(ws: Workspace, case: str, names: dict[int, str]) -> None:
    """Categories set by hand (``case``: a SQL CASE on call_id), each with the normalized mean
    of its members' stored vectors as centroid (what clustering stores), all in one app
    feature (``app``: categories never cross features)."""
    ws.con.execute(f"UPDATE calls SET category_id = {case}, feature = 'app'")
    ws.con.execute("DELETE FROM categories")
    for cid, name in names.items():
        vectors = [
            v
            for (v,) in ws.con.execute(
                "SELECT DISTINCT e.vector FROM calls c JOIN embeddings e USING (query_hash) "
                "WHERE c.category_id = ?",
                [cid],
            ).fetchall()
        ]
        mean = np.mean(np.asarray(vectors, dtype=np.float32), axis=0)
        ws.con.execute(
            "INSERT INTO categories (category_id, label, size, embedder, centroid) "
            "VALUES (?, ?, ?, ?, ?)",
            [cid, name, len(vectors), FakeEmbedder.key, (mean / np.linalg.norm(mean)).tolist()],
        )


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
    _set_categories(
        ws,
        "CASE left(call_id, 1) WHEN 'n' THEN 0 WHEN 'c' THEN 1 ELSE 2 END",
        {0: "notes", 1: "code", 2: "mid"},
    )


@pytest.fixture
def tiny(ws, tmp_path):
    _tiny(ws, tmp_path)
    return ws


def _routed(finding, level: str) -> set[str]:
    return set(finding.per_call.filter(pl.col(f"route_{level}"))["call_id"])


def test_registered_and_model_tiers():
    assert LEVERS[1] is RoutingLever and RoutingLever.effort == "medium"
    assert model_family("gpt-4o-2024-08-06") == "gpt-4o"
    assert model_family("claude-3-5-haiku-20241022") == model_family("claude-3-5-haiku-latest")


def test_wilson_lower_bound_by_hand():
    # p = 3/4, z² = 3.8416: (0.75 + 0.4802 − 1.96·√(0.046875 + 0.060025)) / (1 + 0.9604)
    #   = (1.2302 − 0.640834) / 1.9604 = 0.30064
    assert wilson_lower(3, 4, 1.96) == pytest.approx(0.30064, abs=1e-5)
    assert wilson_lower(3, 4, 0.0) == 0.75 and wilson_lower(0, 0, 1.96) == 0.0


def test_difficulty_threshold_and_evidence(tiny):
    finding = RoutingLever().analyze(tiny, load_config())
    rows = {r["category_id"]: r for r in finding.evidence}
    # request-only scores (the answer's length and the cheap answer n6 change nothing):
    # notes 1000/5000 / 4 = 0.05; code (4000/8000 + 20/40) / 4 = 0.25; mid 2000/6000 / 4
    assert rows[0]["difficulty"] == pytest.approx(0.05, abs=1e-6)
    assert rows[1]["difficulty"] == pytest.approx(0.25, abs=1e-6)
    assert rows[2]["difficulty"] == pytest.approx(1 / 12, abs=1e-4)  # rounded to 4 places
    assert rows[1]["mean_code_lines"] == 20
    levels = finding.details["levels"]
    # 13 eligible gpt-4o calls; movable: notes 4 (n5 is forced), mid 2, code 6.
    # conservative: 0.25 × 13 = 3.25 < 4 → threshold at notes' difficulty, nothing routes.
    assert levels["conservative"]["threshold"] == pytest.approx(0.05, abs=1e-6)
    assert _routed(finding, "conservative") == set()
    # expected: 6.5 ≥ 4 + 2; code (0.25) is above the 0.15 ceiling → threshold 0.15.
    assert levels["expected"]["threshold"] == 0.15
    assert levels["expected"]["routed_categories"] == [0, 2]
    assert _routed(finding, "expected") == {"n1", "n2", "n3", "n4", "m1", "m2"}
    assert levels["expected"]["strong_share_achieved"] == pytest.approx(1 - 6 / 13, abs=1e-4)
    assert _routed(finding, "aggressive") == _routed(finding, "expected")
    assert finding.details["keyword_forced"] == {"strong": 1, "cheap": 0}
    # 4 × (1000 × 2.35e-6 + 100 × 9.4e-6) + 2 × (2000 × 2.35e-6 + 250 × 9.4e-6)
    #   = 4 × 0.00329 + 2 × 0.00705 = 0.02726 USD in the log, × 30 a month
    assert levels["expected"]["saving_usd"] == pytest.approx(0.02726, abs=1e-6)
    assert levels["expected"]["saving_usd_month"] == pytest.approx(0.8178, abs=1e-4)
    # notes hold a cheap answer (n6) and strong ones: comparable, but no quality measured
    # yet, so the saving stays an assumption; mid holds no cheap answer
    assert (rows[0]["cheap_answers"], rows[0]["strong_answers"], rows[0]["comparable"]) == (
        1,
        5,
        True,
    )
    assert rows[0]["basis"] == rows[2]["basis"] == "assumed" and not rows[2]["comparable"]
    figures = {f.name: f for f in finding.figures}
    assert figures["routed_calls_with_evidence"].value == 0
    assert figures["routed_calls_comparable"].value == 4
    assert figures["routed_calls_assumed"].value == 6
    assert figures["routed_calls"].basis == "assumption"
    assert "not RouteLLM's result" in figures["strong_share_target"].source
    assert finding.calls_affected == 6
    assert finding.tokens_affected == 4 * 1100 + 2 * 2250
    # curve: notes (4 calls, 0.01316), + mid (6, 0.02726), + code (12: 5 × 0.0141 + 0.01316)
    curve = [(p["routed_calls"], p["saving_usd"]) for p in finding.details["curve"]]
    assert curve == [(4, 0.01316), (6, 0.02726), (12, pytest.approx(0.11092, abs=1e-6))]
    assert finding.details["curve"][1]["routed_share"] == pytest.approx(6 / 13, abs=1e-4)


def test_routing_evidence_same_feature_and_category_only():
    """A cheap answer counts only in its own feature and category, only beside strong
    answers there, and is evidence only once quality pairs are measured."""
    frame = pl.DataFrame(
        {
            "feature": ["faq", "coding", "coding", "notes", "notes", "notes"],
            "category_id": [7, 7, 7, 8, 8, 9],
            "cheap": [True, False, False, True, False, True],
            "eligible": [False, True, True, False, True, False],
            "status": ["ok"] * 6,
            "finish_reason": ["stop", "stop", "stop", "length", "stop", "stop"],
        }
    )
    keys = ["feature", "category_id"]
    table = routing_evidence(frame, keys, set()).sort(keys)
    got = {(r["feature"], r["category_id"]): r for r in table.iter_rows(named=True)}
    # coding › 7: the FAQ's cheap answer in another feature is not its evidence
    assert (got["coding", 7]["cheap_answers"], got["coding", 7]["comparable"]) == (0, False)
    assert (got["faq", 7]["strong_answers"], got["faq", 7]["comparable"]) == (0, False)
    # notes › 8: its one cheap answer was truncated: nothing comparable
    assert (got["notes", 8]["cheap_truncated"], got["notes", 8]["comparable"]) == (1, False)
    assert set(table["basis"]) == {"assumed"}
    assert set(routing_evidence(frame, keys, {8}).filter(pl.col("category_id") == 8)["basis"]) == {
        "labels"
    }
    # measured pairs make a comparable group evidence (here coding › 7 gets a cheap answer)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(True).otherwise(pl.col("cheap")).alias("cheap")
    )
    quality = pl.DataFrame(
        {"feature": ["coding"], "category_id": [7], "pairs": [4], "cheap_as_good": [3]}
    )
    row = routing_evidence(frame, keys, set(), quality).filter(pl.col("feature") == "coding")
    assert row.select("comparable", "measured_pairs", "cheap_as_good_share", "basis").row(0) == (
        True,
        4,
        0.75,
        "evidence",
    )
    # without a feature column, the category alone is the group
    assert routing_evidence(frame.drop("feature"), ["category_id"], set()).height == 3


def test_exported_router_routes_exactly_the_calls_simulate_counted(tiny, tmp_path):
    config = load_config()
    finding = RoutingLever().analyze(tiny, config)
    export_router_config(tiny, config, str(tmp_path / "router"), embedder=FakeEmbedder())
    router = Router.load(tmp_path / "router" / "levers-router.json", FakeEmbedder())
    calls = tiny.con.execute("SELECT call_id, query, model FROM calls ORDER BY call_id").fetchall()
    cheap_routes = {r["name"] for r in router.routes if r["routed_to_cheap_tier"]}
    by_router = {
        cid
        for cid, query, model in calls
        if model == "gpt-4o" and router.route(query).route in cheap_routes
    }
    assert by_router == _routed(finding, "expected") == {"n1", "n2", "n3", "n4", "m1", "m2"}
    sim = run_waterfall(tiny, [RoutingLever()], {1: finding}, config, "expected")
    assert sim.steps[0]["saving_usd_month"] == pytest.approx(0.02726 * 30, abs=1e-9)


def test_reasoning_model_is_a_candidate_and_low_effort_an_option(ws, tmp_path):
    """o4-mini costs less per token than gpt-4o but its reasoning makes a call dearer than the
    cheap tier: r0-r3 (1000 in, 2100 out of which 2000 reasoning) are eligible.
    Now: 1000 × 1.1e-6 + 2100 × 4.4e-6 = 0.01034; on gpt-4o-mini without the reasoning:
    1000 × 1.5e-7 + 100 × 6e-7 = 0.00021 → saving 0.01013 per call. Low effort (half the
    reasoning kept): 1100 out → 0.0011 + 0.00484 = 0.00594 → saving 0.0044 per call.
    c0-c3: gpt-4o coding calls (difficulty 0.25, above every ceiling)."""
    rows = [
        _pair(f"r{i}", "o4-mini", f"summarize notes {i}", 1000, 2100, i, 2000) for i in range(4)
    ]
    rows += [
        _pair(f"c{i}", "gpt-4o", f"fix bug {i}:\n```python\n{CODE}\n```", 4000, 500, 10 + i)
        for i in range(4)
    ]
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    analyze(ws, [str(path)], embedder=FakeEmbedder())
    _set_categories(ws, "CASE left(call_id, 1) WHEN 'r' THEN 0 ELSE 1 END", {0: "notes", 1: "code"})
    config = load_config()
    finding = RoutingLever().analyze(ws, config)
    assert finding.details["eligible_calls"] == 8
    levels = finding.details["levels"]
    # conservative: 0.25 × 8 = 2 < 4 notes → nothing routes; the low-effort option holds r0-r3
    assert levels["conservative"]["routed_calls"] == 0
    low = levels["conservative"]["low_effort"]
    assert (low["calls"], low["applied"]) == (4, False)
    # expected: 4 ≤ 4 → notes route to gpt-4o-mini
    assert _routed(finding, "expected") == {"r0", "r1", "r2", "r3"}
    assert levels["expected"]["saving_usd"] == pytest.approx(4 * 0.01013, abs=1e-9)
    assert levels["expected"]["low_effort"]["calls"] == 0
    plan = RoutingLever().apply(base_plan(ws), finding, config, "expected")
    moved = plan.filter(pl.col("call_id").str.starts_with("r"))
    assert set(moved["plan_model"]) == {"gpt-4o-mini"} and set(moved["plan_output"]) == {100}
    # the low-effort option, applied where routing keeps the calls (conservative, switched on)
    config.set(
        "routing", "low_effort", {"conservative": True, "expected": False, "aggressive": True}
    )
    finding = RoutingLever().analyze(ws, config)
    plan = RoutingLever().apply(base_plan(ws), finding, config, "conservative")
    kept = plan.filter(pl.col("call_id").str.starts_with("r"))
    assert set(kept["plan_model"]) == {"o4-mini"} and set(kept["plan_output"]) == {1100}
    sim = run_waterfall(ws, [RoutingLever()], {1: finding}, config, "conservative")
    assert sim.steps[0]["saving_usd_month"] == pytest.approx(
        4 * 0.0044 * 30 / sim.span_days, abs=1e-9
    )


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
    # a label-decided category routes whole when the lower bound of its cheap-label share is at
    # least 1/2 (a router sees the category, not one query's label): 0.75 at expected and
    # aggressive, 0.3006 at conservative. The threshold pool is now notes + mid (7 eligible):
    # conservative 1.75 and expected 3.5 < 4 notes → none; aggressive 5.25 ≥ 4 → notes.
    code = {f"c{i}" for i in range(1, 7)}
    assert _routed(finding, "conservative") == set()
    assert _routed(finding, "expected") == code
    assert _routed(finding, "aggressive") == code | {"n1", "n2", "n3", "n4"}


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
    assert finding.details["labelled_queries"] == 1


# --- the shipped sample logs (analyzed once, shared with tests/levers/test_lever_caps.py)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = analyzed_sample_copy(tmp_path_factory)
    with Workspace(path) as ws:
        yield ws, RoutingLever().analyze(ws, load_config())


def test_sample_reasoning_calls_eligible_and_router_counts_match(sample, tmp_path):
    """On the real clusters: every gpt-4o and o4-mini call is dearer than the same request on
    gpt-4o-mini (truths.json's model counts), and the exported router sends to the cheap tier
    exactly the eligible calls the simulation routed."""
    ws, finding = sample
    models = TRUTHS["models"]
    eligible = models["gpt-4o-2024-08-06"]["calls"] + models["o4-mini-2025-04-16"]["calls"]
    assert finding.details["eligible_calls"] == eligible
    config = load_config()
    export_router_config(ws, config, str(tmp_path / "router"), embedder=FakeEmbedder())
    router = Router.load(tmp_path / "router" / "levers-router.json", FakeEmbedder())
    cheap = {r["name"] for r in router.routes if r["routed_to_cheap_tier"]} | {"keyword-cheap"}
    calls = ws.con.execute(
        "SELECT call_id, query FROM calls WHERE model IN ('gpt-4o-2024-08-06', "
        "'o4-mini-2025-04-16') AND query IS NOT NULL ORDER BY call_id"
    ).fetchall()
    matches = router.route_many([q for _, q in calls])
    by_router = {cid for (cid, _), m in zip(calls, matches, strict=True) if m.route in cheap}
    assert by_router == _routed(finding, "expected")
    assert len(by_router) == finding.details["levels"]["expected"]["routed_calls"]


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
    routed_categories = finding.details["levels"]["expected"]["routed_categories"]
    counted = finding.details["categories_assumed"] + finding.details["categories_evidence"]
    assert 0 < counted <= len(routed_categories)
    # every routed call was matched by the router to a route sent to the cheap tier
    routed = finding.per_call.filter(pl.col("route_expected"))
    assert set(routed["router_category"].drop_nulls()) <= set(routed_categories)
    assert routed["forced"].null_count() == routed.height  # no keyword-cheap overrides


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
