"""``levers export label-sheet``: a CSV of distinct queries sampled across categories (seeded,
round-robin so small categories are labelled too) with the tier the routing lever predicts and
an empty ``tier`` column, for a person to fill; ``levers label`` reads it back
(:func:`levers_cli.levers.routing.read_labels`).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from levers_cli.config import Config, load_config
from levers_cli.export.common import ExportError
from levers_cli.levers.routing import SHEET_COLUMNS, RoutingLever, labelled_queries_sql
from levers_cli.redact import redact
from levers_cli.schema import CATEGORY_ID

if TYPE_CHECKING:
    from levers_cli.store import Workspace


def export_label_sheet(
    ws: Workspace,
    path: str | Path,
    n: int = 1000,
    *,
    config: Config | None = None,
    seed: int | None = None,
    redacted: bool = True,
) -> int:
    """Write up to ``n`` distinct, not yet labelled, categorized queries to a CSV sheet.

    Queries are redacted (:func:`levers_cli.redact.redact`) unless ``redacted`` is False; the
    sheet's ``query_hash`` column brings the labels back to the right queries either way.

    Sampling: queries are shuffled with ``seed`` (default ``[routing] label_seed``) and taken
    round-robin over categories (the first of each category, then the second …), so every
    category is represented before any gets a second query.

    Args:
        ws: an analyzed workspace (categories assigned).
        path: the CSV to write (columns :data:`SHEET_COLUMNS`; ``tier`` empty); its folder
            is created when missing.
        n: queries wanted.
        config: the effective config (default: :func:`levers_cli.config.load_config`).
        seed: the sampling seed.

    Returns:
        Rows written.

    Raises:
        WorkspaceError: the workspace is not fully analyzed
            (:meth:`~levers_cli.store.Workspace.require_analysis`).
        ExportError: the sheet cannot be written.
    """
    ws.require_analysis()
    config = config or load_config()
    seed = int(config.get("routing", "label_seed")) if seed is None else seed
    finding = RoutingLever().analyze(ws, config)
    assert finding.per_call is not None
    predicted = finding.per_call.select("call_id", "route_expected", "forced")
    below = set(finding.details["levels"]["expected"]["categories_below_threshold"])
    calls = pl.from_arrow(
        ws.con.sql(
            f"""SELECT c.call_id, c.query_hash, c.query, c.category_id, k.label AS category
                FROM calls c LEFT JOIN categories k USING (category_id)
                WHERE c.category_id >= 0 AND c.query IS NOT NULL AND trim(c.query) <> ''
                  AND c.query_hash NOT IN (SELECT query_hash FROM ({labelled_queries_sql(ws)}))
                ORDER BY c.call_id"""
        ).to_arrow_table()
    )
    assert isinstance(calls, pl.DataFrame)
    calls = calls.join(predicted, on="call_id", how="left")
    queries = calls.group_by("query_hash", maintain_order=True).agg(
        pl.col("query").first(),
        pl.col(CATEGORY_ID).first(),
        pl.col("category").first(),
        pl.col("route_expected").any().alias("routed"),
        (pl.col("forced") == "strong").any().alias("strong"),
    )
    rng = np.random.default_rng(seed)
    sample = (
        queries.with_columns(pl.Series("_r", rng.permutation(queries.height)))
        .sort("_r")
        .with_columns(pl.int_range(pl.len()).over(CATEGORY_ID).alias("_k"))
        .sort("_k", CATEGORY_ID)
        .head(max(n, 0))
    )
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(SHEET_COLUMNS)
            for row in sample.iter_rows(named=True):
                cheap = row["routed"] or (row[CATEGORY_ID] in below and not row["strong"])
                tier = "cheap" if cheap else "strong"
                writer.writerow(
                    [
                        # the sheet leaves the workspace: redacted (rows come back by query_hash)
                        redact(row["query"]).text if redacted else row["query"],
                        row[CATEGORY_ID],
                        row["category"] or "",
                        tier,
                        "",
                        row["query_hash"],
                    ]
                )
    except OSError as exc:
        raise ExportError(f"{path}: cannot write ({exc.strerror})") from None
    return sample.height


__all__ = ["export_label_sheet"]
