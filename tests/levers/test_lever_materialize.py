"""Lever 5, materialize: slot masking, template mining, answer consistency, candidates, apply.

Hand-made workspace (OpenAI pairs, three days long, default [materialize] settings:
min_occurrences 3, min_consistency 0.95 / 0.9 / 0.85). Prices (genai-prices, USD per token):
gpt-4o 2.5e-6 in, 1e-5 out; gpt-4o-mini 1.5e-7 in, 6e-7 out.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score, v_measure_score

from levers_cli.analysis import analyze
from levers_cli.config import load_config
from levers_cli.ingest.pipeline import ingest_files
from levers_cli.levers import LEVERS
from levers_cli.levers.materialize import MaterializeLever, load_calls
from levers_cli.levers.materialize.candidates import Unit, consistency, invariance
from levers_cli.pricing.plan import base_plan, log_span_days
from levers_cli.query_templates.mask import mask, tokens
from levers_cli.query_templates.miner import mine_templates
from levers_cli.simulate import run_waterfall
from levers_cli.store import Workspace
from tests.helpers import DATA, ROOT, FakeEmbedder, analyzed_sample_copy, need_shared, openai_pair

TRUTHS = json.loads((ROOT / "sample_logs" / "truths.json").read_text())
T0 = 1_790_000_000
DAY = 86_400
TEMPLATES = DATA / "t0-prompt-templates"


def _pair(cid: str, model: str, query: str, answer: str, tokens_in: int, out: int, t: int):
    return openai_pair(
        cid, model, [{"role": "user", "content": query}], answer, T0 + t, tokens_in, out
    )


TICKETS = {
    "c1": ("the printer on floor two is jammed", "bug"),
    "c2": ("my invoice total looks wrong this month", "billing"),
    "c3": ("please add a dark theme to the app", "feature"),
}


@pytest.fixture
def tiny(ws: Workspace, tmp_path: Path) -> Workspace:
    """w1-w4: one weekly-report template on gpt-4o (1000 in, 100 out), its answer the same once
    numbers are masked. c1-c3: a ticket template on gpt-4o-mini whose answers differ. f1-f3: one
    FAQ question asked three times, same answer (gpt-4o-mini, 200 in, 50 out). o1: a one-off
    on gpt-4o, three days after the first call (monthly = log × 10)."""
    rows = [
        _pair(
            f"w{d}",
            "gpt-4o",
            f"Write the weekly report for the week of 2026-10-0{d}. Revenue: ${1000 * d}. "
            f"Signups: {10 * d}.",
            f"Revenue was ${1000 * d} and signups were {10 * d}.",
            1000,
            100,
            d - 1,
        )
        for d in range(1, 5)
    ]
    rows += [
        _pair(
            cid,
            "gpt-4o-mini",
            f"Classify this ticket: {text}. Answer with one word.",
            a,
            300,
            1,
            10,
        )
        for cid, (text, a) in TICKETS.items()
    ]
    rows += [
        _pair(
            f"f{i}",
            "gpt-4o-mini",
            "How do I reset my password?",
            "Open Settings and click Reset password.",
            200,
            50,
            20 + i,
        )
        for i in range(1, 4)
    ]
    rows.append(
        _pair("o1", "gpt-4o", "Plan the roadmap for next quarter", "A plan.", 500, 200, 3 * DAY)
    )
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    analyze(ws, [str(path)], embedder=FakeEmbedder())
    return ws


def test_registered():
    assert LEVERS[5] is MaterializeLever
    assert (MaterializeLever.id, MaterializeLever.name, MaterializeLever.effort) == (
        5,
        "materialize",
        "medium",
    )


def test_mask_slots():
    text = (
        "Invoice INV-2024-001 for bob@acme.io, due 2026-10-05 at 10:30 (Oct 5, 2026): total "
        '$1,234.50, see https://acme.io/x?id=3 "late fee" for Mary Jones. Thanks, Mary'
    )
    assert mask(text) == (
        "Invoice <id> for <email>, due <date> at <time> (<date>): total <num>, see <url> "
        "<quote> for <name>. Thanks, <name>"
    )
    uuid = "Order 7f3a9c2e-1b2c-4d5e-8f90-123456789abc shipped; ref a1b2c3d4, ticket #4521"
    assert mask(uuid) == "Order <id> shipped; ref <id>, ticket <id>"
    # a single capitalized word opening a sentence is kept; line breaks are one token
    assert tokens('Hello  World\n\nRead  "this"') == ["hello", "<name>", "¶", "read", "<quote>"]


def test_consistency_by_hand():
    # difflib ratio = 2·matches / (len a + len b): [a b] vs [a c] → 2·1/4 = 0.5; the mean of
    # (1.0, 0.5, 0.5) is 2/3; the medoid has the highest similarity sum (1.5, 1.5, 1.0) → 0.
    value, medoid = consistency([["a", "b"], ["a", "b"], ["a", "c"]], floor=0.5)
    assert value == pytest.approx(2 / 3) and medoid == 0
    # below the floor, the quick_ratio bound is returned (here exact: no shared token)
    assert consistency([["x"], ["y"]], floor=0.5) == (0.0, 0)
    assert consistency([["x"]], floor=0.5) == (1.0, 0)


def _check(pairs: list[tuple[str, str]]):
    frame = pl.DataFrame({"query": [q for q, _ in pairs], "response": [a for _, a in pairs]})
    unit = Unit("template", 0, np.arange(len(pairs)), 1.0, 0)
    return invariance(frame, unit)


def test_invariance_by_hand():
    # the answer copies the table and column asked about (unmasked words): not a script
    check = _check(
        [
            (
                "monthly revenue from the orders table, column total",
                "SELECT SUM(total) FROM orders",
            ),
            (
                "monthly revenue from the sessions table, column amount",
                "SELECT SUM(amount) FROM sessions",
            ),
        ]
    )
    assert check.reason is not None and check.content_words == ["amount", "sessions"]
    # two wordings, the same answer but for its opening: invariant, measured on 2 values
    check = _check(
        [
            ("How do I reset my password?", "Sure! Open Settings and choose Reset password."),
            (
                "how can I reset my password",
                "Happy to help. Open Settings and choose Reset password.",
            ),
        ]
    )
    assert (check.reason, check.kind, check.values, check.measured) == (None, "invariant", 2, True)
    # the answer differs only by the query's masked numbers: an answer template of its slots
    check = _check(
        [
            ("Summary for week 12: 340 signups", "Week 12 brought 340 signups in total."),
            ("Summary for week 13: 410 signups", "Week 13 brought 410 signups in total."),
        ]
    )
    assert (check.reason, check.kind, check.slot_words) == (None, "slot_template", 2)
    # a one-word label, pasted code: never scripts; one value only: not measured
    assert _check([("ticket: refund me", "billing"), ("ticket: app crashes", "billing")]).reason
    assert _check([("why?\n```py\nx = 1\n```", "Because x is one, as the code says.")]).reason
    one = _check([("What is SSO?", "Single sign-on lets you log in once.")] * 3)
    assert (one.reason, one.values, one.measured) == (None, 1, False)


def test_mine_templates_by_hand():
    weekly = [f"Weekly report for 2026-10-0{d}: revenue ${d}00, signups {d}." for d in range(1, 5)]
    tickets = [f"Classify this ticket: {t}. Answer with one word." for t, _ in TICKETS.values()]
    others = ["Plan the roadmap for next quarter", "Why is the sky blue"]
    mined = mine_templates(weekly + tickets + others)
    # τ = max(3, ⌈0.005 × 9⌉) = 3: the weekly variant (4 calls, all slots masked) and the
    # ticket 4-grams "classify this ticket :" and ". answer with one word ." recur 3 times.
    assert mined.skeletons == [
        "weekly report for <date> : revenue <num> , signups <num> .",
        "classify this ticket : <*> . answer with one word .",
    ]
    assert mined.labels.tolist() == [0, 0, 0, 0, 1, 1, 1, -1, -1]
    assert len(set(mined.variants[:4].tolist())) == 1
    assert len(set(mined.variants[4:7].tolist())) == 3


def test_candidates_and_waterfall(tiny):
    config = load_config()
    finding = MaterializeLever().analyze(tiny, config)
    kinds = {(e["kind"], e["calls"], e["consistency"]) for e in finding.evidence}
    # weekly: masked answers identical → 1.0; FAQ: one prompt, same answer → 1.0; tickets:
    # answers share no token → 0.0, not a candidate.
    assert kinds == {("template", 4, 1.0), ("template", 3, 1.0)}
    first = finding.evidence[0]  # spend × consistency: 4 × 0.0035 before 3 × 6e-5
    assert first["examples"][0].startswith("Write the weekly report for the week of 2026-10-01")
    assert first["stable_answer"] == "Revenue was $1000 and signups were 10."
    assert first["spend_usd"] == pytest.approx(0.014)  # 4 × (1000 × 2.5e-6 + 100 × 1e-5)
    assert finding.calls_affected == 7
    assert finding.tokens_affected == 4 * 1100 + 3 * 250
    assert finding.details["templates"] == 3
    scripted = set(finding.per_call.filter(pl.col("script_expected"))["call_id"])
    assert scripted == {"w1", "w2", "w3", "w4", "f1", "f2", "f3"}
    for level in ("conservative", "expected", "aggressive"):
        sim = run_waterfall(tiny, [MaterializeLever()], {5: finding}, config, level)
        # (4 × 0.0035 + 3 × (200 × 1.5e-7 + 50 × 6e-7)) × 30 / 3 days = 0.1418 USD/month
        assert sim.steps[0]["saving_usd_month"] == pytest.approx(0.1418, abs=1e-9)


def test_apply_keeps_free_rows_and_other_columns(tiny):
    config = load_config()
    finding = MaterializeLever().analyze(tiny, config)
    plan = base_plan(tiny).with_columns(
        pl.when(pl.col("call_id") == "c1")
        .then(True)
        .otherwise(pl.col("plan_free"))
        .alias("plan_free"),
        pl.when(pl.col("call_id") == "w1")
        .then(10)
        .otherwise(pl.col("plan_input"))
        .alias("plan_input"),
    )
    out = MaterializeLever().apply(plan, finding, config, "expected")
    free = dict(zip(out["call_id"], out["plan_free"], strict=True))
    assert free == {
        "w1": True, "w2": True, "w3": True, "w4": True, "f1": True, "f2": True, "f3": True,
        "c1": True, "c2": False, "c3": False, "o1": False,
    }  # fmt: skip
    assert out["call_id"].to_list() == plan["call_id"].to_list()
    assert out.drop("plan_free").equals(plan.drop("plan_free"))


def test_later_turns_are_not_templates(tiny):
    tiny.con.execute("UPDATE calls SET turn = 2 WHERE call_id LIKE 'f%'")
    finding = MaterializeLever().analyze(tiny, load_config())
    sim = run_waterfall(tiny, [MaterializeLever()], {5: finding}, load_config(), "expected")
    assert sim.steps[0]["saving_usd_month"] == pytest.approx(0.14, abs=1e-9)  # 4 × 0.0035 × 10


# --- the shipped sample logs ----------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The sample analyzed once per session (conftest)."""
    with Workspace(analyzed_sample_copy(tmp_path_factory)) as ws:
        yield ws, MaterializeLever().analyze(ws, load_config())


