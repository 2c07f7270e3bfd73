"""Lever 6, LoRA: accepted answers, candidate categories, training cost, apply.

Hand-made workspace (OpenAI pairs, exactly three days long: monthly = log × 10; categories set
by hand). Prices (genai-prices, USD per token): gpt-4o 2.5e-6 in, 1e-5 out; gpt-4o-mini
1.5e-7 in, 6e-7 out; ft:gpt-4o-mini-2024-07-18 3e-7 in, 1.2e-6 out, so the LoRA share is priced
as gpt-4o-mini + 1.5e-7 in, 6e-7 out per token. Training: $3 per million tokens × 3 epochs,
amortized over 6 months.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from levers_cli.analysis import analyze
from levers_cli.config import load_config
from levers_cli.errors import ConfigError
from levers_cli.levers import LEVERS
from levers_cli.levers.lora import LoraLever
from levers_cli.levers.lora.acceptance import acceptance, feedback_value
from levers_cli.levers.lora.calls import draw, lora_rates
from levers_cli.pricing.plan import base_plan, plan_cost
from levers_cli.simulate import run_waterfall
from levers_cli.store import Workspace
from tests.helpers import ROOT, FakeEmbedder, analyzed_sample_copy, openai_pair

TRUTHS = json.loads((ROOT / "sample_logs" / "truths.json").read_text())
T0 = 1_790_000_000
DAY = 86_400


def _pair(cid, model, messages, answer, t, *, finish="stop", metadata=None):
    extra = {"metadata": metadata} if metadata else {}
    return openai_pair(
        cid, model, messages, answer, T0 + t, 1000, 100, finish_reason=finish, **extra
    )


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _config(**lora):
    config = load_config()
    config.set("lora", "min_examples", {"conservative": 4, "expected": 3, "aggressive": 2})
    for key, value in lora.items():
        config.set("lora", key, value)
    return config


@pytest.fixture
def tiny(ws: Workspace, tmp_path: Path) -> Workspace:
    """Every call 1000 in, 100 out. Category 0 (gpt-4o): s1 thumbs down, s2 accepted by
    feedback, s3 cut off by max_tokens, s4 plain, s5 followed 60 s later in its conversation by
    s6, a rephrasing (FakeEmbedder cosine 5/√30 = 0.91 ≥ 0.8). Category 1 (gpt-4o-mini, cheaper
    than the LoRA model): c1-c3. Category 2 (gpt-4o): f1, f2. The last call is 3 days in."""
    q5, q6 = "summarize the notes from monday", "summarize the notes from monday please"
    rows = [
        _pair("s1", "gpt-4o", _user("summarize notes one"), "A.", 0, metadata={"thumbs": "down"}),
        _pair("s2", "gpt-4o", _user("summarize notes two"), "B.", 10, metadata={"accepted": True}),
        _pair("s3", "gpt-4o", _user("summarize notes three"), "C", 20, finish="length"),
        _pair("s4", "gpt-4o", _user("summarize notes four"), "D.", 30),
        _pair("s5", "gpt-4o", _user(q5), "E.", 100),
        _pair(
            "s6",
            "gpt-4o",
            [*_user(q5), {"role": "assistant", "content": "E."}, *_user(q6)],
            "F.",
            160,
        ),
        *(_pair(f"c{i}", "gpt-4o-mini", _user(f"classify {i}"), "x", 200 + i) for i in (1, 2, 3)),
        _pair("f1", "gpt-4o", _user("plan the release"), "G.", 300),
        _pair("f2", "gpt-4o", _user("plan the migration"), "H.", 3 * DAY),
    ]
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    analyze(ws, [str(path)], embedder=FakeEmbedder())
    ws.con.execute(
        "UPDATE calls SET category_id = CASE left(call_id, 1) WHEN 's' THEN 0 WHEN 'c' THEN 1 "
        "ELSE 2 END"
    )
    ws.con.execute("DELETE FROM categories")
    ws.con.execute(
        "INSERT INTO categories (category_id, label, size, embedder) VALUES "
        "(0, 'summaries', 6, 'fake:bow64'), (1, 'labels', 3, 'fake:bow64'), "
        "(2, 'plans', 2, 'fake:bow64')"
    )
    return ws


def test_registered():
    assert LEVERS[6] is LoraLever
    assert (LoraLever.id, LoraLever.name, LoraLever.effort) == (6, "lora", "high")


def test_feedback_values():
    assert feedback_value("true") is True and feedback_value('"thumbs_up"') is True
    assert feedback_value("down") is False and feedback_value("-1") is False
    assert feedback_value("0.5") is True and feedback_value("maybe") is None
    assert feedback_value(None) is None


def test_acceptance_feedback_truncation_and_retry(tiny):
    table = acceptance(tiny, load_config())
    accepted = dict(table.select("call_id", "accepted").iter_rows())
    assert {c for c, ok in accepted.items() if c.startswith("s") and ok} == {"s2", "s4", "s6"}
    retried = set(table.filter(pl.col("retried"))["call_id"])
    assert retried == {"s5"}
    feedback = dict(table.drop_nulls("feedback").select("call_id", "feedback").iter_rows())
    assert feedback == {"s1": False, "s2": True}


def test_lora_rates():
    model, card, extra = lora_rates(load_config())
    assert card.input == pytest.approx(1.5e-7)
    assert model == "gpt-4o-mini"
    # ft:gpt-4o-mini − gpt-4o-mini: 3e-7 − 1.5e-7 in, 3e-7 − 7.5e-8 cached (genai-prices has no
    # cached price for the fine-tune), 1.2e-6 − 6e-7 out
    assert extra.input == pytest.approx(1.5e-7) and extra.output == pytest.approx(6e-7)
    assert extra.cache_read == pytest.approx(2.25e-7)
    _, _, own = lora_rates(_config(price={"input": 0.2, "output": 0.8}))
    assert (own.input, own.cache_read, own.output) == pytest.approx((5e-8, 1.25e-7, 2e-7))
    with pytest.raises(ConfigError, match="no price in genai-prices"):
        lora_rates(_config(model="no-such-model"))


def test_candidates_and_training_cost(tiny):
    finding = LoraLever().analyze(tiny, _config())
    rows = {r["category_id"]: r for r in finding.evidence}
    assert set(rows) == {0, 2}  # category 1 runs on a model cheaper than the LoRA model
    assert rows[0]["examples"] == 3 and rows[0]["feedback_examples"] == 1
    assert rows[0]["retried"] == 1 and rows[0]["expensive_calls"] == 6
    # 3 examples × 1100 tokens × 3 epochs × 3e-6 USD = 0.0297; plans: 2 × 1100 × 9e-6 = 0.0198
    assert rows[0]["training_tokens"] == 3300
    assert rows[0]["training_usd"] == pytest.approx(0.0297)
    assert rows[2]["training_usd"] == pytest.approx(0.0198)
    assert rows[0]["levels"] == ["expected", "aggressive"] and rows[2]["levels"] == ["aggressive"]
    assert finding.details["amortized_usd_month"]["expected"] == pytest.approx(0.0297 / 6)
    # expected share 0.5: the calls whose draw is below it, s5 (0.379) and s6 (0.124)
    assert draw("s5") < 0.5 and draw("s6") < 0.5
    assert all(draw(c) >= 0.5 for c in ("s1", "s2", "s3", "s4"))
    assert finding.calls_affected == 2 and finding.tokens_affected == 2200
    assert finding.basis == "mixed"


def test_waterfall_by_hand(tiny):
    config = _config(share={"conservative": 1.0, "expected": 1.0, "aggressive": 1.0})
    finding = LoraLever().analyze(tiny, config)
    saving = {
        level: run_waterfall(tiny, [LoraLever()], {6: finding}, config, level).steps[0][
            "saving_usd_month"
        ]
        for level in ("conservative", "expected", "aggressive")
    }
    # a call: 1000 × 2.5e-6 + 100 × 1e-5 = 0.0035 on gpt-4o, 1000 × 3e-7 + 100 × 1.2e-6 =
    # 0.00042 on the fine-tune: 0.00308 saved. Category 0: 6 × 0.00308 = 0.01848 minus the
    # training 0.0297 / 6 months × 3 days / 30 = 0.000495 → 0.017985 per log, × 10 a month.
    assert saving["conservative"] == 0.0
    assert saving["expected"] == pytest.approx(0.17985, abs=1e-9)
    # plus category 2: 2 × 0.00308 − 0.0198 / 6 × 0.1 = 0.00616 − 0.00033 = 0.00583
    assert saving["aggressive"] == pytest.approx(0.17985 + 0.0583, abs=1e-9)


def test_apply_share_free_rows_and_routed_calls(tiny):
    config = _config()
    finding = LoraLever().analyze(tiny, config)
    plan = base_plan(tiny).with_columns(
        (pl.col("call_id") == "s1").alias("plan_free"),
    )
    out = LoraLever().apply(plan, finding, config, "expected")
    models = dict(out.select("call_id", "plan_model").iter_rows())
    assert {c for c, m in models.items() if m == "gpt-4o-mini" and c[0] == "s"} == {"s5", "s6"}
    extra = dict(out.select("call_id", "plan_extra_usd").iter_rows())
    # the 5 paid-for candidates share 0.000495: 0.000099 each; s5, s6 add their surcharge
    # 1000 × 1.5e-7 + 100 × 6e-7 = 0.00021
    assert extra["s1"] == 0.0 and extra["c1"] == 0.0 and extra["f1"] == 0.0
    assert extra["s2"] == pytest.approx(0.000099) and extra["s6"] == pytest.approx(0.000309)
    assert sum(extra.values()) == pytest.approx(0.000495 + 2 * 0.00021)
    assert out.columns == plan.columns and out["call_id"].to_list() == plan["call_id"].to_list()
    # training that costs more than the share saves is not bought: 3300 × 3 × 1e-3 = 9.9 USD
    # / 6 months × 0.1 = 0.165 per log > 2 × 0.00308
    dear = _config(training_usd_per_mtok=1000.0)
    assert LoraLever().apply(plan, LoraLever().analyze(tiny, dear), dear, "expected").equals(plan)
    # calls an earlier lever already moved to gpt-4o-mini stay there: the fine-tune costs more,
    # so nothing is taken over and no training is charged
    routed = plan.with_columns(pl.lit("gpt-4o-mini").alias("plan_model"))
    again = LoraLever().apply(routed, finding, config, "expected")
    assert again.equals(routed)
    assert float(plan_cost(again).sum()) == pytest.approx(float(plan_cost(routed).sum()))


# --- the shipped sample logs ----------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The sample analyzed once per session (conftest), categories by the fake embedder."""
    with Workspace(analyzed_sample_copy(tmp_path_factory)) as ws:
        yield ws, LoraLever().analyze(ws, load_config())


