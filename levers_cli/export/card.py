"""The dataset card (``README.md``) of one ``levers export lora`` dataset.

The front matter is Hugging Face's dataset-card metadata with ``configs`` → ``data_files``
naming the two splits (huggingface.co/docs/hub/datasets-manual-configuration), so
``datasets.load_dataset(folder)`` finds ``train`` and ``validation``; the body gives the counts,
token statistics, source period, redaction summary and the models the answers came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from levers_cli.config import Config

_FRONT = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: train.jsonl
  - split: validation
    path: validation.jsonl
task_categories:
- text-generation
---
"""


def _tokens_table(tokens: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| split | examples | tokens | mean | p50 | p95 | max |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for split, s in tokens.items():
        if not s["examples"]:
            lines.append(f"| {split} | 0 | 0 | | | | |")
            continue
        lines.append(
            f"| {split} | {s['examples']:,} | {s['tokens']:,} | {s['mean']:,} | {s['p50']:,.0f} "
            f"| {s['p95']:,.0f} | {s['max']:,} |"
        )
    return lines


def dataset_card(
    category_id: int, label: str, data: dict[str, Any], config: Config, redact: bool
) -> str:
    """The card's Markdown.

    Args:
        category_id, label: the category.
        data: :func:`levers_cli.export.lora.build_dataset`'s result.
        redact: whether redaction was on (said in the card).
    """
    c = data["counts"]
    cfg = lambda key: config.get("export", key)  # noqa: E731
    first, last = data["period"]
    models = ", ".join(f"`{m}` ({n:,})" for m, n in data["models"].items()) or "none"
    redactions = (
        ", ".join(f"{k} {v:,}" for k, v in sorted(data["redactions"].items())) or "nothing found"
    )
    lines = [
        _FRONT,
        f"# Fine-tuning data: category {category_id} ({label})",
        "",
        'Chat-format JSONL (`{"messages": [{"role", "content"}]}`) for OpenAI fine-tuning '
        "and TRL's `SFTTrainer` (conversational format). Exported by `levers export lora` from "
        "logged calls: each example is one call's system prompt, conversation so far (earlier "
        'assistant turns carry `"weight": 0`) and its answer.',
        "",
        "## Source",
        "",
        f"- Period: {first or 'unknown'} to {last or 'unknown'} (UTC, request times).",
        f"- Answers from: {models}.",
        f"- Target: `{config.get('lora', 'model')}` (the LoRA lever's `[lora] model`).",
        "",
        "## Counts",
        "",
        f"- Calls in the category: {c['calls']:,}; accepted answers from models pricier than "
        f"the target: {c['accepted']:,}.",
        f"- Left out: rejected by user feedback {c.get('rejected_by_feedback', 0):,}, followed "
        f"by a rephrased retry {c.get('retried', 0):,}, unusable (no user turn or empty answer) "
        f"{c.get('unusable', 0):,}.",
        f"- Duplicates removed: exact {c.get('exact_duplicates', 0):,}, near "
        f"{c.get('near_duplicates', 0):,} (word {cfg('lora_shingle_words')}-gram shingles, "
        f"Jaccard ≥ {cfg('lora_near_duplicate_jaccard')}, MinHash candidates checked exactly).",
        f"- Examples: {c['examples']:,} from {c['conversations']:,} conversations; validation: "
        f"{c['validation_conversations']:,} whole conversations (share "
        f"{cfg('lora_validation_share')}, none straddles the split).",
        "",
        "## Tokens",
        "",
        "Logged usage of each example's call (input + output − reasoning tokens).",
        "",
        *_tokens_table(data["tokens"]),
        "",
        "## Redaction",
        "",
        (
            "On: emails, phone numbers, card numbers, API keys, bearer tokens and secrets "
            f"were replaced by typed placeholders such as `[EMAIL]`. Replaced: {redactions}."
            if redact
            else "Off (`--no-redact`): the text is as logged; do not share it outside the "
            "account the logs came from."
        ),
        "",
        "## Use",
        "",
        "- OpenAI: upload `train.jsonl` and `validation.jsonl` with purpose `fine-tune`, then "
        "create a job with `training_file` and `validation_file`.",
        '- TRL: `load_dataset("json", data_files={"train": "train.jsonl", "validation": '
        '"validation.jsonl"})`, then `SFTTrainer(..., train_dataset=ds["train"])`.',
    ]
    return "\n".join(lines) + "\n"
