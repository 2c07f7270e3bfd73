"""The in-process router behind ``levers route``: load a native ``levers-router.json``
(written by ``levers export router-config``), embed a query, pick the route.

Scoring: a route's score is the highest cosine similarity between the query and the route's
utterances (semantic-router's ``top_k`` scoring with k = 1 over one route's utterances); the
best-scoring route wins when its score reaches that route's ``score_threshold``, else the
query goes to the configured default route. A keyword override (whole word, any case) wins
before any scoring.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from levers_cli.errors import LeversError

if TYPE_CHECKING:
    from levers_cli.embed.base import Embedder


@dataclass(frozen=True)
class RouteMatch:
    """Where one query goes.

    Attributes:
        route: the route name (the default route when nothing matched).
        score: cosine similarity to the best route's closest utterance (0–1; ``1.0`` for a
            keyword override).
        model: the route's target model.
        via: ``similarity``, ``keyword`` or ``default``.
    """

    route: str
    score: float
    model: str
    via: str


class Router:
    """A loaded native router config.

    Args:
        config: the parsed ``levers-router.json``.
        embedder: the embedder to use; by default the one the config names.

    Raises:
        LeversError: the config lacks a field, or the embedder's dimension differs.
    """

    def __init__(self, config: dict[str, Any], embedder: Embedder | None = None) -> None:
        try:
            self.routes: list[dict[str, Any]] = config["routes"]
            self.default: dict[str, Any] = config["default_route"]
            meta = config["embedder"]
            self.overrides: dict[str, dict[str, str]] = config.get("keyword_overrides", {})
            vectors = [np.asarray(r["utterance_vectors"], dtype=np.float32) for r in self.routes]
            self.thresholds = np.array([r["score_threshold"] for r in self.routes])
        except (KeyError, TypeError) as exc:
            raise LeversError(f"router config lacks the field {exc}; re-export it") from None
        if embedder is None:
            from levers_cli.embed import get_embedder

            embedder = get_embedder(meta["name"])
        if int(embedder.dimension) != int(meta["dimension"]):
            raise LeversError(
                f"router config was built with {meta['name']} ({meta['dimension']} dimensions); "
                f"the embedder has {embedder.dimension}"
            )
        self.embedder = embedder
        self._matrix = np.vstack(vectors) if vectors else np.zeros((0, meta["dimension"]))
        self._owner = np.concatenate(
            [np.full(len(v), i) for i, v in enumerate(vectors)] or [np.zeros(0)]
        ).astype(int)
        words = "|".join(re.escape(k) for k in sorted(self.overrides, key=len, reverse=True))
        self._keywords = re.compile(rf"\b({words})\b", re.IGNORECASE) if words else None

    @classmethod
    def load(cls, path: str | Path, embedder: Embedder | None = None) -> Router:
        """Read a ``levers-router.json``.

        Raises:
            LeversError: the file is missing or not JSON, or lacks a field.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise LeversError(f"{path}: cannot read the router config ({exc.strerror})") from None
        except json.JSONDecodeError as exc:
            raise LeversError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
        return cls(data, embedder)

    def route_many(self, texts: list[str]) -> list[RouteMatch]:
        """Route each text (one embedding call for all of them)."""
        if not texts:
            return []
        vectors = self.embedder.encode(list(texts))
        sims = vectors @ self._matrix.T if len(self._matrix) else np.zeros((len(texts), 0))
        out = []
        for row, text in enumerate(texts):
            hit = self._keywords.search(text) if self._keywords else None
            if hit:
                rule = self.overrides[
                    next(k for k in self.overrides if k.lower() == hit.group(1).lower())
                ]
                out.append(RouteMatch(rule["route"], 1.0, rule["model"], "keyword"))
                continue
            best = np.full(len(self.routes), -1.0)
            np.maximum.at(best, self._owner, sims[row])
            index = int(np.argmax(best)) if len(best) else -1
            if index >= 0 and best[index] >= self.thresholds[index]:
                route = self.routes[index]
                out.append(
                    RouteMatch(route["name"], float(best[index]), route["model"], "similarity")
                )
            else:
                score = float(best[index]) if index >= 0 else 0.0
                out.append(
                    RouteMatch(self.default["name"], score, self.default["model"], "default")
                )
        return out

    def route(self, text: str) -> RouteMatch:
        """Route one text."""
        return self.route_many([text])[0]


__all__ = ["RouteMatch", "Router"]
