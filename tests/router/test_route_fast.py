"""The router's vectorized scoring (one matrix product, per-route best by ``reduceat``) and
keyword lookup give what the per-route loop gave, on a hand-made config."""

from __future__ import annotations

import re

import numpy as np
import pytest

from levers_cli.embed.base import l2_normalize
from levers_cli.router import RouteMatch, Router


class TableEmbedder:
    """Looks each text's vector up in a table (unit vectors in 3 dimensions)."""

    name = "table"
    key = "table:3"
    dimension = 3

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return l2_normalize(np.array([self.table[t] for t in texts], dtype=np.float32))


CONFIG = {
    "embedder": {"name": "table", "dimension": 3},
    "default_route": {"name": "default", "model": "big"},
    "keyword_overrides": {
        "OWASP": {"route": "keyword-strong", "model": "strong-1"},
        "owasp": {"route": "keyword-other", "model": "other"},  # same word: the first wins
        "rm -rf": {"route": "keyword-strong", "model": "strong-1"},
    },
    "routes": [
        {"name": "x", "model": "cheap-x", "score_threshold": 0.8,
         "utterance_vectors": [[1, 0, 0], [0.8, 0.6, 0]]},
        {"name": "empty", "model": "cheap-e", "score_threshold": 0.1, "utterance_vectors": []},
        {"name": "y", "model": "cheap-y", "score_threshold": 0.9,
         "utterance_vectors": [[0, 1, 0]]},
        {"name": "z", "model": "cheap-z", "score_threshold": 0.5,
         "utterance_vectors": [[0, 0, 1], [0, 0.6, 0.8], [0.6, 0, 0.8]]},
    ],
}  # fmt: skip
TABLE = {
    "near x": [1, 0.05, 0],
    "mostly y": [-0.5, 1, -0.5],  # y best (0.816) but under its threshold 0.9: default
    "near z": [0.5, 0.1, 0.9],
    "opposite": [-1, -1, -1],
    "please check OWASP rules": [1, 1, 1],
    "Owasp again": [1, 1, 1],
    "owaspish": [0, 0.97, 0.1],  # not a whole word: scored, goes to y
    "then rm -rf /tmp": [0, 0, 1],
}


def reference(config: dict, embedder: TableEmbedder, text: str) -> RouteMatch:
    """The router's rule written out plainly (the loop it had before it was vectorized)."""
    overrides = config["keyword_overrides"]
    words = "|".join(re.escape(k) for k in sorted(overrides, key=len, reverse=True))
    hit = re.search(rf"\b({words})\b", text, re.IGNORECASE)
    if hit:
        rule = overrides[next(k for k in overrides if k.lower() == hit.group(1).lower())]
        return RouteMatch(rule["route"], 1.0, rule["model"], "keyword")
    vector = embedder.encode([text])[0]
    best = [
        max((np.asarray(u, dtype=np.float32) @ vector for u in r["utterance_vectors"]),
            default=-1.0)
        for r in config["routes"]
    ]  # fmt: skip
    index = int(np.argmax(best))
    route = config["routes"][index]
    if best[index] >= route["score_threshold"]:
        return RouteMatch(route["name"], float(best[index]), route["model"], "similarity")
    default = config["default_route"]
    return RouteMatch(default["name"], float(best[index]), default["model"], "default")


def test_vectorized_routing_matches_the_plain_rule():
    embedder = TableEmbedder(TABLE)
    router = Router(CONFIG, embedder)
    texts = list(TABLE)
    many = router.route_many(texts)
    for text, match in zip(texts, many, strict=True):
        expected = reference(CONFIG, embedder, text)
        assert (match.route, match.model, match.via) == (
            expected.route, expected.model, expected.via,
        ), text  # fmt: skip
        assert match.score == pytest.approx(expected.score, abs=1e-6)
        single = router.route(text)
        assert single.route == match.route and single.score == pytest.approx(match.score)
    got = {t: (m.route, m.via) for t, m in zip(texts, many, strict=True)}
    assert got == {
        "near x": ("x", "similarity"),
        "mostly y": ("default", "default"),
        "near z": ("z", "similarity"),
        "opposite": ("default", "default"),
        "please check OWASP rules": ("keyword-strong", "keyword"),
        "Owasp again": ("keyword-strong", "keyword"),
        "owaspish": ("y", "similarity"),
        "then rm -rf /tmp": ("keyword-strong", "keyword"),
    }
    # hand-computed: "near x" is (1, 0.05, 0)/|.| against x's (1, 0, 0)
    assert many[0].score == pytest.approx(1 / np.sqrt(1 + 0.05**2), abs=1e-6)
    # "mostly y" is (-0.5, 1, -0.5)/|.|: y's 1/√1.5 ≈ 0.816 is the best, under y's 0.9
    assert many[1].score == pytest.approx(1 / np.sqrt(1.5), abs=1e-6)


def test_keyword_queries_are_not_embedded():
    embedder = TableEmbedder(TABLE)
    router = Router(CONFIG, embedder)
    assert router.route("please check OWASP rules").via == "keyword"
    assert embedder.calls == []
    router.route_many(["Owasp again", "near x", "then rm -rf /tmp", "near z"])
    assert embedder.calls == [["near x", "near z"]]
    assert router.route_many([]) == []


def test_a_router_without_routes_sends_everything_to_the_default():
    config = {**CONFIG, "routes": [], "keyword_overrides": {}}
    match = Router(config, TableEmbedder(TABLE)).route("near x")
    assert match == RouteMatch("default", 0.0, "big", "default")
