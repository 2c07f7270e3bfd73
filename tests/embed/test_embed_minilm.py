"""The ``minilm`` embedder's ONNX Runtime path for a few texts (``levers route``): the same
vectors as sentence-transformers on torch, and a fallback to torch when it cannot be had.

The ONNX tests need the ``onnx`` extra (``pip install 'levers-cli[onnx]'``) and skip without
it; the first one exports the bundled model into the user cache once (seconds to a minute).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from levers_cli.embed.minilm import SINGLE_THREAD_TEXTS, MiniLMEmbedder
from levers_cli.errors import LeversError

TEXTS = [
    "how do I reset my password",
    "  padded   with spaces  ",
    "",
    "Ünïcödé ✓ 日本語 and emoji 🙂",
    "word " * 300,  # past the 128 word pieces kept
    "SELECT * FROM orders WHERE id = 42;",
]


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    return MiniLMEmbedder(backend="torch").encode(TEXTS)


def test_onnx_vectors_match_torch(torch_vectors: np.ndarray):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    embedder = MiniLMEmbedder(backend="onnx")
    one = np.vstack([embedder.encode([text]) for text in TEXTS])
    few = embedder.encode(TEXTS)  # padded to the longest: the mask keeps pads out
    assert embedder.onnx_error is None and embedder._session is not None
    assert one.shape == few.shape == (len(TEXTS), 384) and one.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(one, axis=1), 1.0, rtol=1e-5)
    # cosine per text with sentence-transformers on torch (same weights, fp32)
    assert (one * torch_vectors).sum(axis=1).min() >= 0.9999
    assert (few * torch_vectors).sum(axis=1).min() >= 0.9999
    np.testing.assert_allclose(one, torch_vectors, atol=1e-5)  # measured: < 2e-7
    # the same word pieces as sentence-transformers' tokenizer, truncation included
    reference = MiniLMEmbedder(backend="torch")._load().tokenize(TEXTS)["input_ids"].tolist()
    assert [e.ids for e in embedder._tokenizer.encode_batch(TEXTS)] == reference


def test_auto_falls_back_to_torch_without_onnxruntime(
    torch_vectors: np.ndarray, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    embedder = MiniLMEmbedder()
    vectors = embedder.encode(TEXTS[:2])
    assert embedder.backend == "auto" and "onnxruntime" in (embedder.onnx_error or "")
    assert (vectors * torch_vectors[:2]).sum(axis=1).min() >= 0.9999
    with pytest.raises(LeversError, match=r"pip install 'levers-cli\[onnx\]'"):
        MiniLMEmbedder(backend="onnx").encode(["hello"])
    with pytest.raises(LeversError, match="unknown minilm backend"):
        MiniLMEmbedder(backend="tpu")


def test_batches_stay_on_torch(monkeypatch: pytest.MonkeyPatch):
    """More than a few texts (``analyze``) never touch the ONNX path: stored vectors keep
    coming from sentence-transformers."""
    embedder = MiniLMEmbedder()
    monkeypatch.setattr(embedder, "_onnx", lambda: pytest.fail("ONNX path used for a batch"))
    texts = [f"query number {i}" for i in range(SINGLE_THREAD_TEXTS + 1)]
    assert embedder.encode(texts).shape == (len(texts), 384)


def test_onnx_runtime_writes_nothing_in_home(tmp_path: Path):
    """ONNX Runtime's telemetry writes a device id under ~/.cache/Microsoft when it is
    imported; levers' ONNX path turns it off first (a fresh process: the suite turns it off
    for itself, conftest.py)."""
    pytest.importorskip("onnxruntime")  # this process's import: telemetry is off here
    home = tmp_path / "home"
    home.mkdir()
    code = (
        "from levers_cli.embed.minilm import MiniLMEmbedder\n"
        "def no_export(self):\n"
        "    raise RuntimeError('no export here')\n"
        "MiniLMEmbedder.export_onnx = no_export\n"  # the import is what this test is about
        "embedder = MiniLMEmbedder()\n"
        "assert embedder._onnx() is None and 'no export' in embedder.onnx_error\n"
        "import sys; assert 'onnxruntime' in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env.update(HOME=str(home), LEVERS_CACHE_DIR=str(tmp_path / "cache"))
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert list(home.rglob("*")) == []
