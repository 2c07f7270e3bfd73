"""Every kind of price of issue 18, each with values computed by hand from the providers'
price pages (cited above each figure): 1-hour cache writes, service tiers, audio and image
tokens, server-tool fees, regional uplifts, Gemini's cached/thinking/long-context rules,
gateway cache hits, logged vs computed cost, and levers' own price rows (each row used;
genai-prices wins where it has the rate; levers.toml rows first)."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import pytest
from PIL import Image

from levers_cli.config import load_config
from levers_cli.enrich.prices import price_calls
from levers_cli.enrich.rates import CallUsage, PriceBook
from levers_cli.errors import ConfigError
from levers_cli.ingest.mapping import parse_mapping
from levers_cli.ingest.pipeline import ingest_files
from levers_cli.ingest.rows import finish_row
from levers_cli.price_rows import shipped_rows
from levers_cli.summary import cost_checks, token_totals
from levers_cli.text.images import (
    anthropic_image_tokens,
    image_tokens,
    openai_patch_tokens,
    openai_tile_tokens,
)
from levers_cli.text.tokens import count_messages
from tests.helpers import insert_rows

ANTHROPIC_PRICING = "https://platform.claude.com/docs/en/about-claude/pricing"
OPENAI_PRICING = "https://platform.openai.com/docs/pricing"
GEMINI_PRICING = "https://ai.google.dev/gemini-api/docs/pricing#gemini-2.5-pro"


def _write(tmp_path, records, name="calls.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def _price(ws, tmp_path, records, config=None, **ingest):
    ingest_files(ws, [_write(tmp_path, records)], **ingest)
    result = price_calls(ws, config or load_config(None))
    costs = dict(ws.con.execute("SELECT call_id, cost_usd FROM calls").fetchall())
    return costs, result


def _anthropic(rid, model, usage, ts="2026-06-01T12:00:00Z", **request):
    return {
        "timestamp": ts,
        "request": {"model": model, "max_tokens": 512, "messages": [
            {"role": "user", "content": "Summarize the attached report."}], **request},
        "response": {"id": rid, "type": "message", "role": "assistant", "model": model,
                     "content": [{"type": "text", "text": "Done."}], "stop_reason": "end_turn",
                     "usage": usage},
    }  # fmt: skip


def _chat(rid, model, created, usage, request_tier=None, served_tier=None):
    request = {"model": model, "messages": [{"role": "user", "content": "Classify: refund"}]}
    if request_tier:
        request["service_tier"] = request_tier
    response = {"id": rid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "billing"}}],
                "usage": usage}  # fmt: skip
    if served_tier:
        response["service_tier"] = served_tier
    return {"request": request, "response": response}


def _epoch(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


# --- 1-hour cache writes --------------------------------------------------------------------


def test_one_hour_cache_writes_haiku(ws, tmp_path):
    usage = {"input_tokens": 200, "cache_creation_input_tokens": 3000,
             "cache_read_input_tokens": 0, "output_tokens": 100,
             "cache_creation": {"ephemeral_5m_input_tokens": 1000,
                                "ephemeral_1h_input_tokens": 2000}}  # fmt: skip
    costs, _ = _price(ws, tmp_path, [_anthropic("msg_h1", "claude-haiku-4-5", usage)])
    # ANTHROPIC_PRICING, Claude Haiku 4.5: $1 in, $1.25 5m write, $2 1h write, $5 out
    # 200 × 1 + 1,000 × 1.25 + 2,000 × 2 + 100 × 5 = 200 + 1,250 + 4,000 + 500 = 5,950 µ$
    assert costs == {"msg_h1": Decimal("0.00595")}
    row = ws.con.execute("SELECT cache_write_tokens, cache_write_1h_tokens FROM calls").fetchone()
    assert row == (3000, 2000)


# --- service tiers --------------------------------------------------------------------------


def test_priority_tier_own_row_before_genai_prices_has_it(ws, tmp_path):
    usage = {"prompt_tokens": 2000, "completion_tokens": 500,
             "prompt_tokens_details": {"cached_tokens": 1000}}  # fmt: skip
    records = [
        _chat("p-march", "gpt-4o-mini", _epoch("2026-03-01"), usage, served_tier="priority"),
        _chat("p-nov", "gpt-4o-mini", _epoch("2026-11-01"), usage, served_tier="priority"),
    ]
    costs, result = _price(ws, tmp_path, records)
    # https://openai.com/api-priority-processing/, GPT-4o mini: $0.25 / $0.125 cached / $1.00
    # 1,000 × 0.25 + 1,000 × 0.125 + 500 × 1.00 = 250 + 125 + 500 = 875 µ$, both days: in
    # March from levers' row, in November from genai-prices' variant (verified 2026-10-12)
    assert costs == {"p-march": Decimal("0.000875"), "p-nov": Decimal("0.000875")}
    (row,) = result.as_dict()["own_rows_used"]
    assert row["when"] == {"service_tier": "priority"} and row["calls"] == 1


def test_served_tier_counts_not_the_requested_one_and_scale_is_reported(ws, tmp_path):
    usage = {"prompt_tokens": 1000, "completion_tokens": 100}
    day = _epoch("2026-03-01")
    records = [
        _chat("asked-flex", "gpt-4o", day, usage, request_tier="flex", served_tier="default"),
        _chat("scale", "gpt-4o", day + 60, usage, served_tier="scale"),
    ]
    costs, result = _price(ws, tmp_path, records)
    # OPENAI_PRICING, gpt-4o standard: 1,000 × 2.50 + 100 × 10 = 3,500 µ$ for both: the first
    # was served default; Scale Tier is paid in reserved units, no per-token rate is known
    assert costs == {"asked-flex": Decimal("0.0035"), "scale": Decimal("0.0035")}
    assert result.unpriced_context == {"service_tier=scale": 1}


# --- audio and image tokens ------------------------------------------------------------------


def test_image_token_rules_match_the_providers_examples():
    # OpenAI images-vision guide, "Calculating costs" (gpt-4o: 85 base + 170 per 512 px tile):
    # 1024×1024 high → 768×768 → 4 tiles → 765; 2048×4096 → 1024×2048 → 768×1536 → 6 tiles
    # → 1,105; low detail → 85 whatever the size
    assert openai_tile_tokens((1024, 1024), "high", 85, 170) == 765
    assert openai_tile_tokens((2048, 4096), "auto", 85, 170) == 1105
    assert openai_tile_tokens((4096, 4096), "low", 85, 170) == 85
    # patch models: 1800×2400 is scaled to 33 × 44 = 1,452 patches; gpt-4.1-mini × 1.62
    assert openai_patch_tokens((1800, 2400), 1.0) == 1452
    assert openai_patch_tokens((1800, 2400), 1.62) == 2353  # 2,352.24 rounded up
    assert openai_patch_tokens((1024, 1024), 1.0) == 1024
    # Anthropic vision guide: 1092×1092 ≈ 1,590 tokens (w × h / 750); long edge > 1,568 px is
    # scaled first; at most ~1,600
    assert anthropic_image_tokens((1092, 1092)) == 1590
    assert anthropic_image_tokens((200, 200)) == 54  # 40,000 / 750 = 53.3
    assert anthropic_image_tokens((3000, 3000)) == 1600
    # unknown size (a URL): the rule's largest image, never nothing
    assert openai_tile_tokens(None, "high", 85, 170) == 85 + 8 * 170
    assert anthropic_image_tokens(None) == 1600


def _png(width: int, height: int, noisy: bool) -> str:
    image = Image.new("RGB", (width, height), (255, 255, 255))
    if noisy:  # random pixels: a much longer file (and base64 text) of the same size
        pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_images_estimated_by_size_not_base64_length(ws, tmp_path):
    plain, noisy = _png(512, 512, False), _png(512, 512, True)
    assert len(noisy) > 20 * len(plain)

    def part(data: str) -> dict:
        return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}

    # gpt-4o, 512×512 high: one tile: 85 + 170 = 255 tokens, whatever the file's length
    assert image_tokens(part(plain), "gpt-4o") == image_tokens(part(noisy), "gpt-4o") == 255
    text = {"type": "text", "text": "What is shown?"}
    message = [{"role": "user", "content": [text, part(noisy)]}]
    without = count_messages([{"role": "user", "content": [text]}], "gpt-4o")
    assert count_messages(message, "gpt-4o") == without + 255
    anthropic = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                              "data": noisy}}  # fmt: skip
    # 512 × 512 / 750 = 349.5 → 350
    assert image_tokens(anthropic, "claude-sonnet-4-5") == 350
    # a call logged without usage: its input tokens are estimated with the image rule
    reply = {"role": "assistant", "content": "A white square."}
    record = {"request": {"model": "gpt-4o", "messages": message},
              "response": {"id": "img-1", "object": "chat.completion", "created": 1767258000,
                           "model": "gpt-4o", "choices": [{"index": 0, "finish_reason": "stop",
                                                           "message": reply}]}}  # fmt: skip
    ingest_files(ws, [_write(tmp_path, [record])])
    row = ws.con.execute("SELECT input_tokens, tokens_source FROM calls").fetchone()
    assert row == (without + 255, "estimated")


# --- server-side tool fees -------------------------------------------------------------------


def test_anthropic_tool_fees_only_when_used(ws, tmp_path):
    tools = [{"type": "web_search_20250305", "name": "web_search"}]
    used = {"input_tokens": 5000, "output_tokens": 400,
            "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 1}}  # fmt: skip
    offered = {"input_tokens": 5000, "output_tokens": 400}
    records = [
        _anthropic("msg_used", "claude-sonnet-4-5", used, tools=tools),
        _anthropic("msg_offered", "claude-sonnet-4-5", offered, tools=tools),
    ]
    costs, result = _price(ws, tmp_path, records)
    # ANTHROPIC_PRICING: Sonnet 4.5 $3 in / $15 out; web search $10 per 1,000 searches; web
    # fetch no charge beyond tokens. 5,000 × 3 + 400 × 15 = 21,000 µ$; + 2 × 10,000 µ$
    assert costs == {"msg_used": Decimal("0.041"), "msg_offered": Decimal("0.021")}
    uses = ws.con.execute("SELECT server_tool_uses FROM calls WHERE call_id = 'msg_used'")
    assert json.loads(uses.fetchone()[0]) == {"web_search": 2, "web_fetch": 1}
    assert result.unpriced_tools == {}


def test_openai_responses_tool_calls_priced_per_use(ws, tmp_path):
    output = [
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"type": "web_search_call", "id": "ws_2", "status": "completed"},
        {"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": ["x"]},
        {"type": "code_interpreter_call", "id": "ci_1", "container_id": "cntr_1"},
        {"type": "code_interpreter_call", "id": "ci_2", "container_id": "cntr_1"},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "Done."}]},
    ]  # fmt: skip
    record = {
        "request": {"model": "gpt-5-mini", "input": "Research and compute.",
                    "tools": [{"type": "web_search"}, {"type": "file_search"},
                              {"type": "code_interpreter"}, {"type": "image_generation"}]},
        "response": {"id": "resp_tools", "object": "response", "created_at": _epoch("2026-06-01"),
                     "status": "completed", "model": "gpt-5-mini", "output": output,
                     "usage": {"input_tokens": 3000, "output_tokens": 500}},
    }  # fmt: skip
    costs, result = _price(ws, tmp_path, [record])
    uses = ws.con.execute("SELECT server_tool_uses FROM calls").fetchone()[0]
    assert json.loads(uses) == {"web_search": 2, "file_search": 1, "code_execution": 1}
    # OPENAI_PRICING: gpt-5-mini $0.25 / $2.00; built-in tools: web search $10 and file search
    # $2.50 per 1,000 calls (genai-prices), Code Interpreter $0.03 per container (own row).
    # 3,000 × 0.25 + 500 × 2 = 1,750 µ$; + 20,000 + 2,500 + 30,000 = 54,250 µ$
    assert costs == {"resp_tools": Decimal("0.05425")}
    (row,) = result.as_dict()["own_rows_used"]
    assert row["prices"] == {"code_executions_kcount": 30.0}


# --- regional uplift --------------------------------------------------------------------------


def test_us_only_inference_uplift(ws, tmp_path):
    records = [
        _anthropic("msg_us", "claude-opus-4-6", {"input_tokens": 1000, "output_tokens": 200,
                                                 "inference_geo": "us"}),
        _anthropic("msg_global", "claude-opus-4-6", {"input_tokens": 1000, "output_tokens": 200,
                                                     "inference_geo": "global"}),
    ]  # fmt: skip
    costs, result = _price(ws, tmp_path, records)
    # ANTHROPIC_PRICING, Opus 4.6: $5 / $25; US-only inference 1.1× on Opus 4.6 and newer
    # (platform.claude.com/docs/en/api/service-tiers): 1,000 × 5 + 200 × 25 = 10,000 µ$
    assert costs == {"msg_us": Decimal("0.011"), "msg_global": Decimal("0.01")}
    (row,) = result.as_dict()["own_rows_used"]
    assert row["factor"] == 1.1 and row["calls"] == 1


# --- Gemini -----------------------------------------------------------------------------------


def _gemini_row(call_id: str, total_in: int, cached: int, out: int, thoughts: int) -> dict:
    """A stored call as the Gemini adapter leaves it: promptTokenCount (cached included) as
    input, candidates + thoughts as output."""
    partial = {
        "call_id": call_id, "provider": "google", "model": "gemini-2.5-pro",
        "ts": datetime(2026, 6, 1, tzinfo=UTC), "query": "q", "response": "r",
        "input_tokens": total_in, "cache_read_tokens": cached,
        "output_tokens": out, "reasoning_tokens": thoughts, "metadata": {},
    }  # fmt: skip
    row = finish_row(partial, "gemini")
    row["record_hash"] = call_id
    return row


def test_gemini_cached_thinking_and_long_context(ws):
    insert_rows(ws, [
        _gemini_row("short", 100_000, 40_000, 2_000, 1_500),
        _gemini_row("long", 250_000, 50_000, 10_000, 0),
        _gemini_row("cliff", 210_000, 20_000, 0, 0),
    ])  # fmt: skip
    price_calls(ws, load_config(None))
    costs = dict(ws.con.execute("SELECT call_id, cost_usd FROM calls").fetchall())
    # GEMINI_PRICING, 2.5 Pro: prompts ≤ 200k $1.25 in / $0.125 cached / $10 out (thinking
    # included); > 200k $2.50 / $0.25 / $15, for the whole request
    # short: 60,000 × 1.25 + 40,000 × 0.125 + 2,000 × 10 = 75,000 + 5,000 + 20,000 µ$
    # long: 200,000 × 2.50 + 50,000 × 0.25 + 10,000 × 15 = 500,000 + 12,500 + 150,000 µ$
    # cliff: 190,000 uncached alone is below 200k, but the request (cached included) is not:
    #        190,000 × 2.50 + 20,000 × 0.25 = 475,000 + 5,000 µ$
    assert costs == {"short": Decimal("0.1"), "long": Decimal("0.6625"), "cliff": Decimal("0.48")}


def test_gemini_flex_at_half_before_genai_prices_has_the_tier():
    book = PriceBook()
    usage = CallUsage(10_000, output_tokens=1_000)
    # https://ai.google.dev/gemini-api/docs/pricing, 2.5 Flash $0.30 / $2.50; Flex: half
    # (10,000 × 0.30 + 1,000 × 2.50) × 0.5 = 5,500 × 0.5 = 2,750 µ$
    cost = book.cost("google", "gemini-2.5-flash", date(2026, 1, 1), usage, "flex")
    assert cost == Decimal("0.00275")


# --- gateway cache hits -----------------------------------------------------------------------


def test_portkey_style_cache_status_hit(ws, tmp_path):
    path = tmp_path / "portkey.csv"
    path.write_text(
        "request_id,model,prompt,response,prompt_tokens,completion_tokens,cost,cache_status\n"
        "pk-1,gpt-4o-mini,Where is my order?,It ships today.,1000,200,0.00027,MISS\n"
        "pk-2,gpt-4o-mini,Where is my order?,It ships today.,1000,200,0,HIT\n"
    )
    ingest_files(ws, [str(path)], mapping=parse_mapping(["query=prompt"]))
    price_calls(ws, load_config(None))
    rows = ws.con.execute(
        "SELECT call_id, gateway_cache_hit, cost_usd FROM calls ORDER BY call_id"
    ).fetchall()
    # gpt-4o-mini: 1,000 × 0.15 + 200 × 0.60 = 270 µ$; the HIT row: $0
    assert rows == [("pk-1", False, Decimal("0.00027")), ("pk-2", True, Decimal("0"))]
    assert token_totals(ws)["input_tokens"] == 1000


# --- logged vs computed cost ------------------------------------------------------------------


def _spendlog(rid: str, spend: float, prompt: int, completion: int) -> dict:
    return {"request_id": rid, "call_type": "acompletion", "model": "gpt-4o-mini",
            "custom_llm_provider": "openai", "spend": spend, "prompt_tokens": prompt,
            "completion_tokens": completion, "startTime": "2026-04-07T10:00:00Z",
            "endTime": "2026-04-07T10:00:01Z", "cache_hit": "False",
            "messages": [{"role": "user", "content": f"question {rid}"}],
            "response": {"choices": [{"message": {"role": "assistant",
                                                  "content": "ok"}}]}}  # fmt: skip


def test_logged_cost_differences_biggest_first(ws, tmp_path):
    records = [
        _spendlog("ok", 0.00027, 1000, 200),  # 270 µ$ = levers' figure
        _spendlog("near", 0.000271, 1000, 200),  # +0.37 %: within 1 %
        _spendlog("trial", 0.50, 1000, 200),  # the trial's row: 0.50 logged for 270 µ$
        _spendlog("double", 0.00054, 1000, 200),  # billed twice: +100 %
    ]
    _price(ws, tmp_path, records, format="litellm-spendlogs")
    checks = cost_checks(ws, load_config(None))
    assert (checks["calls_with_logged_cost"], checks["differing_calls"]) == (4, 2)
    assert [c["call_id"] for c in checks["largest"]] == ["trial", "double"]
    trial = checks["largest"][0]
    assert trial["logged_usd"] == pytest.approx(0.5)
    assert trial["computed_usd"] == pytest.approx(0.00027)
    assert trial["difference_usd"] == pytest.approx(0.49973)
    assert checks["totals_use"] == "computed" and checks["tolerance"] == 0.01


def test_logged_cost_left_in_metadata_is_wired_to_the_column():
    # an adapter that keeps a log's own cost in metadata (Langfuse costDetails' total)
    row = finish_row(
        {"query": "q", "input_tokens": 10, "output_tokens": 5,
         "metadata": {"logged_cost_usd": "0.0123", "trace": "t1"}},
        "langfuse",
    )  # fmt: skip
    assert row["logged_cost_usd"] == 0.0123 and row["metadata"] == {"trace": "t1"}


# --- levers' own price rows -------------------------------------------------------------------

#: A model each shipped row's first glob names.
_EXAMPLE_MODELS = {"*": {"openai": "gpt-4o", "google": "gemini-2.5-flash"},
                   "gemini-*": "gemini-2.5-flash"}  # fmt: skip


def _example_model(row) -> str:
    glob = row.models[0]
    example = _EXAMPLE_MODELS.get(glob)
    if isinstance(example, dict):
        return example[row.provider]
    return example or glob.rstrip("*").removesuffix("-2025-").removesuffix("-")


def _exercising(row) -> CallUsage:
    """Usage that a row's prices or condition apply to."""
    keys = {k for k, _ in row.prices}
    return CallUsage(
        10_000,
        cache_read_tokens=2_000,
        output_tokens=1_000,
        input_audio_tokens=1_000 if "input_audio_mtok" in keys else 0,
        output_audio_tokens=500 if "output_audio_mtok" in keys else 0,
        tool_uses=(("code_execution", 1),) if "code_executions_kcount" in keys else (),
    )


