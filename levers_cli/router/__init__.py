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
        self._meta = meta
        self._embedder: Embedder | None = None
        if embedder is not None:
            self._check(embedder)
        # one contiguous float32 (utterances, d) matrix, each route's rows together in route
        # order: a query's per-route best is one matrix-vector product and one reduceat
        dim = int(meta["dimension"])
        vectors = [v.reshape(-1, dim) for v in vectors]
        self._matrix = np.ascontiguousarray(
            np.vstack(vectors) if vectors else np.zeros((0, dim)), dtype=np.float32
        )
        counts = np.array([len(v) for v in vectors], dtype=np.int64)
        self._filled = np.flatnonzero(counts > 0)  # routes with at least one utterance
        self._starts = (np.cumsum(counts) - counts)[self._filled]
        self._all_filled = len(self._filled) == len(self.routes)
        words = "|".join(re.escape(k) for k in sorted(self.overrides, key=len, reverse=True))
        self._keywords = re.compile(rf"\b({words})\b", re.IGNORECASE) if words else None
        # lower-cased word -> rule; the first spelling in the config wins, as it always did
        self._rules: dict[str, RouteMatch] = {}
        for word, rule in self.overrides.items():
            self._rules.setdefault(
                word.lower(), RouteMatch(rule["route"], 1.0, rule["model"], "keyword")
            )

    def _check(self, embedder: Embedder) -> None:
        meta = self._meta
        if int(embedder.dimension) != int(meta["dimension"]):
            raise LeversError(
                f"router config was built with {meta['name']} ({meta['dimension']} dimensions); "
                f"the embedder has {embedder.dimension}"
            )
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder:
        """The embedder queries are encoded with: the one given, else the one the config
        names, loaded on first use (routing stored vectors needs none).

        Raises:
            LeversError: its dimension differs from the config's."""
        if self._embedder is None:
            from levers_cli.embed import get_embedder

            self._check(get_embedder(self._meta["name"]))
        assert self._embedder is not None
        return self._embedder

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

    def _keyword(self, text: str) -> RouteMatch | None:
        """The keyword override that ``text`` names (whole word, any case), if any."""
        hit = self._keywords.search(text) if self._keywords else None
        return self._rules[hit.group(1).lower()] if hit else None

    def _best(self, vectors: np.ndarray) -> np.ndarray:
        """Per-route best cosine of unit ``vectors`` ((n, d)) → ``(n, routes)``; ``-1`` for a
        route without utterances."""
        sims = vectors @ self._matrix.T
        if self._all_filled and len(self._starts):
            return np.maximum.reduceat(sims, self._starts, axis=1)
        best = np.full((len(vectors), len(self.routes)), -1.0, dtype=np.float32)
        if len(self._starts):
            best[:, self._filled] = np.maximum.reduceat(sims, self._starts, axis=1)
        return best

    def _pick(self, best: np.ndarray) -> RouteMatch:
        """The route of one query from its per-route best scores ((routes,))."""
        if not len(best):
            return RouteMatch(self.default["name"], 0.0, self.default["model"], "default")
        index = int(np.argmax(best))
        score = float(best[index])
        if score >= self.thresholds[index]:
            route = self.routes[index]
            return RouteMatch(route["name"], score, route["model"], "similarity")
        return RouteMatch(self.default["name"], score, self.default["model"], "default")

    def route_many(self, texts: list[str]) -> list[RouteMatch]:
        """Route each text (one embedding call for all texts that no keyword override
        claims)."""
        out = [self._keyword(text) for text in texts]
        todo = [row for row, match in enumerate(out) if match is None]
        if todo:
            best = self._best(self.embedder.encode([texts[row] for row in todo]))
            for row, scores in zip(todo, best, strict=True):
                out[row] = self._pick(scores)
        return out  # type: ignore[return-value]  # every row is filled above

    def route_vectors(self, texts: list[str | None], vectors: np.ndarray) -> list[RouteMatch]:
        """Route each text whose unit embedding is already known (``vectors``: (n, d), the
        embedder the config names; a row of NaN for a text without one goes to the default
        route unless a keyword claims it). The same rules as :meth:`route`, no encoding:
        the routing lever decides the logged calls with it, so the simulation and the
        exported router agree call for call."""
        out: list[RouteMatch] = []
        best = self._best(np.nan_to_num(np.asarray(vectors, dtype=np.float32), nan=0.0))
        grid = np.asarray(vectors, dtype=np.float32)
        missing = [bool(np.isnan(grid[row]).any()) for row in range(len(grid))]
        for row, text in enumerate(texts):
            match = self._keyword(text) if text else None
            if match is None:
                if missing[row]:
                    match = RouteMatch(self.default["name"], 0.0, self.default["model"], "default")
                else:
                    match = self._pick(best[row])
            out.append(match)
        return out

    def route(self, text: str) -> RouteMatch:
        """Route one text (a keyword override skips the embedding)."""
        return self._keyword(text) or self._pick(self._best(self.embedder.encode([text]))[0])


def read_queries(path: str | Path) -> list[str]:
    """The queries of a text file, one per line: its non-blank lines without their line ends
    (``levers route --file``).

    Raises:
        LeversError: the file cannot be read or is not UTF-8 text.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            return [line.rstrip("\n") for line in handle if line.strip()]
    except OSError as exc:
        raise LeversError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise LeversError(f"{path}: not UTF-8 text ({exc.reason})") from None


__all__ = ["RouteMatch", "Router", "read_queries"]
