"""The quality loop (issue 17): intervals, sample sizes, judge parsing, and the loop on real
MT-Bench answers: gpt-4's as production calls, gpt-3.5-turbo's as the shadow batch output,
built here in the OpenAI Batch output format from the exported custom_ids.

Expected values are computed by hand (the Wilson formula written out below, Cochran's n) or
read independently from the MT-Bench files."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from levers_cli.config import load_config
from levers_cli.enrich.prices import price_calls
from levers_cli.export.judge import export_judge
from levers_cli.export.shadow import export_shadow
from levers_cli.ingest.pipeline import ingest_files
from levers_cli.levers.routing import RoutingLever
from levers_cli.quality import allocate, sample_size, wilson
from levers_cli.quality.judge import JudgmentError, parse_pair, parse_single
from levers_cli.quality.report import pair_verdicts, quality_report
from levers_cli.quality.results import is_quality_output, read_quality_outputs
from levers_cli.store import Workspace
from tests.helpers import DATA, need_shared

MT = DATA / "mt-bench"
Z95 = 1.959963984540054  # the 97.5 % normal quantile


def wilson_by_hand(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson (1927): (p + z²/2n ± z √(p(1−p)/n + z²/4n²)) / (1 + z²/n)."""
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


# --- statistics -----------------------------------------------------------------------------


@pytest.mark.parametrize("k,n", [(8, 10), (20, 20), (10, 20), (0, 5), (73, 73)])
def test_wilson_matches_the_formula(k: int, n: int) -> None:
    low, high = wilson_by_hand(k, n)
    got = wilson(k, n, 0.95)
    assert (got.low, got.high) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))
    assert got.rate == round(k / n, 4)


def test_wilson_of_nothing_is_empty() -> None:
    assert wilson(0, 0).as_dict() == {
        "n": 0,
        "acceptable": 0,
        "rate": None,
        "low": None,
        "high": None,
    }


def test_sample_size_is_cochran_with_the_finite_correction() -> None:
    z = 1.6448536269514722  # 95 % one-sided = 90 % two-sided
    n0 = z * z * 0.25 / 0.01  # 67.64
    assert sample_size(0.9, 0.1) == math.ceil(n0) == 68
    assert sample_size(0.9, 0.1, 20) == math.ceil(n0 / (1 + (n0 - 1) / 20)) == 16
    assert sample_size(0.9, 0.1, 0) == 0


def test_min_pairs_to_meet_the_bar_is_z2_bar_over_one_minus_bar() -> None:
    from levers_cli.quality.stats import min_pairs

    # all acceptable: the lower bound is n / (n + z²) ≥ bar ⇔ n ≥ z² · bar / (1 − bar)
    assert min_pairs(0.95, 0.95) == math.ceil(Z95**2 * 19) == 73
    assert wilson_by_hand(73, 73)[0] >= 0.95 > wilson_by_hand(72, 72)[0]
    assert min_pairs(0.8, 0.95) == math.ceil(Z95**2 * 4) == 16
    assert min_pairs(1.0, 0.95) is None


def test_allocate_splits_a_total_in_proportion_one_each_first() -> None:
    # 10 over sizes 50/30/20: 1 each, then 7 by largest remainder of 7×(49,29,19)/97
    assert allocate({"a": 50, "b": 30, "c": 20}, total=10) == {"a": 5, "b": 3, "c": 2}
    assert allocate({"a": 50, "b": 1}, total=2) == {"a": 1, "b": 1}
    assert allocate({"a": 3, "b": 40}, per_stratum=5) == {"a": 3, "b": 5}


# --- judge parsing --------------------------------------------------------------------------


def test_single_rating_is_parsed_or_rejected() -> None:
    assert parse_single("Correct and complete.\n\nRating: [[8]]").score == 8
    assert parse_single("Rating: [[7.5]] … so Rating: [[7.5]]").score == 7.5
    for bad in ("Rating: 8", "Rating: [[8]] no, [[6]]", "Rating: [[11]]", ""):
        with pytest.raises(JudgmentError):
            parse_single(bad)