def test_sample_candidates_are_expensive_accepted_categories(sample):
    _, finding = sample
    labels = TRUTHS["call_labels"]
    candidates = finding.per_call.filter(pl.col("lora_aggressive"))
    assert candidates.height > 0
    features = {labels[c]["feature"] for c in candidates["call_id"]}
    # only the gpt-4o / o4-mini features; the gpt-4o-mini ones (FAQ, triage) cost less already
    assert features <= {"coding-assistant", "meeting-notes", "weekly-report"}
    for row in finding.evidence:
        assert "gpt-4o-mini-2024-07-18" not in row["models"]
        assert row["feedback_examples"] == 0  # the sample logs no feedback
        # training: tokens × 3 epochs × 3e-6 USD
        assert row["training_usd"] == pytest.approx(row["training_tokens"] * 9e-6, rel=1e-6)
        assert ("expected" in row["levels"]) == (row["examples"] >= 100)
    # a category lives within one app feature (issue 16), so a fine-tune's examples are one
    # planted feature's; before, one category mixing 148 meeting notes with FAQ and weekly
    # report calls passed the expected level's 100 examples
    for (category,), group in candidates.group_by("category_id"):
        assert len({labels[c]["feature"] for c in group["call_id"]}) == 1, category


def test_sample_waterfall(sample):
    ws, finding = sample
    config = load_config()
    saving = {
        level: run_waterfall(ws, [LoraLever()], {6: finding}, config, level).steps[0][
            "saving_usd_month"
        ]
        for level in ("conservative", "expected", "aggressive")
    }
    # by hand from the finding, per category: gross = Σ over its taken calls (cost now − at the
    # fine-tune), monthly = per log × 30 / span; a category is trained only when its gross
    # exceeds its amortized training (training_usd / 6 a month)
    span = finding.details["log_span_days"]
    trained = {}
    for level, value in saving.items():
        taken = finding.per_call.filter(
            pl.col(f"lora_{level}") & (pl.col("draw") < config.get("lora", "share")[level])
        )
        expected = 0.0
        for (category,), ids in taken.group_by("category_id"):
            cost_now, at_lora = ws.con.execute(
                """SELECT sum(cost_usd)::DOUBLE,
                          sum(input_tokens * 3e-7 + output_tokens * 1.2e-6)
                   FROM calls WHERE call_id IN (SELECT unnest(?))""",
                [ids["call_id"].to_list()],
            ).fetchone()
            gross = (cost_now - at_lora) * 30 / span
            training = finding.details["training_usd"][level][str(category)] / 6
            expected += max(gross - training, 0.0)
            trained[(level, category)] = gross > training
        assert value == pytest.approx(expected, abs=1e-9)
        # the finding's own figure per category: the lever alone, net of training
        nets = finding.details["net_usd_month"][level].values()
        assert value == pytest.approx(sum(max(v, 0.0) for v in nets), abs=1e-6)
    assert any(trained.values())
    assert saving["conservative"] <= saving["expected"] <= saving["aggressive"]
