"""Engines and partitions (issue 19): the partitioned simulation equals the unpartitioned one
on a small log, in this process, in a local process pool and on a local Ray cluster; the
partitions keep conversations whole and follow the links levers declare."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

from levers_cli.config import load_config
from levers_cli.engine import (
    LocalEngine,
    Partition,
    call_partitions,
    chosen_engine,
    get_engine,
    group_partitions,
)
from levers_cli.enrich.conversations import link_conversations
from levers_cli.enrich.prices import price_calls
from levers_cli.errors import UsageError
from levers_cli.ingest.pipeline import ingest_files
from levers_cli.levers import all_levers
from levers_cli.simulate import simulate
from levers_cli.store import Workspace
from tests.helpers import SAMPLE_LOGS

#: calls of the shipped sample month the small log keeps: FAQ calls of two models, coding
#: conversations, several system prompts (13 partitions, the largest ~200 calls)
CALLS = 400
#: a group size that splits those calls into several tasks
GROUP_CALLS = 40


@pytest.fixture(scope="module")
def small_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace of the sample's first calls, ingested, linked and priced, each distinct
    query put in one of 4 categories by its hash (the levers' analyses need categories;
    the clustering is not what is tested here). Module-scoped: the tests only read it."""
    folder = tmp_path_factory.mktemp("engine")
    with gzip.open(SAMPLE_LOGS, "rt", encoding="utf-8") as handle:
        lines = handle.read().splitlines()[:CALLS]
    log = folder / "calls.jsonl"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = folder / "w.duckdb"
    with Workspace(path) as ws:
        ingest_files(ws, [str(log)])
        link_conversations(ws)
        price_calls(ws, load_config(None))
        ws.con.execute("UPDATE calls SET category_id = hash(query_hash) % 4")
    return path


@pytest.fixture(scope="module")
def unpartitioned(small_log: Path) -> dict[str, Any]:
    """``levers simulate --json`` of the small log by the code without engines."""
    with Workspace(small_log) as ws:
        return simulate(ws, load_config(None), all_levers()).as_dict()


def _figures(data: Any, path: str = "") -> dict[str, Any]:
    """Every leaf of a simulate JSON, by its path."""
    if isinstance(data, dict):
        return {
            k: v for key, value in data.items() for k, v in _figures(value, f"{path}/{key}").items()
        }
    if isinstance(data, list):
        return {
            k: v for i, value in enumerate(data) for k, v in _figures(value, f"{path}[{i}]").items()
        }
    return {path: data}


def assert_same(partitioned: dict[str, Any], reference: dict[str, Any]) -> None:
    """The same figures: every number within 1e-9 USD (well under a cent; only the order of
    float additions differs), everything else equal."""
    mine, theirs = _figures(partitioned), _figures(reference)
    assert mine.keys() == theirs.keys()
    for key, value in theirs.items():
        if isinstance(value, float):
            assert mine[key] == pytest.approx(value, abs=1e-9), key
        else:
            assert mine[key] == value, key
    assert reference["monthly_cost_before"] > reference["monthly_cost_after"]["aggressive"] > 0


def _partitioned(
    path: Path, workers: int, name: str = "local", group_calls: int = GROUP_CALLS
) -> dict[str, Any]:
    config = load_config(None)
    config.set("engine", "name", name)
    config.set("engine", "workers", workers)
    config.set("engine", "partition_calls", group_calls)
    engine = get_engine(config)
    try:
        with Workspace(path) as ws:
            return simulate(ws, config, all_levers(), engine=engine).as_dict()
    finally:
        engine.close()


def test_partitions_cover_every_call_once_and_keep_conversations_whole(small_log):
    with Workspace(small_log) as ws:
        parts = call_partitions(ws)
        rows = ws.con.execute(
            "SELECT call_id, conversation_id FROM calls WHERE cost_usd IS NOT NULL"
        ).fetchall()
    where = {cid: i for i, part in enumerate(parts) for cid in part.call_ids}
    assert sorted(where) == sorted(cid for cid, _ in rows)
    assert sum(len(p.call_ids) for p in parts) == len(rows)
    by_conversation: dict[str, list[int]] = {}
    for cid, conversation in rows:
        if conversation is not None:
            by_conversation.setdefault(conversation, []).append(where[cid])
    assert max(map(len, by_conversation.values())) > 1  # multi-turn conversations are there
    assert all(len(set(found)) == 1 for found in by_conversation.values())
    assert len(parts) > 3


