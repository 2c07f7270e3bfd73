"""Category refinements (levers_cli/cluster/refine.py) on hand-made inputs, and what they do
inside cluster_embeddings: noise re-assigned by neighbour vote with a floor, near-duplicate
categories merged, coarse domains, and agreement between seeds."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from levers_cli.cluster import ClusterParams, cluster_embeddings
from levers_cli.cluster.consensus import _upgma, co_association_consensus, derived_seeds
from levers_cli.cluster.refine import (
    coarse_parents,
    merge_near_duplicates,
    reassign_noise,
    unit_centroids,
)
from levers_cli.embed.base import l2_normalize


def test_unit_centroids_by_hand():
    vectors = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=np.float32)
    ids, centroids = unit_centroids(vectors, np.array([3, 3, -1, 5]))
    # category 3 = mean of (1,0) and (0,1) → (.707, .707); category 5 = (0, 1); -1 ignored
    assert ids.tolist() == [3, 5]
    np.testing.assert_allclose(centroids, [[0.70710678, 0.70710678], [0, 1]], atol=1e-6)


def test_reassign_noise_similarity_weighted_vote():
    labels = np.array([0, 0, 1, -1, -1, -1])
    # point 3: neighbours 0 (sim .6), 2 (sim .9), 1 (sim .55): votes 0 → 1.15, 1 → 0.9 → 0
    # point 4: neighbours 2 (sim .8), 3 (noise, sim .99), 0 (sim .4 < floor .5) → 1
    # point 5: neighbours 0 (sim .45), 2 (sim .3): both below the floor → stays -1
    neighbors = np.array(
        [[0, 1, 2, 3], [1, 0, 2, 3], [2, 0, 1, 3], [3, 0, 2, 1], [4, 2, 3, 0], [5, 0, 2, 1]]
    )
    similarity = np.array(
        [
            [1, 0.9, 0.1, 0.6],
            [1, 0.9, 0.1, 0.55],
            [1, 0.1, 0.1, 0.9],
            [1, 0.6, 0.9, 0.55],
            [1, 0.8, 0.99, 0.4],
            [1, 0.45, 0.3, 0.2],
        ]
    )
    result = reassign_noise(labels, neighbors, 1 - similarity, min_similarity=0.5)
    assert result.tolist() == [0, 0, 1, 0, 1, -1]
    assert labels.tolist() == [0, 0, 1, -1, -1, -1]  # the input is not changed


def test_reassign_noise_votes_use_hdbscan_labels_not_new_ones():
    # point 2 is noise whose only voter is point 1, also noise: it must stay -1 even though
    # point 1 gets category 0 in the same pass (the result does not depend on the order)
    labels = np.array([0, -1, -1])
    neighbors = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0]])
    similarity = np.array([[1, 0.9, 0.1], [1, 0.9, 0.1], [1, 0.9, 0.1]])
    assert reassign_noise(labels, neighbors, 1 - similarity, 0.5).tolist() == [0, 0, -1]


def test_merge_near_duplicates_by_centroid_similarity():
    angle = np.deg2rad(10)  # cos 10° = 0.985 ≥ 0.9: categories 0 and 1 are one intent
    vectors = np.array(
        [[1, 0, 0], [1, 0, 0], [np.cos(angle), np.sin(angle), 0], [0, 0, 1], [0, 1, 0]],
        dtype=np.float32,
    )
    labels = np.array([0, 0, 1, 2, -1])
    assert merge_near_duplicates(vectors, labels, 0.9).tolist() == [0, 0, 0, 2, -1]
    assert merge_near_duplicates(vectors, labels, 0.99).tolist() == [0, 0, 1, 2, -1]
    assert merge_near_duplicates(vectors, labels, 1.0).tolist() == [0, 0, 1, 2, -1]


def test_coarse_parents_ward_at_sqrt_k():
    # categories 0 and 1 at 60° (cos .5), 2 and 3 at 60° too, the pairs orthogonal (cos 0);
    # k = 4 categories → round(sqrt(4)) = 2 domains: Ward joins the near pairs first
    c60, s60 = 0.5, np.sqrt(3) / 2
    vectors = np.array(
        [[1, 0, 0, 0], [c60, s60, 0, 0], [0, 0, 1, 0], [0, 0, c60, s60]], dtype=np.float32
    )
    assert coarse_parents(vectors, np.array([0, 1, 2, 3])) == {0: 0, 1: 0, 2: 1, 3: 1}
    # k = 2 → round(sqrt(2)) = 1 domain; one category → its own domain
    assert coarse_parents(vectors[:2], np.array([0, 1])) == {0: 0, 1: 0}
    assert coarse_parents(vectors[:1], np.array([4])) == {4: 0}


def _blobs(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Four tight groups of 30 in 48 dimensions, plus a loose fringe point per group."""
    rng = np.random.default_rng(seed)
    centers = np.eye(48)[:4] * 4
    dense = [c + rng.normal(scale=0.35, size=(30, 48)) for c in centers]
    fringe = [c + rng.normal(scale=1.2, size=(1, 48)) for c in centers]
    points = np.vstack(dense + fringe)
    truth = np.concatenate([np.repeat(np.arange(4), 30), np.arange(4)])
    return l2_normalize(points.astype(np.float32)), truth


