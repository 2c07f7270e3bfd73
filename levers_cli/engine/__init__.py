"""Engines: where levers' partition functions run — this process or a local process pool
(``local``, the default) or a Ray cluster (``ray``, an optional extra).

Chosen by ``--engine`` on ``levers analyze`` / ``levers simulate`` or ``[engine] name`` in
``levers.toml``; ``[engine] workers`` and ``ray_address`` size and place it. The contract is
:class:`~levers_cli.engine.base.Engine`; :mod:`~levers_cli.engine.partitions` splits the
calls into partitions no lever needs to see across.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from levers_cli.engine.base import Engine, describe
from levers_cli.engine.local import LocalEngine
from levers_cli.engine.partitions import Partition, call_partitions, group_partitions
from levers_cli.errors import UsageError

if TYPE_CHECKING:
    from levers_cli.config import Config


def _ray(address: str, workers: int) -> Engine:
    from levers_cli.engine.ray_engine import RayEngine

    return RayEngine(address, workers)


#: engine name → factory ``(ray_address, workers) -> Engine``.
ENGINES: dict[str, Callable[[str, int], Engine]] = {
    "local": lambda _address, workers: LocalEngine(workers),
    "ray": _ray,
}


def get_engine(config: Config, name: str | None = None) -> Engine:
    """The engine ``name`` (else ``[engine] name``) sized by ``[engine] workers`` and placed by
    ``[engine] ray_address``.

    Raises:
        UsageError: an unknown engine name, a negative ``workers``, or ``ray`` without Ray
            installed.
    """
    chosen = name or str(config.get("engine", "name"))
    if chosen not in ENGINES:
        raise UsageError(f"--engine {chosen!r}: choose one of {', '.join(ENGINES)}")
    workers = int(config.get("engine", "workers"))
    if workers < 0:
        raise UsageError(f"[engine] workers = {workers}: give 0 (one per core) or more")
    return ENGINES[chosen](str(config.get("engine", "ray_address")), workers)


def chosen_engine(config: Config, name: str | None = None) -> Engine | None:
    """The engine a command runs its partition steps on: ``None`` (the steps as one job in
    this process, as before engines) when neither ``name`` nor ``[engine]`` asks for one
    (``name = "local"`` with ``workers = 1``, the defaults), else :func:`get_engine`.

    Raises:
        UsageError: as :func:`get_engine`.
    """
    asked = name is not None
    default = config.get("engine", "name") == "local" and int(config.get("engine", "workers")) == 1
    if not asked and default:
        return None
    return get_engine(config, name)


__all__ = [
    "ENGINES",
    "Engine",
    "LocalEngine",
    "Partition",
    "call_partitions",
    "chosen_engine",
    "describe",
    "get_engine",
    "group_partitions",
]
