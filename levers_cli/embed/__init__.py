"""Embedders behind one contract (:class:`~levers_cli.embed.base.Embedder`) and a registry.

To add one: a module with a subclass of ``Embedder`` (``name``, ``key``, ``dimension``,
``encode``; override ``from_settings``, ``chunk_rows``, ``adapt`` or ``is_cached`` where it
needs to), and one line in :data:`EMBEDDERS`.

``--embedder`` / ``[embed] embedder`` names a registered embedder, or else any
sentence-transformers model: a local model folder or a Hugging Face model id found in the
user's Hugging Face cache (:mod:`levers_cli.embed.named`; never downloaded).

``auto`` is not an embedder but a choice made once the distinct queries are known
(:func:`choose_embedder`): ``minilm`` while embedding them stays within the time goal, else
``static``; a workspace whose categories were made with an embedder keeps it, so weekly runs
keep their category ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from levers_cli.embed.base import Embedder, EmbedSettings, l2_normalize
from levers_cli.embed.minilm import MiniLMEmbedder
from levers_cli.embed.named import (
    NamedModelEmbedder,
    cached_snapshot,
    hub_cache_folder,
    hub_candidates,
    is_model_folder,
    name_of_key,
)
from levers_cli.embed.static import StaticEmbedder
from levers_cli.embed.tfidf import TfidfEmbedder
from levers_cli.errors import UsageError

AUTO = "auto"

#: registered name → embedder class, built with :meth:`Embedder.from_settings`.
EMBEDDERS: dict[str, type[Embedder]] = {
    MiniLMEmbedder.name: MiniLMEmbedder,
    StaticEmbedder.name: StaticEmbedder,
    TfidfEmbedder.name: TfidfEmbedder,
}


def get_embedder(name: str, settings: EmbedSettings | None = None) -> Embedder:
    """A new embedder for ``name``: a registered embedder, else a sentence-transformers
    model folder, else a Hugging Face model id in the user's Hugging Face cache. Nothing is
    loaded yet (a named model loads on its first use).

    Args:
        name: what ``--embedder`` / ``[embed] embedder`` says (``auto`` is resolved by
            :func:`choose_embedder` first).
        settings: the ``[embed]`` settings (default: the defaults').

    Raises:
        UsageError: ``name`` is none of these; the message says what was tried (exit 2).
    """
    settings = settings or EmbedSettings()
    if name in EMBEDDERS:
        return EMBEDDERS[name].from_settings(settings)
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not is_model_folder(folder):
            raise UsageError(
                f"--embedder {name}: the folder holds no sentence-transformers model "
                "(no modules.json or config.json)"
            )
        return NamedModelEmbedder(str(folder.resolve()), folder.resolve(), settings)
    tried = hub_candidates(name)
    for repo_id in tried:
        snapshot = cached_snapshot(repo_id)
        if snapshot is not None:
            return NamedModelEmbedder(repo_id, snapshot, settings)
    raise UsageError(
        f"unknown embedder {name!r} (--embedder or [embed] embedder): not a registered "
        f"embedder ({AUTO}, {', '.join(EMBEDDERS)}), not a model folder, and not in the "
        f"Hugging Face cache {hub_cache_folder()} as {' or '.join(tried)}; levers does not "
        f"download models: fetch it once with `hf download {tried[0]}`, or name a folder "
        "that holds one"
    )


def embedder_name(key: str) -> str:
    """The ``--embedder`` name that makes vectors of cache ``key`` (``minilm`` for
    ``minilm:all-MiniLM-L6-v2``; the model id or folder for a named model's key)."""
    return name_of_key(key) or key.split(":", 1)[0]


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
    "EmbedSettings",
    "Embedder",
    "EmbedderChoice",
    "choose_embedder",
    "embedder_name",
    "get_embedder",
    "l2_normalize",
    "name_of_key",
]