def test_cluster_embeddings_recovers_groups_and_keeps_far_fringe_out():
    vectors, truth = _blobs(0)
    result = cluster_embeddings(vectors, np.ones(124), ClusterParams())
    labels = result.labels
    assert result.method == "umap+hdbscan"
    # every dense point in its group's category, groups numbered from 0
    assert adjusted_rand_score(truth[:120], labels[:120]) == 1.0
    assert sorted(set(labels[:120].tolist())) == [0, 1, 2, 3]
    # a fringe point sits at cosine ≈ 16 / sqrt((16 + 48 * 1.44) * (16 + 48 * 0.1225)) ≈ 0.37
    # from its group's members, below the 0.5 vote floor: it joins its own group when the
    # runs put it there, else it stays uncategorized, never in another group
    own = [labels[truth == g][0] for g in range(4)]
    assert all(labels[120 + g] in (own[g], -1) for g in range(4))
    # 4 categories → round(sqrt(4)) = 2 domains of 2 categories each
    assert sorted(result.parents) == [0, 1, 2, 3]
    assert sorted(list(result.parents.values()).count(d) for d in (0, 1)) == [2, 2]


@pytest.mark.parametrize("other_seed", [7])
def test_two_seeds_agree(other_seed):
    vectors, _ = _blobs(1)
    first = cluster_embeddings(vectors, np.ones(len(vectors)), ClusterParams(seed=42)).labels
    second = cluster_embeddings(
        vectors, np.ones(len(vectors)), ClusterParams(seed=other_seed)
    ).labels
    assert adjusted_rand_score(first, second) >= 0.9


def test_consensus_majority_co_association_by_hand():
    runs = np.array([[0, 0, 1, 1, -1], [0, 0, 0, 1, -1], [0, 0, 1, 1, 1]])
    # co-association (share of runs together): p0-p1 3/3; p2-p3 2/3; p2-p0 1/3; p4-p2 1/3,
    # p4-p3 1/3; p3-p0 0. Average linkage on 1 - co-association, merging below 0.5:
    # {p0,p1} at 0; {p2,p3} at 1/3; then {p2,p3}-p4 = (2/3 + 2/3) / 2 = 2/3 ≥ 0.5: stop
    assert co_association_consensus(runs).tolist() == [0, 0, 1, 1, 2]


def test_consensus_noise_everywhere_stays_noise_and_one_run_is_itself():
    runs = np.array([[0, 0, -1, 1, 1], [5, 5, -1, 7, 7]])
    assert co_association_consensus(runs).tolist() == [0, 0, -1, 1, 1]
    assert co_association_consensus(np.array([[2, 2, 9, -1]])).tolist() == [0, 0, 1, -1]


def test_upgma_weights_atoms_by_size():
    # a-b 0.2, a-c 0.4, b-c 0.9; sizes 3, 1, 1; cut 0.6. a+b merge at 0.2; then
    # d(ab, c) = (3 * 0.4 + 1 * 0.9) / 4 = 0.525 < 0.6 → one group. Unweighted it would be
    # (0.4 + 0.9) / 2 = 0.65 ≥ 0.6 and c would stay apart.
    distance = np.array([[0, 0.2, 0.4], [0.2, 0, 0.9], [0.4, 0.9, 0]])
    assert _upgma(distance, np.array([3, 1, 1]), 0.6).tolist() == [0, 0, 0]
    assert _upgma(distance, np.array([1, 1, 1]), 0.6).tolist() == [0, 0, 2]


def test_derived_seeds_do_not_overlap_between_neighbouring_seeds():
    first, second = derived_seeds(42, 3), derived_seeds(43, 3)
    assert len(set(first)) == 3 and not set(first) & set(second)
    assert derived_seeds(42, 3) == first  # deterministic