@pytest.mark.parametrize("row", shipped_rows(), ids=lambda r: f"{r.provider}:{r.models[0]}")
def test_each_shipped_row_prices_the_calls_it_matches(row):
    assert row.source.startswith("http") and len(row.read) == 10  # page and day read
    model, usage, day = _example_model(row), _exercising(row), date(2026, 1, 1)
    context = dict(row.when)
    with_rows = PriceBook().sheet(row.provider, model, day, **context)
    without = PriceBook(rows=()).sheet(row.provider, model, day, **context)
    assert row in with_rows.rows_used(usage)
    assert with_rows.cost(usage) != without.cost(usage)


def test_genai_prices_wins_where_it_has_the_rate(tmp_path):
    config_path = tmp_path / "levers.toml"
    config_path.write_text(
        "[[price_rows]]\nkind = 'rates'\nprovider = 'openai'\nmodels = ['gpt-5-mini*']\n"
        "when = { service_tier = 'priority' }\ninput_mtok = 9.99\noutput_mtok = 9.99\n"
        "source = 'https://example.com/our-contract'\nread = '2026-12-01'\n\n"
        "[[price_rows]]\nkind = 'rates'\nprovider = 'openai'\nmodels = ['gpt-audio-mini*']\n"
        "input_audio_mtok = 99.0\nsource = 'https://example.com/x'\nread = '2026-12-01'\n"
    )
    config = load_config(str(config_path))
    book = PriceBook((*config.price_rows, *shipped_rows()))
    usage = CallUsage(1_000, output_tokens=100)
    # before genai-prices' priority variant (2026-10-12) the levers.toml row, tried before the
    # shipped one, prices the call: 1,000 × 9.99 + 100 × 9.99 = 10,989 µ$
    march = book.cost("openai", "gpt-5-mini", date(2026, 3, 1), usage, "priority")
    assert march == Decimal("0.010989")
    # from that day genai-prices has the rate ($0.45 / $3.60): 450 + 360 = 810 µ$
    november = book.cost("openai", "gpt-5-mini", date(2026, 11, 1), usage, "priority")
    assert november == Decimal("0.00081")
    # genai-prices has gpt-audio-mini's audio rate ($10): a row only fills what it lacks
    audio = CallUsage(1_000, input_audio_tokens=1_000)
    assert book.cost("openai", "gpt-audio-mini", date(2026, 6, 1), audio) == Decimal("0.01")


