"""Conversation datasets: every assistant turn of a record becomes one model call.

A call's ``messages`` are all turns before its assistant turn (system included), ``query`` is
the last user turn before it, ``response`` the assistant turn and ``turn`` its 1-based index
among the record's assistant turns. All calls of a record share a ``conversation_id``: the
record's own id (``conversation_id``, ``id``, ``conversation_hash``, ``ans_id``,
``answer_id``), else ``h:`` + the BLAKE2b-128 hex digest of the record's canonical JSON — the
digest the pipeline builds the calls' own ids from (``h:<digest>.<k>``), so the conversation of
call ``h:<digest>.2`` is ``h:<digest>``. Datasets carry no usage: token columns are left out
for the pipeline to estimate.

Formats and the pages they follow:

* ``sharegpt``: ``{"id"?, "conversations": [{"from", "value"}], "system"?, "tools"?}`` —
  lm-sys/FastChat ``data/dummy_conversation.json``; axolotl ``docs/dataset-formats/
  conversation.qmd`` (``human``/``gpt``, optional first ``system`` row, ``role`` instead of
  ``from``); hiyouga/LLaMA-Factory ``data/README.md`` (``function_call`` and ``observation``
  rows, top-level ``system`` and ``tools``).
* ``chat-messages``: the OpenAI fine-tuning chat format ``{"messages": [{"role", "content"}]}``
  (platform.openai.com/docs/guides/fine-tuning) and LMSYS-Chat-1M / WildChat-1M rows
  (``conversation`` instead of ``messages``; their Hugging Face dataset cards). Arena-Hard
  answer files write the assistant content as ``{"answer": text}`` (lmarena/arena-hard-auto
  ``gen_answer.py``, ``utils/completion.py``); the ``answer`` text is read.
* ``transcript``: Anthropic ``\\n\\nHuman: …\\n\\nAssistant: …`` transcripts —
  anthropics/hh-rlhf ``README.md`` (``{chosen, rejected}`` pairs, red-team ``{transcript, …}``)
  and ``{"text": …}`` rows whose text starts with ``Human:``.

MT-Bench answer files, which need their questions joined, are read by
:mod:`levers_cli.ingest.formats.mtbench` with the helpers here.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from levers_cli.errors import RecordError
from levers_cli.ingest.fields import parse_ts
from levers_cli.ingest.formats.base import MappedAdapter, PartialCall, Record
from levers_cli.ingest.formats.pairs import last_user_text
from levers_cli.text.content import content_text

Message = dict[str, Any]

_ID_KEYS = ("conversation_id", "id", "conversation_hash", "ans_id", "answer_id")
_MODEL_KEYS = ("model", "model_id", "model_name")
_TS_KEYS = ("ts", "timestamp", "tstamp", "created_at", "created", "time")
#: Message keys kept in ``messages`` (others, e.g. WildChat's ``hashed_ip``, are dropped).
_MESSAGE_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id")
#: Keys of an API request/response log: such a record belongs to the API-log adapters.
_API_KEYS = ("choices", "response", "request", "usage", "object", "candidates", "error")
_SYSTEM_ROLES = ("system", "developer")


def record_digest(record: Record) -> str:
    """BLAKE2b-128 hex digest of the record's canonical JSON, as the pipeline computes it."""
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


def _first_key(record: Record, keys: tuple[str, ...]) -> str | None:
    return next((k for k in keys if record.get(k) not in (None, "")), None)


def record_base(record: Record, consumed: tuple[str, ...]) -> tuple[PartialCall, str]:
    """The fields every call of ``record`` shares, and its conversation id.

    ``model``, ``ts`` and the id come from the first well-known key present; every other key
    not in ``consumed`` goes to ``metadata`` (a nested ``metadata`` object is merged in).

    Raises:
        RecordError: the timestamp is not one.
    """
    used = set(consumed)
    id_key = _first_key(record, _ID_KEYS)
    model_key = _first_key(record, _MODEL_KEYS)
    ts_key = _first_key(record, _TS_KEYS)
    base: PartialCall = {}
    if model_key is not None:
        base["model"] = str(record[model_key])
    if ts_key is not None:
        base["ts"] = parse_ts(record[ts_key], field=ts_key)
    used.update(k for k in (id_key, model_key, ts_key) if k is not None)
    metadata = {k: v for k, v in record.items() if k not in used and k != "metadata"}
    if isinstance(record.get("metadata"), dict):
        metadata.update(record["metadata"])
    base["metadata"] = metadata
    if id_key is not None:
        return base, str(record[id_key])
    return base, f"h:{record_digest(record)}"


