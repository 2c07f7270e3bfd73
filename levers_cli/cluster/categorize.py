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
from levers_cli.cluster.features import assign_features
from levers_cli.cluster.labels import (
    LABEL_SEPARATOR,
    MIXED,
    category_name,
    central_exemplars,
    ctfidf_keywords,
    short_label,
)
from levers_cli.embed.base import Embedder
from levers_cli.redact import redact_many
from levers_cli.schema import FEATURE, UNCATEGORIZED
from levers_cli.store import Workspace

if TYPE_CHECKING:
    from levers_cli.engine import Engine

#: ``progress(stage, advance, total)``: ``stage`` is ``embed``, ``cluster`` or ``assign``.
ProgressFn = Callable[[str, int, int], None]
#: c-TF-IDF keywords are computed on at most this many distinct queries.
LABEL_SAMPLE = 50_000
#: ``[cluster] feature_keys`` when the caller gives none: metadata keys naming a feature.
DEFAULT_FEATURE_KEYS = ("feature", "app", "application", "use_case", "feature_name")


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
    #: calls per app feature (categories live within one: DESIGN §4.5)
    features: dict[str, int] | None = None


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


def _previous(
    ws: Workspace, embedder: Embedder
) -> tuple[dict[tuple[str, str], int], dict[int, np.ndarray], dict[int, str]]:
    """The last run's category of each (feature, distinct query), each category's centroid
    and feature, when the stored categories were made with ``embedder`` and each has a
    feature (else nothing: a full fit follows)."""
    stored = ws.con.execute(
        f"""SELECT category_id, centroid, {FEATURE} FROM categories WHERE embedder = ?
            ORDER BY category_id""",
        [embedder.key],
    ).fetchall()
    if not stored or ws.count("categories") != len(stored) or any(f is None for *_, f in stored):
        return {}, {}, {}
    centroids = {int(c): np.asarray(v, dtype=np.float32) for c, v, _ in stored}
    features = {int(c): str(f) for c, _, f in stored}
    assigned = ws.con.execute(
        f"""SELECT {FEATURE}, query_hash, any_value(category_id) FROM calls
            WHERE category_id IS NOT NULL GROUP BY ALL"""
    ).fetchall()
    # an uncategorized query is known too (it stays so until new queries come)
    known = {
        (f, h): int(c)
        for f, h, c in assigned
        if int(c) == UNCATEGORIZED or features.get(int(c)) == f
    }
    return known, centroids, features


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
    feature_keys: list[str] | None = None,
    feature_min_calls: int = 3,
    feature_min_prompts: int = 3,
) -> CategorizeResult:
    """Discover route categories for every call in the workspace, within app features.

    Each call first gets its feature (``calls.feature``: a logged tag among ``feature_keys``,
    else its prompt template, else the whole log: :func:`levers_cli.cluster.features.
    assign_features`); categories are then found within each feature, so none mixes
    features. Category ids are unique across features (the largest feature's come first).

    The first run (or ``recluster=True``, or a new embedder) fits each feature's categories
    on its distinct queries (at most ``params.max_fit_queries`` of them, the rest assigned to
    the nearest category: :func:`levers_cli.cluster.assign.fit_and_assign`). Later runs keep
    every known query in its category, so ids stay stable across weekly dumps: a new query
    joins the nearest existing category of its feature when its cosine similarity to the
    centroid is at least ``params.assign_min_similarity``; the rest (with the queries still
    uncategorized) are clustered on their own, and the categories they form get new ids. A
    run that brings no new query changes nothing. ``engine``: where the queries not embedded
    yet are embedded (:func:`embed_distinct`).

    Raises:
        LeversError: the embedder cannot be loaded.
    """
    found_features = assign_features(
        ws,
        list(DEFAULT_FEATURE_KEYS if feature_keys is None else feature_keys),
        min_calls=feature_min_calls,
        min_prompts=feature_min_prompts,
        keep_assigned=not recluster,
    )
    rows = ws.con.execute(
        f"""SELECT {FEATURE}, query_hash, min(query) AS text, count(*) AS calls,
                   coalesce(sum(cost_usd), 0)::DOUBLE AS spend
            FROM calls WHERE trim(coalesce(query, '')) <> ''
            GROUP BY {FEATURE}, query_hash ORDER BY {FEATURE}, query_hash"""
    ).fetchall()
    features = [str(r[0]) for r in rows]
    hashes = [r[1] for r in rows]
    texts = [r[2] for r in rows]
    weights = np.array([r[3] for r in rows], dtype=np.float64)
    spend = np.array([r[4] for r in rows], dtype=np.float64)
    # each distinct query is embedded once, whatever features it is asked in
    position: dict[str, int] = {}
    unique_hashes: list[str] = []
    unique_texts: list[str] = []
    for h, text in zip(hashes, texts, strict=True):
        if h not in position:
            position[h] = len(unique_hashes)
            unique_hashes.append(h)
            unique_texts.append(text)
    # a corpus-fitted embedder (tfidf) reuses the stored fit or fits now; others do nothing
    stored = ws.con.execute("SELECT DISTINCT embedder FROM categories").fetchall()
    embedder.adapt(unique_texts, [k for (k,) in stored if k])
    unique_vectors, embedded_now = embed_distinct(
        ws, embedder, unique_hashes, unique_texts, progress, engine
    )
    vectors = unique_vectors[np.array([position[h] for h in hashes], dtype=np.int64)]
    if progress is not None:
        progress("cluster", 0, 1)
    known, centroids, centroid_features = ({}, {}, {}) if recluster else _previous(ws, embedder)
    labels = np.full(len(hashes), UNCATEGORIZED, dtype=np.int64)
    warnings: list[str] = []
    methods: list[str] = []
    assign_progress = (lambda done, total: progress("assign", done, total)) if progress else None
    next_id = max(centroids) + 1 if centroids else 0
    feature_array = np.array(features, dtype=object)
    order = sorted(found_features.features, key=lambda f: (-found_features.features[f], f))
    for feature in order:
        idx = np.flatnonzero(feature_array == feature)
        if len(idx) == 0:
            continue
        mine = {c: v for c, v in centroids.items() if centroid_features.get(c) == feature}
        if not centroids:
            fit = fit_and_assign(
                vectors[idx], weights[idx], params, assign_progress, [texts[i] for i in idx]
            )
            labels[idx] = np.where(fit.labels >= 0, fit.labels + next_id, UNCATEGORIZED)
            next_id = max(next_id, int(labels[idx].max()) + 1)
            methods.append(fit.method)
            if fit.warning:
                warnings.append(fit.warning)
            continue
        local = np.array(
            [known.get((feature, hashes[i]), UNCATEGORIZED) for i in idx], dtype=np.int64
        )
        new = np.array([(feature, hashes[i]) not in known for i in idx], dtype=bool)
        local[new] = assign_to_existing(vectors[idx[new]], mine, params.assign_min_similarity)
        labels[idx] = local
        pool = idx[local == UNCATEGORIZED]
        # new queries with the ones still uncategorized may form categories; with no new
        # query, re-clustering the old noise would change categories for no new evidence
        if new.any() and len(pool) >= 2:
            fresh = fit_and_assign(
                vectors[pool], weights[pool], params, assign_progress, [texts[i] for i in pool]
            ).labels
            labels[pool] = np.where(fresh >= 0, fresh + next_id, UNCATEGORIZED)
            next_id = max(next_id, int(labels[pool].max()) + 1)
    if not centroids:
        method = ", ".join(sorted(set(methods))) + f", within {len(order)} feature(s)"
    else:
        fresh_count = len(np.unique(labels[labels >= 0])) - len(
            set(np.unique(labels[labels >= 0]).tolist()) & set(centroids)
        )
        method = f"assigned to {len(centroids)} existing categories"
        if not any((f, h) not in known for f, h in zip(features, hashes, strict=True)):
            method = f"no new queries: the {len(centroids)} categories kept as they were"
        elif fresh_count:
            method += f", {fresh_count} new from the rest"
    if progress is not None:
        progress("cluster", 1, 1)
    # all or nothing: stopped halfway, the write would leave calls marked uncategorized (-1)
    # that the workspace check (Workspace.require_analysis) could not tell from a finished run
    with ws.transaction():
        _write_categories(
            ws,
            embedder,
            features,
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
        distinct_queries=len(unique_hashes),
        embedded_now=embedded_now,
        categories=len(np.unique(labels[labels >= 0])),
        uncategorized_calls=ws.count("calls", f"category_id = {UNCATEGORIZED}"),
        method=method,
        embedder=embedder.key,
        # a small feature grouped by the fallback is expected beside larger ones: the warning
        # is for a log too small as a whole
        warning="; ".join(warnings) if warnings and len(order) == 1 else None,
        features=found_features.features,
    )


