"""The embedder contract: ``encode(texts) -> float32[n, d]``, rows L2-normalized; and levers'
cache folder, where embedders keep what they build once per machine (the distilled static
model, the MiniLM ONNX export, TF-IDF fits).

Cache: ``$LEVERS_CACHE_DIR`` if set, else ``platformdirs.user_cache_dir("levers")`` when
platformdirs is installed, else ``$XDG_CACHE_HOME/levers`` or ``~/.cache/levers``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors.

    Attributes:
        name: short name used by ``--embedder`` (``minilm``).
        key: the embedding-cache key; changes whenever vectors would change (model, version).
        dimension: ``d``, the vector size.
    """

    name: str
    key: str
    dimension: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts``.

        Returns:
            ``(len(texts), dimension)`` float32 array; every row has L2 norm 1 (a zero
            vector only for an empty text).
        """
        ...


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32 (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    # what np.linalg.norm(axis=1) computes, without its checks: it is on levers route's
    # one-query path (same bits)
    norms = np.sqrt(np.add.reduce(vectors * vectors, axis=1, keepdims=True))
    norms[norms == 0] = 1.0
    return vectors / norms


def cache_dir() -> Path:
    """levers' cache folder (created on demand by the callers that write to it)."""
    override = os.environ.get("LEVERS_CACHE_DIR")
    if override:
        return Path(override)
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("levers"))
    except ImportError:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return Path(base) / "levers"
