"""Embedders behind one protocol (:class:`~levers_cli.embed.base.Embedder`) and a registry.

To add one, write a module with a class that has ``name``, ``key``, ``dimension`` and
``encode``, and register a factory here.
"""

from __future__ import annotations

from collections.abc import Callable

from levers_cli.embed.base import Embedder, l2_normalize
from levers_cli.embed.minilm import MiniLMEmbedder
from levers_cli.errors import LeversError

EMBEDDERS: dict[str, Callable[..., Embedder]] = {
    MiniLMEmbedder.name: MiniLMEmbedder,
}


def get_embedder(name: str, **options: object) -> Embedder:
    """A new embedder registered as ``name``.

    Raises:
        LeversError: no embedder has that name.
    """
    try:
        factory = EMBEDDERS[name]
    except KeyError:
        raise LeversError(
            f"unknown embedder {name!r}; choose one of: {', '.join(EMBEDDERS)}"
        ) from None
    return factory(**options)


__all__ = ["EMBEDDERS", "Embedder", "get_embedder", "l2_normalize"]
