"""Names a person can read for each category: c-TF-IDF keywords and central exemplars.

c-TF-IDF as BERTopic defines it (Grootendorst 2022, "BERTopic: Neural topic modeling with a
class-based TF-IDF procedure", eq. 1): each category's documents are joined into one; the
term frequency is L1-normalized per category and weighted by ``log(1 + A / f_t)``, where ``A``
is the average number of words per category and ``f_t`` the term's frequency over all
categories. Each distinct query counts as many times as it was called.

Terms are single words and two-word phrases (``CountVectorizer(ngram_range=(1, 2))``, as
BERTopic's ``vectorizer_model`` allows: https://maartengr.github.io/BERTopic/getting_started/
vectorizers/vectorizers.html; a phrase joins the words left once stop words are dropped, so
"reset my password" holds "reset password"), so a phrase that names the category ("verify
identity") can outrank its words. Stop words are scikit-learn's
``ENGLISH_STOP_WORDS`` plus :data:`REQUEST_WORDS`, words that frame a request in any domain
("can you tell me what X means") rather than name a topic, and :data:`ACKNOWLEDGEMENTS`. A term
found in fewer than :data:`MIN_SHARE` of a category's calls does not describe it (a rare word
scores high on c-TF-IDF's idf alone: "bunch", "town" in 2 of 22 queries) and is skipped; a word
inside a higher-ranked phrase is not repeated.
"""

from __future__ import annotations

import re

import numpy as np

from levers_cli.schema import UNCATEGORIZED

#: c-TF-IDF's token pattern (``CountVectorizer(token_pattern=…)``).
TOKEN_PATTERN = r"(?u)\b[a-zA-Z][\w'-]+\b"
_TOKEN = re.compile(TOKEN_PATTERN)

#: Request-framing words, stop words for keywords in every domain (assumption: the verbs and
#: fillers of assistant / support requests, e.g. banking77's "what does pending mean",
#: clinc150's "can you tell me"; scikit-learn's list lacks them).
REQUEST_WORDS = frozenset(
    [
        "able",
        "also",
        "ask",
        "asking",
        "did",
        "does",
        "doing",
        "going",
        "got",
        "having",
        "hello",
        "help",
        "hey",
        "hi",
        "just",
        "kind",
        "know",
        "let",
        "like",
        "make",
        "mean",
        "means",
        "need",
        "ok",
        "okay",
        "possible",
        "quite",
        "really",
        "say",
        "says",
        "tell",
        "thank",
        "thanks",
        "think",
        "tried",
        "try",
        "trying",
        "use",
        "used",
        "using",
        "want",
        "wanted",
        "way",
        "wondering",
    ]
)

#: Acknowledgements that open a follow-up turn in any domain ("that makes sense, but…",
#: "great, thanks"): they name no topic (assumption, added with REQUEST_WORDS' reasoning).
ACKNOWLEDGEMENTS = frozenset(
    ["awesome", "cool", "great", "makes", "nice", "perfect", "sense", "sure", "yeah", "yes"]
)

#: A keyword must occur in at least this share of its category's calls (assumption: a word
#: in fewer than one call in ten is incidental to the category, not what it is about).
MIN_SHARE = 0.1


