"""The simulation machinery: plans, rate cards, the waterfall, the budget solver and the JSON
shape, with two tiny test levers whose effects are known by hand."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from levers_cli.budget import solve_budget
from levers_cli.cli import app
from levers_cli.config import load_config
from levers_cli.enrich.prices import price_calls
from levers_cli.ingest.pipeline import ingest_files
from levers_cli.levers import LEVELS, LEVERS
from levers_cli.levers.base import Finding, Lever
from levers_cli.pricing.plan import base_plan, plan_cost
from levers_cli.pricing.rates import rate_card
from levers_cli.simulate import run_waterfall, simulate

DAY = 86_400


def _pair(call_id: str, created: int) -> dict:
    return {
        "request": {"model": "gpt-4o", "messages": [{"role": "user", "content": call_id}]},
        "response": {
            "id": call_id,
            "object": "chat.completion",
            "created": created,
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "ok"},
                }
            ],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 100},
        },
    }


class RouteAll(Lever):
    """Test lever 1: every call not yet free goes to gpt-4o-mini."""

    id, name, effort = 1, "routing", "medium"

    def analyze(self, ws, config):
        return Finding(1, "routing", calls_affected=ws.count("calls"))

    def apply(self, plan, finding, config, level):
        return plan.with_columns(
            pl.when(pl.col("plan_free"))
            .then(pl.col("plan_model"))
            .otherwise(pl.lit("gpt-4o-mini"))
            .alias("plan_model")
        )


class CacheX(Lever):
    """Test lever 3: call X is an exact-cache hit."""

    id, name, effort = 3, "caching", "low"

    def analyze(self, ws, config):
        return Finding(3, "caching", calls_affected=1)

    def apply(self, plan, finding, config, level):
        return plan.with_columns(
            (pl.col("plan_free") | (pl.col("call_id") == "X")).alias("plan_free")
        )


@pytest.fixture
def two_calls(ws, tmp_path):
    path = tmp_path / "two.jsonl"
    start = 1_767_225_600  # 2026-01-01
    path.write_text(
        json.dumps(_pair("X", start)) + "\n" + json.dumps(_pair("Y", start + DAY)) + "\n"
    )
    ingest_files(ws, [str(path)])
    price_calls(ws, load_config(None))
    # categorized as analyze leaves two unrelated queries (no category: -1); the test levers
    # read none, and simulate refuses calls with no category at all (an unfinished analyze)
    ws.con.execute("UPDATE calls SET category_id = -1")
    return ws


def test_rate_card_and_base_plan_match_logged_cost(two_calls):
    card = rate_card("openai", "gpt-4o")
    # gpt-4o: 2.50 / 1.25 / 10.00 USD per million tokens
    assert (card.input, card.cache_read, card.output) == pytest.approx((2.5e-6, 1.25e-6, 1e-5))
    plan = base_plan(two_calls)
    # 1,000 × 2.50 + 100 × 10.00 = 3,500 µ$ per call
    assert plan_cost(plan).to_list() == pytest.approx([0.0035, 0.0035])


def test_a_call_both_cached_and_routable_is_saved_once(two_calls):
    config = load_config(None)
    levers = [RouteAll(), CacheX()]
    findings = {lv.id: lv.analyze(two_calls, config) for lv in levers}
    sim = run_waterfall(two_calls, levers, findings, config, "expected")
    # span 1 day → monthly factor 30. Before: 2 × 3,500 µ$ = 7,000 µ$ → $0.21 / month.
    # Routing: both to gpt-4o-mini (1,000 × 0.15 + 100 × 0.60 = 210 µ$) → saves 6,580 µ$.
    # Caching: X becomes free → saves X's remaining 210 µ$, not its 3,500 µ$ again.
    assert sim.before_usd == pytest.approx(0.21)
    assert [s["saving_usd_month"] for s in sim.steps] == pytest.approx([0.1974, 0.0063])
    assert sim.after_usd == pytest.approx(0.0063)
    per_call = (base := plan_cost(base_plan(two_calls))) - plan_cost(sim.plan)
    assert float(per_call.sum()) * 30 == pytest.approx(
        sum(s["saving_usd_month"] for s in sim.steps)
    )
    assert float(base.sum()) * 30 - sim.after_usd == pytest.approx(0.2037)


def test_simulate_json_shape_and_standalone(two_calls):
    config = load_config(None)
    result = simulate(two_calls, config, [RouteAll(), CacheX()])
    data = json.loads(json.dumps(result.as_dict(), default=str))
    assert [lv["id"] for lv in data["levers"]] == [1, 3]
    assert set(data["levers"][0]["saving_usd_month"]) == {"conservative", "expected", "aggressive"}
    assert data["log_span_days"] == pytest.approx(1.0)
    assert data["monthly_cost_before"] == pytest.approx(0.21)
    # caching alone saves X's full 3,500 µ$ × 30; in the waterfall only 210 µ$ × 30
    caching = data["levers"][1]
    assert caching["standalone_usd_month"]["expected"] == pytest.approx(0.105)
    assert caching["saving_usd_month"]["expected"] == pytest.approx(0.0063)


class RouteAllHalfEvidence(RouteAll):
    """Lever 1 with only call Y's category backed by cheap-model answers in the logs."""

    def analyze(self, ws, config):
        per_call = pl.DataFrame({"call_id": ["X", "Y"], "evidence": [False, True]})
        return Finding(1, "routing", calls_affected=2, basis="mixed", per_call=per_call)


