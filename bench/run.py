"""Scale benchmark: every step of ``levers analyze`` and ``levers simulate`` on one large log,
timed in one process, with peak memory; results go to ``bench/results/`` and are rendered into
``bench/results/scale.md`` with the machine's description.

Usage::

    python bench/make_logs.py 100000                       # once: bench/data/calls-100k.jsonl
    python bench/run.py bench/data/calls-100k.jsonl        # --embedder auto (the default)
    python bench/run.py bench/data/calls-1m.jsonl --embedder static
    python bench/run.py --clinc                            # sampling cost on clinc150 (NMI)
    python bench/run.py --render                           # rebuild scale.md from the results

What is measured (wall-clock seconds, ``time.perf_counter``):

- ingest: ``ingest_files`` (records/s), next to DuckDB's own ``read_json`` of the same file into a
  table (the ceiling; run in a child process so its memory is not counted in levers' peak);
- conversations, pricing, embedding (distinct queries/s), clustering (fit on the sample plus
  assignment of the rest), writing categories, the summary: together ``levers analyze``;
- each lever's ``analyze`` (``levers_cli.levers.LEVERS``) and the waterfall: together
  ``levers simulate``;
- routing latency per query, in process: ``levers_cli.router.Router`` on the exported router
  when that module is present, else nearest-centroid routing with the same embedder;
- peak RSS: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (kilobytes on Linux) after each step;
- the machine: cores, RAM (psutil), Python and library versions, load average before and after
  (``os.getloadavg``: the machine may be shared).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

LIBRARIES = [
    "duckdb",
    "numpy",
    "polars",
    "scikit-learn",
    "umap-learn",
    "hdbscan",
    "model2vec",
    "sentence-transformers",
    "torch",
]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB (ru_maxrss is in KB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    """Cores, memory, Python and library versions, current load."""
    import psutil

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "libraries": versions,
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }


def duckdb_ceiling(path: str) -> dict[str, float]:
    """Records/s of DuckDB's own ``read_json`` loading ``path`` into a table, in a child
    process (so its memory does not count in levers' peak RSS)."""
    code = (
        "import duckdb, sys, tempfile, time, os\n"
        "d = tempfile.mkdtemp()\n"
        "con = duckdb.connect(os.path.join(d, 'c.duckdb'))\n"
        "con.execute('SET enable_progress_bar = false')\n"
        "t = time.perf_counter()\n"
        "con.execute(\"CREATE TABLE t AS SELECT * FROM read_json(?, format='newline_delimited',"
        ' maximum_object_size=134217728)", [sys.argv[1]])\n'
        "n = con.execute('SELECT count(*) FROM t').fetchone()[0]\n"
        "print(n, time.perf_counter() - t)\n"
        "con.close()\n"
        "import shutil; shutil.rmtree(d)\n"
    )
    out = (
        subprocess.run(
            [sys.executable, "-c", code, path], capture_output=True, text=True, check=True
        )
        .stdout.strip()
        .splitlines()[-1]
        .split()
    )
    rows, seconds = int(out[0]), float(out[1])
    return {"rows": rows, "seconds": seconds, "records_per_s": rows / seconds}


def cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and its finished children
    (ingest's worker processes): on a shared machine the wall time of a step grows with the
    load, its CPU time much less."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Clock:
    """Named wall-clock steps with their CPU seconds and the peak RSS after each."""

    def __init__(self) -> None:
        self.steps: dict[str, dict[str, float]] = {}

    def run(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        started, cpu = time.perf_counter(), cpu_seconds()
        value = fn(*args, **kwargs)
        self.record(name, time.perf_counter() - started, cpu_seconds() - cpu)
        print(f"  {name}: {self.steps[name]['seconds']:.1f} s", file=sys.stderr, flush=True)
        return value

    def record(self, name: str, seconds: float, cpu: float | None = None) -> None:
        self.steps[name] = {"seconds": round(seconds, 2), "peak_rss_mb": round(peak_rss_mb())}
        if cpu is not None:
            self.steps[name]["cpu_seconds"] = round(cpu, 2)


def route_latency(ws: Any, config: Any, embedder: Any, queries: list[str]) -> dict[str, Any]:
    """Per-query routing latency in process (ms): p50, p99 over ``queries`` routed one by one."""
    import numpy as np

    try:
        from levers_cli.export.router_config import build_router
        from levers_cli.router import Router

        native = build_router(ws, config)[0]
        router = Router(native, embedder)
        route_one = router.route
        how = "levers_cli.router.Router on the exported router config"
    except Exception as exc:  # another team's module may be absent or fail on this data
        rows = ws.con.execute(
            "SELECT category_id, centroid FROM categories ORDER BY category_id"
        ).fetchall()
        matrix = np.array([r[1] for r in rows], dtype=np.float32)
        ids = np.array([r[0] for r in rows])

        def route_one(text: str) -> int:
            return int(ids[int(np.argmax(embedder.encode([text])[0] @ matrix.T))])

        how = f"nearest centroid with the embedder (router unavailable: {exc})"
    for text in queries[:20]:  # warm-up: model load, first-call costs
        route_one(text)
    times = []
    for text in queries:
        started = time.perf_counter()
        route_one(text)
        times.append((time.perf_counter() - started) * 1000)
    values = np.array(times)
    return {
        "how": how,
        "queries": len(values),
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p99_ms": round(float(np.percentile(values, 99)), 3),
    }


class StepTimeout(Exception):
    """A step ran past its time limit (``--lever-limit``)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Any:
    """Raise :class:`StepTimeout` in the main thread after ``seconds`` (SIGALRM; checked when
    control returns to Python). ``0`` = no limit."""
    if not seconds:
        yield
        return

    def expire(*_: object) -> None:
        raise StepTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_scale(
    path: str, embedder_name: str, skip_ceiling: bool = False, lever_limit_s: float = 0
) -> dict[str, Any]:
    """The whole benchmark on one log file (see the module docstring)."""
    from levers_cli.analysis import cluster_params, resolve_embedder
    from levers_cli.cluster import categorize
    from levers_cli.config import load_config
    from levers_cli.enrich.conversations import link_conversations
    from levers_cli.enrich.prices import price_calls
    from levers_cli.ingest.pipeline import ingest_files
    from levers_cli.levers import all_levers
    from levers_cli.simulate import simulate
    from levers_cli.store import Workspace
    from levers_cli.summary import summarize

    info = machine()
    result: dict[str, Any] = {"file": path, "bytes": os.path.getsize(path), "machine": info}
    if not skip_ceiling:
        print("DuckDB read_json ceiling…", file=sys.stderr, flush=True)
        result["duckdb_read_json"] = duckdb_ceiling(path)
    config = load_config(None)
    config.set("embed", "embedder", embedder_name)
    clock = Clock()
    marks: dict[str, float] = {}

    def progress(stage: str, advance: int, total: int) -> None:
        now = time.perf_counter()
        marks.setdefault(f"{stage}:first", now)
        marks[f"{stage}:last"] = now

    with tempfile.TemporaryDirectory(prefix="levers-bench-") as folder:
        total_start, total_cpu = time.perf_counter(), cpu_seconds()
        with Workspace(Path(folder) / "w.duckdb") as ws:
            ingested = clock.run("ingest", ingest_files, ws, [path], command="analyze")
            clock.run("conversations", link_conversations, ws)
            clock.run("prices", price_calls, ws, config)
            embedder, choice = clock.run("choose embedder", resolve_embedder, ws, config)
            result["embedder_choice"] = {"name": choice.name, "reason": choice.reason}
            started, categorize_cpu = time.perf_counter(), cpu_seconds()
            categorized = categorize(
                ws,
                embedder,
                cluster_params(config),
                keywords=config.get("cluster", "keywords_per_category"),
                exemplars=config.get("cluster", "exemplars_per_category"),
                progress=progress,
            )
            done = time.perf_counter()
            embed_s = marks.get("cluster:first", done) - started
            cluster_s = marks.get("cluster:last", done) - marks.get("cluster:first", done)
            clock.record("embed", embed_s)
            clock.record("cluster (fit + assign)", cluster_s)
            clock.record("labels + write categories", done - started - embed_s - cluster_s)
            result["categorize_cpu_seconds"] = round(cpu_seconds() - categorize_cpu, 1)
            clock.run(
                "summary",
                summarize,
                ws,
                config,
                ingest=ingested.as_dict(),
                prices={},
                categorization={},
            )
            analyze_s = time.perf_counter() - total_start
            result["analyze_cpu_seconds"] = round(cpu_seconds() - total_cpu, 1)
            sim_cpu = cpu_seconds()
            findings = {}
            sim_start = time.perf_counter()
            levers = all_levers()
            timed_out = []
            for lever in levers:
                name = f"lever {lever.id} {lever.name}"
                try:
                    with time_limit(lever_limit_s):
                        findings[lever.id] = clock.run(name, lever.analyze, ws, config)
                except StepTimeout:
                    clock.record(name, lever_limit_s)
                    clock.steps[name]["timed_out"] = True
                    timed_out.append(name)
            if not timed_out:
                clock.run("waterfall", simulate, ws, config, levers, findings=findings)
            simulate_s = time.perf_counter() - sim_start
            result["simulate_cpu_seconds"] = round(cpu_seconds() - sim_cpu, 1)
            result["levers_timed_out"] = timed_out
            queries = [
                r[0]
                for r in ws.con.execute(
                    """SELECT query FROM (SELECT query FROM calls WHERE query IS NOT NULL)
                       USING SAMPLE reservoir(1000 ROWS) REPEATABLE (42)"""
                ).fetchall()
            ]
            result["route"] = route_latency(ws, config, embedder, queries)
            calls = ws.count("calls")
        result.update(
            {
                "calls": calls,
                "ingest": {
                    "read": ingested.read,
                    "stored": ingested.stored,
                    "duplicates": ingested.duplicates,
                    "rejected": ingested.rejected,
                    "records_per_s": round(ingested.read / clock.steps["ingest"]["seconds"]),
                },
                "categorization": {
                    "distinct_queries": categorized.distinct_queries,
                    "embedded_now": categorized.embedded_now,
                    "categories": categorized.categories,
                    "uncategorized_calls": categorized.uncategorized_calls,
                    "method": categorized.method,
                    "embedder": categorized.embedder,
                    "queries_per_s": round(categorized.embedded_now / max(embed_s, 1e-9)),
                },
                "steps": clock.steps,
                "analyze_seconds": round(analyze_s, 1),
                "simulate_seconds": round(simulate_s, 1),
                "total_seconds": round(time.perf_counter() - total_start, 1),
                "peak_rss_mb": round(peak_rss_mb()),
            }
        )
    info["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="levers scale benchmark")
    parser.add_argument("log", nargs="?", help="log file from bench/make_logs.py")
    parser.add_argument("--embedder", default="auto", help="auto, minilm, static or tfidf")
    parser.add_argument("--clinc", action="store_true", help="sampling cost on clinc150")
    parser.add_argument("--render", action="store_true", help="only rebuild scale.md")
    parser.add_argument("--no-ceiling", action="store_true", help="skip DuckDB read_json")
    parser.add_argument(
        "--lever-limit", type=float, default=0, help="stop a lever's analysis after N seconds"
    )
    args = parser.parse_args(argv)
    from scale_render import render

    RESULTS.mkdir(exist_ok=True)
    if args.clinc:
        from scale_clinc import sampling_cost

        data = sampling_cost(args.embedder if args.embedder != "auto" else "minilm")
        data["machine"] = machine()
        (RESULTS / f"scale-clinc-{data['embedder_name']}.json").write_text(
            json.dumps(data, indent=2)
        )
    elif args.log:
        data = run_scale(args.log, args.embedder, args.no_ceiling, args.lever_limit)
        name = Path(args.log).name.split(".")[0]
        (RESULTS / f"scale-{name}-{args.embedder}.json").write_text(json.dumps(data, indent=2))
    elif not args.render:
        parser.error("give a log file, --clinc or --render")
    text = render(RESULTS)
    (RESULTS / "scale.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
