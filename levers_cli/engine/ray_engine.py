"""The Ray engine: each partition function call is a Ray task (``ray.remote``), on the
cluster at ``[engine] ray_address`` (or ``$RAY_ADDRESS``), else on a Ray instance started on
this machine. Ray is an optional extra (``pip install 'levers-cli[ray]'``), imported only
when this engine is chosen."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from levers_cli.errors import UsageError

T = TypeVar("T")
R = TypeVar("R")

INSTALL_HINT = "--engine ray needs Ray: pip install 'levers-cli[ray]'"


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        UsageError: Ray is not installed (the one-line hint above).
    """
    try:
        import ray
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return ray


class RayEngine:
    """Tasks on a Ray cluster.

    Args:
        address: a cluster's address (``ray://head:10001``, ``auto``); ``""`` for
            ``$RAY_ADDRESS`` when set, else a Ray instance started here with ``workers`` CPUs.
        workers: CPUs of a Ray instance started here (0: all of this machine's); each task
            asks Ray for one CPU, so at most this many run at once.

    Raises:
        UsageError: Ray is not installed.
    """

    name = "ray"
    in_process = False

    def __init__(self, address: str = "", workers: int = 0) -> None:
        self._ray = import_ray()
        self._started = False
        if not self._ray.is_initialized():
            kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
            if address:
                kwargs["address"] = address
            elif workers:
                kwargs["num_cpus"] = workers
            self._ray.init(**kwargs)
            self._started = True
        self.workers = int(self._ray.cluster_resources().get("CPU", 1))

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``fn`` over ``items`` as Ray tasks of one CPU each (see
        :meth:`levers_cli.engine.base.Engine.map`)."""
        remote = self._ray.remote(num_cpus=1)(fn)
        refs = [remote.remote(item) for item in items]
        return list(self._ray.get(refs))

    def close(self) -> None:
        """Shut down the Ray instance this engine started (a cluster it joined stays up)."""
        if self._started:
            self._ray.shutdown()
            self._started = False
