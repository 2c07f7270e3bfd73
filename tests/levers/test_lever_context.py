"""Lever 2, context: history split, the summarization policy by hand, forks, pasted documents,
``apply`` and the waterfall on tiny workspaces; the long coding conversations of the sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from levers_cli.analysis import analyze
from levers_cli.config import load_config
from levers_cli.enrich.conversations import link_conversations
from levers_cli.ingest.pipeline import ingest_files
from levers_cli.levers import LEVERS
from levers_cli.levers.context import ContextLever
from levers_cli.levers.context.history import CallTokens, Policy, find_forks, walk
from levers_cli.simulate import run_waterfall
from levers_cli.store import Workspace
from tests.helpers import DATA, ROOT, FakeEmbedder, analyzed_sample_copy, need_shared

SAMPLE = ROOT / "sample_logs" / "app_logs.jsonl.gz"
TRUTHS = json.loads((ROOT / "sample_logs" / "truths.json").read_text())
HH = DATA / "hh-rlhf" / "harmless-base" / "test.jsonl.gz"
T0 = 1_790_812_800  # 2026-10-01T00:00:00Z


def words(n: int, word: str = "hello") -> str:
    """``n`` tokens: cl100k encodes "hello hello …" as one token per word."""
    return " ".join([word] * n)


def count(messages: list[dict]) -> int:
    """Prompt tokens by the cookbook formula for "hello" texts: 3 + Σ (4 + words)."""
    return 3 + sum(4 + len(m["content"].split()) for m in messages)


def pair(messages: list[dict], reply: str, created: int, **usage: int) -> dict:
    prompt = usage.get("prompt", count(messages))
    return {
        "request": {"model": "gpt-4o", "messages": messages},
        "response": {
            "id": f"c{created}",
            "object": "chat.completion",
            "created": created,
            "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": len(reply.split()),
                      "prompt_tokens_details": {"cached_tokens": usage.get("cached", 0)}},
        },
    }  # fmt: skip


def chat(turns: int, queries: list[str] | None = None, start: int = T0, scale: int = 1) -> list:
    """One conversation: system (6 tokens), user turns of 10, replies of 46 tokens; call t
    (1-based) re-sends 2(t - 1) history messages of 14 + 50 tokens: history 64 (t - 1),
    input 13 + 14 t + 50 (t - 1) = 64 t - 37 tokens (× ``scale`` in the logged usage)."""
    messages = [{"role": "system", "content": words(6)}]
    records = []
    for t in range(turns):
        query = queries[t] if queries else words(10)
        messages = [*messages, {"role": "user", "content": query}]
        reply = words(46, "ok")
        records.append(pair(messages, reply, start + 60 * t, prompt=count(messages) * scale))
        messages = [*messages, {"role": "assistant", "content": reply}]
    return records


def build(ws: Workspace, tmp_path: Path, records: list[dict]) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    analyze(ws, [str(path)], embedder=FakeEmbedder())


def config(**values):
    cfg = load_config()
    base = {
        "summarize_every_turns": 2, "min_history_tokens": 100, "summary_min_tokens": 10,
        "utilization_threshold": 0.99, "doc_min_tokens": 10_000, "drop_forks": False,
    }  # fmt: skip
    for key, value in {**base, **values}.items():
        cfg.set("context", key, value)
    return cfg


def test_registered():
    assert LEVERS[2] is ContextLever
    assert (ContextLever.id, ContextLever.name, ContextLever.effort) == (2, "context", "medium")


def test_history_split_is_scaled_to_logged_input(ws, tmp_path):
    build(ws, tmp_path, chat(3, scale=2))
    frame = ContextLever().analyze(ws, config(summarize_every_turns=0)).per_call.sort("turn")
    # history 64 (t - 1) by the formula, × 2 as the log's prompt_tokens are twice the estimate
    assert frame["history_tokens"].to_list() == [0, 128, 256]
    # input 2 (64 t - 37) = 54, 182, 310; gpt-4o's window is 128,000 tokens (genai-prices)
    assert frame["utilization"].to_list() == pytest.approx([54 / 128e3, 182 / 128e3, 310 / 128e3])


def test_policy_every_two_turns_by_hand(ws, tmp_path):
    build(ws, tmp_path, chat(5))
    finding = ContextLever().analyze(ws, config())
    frame = finding.per_call.sort("turn")
    # t3: history 128, 2 exchanges → summary max(0.05 × 128, 10) = 10; removed 128 - 10 = 118
    # t4: history 192; carries 10 + (u3, a3) 64 = 74 → removed 118
    # t5: history 256; carries 10 + 128 = 138, 2 exchanges → summary 10; removed 246
    assert frame["removed_expected"].to_list() == [0, 0, 118, 118, 246]
    assert frame["summarized_expected"].to_list() == [False, False, True, False, True]
    # summaries on gpt-4o-mini ($0.15 / $0.60 per MTok): (128 + 138) × 0.15e-6 + 2 × 10 × 0.6e-6
    assert frame["extra_usd_expected"].sum() == pytest.approx(266 * 0.15e-6 + 20 * 0.6e-6)
    assert finding.calls_affected == 3
    # input 155 + 219 + 283 = 657, output 3 × 46 = 138
    assert finding.tokens_affected == 657 + 138
    [row] = finding.evidence
    assert (row["calls"], row["turns"], row["history_tokens"]) == (5, 5, 640)
    assert row["tokens_removed_expected"] == 482 and row["summaries_expected"] == 2
    figures = {f.name: f for f in finding.figures}
    assert figures["resent_history_tokens"].value == 640
    assert figures["resent_history_tokens"].basis == "evidence"
    assert figures["tokens_removed"].basis == "assumption"


def test_waterfall_saving_by_hand(ws, tmp_path):
    build(ws, tmp_path, chat(5))
    cfg = config()
    lever = ContextLever()
    sim = run_waterfall(ws, [lever], {2: lever.analyze(ws, cfg)}, cfg, "expected")
    # 482 input tokens × $2.50/MTok - summaries $51.9e-6 = $1,153.1e-6 over the log; the log
    # spans 4 minutes, counted as one hour: × 30 × 24 per month
    assert sim.steps[0]["saving_usd_month"] == pytest.approx((1205e-6 - 51.9e-6) * 720, rel=1e-9)


def test_utilization_trigger(ws, tmp_path):
    build(ws, tmp_path, chat(5))
    cfg = config(
        summarize_every_turns=0,
        utilization_threshold=0.7,
        context_windows={"gpt-4o-2024-08-06": 300},
    )
    frame = ContextLever().analyze(ws, cfg).per_call.sort("turn")
    # inputs 27, 91, 155, 219, 283: t4 reaches 0.7 × 300 = 210 → summary 10, removed 192 - 10;
    # t5 carries 10 + 64, planned input 283 - 182 = 101 (0.34): no new summary
    assert frame["removed_expected"].to_list() == [0, 0, 0, 182, 182]
    assert frame["utilization"][3] == pytest.approx(219 / 300)


def _calls(n: int) -> list[CallTokens]:
    """Hand-made calls: history messages of 100 tokens, queries of 50."""
    out = []
    for t in range(1, n + 1):
        roles = ["system"] + ["user", "assistant"] * (t - 1) + ["user"]
        tokens = [10.0] + [100.0] * (2 * t - 2) + [50.0]
        out.append(
            CallTokens(f"k{t}", "conv", t, "openai", "gpt-4o", int(sum(tokens) + 3), f"h{t}",
                       0.0, np.array(tokens), np.array(roles, dtype=object), 2 * t - 1, 128_000)
        )  # fmt: skip
    return out


def test_find_forks_and_drop():
    calls = _calls(4)
    vectors = {f"h{t}": np.array([1.0, 0.0]) for t in (1, 2, 4)}
    vectors["h3"] = np.array([0.0, 1.0])  # orthogonal to every earlier query: a fork
    assert find_forks(calls, vectors, 0.3, 40) == {"k3": 0.0}
    assert find_forks(calls, vectors, 0.3, 60) == {}  # queries of 50 tokens are too short
    policy = Policy(0.99, 0, 0.05, 10, 100, True, 10_000, 1.0)
    done = walk(calls, policy, {"k3"}, lambda call, tin, tout: 0.0)
    # k3 drops its 400 history tokens; k4 carries only (u3, a3) of its 600: removes 400
    assert [o.removed for o in done] == [0, 0, 400, 400]
    assert [o.dropped_fork for o in done] == [False, False, True, False]


def test_fork_found_from_cached_embeddings(ws, tmp_path):
    sql = "postgres index query plan slow join rows table"
    queries = [sql, sql + " vacuum", words(12, "kubernetes") + " pod eviction memory limit"]
    build(ws, tmp_path, chat(3, queries=queries))
    cfg = config(summarize_every_turns=0, fork_min_query_tokens=5)
    cfg.set("context", "drop_forks", {"conservative": False, "expected": False, "aggressive": True})
    finding = ContextLever().analyze(ws, cfg)
    frame = finding.per_call.sort("turn")
    assert frame["fork"].to_list() == [False, False, True]
    assert frame["removed_expected"][2] == 0
    assert frame["removed_aggressive"][2] == frame["history_tokens"][2] > 0
    assert finding.evidence[0]["fork_turns"] == [3]


def test_pasted_document_is_a_compression_candidate(ws, tmp_path):
    messages = [{"role": "user", "content": words(96)}]
    build(ws, tmp_path, [pair(messages, "ok", T0)])
    finding = ContextLever().analyze(ws, config(doc_min_tokens=50))
    # the message counts 4 + 96 = 100 tokens; kept at 1.0 / 0.5 / 0.25
    row = finding.per_call.row(0, named=True)
    assert row["doc_tokens"] == 100
    assert (row["removed_conservative"], row["removed_expected"], row["removed_aggressive"]) == (
        0,
        50,
        75,
    )
    assert finding.details["doc_candidates"] == 1


def test_apply_bounds_cache_by_the_new_prefix_and_skips_free_rows():
    """The cache of a shortened prompt is what its kept prefix allows under the model's
    rules (OpenAI prompt-caching guide: 1,024 tokens minimum, 128-token increments;
    Anthropic: 1,024 minimum for Sonnet 4.5, any length above it, writes up to the
    breakpoint), not the logged read scaled down with the input."""
    plan = pl.DataFrame(
        {
            "call_id": ["a", "b", "c", "d", "e"],
            "provider": ["openai"] * 4 + ["anthropic"],
            "model": ["gpt-4o"] * 4 + ["claude-sonnet-4-5"],
            "plan_model": ["gpt-4o"] * 4 + ["claude-sonnet-4-5"],
            "input_tokens": [3000, 1200, 3000, 1000, 5000],
            "plan_input": [3000, 1200, 1500, 1000, 5000],
            "plan_cache_read": [2048, 1152, 0, 0, 3000],
            "plan_cache_write": [0, 0, 0, 0, 2000],
            "plan_free": [False, False, False, True, False],
            "plan_extra_usd": [0.0] * 5,
        }
    )
    per_call = pl.DataFrame({"call_id": ["a", "b", "c", "d", "e"],
                             "removed_expected": [1000, 957, 1000, 400, 2000],
                             "extra_usd_expected": [0.001] * 5,
                             "prefix_expected": [1500, 200, 1500, 500, 2500]})  # fmt: skip
    from levers_cli.levers.base import Finding

    out = ContextLever().apply(plan, Finding(2, "context", per_call=per_call), None, "expected")
    # a: 3,000 - 1,000 = 2,000 in; the new prompt shares 1,500 tokens: 1,500 // 128 × 128 =
    #    1,408 of the logged 2,048 still cached (scaled, it would be 2,048 × 2/3 = 1,365)
    # b: 1,200 - 957 = 243 in, sharing 200 < 1,024: nothing cached (not all 243 tokens)
    # c: the plan already halved the input: 1,000 × 1,500 / 3,000 = 500 removed, the prefix
    #    scaled alike to 750; nothing was cached
    # d: served free, untouched
    # e: 5,000 - 2,000 = 3,000 in; reads min(3,000, 2,500) = 2,500; the logged write ran to
    #    the end of the prompt (3,000 + 2,000 = 5,000), so it now ends at 3,000: 500 written
    assert out["plan_input"].to_list() == [2000, 243, 1000, 1000, 3000]
    assert out["plan_cache_read"].to_list() == [1408, 0, 0, 0, 2500]
    assert out["plan_cache_write"].to_list() == [0, 0, 0, 0, 500]
    assert out["plan_prefix_tokens"].to_list() == [1500, 200, 750, None, 2500]
    assert out["plan_extra_usd"].to_list() == [0.001, 0.001, 0.001, 0.0, 0.001]
    assert out.columns == [*plan.columns, "plan_prefix_tokens", "plan_cache_source"]


def test_prefix_of_the_new_prompts_by_hand(ws, tmp_path):
    """chat(5) with a summary every two exchanges (see test_policy_every_two_turns_by_hand):
    head = the system message, 4 + 6 = 10 tokens; user turns 14, replies 50 tokens.
    t1, t2: unchanged (null). t3 summarizes: its prompt is head + new summary + query, so
    only the head (10) can match an earlier prompt. t4 carries the summary (10) and t3's
    query (14): 10 + 10 + 14 = 34, what t3's new prompt began with. t5 summarizes: 10."""
    build(ws, tmp_path, chat(5))
    frame = ContextLever().analyze(ws, config()).per_call.sort("turn")
    assert frame["prefix_expected"].to_list() == [None, None, 10, 34, 10]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = analyzed_sample_copy(tmp_path_factory)
    with Workspace(path) as ws:
        lever = ContextLever()
        cfg = load_config()
        finding = lever.analyze(ws, cfg)
        sims = {lv: run_waterfall(ws, [lever], {2: finding}, cfg, lv) for lv in ("conservative",
                "expected", "aggressive")}  # fmt: skip
        yield finding, sims


