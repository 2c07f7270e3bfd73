"""Consensus of several clusterings (evidence accumulation), so that categories do not hang on
one random seed.

UMAP's layout comes from stochastic gradient descent: two seeds give two layouts, and HDBSCAN's
excess-of-mass selection can then split or join an intent differently (measured in
``bench/results/categories.md``: ARI between single runs of different seeds 0.87–0.89).
Evidence accumulation clustering (Fred & Jain 2005, "Combining multiple clusterings using
evidence accumulation", IEEE TPAMI 27(6):835–850) runs the clustering several times and counts,
for each pair of points, the share of runs that put them in one cluster (the co-association);
the consensus is an average-linkage hierarchy on ``1 - co-association``, cut where a pair is
together in a majority of runs (Fred & Jain §4; average linkage: Müllner 2011,
arXiv:1109.2378). Noise (``-1``) is never together with anything.

The co-association is never built point by point (n² memory): points with the same labels in
every run (*atoms*) are interchangeable, so the hierarchy starts from the atoms, weighted by
their sizes (UPGMA with the Lance–Williams update); and atoms that no run puts together sit in
different connected components, which average linkage cannot join below distance 1, so each
component is agglomerated on its own.
"""

from __future__ import annotations

import numpy as np

from levers_cli.schema import UNCATEGORIZED


def derived_seeds(seed: int, runs: int) -> list[int]:
    """``runs`` independent seeds drawn from ``seed`` (NumPy ``SeedSequence``), so the runs of
    seed 42 and seed 43 share none."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(runs)]


def _atoms(runs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct label vectors: ``(atom rows (A, m), atom of each point (n,), sizes (A,))``."""
    rows, inverse, sizes = np.unique(runs.T, axis=0, return_inverse=True, return_counts=True)
    return rows, inverse.reshape(-1), sizes


def _components(rows: np.ndarray) -> np.ndarray:
    """Connected components of atoms linked when some run puts them in one cluster."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    n_atoms, n_runs = rows.shape
    atom_ids, cluster_ids = [], []
    offset = 0
    for run in range(n_runs):
        labels = rows[:, run]
        keep = np.flatnonzero(labels != UNCATEGORIZED)
        _, local = np.unique(labels[keep], return_inverse=True)
        atom_ids.append(keep)
        cluster_ids.append(n_atoms + offset + local.reshape(-1))
        offset += int(local.max()) + 1 if len(local) else 0
    left, right = np.concatenate(atom_ids), np.concatenate(cluster_ids)
    size = n_atoms + offset
    graph = sparse.coo_matrix((np.ones(len(left)), (left, right)), shape=(size, size))
    _, component = connected_components(graph, directed=False)
    return component[:n_atoms]


def _upgma(distance: np.ndarray, sizes: np.ndarray, cut: float) -> np.ndarray:
    """Size-weighted average linkage, merging while the closest pair is nearer than ``cut``.

    Args:
        distance: ``(c, c)`` symmetric distances between atoms.
        sizes: ``(c,)`` points per atom.
        cut: merges stop at the first pair at least this far apart.

    Returns:
        ``(c,)`` int64 group of each atom (the index of the atom it was merged into).
    """
    d = distance.astype(np.float64).copy()
    np.fill_diagonal(d, np.inf)
    weight = sizes.astype(np.float64).copy()
    group = np.arange(len(d))
    while len(d) > 1:
        flat = int(np.argmin(d))
        i, j = divmod(flat, len(d))
        if d[i, j] >= cut:
            break
        i, j = min(i, j), max(i, j)
        merged = (weight[i] * d[i] + weight[j] * d[j]) / (weight[i] + weight[j])
        d[i], d[:, i] = merged, merged
        d[i, i] = np.inf
        d[j], d[:, j] = np.inf, np.inf
        weight[i] += weight[j]
        group[group == j] = i
    return group.astype(np.int64)


def co_association_consensus(runs: np.ndarray, min_agreement: float = 0.5) -> np.ndarray:
    """Consensus labels of several clusterings of the same points.

    Args:
        runs: ``(m, n)`` int64 labels of ``m`` runs, ``-1`` = noise in that run.
        min_agreement: groups are merged while their average co-association (share of runs
            that put a pair of points together) is above this; 0.5 = a strict majority
            (Fred & Jain 2005).

    Returns:
        ``(n,)`` int64 consensus labels numbered from 0 in order of first appearance;
        points that are noise in every run, or never in a majority group, are ``-1`` only in
        the first case (the second keep a group of their own).

    Raises:
        ValueError: ``runs`` is not two-dimensional.
    """
    if runs.ndim != 2:
        raise ValueError("runs must be an (m, n) array of labels")
    n = runs.shape[1]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rows, atom_of, sizes = _atoms(runs)
    component = _components(rows)
    atom_group = np.full(len(rows), UNCATEGORIZED, dtype=np.int64)
    for comp in np.unique(component):
        members = np.flatnonzero(component == comp)
        member_rows = rows[members]
        if (member_rows == UNCATEGORIZED).all():
            continue
        together = (member_rows[:, None, :] == member_rows[None, :, :]) & (
            member_rows[:, None, :] != UNCATEGORIZED
        )
        distance = 1.0 - together.mean(axis=2)
        atom_group[members] = members[_upgma(distance, sizes[members], 1.0 - min_agreement)]
    labels = atom_group[atom_of]
    order: dict[int, int] = {}
    for label in labels[labels != UNCATEGORIZED]:
        order.setdefault(int(label), len(order))
    return np.array([order.get(int(c), UNCATEGORIZED) for c in labels], dtype=np.int64)