def test_bad_price_rows_in_levers_toml(tmp_path):
    path = tmp_path / "levers.toml"
    path.write_text("[[price_rows]]\nkind = 'rates'\nprovider = 'openai'\nmodels = '*'\n"
                    "input = 1.0\nsource = 'x'\nread = '2026-01-01'\n")  # fmt: skip
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(str(path))


def test_override_prices_one_hour_writes_of_a_negotiated_model(ws, tmp_path):
    config_path = tmp_path / "levers.toml"
    config_path.write_text(
        '[prices."acme-claude"]\ninput = 2.0\ncache_write = 2.5\ncache_write_1h = 4.0\n'
        "output = 10.0\n"
    )
    usage = {"input_tokens": 100, "cache_creation_input_tokens": 2000, "output_tokens": 100,
             "cache_creation": {"ephemeral_5m_input_tokens": 1000,
                                "ephemeral_1h_input_tokens": 1000}}  # fmt: skip
    record = _anthropic("msg_acme", "acme-claude", usage)
    costs, _ = _price(ws, tmp_path, [record], config=load_config(str(config_path)))
    # levers.toml prices (USD per million tokens): 100 × 2 + 1,000 × 2.5 + 1,000 × 4 + 100 × 10
    # = 200 + 2,500 + 4,000 + 1,000 = 7,700 µ$
    assert costs == {"msg_acme": Decimal("0.0077")}
