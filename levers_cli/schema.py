"""The workspace schema: every table and column name is spelled here once.

Source: ../shared/DESIGN.md §2 (canonical schema). Other modules import the names from here.
"""

from __future__ import annotations

from typing import Final

#: The ``calls`` column (and JSON key) of a call's category: the one column name spelled this
#: often; other modules import it.
CATEGORY_ID: Final = "category_id"
#: The ``calls`` and ``categories`` column of the app feature a call belongs to (a logged tag,
#: else its prompt template, else the whole log: :mod:`levers_cli.cluster.features`). Every
#: category belongs to exactly one feature; category ids are unique across features.
FEATURE: Final = "feature"
#: ``calls`` columns of the conversation tree (:mod:`levers_cli.enrich.conversations`): the
#: call whose reply this call's request resends (its parent; NULL at a conversation's root)
#: and the earlier sibling this call retries (a regeneration or an edited question; NULL for
#: the first answer at its point of the conversation).
PARENT_CALL_ID: Final = "parent_call_id"
RETRY_OF: Final = "retry_of"

#: Columns of ``calls`` in table order, with their DuckDB types.
CALL_COLUMNS: Final[dict[str, str]] = {
    "call_id": "VARCHAR PRIMARY KEY",
    "source_file": "VARCHAR",
    "source_line": "BIGINT",
    "format": "VARCHAR",
    "ts": "TIMESTAMPTZ",
    "provider": "VARCHAR",
    "model": "VARCHAR",
    "conversation_id": "VARCHAR",
    "turn": "INTEGER",  # depth in the conversation tree: 1 + assistant turns in the request
    PARENT_CALL_ID: "VARCHAR",
    RETRY_OF: "VARCHAR",
    "system_prompt": "VARCHAR",
    "messages": "JSON",
    "query": "VARCHAR",
    "response": "VARCHAR",
    "input_tokens": "BIGINT",
    "cache_read_tokens": "BIGINT",
    "cache_write_tokens": "BIGINT",
    "output_tokens": "BIGINT",
    "reasoning_tokens": "BIGINT",
    # parts of the token columns above that are billed at rates of their own (issue 18)
    "cache_write_1h_tokens": "BIGINT",  # of cache_write_tokens: written with the 1-hour TTL
    "input_audio_tokens": "BIGINT",  # of input_tokens: audio in
    "output_audio_tokens": "BIGINT",  # of output_tokens: audio out
    "tokens_source": "VARCHAR",
    "max_tokens": "INTEGER",
    "finish_reason": "VARCHAR",
    "latency_ms": "DOUBLE",
    "status": "VARCHAR",
    "error": "VARCHAR",
    "is_batch": "BOOLEAN",
    "service_tier": "VARCHAR",  # the tier the response says served the call (flex, priority…)
    "inference_geo": "VARCHAR",  # where the provider ran it, as its usage reports (us, global)
    "server_tool_uses": "JSON",  # {tool: uses} of provider-side tools billed per use
    "gateway_cache_hit": "BOOLEAN",  # answered from a gateway's own cache: no provider call
    "cost_usd": "DECIMAL(18,9)",
    "logged_cost_usd": "DECIMAL(18,9)",
    "metadata": "JSON",
    "query_hash": "VARCHAR",
    CATEGORY_ID: "INTEGER",
    FEATURE: "VARCHAR",
    "run_id": "INTEGER",
    "record_hash": "VARCHAR",
}

#: Columns an ingest adapter fills (everything but what enrich/cluster compute later).
INGEST_COLUMNS: Final[tuple[str, ...]] = tuple(
    c for c in CALL_COLUMNS if c not in ("cost_usd", CATEGORY_ID, FEATURE, PARENT_CALL_ID, RETRY_OF)
)

