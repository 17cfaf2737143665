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
Option ``jackknife=n`` gives delete-one jackknife errors over ``n^3`` cubic subvolumes instead, which
do include it (for a single catalog).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.polynomial import legendre

from lssviewer.catalog import AXES, HaloCatalog
from lssviewer.errors import CatalogError, ParameterError
from lssviewer.stats.pairs import (
    analytic_rr,
    check_separation_range,
    jackknife_rr,
    jackknife_std,
    pair_counts,
    pair_sums,
    subvolume_index,
)


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


def _legendre_weights(ells: Sequence[int], axis: int):
    def weights(i: np.ndarray, j: np.ndarray, dx: np.ndarray, r: np.ndarray) -> dict[str, np.ndarray]:
        mu = np.abs(dx[:, axis]) / r if len(r) else np.zeros(0)
        out = {"n": np.ones_like(r)}
        for ell in ells:
            pl = legendre_poly(ell, mu)
            out[f"L{ell}"] = pl
            out[f"Q{ell}"] = pl * pl
        return out

    return weights


def _count_weights(i: np.ndarray, j: np.ndarray, dx: np.ndarray, r: np.ndarray) -> dict[str, np.ndarray]:
    return {"n": np.ones_like(r)}


def correlation_function(positions: np.ndarray, box_size: float, edges: np.ndarray,
                         jackknife: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real-space xi(r) of points in a periodic box (natural estimator, analytic RR).

    Args:
        positions: (N, 3) in Mpc/h, inside ``[0, L)``.
        box_size: L in Mpc/h.
        edges: separation edges in Mpc/h, ``0 <= edges <= L/2``; bins are ``(e_i, e_i+1]``.
        jackknife: 0 for Poisson errors; ``n`` > 1 for delete-one jackknife errors over ``n^3``
            cubic subvolumes (each jackknife copy uses the analytic RR of the box minus that cube,
            :func:`~lssviewer.stats.pairs.jackknife_rr`).

    Returns:
        ``(xi, sigma_xi, dd)``: xi per bin, its error, and the ordered pair counts.
    """
    n = len(positions)
    if n < 2:
        raise CatalogError(f"the correlation function needs at least 2 halos, got {n}")
    rr = analytic_rr(n, box_size, edges)
    if not jackknife:
        dd = pair_counts(positions, box_size, edges)
        xi = dd / rr - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.where(dd > 0, (1.0 + xi) / np.sqrt(0.5 * dd), 2.0 / rr)  # empty bin: 1 unordered pair
        return xi, err, dd
    m = _check_jackknife(jackknife)
    totals, deleted = pair_sums(positions, box_size, edges, _count_weights, jackknife=m)
    dd = 2.0 * totals["n"]
    xi = dd / rr - 1.0
    in_cube = np.bincount(subvolume_index(positions, box_size, m), minlength=m**3)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi_c = 2.0 * deleted["n"] / jackknife_rr(n, in_cube, box_size, edges, m) - 1.0
    return xi, jackknife_std(xi_c), dd


def _check_jackknife(jackknife: int) -> int:
    try:
        m = int(jackknife)
    except (TypeError, ValueError):
        raise ParameterError(f"jackknife must be an integer (subvolumes per side), got {jackknife!r}") from None
    if m < 2 or m > 10:
        raise ParameterError(f"jackknife needs 2 to 10 subvolumes per side (0: off), got {jackknife}")
    return m


def correlation_multipoles(positions: np.ndarray, box_size: float, edges: np.ndarray, los: int | str = "z",
                           ells: Sequence[int] = (0, 2, 4), jackknife: int = 0,
                           ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], np.ndarray]:
    """Multipoles xi_l(s) of points (already in redshift space) about the line of sight ``los``.

    Args:
        positions: (N, 3) in Mpc/h (redshift-space positions for RSD multipoles).
        box_size: L in Mpc/h.
        edges: separation edges in Mpc/h within ``[0, L/2]``.
        los: line-of-sight axis ('x', 'y', 'z' or 0-2); ``mu = |s_los| / s``.
        ells: even multipole orders.
        jackknife: 0 for Poisson errors, ``n`` > 1 for jackknife errors over ``n^3`` subvolumes
            (with the isotropic RR of the box minus the cube: the small anisotropy of a cube-shaped
            hole is the same in every copy, so it shifts all copies alike and not their spread).

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
    m = _check_jackknife(jackknife) if jackknife else 0
    totals, deleted = pair_sums(positions, box_size, edges, _legendre_weights(ells, axis), jackknife=m)
    dd = 2.0 * totals["n"]
    rr = analytic_rr(n, box_size, edges)
    xi = {ell: (2 * ell + 1) * 2.0 * totals[f"L{ell}"] / rr - (1.0 if ell == 0 else 0.0) for ell in ells}
    err = {}
    if m:
        in_cube = np.bincount(subvolume_index(positions, box_size, m), minlength=m**3)
        rr_c = jackknife_rr(n, in_cube, box_size, edges, m)
        for ell in ells:
            with np.errstate(divide="ignore", invalid="ignore"):
                xi_c = (2 * ell + 1) * 2.0 * deleted[f"L{ell}"] / rr_c - (1.0 if ell == 0 else 0.0)
            err[ell] = jackknife_std(xi_c)
        return xi, err, dd
    for ell in ells:
        floor = (2 * ell + 1) * 2.0 / rr  # an empty bin: the error of one pair
        err[ell] = np.maximum((2 * ell + 1) * 2.0 * np.sqrt(totals[f"Q{ell}"]) / rr, np.where(dd > 0, 0.0, floor))
    return xi, err, dd


def _check_catalogs(catalogs: Sequence[HaloCatalog]) -> None:
    for cat in catalogs:
        if cat.n_halos < 2:
            raise CatalogError(f"catalog '{cat.name or '?'}' has {cat.n_halos} halo(s): "
                               "pair statistics need at least 2")


def compute_xi(catalogs: Sequence[HaloCatalog], edges: np.ndarray, jackknife: int = 0) -> dict:
    """xi(r) for each catalog: ``values[""]`` (n_catalogs, n_bins); Poisson or jackknife errors."""
    _check_catalogs(catalogs)
    vals, errs, dds = [], [], []
    for cat in catalogs:
        xi, err, dd = correlation_function(cat.positions, cat.box_size, edges, jackknife)
        vals.append(xi)
        errs.append(err)
        dds.append(dd)
    return {"values": {"": np.array(vals)}, "errors": {"": np.array(errs)},
            "meta": {"estimator": "natural, analytic RR = N(N-1) V_shell / L^3", "space": "real",
                     "error": _error_name(jackknife), "min_pairs_per_bin": float(np.min(dds)) / 2}}


def _error_name(jackknife: int) -> str:
    return f"jackknife over {int(jackknife)}^3 subvolumes" if jackknife else "poisson"


def compute_xi_rsd(catalogs: Sequence[HaloCatalog], edges: np.ndarray, los: int | str = "z",
                   ells: Sequence[int] = (0, 2, 4), jackknife: int = 0) -> dict:
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
        xi, err, _ = correlation_multipoles(s, cat.box_size, edges, axis, ells, jackknife)
        for ell in ells:
            out_v[str(ell)].append(xi[ell])
            out_e[str(ell)].append(err[ell])
    return {"values": {k: np.array(v) for k, v in out_v.items()},
            "errors": {k: np.array(v) for k, v in out_e.items()},
            "meta": {"estimator": "natural, analytic RR; exact mu integral over pairs", "space": "redshift",
                     "los": "xyz"[axis], "ells": [int(e) for e in ells], "error": _error_name(jackknife)}}