def test_pairwise_verdict_turns_to_the_variant_side() -> None:
    # variant is assistant B unless swapped
    assert parse_pair("My final verdict is: [[A>B]]", swapped=False).score == -1
    assert parse_pair("My final verdict is: [[A>B]]", swapped=True).score == 1
    assert parse_pair("[[B>>A]]", swapped=False).score == 2
    assert parse_pair("tie: [[A=B]]", swapped=True).score == 0
    assert parse_pair("[[C]]", swapped=False).score == 0  # MT-Bench's tie
    with pytest.raises(JudgmentError):
        parse_pair("[[A>B]] or maybe [[B>A]]", swapped=False)


# --- MT-Bench: gpt-4 in production, gpt-3.5-turbo as the shadow -----------------------------


def _mt_config() -> Any:
    config = load_config()
    config.set("tiers", "cheap", {"openai": "gpt-3.5-turbo"})
    # route every eligible call, so every category is sampled
    config.set(
        "routing", "strong_share", dict.fromkeys(("conservative", "expected", "aggressive"), 0.0)
    )
    config.set(
        "routing", "max_difficulty", dict.fromkeys(("conservative", "expected", "aggressive"), 1.0)
    )
    config.set("quality", "min_acceptable", 0.8)
    return config


def _answers(model: str) -> dict[int, list[str]]:
    out = {}
    for line in (MT / "model_answer" / f"{model}.jsonl").read_text().splitlines():
        record = json.loads(line)
        out[record["question_id"]] = record["choices"][0]["turns"]
    return out


def _output_line(custom_id: str, n: int, content: str, model: str) -> dict[str, Any]:
    """One OpenAI Batch output line (BatchRequestOutput) with a chat.completion body."""
    return {
        "id": f"batch_req_{n:06d}",
        "custom_id": custom_id,
        "response": {
            "status_code": 200,
            "request_id": f"req_{n:06d}",
            "body": {
                "id": f"chatcmpl-{n:06d}",
                "object": "chat.completion",
                "created": 1700000000,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            },
        },
        "error": None,
    }


@pytest.fixture(scope="module")
def mt_loop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """gpt-4's 160 MT-Bench calls (categories = MT-Bench's), the shadow export, and
    gpt-3.5-turbo's answers as its batch output, read back by analyze's reader."""
    need_shared(MT / "model_answer" / "gpt-4.jsonl")
    root = tmp_path_factory.mktemp("mt")
    config = _mt_config()
    ws = Workspace(root / "w.duckdb")
    ingest_files(ws, [str(MT / "model_answer" / "gpt-4.jsonl")])
    price_calls(ws, config)
    cats = sorted(
        {json.loads(x)["category"] for x in (MT / "question.jsonl").read_text().splitlines()}
    )
    ws.con.execute(
        "UPDATE calls SET category_id = list_position(?, json_extract_string(metadata, "
        "'$.category')) - 1",
        [cats],
    )
    # each query's vector is its MT-Bench category's axis (unit vectors): the router the
    # routing lever builds from the categories sends every query to its own category
    dim = len(cats)
    for i, label in enumerate(cats):
        axis = [1.0 if j == i else 0.0 for j in range(dim)]
        ws.con.execute(
            "INSERT INTO categories (category_id, label, size, embedder, centroid) "
            "VALUES (?, ?, 20, 'axes', ?)",
            [i, label, axis],
        )
    queries = ws.con.execute(
        "SELECT query_hash, any_value(category_id) FROM calls WHERE query_hash IS NOT NULL "
        "GROUP BY query_hash"
    ).fetchall()
    ws.con.executemany(
        "INSERT INTO embeddings VALUES (?, 'axes', ?)",
        [[h, [1.0 if j == c else 0.0 for j in range(dim)]] for h, c in queries],
    )
    result = export_shadow(
        ws, config, str(root / "out"), lever="routing", per_category=100, redact=False
    )
    ids = list(csv.DictReader((root / "out" / "shadow" / "custom_ids.csv").open()))
    where = {
        cid: (qid, turn)
        for cid, qid, turn in ws.con.execute(
            "SELECT call_id, json_extract(metadata, '$.question_id')::INT, turn FROM calls"
        ).fetchall()
    }
    cheap = _answers("gpt-3.5-turbo")
    output = root / "shadow_output.jsonl"
    lines = []
    for n, row in enumerate(ids):
        qid, turn = where[row["call_id"]]
        lines.append(_output_line(row["custom_id"], n, cheap[qid][turn - 1], "gpt-3.5-turbo-0613"))
    output.write_text("".join(json.dumps(x) + "\n" for x in lines))
    claimed = is_quality_output(ws, str(output))
    read = read_quality_outputs(ws, [str(output)])
    return {
        "ws": ws,
        "config": config,
        "root": root,
        "export": result,
        "ids": ids,
        "where": where,
        "claimed": claimed,
        "read": read,
        "cats": cats,
    }