def _units(finding) -> dict[int, set[str]]:
    units: dict[int, set[str]] = defaultdict(set)
    for cid, unit in finding.per_call.select("call_id", "candidate").iter_rows():
        units[unit].add(cid)
    return units


def test_sample_weekly_report_is_a_workflow_candidate(sample):
    _, finding = sample
    weekly = {c["response_id"] for c in TRUTHS["weekly_report"]["calls"]}
    units = _units(finding)
    (index,) = [i for i, ids in units.items() if ids & weekly]
    assert units[index] == weekly
    row = finding.evidence[index]
    assert row["kind"] == "template" and row["calls"] == 4 and row["distinct_prompts"] == 4
    assert row["template"].startswith("write the weekly operations report for <name>")
    assert 0.9 <= row["consistency"] < 0.95  # masked answers differ in the week's wording
    assert row["levels"] == ["expected", "aggressive"]
    assert row["stable_answer"].startswith("## Headline")
    assert row["models"] == ["gpt-4o-2024-08-06"]


def test_sample_faq_intents_with_stable_answers(sample):
    _, finding = sample
    labels = TRUTHS["call_labels"]
    intents: Counter[str] = Counter()
    for index, ids in _units(finding).items():
        found = Counter(labels[c].get("intent") for c in ids if c in labels)
        if labels[next(iter(ids))]["feature"] == "support-faq":
            (intent, calls), *others = found.most_common()
            assert not others, finding.evidence[index]  # every FAQ candidate is one intent
            intents[intent] += calls
    # 20 of the 25 planted intents have a wording asked ≥ 3 times with near-identical answers
    assert len(intents) == 20 and len(TRUTHS["faq_intents"]) == 25
    assert intents.most_common(1) == [("reset-password", 50)]
    kinds = Counter(e["kind"] for e in finding.evidence)
    assert kinds["intent"] >= 10  # several wordings of one question merged into one intent


