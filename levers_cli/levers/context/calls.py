"""The context lever's input (lever 2, :mod:`levers_cli.levers.context`): the calls of
multi-call conversations (and long single calls) with their messages' tokens, the models'
context windows, the summary model's rates and the cached query embeddings.

Each call's messages are parsed once, incrementally along a conversation (a client re-sends
the previous call's messages and appends the new ones), and every distinct ``(role, text,
model)`` is tokenized once (:class:`_Messages`).
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import polars as pl

from levers_cli.levers.context.history import CallTable, role_code
from levers_cli.pricing.rates import rate_card
from levers_cli.text.content import content_text
from levers_cli.text.tokens import (
    REPLY_PRIMER_TOKENS,
    TOKENS_PER_MESSAGE,
    TOKENS_PER_NAME,
    encoding_for,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from levers_cli.store import Workspace

_BATCH = 20_000  # calls fetched at a time (their messages are parsed batch by batch)


def input_total(ws: Workspace) -> int:
    """Input tokens of every call in the workspace."""
    totals = ws.con.execute("SELECT coalesce(sum(input_tokens), 0) FROM calls").fetchone()
    return int(totals[0]) if totals else 0


@cache
def model_window(provider: str | None, model: str | None) -> int | None:
    """Context window (tokens) of ``model`` as genai-prices records it, else ``None``."""
    if not model:
        return None
    from genai_prices import Usage, calc_price

    for provider_id in [provider, None] if provider else [None]:
        try:
            found = calc_price(Usage(input_tokens=1), model, provider_id=provider_id)
        except LookupError:
            continue
        return found.model.context_window
    return None


def summary_rates(table: CallTable, cheap: dict[str, str]) -> np.ndarray:
    """``(n, 2)`` USD per input and output token of a summary on each call: the provider's
    ``[tiers] cheap`` model, else the call's own model (0 when genai-prices knows neither)."""
    pairs = table.calls.select("provider", "model")
    known = pairs.unique(maintain_order=True)
    cards = {}
    for provider, model in known.iter_rows():
        card = rate_card(provider, cheap.get(provider or "")) or rate_card(provider, model)
        cards[(provider, model)] = (card.input, card.output) if card else (0.0, 0.0)
    return np.array([cards[pair] for pair in pairs.iter_rows()], dtype=float).reshape(-1, 2)


_LOAD = """WITH conv AS (SELECT conversation_id, count(*) AS n FROM calls
                     WHERE conversation_id IS NOT NULL GROUP BY 1)
    SELECT c.call_id, c.conversation_id, c.turn, c.provider, c.model, c.input_tokens,
           c.query_hash, coalesce(c.cost_usd, 0)::DOUBLE AS cost_usd,
           c.messages::VARCHAR AS messages
    FROM calls c LEFT JOIN conv USING (conversation_id)
    WHERE c.input_tokens > 0 AND (coalesce(conv.n, 1) > 1 OR c.input_tokens >= ?)
    ORDER BY c.conversation_id NULLS LAST, c.turn NULLS LAST, c.ts NULLS LAST,
             c.source_file, c.source_line, c.call_id"""


def _loads(raw: str | None) -> list[dict[str, Any]]:
    """The message dicts of a ``messages`` value (a list, or ``{"messages": [...]}``)."""
    if raw is None:
        return []
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:  # what orjson refuses (NaN, huge integers) json reads
        value = json.loads(raw)
    if isinstance(value, dict):
        value = value.get("messages", [])
    return [m for m in value if isinstance(m, dict)] if isinstance(value, list) else []


class _Messages:
    """Each call's messages as ids of distinct ``(role, text, model)`` keys, counted once.

    A chat client re-sends the previous call's messages and appends the new ones, so when a
    call's JSON starts with the previous call's (its closing ``]`` replaced by ``,``) only the
    rest is parsed: most of a long conversation's bytes are parsed once, not on every turn
    (a hand-written shortcut: a JSON parser cannot resume from a prefix it has read).
    """

    def __init__(self) -> None:
        self.keys: dict[tuple[str, str, str | None], int] = {}
        self.names: list[str | None] = []  # the first message of each key's name (it counts)
        self._raw = ""
        self._model: str | None = None
        self._messages: list[dict[str, Any]] = []
        self._ids: list[int] = []

    def call(self, raw: str | None, model: str | None) -> list[int]:
        """Key ids of the messages of one call."""
        prev = self._raw
        if (
            raw is not None
            and prev.startswith("[")
            and len(raw) > len(prev)
            and raw[len(prev) - 1] == ","
            and raw.startswith(prev[:-1])
        ):
            new = _loads("[" + raw[len(prev) :])
            ids = self._ids if model == self._model else self._key_ids(self._messages, model)
            messages, ids = self._messages + new, ids + self._key_ids(new, model)
        else:
            messages = _loads(raw)
            ids = self._key_ids(messages, model)
        self._raw, self._model, self._messages, self._ids = raw or "", model, messages, ids
        return ids

    def _key_ids(self, messages: list[dict[str, Any]], model: str | None) -> list[int]:
        out = []
        for m in messages:
            role = m.get("role", "")
            key = (role if type(role) is str else str(role), content_text(m.get("content")), model)
            found = self.keys.get(key)
            if found is None:
                found = self.keys[key] = len(self.keys)
                name = m.get("name")
                self.names.append(str(name) if name else None)
            out.append(found)
        return out

    def counts(self) -> np.ndarray:
        """Tokens of each key: :func:`~levers_cli.text.tokens.count_messages` of its one
        message minus the reply primer (the same formula, with the encoding looked up once
        per model instead of once per message)."""
        out = np.zeros(len(self.keys), dtype=np.int64)
        encodings: dict[str | None, Any] = {}
        for i, (role, text, model) in enumerate(self.keys):
            if model not in encodings:
                encodings[model] = encoding_for(model).encode_ordinary
            encode, name = encodings[model], self.names[i]
            named = TOKENS_PER_NAME + len(encode(name)) if name else 0
            out[i] = TOKENS_PER_MESSAGE + len(encode(role)) + len(encode(text)) + named
        return out


