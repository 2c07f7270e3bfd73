"""Fit on a sample, assign the rest: category discovery that stays in minutes and in memory
for hundreds of thousands of distinct queries.

UMAP + HDBSCAN cost grows faster than the data (BERTopic runs out of memory near 1M documents
with 32 GB; its maintainer's advice is to fit on a sample and assign the rest: BERTopic FAQ,
"I am facing memory issues", and ``BERTopic.transform`` for the assignment). levers fits on at
most ``ClusterParams.max_fit_queries`` distinct queries (a seeded uniform sample), takes each
category's call-weighted centroid, and gives every other query the category of its nearest
centroid by cosine similarity, in batches, when that similarity reaches
``ClusterParams.assign_min_similarity``; below it the query stays uncategorized (``-1``),
never forced into a category (../shared/DESIGN.md §4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from levers_cli.cluster.algorithms import ClusterParams, cluster_embeddings, renumber_by_weight
from levers_cli.schema import UNCATEGORIZED

#: Vectors compared with the centroids per batch (bounds the ``(batch, k)`` similarity matrix).
ASSIGN_BATCH = 65_536
#: Fallback when ``ClusterParams`` has no ``max_fit_queries`` (see ``defaults.toml``).
DEFAULT_MAX_FIT = 30_000

#: ``progress(advance, total)`` in queries assigned.
AssignProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class FitResult:
    """Labels of all distinct queries and how they were found."""

    labels: np.ndarray
    method: str
    warning: str | None
    fitted: int


def fit_sample(n: int, max_fit: int, seed: int) -> np.ndarray:
    """Indices of the queries to fit on: all of them up to ``max_fit``, else a seeded uniform
    sample of ``max_fit``, sorted. Returns ``(m,)`` int64."""
    if n <= max_fit:
        return np.arange(n, dtype=np.int64)
    chosen = np.random.default_rng(seed).choice(n, size=max_fit, replace=False)
    return np.sort(chosen).astype(np.int64)


def centroids_of(vectors: np.ndarray, weights: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Call-weighted, L2-normalized centroid of each category ``0..k-1``.

    Args:
        vectors: ``(n, d)`` unit vectors; weights: ``(n,)`` call counts; labels: ``(n,)``
            with categories numbered ``0..k-1`` and ``-1`` for noise.

    Returns:
        ``(k, d)`` float32.
    """
    k = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    sums = np.zeros((k, vectors.shape[1]), dtype=np.float64)
    member = labels >= 0
    np.add.at(sums, labels[member], vectors[member] * weights[member, None])
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def nearest_centroid(
    vectors: np.ndarray,
    centroids: np.ndarray,
    ids: np.ndarray,
    min_similarity: float,
    progress: AssignProgress | None = None,
) -> np.ndarray:
    """Category of each vector: ``ids[j]`` of its most similar centroid ``j`` when the cosine
    similarity is ≥ ``min_similarity``, else ``-1``. Works in batches of ``ASSIGN_BATCH``.

    Args:
        vectors: ``(n, d)`` unit vectors; centroids: ``(k, d)`` unit vectors; ids: ``(k,)``.

    Returns:
        ``(n,)`` int64.
    """
    out = np.full(len(vectors), UNCATEGORIZED, dtype=np.int64)
    if len(centroids) == 0:
        return out
    matrix = np.ascontiguousarray(centroids, dtype=np.float32).T
    for start in range(0, len(vectors), ASSIGN_BATCH):
        stop = min(start + ASSIGN_BATCH, len(vectors))
        similarity = vectors[start:stop] @ matrix
        best = similarity.argmax(axis=1)
        score = similarity[np.arange(stop - start), best]
        out[start:stop] = np.where(score >= min_similarity, ids[best], UNCATEGORIZED)
        if progress is not None:
            progress(stop - start, len(vectors))
    return out


def fit_and_assign(
    vectors: np.ndarray,
    weights: np.ndarray,
    params: ClusterParams,
    progress: AssignProgress | None = None,
    texts: Sequence[str] | None = None,
) -> FitResult:
    """Cluster ``vectors`` with :func:`cluster_embeddings` on at most ``max_fit_queries`` of
    them and assign the others to the nearest category centroid.

    Args:
        vectors: ``(n, d)`` float32 unit vectors of distinct queries.
        weights: ``(n,)`` call counts.
        params: clustering settings (``max_fit_queries``, ``assign_min_similarity``, ``seed``).
        progress: called as the rest is assigned.
        texts: the ``n`` query texts, for the lexical features of the fit
            (:func:`cluster_embeddings`); assignment uses the embeddings alone.

    Returns:
        Labels ``(n,)`` int64 numbered ``0..k-1`` by descending calls, ``-1`` uncategorized.
    """
    n = len(vectors)
    max_fit = int(getattr(params, "max_fit_queries", DEFAULT_MAX_FIT))
    sample = fit_sample(n, max_fit, params.seed)
    fit_texts = None if texts is None else [texts[i] for i in sample]
    fit_params = params if len(sample) == n else dataclasses.replace(params, population=n)
    found = cluster_embeddings(vectors[sample], weights[sample], fit_params, fit_texts)
    fitted = renumber_by_weight(found.labels, weights[sample])
    if len(sample) == n:
        return FitResult(fitted, found.method, found.warning, n)
    labels = np.full(n, UNCATEGORIZED, dtype=np.int64)
    labels[sample] = fitted
    rest = np.ones(n, dtype=bool)
    rest[sample] = False
    centroids = centroids_of(vectors[sample], weights[sample], fitted)
    ids = np.arange(len(centroids), dtype=np.int64)
    labels[rest] = nearest_centroid(
        vectors[rest], centroids, ids, params.assign_min_similarity, progress
    )
    labels = renumber_by_weight(labels, weights)
    method = (
        f"{found.method} fitted on a sample of {len(sample):,} of {n:,} distinct queries, "
        f"the rest assigned to the nearest category (cosine ≥ {params.assign_min_similarity})"
    )
    return FitResult(labels, method, found.warning, len(sample))
