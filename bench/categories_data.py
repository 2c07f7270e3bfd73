"""Labelled query sets for ``bench/categories.py`` and their cached MiniLM embeddings.

Sets (all under ``../shared/data``):

- ``banking77``: ``banking77/test.csv`` (columns ``text``, ``category``; 3,080 queries,
  77 intents). Casanueva et al. 2020, "Efficient Intent Detection with Dual Sentence Encoders".
- ``clinc150``: ``clinc150/data_full.json.gz`` split ``test`` (4,500 in-scope queries,
  150 intents; ``oos_test`` left out) and ``domains.json`` (intent → one of 10 domains).
  Larson et al. 2019, "An Evaluation Dataset for Intent Classification and Out-of-Scope
  Prediction".
- ``arena-hard``: ``arena-hard/v0.1/question.jsonl`` (500 prompts, field ``prompt``; the
  label is the topic ``cluster``, 250 of them). lmarena/arena-hard-auto.
- ``mt-bench``: ``mt-bench/question.jsonl`` (80 questions; first of ``turns``; 8
  ``category`` labels). Zheng et al. 2023, "Judging LLM-as-a-Judge with MT-Bench".

For timing only (no labels): ``sample``, the distinct queries of ``sample_logs/app_logs.jsonl.gz``
as ``levers analyze`` groups them (ingested into a throw-away workspace; one per
``query_hash``), with their call counts.

Embeddings are the bundled all-MiniLM-L6-v2 (``levers_cli.embed.get_embedder("minilm")``)
of each text as given, cached in ``bench/.cache/<set>.npy`` (git-ignored) keyed by a hash of
the texts, so reruns skip the ~1 minute of encoding.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = Path(__file__).resolve().parent / ".cache"
SETS = ("banking77", "clinc150", "arena-hard", "mt-bench")


@dataclass
class LabelledSet:
    """Texts ``(n,)``, true labels ``(n,)``, optional coarse labels, and label names."""

    name: str
    texts: list[str]
    labels: list[str]
    coarse: list[str] | None = None


def load_set(name: str) -> LabelledSet:
    """Read one set from ``../shared/data``.

    Raises:
        FileNotFoundError: the shared data is missing.
        ValueError: ``name`` is not one of :data:`SETS`.
    """
    if name == "banking77":
        with (DATA / "banking77" / "test.csv").open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        return LabelledSet(name, [r["text"] for r in rows], [r["category"] for r in rows])
    if name == "clinc150":
        with gzip.open(DATA / "clinc150" / "data_full.json.gz", "rt", encoding="utf-8") as fh:
            test = json.load(fh)["test"]
        domains = json.loads((DATA / "clinc150" / "domains.json").read_text())
        domain_of = {intent: domain for domain, intents in domains.items() for intent in intents}
        return LabelledSet(
            name,
            [t for t, _ in test],
            [label for _, label in test],
            [domain_of[label] for _, label in test],
        )
    if name == "arena-hard":
        path = DATA / "arena-hard" / "v0.1" / "question.jsonl"
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        return LabelledSet(name, [r["prompt"] for r in rows], [r["cluster"] for r in rows])
    if name == "mt-bench":
        path = DATA / "mt-bench" / "question.jsonl"
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        return LabelledSet(name, [r["turns"][0] for r in rows], [r["category"] for r in rows])
    raise ValueError(f"unknown set {name!r}; choose one of {', '.join(SETS)}")


def sample_queries() -> tuple[list[str], np.ndarray]:
    """Distinct queries of ``sample_logs/app_logs.jsonl.gz`` and their call counts ``(n,)``,
    grouped by ``query_hash`` as :func:`levers_cli.cluster.categorize` does."""
    import tempfile

    from levers_cli.ingest.pipeline import ingest_files
    from levers_cli.store import Workspace

    with tempfile.TemporaryDirectory() as folder, Workspace(Path(folder) / "w.duckdb") as ws:
        ingest_files(ws, [str(ROOT / "sample_logs" / "app_logs.jsonl.gz")])
        rows = ws.con.execute(
            """SELECT min(query), count(*) FROM calls
                   WHERE trim(coalesce(query, '')) <> '' GROUP BY query_hash ORDER BY query_hash"""
        ).fetchall()
    return [r[0] for r in rows], np.array([r[1] for r in rows], dtype=np.float64)


def embeddings(data: LabelledSet) -> np.ndarray:
    """``(n, 384)`` float32 unit MiniLM vectors of ``data.texts``, cached on disk."""
    digest = hashlib.sha256("\n".join(data.texts).encode()).hexdigest()[:16]
    path = CACHE / f"{data.name}-{digest}.npy"
    if path.exists():
        return np.load(path)
    from levers_cli.embed import get_embedder

    vectors = get_embedder("minilm").encode(data.texts)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors
