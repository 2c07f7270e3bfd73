"""A query's exact-match identity: its normalized form and the hash every stage keys on
(exact-cache hits, the embedding cache, tier labels)."""

from __future__ import annotations

import hashlib


def normalize_query(text: str | None) -> str:
    """The exact-match form of a query: trimmed, whitespace collapsed, lowercased."""
    return " ".join((text or "").split()).lower()


def query_hash(text: str | None) -> str:
    """Hash of the normalized query (32 hex chars, BLAKE2b-128): the exact-match and
    embedding-cache key."""
    return hashlib.blake2b(normalize_query(text).encode(), digest_size=16).hexdigest()
