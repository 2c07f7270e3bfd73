"""``levers export caps``, ``workflows`` and ``lora`` on the analyzed sample (fake embedder),
their helpers on hand-made inputs, and planted secrets never leaving in any export.

The fine-tuning lines are checked by :func:`check_finetune_line`, written from OpenAI's
fine-tuning guide ("Preparing your dataset", "Multi-turn chat examples") and the checks of the
OpenAI Cookbook's "Data preparation and analysis for chat model fine-tuning" (every line a
JSON object with ``messages``; each message a ``role`` in system/user/assistant and string
``content``; ``weight`` only on assistant messages and 0 or 1; at least one assistant
message), and by TRL's conversational-format test (``trl/data_utils.py``
``is_conversational``: a ``messages`` list whose items are dicts with ``role`` and ``content``).
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter

import pytest
import yaml
from typer.testing import CliRunner

from levers_cli.cli import app
from levers_cli.config import load_config
from levers_cli.export import EXPORTERS, ExportError, run_export
from levers_cli.export.caps import word_budget
from levers_cli.export.dedup import duplicates
from levers_cli.export.label_sheet import export_label_sheet
from levers_cli.export.lora import _split, chat_example
from levers_cli.export.workflows import slot_values
from levers_cli.store import Workspace
from tests.helpers import ROOT, FakeEmbedder, analyzed_sample_copy

runner = CliRunner()
ROLES = {"system", "user", "assistant"}
#: Secrets planted into prompts when truths.json has none yet (one of each redacted type).
OWN_SECRETS = [
    {"kind": "email", "text": "ana.lima@example-corp.com"},
    {"kind": "phone", "text": "+44 20 7946 0958"},
    {"kind": "card", "text": "4111 1111 1111 1111"},
    {"kind": "openai_key", "text": "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34"},
    {"kind": "aws_key", "text": "AKIAIOSFODNN7EXAMPLE"},
    {
        "kind": "bearer",
        "text": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJlMTIz",
    },
]


def check_finetune_line(line: str) -> dict:
    """Raise AssertionError unless ``line`` is a valid chat fine-tuning example."""
    row = json.loads(line)
    assert isinstance(row, dict) and set(row) == {"messages"}, row.keys()
    messages = row["messages"]
    assert isinstance(messages, list) and messages
    for message in messages:
        assert set(message) <= {"role", "content", "weight"}, message.keys()
        assert message["role"] in ROLES
        assert isinstance(message["content"], str) and message["content"].strip()
        if "weight" in message:
            assert message["role"] == "assistant" and message["weight"] in (0, 1)
    assert any(m["role"] == "assistant" for m in messages)
    assert messages[-1]["role"] == "assistant" and "weight" not in messages[-1]
    # TRL is_conversational: first item of "messages" is a dict with role and content
    assert isinstance(messages[0], dict) and {"role", "content"} <= set(messages[0])
    return row


def _plant(path, secrets: list[dict]) -> int:
    """Append the secrets to the queries (and their last user message) of support-ticket
    triage calls and of coding conversations; return the calls changed."""
    with Workspace(path, create=False) as ws:
        rows = ws.con.execute(
            """SELECT call_id, query, messages::VARCHAR FROM calls
               WHERE query LIKE 'Classify the following support ticket%'
                  OR conversation_id IN (SELECT conversation_id FROM calls WHERE turn > 1)"""
        ).fetchall()
        tail = " ".join(s["text"] for s in secrets)
        updates = []
        for call_id, query, messages in rows:
            msgs = json.loads(messages or "[]")
            for message in reversed(msgs):
                if message.get("role") == "user" and isinstance(message.get("content"), str):
                    message["content"] += f"\nContact: {tail}"
                    break
            updates.append((f"{query}\nContact: {tail}", json.dumps(msgs), call_id))
        ws.con.executemany("UPDATE calls SET query = ?, messages = ? WHERE call_id = ?", updates)
    return len(updates)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The sample (secrets planted unless truths.json has its own), every kind exported."""
    path = analyzed_sample_copy(tmp_path_factory)
    truths = json.loads((ROOT / "sample_logs" / "truths.json").read_text())
    secrets = truths.get("planted_secrets") or OWN_SECRETS
    planted = 0 if truths.get("planted_secrets") else _plant(path, secrets)
    out = tmp_path_factory.mktemp("exports")
    cfg = load_config(None)
    results = {}
    with Workspace(path, create=False) as ws:
        for kind in EXPORTERS:
            if kind == "judge":  # grades shadow variants: tests/quality/test_quality.py
                continue
            options = {"level": "aggressive"} if kind in ("lora", "workflows") else {}
            if kind == "router-config":
                options["embedder"] = FakeEmbedder()
            if kind == "batch":
                options["selection"] = "candidates"
            results[kind] = run_export(kind, ws, cfg, str(out), **options)
        # the label sheet (`levers export label-sheet`) holds every query of its sample
        export_label_sheet(ws, out / "label-sheet.csv", 5000, config=cfg)
    return path, out, results, secrets, planted


