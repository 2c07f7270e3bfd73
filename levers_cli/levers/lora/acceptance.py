"""Which calls' answers were accepted, for lever 6 (LoRA): the training examples.

A call's answer is accepted when its metadata says so (the first of ``[lora] feedback_keys``
present: a boolean; a number > 0 (thumbs ±1); a word such as ``positive``/``up``/``accepted``
or ``negative``/``down``/``rejected``). Without feedback, a successful call (``status = ok``,
not cut off by ``max_tokens``) is accepted unless the user asked again: a later sibling
retried it (``calls.retry_of``: the answer regenerated or the question edited at the same
turn, :mod:`levers_cli.enrich.conversations`), or the next call along its thread (its child,
``parent_call_id``; in a conversation with no parent links, the next call by turn), within
``[lora] retry_window_s`` seconds, has a query whose embedding (the categories' embedder,
cached in ``embeddings``) has cosine similarity ≥ ``[lora] retry_similarity`` with this
one's — a rephrased retry (DESIGN §5.6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from levers_cli.schema import PARENT_CALL_ID, RETRY_OF

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.store import Workspace

POSITIVE = frozenset(
    {"true", "yes", "y", "1", "positive", "up", "thumbs_up", "thumbsup", "good", "like",
     "liked", "accepted", "accept", "approved", "helpful", "correct"}
)  # fmt: skip
NEGATIVE = frozenset(
    {"false", "no", "n", "0", "-1", "negative", "down", "thumbs_down", "thumbsdown", "bad",
     "dislike", "disliked", "rejected", "reject", "unhelpful", "wrong", "incorrect"}
)  # fmt: skip


def feedback_value(text: str | None) -> bool | None:
    """A feedback value read as accepted (True), rejected (False) or unknown (None)."""
    if text is None:
        return None
    word = text.strip().strip('"').lower()
    if word in POSITIVE:
        return True
    if word in NEGATIVE:
        return False
    try:
        return float(word) > 0
    except ValueError:
        return None


def _feedback(ws: Workspace, keys: list[str]) -> pl.DataFrame:
    """``call_id`` and ``feedback`` (bool or null) from the first metadata key present."""
    if not keys:
        return pl.DataFrame({"call_id": [], "feedback": []}, schema=_FEEDBACK_SCHEMA)
    first = ", ".join(f"metadata->>'$.\"{k}\"'" for k in keys)
    rows = ws.con.execute(
        f"SELECT call_id, coalesce({first}) FROM calls WHERE metadata IS NOT NULL"
    ).fetchall()
    found = [(cid, feedback_value(v)) for cid, v in rows if v is not None]
    return pl.DataFrame(found, schema=_FEEDBACK_SCHEMA, orient="row")


_FEEDBACK_SCHEMA = {"call_id": pl.String, "feedback": pl.Boolean}


def _retried(ws: Workspace, window_s: float, threshold: float) -> set[str]:
    """Calls a later sibling retried, and calls followed along their thread (their child;
    the next call by turn where the conversation has no parent links) within ``window_s``
    seconds (or with no timestamps) by a query at cosine similarity ≥ ``threshold``."""
    siblings = ws.con.execute(
        f"SELECT DISTINCT {RETRY_OF} FROM calls WHERE {RETRY_OF} IS NOT NULL"
    ).fetchall()
    retried = {r[0] for r in siblings}
    embedder = ws.con.execute("SELECT any_value(embedder) FROM categories").fetchone()
    if not embedder or embedder[0] is None:
        return retried
    rows = ws.con.execute(
        f"""WITH linked AS (
               SELECT conversation_id FROM calls WHERE {PARENT_CALL_ID} IS NOT NULL
               GROUP BY 1),
           next AS (
               SELECT p.call_id, p.query_hash, p.ts, c.query_hash AS next_hash, c.ts AS next_ts
               FROM calls p JOIN calls c ON c.{PARENT_CALL_ID} = p.call_id
               UNION ALL
               SELECT call_id, query_hash, ts,
                      lead(query_hash) OVER w AS next_hash, lead(ts) OVER w AS next_ts
               FROM calls WHERE conversation_id IS NOT NULL
                 AND conversation_id NOT IN (SELECT conversation_id FROM linked)
               WINDOW w AS (PARTITION BY conversation_id ORDER BY turn NULLS LAST, ts, call_id))
           SELECT DISTINCT o.call_id FROM next o
           JOIN embeddings a ON a.query_hash = o.query_hash AND a.embedder = $e
           JOIN embeddings b ON b.query_hash = o.next_hash AND b.embedder = $e
           WHERE (o.next_ts IS NULL OR o.ts IS NULL OR epoch(o.next_ts) - epoch(o.ts) <= $w)
             AND list_cosine_similarity(a.vector, b.vector) >= $t""",
        {"e": embedder[0], "w": window_s, "t": threshold},
    ).fetchall()
    return retried | {r[0] for r in rows}


def acceptance(ws: Workspace, config: Config) -> pl.DataFrame:
    """Every call's acceptance.

    Returns:
        ``call_id``, ``feedback`` (bool or null: from metadata), ``retried`` (bool: a sibling
        retried it or a rephrased retry followed) and ``accepted`` (bool: feedback when
        present, else ok, not truncated and not retried).
    """
    keys = list(config.get("lora", "feedback_keys"))
    retried = _retried(
        ws,
        float(config.get("lora", "retry_window_s")),
        float(config.get("lora", "retry_similarity")),
    )
    calls = pl.from_arrow(
        ws.con.sql(
            """SELECT call_id, coalesce(status, 'ok') = 'ok'
                        AND coalesce(finish_reason, '') <> 'length' AS succeeded
               FROM calls"""
        ).to_arrow_table()
    )
    assert isinstance(calls, pl.DataFrame)
    return (
        calls.join(_feedback(ws, keys), on="call_id", how="left")
        .with_columns(pl.col("call_id").is_in(list(retried)).alias("retried"))
        .with_columns(
            pl.when(pl.col("feedback").is_not_null())
            .then(pl.col("feedback"))
            .otherwise(pl.col("succeeded") & ~pl.col("retried"))
            .alias("accepted")
        )
        .drop("succeeded")
    )


__all__ = ["NEGATIVE", "POSITIVE", "acceptance", "feedback_value"]