def reply_text(message: Message) -> str:
    """Text of an assistant message: its content, then its tool calls as JSON."""
    text = content_text(message.get("content"))
    if message.get("tool_calls"):
        text = (text + "\n" if text else "") + json.dumps(message["tool_calls"], ensure_ascii=False)
    return text


def turn_calls(
    messages: list[Message], base: PartialCall, conversation_id: str, *, field: str
) -> list[PartialCall]:
    """One partial call per assistant message of ``messages``, in order.

    Raises:
        RecordError: ``messages`` holds no assistant message.
    """
    calls: list[PartialCall] = []
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        before = messages[:index]
        system = [content_text(m.get("content")) for m in before if m.get("role") in _SYSTEM_ROLES]
        call = base.copy()
        call.update(
            {
                "conversation_id": conversation_id,
                "turn": len(calls) + 1,
                "messages": before,
                "system_prompt": "\n\n".join(system) if system else None,
                "query": last_user_text(before),
                "response": reply_text(message),
                "metadata": dict(base.get("metadata") or {}),
            }
        )
        calls.append(call)
    if not calls:
        raise RecordError("no assistant turn, so no model call", field=field)
    return calls


#: ShareGPT speakers (FastChat, axolotl, LLaMA-Factory) → chat roles.
_SHAREGPT_ROLES = {
    **dict.fromkeys(("human", "user", "prompter"), "user"),
    **dict.fromkeys(("gpt", "assistant", "chatgpt", "bard", "bing", "model"), "assistant"),
    **dict.fromkeys(("function_call",), "assistant"),  # LLaMA-Factory: the model's tool call
    **dict.fromkeys(("observation", "tool"), "tool"),
    "system": "system",
}


class ShareGPTAdapter(MappedAdapter):
    """``{"conversations": [{"from": "human"|"gpt"|…, "value": …}]}`` datasets."""

    name = "sharegpt"
    description = "ShareGPT conversations (from/value turns); one call per assistant turn"
    example = (
        '{"id": "c1", "conversations": [{"from": "human", "value": "Hi"}, '
        '{"from": "gpt", "value": "Hello!"}]}'
    )

    def sniff(self, record: Record) -> bool:
        """True when ``conversations`` is a list of ``{from|role, value|content}`` objects."""
        turns = record.get("conversations")
        if not isinstance(turns, list) or not turns or not isinstance(turns[0], dict):
            return False
        first = turns[0]
        return ("from" in first or "role" in first) and ("value" in first or "content" in first)

    def normalize(self, record: Record) -> list[PartialCall]:
        """One call per ``gpt`` (assistant or ``function_call``) turn.

        Raises:
            RecordError: no turns, a turn that is not an object, or an unknown speaker.
        """
        turns = record.get("conversations")
        if not isinstance(turns, list) or not turns:
            raise RecordError("missing or empty", field="conversations")
        messages: list[Message] = []
        if isinstance(record.get("system"), str) and record["system"].strip():
            messages.append({"role": "system", "content": record["system"]})
        for position, turn in enumerate(turns):
            if not isinstance(turn, dict):
                raise RecordError("not a {from, value} object", field=f"conversations[{position}]")
            speaker = turn.get("from", turn.get("role"))
            role = _SHAREGPT_ROLES.get(str(speaker).strip().lower())
            if role is None:
                raise RecordError(
                    f"unknown speaker {speaker!r}", field=f"conversations[{position}].from"
                )
            text = content_text(turn.get("value", turn.get("content")))
            messages.append({"role": role, "content": text})
        base, conversation_id = record_base(record, ("conversations", "system"))
        return turn_calls(messages, base, conversation_id, field="conversations")


def _message_list(record: Record) -> tuple[str, Any]:
    key = "messages" if "messages" in record else "conversation"
    return key, record.get(key)


