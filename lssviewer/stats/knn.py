"""k-nearest-neighbour cumulative distribution functions (Banerjee & Abel 2021).

``CDF_k(r)`` is the fraction of volume-filling random query points whose k-th nearest halo is
within ``r`` (periodic box, Mpc/h). It carries information from all the connected N-point
functions. The query points are seeded uniform randoms (>= 1e5 by default; CM23 used 5000,
which is noisy); the same points are used for every catalog of a set, so differences between
catalogs are not blurred by the random sampling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lssviewer.catalog import HaloCatalog
from lssviewer.errors import CatalogError, ParameterError
from lssviewer.stats.pairs import periodic_tree

#: Default neighbour orders.
DEFAULT_KS = (1, 2, 4, 8)
#: Default number of random query points.
DEFAULT_RANDOMS = 100_000
#: Mixed into the seed of the query points (see :func:`random_queries`).
RANDOM_SALT = 0x6B4E4E


def check_ks(ks: Sequence[int] | str) -> list[int]:
    """Neighbour orders as sorted unique positive ints (accepts '1,2,4')."""
    if isinstance(ks, str):
        try:
            ks = [int(v) for v in ks.split(",") if v.strip()]
        except ValueError:
            raise ParameterError(f"neighbour orders must be integers like 1,2,4,8, got '{ks}'") from None
    try:
        out = sorted({int(k) for k in ks})
    except (TypeError, ValueError):
        raise ParameterError(f"neighbour orders must be integers, got {ks!r}") from None
    if not out or out[0] < 1:
        raise ParameterError(f"neighbour orders must be >= 1, got {list(ks)}")
    return out


def random_queries(box_size: float, n_random: int = DEFAULT_RANDOMS, seed: int = 0) -> np.ndarray:
    """(n_random, 3) uniform query points in ``[0, L)^3``, reproducible from ``seed``.

    The generator is ``numpy.random.default_rng([seed, RANDOM_SALT])``: salted, so that the query
    points never coincide with a test catalog drawn as ``default_rng(seed).uniform(0, L, (n, 3))``.
    """
    if int(n_random) < 1:
        raise ParameterError(f"need at least one random query point, got {n_random}")
    rng = np.random.default_rng([int(seed), RANDOM_SALT])
    return rng.uniform(0.0, box_size, (int(n_random), 3))


def knn_cdf(positions: np.ndarray, box_size: float, ks: Sequence[int], radii: np.ndarray,
            queries: np.ndarray, workers: int = -1) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """kNN-CDFs of halos at ``radii`` (Mpc/h) from the query points ``queries``.

    Returns:
        ``(cdf, sigma)``: dicts k -> (n_radii,). ``sigma = sqrt(p (1 - p) / n_random)`` is the
        binomial error of the random sampling only; it ignores cosmic variance and the
        correlation between nearby query points.
    """
    ks = check_ks(ks)
    if len(positions) < ks[-1]:
        raise CatalogError(f"{len(positions)} halos: the {ks[-1]}-th neighbour CDF needs at least {ks[-1]}")
    tree = periodic_tree(positions, box_size)
    dist, _ = tree.query(queries, k=ks, workers=workers)
    dist = np.asarray(dist).reshape(len(queries), len(ks))
    n_q = len(queries)
    cdf, err = {}, {}
    for col, k in enumerate(ks):
        d = np.sort(dist[:, col])
        p = np.searchsorted(d, radii, side="right") / n_q
        cdf[k] = p
        err[k] = np.sqrt(p * (1.0 - p) / n_q)
    return cdf, err


def compute_knn(catalogs: Sequence[HaloCatalog], edges: np.ndarray, ks: Sequence[int] = DEFAULT_KS,
                n_random: int = DEFAULT_RANDOMS, seed: int = 0, workers: int = -1) -> dict:
    """kNN-CDFs at the bin centres for each catalog; components are the neighbour orders."""
    from lssviewer.stats.binning import bin_centers

    ks = check_ks(ks)
    radii = bin_centers(edges)
    queries = random_queries(catalogs[0].box_size, n_random, seed)
    vals: dict[str, list] = {str(k): [] for k in ks}
    errs: dict[str, list] = {str(k): [] for k in ks}
    for cat in catalogs:
        cdf, err = knn_cdf(cat.positions, cat.box_size, ks, radii, queries, workers)
        for k in ks:
            vals[str(k)].append(cdf[k])
            errs[str(k)].append(err[k])
    return {"values": {k: np.array(v) for k, v in vals.items()},
            "errors": {k: np.array(v) for k, v in errs.items()},
            "meta": {"ks": ks, "n_random": int(n_random), "seed": int(seed), "cdf_at": "bin centres",
                     "error": "binomial (random sampling only)"}}