def test_saving_split_into_evidence_and_assumption(two_calls):
    """Routing saves 3,290 µ$ per call (3,500 − 210); X's rests on an assumption, Y's on
    evidence: 3,290 µ$ × 30 = $0.0987 a month each. Caching then frees X (210 µ$ × 30 =
    $0.0063) and has no evidence column, so its basis (evidence by default) takes it all."""
    config = load_config(None)
    result = simulate(two_calls, config, [RouteAllHalfEvidence(), CacheX()])
    data = json.loads(json.dumps(result.as_dict(), default=str))
    routing, caching = data["levers"]
    assert routing["saving_by_basis"]["expected"] == pytest.approx(
        {"evidence": 0.0987, "assumption": 0.0987}
    )
    assert routing["basis"] == "mixed"
    assert caching["saving_by_basis"]["expected"] == pytest.approx(
        {"evidence": 0.0063, "assumption": 0.0}
    )
    assert caching["basis"] == "evidence"


def test_basis_of_split():
    from levers_cli.levers.base import basis_of_split

    assert basis_of_split({"evidence": 1.0, "assumption": 0.005}) == "evidence"
    assert basis_of_split({"evidence": 0.0, "assumption": 2.0}) == "assumption"
    assert basis_of_split({"evidence": 1.0, "assumption": 1.0}) == "mixed"
    assert basis_of_split({"evidence": 0.0, "assumption": 0.0}) is None


def test_budget_solver_both_ways(two_calls):
    config = load_config(None)
    levers = [RouteAll(), CacheX()]
    findings = {lv.id: lv.analyze(two_calls, config) for lv in levers}
    # caching alone (low effort) → $0.105/month: the cheapest single lever that fits $0.11
    plan = solve_budget(two_calls, config, levers, findings, 0.11)
    assert (plan.reachable, plan.lever_ids) == (True, [3])
    # $0.05 needs routing (alone: 2 × 210 µ$ × 30 = $0.0126)
    plan = solve_budget(two_calls, config, levers, findings, 0.05)
    assert (plan.reachable, plan.lever_ids, plan.routed_share) == (True, [1], 1.0)
    # $0.001 is out of reach: both levers leave $0.0063
    plan = solve_budget(two_calls, config, levers, findings, 0.001)
    assert not plan.reachable
    assert plan.short_by_usd_month == pytest.approx(0.0053)


def test_cli_budget_out_of_reach_exits_3(two_calls, monkeypatch):
    monkeypatch.setattr("levers_cli.levers.LEVERS", {1: RouteAll, 3: CacheX})
    result = CliRunner().invoke(
        app,
        ["simulate", "-w", two_calls.path, "--budget", "0.001", "--json"],
        env={"COLUMNS": "120"},
    )
    assert result.exit_code == 3
    assert json.loads(result.stdout)["budget"]["reachable"] is False
    assert "out of reach at the expected level by $0.0053/month" in result.stderr
    assert LEVERS is not None


