"""The engine contract: run one picklable function over a list of inputs, each call a task
that may run in another process or on another machine, and return the results in input order.

Partition functions (:mod:`levers_cli.simulate`'s lever analyses and waterfall partitions)
take only picklable inputs — the workspace's path, the configuration, a lever, the findings
restricted to a partition — and open the workspace themselves, read-only, so one function
runs unchanged in this process, in a local process pool or as a Ray task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")
R = TypeVar("R")


@runtime_checkable
class Engine(Protocol):
    """Where partition functions run.

    Attributes:
        name: the registry name (``local``, ``ray``).
        workers: how many tasks may run at once (1: one after another).
        in_process: tasks run in this process, one after another: they may use the open
            workspace instead of opening it again (a DuckDB file opened read-write by this
            process cannot be opened read-only by it).
    """

    name: str
    workers: int
    in_process: bool

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(item) for item in items]``, as tasks; results in the order of ``items``.

        Raises:
            whatever ``fn`` raised for the first failing item (in input order).
        """
        ...

    def close(self) -> None:
        """Release what the engine started (a pool, a Ray connection it opened)."""
        ...


def describe(engine: Engine) -> dict[str, Any]:
    """``{"name", "workers"}``: what a run's JSON records about the engine that ran it."""
    return {"name": engine.name, "workers": engine.workers}
