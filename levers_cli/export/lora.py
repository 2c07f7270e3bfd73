"""``levers export lora``: per selected category, a fine-tuning dataset of the answers the LoRA
lever counts as training examples.

Layout: ``lora/<category_id>-<label>/{train.jsonl, validation.jsonl, README.md}``.

- Lines are the chat format ``{"messages": [{"role": "system"|"user"|"assistant",
  "content": str}, ...]}`` that OpenAI fine-tuning reads (platform.openai.com/docs/guides/
  fine-tuning, "Preparing your dataset"; an assistant message may carry ``"weight": 0`` so
  it is not trained on, "Multi-turn chat examples") and that Hugging Face TRL's
  ``SFTTrainer`` reads as a *conversational* dataset (huggingface.co/docs/trl,
  "Dataset formats": a ``messages`` list of ``role``/``content`` dicts). One example per
  call: its system prompt, the conversation so far (earlier assistant turns at weight 0: they
  may not be accepted answers) and the call's answer as the last assistant message.
  Consecutive messages of one role are joined (chat templates expect alternation); tool
  messages and tool-only assistant turns are left out; content parts are joined as text.
- Examples (:mod:`levers_cli.levers.lora.calls`, :mod:`levers_cli.levers.lora.acceptance`):
  calls of the category served by a model pricier than the LoRA model whose answer was
  accepted — by feedback where the logs carry it (then only positively rated answers), else
  not followed by a rephrased retry and not cut off.
- Duplicates removed before the split (:mod:`levers_cli.export.dedup`): exact (normalized
  text) and near (word-shingle Jaccard ≥ ``[export] lora_near_duplicate_jaccard``).
- Split by conversation (``conversation_id``, else the call): a conversation goes to
  validation when its BLAKE2b draw is below ``[export] lora_validation_share`` (at least one,
  at most ``lora_max_validation`` examples), so no conversation straddles the split.
- Redaction on by default (:mod:`levers_cli.redact`), counts per type in the card.
- ``README.md``: a dataset card (Hugging Face ``configs``/``data_files`` front matter) with
  counts, token statistics (the logged usage of each example's call: input + output −
  reasoning tokens), source period, redaction summary and the models the answers came from.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from levers_cli.export.common import ExportError, ExportResult, prepare_out_dir, write_jsonl
from levers_cli.export.dedup import duplicates
from levers_cli.redact import redact_value
from levers_cli.schema import CATEGORY_ID

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.store import Workspace

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def _text(content: Any) -> str:
    """Text of a message's content: a string, or the text of its parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content]
        return "\n".join(p for p in parts if p)
    return json.dumps(content, ensure_ascii=False)


