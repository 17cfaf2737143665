"""Periodic friends-of-friends halo finder and halo properties.

Two particles are friends when their periodic (minimum-image) distance is below the linking length
``b * L / n`` (b = 0.2 of the mean interparticle separation by default); halos are the connected
components of the friendship graph with at least ``min_particles`` members.

:func:`fof_labels` is a compiled cell-list + union-find implementation (numba): particles are
bucketed into cells at least one linking length wide, and each particle is compared with the
particles of its own cell and of the 13 "forward" neighbour cells, so each pair is examined once.
:func:`fof_labels_scipy` is an independent reference implementation (scipy ``cKDTree.query_pairs``
with ``boxsize`` + ``connected_components``) used in the tests.

Halo properties (:func:`halo_properties`): periodic-aware centre of mass (offsets from the group's
first particle taken with the minimum-image convention, averaged, wrapped into ``[0, L)``), mean
velocity, and the number of particles (mass = N_p x m_p is applied by the caller).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from lssviewer.sim._sort import counting_sort


@nb.njit(cache=True)
def _find(parent, i):  # pragma: no cover - compiled
    while parent[i] != i:
        parent[i] = parent[parent[i]]  # path halving
        i = parent[i]
    return i


@nb.njit(cache=True)
def _fof_cells(pos, box, link, ncell):  # pragma: no cover - compiled
    n = pos.shape[0]
    inv = ncell / box
    cell = np.empty(n, np.int64)
    for i in range(n):
        cx = int(pos[i, 0] * inv) % ncell
        cy = int(pos[i, 1] * inv) % ncell
        cz = int(pos[i, 2] * inv) % ncell
        cell[i] = (cx * ncell + cy) * ncell + cz
    order, start = counting_sort(cell, ncell * ncell * ncell)
    # sorted copy of the positions for locality
    sp = np.empty((n, 3))
    for idx in range(n):
        sp[idx, 0] = pos[order[idx], 0]
        sp[idx, 1] = pos[order[idx], 1]
        sp[idx, 2] = pos[order[idx], 2]

    parent = np.arange(n)  # union-find over sorted indices
    link2 = link * link
    half = 0.5 * box
    for cx in range(ncell):
        for cy in range(ncell):
            for cz in range(ncell):
                c = (cx * ncell + cy) * ncell + cz
                a0 = start[c]
                a1 = start[c + 1]
                if a0 == a1:
                    continue
                for nbr in range(14):
                    if nbr == 0:
                        ox, oy, oz = 0, 0, 0
                    else:  # the 13 neighbours with (ox, oy, oz) > (0, 0, 0) lexicographically
                        k = nbr + 13  # 14..26 of the 27 offsets -1..1 in lexicographic order
                        ox = k // 9 - 1
                        oy = (k // 3) % 3 - 1
                        oz = k % 3 - 1
                    d = (((cx + ox) % ncell) * ncell + (cy + oy) % ncell) * ncell + (cz + oz) % ncell
                    b0 = start[d]
                    b1 = start[d + 1]
                    if b0 == b1:
                        continue
                    for ia in range(a0, a1):
                        xa = sp[ia, 0]
                        ya = sp[ia, 1]
                        za = sp[ia, 2]
                        jb0 = ia + 1 if nbr == 0 else b0
                        for ib in range(jb0, b1):
                            dx = abs(sp[ib, 0] - xa)
                            if dx > half:
                                dx = box - dx
                            if dx > link:
                                continue
                            dy = abs(sp[ib, 1] - ya)
                            if dy > half:
                                dy = box - dy
                            if dy > link:
                                continue
                            dz = abs(sp[ib, 2] - za)
                            if dz > half:
                                dz = box - dz
                            if dx * dx + dy * dy + dz * dz < link2:
                                ra = _find(parent, ia)
                                rb = _find(parent, ib)
                                if ra != rb:
                                    if ra < rb:
                                        parent[rb] = ra
                                    else:
                                        parent[ra] = rb
    # labels in original particle order: the smallest original index in each group
    root_min = np.full(n, n, np.int64)
    for idx in range(n):
        r = _find(parent, idx)
        o = order[idx]
        if o < root_min[r]:
            root_min[r] = o
    labels = np.empty(n, np.int64)
    for idx in range(n):
        labels[order[idx]] = root_min[_find(parent, idx)]
    return labels


def fof_labels(positions: np.ndarray, box_size: float, linking_length: float,
               max_cells_per_side: int = 512) -> np.ndarray:
    """Friends-of-friends group of every particle.

    Args:
        positions: (N, 3) comoving Mpc/h in [0, box_size).
        box_size: periodic box side in Mpc/h.
        linking_length: absolute linking length in Mpc/h (b times the mean separation).
        max_cells_per_side: cap on the cell-list resolution (memory: 8 bytes per cell).

    Returns:
        (N,) int64: for each particle, the smallest particle index of its group (a particle alone
        in its group is labelled with its own index). Independent of the particle order up to
        that relabelling.
    """
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    if not 0 < linking_length < box_size / 3:
        raise ValueError(f"linking length {linking_length} must be in (0, box/3)")
    ncell = max(3, min(int(box_size / linking_length), max_cells_per_side,
                       int(round(len(pos) ** (1 / 3))) * 2))
    return _fof_cells(pos, float(box_size), float(linking_length), ncell)


def fof_labels_scipy(positions: np.ndarray, box_size: float, linking_length: float) -> np.ndarray:
    """Reference implementation (scipy cKDTree + connected components); same labels as :func:`fof_labels`."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    pos = np.asarray(positions, dtype=np.float64)
    n = len(pos)
    tree = cKDTree(pos, boxsize=box_size)
    pairs = tree.query_pairs(linking_length, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    smallest = np.full(comp.max() + 1, n, np.int64)
    np.minimum.at(smallest, comp, np.arange(n))
    return smallest[comp]


@nb.njit(cache=True)
def _accumulate(pos, vel, slot, ref, box, nh):  # pragma: no cover - compiled
    sums = np.zeros((nh, 6))
    counts = np.zeros(nh, np.int64)
    half = 0.5 * box
    for i in range(pos.shape[0]):
        s = slot[i]
        if s < 0:
            continue
        counts[s] += 1
        for d in range(3):
            dx = pos[i, d] - ref[s, d]
            if dx >= half:
                dx -= box
            elif dx < -half:
                dx += box
            sums[s, d] += dx
            sums[s, 3 + d] += vel[i, d]
    return sums, counts


def select_groups(labels: np.ndarray, min_particles: int) -> tuple[np.ndarray, np.ndarray]:
    """Groups with at least ``min_particles`` members, sorted by decreasing size.

    Returns (group labels, sizes); ties in size are ordered by label (the smallest particle index),
    so the order is deterministic.
    """
    sizes = np.bincount(labels, minlength=len(labels))
    groups = np.flatnonzero(sizes >= min_particles)
    order = np.lexsort((groups, -sizes[groups]))
    return groups[order], sizes[groups[order]]


def halo_properties(positions: np.ndarray, velocities: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                    box_size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre of mass (periodic), mean velocity and particle count of the given groups.

    Args:
        positions: (N, 3) particle positions in Mpc/h, [0, L).
        velocities: (N, 3) particle velocities (any unit; the mean is returned in the same unit).
        labels: (N,) group labels from :func:`fof_labels`.
        groups: (H,) labels of the groups wanted (each the smallest particle index of its group).
        box_size: Mpc/h.

    Returns:
        centres (H, 3) in [0, L), mean velocities (H, 3), counts (H,).
    """
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    vel = np.ascontiguousarray(velocities, dtype=np.float64)
    slot = np.full(len(pos), -1, np.int64)
    lookup = np.full(len(pos), -1, np.int64)
    lookup[groups] = np.arange(len(groups))
    slot[:] = lookup[labels]
    ref = pos[groups]  # the group's smallest-index particle is the reference point
    sums, counts = _accumulate(pos, vel, slot, ref, float(box_size), len(groups))
    centres = ref + sums[:, :3] / counts[:, None]
    centres = np.mod(centres, box_size)
    centres[centres >= box_size] = 0.0
    return centres, sums[:, 3:] / counts[:, None], counts


__all__ = ["fof_labels", "fof_labels_scipy", "select_groups", "halo_properties"]