#: Columns stored as JSON text (Python objects in partial calls).
JSON_COLUMNS: Final[tuple[str, ...]] = tuple(
    name for name, kind in CALL_COLUMNS.items() if kind == "JSON"
)
#: Token columns that are parts of another token column: part → whole.
TOKEN_PARTS: Final[dict[str, str]] = {
    "cache_write_1h_tokens": "cache_write_tokens",
    "input_audio_tokens": "input_tokens",
    "output_audio_tokens": "output_tokens",
}

TOKENS_FROM_USAGE: Final = "usage"
TOKENS_ESTIMATED: Final = "estimated"
STATUS_OK: Final = "ok"
STATUS_ERROR: Final = "error"
#: a request logged before it was sent, with no response logged (tokens estimated, no output)
STATUS_NO_RESPONSE: Final = "no_response"
UNCATEGORIZED: Final = -1

DDL: Final[tuple[str, ...]] = (
    "CREATE TABLE IF NOT EXISTS calls ("
    + ", ".join(f"{name} {kind}" for name, kind in CALL_COLUMNS.items())
    + ")",
    """CREATE TABLE IF NOT EXISTS rejects (
        source_file VARCHAR, source_line BIGINT, error VARCHAR, raw VARCHAR, run_id INTEGER
    )""",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id INTEGER PRIMARY KEY, command VARCHAR, started_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ, files JSON, records_read BIGINT, stored BIGINT,
        duplicates BIGINT, rejected BIGINT, levers_version VARCHAR, skipped BIGINT
    )""",
    # workspaces made before runs counted skipped records (no model call)
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS skipped BIGINT",
    """CREATE TABLE IF NOT EXISTS embeddings (
        query_hash VARCHAR, embedder VARCHAR, vector FLOAT[], PRIMARY KEY (query_hash, embedder)
    )""",
    """CREATE TABLE IF NOT EXISTS categories (
        category_id INTEGER PRIMARY KEY, parent_id INTEGER, label VARCHAR, keywords VARCHAR[],
        exemplars VARCHAR[], size BIGINT, distinct_queries BIGINT, spend_usd DECIMAL(18,9),
        embedder VARCHAR, centroid FLOAT[]
    )""",
    # the quality loop (levers_cli/quality): requests levers wrote for a shadow or judge run,
    # keyed by the custom_id the provider's batch output repeats, so analyze recognizes them
    """CREATE TABLE IF NOT EXISTS quality_requests (
        custom_id VARCHAR PRIMARY KEY, kind VARCHAR, call_id VARCHAR, lever VARCHAR,
        variant VARCHAR, target_model VARCHAR, variant_id VARCHAR, mode VARCHAR,
        swapped BOOLEAN, judge_model VARCHAR, exported_at TIMESTAMPTZ
    )""",
    # shadow answers paired with the original call: never production traffic (no spend,
    # category or run rate is read from here)
    """CREATE TABLE IF NOT EXISTS variants (
        variant_id VARCHAR PRIMARY KEY, call_id VARCHAR, lever VARCHAR, variant VARCHAR,
        target_model VARCHAR, provider VARCHAR, response VARCHAR, input_tokens BIGINT,
        output_tokens BIGINT, status VARCHAR, error VARCHAR, source_file VARCHAR,
        source_line BIGINT, run_id INTEGER
    )""",
    # a judge's grade of a variant: single (score 1-10) or pairwise (one order each)
    """CREATE TABLE IF NOT EXISTS grades (
        custom_id VARCHAR PRIMARY KEY, variant_id VARCHAR, call_id VARCHAR, mode VARCHAR,
        swapped BOOLEAN, judge_model VARCHAR, score DOUBLE, verdict VARCHAR,
        judgment VARCHAR, source_file VARCHAR, source_line BIGINT, run_id INTEGER
    )""",
    # workspaces made before categories lived within app features (issue 16)
    f"ALTER TABLE categories ADD COLUMN IF NOT EXISTS {FEATURE} VARCHAR",
)

#: Longest raw record text kept in ``rejects.raw`` (characters).
REJECT_RAW_LIMIT: Final = 10_000