def chat_example(messages: list[dict], system_prompt: str | None, answer: str) -> dict | None:
    """The chat-format example of one call, or ``None`` when it cannot make one (no user
    turn before the answer, or an empty answer).

    Args:
        messages: the logged request messages (role, content).
        system_prompt: the call's system prompt (used when no system message is logged).
        answer: the call's response text.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        role = ROLES.get(str(message.get("role")))
        text = _text(message.get("content")).strip()
        if role is None or not text:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"] += "\n\n" + text
        else:
            out.append({"role": role, "content": text})
    if system_prompt and not any(m["role"] == "system" for m in out):
        out.insert(0, {"role": "system", "content": system_prompt.strip()})
    if not answer.strip() or not out or out[-1]["role"] != "user":
        return None
    for message in out:
        if message["role"] == "assistant":
            message["weight"] = 0
    out.append({"role": "assistant", "content": answer.strip()})
    return {"messages": out}


def _examples(ws: Workspace, config: Config, categories: list[int]) -> pl.DataFrame:
    from levers_cli.levers.lora import load_calls

    frame = load_calls(ws, config).filter(pl.col(CATEGORY_ID).is_in(categories))
    ws.load_temp("_lora_calls", {"call_id": frame["call_id"].to_list()})
    rows = pl.from_arrow(
        ws.con.sql(
            """SELECT c.call_id, coalesce(c.conversation_id, c.call_id) AS conversation,
                      c.ts, c.messages::VARCHAR AS messages, c.system_prompt,
                      coalesce(c.response, '') AS response
               FROM calls c JOIN _lora_calls USING (call_id)"""
        ).to_arrow_table()
    )
    assert isinstance(rows, pl.DataFrame)
    return frame.join(rows, on="call_id").sort("ts", "call_id", nulls_last=True)


def _stats(tokens: list[int]) -> dict[str, Any]:
    if not tokens:
        return {"examples": 0, "tokens": 0}
    arr = np.asarray(tokens, dtype=float)
    return {
        "examples": len(tokens), "tokens": int(arr.sum()), "mean": round(float(arr.mean()), 1),
        "p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95)),
        "max": int(arr.max()),
    }  # fmt: skip


def _split(conversations: list[str], share: float, most: int, sizes: Counter) -> set[str]:
    """Validation conversations: draw < share, at least one (of two or more), ≤ most examples."""
    from levers_cli.levers.lora import draw

    order = sorted(set(conversations), key=draw)
    chosen = [c for c in order if draw(c) < share]
    if not chosen and len(order) > 1:
        chosen = order[:1]
    out: set[str] = set()
    total = 0
    for conv in chosen:
        if total + sizes[conv] <= most or not out:
            out.add(conv)
            total += sizes[conv]
    return out


def build_dataset(frame: pl.DataFrame, config: Config, redact: bool) -> dict[str, Any]:
    """Train/validation examples of one category's calls (time-ordered ``_examples`` rows).

    Returns:
        ``{"train": [...], "validation": [...], "counts": {...}, "redactions": {...},
        "tokens": {"train": stats, "validation": stats}, "models": {model: n},
        "period": (first ts, last ts)}``.
    """
    cfg = lambda key: config.get("export", key)  # noqa: E731
    counts: Counter[str] = Counter(calls=frame.height)
    accepted = frame.filter(pl.col("expensive") & pl.col("accepted"))
    expensive = frame.filter(pl.col("expensive"))
    counts["rejected_by_feedback"] = int((expensive["feedback"] == False).sum())  # noqa: E712
    counts["retried"] = int(expensive.filter(pl.col("feedback").is_null())["retried"].sum())
    redactions: Counter[str] = Counter()
    kept: list[tuple[dict, dict]] = []
    for row in accepted.iter_rows(named=True):
        example = chat_example(json.loads(row["messages"] or "[]"), row["system_prompt"],
                               row["response"])  # fmt: skip
        if example is None:
            counts["unusable"] += 1
            continue
        if redact:
            example = redact_value(example, redactions)
        kept.append((example, row))
    texts = ["\n".join(m["content"] for m in e["messages"]) for e, _ in kept]
    verdict = duplicates(
        texts, int(cfg("lora_shingle_words")), float(cfg("lora_near_duplicate_jaccard"))
    )
    counts.update(f"{v}_duplicates" for v in verdict if v)
    kept = [k for k, v in zip(kept, verdict, strict=True) if v is None]
    sizes = Counter(row["conversation"] for _, row in kept)
    validation = _split(
        [row["conversation"] for _, row in kept], float(cfg("lora_validation_share")),
        int(cfg("lora_max_validation")), sizes,
    )  # fmt: skip
    parts: dict[str, list] = {"train": [], "validation": []}
    for example, row in kept:
        parts["validation" if row["conversation"] in validation else "train"].append((example, row))
    times = [row["ts"] for _, row in kept if row["ts"] is not None]
    return {
        "train": [e for e, _ in parts["train"]],
        "validation": [e for e, _ in parts["validation"]],
        "counts": dict(counts, accepted=accepted.height, examples=len(kept),
                       conversations=len(sizes), validation_conversations=len(validation)),
        "redactions": dict(redactions),
        "tokens": {k: _stats([int(r["example_tokens"]) for _, r in v]) for k, v in parts.items()},
        "models": dict(Counter(row["model"] for _, row in kept).most_common()),
        "period": (min(times).isoformat(), max(times).isoformat()) if times else (None, None),
    }  # fmt: skip


def export_lora(
    ws: Workspace, config: Config, out_dir: str, *, force: bool = False,
    level: str = "expected", categories: list[int] | None = None, redact: bool = True,
) -> ExportResult:  # fmt: skip
    """Write ``lora/<category>/`` datasets into ``out_dir`` (see the module docstring).

    Args:
        level: export the lever's candidate categories at this level.
        categories: export these category ids instead.
        redact: pass every message through :func:`levers_cli.redact.redact_value`.

    Returns:
        An :class:`ExportResult`; ``details["datasets"]``: per category its counts, token
        statistics, models and period.

    Raises:
        ExportError: no category selected, an unknown category id, no usable example, or the
            folder unusable / an earlier export there without ``force``.
    """
    from levers_cli.export.card import dataset_card
    from levers_cli.levers.lora import LoraLever

    labels = dict(ws.con.execute("SELECT category_id, label FROM categories").fetchall())
    if categories:
        unknown = [c for c in categories if c not in labels]
        if unknown:
            raise ExportError(f"--category {unknown[0]}: no such category; see `levers report`")
        chosen = list(dict.fromkeys(categories))
    else:
        finding = LoraLever().analyze(ws, config)
        chosen = finding.details["candidate_categories"][level]
        if not chosen:
            raise ExportError(
                f"nothing to export: no category is a LoRA candidate at the {level} level "
                f"(it needs {config.get('lora', 'min_examples')[level]} accepted answers from "
                "expensive models); "
                + ("try --level aggressive or " if level != "aggressive" else "name one with ")
                + "--category ID"
            )
    frame = _examples(ws, config, chosen)
    out = prepare_out_dir(out_dir, ["lora"], force)
    folder = out / "lora"
    if folder.exists():
        shutil.rmtree(folder)
    result = ExportResult("lora", str(out))
    redactions: Counter[str] = Counter()
    datasets = {}
    for cid in chosen:
        data = build_dataset(frame.filter(pl.col(CATEGORY_ID) == cid), config, redact)
        if not data["train"]:
            result.notes.append(f"category {cid}: no usable accepted example; skipped")
            continue
        label = labels.get(cid) or f"category {cid}"
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40]
        target = folder / f"{cid}-{slug}"
        target.mkdir(parents=True)
        for split in ("train", "validation"):
            path = target / f"{split}.jsonl"
            result.add_file(path, write_jsonl(path, data[split]), category_id=cid)
        card = dataset_card(cid, label, data, config, redact)
        (target / "README.md").write_text(redact_value(card, Counter()), encoding="utf-8")
        result.add_file(target / "README.md", 1, category_id=cid)
        redactions.update(data["redactions"])
        datasets[str(cid)] = {k: data[k] for k in ("counts", "tokens", "models", "period")}
    if not datasets:
        raise ExportError("nothing to export: no selected category has a usable example")
    result.counts = {
        "categories": len(datasets),
        **{
            f"{split}_examples": sum(d["tokens"][split]["examples"] for d in datasets.values())
            for split in ("train", "validation")
        },
    }
    result.redactions = dict(redactions)
    result.details = {"datasets": datasets, "level": level}
    result.notes.append("redaction on" if redact else "redaction off (--no-redact)")
    return result
