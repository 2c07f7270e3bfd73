"""The seven levers, one module each, all with the same interface
(:class:`~levers_cli.levers.base.Lever`), registered here in the order they compound.

To add one: a module with a class that has ``id``, ``name``, ``effort``, ``analyze`` and
``apply``; add it to :data:`LEVERS` below.
"""

from __future__ import annotations

from levers_cli.levers.base import LEVELS, Basis, Figure, Finding, Level, Lever, combine_basis
from levers_cli.levers.batch import BatchLever
from levers_cli.levers.caching import CachingLever
from levers_cli.levers.caps import CapsLever
from levers_cli.levers.context import ContextLever
from levers_cli.levers.lora import LoraLever
from levers_cli.levers.materialize import MaterializeLever
from levers_cli.levers.routing import RoutingLever

#: lever id → lever class, in compounding order (1 routing … 7 batch).
LEVERS: dict[int, type] = {
    3: CachingLever,
    1: RoutingLever,
    4: CapsLever,
    2: ContextLever,
    7: BatchLever,
    5: MaterializeLever,
    6: LoraLever,
    # levers: add them in id order above this line
}


def all_levers() -> list[Lever]:
    """One instance of every registered lever, in id order."""
    return [LEVERS[key]() for key in sorted(LEVERS)]


__all__ = [
    "LEVELS",
    "LEVERS",
    "Basis",
    "Figure",
    "Finding",
    "Level",
    "Lever",
    "all_levers",
    "combine_basis",
]
