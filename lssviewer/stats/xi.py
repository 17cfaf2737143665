"""Two-point correlation function in real space and its redshift-space multipoles.

Estimator (periodic box, analytic randoms): the natural estimator ``xi = DD / RR - 1`` with DD
the *ordered* pair count and ``RR = N (N - 1) V_shell / L^3`` (see :func:`~lssviewer.stats.pairs.analytic_rr`;
Corrfunc's DD also counts each pair twice, halotools uses N^2 instead of N(N-1)).

Multipoles: with ``mu = |cos|`` of the pair separation to the line of sight (distant observer,
a box axis), ``xi_l(s) = (2l + 1) int_0^1 xi(s, mu) L_l(mu) dmu``. With analytic randoms
``RR(s, mu) = RR(s) dmu``, so the integral is evaluated exactly from the pairs themselves,
``xi_l(s) = (2l + 1) sum_pairs L_l(mu_p) / RR(s) - delta_l0`` (the limit of infinitely fine mu
bins; no mu binning error).

Errors: Poisson on the unordered pair counts, ``sigma_xi = (1 + xi) / sqrt(DD / 2)`` and, for
multipoles, ``sigma_l = (2l + 1) 2 sqrt(sum_unordered L_l(mu)^2) / RR``. For uniform points in a
periodic box these are exact (pair counts sharing a point are uncorrelated there); for clustered
halos they underestimate the true (cosmic) variance, which the scatter across a set measures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.polynomial import legendre

from lssviewer.catalog import AXES, HaloCatalog
from lssviewer.errors import CatalogError, ParameterError
from lssviewer.stats.pairs import analytic_rr, bin_index, check_separation_range, iter_pairs, pair_counts


def legendre_poly(ell: int, mu: np.ndarray) -> np.ndarray:
    """Legendre polynomial L_ell(mu)."""
    coef = np.zeros(ell + 1)
    coef[ell] = 1.0
    return legendre.legval(mu, coef)


def los_index(los: int | str) -> int:
    """0, 1, 2 for a line of sight given as 'x'/'y'/'z' or an int."""
    if isinstance(los, str):
        if los.lower() not in AXES:
            raise ParameterError(f"line of sight must be x, y or z, got '{los}'")
        return AXES[los.lower()]
    if int(los) not in (0, 1, 2):
        raise ParameterError(f"line of sight must be x, y or z, got {los!r}")
    return int(los)


def correlation_function(positions: np.ndarray, box_size: float,
                         edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real-space xi(r) of points in a periodic box (natural estimator, analytic RR).

    Args:
        positions: (N, 3) in Mpc/h, inside ``[0, L)``.
        box_size: L in Mpc/h.
        edges: separation edges in Mpc/h, ``0 <= edges <= L/2``; bins are ``(e_i, e_i+1]``.

    Returns:
        ``(xi, sigma_xi, dd)``: xi per bin, its Poisson error, and the ordered pair counts.
    """
    n = len(positions)
    if n < 2:
        raise CatalogError(f"the correlation function needs at least 2 halos, got {n}")
    dd = pair_counts(positions, box_size, edges)
    rr = analytic_rr(n, box_size, edges)
    xi = dd / rr - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(dd > 0, (1.0 + xi) / np.sqrt(0.5 * dd), 2.0 / rr)  # empty bin: 1 unordered pair
    return xi, err, dd


