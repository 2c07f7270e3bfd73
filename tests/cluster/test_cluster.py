"""Category discovery: the small-input fallback, UMAP + HDBSCAN on separable data,
c-TF-IDF keywords by hand, and categorize() on a workspace with the fake embedder."""

from __future__ import annotations

import json

import numpy as np
from sklearn.metrics import adjusted_rand_score

from levers_cli.cluster import ClusterParams, categorize, cluster_embeddings
from levers_cli.cluster.algorithms import renumber_by_weight
from levers_cli.cluster.labels import ctfidf_keywords, short_label
from levers_cli.embed.base import l2_normalize
from levers_cli.ingest.pipeline import ingest_files


def test_small_input_fallback_groups_and_leaves_singletons_uncategorized():
    vectors = l2_normalize(np.array([[1, 0.05, 0], [1, 0, 0.05], [0, 1, 0], [0, 0, 1]]))
    result = cluster_embeddings(vectors, np.array([1.0, 1.0, 3.0, 1.0]), ClusterParams())
    labels = result.labels
    assert labels[0] == labels[1] != -1  # near-identical pair: one category
    assert labels[2] != -1 and labels[2] != labels[0]  # one query asked 3 times: a category
    assert labels[3] == -1  # one call alone: uncategorized
    assert "too few" in result.warning


def test_single_query_fallback():
    result = cluster_embeddings(l2_normalize(np.ones((1, 4))), np.array([5.0]), ClusterParams())
    assert result.labels.tolist() == [0]


def test_umap_hdbscan_recovers_separated_groups():
    rng = np.random.default_rng(0)
    centers = np.eye(32)[:3] * 5
    points = np.vstack([c + rng.normal(scale=0.3, size=(40, 32)) for c in centers])
    truth = np.repeat([0, 1, 2], 40)
    result = cluster_embeddings(l2_normalize(points), np.ones(120), ClusterParams())
    assert result.method == "umap+hdbscan"
    assert adjusted_rand_score(truth, result.labels) == 1.0


def test_ctfidf_keywords_by_hand():
    texts = ["lost card", "lost phone", "refund late"]
    # terms: words and two-word phrases. Cluster 0 (weights 2, 1): lost 3, card 2,
    # "lost card" 2, phone 1, "lost phone" 1 → 9 terms; cluster 1: refund, late,
    # "refund late" 1 each → 3; A = 12 / 2 = 6. idf = ln(1 + 6 / f): lost ln 3 = 1.099,
    # card = "lost card" = ln 4 = 1.386, phone = "lost phone" = ln 7 = 1.946.
    # scores: lost 3/9 * 1.099 = .366 > card = "lost card" = 2/9 * 1.386 = .308 >
    # phone = "lost phone" = 1/9 * 1.946 = .216. Shares of the 3 calls: lost 1, card and
    # "lost card" 2/3, phone and "lost phone" 1/3. lost → card → "lost card" covers 2/3 ≥ half
    # of lost's 1: it replaces lost and absorbs card → phone → "lost phone" repeats "lost".
    # Cluster 1: late, refund, "refund late" all 1/3 * ln 7; "refund late" absorbs both.
    keywords = ctfidf_keywords(texts, np.array([2.0, 1.0, 1.0]), np.array([0, 0, 1]), top=3)
    assert keywords == {0: ["lost card", "phone"], 1: ["refund late"]}
    assert short_label(keywords[0], []) == "lost card / phone"  # three words in all


def test_ctfidf_skips_rare_and_request_words():
    texts = ["refund policy", "refund bunch", "what does late delivery mean"]
    # cluster 0 has 11 calls: "bunch" is in 1 (1/11 < MIN_SHARE 0.1) and never a keyword,
    # though its idf ln(1 + 18 / 1) is the highest; refund (11/11), policy and "refund policy"
    # (10/11) stay: "refund policy" absorbs refund and policy. "what", "does" (stop / request
    # words) and "mean" (request word) never appear: cluster 1 is only "late delivery".
    keywords = ctfidf_keywords(texts, np.array([10.0, 1.0, 1.0]), np.array([0, 0, 1]), top=5)
    assert keywords == {0: ["refund policy"], 1: ["late delivery"]}


def test_ctfidf_weights_count_repeats():
    texts = ["refund policy", "refund late", "late delivery"]
    # weights 1, 1, 5 all in cluster 0: late 6, delivery 5, "late delivery" 5, refund 2, then
    # policy, "refund late", "refund policy" 1 each (alphabetical among ties). "late delivery"
    # covers 5/7 ≥ half of late's 6/7: it replaces late and absorbs delivery.
    keywords = ctfidf_keywords(texts, np.array([1.0, 1.0, 5.0]), np.zeros(3, dtype=int), top=3)
    assert keywords[0] == ["late delivery", "refund", "policy"]


def test_short_label_falls_back_to_exemplar():
    assert short_label([], ["How do I reset my password?"]) == "How do I reset my password?"
    assert short_label(["a b", "c", "d"], []) == "a b / c"  # 2 + 1 words; "d" would be a 4th


def test_renumber_by_weight():
    labels = np.array([3, 3, 7, -1, 7, 7])
    weights = np.array([10.0, 1.0, 1.0, 50.0, 1.0, 1.0])
    assert renumber_by_weight(labels, weights).tolist() == [0, 0, 1, -1, 1, 1]


def test_categorize_workspace_identical_queries_share_category(ws, tmp_path, fake_embedder):
    topics = {
        "billing": ["refund invoice charge {}", "invoice charge refund card {}"],
        "login": ["password reset login {}", "login password account locked {}"],
        "shipping": ["parcel delivery tracking {}", "tracking parcel courier late {}"],
    }
    rows = []
    for label, templates in topics.items():
        for i in range(12):
            rows.append({"text": templates[i % 2].format(f"w{i}"), "label": label})
    rows += [{"text": "password reset login w0", "label": "login"}] * 4  # exact repeats
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ingest_files(ws, [str(path)])
    result = categorize(ws, fake_embedder, ClusterParams())
    assert result.distinct_queries == 36 and result.embedded_now == 36
    per_query = ws.con.execute(
        "SELECT query_hash, count(DISTINCT category_id) FROM calls GROUP BY 1"
    ).fetchall()
    assert all(n == 1 for _, n in per_query)
    sizes = ws.con.execute("SELECT sum(size) FROM categories").fetchone()[0]
    assert sizes == ws.count("calls", "category_id >= 0")
    first = ws.con.execute("SELECT call_id, category_id FROM calls ORDER BY call_id").fetchall()
    again = categorize(ws, fake_embedder, ClusterParams())
    assert again.embedded_now == 0  # embeddings came from the workspace cache
    assert (
        ws.con.execute("SELECT call_id, category_id FROM calls ORDER BY call_id").fetchall()
        == first
    )
