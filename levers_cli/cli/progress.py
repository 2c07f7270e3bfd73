"""Rich progress bars on stderr, driven by the core's ``progress(stage, advance, total)``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

_LABELS = {"ingest": "reading records", "embed": "embedding queries", "cluster": "clustering"}


@contextmanager
def progress_bars(
    console: Console, enabled: bool = True
) -> Iterator[Callable[[str, int, int], None] | None]:
    """Yield a ``progress(stage, advance, total)`` callback that draws one bar per stage
    (``total`` 0 = unknown: a counter with a spinner)."""
    if not enabled:
        yield None
        return
    bars = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),  # stage text is text: "[static]"
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def update(stage: str, advance: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(_LABELS.get(stage, stage), total=total or None)
        elif total:
            bars.update(tasks[stage], total=total)
        bars.advance(tasks[stage], advance)

    with bars:
        yield update
        for task in tasks.values():  # finish bars whose total was unknown
            current = bars.tasks[task].completed
            bars.update(task, total=max(current, 1), completed=max(current, 1))
