"""Categories within app features (issue 16, "categories that do not mix features"; DESIGN
§4.5): a call's feature is its logged tag, else its prompt template, else the whole log;
categories are found within a feature, their ids unique across features, and their label is
"feature › name". Expected values are read off the hand-built log below."""

from __future__ import annotations

import json

import numpy as np
import pytest

from levers_cli.analysis import analyze
from levers_cli.cluster.features import ALL_CALLS, REST, assign_features, template_name
from levers_cli.cluster.labels import MIXED, category_name, term_share
from levers_cli.config import load_config
from levers_cli.store import Workspace
from tests.helpers import FakeEmbedder, openai_pair

T0 = 1_790_000_000
FAQ_SYSTEM = "You are Aria, the support assistant for Acme Cloud. Answer from the help center."
NOTES_SYSTEM = "Current date and time: {ts}.\n\nYou are Minutes, the meeting-notes assistant."
TRIAGE = "Classify the following support ticket into one of: billing, bug, account.\n\n{}"


def _call(cid: str, i: int, messages: list[dict], reply: str = "ok", **request) -> dict:
    return openai_pair(cid, "gpt-4o-mini", messages, reply, T0 + 60 * i, 20, 5, **request)


def _log() -> list[dict]:
    """14 calls. FAQ: 4 calls tagged support-faq, one system prompt. Triage: 4 calls with no
    system prompt, the same instruction line over different tickets, only t3 and t4 tagged
    ticket-triage. Notes: 3 calls, untagged, a system prompt that differs only by its
    timestamp. Rest: 3 free questions, no tag, no system prompt, no shared opening."""
    faq = [
        ("How do I reset my password?", "f1"),
        ("How do I reset my password?", "f2"),
        ("Can I export my invoices?", "f3"),
        ("Where do I download invoices?", "f4"),
    ]
    tickets = ["Card declined at checkout", "App crashes on login", "Please refund me",
               "Cannot change my email"]  # fmt: skip
    calls = [
        _call(cid, i, [{"role": "system", "content": FAQ_SYSTEM}, {"role": "user", "content": q}],
              metadata={"feature": "support-faq"})
        for i, (q, cid) in enumerate(faq)
    ]  # fmt: skip
    for i, ticket in enumerate(tickets):
        extra = {"metadata": {"feature": "ticket-triage"}} if i >= 2 else {}
        calls.append(
            _call(f"t{i + 1}", 10 + i, [{"role": "user", "content": TRIAGE.format(ticket)}],
                  **extra)
        )  # fmt: skip
    for i, topic in enumerate(["the Q3 roadmap sync", "the hiring plan", "the budget review"]):
        system = NOTES_SYSTEM.format(ts=f"2026-10-0{i + 1}T09:00:00Z")
        calls.append(
            _call(f"n{i + 1}", 20 + i, [{"role": "system", "content": system},
                                        {"role": "user", "content": f"Summarize {topic}"}])
        )  # fmt: skip
    for i, q in enumerate(["what is a monad", "best pizza in town", "translate hello"]):
        calls.append(_call(f"r{i + 1}", 30 + i, [{"role": "user", "content": q}]))
    return calls


@pytest.fixture
def ws(tmp_path):
    path = tmp_path / "calls.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _log()))
    with Workspace(tmp_path / "w.duckdb") as workspace:
        analyze(workspace, [str(path)], embedder=FakeEmbedder())
        yield workspace


def test_features_by_tag_template_and_rest(ws):
    features = dict(ws.con.execute("SELECT call_id, feature FROM calls").fetchall())
    assert {c: features[c] for c in ("f1", "f2", "f3", "f4")} == dict.fromkeys(
        ("f1", "f2", "f3", "f4"), "support-faq"
    )
    # t1, t2 are untagged; their template's tagged calls (t3, t4) all say ticket-triage
    assert {features[f"t{i}"] for i in range(1, 5)} == {"ticket-triage"}
    # the notes template is named after its first sentence without a timestamp
    notes = "Minutes (meeting-notes assistant)"
    assert {features[f"n{i}"] for i in range(1, 4)} == {notes}
    assert {features[f"r{i}"] for i in range(1, 4)} == {REST}