def test_label_sheet_round_trip_through_the_cli(tmp_path):
    from tests.helpers import FakeEmbedder

    rows = [
        {
            "text": f"reset my password please {i}",
            "model": "gpt-4o",
            "input_tokens": 100,
            "output_tokens": 10,
        }
        for i in range(12)
    ]
    rows += [
        {
            "text": f"write a sorting algorithm in rust {i}",
            "model": "gpt-4o",
            "input_tokens": 100,
            "output_tokens": 10,
        }
        for i in range(12)
    ]
    logs = tmp_path / "q.jsonl"
    logs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    workspace = tmp_path / "w.duckdb"
    from levers_cli.analysis import analyze
    from levers_cli.store import Workspace

    with Workspace(workspace) as ws:
        analyze(ws, [str(logs)], embedder=FakeEmbedder())
    runner = CliRunner()
    sheet = tmp_path / "sheet.csv"
    args = ["export", "label-sheet", "-w", str(workspace), "--n", "6", "--out", str(sheet)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, args)  # never overwrite without --force
    assert again.exit_code == 1 and "pass --force" in again.stderr
    import csv

    with sheet.open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 6 and all(row["tier"] == "" for row in table)
    for row in table:
        row["tier"] = "cheap" if "password" in row["query"] else "strong"
    with sheet.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    folded = runner.invoke(app, ["label", str(sheet), "-w", str(workspace)])
    assert folded.exit_code == 0, folded.output
    assert "6 tier labels stored" in folded.stdout


def test_backtest_forecasts_the_later_calls_from_fitted_rates(two_calls):
    from levers_cli.budget import backtest

    result = backtest(two_calls, load_config(None), [RouteAll(), CacheX()], 0.5)
    rows = {r["name"]: r for r in result["levers"]}
    # fit = X only, test = Y only (one call: a 1-hour span → 720 months-worth factor 30/(1/24)).
    # Routing on X saves (3,500 − 210) / 3,500 = 94 % of its cost; Y costs 3,500 µ$ →
    # forecast 3,290 µ$ × 720 = $2.3688; routing Y saves exactly that.
    assert rows["routing"]["predicted_usd_month"] == pytest.approx(2.3688)
    assert rows["routing"]["realized_usd_month"] == pytest.approx(2.3688)
    # Caching saved X's remaining 210 µ$ (6 % of 3,500) in the fit: forecast 6 % of Y's cost,
    # 210 µ$ × 720 = $0.1512; but Y is no cache hit, so nothing is realized.
    assert rows["caching"]["predicted_usd_month"] == pytest.approx(0.1512)
    assert rows["caching"]["realized_usd_month"] == pytest.approx(0.0)


def test_budget_options_split_caching_by_effort():
    from levers_cli.budget import option_name, split_by_effort
    from levers_cli.levers.caching import CachingLever

    options = split_by_effort([RouteAll(), CachingLever()])
    assert [(o.id, o.effort, option_name(o)) for o in options] == [
        (1, "medium", "routing"),
        (3, "low", "caching (prefix)"),
        (3, "medium", "caching (exact+semantic)"),
    ]