def load_table(
    ws: Workspace, doc_min_tokens: int, window_of: Callable[[str | None, str | None], int]
) -> CallTable:
    """Calls of multi-call conversations, and any call with at least ``doc_min_tokens`` input
    (it may hold a pasted document), in conversation and turn order, their messages' tokens
    estimated and scaled to the logged ``input_tokens``."""
    reader = ws.con.sql(_LOAD, params=[doc_min_tokens]).to_arrow_reader(_BATCH)
    parser, frames, ids, sizes = _Messages(), [], [], []
    for batch in reader:
        for raw, model in zip(
            batch.column("messages").to_pylist(), batch.column("model").to_pylist(), strict=True
        ):
            found = parser.call(raw, model)
            ids += found
            sizes.append(len(found))
        frame = pl.from_arrow(batch.drop_columns(["messages"]))
        assert isinstance(frame, pl.DataFrame)
        frames.append(frame)
    calls = pl.concat(frames) if frames else pl.from_arrow(reader.schema.empty_table())
    assert isinstance(calls, pl.DataFrame)
    calls = calls.drop("messages", strict=False)
    owner = np.repeat(np.arange(calls.height), sizes)
    counts = parser.counts()[np.asarray(ids, dtype=np.int64)]
    codes = np.array([role_code(key[0]) for key in parser.keys], dtype=np.int8)
    roles = codes[np.asarray(ids, dtype=np.int64)] if ids else np.zeros(0, dtype=np.int8)
    estimate = np.bincount(owner, weights=counts, minlength=calls.height) + REPLY_PRIMER_TOKENS
    inputs = calls["input_tokens"].to_numpy()
    tokens = counts.astype(float) * (inputs / estimate)[owner]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    position = np.arange(len(ids)) - offsets[owner]
    last_user = np.full(calls.height, -1, dtype=np.int64)
    np.maximum.at(last_user, owner[roles == 1], position[roles == 1])
    return CallTable(
        calls.with_columns(
            pl.Series("window", _windows(calls, window_of), dtype=pl.Int64),
            pl.Series("last_user", last_user),
        ),
        tokens,
        roles,
        offsets,
    )


def _windows(calls: pl.DataFrame, window_of: Callable[[str | None, str | None], int]) -> list[int]:
    """``window_of`` each call's (provider, model), asked once per pair: in order of first
    use, then of last use (what the per-call lookups left in ``window_of``'s record)."""
    pairs = list(zip(calls["provider"].to_list(), calls["model"].to_list(), strict=True))
    last = {pair: i for i, pair in enumerate(pairs)}
    found = {pair: window_of(*pair) for pair in dict.fromkeys(pairs)}
    for pair in sorted(last, key=last.__getitem__):
        window_of(*pair)
    return [found[pair] for pair in pairs]


def query_vectors(ws: Workspace, hashes: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Cached query embeddings (``embeddings`` table) of the embedder the categories used.

    Returns:
        ``((n,) row of each call's query in the matrix, -1 for none; (k, d) float32 unit
        vectors of the distinct queries found)``.
    """
    row = ws.con.execute(
        "SELECT embedder FROM categories WHERE embedder IS NOT NULL "
        "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()
    wanted = hashes.drop_nulls().filter(hashes.drop_nulls() != "").unique().sort()
    if row is None or not len(wanted):
        return np.full(len(hashes), -1, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    found = ws.con.sql(
        "SELECT query_hash, vector::FLOAT[] AS vector FROM embeddings WHERE embedder = ? "
        "AND vector IS NOT NULL AND query_hash IN (SELECT unnest(?))",
        params=[row[0], wanted.to_list()],
    ).to_arrow_table()
    frame = pl.from_arrow(found)
    assert isinstance(frame, pl.DataFrame)
    if not frame.height:
        return np.full(len(hashes), -1, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    matrix = frame["vector"].explode().to_numpy().astype(np.float32).reshape(frame.height, -1)
    index = frame.select("query_hash", pl.int_range(pl.len(), dtype=pl.Int64).alias("row"))
    rows = (
        hashes.to_frame("query_hash")
        .join(index, on="query_hash", how="left", maintain_order="left")["row"]
        .fill_null(-1)
        .to_numpy()
    )
    return rows, matrix


__all__ = ["input_total", "load_table", "model_window", "query_vectors", "summary_rates"]
