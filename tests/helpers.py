"""What several test files share: paths to ../shared (real data and field cases; tests that
need it skip loudly when it is absent), a deterministic fake embedder, the shipped sample
analyzed once per session, a builder of OpenAI log records, and the listing of the user's
files that the session checks it never wrote (conftest.py).

Imported as a module (``from tests.helpers import FakeEmbedder``; pytest puts the repository
root on ``sys.path``, ``pythonpath`` in pyproject.toml), so plain ``pytest`` and
``python -m pytest`` both find it. Fixtures live in ``conftest.py``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from levers_cli.embed.base import Embedder, l2_normalize
from levers_cli.store import Workspace

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CASES = SHARED / "cases"
DATA = SHARED / "data"
FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE_LOGS = ROOT / "sample_logs" / "app_logs.jsonl.gz"


class FakeEmbedder(Embedder):
    """Bag of words hashed into 64 dimensions: texts sharing words are close, identical
    texts identical. Deterministic, no model, instant."""

    name = "fake"
    key = "fake:bow64"
    dimension = 64

    def __init__(self, **_: object) -> None:
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                digest = hashlib.md5(word.encode()).digest()
                out[row, digest[0] % self.dimension] += 1.0
        return l2_normalize(out)


def need_shared(path: Path) -> Path:
    """``path`` under ../shared, or skip the test loudly when CI's copy is missing."""
    if not path.exists():
        pytest.skip(f"SKIPPED: {path} is missing; ../shared must sit beside the clone")
    return path


def analyzed_sample_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy of the shipped sample analyzed with the fake embedder. The analysis runs
    once per test session (it takes ~20 s); each caller gets its own copy to write into."""
    from levers_cli.analysis import analyze

    master = tmp_path_factory.getbasetemp() / "levers-sample-fake.duckdb"
    if not master.exists():
        building = tmp_path_factory.mktemp("sample-build") / "w.duckdb"
        with Workspace(building) as ws:
            analyze(ws, [str(SAMPLE_LOGS)], embedder=FakeEmbedder())
        os.replace(building, master)
    copy = tmp_path_factory.mktemp("sample") / "w.duckdb"
    shutil.copy(master, copy)
    return copy



def price_case(ws: Workspace, name: str) -> tuple[Any, Any]:
    """Ingest the field case ../shared/cases/``name`` (skipping loudly when it is missing)
    and price it with the default configuration: ``(ingest result, pricing result)``."""
    from levers_cli.config import load_config
    from levers_cli.enrich.prices import price_calls
    from levers_cli.ingest.pipeline import ingest_files

    result = ingest_files(ws, [str(need_shared(CASES / name))])
    return result, price_calls(ws, load_config(None))


def call_costs(ws: Workspace) -> dict[str, Decimal]:
    """``call_id`` → ``cost_usd`` of every stored call."""
    return dict(ws.con.execute("SELECT call_id, cost_usd FROM calls").fetchall())


def insert_rows(ws: Workspace, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Store hand-built call rows (dicts keyed by :data:`levers_cli.schema.INGEST_COLUMNS`,
    the JSON columns as Python objects, as :func:`levers_cli.ingest.rows.finish_row` leaves
    them) through the workspace's Arrow insert; ``(stored, re-identified)``."""
    import json

    import pyarrow as pa

    from levers_cli.schema import INGEST_COLUMNS, JSON_COLUMNS
    from levers_cli.store import call_arrow_schema

    columns: dict[str, list[Any]] = {name: [] for name in INGEST_COLUMNS}
    for row in rows:
        for name in INGEST_COLUMNS:
            value = row.get(name)
            if name in JSON_COLUMNS and value is not None:
                value = json.dumps(value, ensure_ascii=False, default=str)
            columns[name].append(value)
    return ws.append_calls(pa.Table.from_pydict(columns, schema=call_arrow_schema()))


def openai_pair(
    call_id: str,
    model: str,
    messages: list[dict],
    reply: str,
    created: int,
    prompt_tokens: int,
    completion_tokens: int,
    *,
    finish_reason: str = "stop",
    **request: object,
) -> dict:
    """One OpenAI Chat Completions ``{"request", "response"}`` log record with usage, for
    tests that build tiny workspaces by hand (``request`` adds fields such as max_tokens)."""
    return {
        "request": {"model": model, "messages": messages, **request},
        "response": {
            "id": call_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
        },
    }


def user_files(folder: Path) -> dict[str, tuple[int, int] | None]:
    """What the suite must leave alone in ``folder`` (the repository, the folder pytest ran
    in): its top-level entries and everything under ``reports/`` and ``.levers/``, as
    ``{relative path: (size, mtime_ns)}`` (None for a folder). pytest's own cache is left out."""
    found: dict[str, tuple[int, int] | None] = {}
    if not folder.is_dir():
        return found
    for entry in folder.iterdir():
        if entry.name == ".pytest_cache":
            continue
        inside = entry.rglob("*") if entry.name in ("reports", ".levers") else ()
        for path in (entry, *inside):
            key = str(path.relative_to(folder))
            if path.is_file() and not path.is_symlink():
                stat = path.stat()
                found[key] = (stat.st_size, stat.st_mtime_ns)
            else:
                found[key] = None
    return found
