"""The field cases of ../shared/cases that concern ingest, tokens and prices (C01, C02, C03,
C09, C10, C13). Expected values are those of ../shared/cases/README.md, computed by hand from
list prices; genai-prices agrees with each of them."""

from __future__ import annotations

import socket
from decimal import Decimal

import pytest

from levers_cli.cluster import ClusterParams, categorize
from levers_cli.embed import get_embedder
from levers_cli.ingest.pipeline import ingest_files
from tests.helpers import CASES, call_costs, need_shared, price_case


def test_c01_openai_cached_tokens_are_a_subset(ws):
    price_case(ws, "C01-openai-cached-subset.jsonl")
    row = ws.con.execute(
        "SELECT input_tokens, cache_read_tokens, output_tokens FROM calls "
        "WHERE call_id = 'chatcmpl-c01-1'"
    ).fetchone()
    assert row == (5000, 3584, 400)
    # 1,416 × 2.50 + 3,584 × 1.25 + 400 × 10.00 = 12,020 µ$ ; 5,000 × 2.50 + 4,000 = 16,500 µ$
    assert call_costs(ws) == {
        "chatcmpl-c01-1": Decimal("0.01202"),
        "chatcmpl-c01-2": Decimal("0.0165"),
    }


def test_c02_anthropic_cache_buckets_are_additive(ws):
    price_case(ws, "C02-anthropic-additive-cache-buckets.jsonl")
    rows = ws.con.execute(
        "SELECT call_id, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens "
        "FROM calls ORDER BY call_id"
    ).fetchall()
    assert rows == [
        ("msg_c02_1", 32_120, 30_000, 2_000, 500),
        ("msg_c02_2", 32_120, 0, 0, 500),
    ]
    # 120 × 3 + 2,000 × 3.75 + 30,000 × 0.30 + 500 × 15 = 24,360 µ$; 32,120 × 3 + 7,500 = 103,860
    assert call_costs(ws) == {"msg_c02_1": Decimal("0.02436"), "msg_c02_2": Decimal("0.10386")}
    assert ws.count("calls", "input_tokens < 0 OR cache_read_tokens < 0") == 0


def test_c03_reasoning_tokens_are_part_of_output(ws):
    price_case(ws, "C03-openai-reasoning-subset.jsonl")
    assert ws.con.execute("SELECT output_tokens, reasoning_tokens FROM calls").fetchone() == (
        3000,
        2400,
    )
    # 1,200 × 1.10 + 3,000 × 4.40 = 14,520 µ$
    assert call_costs(ws) == {"chatcmpl-c03-1": Decimal("0.01452")}


def test_c09_unicode_separators_are_not_line_breaks(ws):
    result = price_case(ws, "C09-jsonl-unicode-line-separators.jsonl")[0]
    assert (result.read, result.stored, result.rejected) == (3, 3, 0)
    queries = [q for (q,) in ws.con.execute("SELECT query FROM calls ORDER BY call_id").fetchall()]
    assert (
        queries[0]
        == "Summarize this pasted note: first line of the note\u2028second line of the note"
    )
    assert queries[1] == "Clean up: item A\u0085item B\u2029item C"


def test_c10_special_token_text_estimated_offline(ws, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    result = price_case(ws, "C10-special-token-text-no-usage.jsonl")[0]
    assert (result.stored, result.rejected) == (2, 0)
    rows = ws.con.execute(
        "SELECT tokens_source, input_tokens, output_tokens FROM calls ORDER BY call_id"
    ).fetchall()
    assert {r[0] for r in rows} == {"estimated"}
    # As plain text, cl100k splits '<|endoftext|>' into '<', '|', 'endo', 'ft', 'ext', '|', '>'
    # (the special token itself would be 1 token, id 100257).
    from levers_cli.text.tokens import count_text

    assert count_text("<|endoftext|>") == 7
    assert all(r[1] > 20 and r[2] > 5 for r in rows)


@pytest.mark.integration
def test_c13_identical_queries_share_one_category(tmp_path):
    from levers_cli.store import Workspace

    path = str(need_shared(CASES / "C13-duplicate-queries-clustering.csv"))
    labels_by_run = []
    for run in range(2):
        with Workspace(tmp_path / f"c13-{run}.duckdb") as ws:
            ingest_files(ws, [path])
            categorize(ws, get_embedder("minilm"), ClusterParams())
            rows = ws.con.execute(
                "SELECT query, list(DISTINCT category_id), count(*) FROM calls GROUP BY query"
            ).fetchall()
            by_query = {q: (cats, n) for q, cats, n in rows}
            sizes = dict(ws.con.execute("SELECT category_id, size FROM categories").fetchall())
        invoice = by_query["Where can I download last month's invoice?"]
        password = by_query["How do I reset my password?"]
        assert sorted([invoice[1], password[1]]) == [10, 12]
        assert len(invoice[0]) == 1 and len(password[0]) == 1  # never split
        assert invoice[0][0] != -1 and password[0][0] != -1  # never partly noise
        assert invoice[0] != password[0]
        assert sizes[invoice[0][0]] == invoice[1] and sizes[password[0][0]] == password[1]
        labels_by_run.append({q: cats for q, (cats, _) in by_query.items()})
    assert labels_by_run[0] == labels_by_run[1]