def _write_categories(
    ws: Workspace,
    embedder: Embedder,
    features: list[str],
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
    """Write ``calls.category_id`` and the ``categories`` table (rows are (feature, distinct
    query) pairs). Categories in ``fixed_centroids`` keep their centroid (new queries were
    assigned against it)."""
    ws.load_temp(
        "assigned",
        {FEATURE: features, "query_hash": hashes, "category": labels.astype(np.int32)},
    )
    ws.con.execute(f"UPDATE calls SET category_id = {UNCATEGORIZED}")
    ws.con.execute(
        f"""UPDATE calls SET category_id = a.category FROM assigned a
            WHERE calls.query_hash = a.query_hash AND calls.{FEATURE} = a.{FEATURE}"""
    )
    ws.con.execute("DROP TABLE assigned")
    ws.con.execute("DELETE FROM categories")
    # labels, keywords and exemplars are shown and exported: never a key, card or address.
    # Keywords come from at most LABEL_SAMPLE distinct queries (a seeded uniform sample above
    # that): c-TF-IDF's term counts over 440,000 queries took minutes and gigabytes, and a
    # uniform sample keeps each category's term shares. They are computed within each
    # feature, so what every call of a feature shares ("classify the following ticket")
    # names none of its categories.
    keyword_rows = np.arange(len(texts))
    if len(texts) > LABEL_SAMPLE:
        chosen = np.random.default_rng(0).choice(len(texts), LABEL_SAMPLE, replace=False)
        keyword_rows = np.sort(chosen)
    keyword_texts = redact_many([texts[i] for i in keyword_rows])[0]
    feature_array = np.array(features, dtype=object)
    top_words: dict[int, list[str]] = {}
    for feature in sorted(set(features)):
        in_feature = feature_array[keyword_rows] == feature
        top_words.update(
            ctfidf_keywords(
                [t for t, keep in zip(keyword_texts, in_feature, strict=True) if keep],
                weights[keyword_rows][in_feature],
                labels[keyword_rows][in_feature],
                n_keywords,
            )
        )
    names_used: set[tuple[str, str]] = set()
    # biggest categories first, so a repeated name gets its "#2" on the smaller one
    kept = labels != UNCATEGORIZED
    sizes = np.bincount(labels[kept], weights=weights[kept]) if kept.any() else np.zeros(0)
    categories = sorted(
        (int(c) for c in np.unique(labels[kept])), key=lambda c: (-float(sizes[c]), c)
    )
    rows = []
    for category in categories:
        members = np.flatnonzero(labels == category)
        feature = features[int(members[0])]
        centroid = fixed_centroids.get(category)
        if centroid is None:
            centroid = (vectors[members] * weights[members, None]).sum(axis=0)
            centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        examples = central_exemplars(texts, vectors, members, centroid, n_exemplars)
        examples = redact_many(examples)[0]
        words = top_words.get(category, [])
        name = category_name(words, examples, [texts[i] for i in members], weights[members])
        # a name the feature has already: the category's later keywords, else a number
        for start in range(1, len(words)):
            if (feature, name) not in names_used or name == MIXED:
                break
            name = short_label(words[start:], examples)
        base, suffix = name, 2
        while (feature, name) in names_used:
            name, suffix = f"{base} #{suffix}", suffix + 1
        names_used.add((feature, name))
        rows.append(
            [
                category,
                f"{feature} {LABEL_SEPARATOR} {name}",
                words,
                examples,
                int(weights[members].sum()),
                len(members),
                float(spend[members].sum()),
                embedder.key,
                np.asarray(centroid, dtype=np.float32).tolist(),
                feature,
            ]
        )
    for row in sorted(rows):
        ws.con.execute(
            f"""INSERT INTO categories (category_id, parent_id, label, keywords, exemplars,
                    size, distinct_queries, spend_usd, embedder, centroid, {FEATURE})
                VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            row,
        )
