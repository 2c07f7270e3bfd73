"""Tokens (tiktoken, offline) and prices (genai-prices, overrides, unknown models)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from levers_cli.config import PriceOverride, load_config
from levers_cli.enrich.prices import list_price, override_cost, price_calls
from levers_cli.errors import ConfigError
from levers_cli.ingest.pipeline import ingest_files
from levers_cli.text.tokens import OFFLINE_ENCODING, count_messages, count_text, encoding_name_for


def test_count_text_and_messages_by_cookbook_formula():
    # cl100k: 'hello world' → 'hello', ' world'; 'user' → 1 token
    assert count_text("hello world", "gpt-4") == 2
    # 3 per message + role (1) + content (2) + 3 reply primer
    assert count_messages([{"role": "user", "content": "hello world"}], "gpt-4") == 9
    assert (
        count_messages([{"role": "user", "content": "hello world", "name": "bob"}], "gpt-4") == 11
    )


def test_encoding_never_needs_the_network(monkeypatch, tmp_path):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # empty cache: nothing downloaded
    assert encoding_name_for("gpt-4o") == OFFLINE_ENCODING
    assert encoding_name_for("some-unknown-model") == OFFLINE_ENCODING
    assert encoding_name_for("gpt-3.5-turbo") == OFFLINE_ENCODING  # cl100k itself


def test_override_cost_by_hand():
    price = PriceOverride(input=2.0, output=8.0, cached_input=0.5, cache_write=2.5)
    # 600 uncached × 2 + 300 × 0.5 + 100 × 2.5 + 50 × 8 = 1,200 + 150 + 250 + 400 = 2,000 µ$
    assert override_cost(price, (1000, 300, 100, 50)) == Decimal("0.002")
    # without cached/write prices both fall back to the input price: 1,000 × 2 + 400 = 2,400 µ$
    assert override_cost(PriceOverride(input=2.0, output=8.0), (1000, 300, 100, 50)) == Decimal(
        "0.0024"
    )


def test_list_price_and_long_context_cliff():
    # gpt-4o-mini: 0.15 in / 0.60 out per MTok → 1,000 × 0.15 + 1,000 × 0.60 = 750 µ$
    assert list_price("openai", "gpt-4o-mini", (1000, 0, 0, 1000), date(2025, 1, 1)) == Decimal(
        "0.00075"
    )
    assert list_price("openai", "acme-llm-9", (10, 0, 0, 10), None) is None


def _write(tmp_path, records):
    path = tmp_path / "calls.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def test_unknown_model_is_unknown_not_zero_and_override_prices_it(ws, tmp_path):
    rows = [
        {"text": "q1", "model": "acme-llm-9", "input_tokens": 1000, "output_tokens": 100},
        {"text": "q2", "model": "acme-llm-9", "input_tokens": 1000, "output_tokens": 100},
        {
            "text": "q3",
            "model": "gpt-4o-mini",
            "input_tokens": 1000,
            "output_tokens": 1000,
            "is_batch": True,
        },
    ]
    ingest_files(ws, [_write(tmp_path, rows)])
    ws.con.execute("UPDATE calls SET is_batch = true WHERE model = 'gpt-4o-mini'")
    result = price_calls(ws, load_config(None))
    assert result.unknown == {"acme-llm-9": 2}
    assert ws.count("calls", "model = 'acme-llm-9' AND cost_usd IS NULL") == 2
    # batch: 50 % of 750 µ$
    batch = ws.con.execute("SELECT cost_usd FROM calls WHERE model = 'gpt-4o-mini'").fetchone()
    assert batch[0] == Decimal("0.000375")

    config_path = tmp_path / "levers.toml"
    config_path.write_text('[prices."acme-llm-9"]\ninput = 1.0\noutput = 4.0\n')
    result = price_calls(ws, load_config(str(config_path)))
    assert result.unknown == {}
    # 1,000 × 1.0 + 100 × 4.0 = 1,400 µ$ per call
    assert ws.con.execute("SELECT sum(cost_usd) FROM calls WHERE model = 'acme-llm-9'").fetchone()[
        0
    ] == Decimal("0.0028")


def test_config_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "levers.toml"
    bad.write_text('[prices."m"]\ninput = "cheap"\noutput = 1\n')
    with pytest.raises(ConfigError, match=r'levers.toml: \[prices."m"\] input'):
        load_config(str(bad))
    bad.write_text("[cluster]\nseeed = 3\n")
    with pytest.raises(ConfigError, match=r"unknown setting \[cluster\] seeed"):
        load_config(str(bad))
    bad.write_text("[cluster]\nseed = 7\n")
    config = load_config(str(bad))
    assert config.get("cluster", "seed") == 7
    assert config.origin["cluster.seed"] == str(bad)
    assert config.origin["cluster.umap_neighbors"] == "default"
