"""Route categories for a workspace: embed each distinct query once (cached in
``embeddings``, written chunk by chunk as it goes), cluster (on a sample when there are many:
:mod:`levers_cli.cluster.assign`), label, and write ``calls.category_id`` and ``categories``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from levers_cli.cluster.algorithms import ClusterParams
from levers_cli.cluster.assign import fit_and_assign, nearest_centroid
from levers_cli.cluster.labels import central_exemplars, ctfidf_keywords, short_label
from levers_cli.embed.base import Embedder
from levers_cli.redact import redact_many
from levers_cli.schema import UNCATEGORIZED
from levers_cli.store import Workspace

if TYPE_CHECKING:
    from levers_cli.engine import Engine

#: ``progress(stage, advance, total)``: ``stage`` is ``embed``, ``cluster`` or ``assign``.
ProgressFn = Callable[[str, int, int], None]
#: c-TF-IDF keywords are computed on at most this many distinct queries.
LABEL_SAMPLE = 50_000


@dataclass
class CategorizeResult:
    """What categorization did."""

    distinct_queries: int
    embedded_now: int
    categories: int
    uncategorized_calls: int
    method: str
    embedder: str
    warning: str | None = None


def embed_distinct(
    ws: Workspace,
    embedder: Embedder,
    hashes: list[str],
    texts: list[str],
    progress: ProgressFn | None = None,
    engine: Engine | None = None,
) -> tuple[np.ndarray, int]:
    """Embeddings of the distinct queries, from the cache or computed and cached now.

    With an ``engine`` whose tasks run outside this process, the queries not embedded yet are
    split into one slice per worker, each embedded by a task (:func:`encode_task`, the
    embedder pickled to it) in the embedder's own chunks; the vectors are stored as each
    slice's task returns (all at the end, where the engine returns results together). An
    embedder that cannot be pickled (a loaded ONNX Runtime session) embeds here.

    Returns:
        ``((n, d) float32 unit vectors in the order of ``hashes``, number embedded now)``.
    """
    ws.load_temp("wanted", {"query_hash": hashes, "position": np.arange(len(hashes))})
    found = ws.con.execute(
        """SELECT w.position, e.vector FROM wanted w JOIN embeddings e USING (query_hash)
           WHERE e.embedder = ? AND len(e.vector) = ? ORDER BY w.position""",
        [embedder.key, embedder.dimension],
    ).fetchnumpy()
    ws.con.execute("DROP TABLE wanted")
    vectors = np.zeros((len(hashes), embedder.dimension), dtype=np.float32)
    cached = np.asarray(found["position"], dtype=np.int64)
    if len(cached):
        vectors[cached] = np.stack(list(found["vector"])).astype(np.float32)
    is_cached = np.zeros(len(hashes), dtype=bool)
    is_cached[cached] = True
    missing = np.flatnonzero(~is_cached)
    if progress is not None:
        progress("embed", len(cached), len(hashes))
    step = int(embedder.chunk_rows)  # the embedder's step (fast ones take bigger steps)
    if engine is not None and not engine.in_process and len(missing) > step and _portable(embedder):
        slices = [part for part in np.array_split(missing, engine.workers) if len(part)]
        tasks = [(embedder, [texts[i] for i in part]) for part in slices]
        pieces: Iterable[tuple[np.ndarray, np.ndarray]] = zip(
            slices, engine.map(encode_task, tasks), strict=True
        )
    else:
        chunks = [missing[start : start + step] for start in range(0, len(missing), step)]
        pieces = ((chunk, embedder.encode([texts[i] for i in chunk])) for chunk in chunks)
    for chunk, encoded in pieces:
        vectors[chunk] = encoded
        ws.load_temp(
            "new_vectors",
            {
                "query_hash": [hashes[i] for i in chunk],
                "embedder": [embedder.key] * len(chunk),
                "vector": encoded,
            },
        )
        ws.con.execute("INSERT OR REPLACE INTO embeddings SELECT * FROM new_vectors")
        if progress is not None:
            progress("embed", len(chunk), len(hashes))
    ws.con.execute("DROP TABLE IF EXISTS new_vectors")
    return vectors, len(missing)


def _portable(embedder: Embedder) -> bool:
    """Whether the embedder can be sent to another process (a loaded ONNX Runtime session
    cannot: such an embedder embeds here instead)."""
    import pickle

    try:
        pickle.dumps(embedder)
    except (TypeError, AttributeError, pickle.PicklingError):
        return False
    return True


def encode_task(task: tuple[Embedder, list[str]]) -> np.ndarray:
    """Partition function: ``(embedder, texts)`` → their ``(n, d)`` float32 vectors, encoded
    in the embedder's chunks (``chunk_rows``)."""
    embedder, texts = task
    step = int(embedder.chunk_rows)
    parts = [embedder.encode(texts[start : start + step]) for start in range(0, len(texts), step)]
    if not parts:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)