def test_shadow_export_samples_every_category_and_writes_the_batch_format(mt_loop) -> None:
    ids, export = mt_loop["ids"], mt_loop["export"]
    assert export.counts["sampled"] == 160 and export.counts["strata"] == 8
    assert list(ids[0])[:4] == ["custom_id", "call_id", "lever", "variant"]
    assert {r["target_model"] for r in ids} == {"gpt-3.5-turbo"}
    request = json.loads(
        next((mt_loop["root"] / "out" / "shadow").glob("openai-*.jsonl")).open().readline()
    )
    assert set(request) == {"custom_id", "method", "url", "body"}
    assert request["url"] == "/v1/chat/completions" and request["body"]["model"] == "gpt-3.5-turbo"
    assert export.details["cost_usd_batch"] > 0
    # the workspace's calls are untouched: the shadow answers are not traffic
    assert mt_loop["ws"].count("calls") == 160


def test_analyze_pairs_each_shadow_answer_with_its_own_call(mt_loop) -> None:
    assert mt_loop["claimed"] and mt_loop["read"].variants == 160 and mt_loop["read"].rejected == 0
    ws = mt_loop["ws"]
    cheap, strong = _answers("gpt-3.5-turbo"), _answers("gpt-4")
    rows = ws.con.execute(
        "SELECT v.call_id, v.response, c.response FROM variants v JOIN calls c USING (call_id)"
    ).fetchall()
    for call_id, variant, original in rows:
        qid, turn = mt_loop["where"][call_id]
        assert (variant, original) == (cheap[qid][turn - 1], strong[qid][turn - 1])
    assert ws.count("calls", "model LIKE 'gpt-3.5%'") == 0


def test_length_ratio_proxy_per_category_matches_the_raw_files(mt_loop) -> None:
    """The length-ratio proxy, recomputed from the answer files alone."""
    questions = {
        json.loads(x)["question_id"]: json.loads(x)["category"]
        for x in (MT / "question.jsonl").read_text().splitlines()
    }
    cheap, strong = _answers("gpt-3.5-turbo"), _answers("gpt-4")
    from levers_cli.quality.proxies import ProxySettings, kind_of

    settings = ProxySettings.from_config(mt_loop["config"])
    expected: dict[str, list[bool]] = {}
    for qid, cat in questions.items():
        for t in range(2):
            if kind_of(strong[qid][t], settings) == "free_text":
                ratio = len(cheap[qid][t]) / len(strong[qid][t])
                expected.setdefault(cat, []).append(0.5 <= ratio <= 2.0)
    report = quality_report(mt_loop["ws"], mt_loop["config"], embedder=None)
    got = {r["category"]: r["proxy"]["length_ratio"] for r in report["rows"] if not r["total"]}
    for cat, verdicts in expected.items():
        assert (got[cat]["n"], got[cat]["acceptable"]) == (len(verdicts), sum(verdicts)), cat
    # the paper's far-apart pair: the length proxy does not separate math from writing the
    # paper's way (math's cheap answers are often longer, not wrong): see the report
    assert got["coding"]["n"] == 20


