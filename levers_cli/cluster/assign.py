"""Fit on a sample, assign the rest: category discovery that stays in minutes and in memory
for hundreds of thousands of distinct queries.

UMAP + HDBSCAN cost grows faster than the data (BERTopic runs out of memory near 1M documents
with 32 GB; its maintainer's advice is to fit on a sample and assign the rest: BERTopic FAQ,
"I am facing memory issues", and ``BERTopic.transform`` for the assignment). levers fits on at
most ``ClusterParams.max_fit_queries`` distinct queries (a seeded uniform sample), then trains
a multinomial logistic regression on the sample's categories (the embeddings of its
categorized queries, scikit-learn ``LogisticRegression``) and gives every other query the
category it predicts, in batches: the sample's categories serve as labels for a supervised
model, as BERTopic's supervised mode puts a ``LogisticRegression`` where HDBSCAN was (BERTopic
docs, "Supervised Topic Modeling"), instead of CLARA's nearest medoid (Kaufman & Rousseeuw
1990 fit on samples and assign the rest to the nearest representative).
A query joins its predicted category only when at least one fitted query of that category is
at least ``ClusterParams.noise_min_similarity`` similar to it (cosine), the floor of the fit's
own noise vote; otherwise it stays uncategorized (``-1``), never forced into a category
(../shared/DESIGN.md §4). With fewer than two categories in the sample, the nearest centroid
(with the ``assign_min_similarity`` floor) is used instead.

Measured on clinc150 (``bench/scale_clinc.py``, static embedder, 22,495 distinct utterances):
fitting on 5,000 and 10,000 of them cost 0.042 and 0.023 NMI against a full fit with
nearest-centroid assignment; the classifier brings that to 0.023 and 0.004
(``bench/results/scale.md``).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from levers_cli.cluster.algorithms import ClusterParams, cluster_embeddings, renumber_by_weight
from levers_cli.schema import UNCATEGORIZED

#: Vectors compared with the centroids per batch (bounds the ``(batch, k)`` similarity matrix).
ASSIGN_BATCH = 65_536
#: Fallback when ``ClusterParams`` has no ``max_fit_queries`` (see ``defaults.toml``).
DEFAULT_MAX_FIT = 30_000
#: L-BFGS iterations of the classifier; 50 and 200 gave the same labels on clinc150.
CLASSIFIER_MAX_ITER = 200
#: Rows per block when comparing assigned queries with the fitted members of their category.
FLOOR_BLOCK = 4_096

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


@dataclass(frozen=True)
class LinearAssigner:
    """A linear classifier over unit embeddings: ``scores = vectors @ coef.T + intercept``,
    category ``ids[argmax]``."""

    coef: np.ndarray
    intercept: np.ndarray
    ids: np.ndarray


def train_assigner(
    vectors: np.ndarray, labels: np.ndarray, seed: int, c: float = 10.0
) -> LinearAssigner | None:
    """Multinomial logistic regression (scikit-learn, L-BFGS) from the categorized fitted
    queries to their categories.

    Args:
        vectors: ``(m, d)`` unit embeddings of the fitted queries.
        labels: ``(m,)`` their categories, ``-1`` for noise (left out of the training).
        seed: the classifier's random state.
        c: inverse L2 regularization (``[cluster] assign_classifier_c``).

    Returns:
        The model as ``(k, d)`` coefficients, ``(k,)`` intercepts and ``(k,)`` category ids,
        or ``None`` when fewer than two categories were found (nothing to classify).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    member = labels >= 0
    if len(np.unique(labels[member])) < 2:
        return None
    model = LogisticRegression(C=c, max_iter=CLASSIFIER_MAX_ITER, random_state=seed)
    with warnings.catch_warnings():
        # labels no longer change well before L-BFGS meets its tolerance (measured on clinc150)
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        model.fit(vectors[member], labels[member])
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == 2:  # binary: one row scores classes_[1] against classes_[0]
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    return LinearAssigner(
        coef.astype(np.float32), intercept.astype(np.float32), model.classes_.astype(np.int64)
    )


def classify(
    vectors: np.ndarray,
    assigner: LinearAssigner,
    fitted_vectors: np.ndarray,
    fitted_labels: np.ndarray,
    min_similarity: float,
    progress: AssignProgress | None = None,
) -> np.ndarray:
    """Category each vector's classifier predicts, kept when some fitted query of that
    category has cosine similarity ≥ ``min_similarity`` with it, else ``-1``. Works in batches
    of ``ASSIGN_BATCH``.

    Args:
        vectors: ``(n, d)`` unit vectors to assign.
        assigner: from :func:`train_assigner`.
        fitted_vectors: ``(m, d)`` unit vectors of the fitted queries; fitted_labels: ``(m,)``.
        min_similarity: the cosine floor to the nearest fitted member of the category.

    Returns:
        ``(n,)`` int64.
    """
    out = np.full(len(vectors), UNCATEGORIZED, dtype=np.int64)
    members = {int(c): fitted_vectors[fitted_labels == c] for c in assigner.ids}
    coef = np.ascontiguousarray(assigner.coef.T)
    for start in range(0, len(vectors), ASSIGN_BATCH):
        stop = min(start + ASSIGN_BATCH, len(vectors))
        batch = vectors[start:stop]
        predicted = assigner.ids[(batch @ coef + assigner.intercept).argmax(axis=1)]
        for category in np.unique(predicted):
            rows = np.flatnonzero(predicted == category)
            pool = members[int(category)].T
            for block in range(0, len(rows), FLOOR_BLOCK):
                chosen = rows[block : block + FLOOR_BLOCK]
                nearest = (batch[chosen] @ pool).max(axis=1)
                out[start + chosen[nearest >= min_similarity]] = category
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
    them and assign the others with a classifier trained on the fit (:func:`classify`).

    Args:
        vectors: ``(n, d)`` float32 unit vectors of distinct queries.
        weights: ``(n,)`` call counts.
        params: clustering settings (``max_fit_queries``, ``noise_min_similarity``,
            ``assign_min_similarity``, ``seed``).
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
    fitted_vectors = np.asarray(vectors[sample], dtype=np.float32)
    assigner = train_assigner(fitted_vectors, fitted, params.seed, params.assign_classifier_c)
    if assigner is None:
        centroids = centroids_of(fitted_vectors, weights[sample], fitted)
        ids = np.arange(len(centroids), dtype=np.int64)
        labels[rest] = nearest_centroid(
            vectors[rest], centroids, ids, params.assign_min_similarity, progress
        )
        how = f"the nearest category (cosine ≥ {params.assign_min_similarity})"
    else:
        labels[rest] = classify(
            vectors[rest], assigner, fitted_vectors, fitted, params.noise_min_similarity, progress
        )
        how = (
            "the category a logistic regression trained on the sample predicts (kept when a "
            f"fitted query of it has cosine ≥ {params.noise_min_similarity})"
        )
    labels = renumber_by_weight(labels, weights)
    method = (
        f"{found.method} fitted on a sample of {len(sample):,} of {n:,} distinct queries, "
        f"the rest assigned to {how}"
    )
    return FitResult(labels, method, found.warning, len(sample))
