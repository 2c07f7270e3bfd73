"""levers: read the logs of an application's LLM calls, find where the money goes, and plan
how to spend less.

The library is usable without the CLI::

    from levers_cli import Workspace, analyze
    with Workspace("levers.duckdb") as ws:
        result = analyze(ws, ["logs.jsonl"])
"""

from __future__ import annotations

from levers_cli.errors import LeversError
from levers_cli.store import Workspace
from levers_cli.version import __version__


def analyze(*args, **kwargs):  # type: ignore[no-untyped-def]
    """See :func:`levers_cli.analysis.analyze` (imported lazily: it pulls in numpy)."""
    from levers_cli.analysis import analyze as run

    return run(*args, **kwargs)


__all__ = ["LeversError", "Workspace", "__version__", "analyze"]