def test_group_partitions_never_splits_linked_partitions():
    parts = [Partition(("p", str(i)), (f"{i}a", f"{i}b")) for i in range(6)]
    groups = group_partitions(parts, [("0a", "3b"), ("3a", "5a"), ("x", "1a")], bins=3)
    assert sorted(map(sorted, groups)) == [
        ["0a", "0b", "3a", "3b", "5a", "5b"],
        ["1a", "1b", "4a", "4b"],
        ["2a", "2b"],
    ] or sorted(map(len, groups)) == [2, 4, 6]
    joined = next(g for g in groups if "0a" in g)
    assert {"3a", "3b", "5a", "5b"} <= set(joined)
    assert sum(map(len, groups)) == 12


def test_partitioned_in_process_equals_unpartitioned(small_log, unpartitioned):
    with Workspace(small_log) as ws:
        parts = call_partitions(ws)
    assert len(group_partitions(parts, [], bins=CALLS // GROUP_CALLS)) > 3
    assert_same(_partitioned(small_log, workers=1), unpartitioned)


def test_partitioned_process_pool_equals_unpartitioned(small_log, unpartitioned):
    # one group per worker: what is tested here is the pool (the groups are tested above)
    assert_same(_partitioned(small_log, workers=2, group_calls=CALLS), unpartitioned)


def test_ray_engine_on_a_local_cluster_equals_the_local_engine(
    small_log, unpartitioned, monkeypatch
):
    pytest.importorskip("ray")
    # a local cluster with token auth writes ~/.ray/auth_token; the tests write no HOME file
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    assert_same(_partitioned(small_log, workers=2, name="ray", group_calls=CALLS), unpartitioned)


def test_engine_choice_and_usage_errors(monkeypatch):
    config = load_config(None)
    assert chosen_engine(config) is None  # the defaults: the steps in this process
    engine = chosen_engine(config, "local")
    assert isinstance(engine, LocalEngine) and engine.in_process
    config.set("engine", "workers", -1)
    with pytest.raises(UsageError, match="workers"):
        get_engine(config)
    config.set("engine", "workers", 1)
    with pytest.raises(UsageError, match="choose one of local, ray"):
        get_engine(config, "spark")
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # Ray not installed
    with pytest.raises(UsageError, match=r"pip install 'levers-cli\[ray\]'"):
        get_engine(config, "ray")


def test_cli_engine_option_gives_the_same_json(small_log, unpartitioned):
    import json

    from typer.testing import CliRunner

    from levers_cli.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["simulate", "-w", str(small_log), "--engine", "local", "--json"])
    assert result.exit_code == 0, result.output
    assert_same(json.loads(result.stdout), json.loads(json.dumps(unpartitioned, default=str)))
    bad = runner.invoke(app, ["simulate", "-w", str(small_log), "--engine", "spark"])
    assert bad.exit_code == 2


class _Elsewhere:
    """An engine whose tasks count as run in other processes (the slicing path of
    ``embed_distinct``), run here one after another, each on a pickled copy of its input
    as a pool or Ray would get it."""

    name, workers, in_process = "elsewhere", 3, False

    def __init__(self) -> None:
        self.tasks = 0

    def map(self, fn, items):
        import pickle

        self.tasks += len(items)
        return [fn(pickle.loads(pickle.dumps(item))) for item in items]

    def close(self) -> None:
        pass


def test_embedding_slices_on_an_engine_equal_the_chunked_run(ws):
    import numpy as np

    from levers_cli.cluster.categorize import embed_distinct
    from tests.helpers import FakeEmbedder

    texts = [f"how do I reset password number {i} for account {i % 7}" for i in range(50)]
    hashes = [f"h{i:03d}" for i in range(50)]
    plain, _ = embed_distinct(ws, FakeEmbedder(), hashes[:10], texts[:10])
    engine = _Elsewhere()
    embedder = FakeEmbedder()
    embedder.chunk_rows = 8  # several chunks per slice
    vectors, embedded = embed_distinct(ws, embedder, hashes, texts, engine=engine)
    assert engine.tasks == 3 and embedded == 40  # the first 10 came from the store
    assert np.array_equal(vectors, FakeEmbedder().encode(texts))
    assert np.array_equal(vectors[:10], plain)
    stored = ws.con.execute("SELECT count(*) FROM embeddings").fetchone()
    assert stored == (50,)


def test_an_embedder_that_cannot_be_pickled_embeds_here(ws):
    import threading

    import numpy as np

    from levers_cli.cluster.categorize import embed_distinct
    from tests.helpers import FakeEmbedder

    embedder = FakeEmbedder()
    embedder.chunk_rows = 4
    embedder.session = threading.Lock()  # like an ONNX Runtime session: no pickling
    engine = _Elsewhere()
    texts = [f"query {i}" for i in range(12)]
    vectors, _ = embed_distinct(ws, embedder, [str(i) for i in range(12)], texts, engine=engine)
    assert engine.tasks == 0 and embedder.calls == 3
    assert np.array_equal(vectors, FakeEmbedder().encode(texts))