def test_sample_varied_templates_are_not_candidates(sample):
    _, finding = sample
    meeting = set(TRUTHS["broken_cache_prefix"]["response_ids"])
    assert not meeting & set(finding.per_call["call_id"])  # summaries differ call to call
    assert finding.details["templates"] == 9
    assert all(e["consistency"] >= 0.85 for e in finding.evidence)


def test_sample_one_template_per_feature(sample):
    """Every planted feature's first turns share one template (the triage tickets, whose text
    repeats, leave a few small templates and 30 calls aside)."""
    ws, finding = sample
    frame = load_calls(ws, first_turn_only=True)
    mined = mine_templates(frame["prompt"].to_list())
    by_feature: dict[str, Counter[int]] = defaultdict(Counter)
    for cid, label in zip(frame["call_id"], mined.labels.tolist(), strict=True):
        by_feature[TRUTHS["call_labels"][cid]["feature"]][label] += 1
    main = {feature: labels.most_common(1)[0] for feature, labels in by_feature.items()}
    assert {f: n for f, (_, n) in main.items() if f != "ticket-triage"} == {
        "support-faq": 683,
        "meeting-notes": 148,
        "coding-assistant": 112,  # first turns only
        "weekly-report": 4,
    }
    assert len({label for label, _ in main.values()}) == 5 and -1 not in dict(main.values())
    triage = by_feature["ticket-triage"]
    assert main["ticket-triage"][1] >= 0.98 * sum(triage.values()) and triage[-1] == 30
    assert finding.details["templated_calls"] == frame.height - 30