def test_judge_single_grades_intervals_and_decisions_by_hand(mt_loop, tmp_path: Path) -> None:
    """Hand grades: writing 9 on every pair, math 9 on 10 and 4 on 10 (by question id),
    roleplay unparseable on one line, coding not returned (unmeasured)."""
    ws, config = mt_loop["ws"], mt_loop["config"]
    export_judge(ws, config, str(tmp_path), mode="single", judge_model="gpt-4o", redact=False)
    ids = list(csv.DictReader((tmp_path / "judge" / "custom_ids.csv").open()))
    assert len(ids) == 160 and {r["mode"] for r in ids} == {"single"}
    category = {
        cid: json.loads(meta)["category"]
        for cid, meta in ws.con.execute("SELECT call_id, metadata::VARCHAR FROM calls").fetchall()
    }
    lines, broken = [], None
    for n, row in enumerate(ids):
        cat = category[row["call_id"]]
        qid, _ = mt_loop["where"][row["call_id"]]
        if cat == "coding":
            continue
        grade = 4 if cat == "math" and qid % 2 else 9
        text = f"The answer is fine.\n\nRating: [[{grade}]]"
        if cat == "roleplay" and broken is None:
            text, broken = "I would rate this highly.", n  # no [[n]]: a reject, not a 0
        lines.append(_output_line(row["custom_id"], n, text, "gpt-4o-2024-08-06"))
    output = tmp_path / "judge_output.jsonl"
    output.write_text("".join(json.dumps(x) + "\n" for x in lines))
    read = read_quality_outputs(ws, [str(output)])
    assert (read.grades, read.rejected) == (139, 1)
    reject = [r for r in ws.rejects(500) if r["file"] == str(output)]
    assert len(reject) == 1 and "unparseable judgment" in reject[0]["error"]
    assert (
        reject[0]["line"] == next(i for i, x in enumerate(lines) if "highly" in json.dumps(x)) + 1
    )

    odd = sum(1 for q in range(111, 121) if q % 2)  # math questions are 111-120
    rows = {r["category"]: r for r in quality_report(ws, config)["rows"] if not r["total"]}
    for cat, (n, k) in {
        "writing": (20, 20),
        "math": (20, 20 - 2 * odd),
        "roleplay": (19, 19),
    }.items():
        low, high = wilson_by_hand(k, n)
        judged = rows[cat]["judged"]
        assert (judged["n"], judged["acceptable"]) == (n, k), cat
        assert judged["low"] == pytest.approx(low, abs=1e-4)
        assert judged["high"] == pytest.approx(high, abs=1e-4)
    # bar 0.8 (set above): 20/20 → low 0.839 meets; 19/19 → 0.832 meets; math 10/20 below
    assert rows["writing"]["decision"] == "meets" and rows["roleplay"]["decision"] == "meets"
    assert rows["math"]["decision"] == "below" and rows["coding"]["decision"] == "unmeasured"

    # simulate's routing reads it: math is not routed at expected, writing is (on quality)
    finding = RoutingLever().analyze(ws, config)
    per = finding.per_call.join(
        pl.DataFrame({"call_id": list(category), "cat": list(category.values())}),
        on="call_id",
    )
    routed = {
        c: (g["route_expected"].sum(), g["route_aggressive"].sum())
        for (c,), g in per.group_by("cat")
    }
    assert routed["math"] == (0, 20) and routed["writing"] == (20, 20) and routed["coding"][0] == 20
    # evidence only where judged pairs meet the bar (routing_evidence); math was judged but
    # is below it, coding was never judged: both stay assumptions
    rows_by = {r["label"]: r for r in finding.evidence}
    assert rows_by["writing"]["basis"] == "evidence"
    assert rows_by["writing"]["measured_pairs"] == 20
    assert rows_by["coding"]["basis"] == "assumed"


