"""Generate large, realistic LLM-call logs for the scale benchmark (seeded, deterministic).

The shipped sample month (``sample_logs/app_logs.jsonl.gz``, made by
``sample_logs/generate.py``: FAQ traffic against a fixed system prompt, multi-turn coding
chats that resend their history, nightly ticket-triage bursts, weekly reports, a template with
a volatile prefix) is the seed. ``N`` calls are made from ``ceil(N / 4,807)`` copies of it;
copy ``k`` keeps every record's structure (system prompts, conversations, token usage, burst
times) and changes:

- ids: ``response.id`` gets ``-k`` so every call is a distinct call;
- time: the whole copy is shifted by a seeded offset within ±2 h (conversation order and the
  nightly/weekly schedule survive; bursts grow with the number of copies, as they would for a
  larger tenant);
- wording: each user message is rewritten with probability ``--vary`` (default 0.5) by a
  deterministic function of (its text, k) that adds a greeting, an account reference, a
  workspace name or a closing line. Being a function of the text, the same message is rewritten
  identically everywhere a conversation resends it, so rebuilt conversations stay intact.
  Unchanged messages repeat the original exactly: the exact-repeat traffic that response caches
  feed on. ``prompt_tokens`` grows by the added words' token estimate (1.3 tokens per word).

Usage::

    python bench/make_logs.py 100000            # -> bench/data/calls-100k.jsonl
    python bench/make_logs.py 1000000 --gzip    # -> bench/data/calls-1m.jsonl.gz

``bench/data/`` is git-ignored; files are made on demand, never committed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_logs" / "app_logs.jsonl.gz"
DATA = Path(__file__).resolve().parent / "data"
SEED = 20261001

GREETINGS = ["Hi, ", "Hello! ", "Quick question: ", "Hey team, ", "Good morning. ", "Urgent: "]
REFERENCES = [
    "(account {n})",
    "for workspace acme-{n}",
    "on ticket #{n}",
    "from the {city} office",
    "for our {team} team",
    "in project P-{n}",
]
CLOSINGS = ["Thanks!", "Thank you.", "Any help appreciated.", "Cheers", "Please advise.", ""]
CITIES = ["Berlin", "Lisbon", "Austin", "Toronto", "Osaka", "Nairobi", "Lima", "Oslo"]
TEAMS = ["finance", "platform", "sales", "design", "support", "data", "mobile", "legal"]


def _digest(*parts: object) -> int:
    """A stable 64-bit integer from ``parts`` (BLAKE2b), the generator's only randomness."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def vary(text: str, copy: int, share: float) -> tuple[str, int]:
    """The user message ``text`` as copy ``copy`` words it.

    Returns:
        ``(new text, words added)``; the text unchanged (0 words) with probability
        ``1 - share``, decided by the text and the copy only.
    """
    h = _digest(SEED, copy, text)
    if copy == 0 or (h % 10_000) / 10_000 >= share:
        return text, 0
    ref = REFERENCES[(h >> 14) % len(REFERENCES)].format(
        n=(h >> 20) % 90_000 + 10_000,
        city=CITIES[(h >> 40) % len(CITIES)],
        team=TEAMS[(h >> 44) % len(TEAMS)],
    )
    greeting = GREETINGS[(h >> 48) % len(GREETINGS)]
    closing = CLOSINGS[(h >> 52) % len(CLOSINGS)]
    new = f"{greeting}{text} {ref} {closing}".rstrip()
    return new, len(greeting.split()) + len(ref.split()) + len(closing.split())


def _copy_record(record: dict[str, Any], copy: int, share: float, shift_s: int) -> dict[str, Any]:
    """One record of copy ``copy`` (a new dict; the seed record is not changed)."""
    request = dict(record["request"])
    response = dict(record["response"])
    messages = []
    added = 0
    for message in request.get("messages", []):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            text, words = vary(message["content"], copy, share)
            added += words
            message = {**message, "content": text}
        messages.append(message)
    request["messages"] = messages
    response["id"] = f"{response['id']}-{copy}"
    response["created"] = int(response["created"]) + shift_s
    if added and isinstance(response.get("usage"), dict):
        usage = dict(response["usage"])
        extra = math.ceil(added * 1.3)
        usage["prompt_tokens"] = usage.get("prompt_tokens", 0) + extra
        usage["total_tokens"] = usage.get("total_tokens", 0) + extra
        response["usage"] = usage
    return {**record, "request": request, "response": response}


def generate(n_calls: int, share: float = 0.5) -> Iterator[str]:
    """JSONL lines of ``n_calls`` OpenAI Chat Completions pairs (see the module docstring).

    Records come copy by copy, each copy in the sample's time order.
    """
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        seed = [json.loads(line) for line in handle if line.strip()]
    made = 0
    copy = 0
    while made < n_calls:
        shift_s = 0 if copy == 0 else int(_digest(SEED, "shift", copy) % 14_400) - 7_200
        for record in seed:
            if made >= n_calls:
                break
            yield json.dumps(_copy_record(record, copy, share, shift_s), ensure_ascii=False)
            made += 1
        copy += 1


def default_path(n_calls: int, compress: bool) -> Path:
    """``bench/data/calls-100k.jsonl`` style names."""
    if n_calls % 1_000_000 == 0:
        size = f"{n_calls // 1_000_000}m"
    elif n_calls % 1_000 == 0:
        size = f"{n_calls // 1_000}k"
    else:
        size = str(n_calls)
    return DATA / f"calls-{size}.jsonl{'.gz' if compress else ''}"


def write(n_calls: int, path: Path, share: float = 0.5) -> Path:
    """Write ``n_calls`` records to ``path`` (gzip when it ends in ``.gz``); return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    opener: IO[str]
    if path.suffix == ".gz":
        opener = gzip.open(partial, "wt", encoding="utf-8", compresslevel=3)  # noqa: SIM115
    else:
        opener = open(partial, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
    with opener as out:
        for line in generate(n_calls, share):
            out.write(line)
            out.write("\n")
    partial.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("calls", type=int, help="number of calls, e.g. 100000")
    parser.add_argument("--out", type=Path, help="output file (default bench/data/calls-N…)")
    parser.add_argument("--gzip", action="store_true", help="write .jsonl.gz")
    parser.add_argument("--vary", type=float, default=0.5, help="share of reworded messages")
    args = parser.parse_args(argv)
    path = args.out or default_path(args.calls, args.gzip)
    started = time.perf_counter()
    write(args.calls, path, args.vary)
    print(f"{path}: {args.calls:,} calls in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
