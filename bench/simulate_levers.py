"""``levers simulate`` on a workspace analyzed already, every lever run to completion, timed
in one process: each lever's ``analyze`` and the waterfall, wall and CPU seconds, and the
peak RSS so far after each step (``bench/run.py``'s :class:`Clock`). Use it where
``bench/run.py --lever-limit`` stopped a lever, to get the whole ``simulate`` figure.

    levers analyze bench/data/calls-1m.jsonl --embedder static --workspace /tmp/ws1m.duckdb
    python bench/simulate_levers.py /tmp/ws1m.duckdb --name calls-1m-static

Writes ``bench/results/scale-simulate-<name>.json`` and re-renders ``scale.md``. The workspace
is only read (the levers write nothing to it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import RESULTS, Clock, cpu_seconds, machine, peak_rss_mb


def simulate_levers(workspace: str) -> dict:
    """Time every lever's analysis and the waterfall on ``workspace`` (see the module doc)."""
    from levers_cli.config import load_config
    from levers_cli.levers import all_levers
    from levers_cli.simulate import simulate
    from levers_cli.store import Workspace

    info = machine()
    clock, findings = Clock(), {}
    with Workspace(workspace, create=False) as ws:
        config = load_config(None)
        calls = ws.count("calls")
        started, cpu = time.perf_counter(), cpu_seconds()
        levers = all_levers()
        for lever in levers:
            findings[lever.id] = clock.run(
                f"lever {lever.id} {lever.name}", lever.analyze, ws, config
            )
        clock.run("waterfall", simulate, ws, config, levers, findings=findings)
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    info["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return {
        "workspace": workspace,
        "calls": calls,
        "steps": clock.steps,
        "simulate_seconds": round(seconds, 1),
        "simulate_cpu_seconds": round(cpu, 1),
        "peak_rss_mb": round(peak_rss_mb()),
        "machine": info,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", help="a workspace `levers analyze` has filled")
    parser.add_argument("--name", required=True, help="result label, e.g. calls-1m-static")
    args = parser.parse_args()
    from scale_render import render

    data = simulate_levers(args.workspace)
    (RESULTS / f"scale-simulate-{args.name}.json").write_text(json.dumps(data, indent=2))
    (RESULTS / "scale.md").write_text(render(RESULTS))
    print(json.dumps({k: data[k] for k in ("calls", "simulate_seconds", "peak_rss_mb")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
