"""Large-log machinery at small sizes: the seeded log generator, fit-on-a-sample + assignment,
and ``analyze`` on generated logs (weekly runs keep their category ids)."""

from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from levers_cli.analysis import analyze
from levers_cli.cluster import ClusterParams
from levers_cli.cluster import assign as assign_module
from levers_cli.cluster.assign import (
    centroids_of,
    classify,
    fit_and_assign,
    fit_sample,
    nearest_centroid,
    train_assigner,
)
from levers_cli.config import load_config
from levers_cli.store import Workspace
from tests.helpers import ROOT, SAMPLE_LOGS, FakeEmbedder


def _make_logs():
    spec = importlib.util.spec_from_file_location("make_logs", ROOT / "bench" / "make_logs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_nearest_centroid_by_hand(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(assign_module, "ASSIGN_BATCH", 2)  # three batches for five vectors
    h = np.sqrt(0.5)
    vectors = np.array([[1, 0], [0, 1], [0.6, 0.8], [h, -h], [-1, 0]], dtype=np.float32)
    centroids = np.array([[1, 0], [0, 1]], dtype=np.float32)
    ids = np.array([7, 9])
    # cosines to (c7, c9): (1, 0), (0, 1), (.6, .8), (.707, -.707), (-1, 0)
    assert nearest_centroid(vectors, centroids, ids, 0.7).tolist() == [7, 9, 9, 7, -1]
    # floor .75: .707 is below it, so that vector stays uncategorized, never forced
    assert nearest_centroid(vectors, centroids, ids, 0.75).tolist() == [7, 9, 9, -1, -1]


def test_centroids_are_call_weighted():
    vectors = np.array([[1, 0], [0, 1], [0, 1]], dtype=np.float32)
    # category 0 = rows 0 (3 calls) and 1 (1 call): (3, 1)/sqrt(10); row 2 is noise
    got = centroids_of(vectors, np.array([3.0, 1.0, 5.0]), np.array([0, 0, -1]))
    np.testing.assert_allclose(got, [[3 / np.sqrt(10), 1 / np.sqrt(10)]], rtol=1e-6)


def _arc(degrees: np.ndarray) -> np.ndarray:
    """Unit vectors at the given angles in the x-y plane of 3-d space."""
    radians = np.deg2rad(degrees)
    return np.stack([np.cos(radians), np.sin(radians), np.zeros_like(radians)], axis=1).astype(
        np.float32
    )


def test_classifier_follows_a_category_s_spread_where_the_centroid_cannot():
    # category 0 spreads over -60°..60° (centroid at 0°), category 1 sits tight at 73°..77°
    wide, tight = np.linspace(-60, 60, 41), np.linspace(73, 77, 9)
    fitted_vectors = _arc(np.concatenate([wide, tight]))
    fitted = np.array([0] * 41 + [1] * 9)
    queries = _arc(np.array([55.0, 76.0, -30.0, 180.0]))
    # by centroid, 55° is nearer category 1 (cos 18° ≈ 0.95 to 73°..77° vs cos 55° ≈ 0.57)
    centroids = centroids_of(fitted_vectors, np.ones(50), fitted)
    assert nearest_centroid(queries[:1], centroids, np.array([0, 1]), 0.0).tolist() == [1]
    # the classifier draws the boundary between 60° and 73°, so 55° stays in category 0;
    # 180° is predicted somewhere, but no fitted member of either category is within
    # cosine 0.5 of it (the nearest is 60°/-60°: cos 120° = -0.5), so it stays uncategorized
    assigner = train_assigner(fitted_vectors, fitted, seed=0)
    assert assigner is not None and assigner.ids.tolist() == [0, 1]
    got = classify(queries, assigner, fitted_vectors, fitted, min_similarity=0.5)
    assert got.tolist() == [0, 1, 0, -1]


def test_no_classifier_for_a_single_category():
    vectors = _arc(np.array([0.0, 5.0, 10.0]))
    assert train_assigner(vectors, np.array([0, 0, -1]), seed=0) is None


def test_fit_sample_is_seeded_and_bounded():
    assert fit_sample(5, 10, 42).tolist() == [0, 1, 2, 3, 4]
    chosen = fit_sample(1000, 50, 42)
    assert len(chosen) == len(set(chosen.tolist())) == 50
    assert np.array_equal(chosen, fit_sample(1000, 50, 42))
    assert np.all(np.diff(chosen) > 0)


def test_fit_on_a_sample_assigns_the_rest_to_their_blob():
    # three tight blobs around orthogonal directions in 16-d, 200 points each, plus one
    # point orthogonal to all three (cosine 0 to every centroid: below the 0.55 floor)
    rng = np.random.default_rng(0)
    blobs = []
    for axis in range(3):
        centre = np.zeros(16)
        centre[axis] = 1.0
        blobs.append(centre + 0.05 * rng.normal(size=(200, 16)))
    outlier = np.zeros((1, 16))
    outlier[0, 15] = 1.0
    vectors = np.vstack([*blobs, outlier]).astype(np.float32)
    vectors[:, 15] = np.where(np.arange(601) == 600, 1.0, 0.0)  # only the outlier uses axis 15
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    truth = np.repeat([0, 1, 2], 200)
    # the fit sees 20 points (the small-input clusterer); the other 581 are assigned
    params = ClusterParams(max_fit_queries=20)
    fit = fit_and_assign(vectors, np.ones(601), params)
    assert fit.fitted == 20 and "sample of 20 of 601" in fit.method
    assert "logistic regression" in fit.method
    labels = fit.labels[:600]
    assert fit.labels[600] == -1
    covered = labels >= 0
    assert covered.mean() > 0.95  # only sampled singletons can stay noise
    for blob in range(3):  # each blob maps to exactly one category and no other blob shares it
        found = set(labels[covered & (truth == blob)].tolist())
        assert len(found) == 1
    assert len(set(labels[covered].tolist())) == 3


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gen")
    make_logs = _make_logs()
    return make_logs.write(6_000, folder / "calls-6k.jsonl")


def test_make_logs_is_deterministic_and_keeps_copy_zero(tmp_path: Path, generated: Path):
    make_logs = _make_logs()
    again = make_logs.write(6_000, tmp_path / "again.jsonl.gz")
    with gzip.open(again, "rt", encoding="utf-8") as handle:
        assert handle.read() == generated.read_text(encoding="utf-8")
    lines = generated.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 6_000
    records = [json.loads(line) for line in lines]
    ids = [r["response"]["id"] for r in records]
    assert len(set(ids)) == 6_000
    with gzip.open(SAMPLE_LOGS, "rt", encoding="utf-8") as handle:
        sample = [json.loads(line) for line in handle]
    assert len(sample) == 4_807  # copy 0 is the sample itself, ids suffixed -0
    first = records[0]
    assert first["request"] == sample[0]["request"]
    assert first["response"]["id"] == sample[0]["response"]["id"] + "-0"
    # copy 1 (records 4,807…) rewords about half of the user messages (--vary 0.5)
    changed = sum(
        a["request"]["messages"][-1]["content"] != b["request"]["messages"][-1]["content"]
        for a, b in zip(records[4_807:], sample, strict=False)
    )
    assert 0.4 < changed / (6_000 - 4_807) < 0.6
    # a rewording is a function of the text: a conversation's resent history stays intact
    text, added = make_logs.vary("How do I rotate an API key?", 3, 1.0)
    assert make_logs.vary("How do I rotate an API key?", 3, 1.0) == (text, added)
    assert "How do I rotate an API key?" in text and added >= 2


def test_analyze_generated_logs_with_sampled_fit_and_weekly_run(tmp_path: Path, generated: Path):
    lines = generated.read_text(encoding="utf-8").splitlines(keepends=True)
    week1, week2 = tmp_path / "week1.jsonl", tmp_path / "week2.jsonl"
    week1.write_text("".join(lines[:2_500]), encoding="utf-8")
    week2.write_text("".join(lines[2_500:3_000]), encoding="utf-8")
    config = load_config(None)
    config.set("cluster", "max_fit_queries", 800)
    with Workspace(tmp_path / "w.duckdb") as ws:
        first = analyze(ws, [str(week1)], config=config, embedder=FakeEmbedder())
        assert first.ingest.read == first.ingest.stored == 2_500
        info = first.summary["categorization"]
        assert info["embedder_choice"] == {"name": "fake", "reason": "given by the caller"}
        assert info["distinct_queries"] > 800
        # categories are fitted within each app feature: the largest feature's distinct
        # queries are sampled down to 800 (the rest of it assigned), smaller ones fitted whole
        assert "fitted on a sample of 800 of " in info["method"]
        assert "within 5 feature(s)" in info["method"]
        # identical normalized queries share one category
        assert ws.con.execute(
            "SELECT count(*) FROM (SELECT query_hash FROM calls GROUP BY query_hash "
            "HAVING count(DISTINCT category_id) > 1)"
        ).fetchone() == (0,)
        before = {
            (feature, h): c
            for feature, h, c in ws.con.execute(
                "SELECT feature, query_hash, any_value(category_id) FROM calls GROUP BY ALL"
            ).fetchall()
        }
        second = analyze(ws, [str(week2)], config=config, embedder=FakeEmbedder())
        assert second.ingest.stored == 500
        after = {
            (feature, h): c
            for feature, h, c in ws.con.execute(
                "SELECT feature, query_hash, any_value(category_id) FROM calls GROUP BY ALL"
            ).fetchall()
        }
    # weekly run: every categorized query keeps its feature and its id within it (a query
    # asked in two features has a category in each; uncategorized ones may form new ones)
    assert all(after[h] == c for h, c in before.items() if c != -1)
    assert sum(c != -1 for c in before.values()) > 0.5 * len(before)
    assert "existing categories" in second.summary["categorization"]["method"]


def test_params_field_reaches_cluster_params():
    from levers_cli.analysis import cluster_params

    config = load_config(None)
    assert cluster_params(config).max_fit_queries == 30_000
    config.set("cluster", "max_fit_queries", 123)
    assert dataclasses.asdict(cluster_params(config))["max_fit_queries"] == 123


def test_a_sample_fit_scales_min_cluster_size_from_the_population():
    # full fit of 22,495: ceil(22,495 / 300) = 75, capped at 50; a 5,000 sample of it gets
    # ceil(50 × 5,000 / 22,495) = ceil(11.11) = 12, not ceil(5,000 / 300) = 17
    assert ClusterParams().min_cluster_size(22_495) == 50
    assert ClusterParams().min_cluster_size(5_000) == 17
    assert ClusterParams(population=22_495).min_cluster_size(5_000) == 12
    # never below the floor: 40 of 601 → ceil(5 × 40 / 601) = 1 → 5
    assert ClusterParams(population=601).min_cluster_size(40) == 5
    # a "sample" of everything is a full fit
    assert ClusterParams(population=5_000).min_cluster_size(5_000) == 17
