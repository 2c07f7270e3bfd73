"""Labelled pairs for the semantic cache: a person's same/different verdicts on candidate
pairs (a query and the earlier query whose answer the cache would serve).

``levers export cache-pairs`` writes the candidates as a CSV sheet
(:mod:`levers_cli.export.cache_pairs`, rows from :func:`candidate_pairs`) with an empty
``verdict`` column; ``levers label`` reads the filled sheet back with :func:`read_verdicts`
into the workspace table ``cache_pair_labels(query_hash, cached_query_hash, same)``, and the
caching lever calibrates each category's threshold on them
(:mod:`~levers_cli.levers.caching.calibration`).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from levers_cli.errors import InputFileError, LeversError
from levers_cli.schema import CATEGORY_ID

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.store import Workspace

TABLE = "cache_pair_labels"
DDL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (query_hash VARCHAR, cached_query_hash VARCHAR, "
    "same BOOLEAN, PRIMARY KEY (query_hash, cached_query_hash))"
)
SHEET_COLUMNS = (
    CATEGORY_ID,
    "category",
    "similarity",
    "query",
    "cached_query",
    "answer",
    "cached_answer",
    "verdict",
    "query_hash",
    "cached_query_hash",
)
#: Spellings accepted in the ``verdict`` column (any case): would the cached answer do?
VERDICT_WORDS = {
    "same": True,
    "s": True,
    "yes": True,
    "y": True,
    "ok": True,
    "different": False,
    "diff": False,
    "d": False,
    "no": False,
    "n": False,
}


class PairSheetError(LeversError):
    """A cache-pair sheet lacks a needed column or holds a verdict that is neither same nor
    different."""


def is_pair_sheet(fields: set[str]) -> bool:
    """Whether a label sheet's header is a cache-pair sheet's (it has ``verdict``)."""
    return "verdict" in fields


def load_verdicts(ws: Workspace) -> dict[tuple[str, str], bool]:
    """``(query_hash, cached_query_hash)`` → same answer, for every stored verdict."""
    exists = ws.con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [TABLE]
    ).fetchall()
    if not exists[0][0]:
        return {}
    rows = ws.con.execute(f"SELECT query_hash, cached_query_hash, same FROM {TABLE}").fetchall()
    return {(a, b): bool(same) for a, b, same in rows}


def read_verdicts(ws: Workspace, path: str | Path) -> int:
    """Fold a filled cache-pair sheet's ``verdict`` column into ``cache_pair_labels`` (a later
    verdict on the same pair replaces the earlier one; empty verdicts are skipped).

    Returns:
        Verdicts stored.

    Raises:
        InputFileError: the file does not exist or is not UTF-8 CSV.
        PairSheetError: no ``verdict``, ``query_hash`` or ``cached_query_hash`` column, or a
            verdict that is not one of :data:`VERDICT_WORDS`.
    """
    verdicts: dict[tuple[str, str], bool] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = set(reader.fieldnames or [])
            needed = {"verdict", "query_hash", "cached_query_hash"}
            if not needed <= fields:
                raise PairSheetError(
                    f"{path}: a cache-pair sheet needs the columns "
                    f"{', '.join(sorted(needed))} (found: {', '.join(sorted(fields)) or 'none'})"
                )
            start = reader.line_num + 1
            for row in reader:
                line, start = start, reader.line_num + 1
                word = (row.get("verdict") or "").strip().lower()
                if not word:
                    continue
                if word not in VERDICT_WORDS:
                    raise PairSheetError(
                        f"{path}:{line}: verdict {row['verdict']!r} is neither same nor "
                        f"different (accepted: {', '.join(VERDICT_WORDS)})"
                    )
                key = (row["query_hash"].strip(), row["cached_query_hash"].strip())
                verdicts[key] = VERDICT_WORDS[word]
    except FileNotFoundError:
        raise InputFileError(str(path), "no such label sheet") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(str(path), f"not UTF-8 text ({exc.reason})") from None
    ws.con.execute(DDL)
    if verdicts:
        ws.con.executemany(
            f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?)",
            [(a, b, same) for (a, b), same in verdicts.items()],
        )
    return len(verdicts)


def candidate_pairs(ws: Workspace, config: Config) -> list[dict[str, Any]]:
    """Every candidate pair of the semantic cache at the expected level's TTL: each
    single-turn call that is not an exact repeat and its best earlier match the guards allow,
    at or above the lowest threshold of ``[caching] semantic_sweep``; one row per distinct
    pair of queries (its first occurrence), in time order: ``category_id``, ``similarity``,
    ``query``, ``cached_query``, ``answer``, ``cached_answer``, ``query_hash``,
    ``cached_query_hash`` (log text as logged: the exporter redacts it)."""
    from levers_cli.levers.caching.calls import exact_hits, load_calls
    from levers_cli.levers.caching.semantic import best_matches

    calls = load_calls(ws, config.get("caching", "label_key"))
    ttl = config.get("caching", "exact_ttl_seconds")
    ttl = float(ttl["expected"] if isinstance(ttl, dict) else ttl)
    floor = min(float(t) for t in config.get("caching", "semantic_sweep"))
    exact, _ = exact_hits(calls.exact_keys, calls.t, calls.ok, ttl)
    m = best_matches(
        calls.vectors, calls.eligible, calls.partition, calls.t, calls.ok, calls.guards,
        ttl, floor,
    )  # fmt: skip
    rows, seen = [], set()
    for i in np.flatnonzero(calls.eligible & ~exact & (m.source >= 0)).tolist():
        j = int(m.source[i])
        key = (calls.query_hash[i] or "", calls.query_hash[j] or "")
        if key in seen or key[0] == key[1]:
            continue
        seen.add(key)
        rows.append(
            {
                CATEGORY_ID: calls.category[i],
                "similarity": round(float(m.sim[i]), 4),
                "query": calls.query[i],
                "cached_query": calls.query[j],
                "answer": calls.response[i],
                "cached_answer": calls.response[j],
                "query_hash": key[0],
                "cached_query_hash": key[1],
            }
        )
    return rows


__all__ = [
    "SHEET_COLUMNS",
    "VERDICT_WORDS",
    "PairSheetError",
    "candidate_pairs",
    "is_pair_sheet",
    "load_verdicts",
    "read_verdicts",
]
