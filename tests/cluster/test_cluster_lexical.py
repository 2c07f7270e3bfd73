"""Lexical (TF-IDF/LSA) features beside the embeddings: the cosine identity by hand, the
no-shared-terms case, and two intents that only their words tell apart."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from levers_cli.cluster import ClusterParams, cluster_embeddings
from levers_cli.cluster.lexical import lexical_features, with_lexical
from levers_cli.embed.base import l2_normalize


def _two_intents(n: int = 40) -> list[str]:
    """``n`` texts about card delivery, then ``n`` about a refund, each with its own pair of
    greeting and closing words (8 × 5 combinations)."""
    greetings = ["hi", "hello", "hey", "morning", "excuse me", "dear team", "yo", "good day"]
    closings = ["please", "thanks", "asap", "cheers", "now"]
    pairs = [(g, c) for g in greetings for c in closings][:n]
    card = [f"{g} when will my new card arrive {c}" for g, c in pairs]
    refund = [f"{g} how do i get a refund for my order {c}" for g, c in pairs]
    return card + refund


def test_cosine_of_joined_vectors_is_the_weighted_mean_of_both_cosines():
    texts = _two_intents(10)
    vectors = l2_normalize(np.random.default_rng(1).normal(size=(20, 6))).astype(np.float32)
    lexical = lexical_features(texts, 128, 42)
    assert lexical is not None
    joined = with_lexical(vectors, texts, 0.5, 128, 42)
    assert joined.shape == (20, 6 + lexical.shape[1])
    # by hand: (cos_e + 0.5² cos_l) / (1 + 0.5²) for the pair (0, 15)
    expected = (vectors[0] @ vectors[15] + 0.25 * lexical[0] @ lexical[15]) / 1.25
    assert joined[0] @ joined[15] == pytest.approx(expected, abs=1e-5)
    assert np.linalg.norm(joined, axis=1) == pytest.approx(np.ones(20), abs=1e-5)


def test_no_shared_terms_and_zero_weight_leave_the_vectors_alone():
    vectors = l2_normalize(np.eye(3, 4)).astype(np.float32)
    assert lexical_features(["alpha", "beta", "gamma"], 128, 42) is None
    assert with_lexical(vectors, ["alpha", "beta", "gamma"], 0.5, 128, 42) is vectors
    assert with_lexical(vectors, ["a b", "a b", "a b"], 0.0, 128, 42) is vectors
    with pytest.raises(ValueError, match="2 texts for 3 vectors"):
        with_lexical(vectors, ["a", "b"], 0.5, 128, 42)


def test_words_split_two_intents_the_embeddings_cannot_tell_apart():
    # every vector is the same direction plus noise: the embeddings alone see one group
    rng = np.random.default_rng(0)
    vectors = l2_normalize(np.ones(16) + rng.normal(scale=0.3, size=(80, 16))).astype(np.float32)
    texts = _two_intents()
    truth = np.repeat([0, 1], 40)
    alone = cluster_embeddings(vectors, np.ones(80), ClusterParams())
    joined = cluster_embeddings(vectors, np.ones(80), ClusterParams(), texts)
    assert adjusted_rand_score(truth, alone.labels) < 0.5
    assert adjusted_rand_score(truth, joined.labels) == 1.0
