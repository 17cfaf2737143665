"""Pair finding and pair counting in a periodic box (scipy cKDTree with ``boxsize``).

Separations use the minimum-image convention, so they are only unique up to half the box:
every function here refuses ``r_max > L / 2``. Pair counts are for *ordered* pairs (each pair
twice, never a point with itself), binned right-closed ``(edges[i], edges[i+1]]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy.spatial import cKDTree

from lssviewer.errors import ParameterError

#: Unordered pairs held in memory at once by :func:`iter_pairs` (about 50 bytes each).
PAIR_CHUNK = 4_000_000


def check_separation_range(edges: np.ndarray, box_size: float) -> None:
    """Separations must stay within half the box (minimum image) and be >= 0."""
    if edges[0] < 0:
        raise ParameterError(f"separation bins start at {edges[0]:g} Mpc/h: must be >= 0")
    if edges[-1] > 0.5 * box_size:
        raise ParameterError(f"largest separation {edges[-1]:g} Mpc/h exceeds half the box "
                             f"({0.5 * box_size:g} Mpc/h) in a periodic box")


def periodic_tree(positions: np.ndarray, box_size: float) -> cKDTree:
    """A cKDTree over positions in ``[0, L)`` with periodic boundaries."""
    pos = np.asarray(positions, dtype=np.float64)
    # cKDTree needs [0, L); positions of a HaloCatalog already are, this guards rounding of others.
    pos = np.where(pos >= box_size, pos - box_size, pos)
    return cKDTree(pos, boxsize=box_size)


def pair_counts(positions: np.ndarray, box_size: float, edges: np.ndarray,
                tree: cKDTree | None = None) -> np.ndarray:
    """Ordered pair counts DD in separation bins ``(edges[i], edges[i+1]]`` (Mpc/h), periodic.

    Uses ``cKDTree.count_neighbors`` (dual-tree counting, no pair list in memory). Self pairs
    (distance 0) never fall in a bin, since bins are open on the left and ``edges[0] >= 0``.
    """
    edges = np.asarray(edges, dtype=np.float64)
    check_separation_range(edges, box_size)
    tree = tree or periodic_tree(positions, box_size)
    # non-cumulative counts: [d <= e0, e0 < d <= e1, ...]
    counts = tree.count_neighbors(tree, edges, cumulative=False)
    return np.asarray(counts[1:], dtype=np.float64)


def analytic_rr(n_points: int, box_size: float, edges: np.ndarray) -> np.ndarray:
    """Expected ordered pair counts of ``n_points`` uniform random points in a periodic box:
    ``RR = N (N - 1) V_shell / L^3`` with ``V_shell = 4 pi (r2^3 - r1^3) / 3`` (valid for r <= L/2)."""
    edges = np.asarray(edges, dtype=np.float64)
    shell = 4.0 * np.pi / 3.0 * np.diff(edges**3)
    return n_points * (n_points - 1.0) * shell / float(box_size) ** 3


def iter_pairs(positions: np.ndarray, box_size: float, r_max: float,
               chunk: int = PAIR_CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield unordered pairs ``i < j`` with ``0 < |x_j - x_i| <= r_max`` in blocks.

    Each block is ``(i, j, dx, r)``: indices, minimum-image separation vectors ``x_j - x_i``
    (M, 3) in Mpc/h and their lengths (M,). Small problems use one ``query_pairs`` call; large
    ones are split by the first index so that at most about ``chunk`` pairs are in memory.
    """
    pos = np.asarray(positions, dtype=np.float64)
    n = len(pos)
    if r_max > 0.5 * box_size:
        raise ParameterError(f"largest separation {r_max:g} Mpc/h exceeds half the box "
                             f"({0.5 * box_size:g} Mpc/h) in a periodic box")
    if n < 2 or r_max <= 0:
        return
    tree = periodic_tree(pos, box_size)
    expected = 0.5 * n * n * (4.0 * np.pi / 3.0) * r_max**3 / box_size**3  # uniform estimate
    if expected <= chunk:
        blocks = [tree.query_pairs(r_max, output_type="ndarray")]
        starts = [None]
    else:
        step = max(1, int(n * chunk / expected / 2))
        starts = list(range(0, n, step))
        blocks = None
    for b, start in enumerate(starts):
        if blocks is not None:
            ij = blocks[b]
            i, j = ij[:, 0], ij[:, 1]
        else:
            sub = periodic_tree(pos[start:start + step], box_size)
            sd = sub.sparse_distance_matrix(tree, r_max, output_type="ndarray")
            i = sd["i"].astype(np.int64) + start
            j = sd["j"].astype(np.int64)
            keep = j > i
            i, j = i[keep], j[keep]
        dx = pos[j] - pos[i]
        dx -= box_size * np.round(dx / box_size)
        r = np.sqrt(np.einsum("ij,ij->i", dx, dx))
        keep = (r > 0) & (r <= r_max)
        if not np.all(keep):
            i, j, dx, r = i[keep], j[keep], dx[keep], r[keep]
        yield i, j, dx, r


def bin_index(r: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Right-closed bin index of each separation: ``k`` for ``edges[k] < r <= edges[k+1]``,
    ``-1`` or ``len(edges) - 1`` outside."""
    return np.searchsorted(edges, r, side="left") - 1