def correlation_multipoles(positions: np.ndarray, box_size: float, edges: np.ndarray, los: int | str = "z",
                           ells: Sequence[int] = (0, 2, 4)) -> tuple[dict[int, np.ndarray],
                                                                      dict[int, np.ndarray], np.ndarray]:
    """Multipoles xi_l(s) of points (already in redshift space) about the line of sight ``los``.

    Args:
        positions: (N, 3) in Mpc/h (redshift-space positions for RSD multipoles).
        box_size: L in Mpc/h.
        edges: separation edges in Mpc/h within ``[0, L/2]``.
        los: line-of-sight axis ('x', 'y', 'z' or 0-2); ``mu = |s_los| / s``.
        ells: even multipole orders.

    Returns:
        ``(xi_l, sigma_l, dd)``: dicts ell -> (n_bins,) and the ordered pair counts per s bin.
    """
    edges = np.asarray(edges, dtype=np.float64)
    check_separation_range(edges, box_size)
    axis = los_index(los)
    n = len(positions)
    if n < 2:
        raise CatalogError(f"the correlation function needs at least 2 halos, got {n}")
    ells = [int(ell) for ell in ells]
    if any(ell < 0 or ell % 2 for ell in ells):
        raise ParameterError(f"multipoles must be even and >= 0, got {ells}")
    n_bins = len(edges) - 1
    sums = {ell: np.zeros(n_bins) for ell in ells}
    sq = {ell: np.zeros(n_bins) for ell in ells}
    dd = np.zeros(n_bins)
    for _i, _j, dx, r in iter_pairs(positions, box_size, edges[-1]):
        b = bin_index(r, edges)
        ok = (b >= 0) & (b < n_bins)
        b, mu = b[ok], np.abs(dx[ok, axis]) / r[ok]
        dd += 2.0 * np.bincount(b, minlength=n_bins)
        for ell in ells:
            pl = legendre_poly(ell, mu)
            sums[ell] += np.bincount(b, weights=pl, minlength=n_bins)
            sq[ell] += np.bincount(b, weights=pl * pl, minlength=n_bins)
    rr = analytic_rr(n, box_size, edges)
    xi = {ell: (2 * ell + 1) * 2.0 * sums[ell] / rr - (1.0 if ell == 0 else 0.0) for ell in ells}
    err = {}
    for ell in ells:
        floor = (2 * ell + 1) * 2.0 / rr  # an empty bin: the error of one pair
        err[ell] = np.maximum((2 * ell + 1) * 2.0 * np.sqrt(sq[ell]) / rr, np.where(dd > 0, 0.0, floor))
    return xi, err, dd


def _check_catalogs(catalogs: Sequence[HaloCatalog]) -> None:
    for cat in catalogs:
        if cat.n_halos < 2:
            raise CatalogError(f"catalog '{cat.name or '?'}' has {cat.n_halos} halo(s): "
                               "pair statistics need at least 2")


def compute_xi(catalogs: Sequence[HaloCatalog], edges: np.ndarray) -> dict:
    """xi(r) for each catalog: ``values[""]`` (n_catalogs, n_bins), Poisson errors."""
    _check_catalogs(catalogs)
    vals, errs, dds = [], [], []
    for cat in catalogs:
        xi, err, dd = correlation_function(cat.positions, cat.box_size, edges)
        vals.append(xi)
        errs.append(err)
        dds.append(dd)
    return {"values": {"": np.array(vals)}, "errors": {"": np.array(errs)},
            "meta": {"estimator": "natural, analytic RR = N(N-1) V_shell / L^3", "space": "real",
                     "error": "poisson", "min_pairs_per_bin": float(np.min(dds)) / 2}}


def compute_xi_rsd(catalogs: Sequence[HaloCatalog], edges: np.ndarray, los: int | str = "z",
                   ells: Sequence[int] = (0, 2, 4)) -> dict:
    """Redshift-space multipoles xi_l(s) along ``los`` for each catalog.

    Positions are moved to redshift space with each catalog's redshift and cosmology,
    ``s_los = x_los + v_los / (a H(z))`` (see :meth:`HaloCatalog.redshift_space_positions`).
    """
    _check_catalogs(catalogs)
    axis = los_index(los)
    out_v: dict[str, list[np.ndarray]] = {str(ell): [] for ell in ells}
    out_e: dict[str, list[np.ndarray]] = {str(ell): [] for ell in ells}
    for cat in catalogs:
        if cat.cosmology is None:
            raise CatalogError(f"catalog '{cat.name or '?'}' has no cosmology: redshift-space "
                               "multipoles need omega_m for a H(z)")
        s = cat.redshift_space_positions(axis)
        xi, err, _ = correlation_multipoles(s, cat.box_size, edges, axis, ells)
        for ell in ells:
            out_v[str(ell)].append(xi[ell])
            out_e[str(ell)].append(err[ell])
    return {"values": {k: np.array(v) for k, v in out_v.items()},
            "errors": {k: np.array(v) for k, v in out_e.items()},
            "meta": {"estimator": "natural, analytic RR; exact mu integral over pairs", "space": "redshift",
                     "los": "xyz"[axis], "ells": [int(e) for e in ells], "error": "poisson"}}