def test_categories_never_mix_features_and_ids_are_global(ws):
    rows = ws.con.execute(
        """SELECT c.category_id, count(DISTINCT c.feature), any_value(c.feature),
                  any_value(k.feature), any_value(k.label)
           FROM calls c JOIN categories k USING (category_id) GROUP BY 1"""
    ).fetchall()
    assert rows, "some categories were found"
    for category, n_features, call_feature, category_feature, label in rows:
        assert n_features == 1, category
        assert call_feature == category_feature
        assert label.startswith(f"{category_feature} › ")
    ids = [r[0] for r in ws.con.execute("SELECT category_id FROM categories").fetchall()]
    assert len(ids) == len(set(ids))
    # the two identical FAQ questions are one category of the FAQ feature
    same = ws.con.execute(
        "SELECT count(DISTINCT category_id) FROM calls WHERE call_id IN ('f1', 'f2')"
    ).fetchone()[0]
    assert same == 1


def test_same_query_in_two_features_gets_two_categories(tmp_path):
    # "hello" asked in two tagged features: one category in each, never shared
    calls = [
        _call(f"a{i}", i, [{"role": "user", "content": "hello"}], metadata={"app": "alpha"})
        for i in range(2)
    ] + [
        _call(f"b{i}", 5 + i, [{"role": "user", "content": "hello"}], metadata={"app": "beta"})
        for i in range(2)
    ]
    path = tmp_path / "calls.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in calls))
    with Workspace(tmp_path / "w.duckdb") as ws:
        analyze(ws, [str(path)], embedder=FakeEmbedder())
        rows = ws.con.execute(
            "SELECT feature, list(DISTINCT category_id) FROM calls GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert [r[0] for r in rows] == ["alpha", "beta"]
        (alpha,), (beta,) = rows[0][1], rows[1][1]
        assert alpha >= 0 and beta >= 0 and alpha != beta
        labels = dict(ws.con.execute("SELECT category_id, label FROM categories").fetchall())
        assert labels[alpha] == "alpha › hello" and labels[beta] == "beta › hello"


def test_whole_log_when_nothing_names_a_feature(tmp_path):
    # ("question 1", "question 2", "question 3" would be one template: numbers are masked)
    questions = ["what is a monad", "best pizza in town", "translate hello"]
    calls = [_call(f"r{i}", i, [{"role": "user", "content": q}]) for i, q in enumerate(questions)]
    path = tmp_path / "calls.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in calls))
    with Workspace(tmp_path / "w.duckdb") as ws:
        from levers_cli.ingest.pipeline import ingest_files

        ingest_files(ws, [str(path)])
        result = assign_features(ws, list(load_config().get("cluster", "feature_keys")))
        assert result.features == {ALL_CALLS: 3}
        assert (result.tagged_calls, result.template_calls, result.rest_calls) == (0, 0, 3)


def test_template_name_skips_timestamps_and_cuts_long_sentences():
    # the timestamp sentence is skipped; "You are X, the Y." is written "X (Y)"
    assert template_name(NOTES_SYSTEM.format(ts="2026-10-01T09:00:00Z"), None) == (
        "Minutes (meeting-notes assistant)"
    )
    long = "You are DevPilot, the internal coding assistant for engineers at Acme Cloud."
    # 26 characters of "internal coding assistant for engineers at Acme Cloud":
    # "internal coding assistant " → cut at the last space
    assert template_name(long, None) == "DevPilot (internal coding assistant…)"
    assert template_name("You are a helpful assistant.", None) == "helpful assistant"
    assert template_name(None, "Write the weekly report for\nmore") == "Write the weekly report for"


def test_mixed_when_no_keyword_covers_a_quarter_of_the_calls():
    texts = ["reset password", "export csv", "dark mode", "delete account", "refund"]
    weights = np.ones(5)
    # "password" is in 1 of 5 calls: 0.2 < 0.25 → mixed
    assert term_share("password", texts, weights) == pytest.approx(0.2)
    assert category_name(["password", "csv"], ["reset password"], texts, weights) == MIXED
    # with the first text asked 4 times, "reset password" is in 4 of 8 calls
    weights = np.array([4.0, 1, 1, 1, 1])
    assert term_share("reset password", texts, weights) == pytest.approx(0.5)
    assert category_name(["reset password"], [], texts, weights) == "reset password"


def test_a_second_run_keeps_each_feature_s_categories(ws):
    before = ws.con.execute("SELECT call_id, category_id, feature FROM calls ORDER BY 1").fetchall()
    labels = ws.con.execute("SELECT category_id, label, feature FROM categories ORDER BY 1")
    labels = labels.fetchall()
    again = analyze(ws, [], embedder=FakeEmbedder())
    assert again.summary["categorization"]["method"].startswith("no new queries")
    assert ws.con.execute(
        "SELECT call_id, category_id, feature FROM calls ORDER BY 1"
    ).fetchall() == before
    assert ws.con.execute(
        "SELECT category_id, label, feature FROM categories ORDER BY 1"
    ).fetchall() == labels
