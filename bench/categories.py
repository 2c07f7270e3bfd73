"""Category quality: levers' category discovery vs BERTopic's default pipeline, same process,
same embeddings, on labelled query sets (see ``bench/categories_data.py``).

For each set and seed it runs

- ``levers``: :func:`levers_cli.cluster.cluster_embeddings` with the default ``[cluster]``
  settings (the config file's values, only the seed changed): a consensus of 5 UMAP + HDBSCAN
  (leaf) runs with seeds derived from it, noise voted into categories, near-duplicates merged,
  Ward domains;
- ``BERTopic default``: ``BERTopic(umap_model=UMAP(n_neighbors=15, n_components=5,
  min_dist=0.0, metric="cosine", random_state=seed), hdbscan_model=HDBSCAN(
  min_cluster_size=10, metric="euclidean", cluster_selection_method="eom",
  prediction_data=True))`` on the same precomputed embeddings (BERTopic's documented defaults,
  https://maartengr.github.io/BERTopic/getting_started/parameter%20tuning/parametertuning.html;
  the ``random_state`` is the FAQ's reproducibility advice, https://maartengr.github.io/BERTopic/faq).

and scores NMI and ARI against the true labels with scikit-learn
(``normalized_mutual_info_score``, ``adjusted_rand_score``), counting noise points (``-1``) as
a label of their own, as issue #7's reference numbers do; plus the number of clusters, the
noise share, seconds, and the ARI between the runs of different seeds (stability). On
clinc150 the coarse level (levers' domains) is scored against the 10 true domains. It also
shows what the embeddings allow when the answer is given (k-means started at the true
centroids, 15-NN vote accuracy) and times ``cluster_embeddings`` on the sample logs' distinct
queries before (one run, "eom") and now.

Run: ``python bench/categories.py`` (needs ``pip install -e '.[bench]'`` for BERTopic);
writes ``bench/results/categories.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from categories_data import SETS, LabelledSet, embeddings, load_set, sample_queries

from levers_cli.analysis import cluster_params
from levers_cli.cluster import cluster_embeddings
from levers_cli.cluster.labels import central_exemplars, ctfidf_keywords, short_label
from levers_cli.cluster.refine import unit_centroids
from levers_cli.config import load_config

RESULTS = Path(__file__).resolve().parent / "results" / "categories.md"
TARGETS = {"banking77": (0.85, 0.60), "clinc150": (0.93, 0.72)}


def run_levers(
    vectors: np.ndarray, texts: list[str] | None, seed: int
) -> tuple[np.ndarray, dict[int, int], float]:
    """levers' labels, coarse parents and seconds for one seed; ``texts=None`` clusters the
    embeddings alone (no lexical features: the pipeline before issue #7's third round)."""
    params = dataclasses.replace(cluster_params(load_config(None)), seed=seed)
    start = time.perf_counter()
    result = cluster_embeddings(vectors, np.ones(len(vectors)), params, texts)
    return result.labels, result.parents or {}, time.perf_counter() - start


def run_bertopic(texts: list[str], vectors: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """BERTopic default pipeline's topics (``-1`` = outlier) and seconds for one seed."""
    from bertopic import BERTopic
    from hdbscan import HDBSCAN
    from umap import UMAP

    model = BERTopic(
        umap_model=UMAP(
            n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed
        ),
        hdbscan_model=HDBSCAN(
            min_cluster_size=10,
            metric="euclidean",
            cluster_selection_method="eom",
            prediction_data=True,
        ),
    )
    start = time.perf_counter()
    topics, _ = model.fit_transform(texts, embeddings=vectors)
    return np.asarray(topics, dtype=np.int64), time.perf_counter() - start


def ceiling(data: LabelledSet, vectors: np.ndarray) -> str:
    """Markdown row: what the embeddings allow when the answer is known. k-means started at
    the true labels' centroids (one pass of Lloyd iterations, scikit-learn ``KMeans(init=...,
    n_init=1)``) and the leave-one-out accuracy of a 15-nearest-neighbour vote (cosine)."""
    from sklearn.cluster import KMeans

    from levers_cli.cluster.algorithms import exact_knn

    names = sorted(set(data.labels))
    truth = np.array([names.index(t) for t in data.labels])
    _, centroids = unit_centroids(vectors, truth)
    found = KMeans(len(names), init=centroids, n_init=1, random_state=0).fit_predict(vectors)
    neighbours = exact_knn(vectors, 16)[0][:, 1:]
    votes = [Counter(truth[row].tolist()).most_common(1)[0][0] for row in neighbours]
    return (
        f"| {data.name} | {normalized_mutual_info_score(truth, found):.3f} "
        f"| {adjusted_rand_score(truth, found):.3f} | {np.mean(np.array(votes) == truth):.3f} |"
    )


def timing(seeds: list[int]) -> str:
    """Markdown rows: seconds of :func:`cluster_embeddings` on the sample logs' distinct queries
    (MiniLM), the pipeline before issue #7's second round (one UMAP run, HDBSCAN "eom") and
    now (the defaults)."""
    texts, weights = sample_queries()
    vectors = embeddings(LabelledSet("sample", texts, [""] * len(texts)))
    base = cluster_params(load_config(None))
    before = dataclasses.replace(base, consensus_runs=1, hdbscan_selection="eom")
    rows = []
    texts_of = {"before: 1 run, eom": None, "now: defaults": texts}
    for name, params in (("before: 1 run, eom", before), ("now: defaults", base)):
        seconds, clusters = [], []
        for seed in seeds:
            start = time.perf_counter()
            found = cluster_embeddings(
                vectors, weights, dataclasses.replace(params, seed=seed), texts_of[name]
            )
            seconds.append(time.perf_counter() - start)
            clusters.append(float(found.labels.max() + 1))
        rows.append(f"| {name} | {len(texts):,} | {spread(seconds, 1)} | {spread(clusters, 0)} |")
    return "\n".join(rows)


def scores(truth: list[str], labels: np.ndarray) -> dict[str, float]:
    """NMI, ARI (noise = its own label), clusters, noise share."""
    return {
        "nmi": normalized_mutual_info_score(truth, labels),
        "ari": adjusted_rand_score(truth, labels),
        "clusters": float(len(set(labels.tolist()) - {-1})),
        "noise": float(np.mean(labels == -1)),
    }


def spread(values: list[float], digits: int = 3) -> str:
    """``mean ± half-range`` over seeds."""
    half = (max(values) - min(values)) / 2
    return f"{np.mean(values):.{digits}f} ± {half:.{digits}f}"


def stability(runs: list[np.ndarray]) -> float:
    """Mean ARI between every pair of seeds' labels."""
    pairs = [adjusted_rand_score(a, b) for a, b in itertools.combinations(runs, 2)]
    return float(np.mean(pairs)) if pairs else 1.0


def label_examples(name: str, texts: list[str], truth: list[str], labels: np.ndarray) -> str:
    """Markdown: 8 categories (every ~tenth by size) with keywords, short name, exemplars
    and the true labels of their members."""
    vectors = embeddings(load_set(name))
    weights = np.ones(len(texts))
    words = ctfidf_keywords(texts, weights, labels, 5)
    ids, centroids = unit_centroids(vectors, labels)
    by_size = sorted(ids, key=lambda c: -int((labels == c).sum()))
    picked = by_size[:: max(1, len(by_size) // 8)][:8]
    lines = [
        "| levers short name | c-TF-IDF keywords | 3 most central exemplars "
        "| true labels of members |",
        "|---|---|---|---|",
    ]
    for cluster in picked:
        members = np.flatnonzero(labels == cluster)
        centroid = centroids[np.searchsorted(ids, cluster)]
        examples = central_exemplars(texts, vectors, members, centroid, 3)
        counts = Counter(truth[i] for i in members).most_common(3)
        true = ", ".join(f"{t} ({n}/{len(members)})" for t, n in counts)
        lines.append(
            f"| {short_label(words[int(cluster)], examples)} | {', '.join(words[int(cluster)])} "
            f"| {' · '.join(e.replace('|', '/') for e in examples)} | {true} |"
        )
    return "\n".join(lines)


def bench(sets: list[str], seeds: list[int]) -> str:
    """Run every set and seed; return the Markdown report."""
    rows, coarse_rows, extra, ceilings = [], [], [], []
    # compile numba (UMAP, pynndescent) outside the timings; > 100 queries, so UMAP's
    # spectral initialisation (the path every timed set takes) is compiled too
    warm = load_set("arena-hard")
    run_levers(embeddings(warm), warm.texts, 0)
    run_bertopic(warm.texts, embeddings(warm), 0)
    for name in sets:
        data = load_set(name)
        vectors = embeddings(data)
        methods = ("levers", "levers, embeddings alone", "BERTopic default")
        found: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
        runs: dict[str, list[np.ndarray]] = {m: [] for m in methods}
        coarse: list[dict[str, float]] = []
        for seed in seeds:
            alone, _, seconds = run_levers(vectors, None, seed)
            found["levers, embeddings alone"].append(
                {**scores(data.labels, alone), "seconds": seconds}
            )
            runs["levers, embeddings alone"].append(alone)
            labels, parents, seconds = run_levers(vectors, data.texts, seed)
            found["levers"].append({**scores(data.labels, labels), "seconds": seconds})
            runs["levers"].append(labels)
            if data.coarse is not None:
                domains = np.array([parents.get(int(c), -1) for c in labels])
                coarse.append(scores(data.coarse, domains))
            topics, seconds = run_bertopic(data.texts, vectors, seed)
            found["BERTopic default"].append({**scores(data.labels, topics), "seconds": seconds})
            runs["BERTopic default"].append(topics)
            print(
                f"{name} seed {seed}: levers {found['levers'][-1]} | "
                f"bertopic {found['BERTopic default'][-1]}",
                file=sys.stderr,
                flush=True,
            )
        target = TARGETS.get(name)
        if target is not None:
            ceilings.append(ceiling(data, vectors))
        for method, results in found.items():
            column = {k: [r[k] for r in results] for k in results[0]}
            noise = spread([100 * x for x in column["noise"]], 1)
            rows.append(
                f"| {name} ({len(data.texts):,} / {len(set(data.labels))} labels) | {method} "
                f"| {spread(column['nmi'])} | {spread(column['ari'])} "
                f"| {spread(column['clusters'], 0)} | {noise} % "
                f"| {spread(column['seconds'], 1)} | {stability(runs[method]):.3f} "
                f"| {'' if target is None else f'NMI ≥ {target[0]}, ARI ≥ {target[1]}'} |"
            )
        if coarse:
            column = {k: [r[k] for r in coarse] for k in coarse[0]}
            coarse_rows.append(
                f"| {name} domains ({len(set(data.coarse or []))}) | {spread(column['nmi'])} "
                f"| {spread(column['ari'])} | {spread(column['clusters'], 0)} |"
            )
        if name == "banking77":
            extra.append(label_examples(name, data.texts, data.labels, runs["levers"][0]))
    head = [
        "# Category quality: levers vs BERTopic's default pipeline",
        "",
        f"Written by `python bench/categories.py` (seeds {', '.join(map(str, seeds))}; "
        "all-MiniLM-L6-v2 embeddings, both methods in the same process on the same vectors). "
        "Each cell: mean ± half the range over the seeds. NMI/ARI count noise points as a "
        "label of their own. Stability: mean ARI between the runs of different seeds. "
        "Seconds are wall time on the machine that ran it (shared, 2 cores).",
        "",
        "| set (queries / labels) | method | NMI | ARI | clusters | noise | seconds "
        "| stability (ARI between seeds) | issue #7 target |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    if coarse_rows:
        head += [
            "",
            "## Coarse level (levers' domains) against the true domains",
            "",
            "| set | NMI | ARI | domains |",
            "|---|---|---|---|",
            *coarse_rows,
        ]
    if ceilings:
        head += [
            "",
            "## What the embeddings allow (the answer given)",
            "",
            "k-means started at the true labels' centroids, and the leave-one-out accuracy of a "
            "15-nearest-neighbour vote: no method that clusters these MiniLM vectors without the "
            "labels can be expected to pass these.",
            "",
            "| set | k-means at true centroids NMI | ARI | 15-NN vote accuracy |",
            "|---|---|---|---|",
            *ceilings,
        ]
    if extra:
        head += ["", "## banking77 categories (seed " + str(seeds[0]) + ")", "", *extra]
    head += [
        "",
        "## Clustering seconds on the sample logs' distinct queries",
        "",
        "`cluster_embeddings` on the MiniLM vectors of `sample_logs/app_logs.jsonl.gz`'s "
        "distinct queries (weights = calls), same seeds; the first call of a process also "
        "compiles UMAP's numba code (not counted: a warm-up run comes first).",
        "",
        "| pipeline | distinct queries | seconds | clusters |",
        "|---|---|---|---|",
        timing(seeds),
    ]
    return "\n".join(head) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    report = bench(args.sets, args.seeds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
