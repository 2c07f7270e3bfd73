"""The stratified sample of ``export shadow``: per stratum (feature › category) a seeded
simple random sample, its size from a confidence and margin
(:func:`levers_cli.quality.stats.sample_size`), a fixed number per stratum, or a total split
across strata in proportion to their size (largest remainders, at least one per stratum
while the total allows)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from levers_cli.quality.stats import sample_size


def allocate(
    sizes: Mapping[Any, int],
    *,
    total: int | None = None,
    per_stratum: int | None = None,
    confidence: float = 0.9,
    margin: float = 0.1,
) -> dict[Any, int]:
    """How many to draw per stratum (never more than it holds).

    Args:
        sizes: stratum → calls the lever changes there.
        total: ``--n``: split in proportion to ``sizes`` (Hamilton's largest-remainder
            method), each stratum first given one while ``total`` allows.
        per_stratum: ``--per-category``: this many per stratum.
        confidence, margin: otherwise Cochran's size per stratum (finite-population
            corrected).
    """
    if per_stratum is not None:
        return {k: min(n, per_stratum) for k, n in sizes.items()}
    if total is None:
        return {k: sample_size(confidence, margin, n) for k, n in sizes.items()}
    keys = sorted((k for k in sizes if sizes[k] > 0), key=lambda k: (-sizes[k], str(k)))
    out = dict.fromkeys(sizes, 0)
    left = min(total, sum(sizes[k] for k in keys))
    for k in keys[:left]:
        out[k] = 1
    left -= sum(out.values())
    while left > 0:
        room = {k: sizes[k] - out[k] for k in keys if sizes[k] > out[k]}
        pool = sum(room.values())
        shares = {k: left * room[k] / pool for k in room}
        floors = {k: math.floor(v) for k, v in shares.items()}
        extra = left - sum(floors.values())
        order = sorted(room, key=lambda k: (-(shares[k] - floors[k]), str(k)))
        for k in room:
            out[k] += floors[k]
        for k in order[:extra]:
            out[k] += 1
        left = min(total, sum(sizes.values())) - sum(out.values())
    return out


def draw(strata: Mapping[Any, Sequence[str]], counts: Mapping[Any, int], seed: int) -> list[str]:
    """A seeded sample of ``counts[k]`` ids from each stratum (ids sorted first, so the same
    workspace and seed give the same sample); returned sorted."""
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for key in sorted(strata, key=str):
        ids = sorted(strata[key])
        k = min(counts.get(key, 0), len(ids))
        if k:
            out.extend(ids[i] for i in rng.choice(len(ids), size=k, replace=False))
    return sorted(out)