def test_sample_long_coding_conversations_are_the_candidates(sample):
    finding, sims = sample
    labels = TRUTHS["call_labels"]
    truth = TRUTHS["conversations"]
    first_ids = {item["response_ids"][0]: item for item in truth["items"]}
    assert finding.details["multi_turn_conversations"] == truth["count"] == 112
    rows = finding.evidence
    assert len(rows) == 20
    # every listed conversation is a planted coding chat, the longest ones (≥ 10 turns) first
    assert all(row["first_call_id"] in first_ids for row in rows)
    assert all(first_ids[row["first_call_id"]]["turns"] == row["turns"] >= 10 for row in rows)
    # the policy only touches coding-assistant calls; at the expected level (every 8 turns,
    # histories of ≥ 1,024 tokens) it summarizes each chat of ≥ 9 turns once, on the first turn
    # from 9 on whose history reaches 1,024 tokens
    touched = finding.per_call.filter(pl.col("removed_expected") > 0)
    assert {labels[c]["feature"] for c in touched["call_id"]} == {"coding-assistant"}
    calls = finding.per_call.with_columns(pl.col("conversation_id").str.strip_prefix("conv:"))
    summarized = calls.filter(pl.col("summarized_expected")).select("conversation_id", "turn")
    due = (
        calls.filter((pl.col("turn") >= 9) & (pl.col("history_tokens") >= 1024))
        .group_by("conversation_id")
        .agg(pl.col("turn").min())
    )
    assert sorted(summarized.rows()) == sorted(due.rows())
    long_chats = {item["response_ids"][0] for item in truth["items"] if item["turns"] >= 9}
    assert set(summarized["conversation_id"]) <= long_chats
    assert summarized.height == finding.details["summaries"]["expected"] == 27
    saving = {lv: sim.steps[0]["saving_usd_month"] for lv, sim in sims.items()}
    assert 0 < saving["conservative"] < saving["expected"] < saving["aggressive"]


