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


# ---------------------------------------------------------------------------------------------
# Pair sums with delete-one jackknife over cubic subvolumes

#: Default number of jackknife subvolumes per box side (27 cubes).
DEFAULT_JACKKNIFE_SIDE = 3


def subvolume_index(positions: np.ndarray, box_size: float, n_side: int) -> np.ndarray:
    """Index in ``[0, n_side^3)`` of the cubic subvolume (side ``L / n_side``) holding each point."""
    cell = np.floor(np.asarray(positions, dtype=np.float64) * (n_side / box_size)).astype(np.int64)
    cell = np.clip(cell, 0, n_side - 1)
    return (cell[:, 0] * n_side + cell[:, 1]) * n_side + cell[:, 2]


def cross_pair_weight(n_sub: int) -> float:
    """Weight kept by the pairs with one halo in the deleted subvolume (Mohammad & Percival 2022).

    Plain delete-one jackknife drops them entirely and overestimates pair-count variances; MP22
    remove only a fraction ``n / (2 + sqrt(2) (n - 1))`` of these cross pairs (n subvolumes), i.e.
    keep ``1 - n / (2 + sqrt(2) (n - 1))`` (0.30 for 27 subvolumes).
    """
    return 1.0 - n_sub / (2.0 + np.sqrt(2.0) * (n_sub - 1.0))


def pair_sums(positions: np.ndarray, box_size: float, edges: np.ndarray, weights, jackknife: int = 0,
              chunk: int = PAIR_CHUNK) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """Sums of per-pair weights over unordered pairs in separation bins, with jackknife copies.

    Args:
        positions: (N, 3) in Mpc/h.
        box_size: L in Mpc/h.
        edges: right-closed separation bins in Mpc/h (``edges[-1] <= L/2``).
        weights: callable ``(i, j, dx, r) -> {name: (M,) weights}`` for the pairs of a block
            (already restricted to the bins).
        jackknife: ``n_side`` > 1 to also return the jackknife copies over the ``n_side^3`` cubic
            subvolumes; 0 for none.

    Returns:
        ``(totals, deleted)``: name -> (n_bins,) sums over all pairs, and name -> (n_side^3, n_bins)
        jackknife sums without subvolume c: pairs with both halos outside c count fully, pairs with
        both inside not at all, and pairs with one halo inside with weight
        :func:`cross_pair_weight` (``None`` without jackknife).
    """
    edges = np.asarray(edges, dtype=np.float64)
    check_separation_range(edges, box_size)
    nb = len(edges) - 1
    n_sub = jackknife**3 if jackknife else 0
    cube = subvolume_index(positions, box_size, jackknife) if jackknife else None
    totals: dict[str, np.ndarray] = {}
    either: dict[str, np.ndarray] = {}  # sum over pairs with the first or the second halo in c
    both: dict[str, np.ndarray] = {}  # sum over pairs with both halos in c
    for i, j, dx, r in iter_pairs(positions, box_size, edges[-1], chunk=chunk):
        b = bin_index(r, edges)
        ok = (b >= 0) & (b < nb)
        i, j, dx, r, b = i[ok], j[ok], dx[ok], r[ok], b[ok]
        for name, w in weights(i, j, dx, r).items():
            w = np.broadcast_to(np.asarray(w, dtype=np.float64), b.shape)
            totals[name] = totals.get(name, 0.0) + np.bincount(b, weights=w, minlength=nb)
            if jackknife:
                ci, cj = cube[i], cube[j]
                size = n_sub * nb
                either[name] = either.get(name, 0.0) + (np.bincount(ci * nb + b, weights=w, minlength=size)
                                                        + np.bincount(cj * nb + b, weights=w, minlength=size))
                same = ci == cj
                both[name] = both.get(name, 0.0) + np.bincount(ci[same] * nb + b[same], weights=w[same],
                                                               minlength=size)
    if not totals:  # no pairs at all: learn the names from an empty block
        empty = np.zeros(0, dtype=np.int64)
        for name in weights(empty, empty, np.zeros((0, 3)), np.zeros(0)):
            totals[name] = np.zeros(nb)
    if not jackknife:
        return totals, None
    kept = cross_pair_weight(n_sub)
    deleted = {}
    for name, total in totals.items():
        a_plus_b = np.reshape(either.get(name, np.zeros(n_sub * nb)), (n_sub, nb))
        auto = np.reshape(both.get(name, np.zeros(n_sub * nb)), (n_sub, nb))
        cross = a_plus_b - 2.0 * auto
        deleted[name] = total[None, :] - auto - (1.0 - kept) * cross
    return totals, deleted


