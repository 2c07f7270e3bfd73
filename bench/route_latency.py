"""Route accuracy and `levers route` latency in process, with the embedder the categories were
made with (minilm or static).

Analyzes a log set into a temporary workspace (or opens one analyzed already), builds the
router as ``levers export router-config`` does (``build_router``: 20 % of each category's
distinct queries held out, ``[export] router_holdout_share``), then routes held-out queries
one at a time through ``levers_cli.router.Router``, embedding included: 50 untimed warm-up
calls, then at least ``--queries`` timed calls (cycling over the held-out queries), wall
clock and the calling thread's CPU time per call, p50/p99. Accuracy: the share of held-out
queries routed to their own category, one at a time (what ``levers route`` does) and in one
``route_many`` batch. The 1-minute load average is read before and after (2 cores: above 2,
other processes shared them). Appends a row to ``bench/results/route.md``.

    python bench/route_latency.py sample       # sample_logs/app_logs.jsonl.gz
    python bench/route_latency.py clinc150     # ../shared/data/clinc150 test split (4,500)
    python bench/route_latency.py calls-100k   # bench/data/calls-100k.jsonl (static embedder)
    python bench/route_latency.py calls-1m --workspace ws1m.duckdb   # analyzed with static
    python bench/route_latency.py sample --workspace .levers/levers.duckdb   # analyzed already
    python bench/route_latency.py sample --workspace w.duckdb --backend torch  # minilm on torch
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from levers_cli.analysis import analyze  # noqa: E402
from levers_cli.config import load_config  # noqa: E402
from levers_cli.embed import get_embedder  # noqa: E402
from levers_cli.embed.minilm import MiniLMEmbedder  # noqa: E402
from levers_cli.export.router_config import build_router  # noqa: E402
from levers_cli.ingest.mapping import parse_mapping  # noqa: E402
from levers_cli.router import Router  # noqa: E402
from levers_cli.store import Workspace  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results" / "route.md"
WARM_UP = 50
HEADER = (
    "| set | embedder | routes | held-out | accuracy one / batch | to default | timed | "
    "p50 ms | p99 ms | CPU p50 ms | CPU p99 ms | load before → after |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
)


def _clinc(folder: Path) -> tuple[list[str], dict]:
    with gzip.open(DATA / "clinc150" / "data_full.json.gz", "rt", encoding="utf-8") as handle:
        test = json.load(handle)["test"]
    path = folder / "clinc150-test.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for i, (text, intent) in enumerate(test):
            row = {"id": f"clinc-{i}", "text": text, "model": "gpt-4o-mini", "intent": intent}
            out.write(json.dumps(row) + "\n")
    mapping = parse_mapping(["call_id=id", "query=text", "model=model"])
    return [str(path)], {"format": "generic", "mapping": mapping}


def _embedder(name: str, backend: str | None):
    if name == "minilm" and backend:
        return MiniLMEmbedder(backend=backend)
    return get_embedder(name)


def measure(ws: Workspace, queries: int, backend: str | None) -> dict:
    """Build the router from ``ws`` and time ``queries`` single-query calls (see the module
    doc); returns the row's figures."""
    native, held_out = build_router(ws, load_config(None))
    name = native["embedder"]["name"]
    router = Router(native, _embedder(name, backend))
    pairs = [(q, route) for route, qs in held_out.items() for q in qs]
    batch = router.route_many([q for q, _ in pairs])
    batch_right = sum(m.route == r for m, (_, r) in zip(batch, pairs, strict=True))
    for query, _ in pairs[:WARM_UP]:
        router.route(query)
    load_before = os.getloadavg()[0]
    wall, cpu, right, default = [], [], 0, 0
    for i in range(max(queries, len(pairs))):
        query, route = pairs[i % len(pairs)]
        start, start_cpu = time.perf_counter(), time.thread_time()
        match = router.route(query)
        cpu.append((time.thread_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start) * 1000)
        if i < len(pairs):
            right += match.route == route
            default += match.via == "default"
    backend_used = getattr(router.embedder, "backend", "")
    if getattr(router.embedder, "onnx_error", None) and backend_used != "torch":
        backend_used = "torch (no onnx)"
    return {
        "embedder": f"{name} {backend_used}".strip(), "routes": len(native["routes"]),
        "held_out": len(pairs), "accuracy": round(right / len(pairs), 4),
        "accuracy_batch": round(batch_right / len(pairs), 4),
        "to_default": round(default / len(pairs), 4), "timed": len(wall),
        "p50_ms": round(float(np.percentile(wall, 50)), 3),
        "p99_ms": round(float(np.percentile(wall, 99)), 3),
        "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 3),
        "cpu_p99_ms": round(float(np.percentile(cpu, 99)), 3),
        "load": f"{load_before:.1f} → {os.getloadavg()[0]:.1f}",
    }  # fmt: skip


def run(name: str, workspace: str | None, queries: int, backend: str | None) -> dict:
    """Analyze (unless ``workspace`` names one analyzed already) and measure."""
    if workspace:
        with Workspace(workspace, create=False) as ws:
            return {"set": name, **measure(ws, queries, backend)}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if name == "sample":
            paths, options = [str(ROOT / "sample_logs" / "app_logs.jsonl.gz")], {}
        elif name in ("calls-100k", "calls-1m"):
            paths, options = [str(ROOT / "bench" / "data" / f"{name}.jsonl")], {}
        else:
            paths, options = _clinc(folder)
        with Workspace(folder / "w.duckdb") as ws:
            analyze(ws, paths, **options)
            return {"set": name, **measure(ws, queries, backend)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", choices=("sample", "clinc150", "calls-100k", "calls-1m"))
    parser.add_argument("--workspace", help="an analyzed workspace of that set (skips analyze)")
    parser.add_argument("--queries", type=int, default=1000, help="timed calls (at least)")
    parser.add_argument("--backend", choices=("auto", "onnx", "torch"), help="minilm's backend")
    args = parser.parse_args()
    row = run(args.set, args.workspace, args.queries, args.backend)
    print(json.dumps(row, ensure_ascii=False))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    with RESULTS.open("a", encoding="utf-8") as handle:
        if HEADER not in text:
            handle.write(
                "\n## One query at a time (`bench/route_latency.py`)\n\n"
                "Held-out queries routed one at a time through `levers_cli.router.Router`, "
                "embedding included, in process, after 50 warm-up calls; wall clock and the "
                "thread's CPU time; the 1-minute load average before and after (2 cores: above "
                "2, other processes shared them).\n\n" + HEADER
            )
        handle.write(
            f"| {row['set']} | {row['embedder']} | {row['routes']} | {row['held_out']} | "
            f"{row['accuracy']} / {row['accuracy_batch']} | {row['to_default']} | "
            f"{row['timed']} | {row['p50_ms']} | {row['p99_ms']} | {row['cpu_p50_ms']} | "
            f"{row['cpu_p99_ms']} | {row['load']} |\n"
        )


if __name__ == "__main__":
    main()
