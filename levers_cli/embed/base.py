"""The embedder contract (:class:`Embedder`: ``encode(texts) -> float32[n, d]``, rows
L2-normalized, with every optional ability declared and defaulted), the ``[embed]`` settings
an embedder is built from (:class:`EmbedSettings`), and levers' cache folder, where embedders
keep what they build once per machine (the distilled static model, the MiniLM ONNX export,
TF-IDF fits).

Cache: ``$LEVERS_CACHE_DIR`` if set, else ``platformdirs.user_cache_dir("levers")`` when
platformdirs is installed, else ``$XDG_CACHE_HOME/levers`` or ``~/.cache/levers``.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Self

import numpy as np

if TYPE_CHECKING:
    from levers_cli.config import Config

#: Queries embedded and written to the workspace per step, unless an embedder says otherwise
#: (:attr:`Embedder.chunk_rows`: fast embedders take bigger steps, so the writes do not
#: dominate).
EMBED_CHUNK = 256


@dataclass(frozen=True)
class EmbedSettings:
    """The ``[embed]`` settings an embedder is built from; each embedder takes those that
    apply to it (:meth:`Embedder.from_settings`).

    Attributes:
        batch_size: texts per model batch (``[embed] batch_size``).
        max_seq_length: word pieces kept per text, the rest cut (``[embed] max_seq_length``).
    """

    batch_size: int = 64
    max_seq_length: int = 128

    @classmethod
    def from_config(cls, config: Config) -> EmbedSettings:
        """The ``[embed]`` section of ``config`` (defaults + ``levers.toml``)."""
        return cls(
            batch_size=int(config.get("embed", "batch_size")),
            max_seq_length=int(config.get("embed", "max_seq_length")),
        )


class Embedder(ABC):
    """Turns texts into unit vectors. A new embedder subclasses this, sets the three
    attributes and writes :meth:`encode`; everything else has a default it may override.

    Attributes:
        name: what ``--embedder`` and ``[embed] embedder`` call it (``minilm``); the
            registry's key (:data:`levers_cli.embed.EMBEDDERS`).
        key: the embedding-cache key; changes whenever vectors would change (model,
            version, fitted state). Stored with each vector and each category, so two
            embedders never share vectors.
        dimension: ``d``, the vector size.
        chunk_rows: queries embedded and written to the workspace per step during
            categorization (a fast embedder takes bigger steps).
    """

    name: str
    key: str
    dimension: int
    chunk_rows: int = EMBED_CHUNK

    @classmethod
    def from_settings(cls, settings: EmbedSettings) -> Self:
        """The embedder built from the ``[embed]`` settings; by default ``cls()`` (an
        embedder that uses a setting overrides this)."""
        return cls()

    @abstractmethod
    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts``.

        Returns:
            ``(len(texts), dimension)`` float32 array; every row has L2 norm 1 (a zero
            vector only for an empty text).
        """

    def adapt(self, texts: list[str], previous_keys: list[str]) -> None:
        """Called by categorization before any :meth:`encode`, with the workspace's distinct
        queries and the keys of the embedders its stored categories were made with. An
        embedder whose vectors depend on the corpus (``tfidf``) fits itself here or reloads
        the fit a previous key names, and sets :attr:`key`; by default nothing happens."""
        return None

    def is_cached(self) -> bool:
        """Whether what :meth:`encode` needs is on this machine already; ``False`` when the
        first encode must build it (``static`` distills its model, a minute or more).
        Default: ``True``."""
        return True


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32 (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    # what np.linalg.norm(axis=1) computes, without its checks: it is on levers route's
    # one-query path (same bits)
    norms = np.sqrt(np.add.reduce(vectors * vectors, axis=1, keepdims=True))
    norms[norms == 0] = 1.0
    return vectors / norms


def offline_environment() -> None:
    """Set the environment for loading a model with no network and no noise: Hugging Face
    offline, no progress bars, no tokenizer fork warnings."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
