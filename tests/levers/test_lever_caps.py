"""Lever 4, caps: the cap table (numpy percentiles), hard-cap and concise estimates, apply.

Default [caps] settings: percentile 99 / 95 / 90, round up to 10 tokens, min 10 calls,
concise reduction 0 / 0.1 / 0.25, simple at p95 ≤ 150 tokens. Output prices (genai-prices):
gpt-4o 1e-5 USD/token, gpt-4o-mini 6e-7 USD/token.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from levers_cli.analysis import analyze
from levers_cli.config import load_config
from levers_cli.levers import LEVERS
from levers_cli.levers.caps import DIRECT, CapsLever, cap_table
from levers_cli.levers.routing import RoutingLever
from levers_cli.pricing.models import model_family
from levers_cli.pricing.plan import base_plan, plan_cost
from levers_cli.simulate import run_waterfall
from levers_cli.store import Workspace
from tests.helpers import ROOT, FakeEmbedder, analyzed_sample_copy, openai_pair

SAMPLE = ROOT / "sample_logs" / "app_logs.jsonl.gz"
TRUTHS = json.loads((ROOT / "sample_logs" / "truths.json").read_text())
T0 = 1_790_000_000
LONG_OUT = [100] * 8 + [300, 1000]


def _pair(cid: str, model: str, out: int, t: int, finish: str = "stop") -> dict:
    extra = {"max_tokens": out} if finish == "length" else {}
    question = [{"role": "user", "content": f"question {cid}"}]
    return openai_pair(cid, model, question, "a", T0 + t, 100, out, finish_reason=finish, **extra)


@pytest.fixture
def tiny(ws, tmp_path: Path):
    """cat 0 long: 10 gpt-4o calls with outputs 100 ×8, 300, 1000 (the last truncated at
    max_tokens 1000). cat 1 short: 10 gpt-4o-mini calls of 20 tokens. cat 2 few: 3 gpt-4o
    calls (under min_calls). 100 input tokens each; one day from first to last call."""
    rows = [
        _pair(f"l{i}", "gpt-4o", out, i, "length" if out == 1000 else "stop")
        for i, out in enumerate(LONG_OUT)
    ]
    rows += [_pair(f"s{i}", "gpt-4o-mini", 20, 20 + i) for i in range(10)]
    rows += [_pair(f"f{i}", "gpt-4o", 50, 40 + i) for i in range(2)]
    rows.append(_pair("f2", "gpt-4o", 50, 86_400))
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    analyze(ws, [str(path)], embedder=FakeEmbedder())
    ws.con.execute(
        "UPDATE calls SET category_id = CASE left(call_id, 1) WHEN 'l' THEN 0 WHEN 's' THEN 1 "
        "ELSE 2 END"
    )
    ws.con.execute("DELETE FROM categories")
    ws.con.execute(
        "INSERT INTO categories (category_id, label, size) VALUES "
        "(0, 'long', 10), (1, 'short', 10), (2, 'few', 3)"
    )
    return ws


def test_cap_table_by_hand(tiny):
    assert LEVERS[4] is CapsLever and CapsLever.effort == "low"
    table = {r["category_id"]: r for r in cap_table(tiny, load_config())}
    assert set(table) == {0, 1}  # 'few' has 3 < 10 calls
    long = table[0]
    # numpy's linear percentile on [100 ×8, 300, 1000]: p90 at rank 8.1 → 300 + 0.1 × 700 = 370,
    # p95 at 8.55 → 685, p99 at 8.91 → 937; caps rounded up to 10: 940 / 690 / 370
    for p in (50, 90, 95, 99):
        assert long[f"p{p}"] == pytest.approx(np.percentile(LONG_OUT, p))
    assert (long["p50"], long["p90"], long["p95"], long["p99"]) == (100, 370, 685, 937)
    assert long["cap"] == {"conservative": 940, "expected": 690, "aggressive": 370}
    assert long["tokens_above_cap"] == {"conservative": 60, "expected": 310, "aggressive": 630}
    assert long["cut_share"] == {"conservative": 0.1, "expected": 0.1, "aggressive": 0.1}
    assert long["truncated_share"] == 0.1 and long["max_tokens_now"] == 1000
    assert not long["simple"] and long["reasoning_effort"] is None
    short = table[1]
    assert short["cap"]["expected"] == 20 and short["simple"]
    assert (short["instruction"], short["reasoning_effort"]) == (DIRECT, "low")


def test_figures_and_per_call(tiny):
    finding = CapsLever().analyze(tiny, load_config())
    figures = {f.name: f for f in finding.figures}
    assert figures["tokens_above_cap"].value == {
        "conservative": 60,
        "expected": 310,
        "aggressive": 630,
    }
    assert figures["tokens_above_cap"].basis == "evidence"
    assert figures["truncation_risk"].value["expected"] == 0.05  # 1 of 20 capped calls
    assert figures["truncated_now"].value == 0.05
    # the instruction "in at most N words" (N = word budget of the cap: expected 690 × 0.75 =
    # 517.5 → 515, aggressive 370 × 0.75 = 277.5 → 275; short: 20 × 0.75 = 15) shortens only
    # answers longer than N words: l9 (1000 tokens = 750 words) alone; 100, 300 and the short
    # group's 20-token (15-word) answers are not assumed to shrink.
    # expected: min(1000, 690) × 0.1 = 69; aggressive: 370 × 0.25 = 92.5 → 92 (half to even)
    assert figures["instructed_calls"].value == {"conservative": 1, "expected": 1, "aggressive": 1}
    assert figures["concise_tokens"].value == {"conservative": 0, "expected": 69, "aggressive": 92}
    assert figures["concise_reduction"].basis == "assumption" and finding.basis == "mixed"
    # two rows per group, two bases: the hard cap (measured) and the instruction (assumed)
    rows = [(r["category_id"], r["part"], r["basis"]) for r in finding.evidence]
    assert rows[:2] == [(0, "hard cap", "evidence"), (0, "instruction", "assumption")]
    assert finding.evidence[1]["words"]["expected"] == 515
    assert finding.calls_affected == 1 and finding.tokens_affected == 100 + 1000
    # l9's cut at expected: 310 by the cap (evidence), 69 by the instruction (assumption)
    shares = dict(finding.per_call.select("call_id", "evidence_expected").rows())
    assert shares["l9"] == pytest.approx(310 / 379) and shares["l0"] == 1.0
    per_call = dict(finding.per_call.select("call_id", "cap_expected").rows())
    assert per_call["l9"] == 690 and per_call["s0"] == 20 and "f0" not in per_call


@pytest.mark.parametrize(
    ("level", "usd"),
    [
        # 1000 → 940: 60 tokens × 1e-5
        ("conservative", 60 * 1e-5),
        # only l9 is longer than the instruction's 515 words: 1000 → 690 × 0.9 = 621
        ("expected", 379 * 1e-5),
        # only l9 is longer than 275 words: 1000 → 370 × 0.75 = 277.5 → 278
        ("aggressive", 722 * 1e-5),
    ],
)
def test_waterfall_saving_by_hand(tiny, level, usd):
    config = load_config()
    finding = CapsLever().analyze(tiny, config)
    sim = run_waterfall(tiny, [CapsLever()], {4: finding}, config, level)
    assert sim.span_days == 1.0
    assert sim.steps[0]["saving_usd_month"] == pytest.approx(usd * 30, abs=1e-9)
    # the hard cap's share of l9's cut is evidence: 60 / 60, 310 / 379 of 379 tokens, and
    # 630 / (630 + 92.5) of the 722 tokens the rounded plan saves at aggressive
    above = {"conservative": 60, "expected": 310, "aggressive": 722 * 630 / 722.5}[level]
    evidence = sim.steps[0]["saving_by_basis"]["evidence"]
    assert evidence == pytest.approx(above * 1e-5 * 30, abs=1e-9)


def test_apply_caps_the_current_plan(tiny):
    config = load_config()
    finding = CapsLever().analyze(tiny, config)
    plan = base_plan(tiny).with_columns(
        pl.when(pl.col("call_id") == "l9")
        .then(50)
        .otherwise(pl.col("plan_output"))
        .alias("plan_output"),
        (pl.col("call_id") == "l8").alias("plan_free"),
    )
    after = CapsLever().apply(plan, finding, config, "expected")
    out = dict(after.select("call_id", "plan_output").rows())
    assert out["l9"] == 45  # min(50, 690) × 0.9: from the plan's value, not the log's
    assert out["l8"] == 300  # free: untouched
    assert out["l0"] == 100 and out["f0"] == 50  # 75 words: under the instruction's 515
    assert after["plan_output"].dtype == plan["plan_output"].dtype
    assert float(plan_cost(after).sum()) < float(plan_cost(plan).sum())


# --- the shipped sample logs (analyzed once, shared with tests/levers/test_lever_routing.py)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = analyzed_sample_copy(tmp_path_factory)
    with Workspace(path) as ws:
        yield ws, CapsLever().analyze(ws, load_config())


def test_sample_cap_table_matches_numpy(sample):
    ws, finding = sample
    # the group holding most planted meeting-notes calls (summaries capped at 210 tokens)
    notes = [cid for cid, v in TRUTHS["call_labels"].items() if v["feature"] == "meeting-notes"]
    (category,) = ws.con.execute(
        "SELECT mode(category_id) FROM calls WHERE call_id IN (SELECT unnest(?))", [notes]
    ).fetchall()[0]
    row = next(
        r
        for r in finding.evidence
        if r["category_id"] == category and r["model"] == "gpt-4o" and r["part"] == "hard cap"
    )
    calls = ws.con.execute(
        "SELECT model, output_tokens, finish_reason FROM calls WHERE category_id = ?", [category]
    ).fetchall()
    out = np.array([o for m, o, _ in calls if model_family(m) == "gpt-4o"], dtype=float)
    assert row["calls"] == len(out)
    for p in (50, 90, 95, 99):
        assert row[f"p{p}"] == pytest.approx(np.percentile(out, p), abs=0.05)
    assert row["cap"]["expected"] == int(np.ceil(np.percentile(out, 95) / 10) * 10)
    assert row["tokens_above_cap"]["expected"] == int(
        np.clip(out - row["cap"]["expected"], 0, None).sum()
    )
    truncated = sum(1 for m, _, f in calls if model_family(m) == "gpt-4o" and f == "length")
    assert row["truncated_share"] == pytest.approx(truncated / len(out), abs=1e-4)
    # the planted 210-token cap binds already: some summaries were cut at it, none is longer
    assert truncated > 0 and out.max() == 210


def test_sample_triage_is_simple_and_levels_order(sample):
    ws, finding = sample
    triage = {cid for cid, v in TRUTHS["call_labels"].items() if v["feature"] == "ticket-triage"}
    cats = {
        c
        for (c,) in ws.con.execute(
            "SELECT DISTINCT category_id FROM calls WHERE call_id IN (SELECT unnest(?))",
            [sorted(triage)],
        ).fetchall()
    }
    capped = [r for r in finding.evidence if r["part"] == "hard cap"]
    triage_rows = [r for r in capped if r["category_id"] in cats and r["p95"] <= 10]
    assert triage_rows and all(r["simple"] and r["cap"]["expected"] <= 10 for r in triage_rows)
    config = load_config()
    alone = [
        run_waterfall(ws, [CapsLever()], {4: finding}, config, lv).steps[0]["saving_usd_month"]
        for lv in ("conservative", "expected", "aggressive")
    ]
    # conservative = a hard cap at p99 alone: in categories within one feature (issue 16) p99
    # sits at the longest answers, so it removes (almost) nothing; the others cut more
    assert 0 <= alone[0] < alone[1] < alone[2]
    # compounding: after routing, caps save less (the routed calls' output is cheaper)
    routing = RoutingLever().analyze(ws, config)
    both = run_waterfall(
        ws, [RoutingLever(), CapsLever()], {1: routing, 4: finding}, config, "expected"
    )
    assert 0 < both.steps[1]["saving_usd_month"] < alone[1]


def test_calls_cut_at_the_current_cap_count_as_cut_again():
    """16 calls of 100 output tokens and 4 cut at max_tokens 210 (finish_reason length):
    sorted, positions 16–19 hold 210, so p90, p95 and p99 (positions 17.1, 18.05, 18.81)
    are 210 and every level's cap equals today's limit. Those 4 calls wanted more, so the cap
    cuts 4 / 20 = 0.2 of the calls, not 0 (out > cap never holds for them)."""
    from levers_cli.levers.caps import _cap_rows

    n = 20
    out = [100] * 16 + [210] * 4
    frame = pl.DataFrame(
        {
            "call_id": [f"c{i}" for i in range(n)],
            "category_id": [0] * n,
            "family": ["gpt-4o"] * n,
            "label": ["notes"] * n,
            "provider": ["openai"] * n,
            "model": ["gpt-4o"] * n,
            "output_tokens": out,
            "max_tokens": [210] * n,
            "truncated": [o == 210 for o in out],
            "reasoning_tokens": [0] * n,
        }
    )
    (row,) = _cap_rows(frame, load_config())
    assert row["cap"] == {"conservative": 210, "expected": 210, "aggressive": 210}
    assert row["cut_share"] == {"conservative": 0.2, "expected": 0.2, "aggressive": 0.2}
    assert row["censored"] and row["truncated_share"] == 0.2