def _previous(ws: Workspace, embedder: Embedder) -> tuple[dict[str, int], dict[int, np.ndarray]]:
    """The last run's category of each distinct query and each category's centroid, when
    the stored categories were made with ``embedder`` (else nothing: a full fit follows)."""
    stored = ws.con.execute(
        "SELECT category_id, centroid FROM categories WHERE embedder = ? ORDER BY category_id",
        [embedder.key],
    ).fetchall()
    if not stored or ws.count("categories") != len(stored):
        return {}, {}
    centroids = {int(c): np.asarray(v, dtype=np.float32) for c, v in stored}
    assigned = ws.con.execute(
        """SELECT query_hash, any_value(category_id) FROM calls
           WHERE category_id IS NOT NULL GROUP BY query_hash"""
    ).fetchall()
    return {h: int(c) for h, c in assigned}, centroids


def assign_to_existing(
    vectors: np.ndarray, centroids: dict[int, np.ndarray], min_similarity: float
) -> np.ndarray:
    """Nearest existing category of each vector by cosine similarity, or ``-1`` when the
    best similarity is below ``min_similarity``.

    Args:
        vectors: ``(n, d)`` unit vectors.
        centroids: category id → ``(d,)`` unit centroid.
        min_similarity: the similarity floor.

    Returns:
        ``(n,)`` int64 category ids.
    """
    if not centroids or len(vectors) == 0:
        return np.full(len(vectors), UNCATEGORIZED, dtype=np.int64)
    ids = np.array(sorted(centroids), dtype=np.int64)
    matrix = np.stack([centroids[i] for i in ids])
    return nearest_centroid(np.asarray(vectors, dtype=np.float32), matrix, ids, min_similarity)


def categorize(
    ws: Workspace,
    embedder: Embedder,
    params: ClusterParams,
    *,
    keywords: int = 5,
    exemplars: int = 3,
    recluster: bool = False,
    progress: ProgressFn | None = None,
    engine: Engine | None = None,
) -> CategorizeResult:
    """Discover route categories for every call in the workspace.

    The first run (or ``recluster=True``, or a new embedder) fits categories on the distinct
    queries (at most ``params.max_fit_queries`` of them, the rest assigned to the nearest
    category: :func:`levers_cli.cluster.assign.fit_and_assign`). Later runs keep every known
    query in its category, so ids stay stable across weekly dumps: a new query joins the
    nearest existing category when its cosine similarity
    to the centroid is at least ``params.assign_min_similarity``; the rest (with the queries
    still uncategorized) are clustered on their own, and the categories they form get new ids.
    A run that brings no new query changes nothing. ``engine``: where the queries not
    embedded yet are embedded (:func:`embed_distinct`).

    Raises:
        LeversError: the embedder cannot be loaded.
    """
    rows = ws.con.execute(
        """SELECT query_hash, min(query) AS text, count(*) AS calls,
                  coalesce(sum(cost_usd), 0)::DOUBLE AS spend
           FROM calls WHERE trim(coalesce(query, '')) <> ''
           GROUP BY query_hash ORDER BY query_hash"""
    ).fetchall()
    hashes = [r[0] for r in rows]
    # a corpus-fitted embedder (tfidf) reuses the stored fit or fits now; others do nothing
    stored = ws.con.execute("SELECT DISTINCT embedder FROM categories").fetchall()
    embedder.adapt([r[1] for r in rows], [k for (k,) in stored if k])
    texts = [r[1] for r in rows]
    weights = np.array([r[2] for r in rows], dtype=np.float64)
    spend = np.array([r[3] for r in rows], dtype=np.float64)
    vectors, embedded_now = embed_distinct(ws, embedder, hashes, texts, progress, engine)
    if progress is not None:
        progress("cluster", 0, 1)
    known, centroids = ({}, {}) if recluster else _previous(ws, embedder)
    warning = None
    assign_progress = (lambda done, total: progress("assign", done, total)) if progress else None
    if not centroids:
        fit = fit_and_assign(vectors, weights, params, assign_progress, texts)
        labels, method, warning = fit.labels, fit.method, fit.warning
    else:
        labels = np.array([known.get(h, UNCATEGORIZED) for h in hashes], dtype=np.int64)
        new = np.array([h not in known for h in hashes], dtype=bool)
        labels[new] = assign_to_existing(vectors[new], centroids, params.assign_min_similarity)
        pool = np.flatnonzero(labels == UNCATEGORIZED)
        method = f"assigned to {len(centroids)} existing categories"
        if not new.any():
            method = f"no new queries: the {len(centroids)} categories kept as they were"
        # new queries with the ones still uncategorized may form categories; with no new
        # query, re-clustering the old noise would change categories for no new evidence
        elif len(pool) >= 2:
            pool_texts = [texts[i] for i in pool]
            fresh = fit_and_assign(
                vectors[pool], weights[pool], params, assign_progress, pool_texts
            ).labels
            offset = max(centroids) + 1
            labels[pool] = np.where(fresh >= 0, fresh + offset, UNCATEGORIZED)
            method += f", {int(fresh.max()) + 1 if fresh.size else 0} new from the rest"
    if progress is not None:
        progress("cluster", 1, 1)
    # all or nothing: stopped halfway, the write would leave calls marked uncategorized (-1)
    # that the workspace check (Workspace.require_analysis) could not tell from a finished run
    with ws.transaction():
        _write_categories(
            ws,
            embedder,
            hashes,
            texts,
            vectors,
            weights,
            spend,
            labels,
            keywords,
            exemplars,
            centroids,
        )
    return CategorizeResult(
        distinct_queries=len(hashes),
        embedded_now=embedded_now,
        categories=len(np.unique(labels[labels >= 0])),
        uncategorized_calls=ws.count("calls", f"category_id = {UNCATEGORIZED}"),
        method=method,
        embedder=embedder.key,
        warning=warning,
    )