def test_sample_waterfall_matches_candidate_spend(sample):
    ws, finding = sample
    config = load_config()
    span = log_span_days(ws)
    savings = {}
    for level in ("conservative", "expected", "aggressive"):
        ids = finding.per_call.filter(pl.col(f"script_{level}"))["call_id"].to_list()
        spend = ws.con.execute(
            "SELECT sum(cost_usd)::DOUBLE FROM calls WHERE call_id IN (SELECT unnest(?))", [ids]
        ).fetchone()[0]
        sim = run_waterfall(ws, [MaterializeLever()], {5: finding}, config, level)
        savings[level] = sim.steps[0]["saving_usd_month"]
        assert savings[level] == pytest.approx(spend * 30 / span, rel=1e-9)
    assert savings["conservative"] <= savings["expected"] <= savings["aggressive"]


def test_sample_candidates_are_the_weekly_report_and_faq_intents(sample):
    """The planted features (truths.json call_labels): only the weekly report (an answer
    template filled from its figures) and the support FAQ (the same answer whatever the
    wording) are scripts; coding answers (pasted code, copied identifiers) and ticket
    labels (a classification of the content) are not."""
    _, finding = sample
    feature = {c: v["feature"] for c, v in TRUTHS["call_labels"].items()}
    found = {feature[c] for c in finding.per_call["call_id"]}
    assert found == {"weekly-report", "support-faq"}
    weekly = [r for r in finding.evidence if r["answers"] == "slot_template"]
    assert len(weekly) == 1 and weekly[0]["calls"] == len(TRUTHS["weekly_report"]["calls"]) == 4
    assert weekly[0]["basis"] == "evidence" and weekly[0]["distinct_values"] == 4
    assert {r["answers"] for r in finding.evidence} == {"slot_template", "invariant"}
    # a wording asked in one way only was never seen with two values: an assumption
    assert all(
        r["basis"] == ("evidence" if r["distinct_values"] >= 2 else "assumption")
        for r in finding.evidence
    )
    rejected = finding.details["rejected"]
    assert rejected["its queries carry pasted content"] == 74  # the coding first turns


# --- ../shared/data/t0-prompt-templates: templates found vs the file names -----------------


SUBSET = (
    "common_gen_Put_together",
    "commonsense_qa_most_suitable_answer",
    "cosmos_qa_context_answer_to_question",
    "cosmos_qa_description_context_question_answer_text",
    "dbpedia_14_given_a_list_of_category_what_does_the_title_belong_to",
    "kilt_tasks_hotpotqa_final_exam",
    "qasc_is_correct_1",
    "qasc_qa_with_separated_facts_5",
    "quarel_choose_between",
    "quartz_answer_question_below",
    "quartz_paragraph_question_plain_concat",  # no fixed text: paragraph + question
    "kilt_tasks_hotpotqa_straighforward_qa",  # no fixed text: the question alone
)