def ctfidf_keywords(
    texts: list[str], weights: np.ndarray, labels: np.ndarray, top: int
) -> dict[int, list[str]]:
    """Top ``top`` c-TF-IDF terms (words or two-word phrases) of each cluster (``-1``
    excluded), skipping terms in fewer than :data:`MIN_SHARE` of the cluster's calls and words
    already inside a higher-ranked phrase.

    Args:
        texts: the distinct queries, ``(n,)``.
        weights: their call counts, ``(n,)``.
        labels: their cluster labels, ``(n,)``.
        top: keywords to keep per cluster.

    Returns:
        cluster id → keywords, best first (possibly fewer than ``top``, empty when the
        cluster's queries hold only stop words).
    """
    from scipy import sparse
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    clusters = [int(c) for c in np.unique(labels) if c != UNCATEGORIZED]
    if not clusters:
        return {}
    vectorizer = CountVectorizer(
        stop_words=sorted(ENGLISH_STOP_WORDS | REQUEST_WORDS | ACKNOWLEDGEMENTS),
        token_pattern=TOKEN_PATTERN,
        ngram_range=(1, 2),
    )
    try:
        counts = vectorizer.fit_transform(texts)
    except ValueError:  # only stop words / no tokens at all
        return {c: [] for c in clusters}
    vocabulary = np.array(vectorizer.get_feature_names_out())
    index = {str(term): i for i, term in enumerate(vocabulary)}
    keep = labels != UNCATEGORIZED
    membership = sparse.csr_matrix(
        (
            np.where(keep, weights, 0.0).astype(np.float64),
            (labels.clip(min=0), np.arange(len(texts))),
        ),
        shape=(max(clusters) + 1, len(texts)),
    )
    rows = np.asarray((membership @ counts).todense())[clusters]
    present = np.asarray((membership @ (counts > 0).astype(np.float64)).todense())[clusters]
    calls = np.asarray(membership.sum(axis=1)).ravel()[clusters]
    term_totals = rows.sum(axis=0)
    avg_words = rows.sum() / len(clusters)
    idf = np.log1p(avg_words / np.where(term_totals == 0, np.inf, term_totals))
    row_sums = rows.sum(axis=1, keepdims=True)
    scores = rows / np.where(row_sums == 0, 1, row_sums) * idf
    share = present / np.where(calls == 0, 1, calls)[:, np.newaxis]
    scores = np.where(share >= MIN_SHARE - 1e-9, scores, 0.0)
    result: dict[int, list[str]] = {}
    for position, cluster in enumerate(clusters):
        chosen: list[str] = []
        for i in np.argsort(-scores[position], kind="stable"):
            if len(chosen) == top or scores[position, i] <= 0:
                break
            _add_term(chosen, str(vocabulary[i]), share[position], index)
        result[cluster] = chosen
    return result


def _add_term(chosen: list[str], term: str, share: np.ndarray, index: dict[str, int]) -> None:
    """Add ``term`` to ``chosen`` unless it repeats it: a word inside a chosen phrase is
    skipped; a phrase holding a chosen word replaces that word when it covers at least half
    of the word's calls (it is how the word is used in this category), else it is skipped."""
    words = term.split()
    if len(words) == 1:
        if not any(term in c.split() for c in chosen):
            chosen.append(term)
        return
    for position, previous in enumerate(chosen):
        if previous in words:
            if share[index[term]] >= share[index[previous]] / 2:
                chosen[position] = term
                chosen[:] = [c for c in chosen if c == term or c not in words]
            return
        if " " in previous and set(previous.split()) & set(words):
            return
    chosen.append(term)


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
    """A short name: the top one or two keywords (three words in all at most, a phrase
    counting as its words), or the first exemplar when there are none."""
    if keywords:
        parts: list[str] = []
        for term in keywords:
            if parts and sum(len(p.split()) for p in parts) + len(term.split()) > 3:
                break
            parts.append(term)
            if len(parts) == 2:
                break
        return " / ".join(parts)
    return (exemplars[0][:60] if exemplars else "(empty queries)").strip()


#: Between a category's feature and its name in ``categories.label`` ("support-faq › reset
#: password"): the name a person reads is feature › category (DESIGN §4.5).
LABEL_SEPARATOR = "›"
#: A category whose best keyword is in fewer than this share of its calls is named "mixed":
#: no word or phrase says what most of it is about (assumption: a name should hold for at
#: least one call in four).
MIXED_SHARE = 0.25
MIXED = "mixed"


def term_share(term: str, texts: list[str], weights: np.ndarray) -> float:
    """Share of the calls (``weights``: calls per text) whose text holds every word of
    ``term`` (c-TF-IDF's tokens, any case: a phrase's words may have stop words between).
    """
    words = set(term.lower().split())
    total = float(np.sum(weights))
    if total <= 0 or not words:
        return 0.0
    hit = sum(
        float(w)
        for text, w in zip(texts, weights, strict=True)
        if words <= set(_TOKEN.findall(text.lower()))
    )
    return hit / total


def category_name(
    keywords: list[str], exemplars: list[str], texts: list[str], weights: np.ndarray
) -> str:
    """The name of a category within its feature: :func:`short_label` of its keywords, or
    :data:`MIXED` when its best keyword is in fewer than :data:`MIXED_SHARE` of its calls
    (``texts``: its distinct queries, ``weights``: their calls); the first exemplar when it
    has no keyword."""
    if keywords and term_share(keywords[0], texts, weights) < MIXED_SHARE:
        return MIXED
    return short_label(keywords, exemplars)
