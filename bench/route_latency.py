"""Route accuracy and `levers route` latency with the real MiniLM embedder.

Analyzes a log set into a temporary workspace, runs ``levers export router-config`` (which
holds out 20 % of each category's distinct queries, ``[export] router_holdout_share``),
routes the held-out queries through the exported ``levers-router.json`` and reports the share
routed to their own category and the per-query latency (one query at a time, embedding
included, wall clock; p50/p99 over up to 300 queries). Appends a section to
``bench/results/route.md``.

    python bench/route_latency.py sample       # sample_logs/app_logs.jsonl.gz
    python bench/route_latency.py clinc150     # ../shared/data/clinc150 test split (4,500)
    python bench/route_latency.py sample --workspace .levers/levers.duckdb   # analyzed already
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from levers_cli.analysis import analyze  # noqa: E402
from levers_cli.config import load_config  # noqa: E402
from levers_cli.export import run_export  # noqa: E402
from levers_cli.ingest.mapping import parse_mapping  # noqa: E402
from levers_cli.store import Workspace  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results" / "route.md"


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


def run(name: str, workspace: str | None = None) -> dict:
    """Analyze (unless ``workspace`` names one analyzed already), export, measure; returns
    the accuracy figures and timings."""
    if workspace:
        with tempfile.TemporaryDirectory() as tmp, Workspace(workspace, create=False) as ws:
            result = run_export("router-config", ws, load_config(None), str(Path(tmp) / "out"))
        stats = result.details["accuracy"]
        return {"set": name, "analyze_s": None, "routes": result.counts["routes"], **stats}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if name == "sample":
            paths, options = [str(ROOT / "sample_logs" / "app_logs.jsonl.gz")], {}
        else:
            paths, options = _clinc(folder)
        start = time.perf_counter()
        with Workspace(folder / "w.duckdb") as ws:
            analyze(ws, paths, **options)
            analyzed = time.perf_counter() - start
            result = run_export("router-config", ws, load_config(None), str(folder / "out"))
        stats = result.details["accuracy"]
        return {"set": name, "analyze_s": round(analyzed, 1), "routes": result.counts["routes"],
                **stats}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", choices=("sample", "clinc150"))
    parser.add_argument("--workspace", help="an analyzed workspace of that set (skips analyze)")
    args = parser.parse_args()
    row = run(args.set, args.workspace)
    print(json.dumps(row))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    new = not RESULTS.exists()
    with RESULTS.open("a", encoding="utf-8") as handle:
        if new:
            handle.write(
                "# Route accuracy and latency (MiniLM, `bench/route_latency.py`)\n\n"
                "Latency: one query at a time through `levers_cli.route.Router`, embedding "
                "included, in process; the machine's 1-minute load average beside it (2 "
                "cores: a load above 2 means other processes shared them).\n\n"
                "| set | routes | held-out | accuracy | to default | p50 ms | p99 ms | load |\n"
                "|---|---:|---:|---:|---:|---:|---:|---:|\n"
            )
        handle.write(
            f"| {row['set']} | {row['routes']} | {row['held_out']} | {row['accuracy']} | "
            f"{row['to_default']} | {row['latency_ms_p50']} | {row['latency_ms_p99']} | "
            f"{os.getloadavg()[0]:.1f} |\n"
        )


if __name__ == "__main__":
    main()
