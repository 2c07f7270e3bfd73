"""The quality loop's tables (:mod:`levers_cli.schema`): ``quality_requests`` (what a shadow
or judge export wrote, by ``custom_id``), ``variants`` (shadow answers paired with their
original call) and ``grades`` (a judge's verdict on a variant).

None of them is production traffic: spend, categories and run rates read ``calls`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from levers_cli.store import Workspace

REQUEST_COLUMNS = (
    "custom_id",
    "kind",
    "call_id",
    "lever",
    "variant",
    "target_model",
    "variant_id",
    "mode",
    "swapped",
    "judge_model",
)
VARIANT_COLUMNS = (
    "variant_id",
    "call_id",
    "lever",
    "variant",
    "target_model",
    "provider",
    "response",
    "input_tokens",
    "output_tokens",
    "status",
    "error",
    "source_file",
    "source_line",
    "run_id",
)
GRADE_COLUMNS = (
    "custom_id",
    "variant_id",
    "call_id",
    "mode",
    "swapped",
    "judge_model",
    "score",
    "verdict",
    "judgment",
    "source_file",
    "source_line",
    "run_id",
)

#: A call's feature: the app feature ``levers analyze`` found (``calls.feature``: a logged
#: tag, else the prompt template: :mod:`levers_cli.cluster.features`), else ``metadata.feature``
#: as logged (top level or the request's own ``metadata``), else ``(none)``.
FEATURE_SQL = (
    "coalesce(c.feature, json_extract_string(c.metadata, '$.feature'), "
    "json_extract_string(c.metadata, '$.params.metadata.feature'), '(none)')"
)


def _upsert(
    ws: Workspace, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> int:
    """Insert or replace ``rows`` keyed by their first column (a later row of one key
    replaces the earlier), in one bulk load (``executemany`` inserts row by row)."""
    if not rows:
        return 0
    last = {row[0]: row for row in rows}
    values = list(last.values())
    ws.load_temp("_q_rows", {c: [r[i] for r in values] for i, c in enumerate(columns)})
    names = ", ".join(columns)
    ws.con.execute(f"INSERT OR REPLACE INTO {table} ({names}) SELECT {names} FROM _q_rows")
    ws.con.execute("DROP TABLE _q_rows")
    return len(values)


def register_requests(ws: Workspace, rows: Sequence[dict[str, Any]]) -> int:
    """Record the requests an export wrote (dicts keyed by :data:`REQUEST_COLUMNS`, missing
    keys ``None``), so ``analyze`` recognizes their results by ``custom_id``."""
    now = datetime.now(UTC)
    values = [[r.get(c) for c in REQUEST_COLUMNS] + [now] for r in rows]
    return _upsert(ws, "quality_requests", (*REQUEST_COLUMNS, "exported_at"), values)


def store_variants(ws: Workspace, rows: Sequence[dict[str, Any]]) -> int:
    """Insert or replace variants (dicts keyed by :data:`VARIANT_COLUMNS`)."""
    return _upsert(
        ws, "variants", VARIANT_COLUMNS, [[r.get(c) for c in VARIANT_COLUMNS] for r in rows]
    )


def store_grades(ws: Workspace, rows: Sequence[dict[str, Any]]) -> int:
    """Insert or replace grades (dicts keyed by :data:`GRADE_COLUMNS`)."""
    return _upsert(ws, "grades", GRADE_COLUMNS, [[r.get(c) for c in GRADE_COLUMNS] for r in rows])


def known_requests(ws: Workspace, custom_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The registered requests among ``custom_ids``, by custom id."""
    if not custom_ids:
        return {}
    ws.load_temp("_q_ids", {"custom_id": list(dict.fromkeys(custom_ids))})
    cursor = ws.con.execute(
        f"SELECT {', '.join('r.' + c for c in REQUEST_COLUMNS)} FROM quality_requests r "
        "JOIN _q_ids USING (custom_id)"
    )
    return {row[0]: dict(zip(REQUEST_COLUMNS, row, strict=True)) for row in cursor.fetchall()}


def pairs(ws: Workspace, lever: str | None = None) -> list[dict[str, Any]]:
    """Every answered variant with its original call: ``variant_id``, ``call_id``,
    ``feature``, ``category_id``, ``category`` (label), ``lever``, ``variant``,
    ``target_model``, ``model`` (the original's), ``query``, ``original`` and ``answer``
    (response texts), ordered by feature, category, call."""
    where = "AND v.lever = ?" if lever else ""
    cursor = ws.con.execute(
        f"""SELECT v.variant_id, v.call_id, {FEATURE_SQL} AS feature,
                   coalesce(c.category_id, -1) AS category_id, k.label AS category, v.lever,
                   v.variant, v.target_model, c.model, c.query, c.response AS original,
                   v.response AS answer
            FROM variants v JOIN calls c USING (call_id)
            LEFT JOIN categories k ON k.category_id = c.category_id
            WHERE v.status = 'ok' AND v.response IS NOT NULL {where}
            ORDER BY feature, category_id, v.call_id, v.variant_id""",
        [lever] if lever else [],
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def grades_by_variant(ws: Workspace) -> dict[str, list[dict[str, Any]]]:
    """Every grade, grouped by ``variant_id`` (dicts keyed by :data:`GRADE_COLUMNS`)."""
    cursor = ws.con.execute(f"SELECT {', '.join(GRADE_COLUMNS)} FROM grades ORDER BY custom_id")
    out: dict[str, list[dict[str, Any]]] = {}
    for row in cursor.fetchall():
        grade = dict(zip(GRADE_COLUMNS, row, strict=True))
        out.setdefault(grade["variant_id"], []).append(grade)
    return out
