"""Velocity statistics: one-point distributions and the mean radial pairwise velocity v12(r).

Velocities are peculiar velocities in km/s, positions comoving Mpc/h in a periodic box.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lssviewer.catalog import HaloCatalog
from lssviewer.errors import CatalogError
from lssviewer.stats.pairs import check_separation_range, jackknife_std, pair_sums
from lssviewer.stats.xi import los_index


def velocity_pdf(velocities: np.ndarray, edges: np.ndarray, los: int | str = "z") -> dict[str, np.ndarray]:
    """PDFs of the speed ``|v|`` and of the line-of-sight component ``v_los`` in (km/s)^-1.

    Both use the same ``edges`` (km/s; symmetric about 0 by default, the speed PDF is then 0 for
    negative velocities). Normalised by the number of halos, so a PDF integrates to the fraction of
    halos inside the edges. Returns ``{"speed", "los", "speed_err", "los_err", "speed_outside",
    "los_outside"}``; errors are Poisson, ``sqrt(count) / (N dv)``.
    """
    v = np.asarray(velocities, dtype=np.float64)
    n = len(v)
    width = np.diff(edges)
    out: dict[str, np.ndarray] = {}
    for key, sample in (("speed", np.linalg.norm(v, axis=1)), ("los", v[:, los_index(los)])):
        counts, _ = np.histogram(sample, bins=edges)
        norm = max(n, 1) * width
        out[key] = counts / norm
        out[key + "_err"] = np.sqrt(counts) / norm
        out[key + "_outside"] = np.asarray(1.0 - counts.sum() / max(n, 1))
    return out


def _velocity_weights(vel: np.ndarray):
    def weights(i: np.ndarray, j: np.ndarray, dx: np.ndarray, r: np.ndarray) -> dict[str, np.ndarray]:
        u = np.einsum("ij,ij->i", vel[j] - vel[i], dx) / r if len(r) else np.zeros(0)
        return {"n": np.ones_like(r), "u": u, "u2": u * u}

    return weights


def pairwise_velocity(positions: np.ndarray, velocities: np.ndarray, box_size: float,
                      edges: np.ndarray, jackknife: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean radial pairwise velocity ``v12(r) = < (v_j - v_i) . (x_j - x_i) / |x_j - x_i| >``.

    Averaged over all pairs with separation in ``(edges[k], edges[k+1]]`` (Mpc/h, minimum image in
    the periodic box). Negative values mean the pairs approach each other (infall), the
    halotools ``mean_radial_velocity_vs_r`` convention. The value is symmetric in i, j, so each
    unordered pair is used once.

    Args:
        jackknife: 0 for the standard error of the pair mean; ``n`` > 1 for delete-one jackknife
            errors over ``n^3`` cubic subvolumes.

    Returns:
        ``(v12, sigma, n_pairs)`` in km/s, km/s and unordered pairs. The default ``sigma`` is
        ``std / sqrt(n_pairs)``: exact for uniformly placed halos with independent velocities (pairs
        sharing a halo are then uncorrelated), an underestimate for clustered halos. Bins without
        pairs give NaN.
    """
    from lssviewer.stats.xi import _check_jackknife

    edges = np.asarray(edges, dtype=np.float64)
    check_separation_range(edges, box_size)
    m = _check_jackknife(jackknife) if jackknife else 0
    vel = np.asarray(velocities, dtype=np.float64)
    totals, deleted = pair_sums(positions, box_size, edges, _velocity_weights(vel), jackknife=m)
    cnt, s1, s2 = totals["n"], totals["u"], totals["u2"]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s1 / cnt
        if m:
            sigma = jackknife_std(deleted["u"] / deleted["n"])
        else:
            var = (s2 / cnt - mean**2) * cnt / (cnt - 1.0)
            sigma = np.sqrt(np.maximum(var, 0.0) / cnt)
    mean[cnt == 0] = np.nan
    sigma[cnt < 2] = np.nan
    return mean, sigma, cnt


def compute_vpdf(catalogs: Sequence[HaloCatalog], edges: np.ndarray, los: int | str = "z") -> dict:
    """Speed and line-of-sight velocity PDFs of each catalog (components ``speed`` and ``los``)."""
    vals: dict[str, list] = {"speed": [], "los": []}
    errs: dict[str, list] = {"speed": [], "los": []}
    outside: dict[str, list] = {"speed": [], "los": []}
    for cat in catalogs:
        res = velocity_pdf(cat.velocities, edges, los)
        for key in vals:
            vals[key].append(res[key])
            errs[key].append(res[key + "_err"])
            outside[key].append(float(res[key + "_outside"]))
    return {"values": {k: np.array(v) for k, v in vals.items()},
            "errors": {k: np.array(v) for k, v in errs.items()},
            "meta": {"los": "xyz"[los_index(los)], "error": "poisson",
                     "fraction_outside": {k: v for k, v in outside.items()}}}


def compute_pairwise(catalogs: Sequence[HaloCatalog], edges: np.ndarray, jackknife: int = 0) -> dict:
    """Mean radial pairwise velocity v12(r) of each catalog."""
    vals, errs = [], []
    for cat in catalogs:
        if cat.n_halos < 2:
            raise CatalogError(f"catalog '{cat.name or '?'}' has {cat.n_halos} halo(s): "
                               "pairwise velocities need at least 2")
        v12, err, _ = pairwise_velocity(cat.positions, cat.velocities, cat.box_size, edges, jackknife)
        vals.append(v12)
        errs.append(err)
    return {"values": {"": np.array(vals)}, "errors": {"": np.array(errs)},
            "meta": {"convention": "v12 = <(v_j - v_i) . r_hat_ij>, negative = infall",
                     "error": (f"jackknife over {int(jackknife)}^3 subvolumes" if jackknife
                               else "standard error of the pair mean")}}
