"""levers' router as the classifier of LiteLLM's Auto Routing.

LiteLLM's Auto Routing (``model: auto_router/complexity_router``) picks a tier per request
and sends it to that tier's model. With ``classifier_type: custom`` the tier comes from a
classifier plugin: ``complexity_router_config.classifier_plugin`` is a dotted path that the
proxy resolves at startup, first as a ``.py`` file in the folder of its config.yaml
(``litellm/proxy/types_utils/utils.py`` ``get_instance_fn``), to an object with an async
``classify(context) -> str | None`` (``litellm/types/router.py`` ``ClassifierPlugin``; the
context's ``structured_messages`` are the request's messages in Chat Completions form). It
returns the tier's name, or ``None`` to let ``classifier_fallback`` decide (LiteLLM 1.110,
docs.litellm.ai/docs/routing_plugins and docs.litellm.ai/docs/autorouter_sdk/classifiers).

:class:`LeversClassifier` is that object: it loads ``levers-router.json`` into
:class:`levers_cli.router.Router` with the embedder the routes were built with (local; no
embedding API is called) and names the route of the request's last user message, exactly as
``levers route`` does. ``levers export router-config`` writes the tiers to match (one per
route, the default route and each keyword route) and a three-line ``levers_classifier.py``
beside the config that builds one from the exported file.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from levers_cli.router import Router

if TYPE_CHECKING:
    from levers_cli.embed.base import Embedder


class LeversClassifier:
    """A LiteLLM ``ClassifierPlugin`` backed by a native levers router.

    Args:
        config_path: the ``levers-router.json`` written by ``levers export router-config``.
        embedder: the embedder to use; by default the one the config names.

    Attributes:
        router: the loaded :class:`~levers_cli.router.Router`.
        tiers: every name :meth:`classify` can return (route names, the default route's
            name, keyword routes).

    Raises:
        LeversError: the file is missing, not JSON or lacks a field, or the embedder's
            dimension differs from the config's (at construction: the proxy refuses to start
            rather than routing every request to the fallback).
    """

    def __init__(self, config_path: str | Path, embedder: Embedder | None = None) -> None:
        self.router = Router.load(config_path, embedder)
        self.tiers = frozenset(
            [r["name"] for r in self.router.routes]
            + [self.router.default["name"]]
            + [rule["route"] for rule in self.router.overrides.values()]
        )
        # one route at a time: the embedder is not promised to be thread-safe, and a route
        # takes milliseconds
        self._lock = threading.Lock()
        # load the embedding model now, not on the first request (whose classification would
        # otherwise run into classifier_plugin_timeout_ms)
        self._route("warm up")

    def __deepcopy__(self, memo: dict[int, Any]) -> LeversClassifier:
        # LiteLLM's Router deep-copies its model_list, plugin objects included: share this
        # one (a loaded embedding model, an ONNX session and a lock do not copy)
        return self

    def __copy__(self) -> LeversClassifier:
        return self

    def _route(self, text: str) -> str:
        with self._lock:
            return self.router.route(text).route

    async def classify(self, context: Any) -> str | None:
        """The tier of one request: the route of its last user message.

        Args:
            context: LiteLLM's ``RoutingContext``; only ``structured_messages`` (a sequence
                of Chat Completions messages) is read.

        Returns:
            A name in :attr:`tiers`, or ``None`` when the request has no user text (LiteLLM
            then applies ``classifier_fallback``).
        """
        from levers_cli.ingest.formats.pairs import last_user_text

        messages = [m for m in getattr(context, "structured_messages", None) or () if m]
        text = last_user_text([m for m in messages if isinstance(m, dict)])
        if not text.strip():
            return None
        return await asyncio.to_thread(self._route, text)


__all__ = ["LeversClassifier"]