def test_word_budget_and_slot_values():
    assert word_budget(400, 1.0, 0.75) == 300  # 400 × 0.75 = 300
    assert word_budget(16, 1.0, 0.75) == 10  # 12 → multiple of 5 from 10 words on
    assert word_budget(10, 1.0, 0.75) == 7  # 7.5 → 7
    assert word_budget(1000, 0.2, 0.75) == 150  # reasoning takes 80 %: 1000 × 0.2 × 0.75
    assert slot_values("refund order 4417 for Ana Lima on 2024-03-05") == [
        ("num", "4417"),
        ("name", "Ana Lima"),
        ("date", "2024-03-05"),
    ]
    assert slot_values("no slots here") == []


def test_duplicates_exact_and_near():
    texts = ["a b c d e f", "A  b c d e f", "a b c d e g", "x y z"]
    # bigrams of 0: ab bc cd de ef; of 2: ab bc cd de eg → Jaccard 4 / 6 = 0.667
    assert duplicates(texts, 2, 0.6) == [None, "exact", "near", None]
    assert duplicates(texts, 2, 0.7) == [None, "exact", None, None]


def test_every_near_duplicate_pair_is_found():
    """200 texts of 60 distinct words, each followed by a copy whose last word differs: a
    pair shares 55 of its 57 distinct 5-word shingles (J = 55/57 ≈ 0.965 ≥ 0.8), so every
    copy is a near duplicate. The MinHash this replaced kept the same shingle for all 128
    functions and found such a pair with probability J (about 7 of 200 missed); banded
    32 × 4 it misses one with probability (1 − J⁴)³² < 1e-27."""
    import random

    rng = random.Random(3)
    vocabulary = [f"w{i}" for i in range(5000)]
    texts = []
    for _ in range(200):
        words = rng.sample(vocabulary, 60)
        texts += [" ".join(words), " ".join([*words[:-1], "changed"])]
    assert duplicates(texts, 5, 0.8) == [None, "near"] * 200


def test_chat_example_and_split():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "tool", "content": "ignored"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "and"}, {"type": "text", "text": "?"}],
        },
        {"role": "user", "content": "more"},
    ]
    example = chat_example(messages, "unused", "answer")
    assert [m["role"] for m in example["messages"]] == [
        "system", "user", "assistant", "user", "assistant",
    ]  # fmt: skip
    assert example["messages"][2]["weight"] == 0  # history: not trained on
    assert example["messages"][3]["content"] == "and\n?\n\nmore"  # parts, then joined turns
    check_finetune_line(json.dumps(example))
    assert chat_example([{"role": "assistant", "content": "x"}], None, "y") is None
    conversations = ["a", "a", "b", "c", "c", "c", "d"]
    sizes = Counter(conversations)
    held = _split(conversations, 0.5, 100, sizes)
    assert held and held < set(conversations)  # at least one, never all
    assert _split(conversations, 1.0, 2, sizes) <= {c for c in sizes if sizes[c] <= 2} | {"c"}


