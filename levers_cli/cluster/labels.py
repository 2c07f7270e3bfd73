"""Names a person can read for each category: c-TF-IDF keywords and central exemplars.

c-TF-IDF as BERTopic defines it (Grootendorst 2022, "BERTopic: Neural topic modeling with a
class-based TF-IDF procedure", eq. 1): each category's documents are joined into one; the
term frequency is L1-normalized per category and weighted by ``log(1 + A / f_t)``, where ``A``
is the average number of words per category and ``f_t`` the term's frequency over all
categories. Each distinct query counts as many times as it was called.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from levers_cli.schema import UNCATEGORIZED


@dataclass(frozen=True, slots=True)
class CategoryLabel:
    """Keywords (best first), a short label built from them, and exemplar queries."""

    keywords: list[str]
    label: str
    exemplars: list[str]


def ctfidf_keywords(
    texts: list[str], weights: np.ndarray, labels: np.ndarray, top: int
) -> dict[int, list[str]]:
    """Top ``top`` c-TF-IDF keywords of each cluster (``-1`` excluded).

    Args:
        texts: the distinct queries, ``(n,)``.
        weights: their call counts, ``(n,)``.
        labels: their cluster labels, ``(n,)``.
        top: keywords to keep per cluster.
    """
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer

    clusters = [int(c) for c in np.unique(labels) if c != UNCATEGORIZED]
    if not clusters:
        return {}
    vectorizer = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][\w'-]+\b")
    try:
        counts = vectorizer.fit_transform(texts)
    except ValueError:  # only stop words / no tokens at all
        return {c: [] for c in clusters}
    vocabulary = np.array(vectorizer.get_feature_names_out())
    membership = sparse.csr_matrix(
        (weights.astype(np.float64), (labels.clip(min=0), np.arange(len(texts)))),
        shape=(max(clusters) + 1, len(texts)),
    )
    keep = labels != UNCATEGORIZED
    membership = membership.multiply(keep[np.newaxis, :]).tocsr()
    tf = np.asarray((membership @ counts).todense())
    rows = tf[clusters]
    term_totals = rows.sum(axis=0)
    avg_words = rows.sum() / len(clusters)
    idf = np.log1p(avg_words / np.where(term_totals == 0, np.inf, term_totals))
    row_sums = rows.sum(axis=1, keepdims=True)
    scores = rows / np.where(row_sums == 0, 1, row_sums) * idf
    result: dict[int, list[str]] = {}
    for position, cluster in enumerate(clusters):
        order = np.argsort(-scores[position], kind="stable")[:top]
        result[cluster] = [str(vocabulary[i]) for i in order if scores[position, i] > 0]
    return result


def central_exemplars(
    texts: list[str], vectors: np.ndarray, members: np.ndarray, centroid: np.ndarray, k: int
) -> list[str]:
    """The ``k`` member queries most similar (cosine) to the category centroid.

    Args:
        texts: all distinct queries.
        vectors: their ``(n, d)`` unit embeddings.
        members: indexes of this category's queries.
        centroid: the category's ``(d,)`` unit centroid.
        k: how many to return.
    """
    similarity = vectors[members] @ centroid
    order = np.argsort(-similarity, kind="stable")[:k]
    return [texts[members[i]] for i in order]


def short_label(keywords: list[str], exemplars: list[str]) -> str:
    """A short name: the top three keywords, or the first exemplar when there are none."""
    if keywords:
        return " / ".join(keywords[:3])
    return (exemplars[0][:60] if exemplars else "(empty queries)").strip()
