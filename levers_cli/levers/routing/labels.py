"""Human tier labels for routing (the seed's "log 1,000 queries, classify manually").

``export_label_sheet`` writes a CSV of distinct queries sampled across categories (seeded,
round-robin so small categories are labelled too) with the tier the routing lever predicts and
an empty ``tier`` column; ``read_labels`` folds the filled column back into the workspace
table ``tier_labels(query_hash, tier)``, which the routing lever then uses as evidence.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from levers_cli.errors import InputFileError, LeversError
from levers_cli.redact import redact

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.store import Workspace

TABLE = "tier_labels"
DDL = f"CREATE TABLE IF NOT EXISTS {TABLE} (query_hash VARCHAR PRIMARY KEY, tier VARCHAR)"
SHEET_COLUMNS = ("query", "category_id", "category", "predicted_tier", "tier", "query_hash")
#: Spellings accepted in the ``tier`` column (any case), by the tier they mean.
TIER_WORDS = {
    "cheap": "cheap",
    "weak": "cheap",
    "small": "cheap",
    "easy": "cheap",
    "c": "cheap",
    "strong": "strong",
    "large": "strong",
    "hard": "strong",
    "s": "strong",
}


class LabelSheetError(LeversError):
    """A label sheet lacks a needed column or holds a tier that is neither cheap nor strong."""


def load_labels(ws: Workspace) -> pl.DataFrame:
    """``query_hash``, ``tier`` (``cheap`` / ``strong``) of every label; empty without any."""
    exists = ws.con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [TABLE]
    ).fetchall()
    if not exists[0][0]:
        return pl.DataFrame(schema={"query_hash": pl.String, "tier": pl.String})
    frame = pl.from_arrow(ws.con.sql(f"SELECT query_hash, tier FROM {TABLE}").to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


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
        path: the CSV to write (columns :data:`SHEET_COLUMNS`; ``tier`` empty).
        n: queries wanted.
        config: the effective config (default: :func:`levers_cli.config.load_config`).
        seed: the sampling seed.

    Returns:
        Rows written.
    """
    from levers_cli.config import load_config
    from levers_cli.levers.routing import RoutingLever

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
                  AND c.query_hash NOT IN (SELECT query_hash FROM ({_labels_sql(ws)}))
                ORDER BY c.call_id"""
        ).to_arrow_table()
    )
    assert isinstance(calls, pl.DataFrame)
    calls = calls.join(predicted, on="call_id", how="left")
    queries = calls.group_by("query_hash", maintain_order=True).agg(
        pl.col("query").first(),
        pl.col("category_id").first(),
        pl.col("category").first(),
        pl.col("route_expected").any().alias("routed"),
        (pl.col("forced") == "strong").any().alias("strong"),
    )
    rng = np.random.default_rng(seed)
    sample = (
        queries.with_columns(pl.Series("_r", rng.permutation(queries.height)))
        .sort("_r")
        .with_columns(pl.int_range(pl.len()).over("category_id").alias("_k"))
        .sort("_k", "category_id")
        .head(max(n, 0))
    )
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(SHEET_COLUMNS)
        for row in sample.iter_rows(named=True):
            cheap = row["routed"] or (row["category_id"] in below and not row["strong"])
            tier = "cheap" if cheap else "strong"
            writer.writerow(
                [
                    # the sheet leaves the workspace: redacted (rows come back by query_hash)
                    redact(row["query"]).text if redacted else row["query"],
                    row["category_id"],
                    row["category"] or "",
                    tier,
                    "",
                    row["query_hash"],
                ]
            )
    return sample.height


def _labels_sql(ws: Workspace) -> str:
    ws.con.execute(DDL)
    return f"SELECT query_hash FROM {TABLE}"


def read_labels(ws: Workspace, path: str | Path) -> int:
    """Fold a filled label sheet's ``tier`` column into ``tier_labels`` (a later label of the
    same query replaces the earlier one; rows with an empty ``tier`` are skipped).

    Rows are matched by ``query_hash`` when the sheet has it, else by hashing ``query`` as
    ingest does.

    Returns:
        Labels stored.

    Raises:
        InputFileError: the file does not exist or is not UTF-8 CSV.
        LabelSheetError: no ``tier`` column, neither ``query_hash`` nor ``query``, or a tier
            that is not one of :data:`TIER_WORDS`.
    """
    from levers_cli.text.query import query_hash

    labels: dict[str, str] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = set(reader.fieldnames or [])
            if "tier" not in fields or not fields & {"query_hash", "query"}:
                raise LabelSheetError(
                    f"{path}: a label sheet needs a 'tier' column and 'query_hash' or 'query' "
                    f"(found: {', '.join(sorted(fields)) or 'no header'})"
                )
            start = reader.line_num + 1  # the physical line a record starts on (a quoted
            for row in reader:  # query may span lines, so records and lines differ)
                line, start = start, reader.line_num + 1
                word = (row.get("tier") or "").strip().lower()
                if not word:
                    continue
                if word not in TIER_WORDS:
                    raise LabelSheetError(
                        f"{path}:{line}: tier {row['tier']!r} is neither cheap nor strong "
                        f"(accepted: {', '.join(TIER_WORDS)})"
                    )
                key = (row.get("query_hash") or "").strip() or query_hash(row.get("query"))
                labels[key] = TIER_WORDS[word]
    except FileNotFoundError:
        raise InputFileError(str(path), "no such label sheet") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(str(path), f"not UTF-8 text ({exc.reason})") from None
    ws.con.execute(DDL)
    if labels:
        ws.con.executemany(f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?)", list(labels.items()))
    return len(labels)


__all__ = ["SHEET_COLUMNS", "LabelSheetError", "export_label_sheet", "load_labels", "read_labels"]