def test_pairwise_judging_needs_both_orders(mt_loop, tmp_path: Path) -> None:
    ws, config = mt_loop["ws"], mt_loop["config"]
    export_judge(
        ws, config, str(tmp_path), mode="pairwise", judge_model="claude-sonnet-4-5", redact=False
    )
    ids = list(csv.DictReader((tmp_path / "judge" / "custom_ids.csv").open()))
    assert len(ids) == 320 and sorted({r["swapped"] for r in ids}) == ["False", "True"]
    requests = json.loads(next((tmp_path / "judge").glob("anthropic-*.json")).read_text())[
        "requests"
    ]
    assert set(requests[0]) == {"custom_id", "params"} and requests[0]["params"]["temperature"] == 0
    # position bias: the judge always prefers assistant A slightly → the orders cancel, a tie
    lines = [
        {
            "custom_id": r["custom_id"],
            "result": {
                "type": "succeeded",
                "message": {
                    "id": f"msg_{n}",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5",
                    "content": [{"type": "text", "text": "My final verdict is: [[A>B]]"}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": 10, "output_tokens": 5},
                },
            },
        }
        for n, r in enumerate(ids)
    ]
    output = tmp_path / "pair_results.jsonl"
    output.write_text("".join(json.dumps(x) + "\n" for x in lines))
    read = read_quality_outputs(ws, [str(output)])
    assert (read.grades, read.rejected) == (320, 0)
    verdicts = pair_verdicts(ws, config)
    coding = [v for v in verdicts if v["category"] == "coding"]
    assert len(coding) == 20 and all(v["judged"] is True for v in coding)  # +1 −1 → tie → ok


def test_quality_json_rows_and_shadow_after_the_gate(mt_loop, tmp_path: Path) -> None:
    """`levers quality --json`: one row per (feature, category, lever, target model) and a
    total per lever; export shadow still samples the calls the gate kept back."""
    from typer.testing import CliRunner

    from levers_cli.cli import app

    ws, config = mt_loop["ws"], mt_loop["config"]
    ws.con.execute("CHECKPOINT")
    res = CliRunner().invoke(app, ["quality", "-w", str(mt_loop["root"] / "w.duckdb"),
                                   "--no-proxies", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    rows = data["rows"]
    assert {"lever", "target_model", "pairs", "judged", "proxy"} <= set(rows[0])
    assert set(rows[0]["judged"]) == {"n", "acceptable", "rate", "low", "high"}
    assert set(rows[0]["proxy"]) == {"exact_match", "json_fields", "similarity", "length_ratio"}
    totals = [r for r in rows if r["total"]]
    assert len(totals) == 1 and totals[0]["pairs"] == 160 == sum(r["pairs"] for r in rows) - 160
    assert data["bar"]["min_acceptable"] == 0.95 and "defaults.toml" in data["bar"]["source"]
    again = export_shadow(ws, config, str(tmp_path), lever="routing", per_category=1, redact=False)
    assert again.counts["strata"] == 8  # math, blocked at expected, is still sampled


def test_sample_shadow_generator_is_seeded_and_in_the_batch_format(tmp_path: Path) -> None:
    import hashlib
    import importlib.util

    from tests.helpers import ROOT, SAMPLE_LOGS

    before = hashlib.sha256(SAMPLE_LOGS.read_bytes()).hexdigest()
    spec = importlib.util.spec_from_file_location(
        "shadow_batch", ROOT / "sample_logs" / "shadow_batch.py"
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    request = {"custom_id": "shadow-routing-1", "method": "POST", "url": "/v1/chat/completions",
               "body": {"model": "gpt-4o-mini", "messages": [
                   {"role": "system", "content": "You are DevPilot, the coding assistant."},
                   {"role": "user", "content": "Why do merges duplicate rows?"}]}}  # fmt: skip
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps(request) + "\n")
    one, two = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    truth = module.shadow([str(inp)], one)
    module.shadow([str(inp)], two)
    assert one.read_bytes() == two.read_bytes()
    line = json.loads(one.read_text())
    assert set(line) == {"id", "custom_id", "response", "error"} and line["error"] is None
    assert set(line["response"]) == {"status_code", "request_id", "body"}
    assert line["response"]["body"]["object"] == "chat.completion"
    assert truth["coding-assistant"]["requests"] == 1
    assert hashlib.sha256(SAMPLE_LOGS.read_bytes()).hexdigest() == before


def test_analyze_reads_a_shadow_output_without_touching_the_calls(mt_loop) -> None:
    from levers_cli.analysis import analyze

    ws = mt_loop["ws"]
    output = mt_loop["root"] / "shadow_output.jsonl"
    result = analyze(ws, [str(output)], config=mt_loop["config"])
    assert result.summary["quality_results"]["variants"] == 160
    assert result.summary["quality_results"]["only"] is True
    assert ws.count("calls") == 160 and ws.count("variants") == 160  # read again: replaced