def score_templates(labels: list[int], files: list[str]) -> dict[str, float]:
    """A found template is *pure* when ≥ 90 % of its prompts come from one file. Precision:
    pure / found. Recall: files that are the majority of some pure template / files. Recall
    (half): files with ≥ half their prompts in pure templates of theirs / files. Plus the
    clustering scores V-measure and adjusted Rand index (scikit-learn)."""
    groups: dict[int, list[str]] = defaultdict(list)
    for label, name in zip(labels, files, strict=True):
        if label >= 0:
            groups[label].append(name)
    covered: Counter[str] = Counter()
    pure = 0
    for members in groups.values():
        name, count = Counter(members).most_common(1)[0]
        if count >= 0.9 * len(members):
            pure += 1
            covered[name] += count
    sizes = Counter(files)
    # every prompt left out of templates is a cluster of its own
    clusters = [f"t{label}" if label >= 0 else f"n{i}" for i, label in enumerate(labels)]
    return {
        "found": len(groups),
        "precision": pure / len(groups),
        "recall": len(covered) / len(sizes),
        "recall_half": sum(covered[f] >= sizes[f] / 2 for f in sizes) / len(sizes),
        "prompts_in_pure": sum(covered.values()) / len(files),
        "v_measure": v_measure_score(files, clusters),
        "ari": adjusted_rand_score(files, clusters),
    }


def _t0(names) -> tuple[list[str], list[str]]:
    prompts, files = [], []
    for name in names:
        for line in (TEMPLATES / f"{name}.jsonl").read_text().splitlines():
            prompts.append(json.loads(line)["prompt"])
            files.append(name)
    return prompts, files


def test_t0_templates_subset():
    need_shared(TEMPLATES)
    prompts, files = _t0(SUBSET)
    scores = score_templates(mine_templates(prompts).labels.tolist(), files)
    # measured: 26 found, 25 pure (0.962); all 12 files found, 10 of 12 at ≥ half their
    # prompts (the two without fixed text are not); 85.7 % of the prompts in pure templates
    assert scores["precision"] >= 0.96
    assert scores["recall"] == 1.0
    assert scores["recall_half"] >= 10 / 12
    assert scores["prompts_in_pure"] >= 0.85


def test_t0_templates_through_the_workspace(ws, tmp_path):
    """Three template files read as generic logs (``--map query=prompt response=completion``)
    and mined by the lever itself."""
    need_shared(TEMPLATES)
    from levers_cli.ingest.jsonpath import parse_path

    names = SUBSET[:3]
    for name in names:
        (tmp_path / f"{name}.jsonl").write_text((TEMPLATES / f"{name}.jsonl").read_text())
    mapping = {"query": parse_path("prompt"), "response": parse_path("completion")}
    ingest_files(ws, [str(tmp_path / f"{n}.jsonl") for n in names], mapping=mapping)
    frame = load_calls(ws, first_turn_only=True)
    assert frame.height == 600
    mined = mine_templates(frame["prompt"].to_list())
    sources = dict(ws.con.execute("SELECT call_id, source_file FROM calls").fetchall())
    files = [Path(sources[c]).stem for c in frame["call_id"]]
    scores = score_templates(mined.labels.tolist(), files)
    assert scores["precision"] == 1.0 and scores["recall"] == 1.0


@pytest.mark.integration
def test_t0_templates_all_57():
    """The full set (about 5 s): the figures in the lever's report."""
    need_shared(TEMPLATES)
    names = sorted(p.stem for p in TEMPLATES.glob("*.jsonl"))
    assert len(names) == 57
    prompts, files = _t0(names)
    scores = score_templates(mine_templates(prompts).labels.tolist(), files)
    # measured: 120 found, 114 pure (0.950); 56 of 57 files found (0.982), 53 at ≥ half
    # (0.930; the 4 without fixed text are not); 92.8 % of the prompts in pure templates;
    # V-measure 0.932 (homogeneity 0.999, completeness 0.873), adjusted Rand index 0.901
    assert scores["precision"] >= 0.95
    assert scores["recall"] >= 0.98
    assert scores["recall_half"] >= 0.92
    assert scores["prompts_in_pure"] >= 0.92
    assert scores["v_measure"] >= 0.93 and scores["ari"] >= 0.90
