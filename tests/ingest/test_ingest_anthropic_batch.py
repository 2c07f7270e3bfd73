"""``anthropic-batch``: Message Batches results files.

No real results file exists in ../shared/data; ``fixtures/anthropic/batch_results.jsonl`` and
``batch_requests.jsonl`` are built from the API reference "Retrieve Message Batch results"
(https://docs.anthropic.com/en/api/retrieving-message-batch-results), the batch-processing
guide (https://docs.anthropic.com/en/docs/build-with-claude/batch-processing) and the SDK's
``MessageBatch*Result`` types. Results file: 2 succeeded, 1 errored, 1 canceled, 1 expired,
1 repeated line, 1 succeeded line without its message.

Prices (USD/MTok, checked against genai-prices; batch = 0.5 × list, ``[batch]`` in
defaults.toml): claude-sonnet-4-5 3.00 in / 15.00 out; claude-3-5-haiku 0.80 in / 0.08 cache
read / 4.00 out.
"""

from __future__ import annotations

from decimal import Decimal

from levers_cli.config import load_config
from levers_cli.enrich.prices import price_calls
from levers_cli.ingest.formats.anthropic_batch import AnthropicBatchAdapter
from levers_cli.ingest.pipeline import ingest_files
from tests.helpers import FIXTURES

RESULTS = FIXTURES / "anthropic" / "batch_results.jsonl"
REQUESTS = FIXTURES / "anthropic" / "batch_requests.jsonl"


def rows(ws):
    return {
        r[0]: r[1:]
        for r in ws.con.execute(
            """SELECT json_extract_string(metadata, '$.custom_id'), status, error, is_batch,
               input_tokens, cache_read_tokens, output_tokens, cost_usd, query, model,
               json_extract_string(metadata, '$.batch_result') FROM calls"""
        ).fetchall()
    }


def test_results_file_detected_reconciled_and_priced_at_batch_rates(ws):
    result = ingest_files(ws, [str(RESULTS)])
    assert result.files[0].format == "anthropic-batch"
    # 7 lines = 5 stored + 1 duplicate (req-1 again, same message id) + 1 rejected
    assert (result.read, result.stored, result.duplicates, result.rejected) == (7, 5, 1, 1)
    assert result.read == result.stored + result.duplicates + result.rejected
    line, error = ws.con.execute("SELECT source_line, error FROM rejects").fetchone()
    assert line == 7 and "result.message" in error
    price_calls(ws, load_config(None))
    got = rows(ws)
    assert all(r[2] is True for r in got.values())  # every result is a batch call
    # req-1, claude-sonnet-4-5: (100 × 3.00 + 50 × 15.00) × 0.5 = 1,050 × 0.5 = 525 µ$
    assert got["req-1"][:7] == ("ok", None, True, 100, 0, 50, Decimal("0.000525"))
    # req-2, claude-3-5-haiku: 40 + 0 + 1,000 = 1,040 input;
    # (40 × 0.80 + 1,000 × 0.08 + 10 × 4.00) × 0.5 = (32 + 80 + 40) × 0.5 = 76 µ$
    assert got["req-2"][:7] == ("ok", None, True, 1040, 1000, 10, Decimal("0.000076"))
    assert got["req-3"][:2] == ("error", "max_tokens: Field required")
    assert got["req-4"][1].startswith("canceled:") and got["req-4"][9] == "canceled"
    assert got["req-5"][1].startswith("expired:") and got["req-5"][9] == "expired"
    for custom_id in ("req-3", "req-4", "req-5"):  # submitted, never billed
        assert got[custom_id][3:7] == (0, 0, 0, Decimal(0))
    # the request is not in the results file: no query text
    assert {r[7] for r in got.values()} == {""}


def test_batch_input_joins_the_requests_on_custom_id(ws):
    options = {"batch_input": [str(REQUESTS)]}
    ingest_files(ws, [str(RESULTS)], options=options)
    got = rows(ws)
    assert got["req-1"][7] == "Hello, world"
    assert got["req-2"][7] == "I love this product"
    assert got["req-3"][7:9] == ("No max_tokens here", "claude-sonnet-4-5")  # model from params
    assert got["req-4"][7] == ""  # not in the request file
    system, max_tokens = ws.con.execute(
        "SELECT system_prompt, max_tokens FROM calls WHERE call_id = 'msg_batch_2'"
    ).fetchone()
    assert system.startswith("Classify the sentiment.") and max_tokens == 5


def test_adapter_directly_on_each_result_type():
    adapter = AnthropicBatchAdapter()
    errored = {
        "custom_id": "x",
        "result": {"type": "errored", "error": {"type": "error", "error": {"type": "api_error"}}},
    }
    assert adapter.sniff(errored)
    assert not adapter.sniff({"custom_id": "x", "response": {"status_code": 200}})  # OpenAI batch
    row = adapter.normalize(errored)
    assert (row["status"], row["is_batch"], row["metadata"]["error_type"]) == (
        "error",
        True,
        "api_error",
    )
    assert row["messages"] == [] and row["metadata"]["custom_id"] == "x"