def test_hh_rlhf_conversations(ws):
    """anthropics/hh-rlhf harmless-base test: 2,312 transcripts, 662 of them with one human
    turn (../shared/data/README.md), so 1,650 multi-turn conversations; the longest has 18."""
    ingest_files(ws, [str(need_shared(HH))])
    link_conversations(ws)
    finding = ContextLever().analyze(ws, load_config())
    assert finding.details["multi_turn_conversations"] == 2312 - 662
    assert finding.evidence[0]["turns"] == 18
    history = finding.per_call["history_tokens"]
    assert finding.details["resent_history_tokens"] == history.sum() > 0
    # no embeddings were cached (no categories): no forks can be read
    assert finding.details["forks"] == 0 and finding.details["fork_embeddings"] == 0


@pytest.mark.integration
def test_sample_forks_with_minilm(tmp_path):
    """With the bundled MiniLM embedder, the forks are the planted topic drifts
    (truths.json conversations[].drift): most found, no follow-up flagged."""
    import gzip
    import json

    # only the coding conversations (807 calls): the forks live there, and embedding the
    # whole sample would take minutes
    wanted = {i for item in TRUTHS["conversations"]["items"] for i in item["response_ids"]}
    subset = tmp_path / "coding.jsonl"
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as source, subset.open("w") as target:
        for line in source:
            if json.loads(line)["response"]["id"] in wanted:
                target.write(line)
    with Workspace(tmp_path / "w.duckdb") as ws:
        analyze(ws, [str(subset)])
        finding = ContextLever().analyze(ws, load_config())
    drifts = {
        item["response_ids"][item["drift"]["turn"] - 1]
        for item in TRUTHS["conversations"]["items"]
        if item["drift"]
    }
    forks = set(finding.per_call.filter(pl.col("fork"))["call_id"])
    assert len(drifts) == 33
    assert forks <= drifts
    assert len(forks) >= 29  # 29 of 33 with all-MiniLM-L6-v2, none false