def test_caps_files_agree_with_the_lever(exported):
    from levers_cli.levers.caps import cap_table

    path, out, results, _, _ = exported
    with Workspace(path, create=False) as ws:
        table = cap_table(ws, load_config(None))
    document = json.loads((out / "caps.json").read_text())
    assert yaml.safe_load((out / "caps.yaml").read_text()) == document
    with open(out / "caps.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(document["caps"]) == len(table) == results["caps"].counts["groups"]
    for row, lever in zip(document["caps"], table, strict=True):
        assert row["max_tokens"] == lever["cap"]["expected"]
        assert row["expected_truncation_share"] == lever["cut_share"]["expected"]
        assert row["instruction_suffix"] == f"Answer directly in at most {row['words']} words."
        assert row["reasoning_effort"] == ("low" if lever["simple"] else None)
    assert int(rows[0]["max_tokens"]) == document["caps"][0]["max_tokens"]


def test_workflows_leave_out_the_triage_labels(exported):
    _, out, results, _, _ = exported
    document = json.loads((out / "workflows.json").read_text())
    found = document["candidates"]
    assert len(found) == results["workflows"].counts["candidates"] > 0
    assert [c["rank"] for c in found] == list(range(1, len(found) + 1))
    # the nightly triage prompts label each ticket by its content: not scripts (issue 16);
    # the weekly report is one
    assert not [c for c in found if c["template"].lower().startswith("classify")]
    assert any(c["template"].lower().startswith("write the weekly") for c in found)
    for c in found:
        assert len(c["script_outline"]) >= 3 and c["calls"] >= 3
        assert c["monthly_cost_usd"] == pytest.approx(
            c["spend_usd"] * c["calls_per_month"] / c["calls"], rel=1e-2, abs=1e-6
        )
    markdown = (out / "workflows.md").read_text()
    headings = re.findall(r"^## (\d+)\. (?:template|prompt|intent) \(", markdown, re.MULTILINE)
    assert headings == [str(c["rank"]) for c in found]


def test_lora_lines_pass_the_finetune_validator(exported):
    _, out, results, _, _ = exported
    details = results["lora"].details["datasets"]
    assert details
    for folder in (out / "lora").iterdir():
        cid = folder.name.split("-")[0]
        train = [check_finetune_line(x) for x in (folder / "train.jsonl").read_text().splitlines()]
        valid = (folder / "validation.jsonl").read_text().splitlines()
        valid = [check_finetune_line(x) for x in valid]
        counts = details[cid]["counts"]
        assert len(train) + len(valid) == counts["examples"] > 0 and valid
        assert counts["examples"] == counts["accepted"] - counts.get("unusable", 0) - counts.get(
            "exact_duplicates", 0
        ) - counts.get("near_duplicates", 0)
        texts = [json.dumps(r["messages"]) for r in train + valid]
        assert len(set(texts)) == len(texts)  # exact duplicates removed
        card = (folder / "README.md").read_text()
        assert card.startswith("---\nconfigs:") and "## Tokens" in card
        for model in details[cid]["models"]:
            assert model in card


def test_planted_secrets_never_leave(exported, tmp_path):
    path, out, results, secrets, planted = exported
    assert planted > 0 or secrets is not OWN_SECRETS
    files = [p for p in out.rglob("*") if p.is_file()]
    kinds = {
        "caps.csv", "workflows.json", "levers-router.json", "custom_ids.csv", "train.jsonl",
        "label-sheet.csv",
    }  # fmt: skip
    assert kinds <= {p.name for p in files}
    for file in files:
        text = file.read_text(encoding="utf-8")
        for secret in secrets:
            assert secret["text"] not in text, (file, secret["kind"])
    total = Counter()
    for result in results.values():
        total.update(result.redactions)
    assert total["API_KEY"] > 0 and total["EMAIL"] > 0
    # the same export with redaction off does carry them: the grep above can fail
    with Workspace(path, create=False) as ws:
        run_export("batch", ws, load_config(None), str(tmp_path), selection="all", redact=False)
    raw = "".join(p.read_text() for p in (tmp_path / "batch").iterdir())
    assert all(s["text"] in raw for s in secrets)


def test_bad_input_for_every_kind(exported, tmp_path, ws):
    path, out, _, _, _ = exported
    ws.close()
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    for kind in ("caps", "workflows", "lora", "router-config", "batch"):
        res = runner.invoke(app, ["export", kind, "-w", str(tmp_path / "ws.duckdb"), "-o", "x"])
        assert res.exit_code == 1 and "run `levers analyze" in res.stderr, kind
        # categories within one feature (issue 16) hold fewer than the expected level's 100
        # LoRA examples on the sample: the aggressive level has candidates to write
        level = ["--level", "aggressive"] if kind == "lora" else []
        res = runner.invoke(app, ["export", kind, "-w", str(path), "-o", str(blocker), *level])
        assert res.exit_code == 1 and "is a file" in res.stderr, kind
        assert len(res.stderr.strip().splitlines()) == 1
    for kind in ("caps", "workflows"):
        res = runner.invoke(app, ["export", kind, "-w", str(path), "-o", str(out)])
        assert res.exit_code == 1 and "--force" in res.stderr, kind
    res = runner.invoke(app, ["export", "lora", "-w", str(path), "-o", str(out), "--category",
                              "99999", "--force"])  # fmt: skip
    assert res.exit_code == 1 and "no such category" in res.stderr
    with Workspace(path, create=False) as ws2, pytest.raises(ExportError, match="nothing"):
        cfg = load_config(None)
        cfg.set("lora", "min_examples", dict.fromkeys(("conservative", "expected", "aggressive"),
                                                      10**9))  # fmt: skip
        run_export("lora", ws2, cfg, str(tmp_path / "o"))


def test_read_only_folder_is_one_line_error(exported, tmp_path):
    import os

    path, _, _, _, _ = exported
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        res = runner.invoke(app, ["export", "caps", "-w", str(path), "-o", str(locked)])
        assert res.exit_code == 1 and "not writable" in res.stderr
    finally:
        locked.chmod(0o700)
