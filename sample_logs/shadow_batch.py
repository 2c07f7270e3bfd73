"""Play the provider's batch API for the sample's quality loop, seeded and offline.

levers never calls a model: ``levers export shadow`` and ``levers export judge`` write batch
input files that a user would upload. For the shipped sample there is no account to run them,
so this script writes what the batch API would return, in the exact OpenAI Batch output
format (one line per request: ``{"id", "custom_id", "response": {"status_code",
"request_id", "body": <chat.completion>}, "error"}``):

- ``shadow``: the cheap model's answers with a **known acceptability per feature**
  (:data:`ACCEPTABLE`): a seeded draw per request (SHA-256 of the seed and the custom_id) makes
  the answer either the original answer from ``app_logs.jsonl.gz`` (found by the request's
  messages) or a degraded one (its first sentence, then "I'm not certain about the rest.").
  ``shadow_truths.json`` beside the output lists the planted share per feature.
- ``judge``: a deterministic judge: single grading gives ``Rating: [[9]]`` when the assistant's
  answer repeats the reference, ``Rating: [[3]]`` otherwise; pairwise gives ``[[A=B]]`` for
  equal answers, else the original's side wins (``[[A>>B]]`` / ``[[B>>A]]``).

It never changes ``app_logs.jsonl.gz`` or ``truths.json``. Usage (see README, "The quality
loop")::

    python sample_logs/shadow_batch.py shadow reports/shadow/*.jsonl --out shadow_output.jsonl
    python sample_logs/shadow_batch.py judge reports/judge/*.jsonl --out judge_output.jsonl
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
from pathlib import Path
from typing import Any

SEED = 17
HERE = Path(__file__).resolve().parent
LOGS = HERE / "app_logs.jsonl.gz"
#: Planted share of acceptable cheap-model answers per feature.
ACCEPTABLE = {
    "support-faq": 0.98,
    "ticket-triage": 1.0,
    "weekly-report": 0.9,
    "meeting-notes": 0.97,
    "coding-assistant": 0.55,
}
#: How a request's feature is told from its messages (the sample's prompts).
FEATURE_MARKS = (
    ("coding-assistant", "DevPilot"),
    ("support-faq", "You are Aria"),
    ("ticket-triage", "Classify the following support ticket"),
    ("weekly-report", "weekly operations report"),
    ("meeting-notes", "meeting"),
)
SNAPSHOT = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4o": "gpt-4o-2024-08-06"}


def feature_of(messages: list[dict[str, Any]]) -> str:
    """The sample feature a request belongs to, from its text."""
    text = "\n".join(str(m.get("content")) for m in messages)
    for feature, mark in FEATURE_MARKS:
        if mark.lower() in text.lower():
            return feature
    return "(none)"


def draw(custom_id: str) -> float:
    """A uniform number in [0, 1) from the seed and the custom_id (order-free)."""
    digest = hashlib.sha256(f"{SEED}:{custom_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _key(messages: list[dict[str, Any]]) -> str:
    """Messages as compared: the last user message's text (redaction may change others)."""
    users = [str(m.get("content")) for m in messages if m.get("role") == "user"]
    return re.sub(r"\s+", " ", users[-1] if users else "").strip()


def original_answers() -> dict[str, str]:
    """The sample's answers keyed by :func:`_key` of their request."""
    out: dict[str, str] = {}
    with gzip.open(LOGS, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            answer = record["response"]["choices"][0]["message"]["content"] or ""
            out.setdefault(_key(record["request"]["messages"]), answer)
    return out


def degrade(answer: str) -> str:
    """A worse answer: the first sentence (or 12 words), then a hedge."""
    first = re.split(r"(?<=[.!?])\s", answer.strip(), maxsplit=1)[0]
    words = first.split()
    return " ".join(words[:12]) + " I'm not certain about the rest."


def output_line(request: dict[str, Any], content: str, n: int) -> dict[str, Any]:
    """One OpenAI Batch output line answering ``request`` with ``content``."""
    body = request["body"]
    digest = hashlib.sha256(f"{request['custom_id']}:{n}".encode()).hexdigest()
    prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    completion = len(content.split())
    return {
        "id": f"batch_req_{digest[:24]}",
        "custom_id": request["custom_id"],
        "response": {
            "status_code": 200,
            "request_id": digest[24:56],
            "body": {
                "id": f"chatcmpl-{digest[:29]}",
                "object": "chat.completion",
                "created": 1793491200 + n,
                "model": SNAPSHOT.get(body["model"], body["model"]),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
                "system_fingerprint": "fp_sample",
            },
        },
        "error": None,
    }


def _requests(paths: list[str]) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            out += [json.loads(line) for line in handle if line.strip()]
    return out


def shadow(paths: list[str], out: Path) -> dict[str, Any]:
    """Answer shadow requests; return the planted truth (share and counts per feature)."""
    answers = original_answers()
    lines, truth = [], {}
    for n, request in enumerate(_requests(paths)):
        messages = request["body"]["messages"]
        feature = feature_of(messages)
        original = answers.get(_key(messages), "")
        good = draw(request["custom_id"]) < ACCEPTABLE.get(feature, 0.9)
        lines.append(output_line(request, original if good else degrade(original), n))
        row = truth.setdefault(
            feature, {"planted_share": ACCEPTABLE.get(feature, 0.9), "requests": 0, "acceptable": 0}
        )
        row["requests"] += 1
        row["acceptable"] += int(good)
    out.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), "utf-8")
    return truth


def _between(text: str, start: str, end: str) -> str:
    i = text.find(start)
    j = text.find(end, i + len(start))
    return text[i + len(start) : j].strip() if i >= 0 and j >= 0 else ""


def judge(paths: list[str], out: Path) -> None:
    """Answer judge requests with the deterministic judge (see the module docstring)."""
    lines = []
    for n, request in enumerate(_requests(paths)):
        prompt = request["body"]["messages"][-1]["content"]
        if "[The Start of Reference Answer]" in prompt:
            ref = _between(
                prompt, "[The Start of Reference Answer]", "[The End of Reference Answer]"
            )
            got = _between(
                prompt, "[The Start of Assistant's Answer]", "[The End of Assistant's Answer]"
            )
            verdict = "Rating: [[9]]" if got == ref else "Rating: [[3]]"
            how = "matches" if got == ref else "falls short of"
            text = f"The assistant's answer {how} the reference. {verdict}"
        else:
            a = _between(
                prompt,
                "<|The Start of Assistant A's Answer|>",
                "<|The End of Assistant A's Answer|>",
            )
            b = _between(
                prompt,
                "<|The Start of Assistant B's Answer|>",
                "<|The End of Assistant B's Answer|>",
            )
            # the original is the longer, complete answer in this sample
            label = "A=B" if a == b else ("A>>B" if len(a) > len(b) else "B>>A")
            text = f"My final verdict is: [[{label}]]"
        lines.append(output_line(request, text, n))
    out.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), "utf-8")


def main() -> None:
    """Command line: ``shadow|judge INPUT… --out OUTPUT``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("shadow", "judge"))
    parser.add_argument("inputs", nargs="+", help="batch input .jsonl files levers wrote")
    parser.add_argument("--out", required=True, help="the batch output .jsonl to write")
    args = parser.parse_args()
    out = Path(args.out)
    if args.kind == "shadow":
        truth = shadow(args.inputs, out)
        truths = out.with_name("shadow_truths.json")
        truths.write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n", "utf-8")
        print(f"wrote {out} and {truths}")
    else:
        judge(args.inputs, out)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
