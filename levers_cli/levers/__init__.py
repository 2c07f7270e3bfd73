"""The seven levers, one subpackage (or module) each, all following the same contract
(:class:`~levers_cli.levers.base.Lever`), registered here in the order they compound.

To add one: a subpackage with the lever class in its ``__init__.py`` (subclass ``Lever``:
``id``, ``name``, ``effort``, ``analyze`` and ``apply``; ``next_action`` and ``export_command``
for the report's plan) and its parts in modules named for what they do; then put it in
:data:`WATERFALL` where it should compound. Levers do not import each other: what two levers
share lives below them (:mod:`levers_cli.pricing`, :mod:`levers_cli.query_templates`,
:mod:`levers_cli.text`).
"""

from __future__ import annotations

from levers_cli.levers.base import (
    LEVELS,
    ActionContext,
    Basis,
    Figure,
    Finding,
    Level,
    Lever,
    combine_basis,
)
from levers_cli.levers.batch import BatchLever
from levers_cli.levers.caching import CachingLever
from levers_cli.levers.caps import CapsLever
from levers_cli.levers.context import ContextLever
from levers_cli.levers.lora import LoraLever
from levers_cli.levers.materialize import MaterializeLever
from levers_cli.levers.routing import RoutingLever

#: The levers in the order they compound (../shared/DESIGN.md §6: 1…7): each is applied to the
#: plan the ones before it left, and its waterfall step is its saving given theirs.
WATERFALL: tuple[type[Lever], ...] = (
    RoutingLever,
    ContextLever,
    CachingLever,
    CapsLever,
    MaterializeLever,
    LoraLever,
    BatchLever,
)

#: lever id (what ``--levers 1,3`` selects) → lever class, in waterfall order.
LEVERS: dict[int, type[Lever]] = {lever.id: lever for lever in WATERFALL}


def all_levers() -> list[Lever]:
    """One instance of every registered lever, in waterfall order."""
    return [lever() for lever in LEVERS.values()]


__all__ = [
    "LEVELS",
    "LEVERS",
    "WATERFALL",
    "ActionContext",
    "Basis",
    "Figure",
    "Finding",
    "Level",
    "Lever",
    "all_levers",
    "combine_basis",
]
