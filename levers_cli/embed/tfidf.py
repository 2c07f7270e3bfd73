"""``tfidf``: TF-IDF word and bigram weights reduced by truncated SVD (LSA) to a fixed size;
no model to load, useful where neither the bundled MiniLM nor model2vec can run.

Source: scikit-learn user guide, "Text feature extraction" (``TfidfVectorizer``: sublinear tf,
``min_df``, ``ngram_range``) and "Truncated SVD and latent semantic analysis" (``TruncatedSVD``
on tf-idf, rows normalized again afterwards, as its LSA example does).

The vocabulary, IDF weights and SVD basis are *fitted*, so vectors depend on the corpus. To keep
weekly runs consistent (cached vectors and stored category centroids must live in the same
space), the fit is made once, on the workspace's distinct queries at the first categorization
(:meth:`TfidfEmbedder.adapt`), saved in levers' cache folder under a digest of its contents, and
that digest is part of the embedder key (``tfidf:256:<digest>``). A later run is handed the keys
of the stored categories and reloads that fit, so known queries keep their vectors and new ones
are projected into the same space; if the saved fit is gone (another machine), a new fit gets a
new key and categories are fitted afresh, as for any change of embedder.
"""

from __future__ import annotations

import hashlib
import pickle
from typing import Any

import numpy as np

from levers_cli.embed.base import Embedder, cache_dir, l2_normalize
from levers_cli.errors import LeversError

#: Output dimension (SVD components). Source: scikit-learn's LSA guidance (100-300 components
#: for topic-level similarity); 256 matches the static embedder.
COMPONENTS = 256
#: At most this many distinct queries are used to fit the vocabulary and SVD basis (a seeded
#: sample above it); the rest are only projected. Source: assumption, bounds the fit to seconds.
FIT_SAMPLE = 100_000
SEED = 42


class TfidfEmbedder(Embedder):
    """TF-IDF (words + bigrams, sublinear tf) → truncated SVD → unit vectors ``(n, d)``."""

    name = "tfidf"
    #: Queries embedded and written to the workspace per step (fast: big steps).
    chunk_rows = 16_384

    def __init__(self, components: int = COMPONENTS) -> None:
        self.components = components
        self.dimension = components
        self.key = f"tfidf:{components}:unfitted"
        self._vectorizer: Any = None
        self._svd: Any = None

    @property
    def fitted(self) -> bool:
        return self._vectorizer is not None

    def _path(self, digest: str) -> Any:
        return cache_dir() / "tfidf" / f"{self.components}-{digest}.pkl"

    def adapt(self, texts: list[str], previous_keys: list[str]) -> None:
        """Reload the fit named by one of ``previous_keys`` (the stored categories'
        embedders), else fit on ``texts`` (the workspace's distinct queries) and save it.

        Raises:
            LeversError: fewer than 2 distinct texts, or the fit cannot be saved.
        """
        prefix = f"tfidf:{self.components}:"
        for key in previous_keys:
            if key.startswith(prefix) and self._path(key[len(prefix) :]).exists():
                with open(self._path(key[len(prefix) :]), "rb") as handle:
                    self._vectorizer, self._svd = pickle.load(handle)
                self.key = key
                return
        self.fit(texts)

    def fit(self, texts: list[str]) -> None:
        """Fit vocabulary, IDF and SVD on ``texts`` (a seeded sample of ``FIT_SAMPLE`` when
        longer) and save them in the cache folder; sets :attr:`key`.

        Raises:
            LeversError: fewer than 2 texts, or the cache folder is not writable.
        """
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        if len(texts) < 2:
            raise LeversError("the tfidf embedder needs at least 2 distinct queries to fit")
        if len(texts) > FIT_SAMPLE:
            chosen = np.random.default_rng(SEED).choice(len(texts), FIT_SAMPLE, replace=False)
            texts = [texts[i] for i in np.sort(chosen)]
        vectorizer = TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, min_df=2 if len(texts) > 1000 else 1
        )
        matrix = vectorizer.fit_transform(texts)
        components = max(1, min(self.components, matrix.shape[1] - 1, len(texts) - 1))
        svd = TruncatedSVD(n_components=components, random_state=SEED).fit(matrix)
        state = pickle.dumps((vectorizer, svd), protocol=pickle.HIGHEST_PROTOCOL)
        digest = hashlib.blake2b(state, digest_size=8).hexdigest()
        path = self._path(digest)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(state)
        except OSError as exc:
            raise LeversError(
                f"cannot save the tfidf fit to {path.parent} ({exc.strerror}); "
                "set LEVERS_CACHE_DIR to a writable folder"
            ) from None
        self._vectorizer, self._svd = vectorizer, svd
        self.key = f"tfidf:{self.components}:{digest}"

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` → ``(n, d)`` float32 unit vectors (zero-padded to ``d`` when the
        corpus was too small for ``d`` components; a text with no known word is a zero row).

        Raises:
            LeversError: called before :meth:`adapt` / :meth:`fit`.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if not self.fitted:
            raise LeversError("the tfidf embedder must be fitted (adapt) before encoding")
        reduced = self._svd.transform(self._vectorizer.transform(texts))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        out[:, : reduced.shape[1]] = reduced
        return l2_normalize(out)
