"""Any sentence-transformers model, named by ``--embedder`` / ``[embed] embedder``: a local
model folder (``./my-embedder``, what ``SentenceTransformer.save`` writes) or a Hugging Face
model id (``sentence-transformers/all-mpnet-base-v2``, or ``all-mpnet-base-v2``, which
sentence-transformers reads as ``sentence-transformers/all-mpnet-base-v2``).

A model id is read from the user's Hugging Face cache only (``huggingface_hub``'s
``try_to_load_from_cache``: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
``~/.cache/huggingface/hub``), and loaded from that snapshot folder with
``local_files_only=True``: levers never downloads at run time, with or without
``HF_HUB_OFFLINE``. A team with Hugging Face access fetches a model once
(``hf download sentence-transformers/all-mpnet-base-v2``) and names it.

Vectors: the model's own pipeline (its modules: transformer, pooling, any dense and
normalize layers), L2-normalized, each text cut at ``[embed] max_seq_length`` word pieces or
the model's own limit, whichever is smaller (sentence-transformers' ``max_seq_length``).

The cache key is ``st:<fingerprint>:<max_seq_length>:<name>``: the name, so two models never
share vectors, and a fingerprint of the model's files, so a folder saved again with other
weights gets new vectors too. The fingerprint is a BLAKE2b digest of each weight, tokenizer
and config file's relative path and content id: in the Hugging Face cache a file is a link to
a blob named by its SHA-256 (its Git LFS id), so the id is that name and nothing is read; in
a plain folder it is the file's own BLAKE2b digest (about 0.3 s per 100 MB read, measured
here on the bundled MiniLM's 91 MB of weights). Exports in ``onnx/`` and ``openvino/`` are
left out: the torch backend does not read them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from levers_cli.embed.base import Embedder, EmbedSettings, l2_normalize, offline_environment
from levers_cli.errors import LeversError

#: The cache key's prefix for a named model (``st:<fingerprint>:<max_seq_length>:<name>``).
KEY_PREFIX = "st:"
#: Files a model's vectors depend on (weights, tokenizer, configs), by suffix.
_MODEL_FILES = (".json", ".txt", ".safetensors", ".bin", ".model")
#: Sub-folders of a model repository that the torch backend never reads.
_OTHER_BACKENDS = frozenset({"onnx", "openvino"})
#: sentence-transformers' default organization for a model id without one (its
#: ``BaseModel.default_huggingface_organization``).
_DEFAULT_ORGANIZATION = "sentence-transformers"


def load_sentence_transformer(folder: str, max_seq_length: int) -> Any:
    """A ``SentenceTransformer`` read from ``folder`` on the CPU, no network, inputs cut at
    ``max_seq_length`` word pieces (or the model's own limit when smaller).

    Raises:
        ImportError, OSError, ValueError: as sentence-transformers raises them (the callers
            turn them into a :class:`~levers_cli.errors.LeversError` naming the model).
    """
    offline_environment()
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    model = SentenceTransformer(folder, device="cpu", local_files_only=True)
    own = model.max_seq_length
    model.max_seq_length = min(max_seq_length, own) if own else max_seq_length
    return model


def hub_candidates(name: str) -> list[str]:
    """The Hugging Face model ids ``name`` may stand for, in the order sentence-transformers
    tries them: ``org/model`` as given; a bare ``model`` as
    ``sentence-transformers/model``, then as itself (``bert-base-uncased``)."""
    if "/" in name:
        return [name]
    return [f"{_DEFAULT_ORGANIZATION}/{name}", name]


def cached_snapshot(repo_id: str) -> Path | None:
    """The folder of ``repo_id``'s cached snapshot (its ``main`` revision) in the user's
    Hugging Face cache, or ``None`` when no model of that id is there. Reads no network."""
    from huggingface_hub import try_to_load_from_cache

    for marker in ("modules.json", "config.json"):
        try:
            found = try_to_load_from_cache(repo_id, marker)
        except ValueError:  # not a valid repository id (spaces, "..", too long)
            return None
        if isinstance(found, str):
            return Path(found).parent
    return None


def hub_cache_folder() -> str:
    """Where the Hugging Face cache is (``huggingface_hub``'s ``HF_HUB_CACHE``)."""
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def is_model_folder(path: Path) -> bool:
    """Whether ``path`` holds a sentence-transformers model (``modules.json``) or a
    transformers model sentence-transformers can wrap (``config.json``: mean pooling)."""
    return (path / "modules.json").is_file() or (path / "config.json").is_file()


def fingerprint(folder: Path) -> str:
    """16 hex digits naming the contents of the model files in ``folder`` (the module doc
    says which files and how)."""
    digest = hashlib.blake2b(digest_size=8)
    for path in sorted(_model_files(folder)):
        relative = path.relative_to(folder).as_posix()
        digest.update(f"{relative}\0{_content_id(path)}\0".encode())
    return digest.hexdigest()


def _model_files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if d not in _OTHER_BACKENDS and not d.startswith(".")]
        for file in files:
            if file.endswith(_MODEL_FILES):
                yield Path(root) / file


def _content_id(path: Path) -> str:
    if path.is_symlink():
        target = Path(os.readlink(path))
        if target.parent.name == "blobs":  # the Hugging Face cache: named by its hash
            return target.name
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class NamedModelEmbedder(Embedder):
    """A sentence-transformers model from a folder (a local one, or a snapshot in the
    Hugging Face cache), loaded on the first :meth:`encode` or :attr:`dimension`.

    Args:
        name: what the user named (the model id or the folder as given); kept in
            :attr:`name` (for a folder, made absolute) so a router exported from these
            categories can load the model again.
        folder: the model's folder.
        settings: ``batch_size`` and ``max_seq_length``.
    """

    def __init__(self, name: str, folder: Path, settings: EmbedSettings | None = None) -> None:
        settings = settings or EmbedSettings()
        self.name = name
        self.folder = folder
        self.batch_size = settings.batch_size
        self.max_seq_length = settings.max_seq_length
        self._model: Any = None
        self._key: str | None = None
        self._dimension: int | None = None

    @property
    def key(self) -> str:  # type: ignore[override]  # a computed attribute of the contract
        """``st:<fingerprint>:<max_seq_length>:<name>`` (see the module doc)."""
        if self._key is None:
            length = self.max_seq_length
            self._key = f"{KEY_PREFIX}{fingerprint(self.folder)}:{length}:{self.name}"
        return self._key

    @property
    def dimension(self) -> int:  # type: ignore[override]  # known once the model loads
        """The model's output size (loads the model)."""
        if self._dimension is None:
            self._dimension = int(self._encode(["dimension"]).shape[1])
        return self._dimension

    def _load(self) -> Any:
        if self._model is None:
            try:
                self._model = load_sentence_transformer(str(self.folder), self.max_seq_length)
            except (ImportError, OSError, ValueError) as exc:
                raise LeversError(
                    f"cannot load the sentence-transformers model {self.name} from "
                    f"{self.folder} ({exc})"
                ) from None
        return self._model

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = self._load().encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return l2_normalize(vectors)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` → ``(n, dimension)`` float32, L2-normalized."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._encode(list(texts))


def name_of_key(key: str) -> str | None:
    """The model a named-model cache key was made with, or ``None`` for another key."""
    if not key.startswith(KEY_PREFIX):
        return None
    parts = key.split(":", 3)
    return parts[3] if len(parts) == 4 else None
