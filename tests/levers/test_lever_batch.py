"""Lever 7, batch: the four detection rules, the moved share per level, ``apply`` and the
waterfall on a tiny workspace; the nightly triage jobs and the weekly report of the sample."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from levers_cli.analysis import analyze
from levers_cli.config import load_config
from levers_cli.enrich.conversations import link_conversations
from levers_cli.enrich.prices import price_calls
from levers_cli.ingest.pipeline import ingest_files
from levers_cli.levers import LEVERS
from levers_cli.levers.base import Finding
from levers_cli.levers.batch import BatchLever
from levers_cli.simulate import run_waterfall
from levers_cli.store import Workspace
from tests.helpers import CASES, DATA, ROOT, FakeEmbedder, analyzed_sample_copy, need_shared

SAMPLE = ROOT / "sample_logs" / "app_logs.jsonl.gz"
TRUTHS = json.loads((ROOT / "sample_logs" / "truths.json").read_text())
MINI, FOUR_O = 18e-6, 4500e-6  # USD of one call below (list prices, genai-prices)


def ts(day: int, hour: int, second: int = 0) -> int:
    return int(datetime(2026, 10, day, hour, tzinfo=UTC).timestamp()) + second


def pair(
    call_id: str, created: int, query: str, model: str = "gpt-4o-mini", system: str = "", **extra
) -> dict:
    """One call: gpt-4o-mini 100 in / 5 out = 100 × 0.15e-6 + 5 × 0.6e-6 = $18e-6;
    gpt-4o 1,000 in / 200 out = 1,000 × 2.5e-6 + 200 × 10e-6 = $4,500e-6."""
    tokens = (100, 5) if model == "gpt-4o-mini" else (1000, 200)
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": query})
    return {
        "request": {"model": model, "messages": messages, **extra},
        "response": {
            "id": call_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1]},
        },
    }  # fmt: skip


def records() -> list[dict]:
    """Monday 2026-10-05 08:00 to Monday 2026-10-19 08:00 (14 days):
    25 night-burst classifications (Wed 7th 02:00, 10 s apart), 3 weekly reports (Mondays
    08:00, gpt-4o), one call tagged ``job``, one from a service account, a ``batch: false``
    call and 5 daytime questions at different hours; and two interactive streams of an
    assistant (one system prompt, a different question each): 150 calls 30 s apart on Thursday
    from 09:00 (one run of 75 minutes) and, on Friday from 09:00, three runs of 25 calls 20 s
    apart with 90 s between them (crowded: 50 other calls around each run)."""
    out = [
        pair(f"burst{i:02}", ts(7, 2, 10 * i), f"Classify ticket {i}: the app crashes on login")
        for i in range(25)
    ]
    out += [
        pair(f"week{w}", ts(5 + 7 * w, 8), f"Write the weekly report for week {40 + w}", "gpt-4o")
        for w in range(3)
    ]
    out.append(pair("tagged", ts(8, 14), "Summarize ticket 7", metadata={"job": "export"}))
    out.append(pair("svc", ts(9, 15), "Summarize ticket 8", user="svc-reports"))
    out.append(pair("notbatch", ts(9, 16), "Summarize ticket 9", metadata={"batch": False}))
    out += [pair(f"faq{h}", ts(6 + h, 9 + h), "How do I reset my password?") for h in range(5)]
    system = "You are the assistant of the Acme app."
    topics = [a + b for a in "bcdfghklmnprstvz" for b in "aeiou"]  # 80 made-up words
    out += [
        pair(
            f"live{i:03}",
            ts(8, 9, 30 * i),
            f"{topics[i % 80]} {topics[i // 80]} help",
            system=system,
        )
        for i in range(150)
    ]
    out += [
        pair(
            f"crowd{i:02}",
            ts(9, 9, 20 * i + 70 * (i // 25)),
            f"{topics[i]} question",
            system=system,
        )
        for i in range(75)
    ]
    return out


@pytest.fixture
def tiny(ws, tmp_path: Path):
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records()))
    analyze(ws, [str(path)], embedder=FakeEmbedder())
    return ws


def test_registered():
    assert LEVERS[7] is BatchLever
    assert (BatchLever.id, BatchLever.name, BatchLever.effort) == (7, "batch", "low")


def test_rules_by_hand(tiny):
    finding = BatchLever().analyze(tiny, load_config())
    rules = dict(finding.per_call.select("call_id", "rules").iter_rows())
    assert {c for c in rules if c.startswith("burst")} == {f"burst{i:02}" for i in range(25)}
    assert all(rules[f"burst{i:02}"] == "burst" for i in range(25))
    # three Mondays at 08:00: the same hour on 3 days and the same weekday hour in 3 weeks
    assert [rules[f"week{w}"] for w in range(3)] == ["scheduled"] * 3
    assert rules["tagged"] == "tagged" and rules["svc"] == "source"
    assert "notbatch" not in rules
    assert not any(c.startswith(("faq", "live", "crowd")) for c in rules)
    assert finding.details["by_rule"] == {"tagged": 1, "source": 1, "burst": 25, "scheduled": 3}
    top = finding.evidence[0]  # costliest job first: the weekly report, 3 × $4,500e-6
    assert top["calls"] == 3 and top["rules"] == {"scheduled": 3}
    assert top["job"] == "write the weekly report for week #"  # no system prompt: no hash
    assert top["cost_usd"] == pytest.approx(3 * FOUR_O)
    assert top["usual_hour_utc"] == 8


def test_moved_share_per_level(tiny):
    finding = BatchLever().analyze(tiny, load_config())
    # declared (tagged, svc): floor(2 × 0.8 / 1 / 1) = 1 / 2 / 2; inferred (25 bursts, 3
    # reports): floor(28 × 0.5 / 0.8 / 1) = 14 / 22 / 28
    assert finding.details["moved_calls"] == {"conservative": 15, "expected": 24, "aggressive": 30}
    # at 0.8 every fifth inferred call in time order stays: report 0 and bursts 4, 9, 14, 19, 24
    moved = set(finding.per_call.filter(pl.col("batch_expected"))["call_id"])
    assert {"week0", "burst04", "burst24"}.isdisjoint(moved) and {"week1", "week2"} <= moved
    assert finding.calls_affected == 24
    # tokens: 20 bursts + 2 declared calls × 105, 2 weekly reports × 1,200
    assert finding.tokens_affected == 22 * 105 + 2 * 1200
    figures = {f.name: f for f in finding.figures}
    assert figures["burst_calls"].basis == "evidence"
    assert figures["moved_calls"].basis == "assumption"
    assert figures["batch_factor"].value == {"openai": 0.5}


def test_waterfall_saving_by_hand(tiny):
    cfg = load_config()
    lever = BatchLever()
    finding = lever.analyze(tiny, cfg)
    sim = run_waterfall(tiny, [lever], {7: finding}, cfg, "expected")
    # moved at expected: 20 bursts + 2 declared × $18e-6 + 2 reports × $4,500e-6 = $9,396e-6,
    # half of it saved; the log spans 14 days: × 30 / 14 a month
    saving = sim.steps[0]["saving_usd_month"]
    assert saving == pytest.approx(22 * MINI * 0.5 * 30 / 14 + 2 * FOUR_O * 0.5 * 30 / 14)
    # a negotiated factor of 0.4 saves 60 % instead of 50 %
    cfg.set("batch", "price_factor", {"openai": 0.4})
    sim = run_waterfall(tiny, [lever], {7: finding}, cfg, "expected")
    assert sim.steps[0]["saving_usd_month"] == pytest.approx(saving * 0.6 / 0.5)


def _ingest(ws: Workspace, paths: list[Path]) -> None:
    ingest_files(ws, [str(p) for p in paths])
    link_conversations(ws)
    price_calls(ws, load_config())


def test_already_batched_calls_are_no_candidates(ws):
    """../shared/cases C08: an OpenAI Batch API output file (3 calls, one failed)."""
    _ingest(ws, [need_shared(CASES / "C08-openai-batch-output-bad-lines.jsonl")])
    finding = BatchLever().analyze(ws, load_config())
    assert finding.details["already_batch_calls"] == 3
    assert finding.details["candidates"] == finding.calls_affected == 0


def test_arena_hard_answer_files_are_bursts(ws):
    """../shared/data/arena-hard: answers generated by script, one file per model. Split at
    gaps over 60 s, each is one run (497 calls in 1.2 min, 497 in 7.6, 493 in 3.8, 750 in
    5.0) plus 13 stragglers re-run on later days, which are no burst."""
    files = sorted(need_shared(DATA / "arena-hard").glob("*/model_answer/*.jsonl.gz"))
    _ingest(ws, files)
    finding = BatchLever().analyze(ws, load_config())
    assert finding.details["by_rule"] == {"tagged": 0, "source": 0, "burst": 2237, "scheduled": 0}
    jobs = {row["job"].split(" burst at ")[0]: row["calls"] for row in finding.evidence}
    assert jobs == {
        "gpt-3.5-turbo-0125": 497,
        "gpt-4-0314": 497,
        "gpt-4-0613": 493,
        "o3-mini-2025-01-31": 750,
    }
    # inferred calls only: floor(2,237 × 0.5 / 0.8 / 1)
    assert finding.details["moved_calls"] == {
        "conservative": 1118,
        "expected": 1789,
        "aggressive": 2237,
    }


def test_apply_skips_free_and_already_batched_rows():
    plan = pl.DataFrame(
        {
            "call_id": ["a", "b", "c", "d"],
            "plan_batch": [False, False, True, False],
            "plan_free": [False, True, False, False],
            "plan_extra_usd": [0.0, 0.0, 0.0, 0.0],
        }
    )
    per_call = pl.DataFrame({"call_id": ["a", "b", "c"], "batch_expected": [True, True, True]})
    out = BatchLever().apply(
        plan, Finding(7, "batch", per_call=per_call), load_config(), "expected"
    )
    assert out["plan_batch"].to_list() == [True, False, True, False]
    assert out["plan_extra_usd"].to_list() == [0.0] * 4
    assert out.columns == plan.columns


def test_a_call_moved_to_a_batch_keeps_only_the_cache_reads_batches_get():
    """OpenAI documents no prompt-cache hits for the Batch API; Anthropic's Message Batches
    read a cache only another batched request wrote (provider_rules.toml, batch_cache):
    a (OpenAI) loses its 1,920 cached tokens, b (Anthropic, source c also moved) keeps its
    2,004, d (Anthropic, source e left in real time) loses them, e is not moved."""
    openai, anthropic = ("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-5")
    rows = [("a", *openai, 1920, "z"), ("b", *anthropic, 2004, "c"),
            ("c", *anthropic, 0, None), ("d", *anthropic, 2004, "e"),
            ("e", *anthropic, 0, None)]  # fmt: skip
    plan = pl.DataFrame(
        {
            "call_id": [r[0] for r in rows],
            "provider": [r[1] for r in rows],
            "plan_model": [r[2] for r in rows],
            "plan_cache_read": [r[3] for r in rows],
            "plan_cache_source": [r[4] for r in rows],
            "plan_batch": [False] * 5,
            "plan_free": [False] * 5,
            "plan_extra_usd": [0.0] * 5,
        }
    )
    per_call = pl.DataFrame({"call_id": ["a", "b", "c", "d"], "batch_expected": [True] * 4})
    out = BatchLever().apply(
        plan, Finding(7, "batch", per_call=per_call), load_config(), "expected"
    )
    assert out["plan_batch"].to_list() == [True, True, True, True, False]
    assert out["plan_cache_read"].to_list() == [0, 2004, 0, 0, 0]
    assert out["plan_cache_source"].to_list() == [None, "c", None, None, None]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = analyzed_sample_copy(tmp_path_factory)
    with Workspace(path) as ws:
        lever, cfg = BatchLever(), load_config()
        finding = lever.analyze(ws, cfg)
        sims = {
            lv: run_waterfall(ws, [lever], {7: finding}, cfg, lv)
            for lv in ("conservative", "expected", "aggressive")
        }
        yield finding, sims


def test_sample_nightly_jobs_and_weekly_report_are_batchable(sample):
    finding, sims = sample
    nightly = TRUTHS["nightly_batch_jobs"]
    planted = set(nightly["batchable_response_ids"])
    weekly = {c["response_id"] for c in TRUTHS["weekly_report"]["calls"]}
    found = set(finding.per_call["call_id"])
    # recall 1.0 on both planted jobs, and nothing else flagged (precision 1.0)
    assert found == planted | weekly
    assert len(planted) == nightly["calls"] == 3165 and len(weekly) == 4
    rules = dict(finding.per_call.select("call_id", "rules").iter_rows())
    tagged = {c for c in planted if "tagged" in rules[c]}
    assert len(tagged) == nightly["tagged_calls"] == 1610
    # the untagged nights (Oct 1-15) are found by their traffic alone
    assert all("burst" in rules[c] and "scheduled" in rules[c] for c in planted - tagged)
    assert all(rules[c] == "source,scheduled" for c in weekly)  # user svc-ops-reports, Mondays
    saving = {lv: sim.steps[0]["saving_usd_month"] for lv, sim in sims.items()}
    assert 0 < saving["conservative"] < saving["expected"] < saving["aggressive"]
    # aggressive moves every candidate: half of their cost, × 30 days / the log's span
    span = sims["aggressive"].span_days
    cost = {f.name: f.value for f in finding.figures}["candidate_cost_usd"]
    assert saving["aggressive"] == pytest.approx(cost * 0.5 * 30 / span, rel=1e-6)
