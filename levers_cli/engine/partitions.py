"""Partitions of the calls that no lever needs to see across.

A partition is the calls of one cache scope: one provider and one system prompt (a prompt
cache is read only by a request of the same provider with the same prefix, and the caching
lever plans prefix caching per provider, model and system prompt), with every conversation
kept whole in the partition of its first call (the context lever replays a conversation
turn by turn). The model is left out of the key on purpose: the routing lever moves calls
between the models of a provider, and a routed call reads the cache of the model it now
uses. Logs carry no feature (the application part that sent a call) in a column of their
own yet, so the key has no feature part.

A lever may still link two calls of different partitions (the caching lever's prefix source
is the earlier call a prompt shares most with, whatever its system prompt):
:func:`group_partitions` merges the partitions such links join before packing them into
tasks, so a task always holds every call a lever relates to one of its calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from levers_cli.store import Workspace

_PARTITION_SQL = """
WITH priced AS (
    SELECT call_id, ts, conversation_id,
           coalesce(provider, '') AS provider,
           md5(coalesce(system_prompt, '')) AS system_hash
    FROM calls WHERE cost_usd IS NOT NULL),
first_turn AS (
    SELECT conversation_id, arg_min(provider, (ts, call_id)) AS provider,
           arg_min(system_hash, (ts, call_id)) AS system_hash
    FROM priced WHERE conversation_id IS NOT NULL GROUP BY conversation_id)
SELECT coalesce(f.provider, p.provider) AS provider,
       coalesce(f.system_hash, p.system_hash) AS system_hash,
       list(p.call_id ORDER BY p.call_id) AS call_ids
FROM priced p LEFT JOIN first_turn f USING (conversation_id)
GROUP BY 1, 2 ORDER BY 1, 2
"""


@dataclass(frozen=True, slots=True)
class Partition:
    """The priced calls of one cache scope.

    Attributes:
        key: ``(provider, md5 of the system prompt)`` ("" for none) of the scope (of the
            conversation's first call for a conversation's calls).
        call_ids: its calls' ids, sorted.
    """

    key: tuple[str, str]
    call_ids: tuple[str, ...]


def call_partitions(ws: Workspace) -> list[Partition]:
    """Every priced call in exactly one :class:`Partition` (see the module docstring), in
    key order; a workspace without priced calls has none."""
    rows = ws.con.execute(_PARTITION_SQL).fetchall()
    return [Partition((str(p), str(s)), tuple(ids)) for p, s, ids in rows]


def group_partitions(
    partitions: list[Partition], links: Iterable[tuple[str, str]], bins: int
) -> list[list[str]]:
    """Pack partitions into at most ``bins`` groups of call ids, never splitting two
    partitions a link joins.

    Args:
        partitions: from :func:`call_partitions`.
        links: ``(call_id, other_call_id)`` pairs a lever relates (a prefix source); ids of
            no partition (unpriced calls) are ignored.
        bins: the most groups wanted (≥ 1): the engine's workers, or a multiple of them.

    Returns:
        Groups of call ids (each the union of whole linked components), largest first,
        balanced by call count (each component goes to the group with the fewest calls so
        far); no empty group.
    """
    where = {cid: i for i, part in enumerate(partitions) for cid in part.call_ids}
    parent = list(range(len(partitions)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in links:
        if a in where and b in where:
            ra, rb = root(where[a]), root(where[b])
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    components: dict[int, list[str]] = {}
    for i, part in enumerate(partitions):
        components.setdefault(root(i), []).extend(part.call_ids)
    groups: list[list[str]] = [[] for _ in range(max(1, min(bins, len(components))))]
    for calls in sorted(components.values(), key=len, reverse=True):
        min(groups, key=len).extend(calls)
    return [g for g in groups if g]
