"""Embedders behind one protocol (:class:`~levers_cli.embed.base.Embedder`) and a registry.

To add one, write a module with a class that has ``name``, ``key``, ``dimension`` and
``encode``, and register a factory here. An embedder whose vectors depend on the corpus
(``tfidf``) also has ``adapt(texts, previous_keys)``, which categorization calls first.

``auto`` is not an embedder but a choice made once the distinct queries are known
(:func:`choose_embedder`): ``minilm`` while embedding them stays within the time goal, else
``static``; a workspace whose categories were made with an embedder keeps it, so weekly runs
keep their category ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from levers_cli.embed.base import Embedder, l2_normalize
from levers_cli.embed.minilm import MiniLMEmbedder
from levers_cli.embed.static import StaticEmbedder
from levers_cli.embed.tfidf import TfidfEmbedder
from levers_cli.errors import UsageError

AUTO = "auto"

EMBEDDERS: dict[str, Callable[..., Embedder]] = {
    MiniLMEmbedder.name: MiniLMEmbedder,
    StaticEmbedder.name: StaticEmbedder,
    TfidfEmbedder.name: TfidfEmbedder,
}


def get_embedder(name: str, **options: object) -> Embedder:
    """A new embedder registered as ``name``.

    Raises:
        UsageError: no embedder has that name (``auto`` is resolved by
            :func:`choose_embedder` first): exit 2.
    """
    try:
        factory = EMBEDDERS[name]
    except KeyError:
        raise UsageError(
            f"unknown embedder {name!r} (--embedder or [embed] embedder); choose one of: "
            f"{AUTO}, {', '.join(EMBEDDERS)}"
        ) from None
    return factory(**options)


@dataclass(frozen=True)
class EmbedderChoice:
    """Which embedder ``auto`` picked and why (one line for the user)."""

    name: str
    reason: str


def choose_embedder(
    to_embed: int, minilm_max_queries: int, stored: str | None = None
) -> EmbedderChoice:
    """Resolve ``--embedder auto``.

    Args:
        to_embed: distinct queries that have no cached vector for minilm yet.
        minilm_max_queries: most queries minilm may embed in one run
            (``[embed] auto_minilm_max_queries``; its source is in ``defaults.toml``).
        stored: the registered name of the embedder the workspace's categories were made
            with, if any.

    Returns:
        ``minilm``, ``static``, or the stored embedder, with the reason.
    """
    if stored in EMBEDDERS:
        return EmbedderChoice(
            stored, f"the workspace's categories were made with {stored}; kept for stable ids"
        )
    if to_embed <= minilm_max_queries:
        return EmbedderChoice(
            "minilm", f"{to_embed:,} distinct queries to embed ≤ {minilm_max_queries:,}"
        )
    return EmbedderChoice(
        "static",
        f"{to_embed:,} distinct queries to embed > {minilm_max_queries:,}, "
        "too many for minilm within the time goal",
    )


__all__ = [
    "AUTO",
    "EMBEDDERS",
    "Embedder",
    "EmbedderChoice",
    "choose_embedder",
    "get_embedder",
    "l2_normalize",
]