class ChatMessagesAdapter(MappedAdapter):
    """``{"messages": [{"role", "content"}, …]}`` datasets (no API response beside them)."""

    name = "chat-messages"
    description = "chat datasets {messages: [{role, content}]}; one call per assistant turn"
    example = (
        '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", '
        '"content": "Hi"}, {"role": "assistant", "content": "Hello!"}], "model": "gpt-4o"}'
    )

    def sniff(self, record: Record) -> bool:
        """True for a role/content message list with an assistant turn and no response
        object (a chat-completions response with ``messages`` beside it is ``openai-chat``)."""
        _, messages = _message_list(record)
        if not isinstance(messages, list) or not messages:
            return False
        if any(key in record for key in _API_KEYS) or record.get("type") == "message":
            return False
        if not all(isinstance(m, dict) and "role" in m for m in messages):
            return False
        return any(m.get("role") == "assistant" for m in messages)

    def normalize(self, record: Record) -> list[PartialCall]:
        """One call per assistant message; ``{"answer": …}`` contents read as their text.

        Raises:
            RecordError: no message list, a message without a role, or no assistant turn.
        """
        key, raw = _message_list(record)
        if not isinstance(raw, list) or not raw:
            raise RecordError("missing or empty", field=key)
        messages: list[Message] = []
        for position, message in enumerate(raw):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise RecordError("not a {role, content} object", field=f"{key}[{position}]")
            kept = {k: message[k] for k in _MESSAGE_KEYS if k in message}
            content = kept.get("content")
            if isinstance(content, dict) and isinstance(content.get("answer"), str):
                kept["content"] = content["answer"]  # Arena-Hard: {"answer": text}
            messages.append(kept)
        base, conversation_id = record_base(record, (key,))
        return turn_calls(messages, base, conversation_id, field=key)


#: A turn marker: at the very start (after whitespace) or after a blank line.
_MARKER = re.compile(r"(?:\A\s*|\n\n)(Human|Assistant):")
_SPEAKERS = {"Human": "user", "Assistant": "assistant"}
#: Record keys holding a transcript, in the order they are looked for.
_TRANSCRIPT_KEYS = ("chosen", "transcript", "text")


def looks_like_transcript(text: Any) -> bool:
    """True for a string that starts with ``Human:`` and has an ``Assistant:`` turn."""
    return isinstance(text, str) and text.lstrip().startswith("Human:") and "\n\nAssistant:" in text


def parse_transcript(text: str) -> list[Message]:
    """Split a transcript into messages; text before the first marker becomes a system
    message. Each turn's text is stripped of surrounding whitespace."""
    parts = _MARKER.split(text)
    messages: list[Message] = []
    if parts[0].strip():
        messages.append({"role": "system", "content": parts[0].strip()})
    for speaker, body in zip(parts[1::2], parts[2::2], strict=True):
        messages.append({"role": _SPEAKERS[speaker], "content": body.strip()})
    return messages


class TranscriptAdapter(MappedAdapter):
    """``\\n\\nHuman: … \\n\\nAssistant: …`` transcripts (HH-RLHF, red-team attempts).

    An HH-RLHF record holds two transcripts, ``chosen`` and ``rejected``, that share every
    turn but the last assistant reply (2,307 of the 2,312 harmless-base test pairs). Only
    ``chosen`` — the preferred reply — is read, so the shared turns are counted once; the
    rejected last reply goes to the last call's ``metadata.rejected_response`` when the rest
    of the two transcripts is equal (else ``metadata.rejected_differs`` is true).
    """

    name = "transcript"
    description = "\\n\\nHuman:/\\n\\nAssistant: transcripts (HH-RLHF chosen, red-team, text)"
    example = '{"chosen": "\\n\\nHuman: Hi\\n\\nAssistant: Hello!", "rejected": "..."}'

    def sniff(self, record: Record) -> bool:
        """True when ``chosen``, ``transcript`` or ``text`` starts with ``Human:``."""
        return any(looks_like_transcript(record.get(key)) for key in _TRANSCRIPT_KEYS)

    def normalize(self, record: Record) -> list[PartialCall]:
        """One call per ``Assistant:`` turn of the transcript.

        Raises:
            RecordError: no transcript field, or a transcript without an assistant turn.
        """
        key = next((k for k in _TRANSCRIPT_KEYS if isinstance(record.get(k), str)), None)
        if key is None:
            raise RecordError("no transcript string", field="chosen")
        messages = parse_transcript(record[key])
        base, conversation_id = record_base(record, (*_TRANSCRIPT_KEYS, "rejected"))
        base["metadata"]["transcript_field"] = key
        calls = turn_calls(messages, base, conversation_id, field=key)
        if key == "chosen" and isinstance(record.get("rejected"), str):
            rejected = parse_transcript(record["rejected"])
            last = calls[-1]["metadata"]
            if rejected[:-1] == messages[:-1] and rejected[-1]["role"] == "assistant":
                last["rejected_response"] = rejected[-1]["content"]
            else:
                last["rejected_differs"] = True
        return calls
