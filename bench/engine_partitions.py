"""Per-partition costs of `levers simulate` on an analyzed workspace (issue 19).

    python bench/engine_partitions.py WORKSPACE --name calls-30k [--workers 2] [--ray]

Measures, in this process: each lever's analysis (wall and CPU seconds); the call partitions
(provider × system prompt, conversations whole) and the groups left after joining what the
levers link; the waterfall of each group at every level as the local engine's task
(`levers_cli.simulate.waterfall_task`, CPU seconds per 1,000 calls); then the whole
`simulate` without an engine and with the local engine of `--workers` processes (and Ray
with `--ray`), wall and CPU seconds (children included) and peak RSS, and whether the
figures agree to the cent. Writes `bench/results/engine-NAME.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from levers_cli.config import load_config
from levers_cli.engine import call_partitions, get_engine, group_partitions
from levers_cli.levers import all_levers
from levers_cli.simulate import _OPEN, WaterfallTask, simulate, waterfall_task
from levers_cli.store import Workspace

RESULTS = Path(__file__).parent / "results"


def cpu() -> float:
    """User + system CPU seconds of this process and its finished children."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def peak_mb() -> float:
    """Peak RSS of this process (MB; ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def leaves(data: Any, path: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        return {k: v for key, val in data.items() for k, v in leaves(val, f"{path}/{key}").items()}
    if isinstance(data, list):
        return {k: v for i, val in enumerate(data) for k, v in leaves(val, f"{path}[{i}]").items()}
    return {path: data}


def worst_gap(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Largest absolute difference of any number of two simulate JSONs (USD)."""
    la, lb = leaves(a), leaves(b)
    assert la.keys() == lb.keys()
    gaps = [abs(la[k] - lb[k]) for k in la if isinstance(la[k], float)]
    return max(gaps, default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace")
    parser.add_argument("--name", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ray", action="store_true", help="also run on a local Ray instance")
    args = parser.parse_args()
    # a copy: simulate's label-table DDL must not touch the analyzed workspace
    folder = Path(tempfile.mkdtemp(prefix="levers-engine-"))
    path = str(folder / "w.duckdb")
    shutil.copy(args.workspace, path)
    config = load_config(None)
    out: dict[str, Any] = {
        "name": args.name,
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
        },
    }
    levers = all_levers()
    with Workspace(path) as ws:
        calls = ws.count("calls", "cost_usd IS NOT NULL")
        out["calls"] = calls
        findings, analyses = {}, []
        for lever in levers:
            wall, used = time.perf_counter(), cpu()
            findings[lever.id] = lever.analyze(ws, config)
            analyses.append(
                {
                    "lever": lever.name,
                    "wall_s": round(time.perf_counter() - wall, 2),
                    "cpu_s": round(cpu() - used, 2),
                }
            )
        out["lever_analyses"] = analyses
        parts = call_partitions(ws)
        sizes = sorted((len(p.call_ids) for p in parts), reverse=True)
        by_lever = {}
        for lever in levers:
            linked = group_partitions(parts, lever.partition_links(findings[lever.id]), 10**9)
            by_lever[lever.name] = {"components": len(linked), "largest": max(map(len, linked))}
        links = [pair for lv in levers for pair in lv.partition_links(findings[lv.id])]
        components = group_partitions(parts, links, 10**9)
        no_lora = [
            pair
            for lv in levers
            if lv.name != "lora"
            for pair in lv.partition_links(findings[lv.id])
        ]
        components_no_lora = group_partitions(parts, no_lora, 10**9)
        out["partitions"] = {
            "count": len(parts),
            "largest_calls": sizes[:5],
            "largest_share": round(sizes[0] / calls, 3),
            "components_after_links": len(components),
            "largest_component_share": round(max(map(len, components)) / calls, 3),
            "components_without_lora_links": len(components_no_lora),
            "largest_component_share_without_lora": round(
                max(map(len, components_no_lora)) / calls, 3
            ),
            "by_lever": by_lever,
        }
        # each component's waterfall (all levels, each lever alone too) as a task, here
        tasks = []
        for group in sorted(components_no_lora, key=len, reverse=True)[:4]:
            task = WaterfallTask(
                path,
                config,
                [lv for lv in levers if lv.name != "lora"],
                {lv.id: findings[lv.id] for lv in levers if lv.name != "lora"},
                ("conservative", "expected", "aggressive"),
                group,
            )
            wall, used = time.perf_counter(), cpu()
            _OPEN[path] = ws
            try:
                waterfall_task(task)
            finally:
                _OPEN.pop(path, None)
            spent = cpu() - used
            tasks.append(
                {
                    "calls": len(group),
                    "wall_s": round(time.perf_counter() - wall, 2),
                    "cpu_s": round(spent, 2),
                    "cpu_s_per_1k_calls": round(spent / len(group) * 1000, 3),
                }
            )
        out["waterfall_tasks_without_lora"] = tasks
        wall, used = time.perf_counter(), cpu()
        plain = simulate(ws, config, levers).as_dict()
        out["simulate_unpartitioned"] = {
            "wall_s": round(time.perf_counter() - wall, 1),
            "cpu_s": round(cpu() - used, 1),
            "peak_rss_mb_so_far": round(peak_mb()),
        }
    runs = [("local", args.workers)] + ([("ray", args.workers)] if args.ray else [])
    for name, workers in runs:
        config.set("engine", "name", name)
        config.set("engine", "workers", workers)
        wall, used = time.perf_counter(), cpu()
        engine = get_engine(config)
        try:
            with Workspace(path) as ws:
                result = simulate(ws, config, levers, engine=engine).as_dict()
        finally:
            engine.close()
        out[f"simulate_{name}_{workers}_workers"] = {
            "wall_s": round(time.perf_counter() - wall, 1),
            "cpu_s_with_children": round(cpu() - used, 1),
            "worst_gap_usd_vs_unpartitioned": worst_gap(result, plain),
        }
    out["load_average_at_end"] = os.getloadavg()
    out["peak_rss_mb_driver"] = round(peak_mb())
    RESULTS.mkdir(exist_ok=True)
    target = RESULTS / f"engine-{args.name}.json"
    target.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
