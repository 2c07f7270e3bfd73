"""Category discovery on distinct query embeddings: UMAP → HDBSCAN, and a fallback for
inputs too small for them.

Clustering runs on *distinct* normalized queries, so identical queries always share a
category and a query repeated many times can neither be split nor form a cluster by sheer
repetition; call counts weight the categories' sizes, keywords and spend (../shared/cases C13).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from levers_cli.schema import UNCATEGORIZED


@dataclass(frozen=True, slots=True)
class ClusterParams:
    """Settings of the ``[cluster]`` config section (see ``defaults.toml`` for sources)."""

    seed: int = 42
    umap_neighbors: int = 15
    umap_components: int = 5
    min_cluster_floor: int = 5
    min_cluster_cap: int = 50
    min_cluster_divisor: int = 300
    small_input_max: int = 20
    small_input_distance: float = 0.4
    assign_min_similarity: float = 0.55

    def min_cluster_size(self, n_distinct: int) -> int:
        """HDBSCAN ``min_cluster_size`` scaled to the number of distinct queries."""
        scaled = math.ceil(n_distinct / self.min_cluster_divisor)
        return max(self.min_cluster_floor, min(self.min_cluster_cap, scaled))


@dataclass(frozen=True, slots=True)
class Clustering:
    """Labels per distinct query (``-1`` = uncategorized) and how they were found."""

    labels: np.ndarray
    method: str
    warning: str | None = None


def cluster_embeddings(
    vectors: np.ndarray, weights: np.ndarray, params: ClusterParams
) -> Clustering:
    """Cluster distinct queries.

    Args:
        vectors: ``(n, d)`` float32, L2-normalized embeddings of the distinct queries.
        weights: ``(n,)`` call counts of each distinct query.
        params: clustering settings.

    Returns:
        ``labels`` of shape ``(n,)`` int64, clusters numbered from 0, ``-1`` for noise.
    """
    n = len(vectors)
    if n == 0:
        return Clustering(np.zeros(0, dtype=np.int64), "none")
    if n <= params.small_input_max:
        labels = _agglomerative(vectors, weights, params.small_input_distance)
        warning = (
            f"only {n} distinct quer{'y' if n == 1 else 'ies'}: too few for UMAP + HDBSCAN; "
            f"grouped by cosine distance < {params.small_input_distance} instead"
        )
        return Clustering(labels, "agglomerative (small input)", warning)
    return Clustering(_umap_hdbscan(vectors, params), "umap+hdbscan")


def _agglomerative(vectors: np.ndarray, weights: np.ndarray, distance: float) -> np.ndarray:
    """Average-linkage groups closer than ``distance`` (cosine); a group of one call is
    uncategorized, as HDBSCAN would call it noise."""
    n = len(vectors)
    if n == 1:
        groups = np.zeros(1, dtype=np.int64)
    else:
        from sklearn.cluster import AgglomerativeClustering

        model = AgglomerativeClustering(
            n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance
        )
        groups = model.fit_predict(vectors).astype(np.int64)
    calls = np.bincount(groups, weights=weights)
    return np.where(calls[groups] >= 2, groups, UNCATEGORIZED).astype(np.int64)


def exact_knn(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest neighbours by cosine distance (each point first, at distance 0).

    Brute force with scikit-learn: exact, and in a fresh process far faster than compiling
    UMAP's approximate search (pynndescent) for the tens of thousands of queries levers fits on.

    Returns:
        ``(indices (n, k) int64, distances (n, k) float32)``.
    """
    from sklearn.neighbors import NearestNeighbors

    search = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(vectors)
    distances, indices = search.kneighbors(vectors)
    return indices.astype(np.int64), distances.astype(np.float32)


def _umap_hdbscan(vectors: np.ndarray, params: ClusterParams) -> np.ndarray:
    import warnings

    import hdbscan
    import umap

    n = len(vectors)
    neighbors = min(params.umap_neighbors, n - 1)
    reducer = umap.UMAP(
        n_neighbors=neighbors,
        n_components=min(params.umap_components, n - 2),
        min_dist=0.0,
        metric="cosine",
        random_state=params.seed,
        init="spectral" if n > 100 else "random",
        n_jobs=1,
        precomputed_knn=exact_knn(vectors, neighbors),
    )
    with warnings.catch_warnings():
        # "transforming new data with transform will be unavailable": levers never transforms
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")
        reduced = reducer.fit_transform(vectors)
    model = hdbscan.HDBSCAN(
        min_cluster_size=params.min_cluster_size(n),
        metric="euclidean",
        cluster_selection_method="eom",
    )
    return model.fit_predict(reduced).astype(np.int64)


def renumber_by_weight(labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 by descending call count (ties: lowest old label first),
    keeping ``-1``. Deterministic for the same input."""
    clusters = sorted(
        (c for c in np.unique(labels) if c != UNCATEGORIZED),
        key=lambda c: (-weights[labels == c].sum(), c),
    )
    mapping = {old: new for new, old in enumerate(clusters)}
    return np.array([mapping.get(c, UNCATEGORIZED) for c in labels], dtype=np.int64)