def jackknife_rr(n_points: int, n_in_cube: np.ndarray, box_size: float, edges: np.ndarray,
                 n_side: int) -> np.ndarray:
    """Analytic random pairs of each jackknife copy, weighted like :func:`pair_sums`'s ``deleted``.

    For uniform points, the expected ordered pair counts of copy c with cross-pair weight ``w``:
    ``RR_c = N_c V_shell [V - 2 V_C + V_C phi + 2 w V_C (1 - phi)] / [(V - V_C)^2 + 2 w V_C (V - V_C)]``,
    with ``N_c = (N - n_c)(N - n_c - 1) + 2 w n_c (N - n_c)`` the weighted number of data pairs,
    ``V_C = (L / n_side)^3`` and ``phi(r)`` the mean overlap fraction of a cube with itself shifted by
    a random vector of length r (the fraction of pairs starting in a cube that end in it),
    averaged over each bin. Returns (n_side^3, n_bins).
    """
    n_sub = n_side**3
    kept = cross_pair_weight(n_sub)
    side = box_size / n_side
    v_c, v = side**3, box_size**3
    phi = _cube_overlap(edges, side)
    shell = 4.0 * np.pi / 3.0 * np.diff(np.asarray(edges, dtype=np.float64) ** 3)
    n_c = np.asarray(n_in_cube, dtype=np.float64)
    data_pairs = (n_points - n_c) * (n_points - n_c - 1.0) + 2.0 * kept * n_c * (n_points - n_c)
    volume_pairs = (v - v_c) ** 2 + 2.0 * kept * v_c * (v - v_c)
    random = shell * (v - 2.0 * v_c + v_c * phi + 2.0 * kept * v_c * (1.0 - phi))
    return data_pairs[:, None] * random[None, :] / volume_pairs


def _cube_overlap(edges: np.ndarray, side: float, n_dir: int = 2000, n_rad: int = 8) -> np.ndarray:
    """Shell average over each bin of phi(r) = < prod_a max(0, 1 - r |n_a| / side) > over directions
    n (a Fibonacci sphere of ``n_dir`` points) and radii (``n_rad``-point Gauss-Legendre, r^2 weight)."""
    k = np.arange(n_dir) + 0.5
    cos_t = 1.0 - 2.0 * k / n_dir
    sin_t = np.sqrt(1.0 - cos_t**2)
    phi_ang = np.pi * (1.0 + 5**0.5) * k
    dirs = np.abs(np.stack([sin_t * np.cos(phi_ang), sin_t * np.sin(phi_ang), cos_t], axis=1))
    x, w = np.polynomial.legendre.leggauss(n_rad)
    out = np.empty(len(edges) - 1)
    for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        r = 0.5 * (hi - lo) * x + 0.5 * (hi + lo)
        wr = w * r**2
        overlap = np.prod(np.clip(1.0 - r[:, None, None] * dirs[None, :, :] / side, 0.0, None), axis=2)
        out[b] = np.sum(wr * overlap.mean(axis=1)) / np.sum(wr)
    return out


def jackknife_std(samples: np.ndarray) -> np.ndarray:
    """Delete-one jackknife standard deviation over axis 0: sqrt((M - 1) / M sum (x_c - mean)^2)."""
    m = samples.shape[0]
    with np.errstate(invalid="ignore"):
        return np.sqrt((m - 1.0) / m * np.nansum((samples - np.nanmean(samples, axis=0)) ** 2, axis=0))
