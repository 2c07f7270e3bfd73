"""simonw/llm logs: its SQLite ``logs.db`` and the output of ``llm logs --json``.

Sources (simonw/llm):

- ``llm/migrations.py`` — the released schema: ``conversations(id, name, model)`` and
  ``responses(id, model, prompt, system, prompt_json, options_json, response, response_json,
  conversation_id, duration_ms, datetime_utc)`` (m010), plus ``input_tokens``,
  ``output_tokens``, ``token_details`` (m013), ``schema_id`` (m014), ``resolved_model`` (m019);
  ``fragments``/``prompt_fragments``/``system_fragments`` (m015). Development versions add a
  ``turns`` table (``id, thread_id, model, resolved_model, options_json, input_tokens,
  output_tokens, token_details, duration_ms, datetime_utc``) with ``threads`` and a
  ``turn_search(turn_id, prompt, response)`` text index (m023_message_store); its message
  tables changed shape between development versions, so the text of a turn is read from
  ``turn_search`` only. Both tables are read, ``turns`` first (an id in both is a duplicate).
- ``llm/cli.py`` — ``llm logs --json`` prints ``LOGS_COLUMNS`` (the columns above plus
  ``conversation_name``, ``conversation_model``), ``*_json`` columns decoded, oldest first;
  ``Prompt.prompt`` is ``"\\n".join(fragments + [prompt])`` and ``Prompt.system`` joins the
  system fragments and the system prompt with blank lines (``llm/models.py``).

Usage: llm stores what each plugin passes to ``response.set_usage(input, output, details)``:
OpenAI ``prompt_tokens`` (cached included; details ``prompt_tokens_details.cached_tokens``,
``completion_tokens_details.reasoning_tokens``), llm-anthropic Anthropic's ``input_tokens``
(cache *excluded*; details ``cache_read_input_tokens``/``cache_creation_input_tokens``, which
are added), llm-gemini ``promptTokenCount`` (cached included, ``cachedContentTokenCount``) and
``candidatesTokenCount + thoughtsTokenCount`` as output — since simonw/llm-gemini 9a1ccac
(2025-05-07, its issue #75); before, it popped ``candidatesTokenCount`` out of the details and
logged it alone as the output, so thoughts left in the details are added to the output.
``turn`` is the response's position in its conversation by ``datetime_utc``; the request
messages are rebuilt from the conversation's earlier prompts and replies (as llm sends them)
unless ``prompt_json`` holds ``messages``.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from levers_cli.errors import InputFileError
from levers_cli.ingest.fields import optional_float, parse_ts, provider_for_model, token_count
from levers_cli.ingest.formats.anthropic import STOP_REASONS
from levers_cli.ingest.formats.base import MappedAdapter, PartialCall, Record
from levers_cli.ingest.readers import RawRecord, RecordSource

SQLITE_MAGIC = b"SQLite format 3\x00"
_RESPONSE_COLUMNS = {"id", "model", "prompt", "response", "datetime_utc"}
_TURN_COLUMNS = {"id", "model", "datetime_utc"}
_GEMINI_REASONS = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter"}
_FRAGMENTS_SQL = (
    "SELECT f.content FROM {table} x JOIN fragments f ON f.id = x.fragment_id "
    'WHERE x.response_id = ? ORDER BY x."order"'
)


def _connect(path: str) -> sqlite3.Connection:
    con = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    return con


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in con.execute(f"PRAGMA table_info([{table}])")}


def _has(con: sqlite3.Connection, table: str, columns: set[str]) -> bool:
    """True when ``table`` exists with (at least) ``columns``."""
    return _columns(con, table).issuperset(columns)


def _json(value: Any) -> Any:
    """A ``*_json`` value: decoded from a string (SQLite) or as given (``llm logs --json``)."""
    if isinstance(value, str) and value.strip():
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return None
    return value


def llm_usage(input_tokens: Any, output_tokens: Any, token_details: Any) -> PartialCall:
    """Normalize llm's ``input_tokens``/``output_tokens``/``token_details`` into token columns.

    Raises:
        RecordError: a count is negative or not a whole number.
    """
    details = _json(token_details)
    details = details if isinstance(details, dict) else {}
    given_in = token_count(input_tokens, field="input_tokens")
    output = token_count(output_tokens, field="output_tokens")

    def nested(outer: str, inner: str) -> int:
        block = details.get(outer)
        value = block.get(inner) if isinstance(block, dict) else None
        return token_count(value, field=f"token_details.{outer}.{inner}") or 0

    write = token_count(
        details.get("cache_creation_input_tokens"),
        field="token_details.cache_creation_input_tokens",
    )
    read_added = token_count(
        details.get("cache_read_input_tokens"), field="token_details.cache_read_input_tokens"
    )
    included = (
        nested("prompt_tokens_details", "cached_tokens")
        or nested("input_tokens_details", "cached_tokens")
        or token_count(
            details.get("cachedContentTokenCount"), field="token_details.cachedContentTokenCount"
        )
        or 0
    )
    reasoning = (
        nested("completion_tokens_details", "reasoning_tokens")
        or nested("output_tokens_details", "reasoning_tokens")
        or token_count(details.get("thoughtsTokenCount"), field="token_details.thoughtsTokenCount")
        or 0
    )
    candidates = details.get("candidatesTokenCount")
    thoughts = "thoughtsTokenCount" in details
    if (
        reasoning
        and output is not None
        and thoughts
        and (candidates is None or output == candidates)
    ):
        # llm-gemini before 9a1ccac (its issue #75) popped candidatesTokenCount out of the
        # details and logged it alone as the output; thoughts are billed as output too
        output += reasoning
    if given_in is None:  # no usage logged (llm < 0.19): the pipeline estimates the tokens
        return {"input_tokens": None, "output_tokens": output}
    return {
        "input_tokens": given_in + (write or 0) + (read_added or 0),
        "cache_read_tokens": (read_added or 0) + included,
        "cache_write_tokens": write or 0,
        "output_tokens": output,
        "reasoning_tokens": reasoning,
    }


def _finish_reason(response_json: Any) -> str | None:
    """Why generation stopped, from the logged provider response (OpenAI ``finish_reason``,
    Anthropic ``stop_reason``, Gemini ``finishReason``), OpenAI-style."""
    body = _json(response_json)
    if not isinstance(body, dict):
        return None
    for key in ("choices", "candidates"):
        if isinstance(body.get(key), list) and body[key] and isinstance(body[key][0], dict):
            body = {**body, **body[key][0]}
    reason = body.get("finish_reason") or body.get("stop_reason") or body.get("finishReason")
    if not isinstance(reason, str):
        return None
    return STOP_REASONS.get(reason) or _GEMINI_REASONS.get(reason) or reason


def _prompt_text(record: Record) -> tuple[str, str]:
    """(user prompt, system prompt) as sent: fragments first, as ``llm.Prompt`` joins them."""
    fragments = [f.get("content") or "" for f in record.get("prompt_fragments") or []]
    system_bits = [f.get("content") or "" for f in record.get("system_fragments") or []]
    prompt = "\n".join([*fragments, record["prompt"]] if record.get("prompt") else fragments)
    system = "\n\n".join(b.strip() for b in [*system_bits, record.get("system") or ""] if b.strip())
    return prompt, system


class LlmLogsAdapter(MappedAdapter):
    """simonw/llm responses, from ``logs.db`` or ``llm logs --json``."""

    name = "llm-logs"
    description = "simonw/llm logs: its SQLite logs.db, or `llm logs --json` output"
    example = (
        '{"id": "01j…", "model": "gpt-4o-mini", "prompt": "…", "response": "…", '
        '"conversation_id": "01j…", "datetime_utc": "2025-…", "input_tokens": 12, …}'
    )

    def __init__(self, mapping: Any = None, **options: Any) -> None:
        super().__init__(mapping, **options)
        self._turns: Counter[str] = Counter()
        self._history: dict[str, list[dict[str, Any]]] = {}

    def claims_file(self, path: str) -> bool:
        """True for a SQLite file (by its header): levers reads SQLite only as llm's
        ``logs.db``, and :meth:`open_file` says why when a database is not one."""
        try:
            with open(path, "rb") as handle:
                return handle.read(16) == SQLITE_MAGIC
        except OSError:
            return False

    def open_file(self, path: str) -> RecordSource:
        """Open ``logs.db``: one record per logged response, grouped by conversation.

        Raises:
            InputFileError: the database cannot be read, or has neither llm's ``responses``
                nor its ``turns`` table.
        """
        if not os.path.exists(path):
            raise InputFileError(path, "no such file")
        try:
            con = _connect(path)
            tables = sorted(row[0] for row in con.execute("SELECT name FROM sqlite_master"))
            is_llm = _has(con, "responses", _RESPONSE_COLUMNS) or _has(con, "turns", _TURN_COLUMNS)
        except sqlite3.Error as exc:
            raise InputFileError(path, f"not a readable SQLite database ({exc})") from None
        if not is_llm:
            con.close()
            found = ", ".join(tables[:8]) + (", …" if len(tables) > 8 else "") or "none"
            raise InputFileError(
                path,
                "a SQLite database, but not an llm logs database: no table `responses` (or "
                f"`turns`) with llm's columns (tables: {found}); levers reads SQLite only as "
                "simonw/llm's logs.db",
            )
        return RecordSource(path, "sqlite", None, self._db_records(path, con))

    def _db_records(self, path: str, con: sqlite3.Connection) -> Iterator[RawRecord]:
        index = 0
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master")}
        try:
            for row in self._rows(con, tables):
                index += 1
                text = json.dumps(
                    {k: v for k, v in row.items() if k != "messages"},
                    ensure_ascii=False,
                    default=str,
                )
                yield RawRecord(index, row, text)
        except sqlite3.Error as exc:
            yield RawRecord(index + 1, None, "", f"SQLite read failed: {exc}")
        finally:
            con.close()

    def _rows(self, con: sqlite3.Connection, tables: set[str]) -> Iterator[dict[str, Any]]:
        """Rows shaped like ``llm logs --json`` output, with ``turn`` and the request
        ``messages`` (the conversation so far) filled, conversation by conversation."""
        queries: list[str] = []
        if _has(con, "turns", _TURN_COLUMNS):
            thread = "t.thread_id, " if "thread_id" in _columns(con, "turns") else ""
            search = _has(con, "turn_search", {"turn_id", "prompt", "response"})
            queries.append(
                f"SELECT t.*, coalesce({thread}t.id) AS conversation_id, "
                + ("s.prompt, s.response, " if search else "")
                + f"coalesce({thread}t.id) AS conv, 'turns' AS [table] FROM turns t "
                + ("LEFT JOIN turn_search s ON s.turn_id = t.id" if search else "")
            )
        if _has(con, "responses", _RESPONSE_COLUMNS):
            join = _has(con, "conversations", {"id", "name", "model"})
            queries.append(
                "SELECT r.*, "
                + ("c.name AS conversation_name, c.model AS conversation_model, " if join else "")
                + "coalesce(r.conversation_id, r.id) AS conv FROM responses r "
                + ("LEFT JOIN conversations c ON c.id = r.conversation_id" if join else "")
            )
        fragments = "fragments" in tables
        for query in queries:
            sql = (
                f"SELECT *, row_number() OVER (PARTITION BY conv ORDER BY datetime_utc, id) "
                f"AS turn FROM ({query}) ORDER BY conv, datetime_utc, id"
            )
            history: list[dict[str, Any]] = []
            for found in con.execute(sql):
                row = dict(found)
                del row["conv"]
                for table in ("prompt_fragments", "system_fragments"):
                    if fragments and table in tables and "table" not in row:
                        found_fragments = con.execute(
                            _FRAGMENTS_SQL.format(table=table), (row["id"],)
                        )
                        row[table] = [dict(f) for f in found_fragments]
                if row["turn"] == 1:
                    history = []
                row["messages"] = self._request(row, history)
                reply = {"role": "assistant", "content": row.get("response") or ""}
                history = [*row["messages"], reply]
                yield row

    def _request(self, record: Record, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The messages llm sent: ``prompt_json["messages"]`` when logged, else the system
        prompt, the conversation so far and this prompt."""
        logged = _json(record.get("prompt_json"))
        if isinstance(logged, dict) and isinstance(logged.get("messages"), list):
            return logged["messages"]
        prompt, system = _prompt_text(record)
        earlier = [m for m in history if m.get("role") != "system"]
        head = [{"role": "system", "content": system}] if system else []
        return [*head, *earlier, {"role": "user", "content": prompt}]

    def sniff(self, record: Record) -> bool:
        """True for an ``llm logs --json`` row (id, model, prompt, response, datetime_utc)."""
        return {"id", "model", "prompt", "response", "datetime_utc"} <= record.keys() and (
            "conversation_id" in record or "options_json" in record
        )

    def normalize(self, record: Record) -> PartialCall:
        """Normalize one logged response (a ``logs.db`` row or an ``llm logs --json`` item).

        Raises:
            RecordError: a bad timestamp, duration or token count.
        """
        conversation = str(record.get("conversation_id") or record["id"])
        if "turn" in record:  # from logs.db: position computed by SQL, messages rebuilt
            turn, messages = record["turn"], record.get("messages") or []
        else:  # llm logs --json: oldest first, so count and rebuild as we go
            self._turns[conversation] += 1
            turn = self._turns[conversation]
            messages = self._request(record, self._history.get(conversation, []))
            reply = {"role": "assistant", "content": record.get("response") or ""}
            self._history[conversation] = [*messages, reply]
        prompt, system = _prompt_text(record)
        logged_model = record.get("model") or record.get("conversation_model")
        model = record.get("resolved_model") or logged_model
        provider = provider_for_model(logged_model) or provider_for_model(model)
        if model and "/" in model:  # llm-anthropic ids: anthropic/claude-…
            model = model.split("/", 1)[1]
        options = _json(record.get("options_json"))
        metadata = {
            "llm_model": logged_model,
            "conversation_name": record.get("conversation_name"),
            "options": options or None,
            "token_details": _json(record.get("token_details")),
            "schema_id": record.get("schema_id"),
            "table": record.get("table"),
        }
        partial: PartialCall = {
            "call_id": str(record["id"]),
            "ts": parse_ts(record.get("datetime_utc"), field="datetime_utc"),
            "provider": provider,
            "model": model,
            "conversation_id": conversation,
            "turn": int(turn),
            "messages": messages,
            "system_prompt": system or None,
            "query": prompt,
            "response": record.get("response") or "",
            "finish_reason": _finish_reason(record.get("response_json")),
            "latency_ms": optional_float(record.get("duration_ms"), field="duration_ms"),
            "status": "ok",
            "metadata": {k: v for k, v in metadata.items() if v is not None},
        }
        if isinstance(options, dict):
            cap = options.get("max_tokens", options.get("max_output_tokens"))
            partial["max_tokens"] = token_count(cap, field="options_json.max_tokens")
        usage = llm_usage(
            record.get("input_tokens"), record.get("output_tokens"), record.get("token_details")
        )
        partial.update(cast(PartialCall, {k: v for k, v in usage.items() if v is not None}))
        return partial