def _write_categories(
    ws: Workspace,
    embedder: Embedder,
    hashes: list[str],
    texts: list[str],
    vectors: np.ndarray,
    weights: np.ndarray,
    spend: np.ndarray,
    labels: np.ndarray,
    n_keywords: int,
    n_exemplars: int,
    fixed_centroids: dict[int, np.ndarray],
) -> None:
    """Write ``calls.category_id`` and the ``categories`` table. Categories in
    ``fixed_centroids`` keep their centroid (new queries were assigned against it)."""
    ws.load_temp("assigned", {"query_hash": hashes, "category": labels.astype(np.int32)})
    ws.con.execute(f"UPDATE calls SET category_id = {UNCATEGORIZED}")
    ws.con.execute(
        """UPDATE calls SET category_id = a.category FROM assigned a
           WHERE calls.query_hash = a.query_hash"""
    )
    ws.con.execute("DROP TABLE assigned")
    ws.con.execute("DELETE FROM categories")
    # labels, keywords and exemplars are shown and exported: never a key, card or address.
    # Keywords come from at most LABEL_SAMPLE distinct queries (a seeded uniform sample above
    # that): c-TF-IDF's term counts over 440,000 queries took minutes and gigabytes, and a
    # uniform sample keeps each category's term shares.
    keyword_rows = np.arange(len(texts))
    if len(texts) > LABEL_SAMPLE:
        chosen = np.random.default_rng(0).choice(len(texts), LABEL_SAMPLE, replace=False)
        keyword_rows = np.sort(chosen)
    keyword_texts = redact_many([texts[i] for i in keyword_rows])[0]
    top_words = ctfidf_keywords(
        keyword_texts, weights[keyword_rows], labels[keyword_rows], n_keywords
    )
    for category in sorted(int(c) for c in np.unique(labels) if c != UNCATEGORIZED):
        members = np.flatnonzero(labels == category)
        centroid = fixed_centroids.get(category)
        if centroid is None:
            centroid = (vectors[members] * weights[members, None]).sum(axis=0)
            centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        examples = central_exemplars(texts, vectors, members, centroid, n_exemplars)
        examples = redact_many(examples)[0]
        words = top_words.get(category, [])
        ws.con.execute(
            "INSERT INTO categories VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                category,
                short_label(words, examples),
                words,
                examples,
                int(weights[members].sum()),
                len(members),
                float(spend[members].sum()),
                embedder.key,
                np.asarray(centroid, dtype=np.float32).tolist(),
            ],
        )
