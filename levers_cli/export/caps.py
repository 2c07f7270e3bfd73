"""``levers export caps``: the caps lever's table as settings a client applies per category.

One row per cap group of :func:`levers_cli.levers.caps.cap_table` (a category and the model
family serving it; see that module for why not per category alone):

- ``max_tokens``: the cap at the chosen level (the level's output-token percentile, rounded
  up; evidence from the logs' ``output_tokens``). For OpenAI reasoning models send it as
  ``max_completion_tokens`` (it counts reasoning tokens too; OpenAI API reference, Chat
  Completions).
- ``instruction_suffix``: ``"Answer directly in at most N words."`` with N = the visible part
  of the cap (cap × the group's share of output that is not reasoning) × ``[export]
  caps_words_per_token`` (OpenAI Help Center, "What are tokens and how to count them?":
  a token is about ¾ of an English word), rounded down to a multiple of 5 from 10 words on —
  a budget that fits under the cap, so the instruction shortens answers before the cap cuts
  them.
- ``instruction``: the lever's instruction ("answer directly" for simple groups, "be
  concise" otherwise); ``reasoning_effort``: ``low`` for simple groups, empty = leave as is
  (applies to reasoning models only: OpenAI ``reasoning_effort``).
- ``expected_truncation_share``: share of the group's logged calls whose output exceeds the
  cap (evidence: they would have been cut); ``truncated_share_now``: ``finish_reason =
  length`` today.

Files: ``caps.csv`` (one row per group), ``caps.json`` and ``caps.yaml`` (the same rows
under a header naming the level, the source and what rests on what). Labels are redacted
(:mod:`levers_cli.redact`) like every text that leaves the workspace.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from levers_cli.export.common import (
    ExportError,
    ExportResult,
    prepare_out_dir,
    write_csv,
    write_json,
    write_yaml,
)
from levers_cli.levers.caps import word_budget
from levers_cli.redact import redact_value
from levers_cli.schema import CATEGORY_ID

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.store import Workspace

FILES = ("caps.csv", "caps.json", "caps.yaml")
COLUMNS = (
    CATEGORY_ID, "label", "model", "calls", "max_tokens", "instruction_suffix", "words",
    "instruction", "reasoning_effort", "expected_truncation_share", "truncated_share_now",
    "p50", "p95", "p99", "max_tokens_now",
)  # fmt: skip


def cap_rows(ws: Workspace, config: Config, level: str) -> list[dict[str, Any]]:
    """The export rows (see :data:`COLUMNS`), largest output spend first.

    Raises:
        ExportError: no category has ``[caps] min_calls`` calls.
    """
    from levers_cli.levers.caps import cap_table

    table = cap_table(ws, config)
    if not table:
        raise ExportError(
            "nothing to export: no category has enough calls for a cap "
            f"([caps] min_calls = {config.get('caps', 'min_calls')})"
        )
    per_word = float(config.get("export", "caps_words_per_token"))
    rows = []
    for row in table:
        output = row["mean_output"] * row["calls"]
        visible = 1.0 - row["reasoning_tokens"] / output if output else 1.0
        cap = int(row["cap"][level])
        words = word_budget(cap, max(visible, 0.05), per_word)
        rows.append({
            CATEGORY_ID: row[CATEGORY_ID], "label": row["label"], "model": row["model"],
            "calls": row["calls"], "max_tokens": cap,
            "instruction_suffix": f"Answer directly in at most {words} words.", "words": words,
            "instruction": row["instruction"], "reasoning_effort": row["reasoning_effort"],
            "expected_truncation_share": row["cut_share"][level],
            "truncated_share_now": row["truncated_share"],
            "p50": row["p50"], "p95": row["p95"], "p99": row["p99"],
            "max_tokens_now": row["max_tokens_now"],
        })  # fmt: skip
    return rows


def export_caps(
    ws: Workspace, config: Config, out_dir: str, *, force: bool = False,
    level: str = "expected", redact: bool = True,
) -> ExportResult:  # fmt: skip
    """Write ``caps.csv``, ``caps.json`` and ``caps.yaml`` into ``out_dir``.

    Args:
        level: which percentile's cap (``[caps] percentile``).
        redact: pass labels through :func:`levers_cli.redact.redact_value`.

    Returns:
        An :class:`ExportResult`; ``counts``: groups, categories, calls.

    Raises:
        ExportError: no cap group, or the folder unusable / an earlier export without force.
    """
    rows = cap_rows(ws, config, level)
    counts: Counter[str] = Counter()
    if redact:
        rows = redact_value(rows, counts)
    out = prepare_out_dir(out_dir, FILES, force)
    percentile = config.get("caps", "percentile")[level]
    document = {
        "level": level,
        "cap": f"p{percentile} of the group's logged output tokens, rounded up to a multiple "
        f"of {config.get('caps', 'round_up_to')} (evidence)",
        "words": f"visible share of the cap × {config.get('export', 'caps_words_per_token')} "
        "words per token (OpenAI: a token is about 3/4 of a word; assumption)",
        "expected_truncation_share": "logged calls whose output exceeds the cap (evidence)",
        "caps": rows,
    }
    result = ExportResult("caps", str(out))
    paths = [out / name for name in FILES]
    write_csv(paths[0], COLUMNS, ([r[c] for c in COLUMNS] for r in rows))
    write_json(paths[1], document)
    write_yaml(paths[2], document)
    for path in paths:
        result.add_file(path, len(rows))
    result.counts = {
        "groups": len(rows),
        "categories": len({r[CATEGORY_ID] for r in rows}),
        "calls": sum(r["calls"] for r in rows),
    }
    result.redactions = dict(counts)
    result.notes.append(f"caps at the {level} level (p{percentile} of logged output tokens)")
    return result
