"""The category map: a 2-D projection of the stored query embeddings, one point per
distinct query (sampled to at most ``[report] map_points``), coloured by category.

Projection: PCA (scikit-learn) by default — deterministic, instant on 5,000 × 384 vectors and
linear, so a point's place is a weighted sum of its embedding and re-running the report
draws the same map; ``[report] map_projection = "umap"`` uses UMAP (umap-learn, cosine), which
separates the categories more clearly — it is how ``analyze`` clusters — at the cost of
numba's start-up and a few seconds per thousand points on two cores, and a layout that
depends on its random state. Source: scikit-learn ``sklearn.decomposition.PCA``;
umap-learn ``umap.UMAP`` (McInnes et al. 2018, arXiv:1802.03426).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from levers_cli.config import CHOICES
from levers_cli.schema import CATEGORY_ID, UNCATEGORIZED
from levers_cli.store import Workspace
from levers_cli.text.content import shorten

_PROJECTIONS = CHOICES["report.map_projection"]


def project(vectors: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """``(n, d) float32`` embeddings → ``(n, 2) float64`` map coordinates.

    Raises:
        ValueError: ``method`` is neither ``pca`` nor ``umap``.
    """
    if method not in _PROJECTIONS:
        raise ValueError(f"map projection {method!r}: choose pca or umap")
    n = len(vectors)
    if n == 0:
        return np.zeros((0, 2))
    if n < 3:  # too few points to project: lay them on a line
        return np.column_stack([np.arange(n, dtype=float), np.zeros(n)])
    if method == "umap" and n > 15:
        from umap import UMAP

        reducer = UMAP(n_components=2, metric="cosine", random_state=seed, n_neighbors=15)
        return np.asarray(reducer.fit_transform(vectors), dtype=float)
    from sklearn.decomposition import PCA

    return np.asarray(PCA(n_components=2, random_state=seed).fit_transform(vectors), dtype=float)


def map_points(
    ws: Workspace, max_points: int = 5000, method: str = "pca", text_chars: int = 240
) -> dict[str, Any]:
    """Points of the category map for the embedder the categories were made with.

    Returns:
        ``{"projection", "embedder", "distinct_queries", "sampled", "points": [{"x", "y",
        "category_id", "label", "calls", "text"}]}``; ``text`` is the query (not yet
        redacted, at most ``text_chars`` characters). The sample is the same on every run
        (ordered by a hash of the query hash). No points when nothing was embedded.
    """
    row = ws.con.execute(
        "SELECT embedder FROM categories WHERE embedder IS NOT NULL LIMIT 1"
    ).fetchone()
    empty = {"projection": method, "embedder": None, "distinct_queries": 0, "sampled": 0}
    if not row:
        return {**empty, "points": []}
    embedder = row[0]
    total = ws.con.execute(
        """SELECT count(DISTINCT c.query_hash) FROM calls c JOIN embeddings e
           ON e.query_hash = c.query_hash AND e.embedder = ?""",
        [embedder],
    ).fetchone()[0]
    rows = ws.con.execute(
        """WITH q AS (
             SELECT query_hash, any_value(query) AS query, count(*) AS calls,
                    mode(coalesce(category_id, -1)) AS category_id
             FROM calls WHERE query_hash IS NOT NULL GROUP BY query_hash)
           SELECT q.query, q.calls, q.category_id, coalesce(g.label, '(uncategorized)'), e.vector
           FROM q JOIN embeddings e ON e.query_hash = q.query_hash AND e.embedder = ?
           LEFT JOIN categories g ON g.category_id = q.category_id
           ORDER BY hash(q.query_hash), q.query_hash LIMIT ?""",
        [embedder, int(max_points)],
    ).fetchall()
    if not rows:
        return {**empty, "embedder": embedder, "points": []}
    xy = project(np.asarray([r[4] for r in rows], dtype=np.float32), method)
    points = [
        {
            "x": round(float(x), 5),
            "y": round(float(y), 5),
            CATEGORY_ID: int(cat),
            "label": "(uncategorized)" if cat == UNCATEGORIZED else label,
            "calls": int(calls),
            "text": shorten(query, text_chars),
        }
        for (query, calls, cat, label, _), (x, y) in zip(rows, xy, strict=True)
    ]
    return {
        "projection": method,
        "embedder": embedder,
        "distinct_queries": int(total),
        "sampled": len(points),
        "points": points,
    }
