"""The local engine: partition functions in this process (1 worker) or in a pool of worker
processes (``concurrent.futures.ProcessPoolExecutor``, started with ``spawn`` so no worker
inherits a DuckDB connection or a thread pool of this process)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class LocalEngine:
    """Tasks in this process or in ``workers`` processes of this machine.

    Args:
        workers: processes (1: in this process, one task after another; 0: one per core,
            ``os.cpu_count()``).

    Raises:
        ValueError: ``workers`` below 0.
    """

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        if workers < 0:
            raise ValueError(f"workers must be 0 (one per core) or more, got {workers}")
        self.workers = workers or (os.cpu_count() or 1)
        self.in_process = self.workers == 1
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``fn`` over ``items`` (see :meth:`levers_cli.engine.base.Engine.map`); the pool
        starts on the first call with more than one item and serves later calls until
        :meth:`close` (its workers open the workspace per task, so none keeps it open)."""
        if self.in_process or len(items) <= 1:
            return [fn(item) for item in items]
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
        return list(self._pool.map(fn, items))

    def close(self) -> None:
        """Shut the pool down (its workers end)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
