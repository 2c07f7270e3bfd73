"""``levers export cache-pairs``: a CSV of the semantic cache's candidate pairs — a query,
the earlier query whose answer the cache would serve, both answers and their similarity —
sampled across categories (seeded, round-robin so small categories are labelled too), with an
empty ``verdict`` column for a person to fill with ``same`` or ``different``; ``levers label``
reads it back (:func:`levers_cli.levers.caching.pairs.read_verdicts`) and the caching lever
calibrates each category's threshold on the verdicts.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from levers_cli.config import Config, load_config
from levers_cli.levers.caching import PAIR_SHEET_COLUMNS, candidate_pairs, load_verdicts
from levers_cli.redact import redact
from levers_cli.schema import CATEGORY_ID

if TYPE_CHECKING:
    from levers_cli.store import Workspace


def export_cache_pairs(
    ws: Workspace,
    path: str | Path,
    n: int = 500,
    *,
    config: Config | None = None,
    seed: int | None = None,
    redacted: bool = True,
) -> int:
    """Write up to ``n`` candidate pairs not yet judged to a CSV sheet.

    Log text (both queries and both answers) is redacted (:func:`levers_cli.redact.redact`)
    unless ``redacted`` is False; the ``query_hash`` and ``cached_query_hash`` columns bring
    the verdicts back to the right pairs either way.

    Sampling: pairs are shuffled with ``seed`` (default ``[routing] label_seed``) and taken
    round-robin over categories, so every category is represented before any gets a second
    pair.

    Args:
        ws: an analyzed workspace (categories and query embeddings).
        path: the CSV to write (columns :data:`~levers_cli.levers.caching.PAIR_SHEET_COLUMNS`;
            ``verdict`` empty); its folder is created when missing.
        n: pairs wanted.
        config: the effective config (default: :func:`levers_cli.config.load_config`).
        seed: the sampling seed.

    Returns:
        Rows written.

    Raises:
        WorkspaceError: the workspace is not fully analyzed
            (:meth:`~levers_cli.store.Workspace.require_analysis`).
    """
    ws.require_analysis()
    config = config or load_config()
    seed = int(config.get("routing", "label_seed")) if seed is None else seed
    judged = load_verdicts(ws)
    rows = [
        r
        for r in candidate_pairs(ws, config)
        if (r["query_hash"], r["cached_query_hash"]) not in judged
    ]
    names = dict(ws.con.execute("SELECT category_id, label FROM categories").fetchall())
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows)).tolist()
    rank: dict[object, int] = {}
    keyed = []
    for k in order:
        category = rows[k][CATEGORY_ID]
        rank[category] = rank.get(category, -1) + 1
        keyed.append((rank[category], str(category), k))
    chosen = [rows[k] for _, _, k in sorted(keyed)[: max(n, 0)]]

    def text(value: str | None) -> str:
        value = value or ""
        return redact(value).text if redacted else value

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(PAIR_SHEET_COLUMNS)
        for row in chosen:
            writer.writerow(
                [
                    row[CATEGORY_ID],
                    names.get(row[CATEGORY_ID]) or "",
                    row["similarity"],
                    text(row["query"]),
                    text(row["cached_query"]),
                    text(row["answer"]),
                    text(row["cached_answer"]),
                    "",
                    row["query_hash"],
                    row["cached_query_hash"],
                ]
            )
    return len(chosen)


__all__ = ["export_cache_pairs"]
