"""examples/ci/levers-weekly.yml, run locally: its steps' shell commands in order (not GitHub
itself) on two generated weekly dumps, with the fake embedder behind a ``levers`` shim.

The install and fetch steps are environment-specific (pip, your log store) and are replaced by
the venv and the generated dumps; ``uses:`` steps (cache, artifact, pull request) are GitHub
actions, checked for presence, not run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.report.test_report import DAY, START, write_log

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "ci" / "levers-weekly.yml"
LOCAL = ("analyze", "summary", "html", "router", "check")
SHIM = f"""#!{sys.executable}
import sys
sys.path.insert(0, {str(ROOT)!r})
from levers_cli.embed import EMBEDDERS
from tests.helpers import FakeEmbedder
EMBEDDERS["fake"] = FakeEmbedder
from levers_cli.cli import main
sys.argv[0] = "levers"
main()
"""


def _steps() -> dict[str, dict]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    return {s["id"]: s for s in workflow["jobs"]["weekly"]["steps"] if "id" in s}, workflow


def _run(step: dict, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-eo", "pipefail", "-c", step["run"]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _outputs(path: Path) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in path.read_text().splitlines() if "=" in line]
    return dict(pairs)


@pytest.mark.integration
def test_weekly_job_on_two_generated_weeks(tmp_path: Path) -> None:
    steps, workflow = _steps()
    uses = [s.get("uses", "") for s in workflow["jobs"]["weekly"]["steps"]]
    assert any(u.startswith("actions/cache/restore@") for u in uses)
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    assert any(u.startswith("peter-evans/create-pull-request@") for u in uses)
    assert workflow[True]["schedule"][0]["cron"]  # PyYAML reads the key `on` as True

    repo = tmp_path / "repo"
    (repo / "dumps" / "latest").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "levers").write_text(SHIM)
    (bin_dir / "levers").chmod(0o755)
    env = {
        **os.environ,
        **{k: str(v) for k, v in workflow["env"].items()},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "LEVERS_EMBEDDER": "fake",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_OUTPUT": str(tmp_path / "output.txt"),
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }  # fmt: skip
    env.pop("LEVERS_WORKSPACE_OVERRIDE", None)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)

    def week(dump: Path, limits: dict[str, str]) -> dict[str, subprocess.CompletedProcess]:
        for old in (repo / "dumps" / "latest").iterdir():
            old.unlink()
        os.replace(dump, repo / "dumps" / "latest" / dump.name)
        (tmp_path / "output.txt").write_text("")
        done = {}
        for step_id in LOCAL:
            done[step_id] = _run(steps[step_id], repo, {**env, **limits})
            if step_id != "check":
                assert done[step_id].returncode == 0, (step_id, done[step_id].stderr)
        return done

    loose = {"LEVERS_MAX_MONTHLY_COST": "1000", "LEVERS_MAX_UNCATEGORIZED_SHARE": "1",
             "LEVERS_MAX_COST_GROWTH": "10"}  # fmt: skip
    first = week(write_log(tmp_path / "week1.jsonl.gz", weeks=1, payloads=False), loose)
    assert first["check"].returncode == 0, first["check"].stdout + first["check"].stderr
    assert "ok: within every limit" in first["check"].stdout
    assert _outputs(tmp_path / "output.txt")["changed"] == "true"  # a new router config
    assert (repo / "reports" / "levers-report.html").stat().st_size > 100_000
    assert "## levers: LLM cost report" in (tmp_path / "summary.md").read_text()
    subprocess.run(["git", "add", "-A", env["ROUTER_DIR"]], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "router"], cwd=repo, check=True, env=env)
    # nothing new: the re-export is unchanged, so no pull request
    (tmp_path / "output.txt").write_text("")
    assert _run(steps["router"], repo, env).returncode == 0
    assert _outputs(tmp_path / "output.txt")["changed"] == "false"

    # week 2: the same traffic with three times the output tokens (the bill grows)
    dump2 = write_log(tmp_path / "week2.jsonl.gz", weeks=1, payloads=False, seed=1,
                      start=START + 7 * DAY, out_scale=3)  # fmt: skip
    tight = {"LEVERS_MAX_MONTHLY_COST": "0.0001", "LEVERS_MAX_UNCATEGORIZED_SHARE": "1",
             "LEVERS_MAX_COST_GROWTH": "0.2"}  # fmt: skip
    second = week(dump2, tight)
    check = second["check"]
    assert check.returncode == 4, check.stdout + check.stderr
    lines = check.stdout.strip().splitlines()
    assert len(lines) == 2, lines  # one line per breached limit: cost and growth
    assert lines[0].startswith("monthly cost ") and lines[0].endswith("over the limit $0.0001")
    assert lines[1].startswith("cost grew +")
    assert "### Week over week" in (tmp_path / "summary.md").read_text()
    # the same workspace within loose limits passes
    assert _run(steps["check"], repo, {**env, **loose}).returncode == 0
