"""Human tier labels for routing (the seed's "log 1,000 queries, classify manually").

``levers export label-sheet`` writes a CSV of distinct queries sampled across categories (seeded,
round-robin so small categories are labelled too) with the tier the routing lever predicts and
an empty ``tier`` column; ``read_labels`` folds the filled column back into the workspace
table ``tier_labels(query_hash, tier)``, which the routing lever then uses as evidence.
The sheet is written by :mod:`levers_cli.export.label_sheet`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from levers_cli.errors import InputFileError, LeversError
from levers_cli.schema import CATEGORY_ID

if TYPE_CHECKING:
    from levers_cli.store import Workspace

TABLE = "tier_labels"
DDL = f"CREATE TABLE IF NOT EXISTS {TABLE} (query_hash VARCHAR PRIMARY KEY, tier VARCHAR)"
SHEET_COLUMNS = ("query", CATEGORY_ID, "category", "predicted_tier", "tier", "query_hash")
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


def labelled_queries_sql(ws: Workspace) -> str:
    """SQL selecting the ``query_hash`` of every labelled query (creates the empty table
    first when there is none; in a read-only workspace, a query of no rows instead)."""
    if getattr(ws, "read_only", False):
        exists = ws.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [TABLE]
        ).fetchall()
        if not exists[0][0]:
            return "SELECT NULL::VARCHAR AS query_hash WHERE false"
        return f"SELECT query_hash FROM {TABLE}"
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


__all__ = [
    "SHEET_COLUMNS",
    "LabelSheetError",
    "labelled_queries_sql",
    "load_labels",
    "read_labels",
]
