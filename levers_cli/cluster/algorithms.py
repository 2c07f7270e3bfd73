"""Category discovery on distinct query embeddings: UMAP → HDBSCAN (leaf selection) → noise
vote, run with several seeds and combined by evidence accumulation
(:mod:`levers_cli.cluster.consensus`) → refinements (:mod:`levers_cli.cluster.refine`:
near-duplicate categories merged, a coarse domain level), and a fallback for inputs too small
for them.

HDBSCAN's "leaf" selection (hdbscan docs, "Leaf clustering",
https://hdbscan.readthedocs.io/en/latest/parameter_selection.html) picks the finest stable
clusters instead of the excess-of-mass choice between a parent and its children, which is where
single runs of different seeds disagree most; evidence accumulation works best on such fine
base partitions (Fred & Jain 2005 combine over-split k-means runs). Measured on banking77 and
clinc150 (same defaults for both): leaf + consensus raised ARI 0.551 → 0.56 and 0.685 → 0.71
and the between-seed ARI from 0.87 / 0.89 to ≥ 0.93. Five runs of 300 epochs cost what three
of UMAP's default 500 do and agree better between seeds (0.947 vs 0.901 on banking77, 0.937
vs 0.923 on clinc150, consensus of seeds 100–104 vs 105–109).

UMAP + HDBSCAN is BERTopic's pipeline (Grootendorst 2022, arXiv:2203.05794; McInnes et al.
2018, arXiv:1802.03426; Campello et al. 2013, "Density-based clustering based on hierarchical
density estimates"). Measured against labelled intent sets in ``bench/categories.py``
(results in ``bench/results/categories.md``).

Clustering runs on *distinct* normalized queries, so identical queries always share a
category and a query repeated many times can neither be split nor form a cluster by sheer
repetition; call counts weight the categories' sizes, keywords and spend (../shared/cases C13).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from levers_cli.cluster.consensus import co_association_consensus, derived_seeds
from levers_cli.cluster.lexical import with_lexical
from levers_cli.cluster.refine import coarse_parents, merge_near_duplicates, reassign_noise
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
    #: inverse L2 regularization of the classifier that assigns the queries a sample fit left
    #: out (levers_cli/cluster/assign.py).
    assign_classifier_c: float = 10.0
    #: UMAP + HDBSCAN fit on at most this many distinct queries; the rest are assigned
    #: (levers_cli/cluster/assign.py).
    max_fit_queries: int = 30_000
    #: a noise point joins the category its neighbours vote for, counting neighbours at
    #: least this similar (cosine); see refine.reassign_noise.
    noise_min_similarity: float = 0.5
    #: categories whose centroids are at least this similar (cosine) are merged (1 = never).
    merge_min_similarity: float = 0.9
    #: HDBSCAN cluster selection: "leaf" (fine, homogeneous clusters) or "eom".
    hdbscan_selection: str = "leaf"
    #: UMAP + HDBSCAN runs (independent seeds) combined by evidence accumulation
    #: (levers_cli/cluster/consensus.py); 1 = a single run.
    consensus_runs: int = 5
    #: UMAP epochs of each consensus run (a single run keeps UMAP's own default).
    consensus_epochs: int = 300
    #: above this many distinct queries a single run is used (time budget).
    consensus_max_queries: int = 6000
    #: scale of the TF-IDF/LSA part appended to the embeddings for clustering (0 = none);
    #: see levers_cli/cluster/lexical.py.
    lexical_weight: float = 0.5
    #: SVD dimensions of that lexical part.
    lexical_dims: int = 128

    #: distinct queries a fitted sample stands for (set by levers_cli/cluster/assign.py when
    #: it fits on a sample; ``None`` = the fit sees them all).
    population: int | None = None

    def min_cluster_size(self, n_distinct: int) -> int:
        """HDBSCAN ``min_cluster_size`` scaled to the number of distinct queries.

        For a uniform sample of ``n_distinct`` out of ``population`` queries, the size the
        whole population would get is scaled down by the sampling fraction, so a category of
        the full data is found in the sample at the same relative size (its expected number
        of sampled members). Without this, a sample's size falls under the cap that a full fit
        reaches and categories merge: clinc150 fitted on 5,000 of 22,495 queries found 115
        categories against 150 (``bench/results/scale.md``).
        """
        if self.population is not None and self.population > n_distinct:
            full = self.min_cluster_size_for(self.population)
            return max(self.min_cluster_floor, math.ceil(full * n_distinct / self.population))
        return self.min_cluster_size_for(n_distinct)

    def min_cluster_size_for(self, n_distinct: int) -> int:
        """``ceil(n / min_cluster_divisor)`` clipped to ``[floor, cap]``."""
        scaled = math.ceil(n_distinct / self.min_cluster_divisor)
        return max(self.min_cluster_floor, min(self.min_cluster_cap, scaled))


@dataclass(frozen=True, slots=True)
class Clustering:
    """Labels per distinct query (``-1`` = uncategorized) and how they were found."""

    labels: np.ndarray
    method: str
    warning: str | None = None
    #: fine label → coarse domain (both as in ``labels``); ``None`` for the small-input path.
    parents: dict[int, int] | None = None


def cluster_embeddings(
    vectors: np.ndarray,
    weights: np.ndarray,
    params: ClusterParams,
    texts: Sequence[str] | None = None,
) -> Clustering:
    """Cluster distinct queries.

    Args:
        vectors: ``(n, d)`` float32, L2-normalized embeddings of the distinct queries.
        weights: ``(n,)`` call counts of each distinct query.
        params: clustering settings.
        texts: the ``n`` query texts; when given (and ``params.lexical_weight`` > 0), their
            TF-IDF/LSA features join the embeddings for UMAP + HDBSCAN
            (:mod:`levers_cli.cluster.lexical`).

    Returns:
        ``labels`` of shape ``(n,)`` int64, clusters numbered from 0, ``-1`` for noise
        (points no category's neighbours reach), and ``parents`` (label → coarse domain).
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
    if texts is not None:
        vectors = with_lexical(
            vectors, texts, params.lexical_weight, params.lexical_dims, params.seed
        )
    labels, parents = _umap_hdbscan(vectors, params)
    return Clustering(labels, "umap+hdbscan", parents=parents)


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


def _umap_hdbscan(vectors: np.ndarray, params: ClusterParams) -> tuple[np.ndarray, dict[int, int]]:
    """UMAP → HDBSCAN → noise vote, once or as a consensus of several seeds → merge →
    renumber 0..k-1 → coarse domains."""
    n = len(vectors)
    neighbors = min(params.umap_neighbors, n - 1)
    knn = exact_knn(vectors, neighbors)
    min_size = params.min_cluster_size(n)
    runs = params.consensus_runs if n <= params.consensus_max_queries else 1
    if runs <= 1:
        labels = _one_run(vectors, knn, params, params.seed, min_size, None)
    else:
        found = [
            _one_run(vectors, knn, params, s, min_size, params.consensus_epochs)
            for s in derived_seeds(params.seed, runs)
        ]
        labels = co_association_consensus(np.vstack(found))
        # HDBSCAN makes no cluster below min_cluster_size; a consensus group that small is
        # points the runs disagree on: noise, voted into a category by its neighbours below
        sizes = np.bincount(labels.clip(min=0), minlength=1)
        labels = np.where((labels >= 0) & (sizes[labels.clip(min=0)] >= min_size), labels, -1)
        labels = reassign_noise(labels, knn[0], knn[1], params.noise_min_similarity)
    labels = merge_near_duplicates(vectors, labels, params.merge_min_similarity)
    labels = _compact(labels)
    return labels, coarse_parents(vectors, labels)


def _one_run(
    vectors: np.ndarray,
    knn: tuple[np.ndarray, np.ndarray],
    params: ClusterParams,
    seed: int,
    min_size: int,
    epochs: int | None,
) -> np.ndarray:
    """One UMAP (given seed and epochs, ``None`` = UMAP's default) → HDBSCAN → noise vote;
    ``(n,)`` int64 labels, ``-1`` noise."""
    import warnings

    import hdbscan
    import umap

    n = len(vectors)
    reducer = umap.UMAP(
        n_neighbors=knn[0].shape[1],
        n_components=min(params.umap_components, n - 2),
        min_dist=0.0,
        metric="cosine",
        random_state=seed,
        init="spectral" if n > 100 else "random",
        n_jobs=1,
        precomputed_knn=knn,
        n_epochs=epochs,
    )
    with warnings.catch_warnings():
        # "transforming new data with transform will be unavailable": levers never transforms
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")
        reduced = reducer.fit_transform(vectors)
    model = hdbscan.HDBSCAN(
        min_cluster_size=min_size,
        metric="euclidean",
        cluster_selection_method=params.hdbscan_selection,
    )
    labels = model.fit_predict(reduced).astype(np.int64)
    return reassign_noise(labels, knn[0], knn[1], params.noise_min_similarity)


def _compact(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 in order of their old label, keeping ``-1``."""
    ids = np.unique(labels[labels != UNCATEGORIZED])
    return np.where(labels == UNCATEGORIZED, UNCATEGORIZED, np.searchsorted(ids, labels)).astype(
        np.int64
    )


def renumber_by_weight(labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 by descending call count (ties: lowest old label first),
    keeping ``-1``. Deterministic for the same input."""
    clusters = sorted(
        (c for c in np.unique(labels) if c != UNCATEGORIZED),
        key=lambda c: (-weights[labels == c].sum(), c),
    )
    mapping = {old: new for new, old in enumerate(clusters)}
    return np.array([mapping.get(c, UNCATEGORIZED) for c in labels], dtype=np.int64)
