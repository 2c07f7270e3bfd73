"""The pricing field cases of ../shared/cases (C16, C18, C20, C22, C25), with the expected
values of ../shared/cases/README.md (computed by hand from the providers' list prices; the
token arithmetic is written out above each assertion). genai-prices 0.2.5 agrees with every
list price the README uses; gpt-4o-mini-audio-preview's audio rates, which it lacks, come
from levers' own price rows."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from levers_cli.analysis import analyze
from levers_cli.config import load_config
from levers_cli.levers.batch import BatchLever
from levers_cli.levers.caching import CachingLever
from levers_cli.simulate import run_waterfall
from levers_cli.summary import spend_by_model, token_totals
from tests.helpers import CASES, FakeEmbedder, call_costs, need_shared, price_case


def test_c16_one_hour_cache_writes_at_twice_input(ws):
    price_case(ws, "C16-anthropic-1h-cache-write.jsonl")
    rows = ws.con.execute(
        "SELECT call_id, input_tokens, cache_read_tokens, cache_write_tokens, "
        "cache_write_1h_tokens FROM calls ORDER BY call_id"
    ).fetchall()
    # cache_creation_input_tokens is the sum of both TTLs; the 1-hour part is stored apart
    assert rows == [
        ("msg_c16_1", 10_050, 0, 10_000, 10_000),
        ("msg_c16_2", 30_100, 20_000, 10_000, 8_000),
        ("msg_c16_3", 10_050, 10_000, 0, 0),
    ]
    # claude-sonnet-4-5: 3.00 in, 3.75 5-minute write, 6.00 1-hour write, 0.30 read, 15.00 out
    # line 1: 50 × 3 + 10,000 × 6 + 300 × 15 = 150 + 60,000 + 4,500 = 64,650 µ$
    # line 2: 100 × 3 + 8,000 × 6 + 2,000 × 3.75 + 20,000 × 0.30 + 400 × 15
    #         = 300 + 48,000 + 7,500 + 6,000 + 6,000 = 67,800 µ$
    # line 3: 50 × 3 + 10,000 × 0.30 + 300 × 15 = 150 + 3,000 + 4,500 = 7,650 µ$
    assert call_costs(ws) == {
        "msg_c16_1": Decimal("0.06465"),
        "msg_c16_2": Decimal("0.0678"),
        "msg_c16_3": Decimal("0.00765"),
    }


def test_c16_caching_lever_keeps_the_one_hour_ttl(ws):
    path = need_shared(CASES / "C16-anthropic-1h-cache-write.jsonl")
    analyze(ws, [str(path)], embedder=FakeEmbedder())
    finding = CachingLever().analyze(ws, load_config())
    flags = dict(finding.per_call.select("call_id", "ttl_1h").rows())
    assert flags == {"msg_c16_1": True, "msg_c16_2": True, "msg_c16_3": False}
    rules = {(r["ttl_seconds"], r["write_multiplier"]) for r in finding.details["provider_rules"]}
    assert rules == {(300, 1.25), (3600, 2.0)}


def test_c18_flex_priced_from_the_served_tier(ws):
    result = price_case(ws, "C18-openai-flex-served-tier.jsonl")[1]
    tiers = dict(ws.con.execute("SELECT call_id, service_tier FROM calls").fetchall())
    assert tiers == {"resp_c18_1": "flex", "resp_c18_2": "default"}  # the response's, stored
    # gpt-5-mini standard 0.25 / 0.025 cached / 2.00 out; flex = Batch = half of each.
    # line 1 (served flex): 12,000 × 0.125 + 8,000 × 0.0125 + 3,000 × 1.00
    #                       = 1,500 + 100 + 3,000 = 4,600 µ$ (reasoning inside the 3,000)
    # line 2 (asked priority, served default): 5,000 × 0.25 + 1,000 × 2.00 = 3,250 µ$
    assert call_costs(ws) == {"resp_c18_1": Decimal("0.0046"), "resp_c18_2": Decimal("0.00325")}
    # the call is dated 2026-01-01, before genai-prices' flex variant (verified 2026-10-12):
    # the flex rate is levers' own row, with its source
    (row,) = result.as_dict()["own_rows_used"]
    assert row["when"] == {"service_tier": "flex"} and row["factor"] == 0.5
    assert "flex-processing" in row["source"] and row["calls"] == 1


def test_c18_batch_lever_does_not_discount_flex_again(ws, tmp_path):
    records = [
        json.loads(line)
        for line in need_shared(CASES / "C18-openai-flex-served-tier.jsonl")
        .read_text()
        .splitlines()
    ]
    for record in records:  # both calls declared asynchronous: both would be batch candidates
        record["request"]["metadata"] = {"job": "nightly-invoices"}
    path = tmp_path / "c18-tagged.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    analyze(ws, [str(path)], embedder=FakeEmbedder())
    config = load_config()
    finding = BatchLever().analyze(ws, config)
    assert finding.per_call["call_id"].to_list() == ["resp_c18_2"]
    assert finding.details["already_flex_calls"] == 1
    sim = run_waterfall(ws, [BatchLever()], {7: finding}, config, "aggressive")
    before, after = (dict(zip(sim.plan["call_id"], c, strict=True)) for c in sim.call_costs)
    assert before["resp_c18_1"] == pytest.approx(0.0046)  # the plan starts at flex rates
    assert after["resp_c18_1"] == pytest.approx(0.0046)  # and the batch lever leaves it
    assert after["resp_c18_2"] == pytest.approx(0.00325 / 2)


def test_c20_audio_tokens_at_audio_rates(ws):
    result = price_case(ws, "C20-openai-audio-tokens.jsonl")[1]
    parts = ws.con.execute(
        "SELECT call_id, input_tokens, input_audio_tokens, output_tokens, output_audio_tokens "
        "FROM calls ORDER BY call_id"
    ).fetchall()
    assert parts == [
        ("chatcmpl-c20-1", 1250, 1200, 1000, 800),
        ("chatcmpl-c20-2", 1250, 1200, 1000, 800),
        ("chatcmpl-c20-3", 300, 0, 100, 0),
    ]
    # gpt-audio-mini (genai-prices): text 0.60 / 2.40, audio 10.00 / 20.00
    #   50 × 0.60 + 1,200 × 10 + 200 × 2.40 + 800 × 20 = 30 + 12,000 + 480 + 16,000 = 28,510 µ$
    # gpt-4o-mini-audio-preview: text 0.15 / 0.60 (genai-prices), audio 10 / 20 (own row)
    #   50 × 0.15 + 1,200 × 10 + 200 × 0.60 + 800 × 20 = 7.5 + 12,000 + 120 + 16,000
    #   = 28,127.5 µ$
    # text-only control: 300 × 0.60 + 100 × 2.40 = 420 µ$
    assert call_costs(ws) == {
        "chatcmpl-c20-1": Decimal("0.02851"),
        "chatcmpl-c20-2": Decimal("0.0281275"),
        "chatcmpl-c20-3": Decimal("0.00042"),
    }
    (row,) = result.as_dict()["own_rows_used"]
    assert row["models"] == ["gpt-4o-mini-audio-preview*"] and row["calls"] == 1
    assert row["source"].startswith("https://platform.openai.com/docs/pricing")


def test_c22_gateway_cache_hit_is_free_and_not_provider_tokens(ws):
    result = price_case(ws, "C22-litellm-spendlogs-cache-hit.jsonl")[1]
    hits = dict(ws.con.execute("SELECT call_id, gateway_cache_hit FROM calls").fetchall())
    assert hits == {"chatcmpl-c22-1": False, "chatcmpl-c22-2": True, "chatcmpl-c22-3": False}
    # gpt-4o-mini 0.15 / 0.075 cached / 0.60
    # row 1: 1,200 × 0.15 + 300 × 0.60 = 180 + 180 = 360 µ$; row 2: served by LiteLLM: $0
    # row 3: 1,024 × 0.15 + 1,024 × 0.075 + 100 × 0.60 = 153.6 + 76.8 + 60 = 290.4 µ$
    assert call_costs(ws) == {
        "chatcmpl-c22-1": Decimal("0.00036"),
        "chatcmpl-c22-2": Decimal("0"),
        "chatcmpl-c22-3": Decimal("0.0002904"),
    }
    assert result.gateway_cache_hits == 1
    tokens = token_totals(ws)
    # provider tokens: rows 1 and 3 only (1,200 + 2,048 in; 300 + 100 out)
    assert (tokens["input_tokens"], tokens["output_tokens"]) == (3248, 400)
    assert tokens["gateway_cache_hit_calls"] == 1
    assert (tokens["gateway_replayed_input_tokens"], tokens["gateway_replayed_output_tokens"]) == (
        1200,
        300,
    )
    (model,) = spend_by_model(ws)
    assert (model["calls"], model["gateway_cache_hits"], model["input_tokens"]) == (3, 1, 3248)


def test_c22_exact_cache_lever_reports_a_realized_hit(ws):
    path = need_shared(CASES / "C22-litellm-spendlogs-cache-hit.jsonl")
    analyze(ws, [str(path)], embedder=FakeEmbedder())
    config = load_config()
    finding = CachingLever().analyze(ws, config)
    details = finding.details
    assert details["exact_hits"] == 0  # not a new hit: LiteLLM's cache served it already
    assert details["exact_realized"]["calls"] == 1
    # what the provider would have charged for row 2: 1,200 × 0.15 + 300 × 0.60 = 360 µ$
    assert details["exact_realized"]["saved_usd"] == pytest.approx(0.00036)
    figures = {f.name: f.value for f in finding.figures}
    assert figures["exact_realized_calls"] == 1
    assert details["parts"]["exact"]["saving_usd_month"]["expected"] == 0.0


def test_c25_minimum_cacheable_prefix_per_model(ws):
    path = need_shared(CASES / "C25-anthropic-min-cacheable-prefix.jsonl")
    analyze(ws, [str(path)], embedder=FakeEmbedder())
    config = load_config()
    finding = CachingLever(("prefix",)).analyze(ws, config)
    per_call = {r[0]: r[1:] for r in finding.per_call.select(
        "call_id", "prefix_read_expected", "prefix_write_expected").rows()}  # fmt: skip
    # Haiku 4.5: the ~2,620-token prompts are below its 4,096-token minimum: nothing cached
    assert [per_call[f"msg_c25_{i}"] for i in (1, 2, 3)] == [(0, 0)] * 3
    (below,) = finding.details["prefix_below_minimum"]
    assert below["model"] == "claude-haiku-4-5-20251001" and below["calls"] == 3
    assert (below["largest_prompt_tokens"], below["min_cacheable_tokens"]) == (2620, 4096)
    assert below["cacheable_tokens"] == 0 and "below" in below["reason"]
    assert "prompt-caching" in below["source"]
    # Sonnet 4.5 (minimum 1,024): one 5-minute write, then two reads of the system prompt
    (prefix,) = {per_call["msg_c25_4"][1], per_call["msg_c25_5"][0], per_call["msg_c25_6"][0]}
    assert per_call["msg_c25_4"][0] == 0 and per_call["msg_c25_5"][1] == 0
    sim = run_waterfall(ws, [CachingLever(("prefix",))], {3: finding}, config, "expected")
    saved = dict(
        zip(sim.plan["call_id"], (sim.call_costs[0] - sim.call_costs[1]).to_list(), strict=True)
    )
    assert all(saved[f"msg_c25_{i}"] == 0 for i in (1, 2, 3))
    # per prefix token: write premium (3.75 − 3.00) once, read saving (3.00 − 0.30) twice:
    # 2 × 2.70 − 0.75 = 4.65 µ$; the README's ≈ $0.0121 is 4.65 × ~2,605 Claude tokens, and
    # anything from $0.0093 to $0.0122 stands, as the prefix is tokenized with tiktoken here
    sonnet = sum(saved[f"msg_c25_{i}"] for i in (4, 5, 6))
    assert sonnet == pytest.approx(prefix * 4.65e-6)
    assert 0.0093 <= sonnet <= 0.0122