def test_cli_rejects_a_budget_of_zero_or_less(two_calls):
    result = CliRunner().invoke(
        app, ["simulate", "-w", two_calls.path, "--budget", "-5"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2  # bad usage, as for a budget that is not a number
    assert "Invalid value for '--budget': -5 is not above 0" in result.stderr
    assert result.stdout == ""


def test_monthly_basis_names_the_configured_days_per_month(two_calls):
    config = load_config(None)
    config.set("analysis", "days_per_month", 30.4375)  # 365.25 / 12
    data = simulate(two_calls, config, [RouteAll(), CacheX()]).as_dict()
    # 2 calls × 3,500 µ$ over a 1-day span → 7,000 µ$ × 30.4375 a month
    assert data["monthly_cost_before"] == pytest.approx(0.007 * 30.4375)
    assert data["monthly_basis"] == "cost × 30.4375 days / 1.00-day span of the log"


class CacheInParts(Lever):
    """Test lever 3 in two parts, as the caching lever: the prefix part (low effort) makes
    call X free, the response-cache part (medium effort) call Y."""

    id, name = 3, "caching"

    def __init__(self, parts: tuple[str, ...] = ("prefix", "exact")) -> None:
        self.parts = parts
        self.effort = "low" if parts == ("prefix",) else "medium"

    @property
    def label(self) -> str:
        return self.name if len(self.parts) == 2 else f"{self.name} ({'+'.join(self.parts)})"

    def budget_options(self) -> list[Lever]:
        if len(self.parts) < 2:
            return [self]
        return [CacheInParts(("prefix",)), CacheInParts(("exact",))]

    def analyze(self, ws, config):
        return Finding(3, "caching", calls_affected=2)

    def apply(self, plan, finding, config, level):
        free = [call for part, call in (("prefix", "X"), ("exact", "Y")) if part in self.parts]
        return plan.with_columns(pl.col("plan_free") | pl.col("call_id").is_in(free))


def test_a_budget_met_by_prefix_caching_alone_names_that_part(two_calls, monkeypatch):
    config = load_config(None)
    levers = [RouteAll(), CacheInParts()]
    findings = {lv.id: lv.analyze(two_calls, config) for lv in levers}
    # $0.21 a month now; the prefix part alone frees X: 3,500 µ$ × 30 = $0.105 ≤ $0.15, and
    # it is the only one-lever, low-effort option
    plan = solve_budget(two_calls, config, levers, findings, 0.15)
    assert plan.reachable and plan.monthly_cost_after == pytest.approx(0.105)
    assert (plan.lever_ids, plan.lever_names) == ([3], ["caching (prefix)"])
    monkeypatch.setattr("levers_cli.levers.LEVERS", {1: RouteAll, 3: CacheInParts})
    result = CliRunner().invoke(
        app, ["simulate", "-w", two_calls.path, "--budget", "0.15"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "reachable at the expected level with 3. caching (prefix) → $0.105/month" in (
        result.stdout
    )


def test_context_and_caching_on_the_same_calls_over_the_seven_levers(ws, tmp_path):
    """One gpt-4o conversation of five turns, a minute apart: a 1,000-token system prompt
    (1,004 with its framing), user turns of 14 tokens, replies of 50 (count_messages), so
    turn t sends 957 + 64 t tokens (1,021 … 1,277) and shares with turn t − 1 all of that
    turn's prompt (957 + 64 (t − 1) tokens). The log shows nothing cached.

    The seven real levers at the expected level (routing held back: max_difficulty 0; the
    other levers find nothing in five calls). Context summarizes every two exchanges (as in
    test_lever_context.test_policy_every_two_turns_by_hand): t3 and t5 send head + a
    10-token summary + their question, t4 carries the summary and t3's question. Removed
    118, 118, 246 tokens; the new prompts share 1,004 (t3, t5: the head alone) and
    1,004 + 10 + 14 = 1,028 tokens (t4) with an earlier one.

    Caching then prices the new prompts under OpenAI's rules (1,024 minimum, 128-token
    steps): t2 shares 1,021 < 1,024 (nothing); t3 and t5 share 1,004 (nothing); t4 shares
    1,028 → 1,024 cached. On the logged prompts alone it would cache t3 1,024, t4 1,024,
    t5 1,152: the tokens context removed are not cached again, and no shortened prompt is
    cached beyond what it shares (before: t3 1,024 and t5 its whole 1,031 tokens).

    gpt-4o: 2.50 / 1.25 / 10.00 $/MTok; summaries on gpt-4o-mini (0.15 / 0.60). Over the
    log: before 5,745 × 2.50 + 5 × 46 × 10 = 16,662.5 µ$; context saves 482 × 2.50 −
    (266 × 0.15 + 20 × 0.60) = 1,153.1 µ$; caching saves 1,024 × 1.25 = 1,280 µ$. The log
    spans 4 minutes, counted as an hour: × 720 a month."""
    from levers_cli.levers import all_levers
    from levers_cli.rules import rule_for
    from tests.helpers import FakeEmbedder
    from tests.levers.test_lever_context import build, pair, words
    from tests.levers.test_lever_context import config as context_config

    messages = [{"role": "system", "content": words(1000)}]
    records = []
    for t in range(5):
        messages = [*messages, {"role": "user", "content": words(10)}]
        records.append(pair(messages, words(46, "ok"), 1_790_812_800 + 60 * t))
        messages = [*messages, {"role": "assistant", "content": words(46, "ok")}]
    assert [r["response"]["usage"]["prompt_tokens"] for r in records] == [
        1021, 1085, 1149, 1213, 1277,
    ]  # fmt: skip
    assert FakeEmbedder  # build() analyzes with it
    build(ws, tmp_path, records)
    config = context_config()
    config.set("routing", "max_difficulty", dict.fromkeys(LEVELS, 0.0))
    levers = all_levers()
    result = simulate(ws, config, levers, levels=("expected",))
    sim = result.levels["expected"]
    steps = {s["name"]: s["saving_usd_month"] for s in sim.steps}
    assert sim.before_usd == pytest.approx(16_662.5e-6 * 720)
    assert steps["context"] == pytest.approx(1_153.1e-6 * 720)
    assert steps["caching"] == pytest.approx(1_280e-6 * 720)
    assert {n: v for n, v in steps.items() if n not in ("context", "caching")} == {
        n: pytest.approx(0.0, abs=1e-12) for n in steps if n not in ("context", "caching")
    }
    assert sim.after_usd == pytest.approx((16_662.5 - 1_153.1 - 1_280) * 1e-6 * 720)
    assert result.findings[3].standalone_usd_month["expected"] == pytest.approx(
        (1024 + 1024 + 1152) * 1.25e-6 * 720
    )
    plan = sim.plan.sort("ts")
    assert plan["plan_input"].to_list() == [1021, 1085, 1031, 1095, 1031]
    assert plan["plan_cache_read"].to_list() == [0, 0, 0, 1024, 0]
    # every cached token is reachable: at least the minimum, in its steps, within the prefix
    # the plan's prompt shares (provider_rules.toml's rule for the plan model)
    for row in plan.iter_rows(named=True):
        read = row["plan_cache_read"]
        if read:
            rule = rule_for(row["provider"], row["plan_model"])
            bound = row["plan_prefix_tokens"] or row["plan_input"]
            assert read >= rule.min_cacheable_tokens and read % rule.increment_tokens == 0
            assert read <= min(bound, row["plan_input"])


def test_every_cached_token_on_the_simulated_sample_is_reachable(tmp_path_factory):
    """The shipped sample through the seven levers at every level: each call's cached input
    on the final plan is at least its plan model's minimum, a multiple of its increment
    (OpenAI: 1,024 and 128, provider_rules.toml) and within the prefix its prompt shares as
    the plan has it (before: 82 prompts context shortened below 1,024 tokens kept cached
    tokens, up to all of them). The per-call sum is also what the plan says in total."""
    from levers_cli.levers import all_levers
    from levers_cli.rules import rule_for
    from levers_cli.store import Workspace
    from tests.helpers import analyzed_sample_copy

    with Workspace(analyzed_sample_copy(tmp_path_factory)) as ws:
        result = simulate(ws, load_config(), all_levers())
    for level, sim in result.levels.items():
        plan = sim.plan.filter(~pl.col("plan_free") & (pl.col("plan_cache_read") > 0))
        total = 0
        for row in plan.iter_rows(named=True):
            rule = rule_for(row["provider"], row["plan_model"])
            read, bound = row["plan_cache_read"], row["plan_prefix_tokens"] or row["plan_input"]
            assert read >= rule.min_cacheable_tokens, (level, row["call_id"], read)
            assert read % rule.increment_tokens == 0, (level, row["call_id"], read)
            assert read <= min(bound, row["plan_input"]), (level, row["call_id"], read, bound)
            total += read
        assert total == int(plan["plan_cache_read"].sum()) > 0


def test_standalone_measures_and_claims_by_hand(two_calls):
    """Each lever alone on the two gpt-4o calls (1,000 in, 100 out: 2,500 + 1,000 µ$ each).
    Routing alone moves both to gpt-4o-mini (150 + 60 = 210 µ$): 2 of 2 calls, 3,500 / 210 =
    16.67× cheaper, 94 % of their cost and of their input cost (2,500 → 150 µ$), output
    unchanged. The cache alone frees X: 1 of 2 calls, all of its cost, input and output.
    Together they leave 0.0063 of 0.21 a month: 97 % saved. The claims of claims.toml set
    beside them: routing's two (65 % of queries, 3.75×), and the levers together."""
    from levers_cli.simulate import load_claims

    config = load_config(None)
    result = simulate(two_calls, config, [RouteAll(), CacheX()], levels=("expected",))
    routing = result.measures["routing"]["expected"]
    assert routing == pytest.approx(
        {
            "calls_share": 1.0,
            "cost_share": 0.94,
            "cost_ratio": 3500 / 210,
            "cut_on_changed": 0.94,
            "input_cut": 0.94,
            "output_cut": 0.0,
        }
    )
    caching = result.measures["caching"]["expected"]
    assert caching == {
        "calls_share": 0.5,
        "cost_share": pytest.approx(0.5),
        "cost_ratio": None,  # free: no finite ratio
        "cut_on_changed": pytest.approx(1.0),
        "input_cut": pytest.approx(1.0),
        "output_cut": pytest.approx(1.0),
    }
    data = json.loads(json.dumps(result.as_dict()))
    assert data["claims_source"] == load_claims()["source"] == "the article levers grew from"
    rows = [
        (c["lever"], c["metric"], c["claimed"], c["measured"]["expected"]) for c in data["claims"]
    ]
    assert rows == [
        ("routing", "calls_share", [0.65, 0.65], 1.0),
        ("routing", "cost_ratio", [3.75, 3.75], pytest.approx(3500 / 210)),
        ("together", "cost_share", [0.8, 0.95], pytest.approx(0.97)),
    ]


def test_every_claim_names_a_lever_and_a_metric():
    from levers_cli.levers import all_levers
    from levers_cli.simulate import CLAIM_METRICS, load_claims

    claims = load_claims()["claim"]
    named = {c["lever"] for c in claims}
    labels = {"together"}
    for lever in all_levers():  # caching's claims are of its parts (prefix; exact+semantic)
        own = {lever.name, *(option.label for option in lever.budget_options())}
        assert own & named, lever.name
        labels |= own
    assert named <= labels
    assert all(c["metric"] in CLAIM_METRICS and c["low"] <= c["high"] for c in claims)


def _asked(call_id: str, query: str, created: int) -> dict:
    record = _pair(call_id, created)
    record["request"]["messages"][0]["content"] = query
    return record


def test_backtest_fits_categories_on_the_first_part_only(ws, tmp_path, monkeypatch):
    """Queries x and y before the cutoff (day 1 of a 2-day span), x, z and w after it. The
    clustering sees x and y only (x → category 0, y → 1); in the later part x keeps 0, z
    (cosine 0.994 with x's centroid, ≥ 0.55) joins 0, w (cosine 0) stays uncategorized.

    Routing (toy lever) saves 94 % of categories 0 and 1 in the first part, so the forecast
    covers the later x and z (2 × 3,290 µ$) but not w; all three are routed (3 × 3,290 µ$).
    The later calls share one timestamp, counted as an hour: × 720 a month. Forecast $4.7376,
    realized $7.1064, error $2.3688 = +50 %."""
    import numpy as np

    from levers_cli.budget import backtest
    from levers_cli.cluster.assign import FitResult

    start = 1_767_225_600
    rows = [("a", "x", start), ("b", "y", start + DAY // 2), ("c", "x", start + 2 * DAY)]
    rows += [("d", "z", start + 2 * DAY), ("e", "w", start + 2 * DAY)]
    path = tmp_path / "five.jsonl"
    path.write_text("".join(json.dumps(_asked(*row)) + "\n" for row in rows))
    ingest_files(ws, [str(path)])
    price_calls(ws, load_config(None))
    ws.con.execute("UPDATE calls SET category_id = -1")
    unit = {"x": [1.0, 0.0, 0.0], "y": [0.0, 1.0, 0.0], "w": [0.0, 0.0, 1.0]}
    unit["z"] = list(np.array([0.9, 0.0, 0.1]) / np.linalg.norm([0.9, 0.0, 0.1]))
    for query, vector in unit.items():
        ws.con.execute(
            "INSERT INTO embeddings SELECT any_value(query_hash), 'fake:3', ? FROM calls "
            "WHERE query = ?",
            [vector, query],
        )
    ws.con.execute(
        "INSERT INTO categories (category_id, parent_id, label, keywords, exemplars, size, "
        "distinct_queries, spend_usd, embedder, centroid) "
        "VALUES (0, NULL, 'all', [], [], 5, 4, 0, 'fake:3', [1, 0, 0])"
    )
    seen = []

    def fit(vectors, weights, params, progress=None, texts=None):
        seen.extend(texts)
        return FitResult(np.where(vectors[:, 0] > 0.5, 0, 1), "fake fit", None, len(vectors))

    monkeypatch.setattr("levers_cli.cluster.assign.fit_and_assign", fit)
    result = backtest(ws, load_config(None), [RouteAll(), CacheX()], 0.5)
    assert sorted(seen) == ["x", "y"]  # the later part's queries were never fitted on
    assert result["categories"].startswith(
        "fitted on the first part's 2 distinct queries (fake fit); 2 queries new in the later"
    )
    routing = result["levers"][0]
    assert routing["predicted_usd_month"] == pytest.approx(4.7376)
    assert routing["realized_usd_month"] == pytest.approx(7.1064)
    assert routing["error_usd_month"] == pytest.approx(2.3688)
    assert routing["error_share"] == pytest.approx(0.5)
    assert (routing["signal"], routing["note"]) == (True, "")


def test_backtest_carries_caps_and_scripted_templates_to_the_later_calls():
    """Caps: the first part capped category 0 on gpt-4o at 300 tokens (call a); the later
    call c (category 0, gpt-4o-2024-08-06: the same family) gets that cap, d (gpt-4o-mini)
    and e (category 1, never capped) none.

    Materialize: candidate 0 is one exact prompt ("order 12 status", masked "order <num>
    status"), scripted at every level: the later c ("order 97 status") matches it, d ("order
    97 status?") does not. Candidate 1 is a whole template scripted at the aggressive level
    only, whose two first-part prompts share "translate the following text into <name> ,
    please : <*>" (9 fixed tokens ≥ 4): the later e, a new text to translate, matches it.
    Candidate 2, a template of two prompts sharing no 4-gram (skeleton "<*>"), takes only
    its own prompts again, not every later prompt (none recurs)."""
    from levers_cli.budget import _transfer
    from levers_cli.levers.caps import CapsLever
    from levers_cli.levers.materialize import MaterializeLever
    from levers_cli.query_templates.mask import tokens

    def frame(rows):
        ids, cats, models, prompts = zip(*rows, strict=True)
        return pl.DataFrame(
            {"call_id": ids, "category_id": cats, "model": models, "prompt": prompts}
        ).with_columns(
            pl.col("prompt")
            .map_elements(lambda t: " ".join(tokens(t)), return_dtype=pl.String)
            .alias("masked")
        )

    french = "Translate the following text into French, please: "
    fit = frame(
        [("a", 0, "gpt-4o", "order 12 status"), ("b", 1, "gpt-4o", "hello"),
         ("f", 1, "gpt-4o", french + "hello world"), ("g", 1, "gpt-4o", french + "good day"),
         ("h", 2, "gpt-4o", "ping"), ("i", 2, "gpt-4o", "pong")]
    )  # fmt: skip
    later = frame(
        [("c", 0, "gpt-4o-2024-08-06", "order 97 status"),
         ("d", 0, "gpt-4o-mini", "order 97 status?"),
         ("e", 1, "gpt-4o", french + "see you tomorrow")]
    )  # fmt: skip
    config = load_config(None)
    caps = pl.DataFrame(
        {"call_id": ["a"], **{f"cap_{lv}": [300] for lv in LEVELS}}
        | {f"concise_{lv}": [0.1] for lv in LEVELS}
    )
    moved = _transfer(CapsLever(), Finding(4, "caps", per_call=caps), fit, later, config)
    assert moved.per_call.to_dicts() == [
        {"call_id": "c", **{f"cap_{lv}": 300 for lv in LEVELS}}
        | {f"concise_{lv}": 0.1 for lv in LEVELS}
    ]
    scripts = pl.DataFrame(
        {
            "call_id": ["a", "f", "g", "h", "i"],
            "candidate": [0, 1, 1, 2, 2],
            "script_conservative": [True, False, False, True, True],
            "script_expected": [True, False, False, True, True],
            "script_aggressive": [True, True, True, True, True],
        }
    )
    evidence = [{"kind": "prompt"}, {"kind": "template"}, {"kind": "template"}]
    finding = Finding(5, "materialize", per_call=scripts, evidence=evidence)
    moved = _transfer(MaterializeLever(), finding, fit, later, config)
    assert moved.per_call.sort("call_id").to_dicts() == [
        {"call_id": "c", "script_conservative": True, "script_expected": True,
         "script_aggressive": True, "evidence": True},
        {"call_id": "e", "script_conservative": False, "script_expected": False,
         "script_aggressive": True, "evidence": True},
    ]  # fmt: skip


class CacheY(CacheX):
    """Test lever 3: call Y (the later part's only call) is an exact-cache hit."""

    def apply(self, plan, finding, config, level):
        return plan.with_columns(
            (pl.col("plan_free") | (pl.col("call_id") == "Y")).alias("plan_free")
        )


def test_backtest_says_when_a_lever_has_no_out_of_sample_signal(two_calls):
    """Fit = X, test = Y (as above). The cache frees only Y: the first part shows no saving,
    so nothing is forecast and the row says so; Y's 3,500 µ$ × 720 = $2.52 is realized."""
    from levers_cli.budget import NO_SIGNAL, backtest

    result = backtest(two_calls, load_config(None), [CacheY()], 0.5)
    (row,) = result["levers"]
    assert (row["signal"], row["note"]) == (False, NO_SIGNAL)
    assert row["predicted_usd_month"] == 0.0 and row["error_share"] is None
    assert row["realized_usd_month"] == pytest.approx(2.52)
    assert result["categories"].startswith("the workspace's own categories")


def test_backtest_routes_the_later_calls_with_the_first_parts_router():
    """The first part put category 0 below the expected threshold (0 and 1 below the
    aggressive one, none below the conservative one) and decided category 2 by tier labels.
    Later calls (in-sample decisions in brackets): p (category 0, difficulty 0.10) is routed
    at the expected (0.10 ≤ max_difficulty 0.15) and aggressive levels; q (category 0, 0.30)
    at none; r (category 1, keyword-forced strong) and s (category 2) keep the later part's
    own decisions; t (category 1, 0.05, no cheap model for its provider) at none."""
    from levers_cli.budget import _transfer
    from levers_cli.levers.routing import RoutingLever

    details = {
        "levels": {
            "conservative": {"categories_below_threshold": [], "label_shares": {"2": 0.4}},
            "expected": {"categories_below_threshold": [0], "label_shares": {"2": 0.5}},
            "aggressive": {"categories_below_threshold": [0, 1], "label_shares": {"2": 0.6}},
        }
    }
    fit = Finding(1, "routing", details=details, per_call=pl.DataFrame({"call_id": ["a"]}))
    mini = "gpt-4o-mini"
    later_calls = pl.DataFrame(
        {
            "call_id": ["p", "q", "r", "s", "t"],
            "score": [0.10, 0.30, 0.05, 0.90, 0.05],
            "forced": [None, None, "strong", None, None],
            "route_model": [mini, mini, mini, mini, None],
            **{f"route_{lv}": [False, False, False, True, False] for lv in LEVELS},
        }
    )
    later = Finding(1, "routing", per_call=later_calls)
    frame = pl.DataFrame({"call_id": ["p", "q", "r", "s", "t"], "category_id": [0, 0, 1, 2, 1]})
    moved = _transfer(RoutingLever(), fit, frame, frame, load_config(None), later)
    routes = moved.per_call.select("call_id", *[f"route_{lv}" for lv in LEVELS]).rows()
    assert routes == [
        ("p", False, True, True),
        ("q", False, False, False),
        ("r", False, False, False),
        ("s", True, True, True),
        ("t", False, False, False),
    ]
    assert moved.per_call.columns == later_calls.columns and moved.calls_affected == 2


def test_cli_tables_show_standalone_claims_and_backtest_errors(two_calls, monkeypatch):
    """The terminal shows the alone column and the claims (routing: 2 of 2 calls changed =
    100.0 %, 16.67×; together 97.0 %), and the backtest's forecast, realized figure, error
    and what is still fitted on the whole log (figures of the tests above)."""
    monkeypatch.setattr("levers_cli.levers.LEVERS", {1: RouteAll, 3: CacheX})
    runner = CliRunner()
    env = {"COLUMNS": "250"}
    shown = runner.invoke(app, ["simulate", "-w", two_calls.path, "--level", "expected"], env=env)
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert "alone (expected)" in out and "Claims of the article levers grew from" in out
    assert "100.0 %" in out and "16.67×" in out and "97.0 %" in out
    tested = runner.invoke(app, ["simulate", "-w", two_calls.path, "--backtest", "0.5"], env=env)
    assert tested.exit_code == 0, tested.output
    out = tested.stdout
    assert "$2.37" in out and "+0 %" in out  # routing: forecast = realized = $2.3688
    assert "$0.151" in out and "−100 %" in out  # caching: $0.1512 forecast, nothing realized
    assert "Still fitted on the whole log" in out
