"""Build the routes of a native router from a workspace's categories (shared by the routing
lever's decision and ``levers export router-config``, so both route the same calls).

Utterances: per category, 5–20 training members chosen by maximal marginal relevance
(Carbonell & Goldstein, SIGIR 1998): each next pick maximizes λ·sim(centroid) −
(1−λ)·max sim(picked). Held out: ``[export] router_holdout_share`` of each category's
distinct queries (by hash order, so the split is stable), never used as utterances or for
thresholds. ``score_threshold``: the ``[export] router_threshold_quantile`` quantile of the
category's other training members' scores against its utterances, never below
``[export] router_min_threshold``.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from levers_cli.embed import embedder_name
from levers_cli.errors import LeversError
from levers_cli.redact import redact
from levers_cli.schema import CATEGORY_ID

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.store import Workspace

#: Decimals kept of each vector component in levers-router.json.
VECTOR_DECIMALS = 4


class NoRoutesError(LeversError):
    """The workspace has no categories with centroids and embedded members."""


def _slug(label: str, used: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40] or "route"
    name, n = base, 2
    while name in used:
        name, n = f"{base}-{n}", n + 1
    used.add(name)
    return name


def mmr(vectors: np.ndarray, centroid: np.ndarray, k: int, lam: float) -> list[int]:
    """Indices of ``k`` rows of ``vectors`` ((n, d), L2-normalized) by maximal marginal
    relevance to ``centroid`` ((d,)): relevance weight ``lam``, diversity ``1 - lam``."""
    relevance = vectors @ centroid
    picked = [int(np.argmax(relevance))]
    closest = vectors @ vectors[picked[0]]
    while len(picked) < min(k, len(vectors)):
        score = lam * relevance - (1 - lam) * closest
        score[picked] = -np.inf
        nxt = int(np.argmax(score))
        picked.append(nxt)
        closest = np.maximum(closest, vectors @ vectors[nxt])
    return picked


#: The highest route threshold written (cosine similarity): below 1.0 by float rounding's
#: margin, so a route's own utterances always match it.
MAX_THRESHOLD = 0.9999


def _members(ws: Workspace) -> tuple[dict[int, dict[str, Any]], str]:
    cats = ws.con.execute(
        """SELECT category_id, label, embedder, centroid FROM categories
           WHERE category_id >= 0 AND centroid IS NOT NULL
             AND category_id NOT IN (SELECT parent_id FROM categories WHERE parent_id IS NOT NULL)
           ORDER BY category_id"""
    ).fetchall()
    if not cats:
        raise NoRoutesError("no categories with centroids in the workspace; run `levers analyze`")
    key = cats[0][2]
    rows = ws.con.execute(
        """SELECT q.category_id, q.query, e.vector, q.model, q.provider FROM (
             SELECT category_id, query_hash, any_value(query) AS query, mode(model) AS model,
                    mode(provider) AS provider
             FROM calls WHERE category_id >= 0 AND query IS NOT NULL GROUP BY ALL) q
           JOIN embeddings e ON e.query_hash = q.query_hash AND e.embedder = ?
           ORDER BY q.category_id, q.query_hash""",
        [key],
    ).fetchall()
    out: dict[int, dict[str, Any]] = {
        cid: {"label": redact(label or "").text, "centroid": np.asarray(c, dtype=np.float32),
              "queries": [], "vectors": [], "models": []}
        for cid, label, _, c in cats
    }  # fmt: skip
    for cid, query, vector, model, provider in rows:
        if cid in out:
            out[cid]["queries"].append(query)
            out[cid]["vectors"].append(vector)
            out[cid]["models"].append((provider, model))
    return {c: v for c, v in out.items() if v["queries"]}, key


def _cheap_of(models: list[tuple[str, str]], config: Config) -> tuple[str, str]:
    """The category's most used model and its provider's ``[tiers] cheap`` model."""
    provider, model = max(sorted(set(models)), key=models.count)
    cheap = config.get("tiers", "cheap")
    return model, (cheap.get(provider or "", model) if isinstance(cheap, dict) else model)


def base_router(ws: Workspace, config: Config) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The native router config with every route on its category's most used model (no route
    sent to the cheap tier yet: :func:`with_targets` does that) and the held-out queries.

    Returns:
        ``(config_dict, held_out)``: the ``levers-router.json`` content (format
        ``levers-router/1``; each route also holds ``cheap_model``, the cheap tier of its
        provider) and ``{route_name: [query, ...]}``.

    Raises:
        NoRoutesError: no categories with centroids and embedded members.
    """
    cats, key = _members(ws)
    if not cats:
        raise NoRoutesError("no categories with embedded members in the workspace")
    holdout = float(config.get("export", "router_holdout_share"))
    lam = float(config.get("export", "router_mmr_lambda"))
    quantile = float(config.get("export", "router_threshold_quantile"))
    floor = float(config.get("export", "router_min_threshold"))
    used: set[str] = {"default"}  # the default route's name
    routes, held_out = [], {}
    for cid, cat in cats.items():
        order = sorted(
            range(len(cat["queries"])),
            key=lambda i: hashlib.md5(cat["queries"][i].encode()).hexdigest(),
        )
        n_hold = math.floor(len(order) * holdout) if len(order) >= 5 else 0
        hold, train = order[:n_hold], order[n_hold:]
        vecs = np.asarray([cat["vectors"][i] for i in train], dtype=np.float32)
        k = max(5, min(20, round(math.sqrt(len(train)) * 2)))
        picks = mmr(vecs, cat["centroid"], k, lam)
        utter = vecs[picks]
        rest = np.delete(vecs, picks, axis=0)
        if len(rest):
            scores = (rest @ utter.T).max(axis=1)
        elif len(utter) > 1:
            sims = utter @ utter.T
            np.fill_diagonal(sims, -1)
            scores = sims.max(axis=1)
        else:
            scores = np.array([floor])
        # at most MAX_THRESHOLD: a route whose utterances all embed alike would get 1.0,
        # which float rounding of a text's similarity to itself (0.99999994) can miss
        threshold = min(max(float(np.quantile(scores, quantile)), floor), MAX_THRESHOLD)
        name = _slug(cat["label"] or f"category-{cid}", used)
        model, cheap = _cheap_of(cat["models"], config)
        routes.append({
            "name": name, CATEGORY_ID: cid, "label": cat["label"],
            "model": model, "cheap_model": cheap, "routed_to_cheap_tier": False,
            "utterances": [cat["queries"][train[i]] for i in picks],
            # 4 decimals: a cosine with a unit query moves by at most √384 × 5e-5 ≈ 0.001,
            # and the file is about half the size 6 decimals made
            "utterance_vectors": np.round(utter, VECTOR_DECIMALS).tolist(),
            "centroid": np.round(cat["centroid"], VECTOR_DECIMALS).tolist(),
            "score_threshold": round(threshold, 4),
            "members": len(order), "held_out": n_hold,
        })  # fmt: skip
        held_out[name] = [cat["queries"][i] for i in hold]
    tiers = config.get("tiers", "strong")
    overrides = {
        word: {
            "route": f"keyword-{tier}",
            "model": config.get("tiers", tier).get("openai", tiers.get("openai")),
        }
        for word, tier in config.get("routing", "keyword_overrides").items()
    }
    return {
        "format": "levers-router/1",
        "embedder": {
            "name": embedder_name(key),
            "key": key,
            "dimension": len(routes[0]["centroid"]),
        },
        "default_route": {"name": "default", "model": config.get("export", "router_default_model")},
        "keyword_overrides": overrides,
        "routes": routes,
    }, held_out


def with_targets(native: dict[str, Any], cheap_categories: set[int]) -> dict[str, Any]:
    """A copy of ``native`` whose routes of ``cheap_categories`` target their ``cheap_model``
    (``routed_to_cheap_tier`` true); the others keep their category's most used model."""
    out = copy.deepcopy(native)
    for route in out["routes"]:
        routed = route[CATEGORY_ID] in cheap_categories
        route["routed_to_cheap_tier"] = routed
        if routed:
            route["model"] = route["cheap_model"]
    return out


__all__ = ["VECTOR_DECIMALS", "NoRoutesError", "base_router", "mmr", "with_targets"]
