"""Pair counts, the 2PCF and its redshift-space multipoles, against brute force and theory."""

from __future__ import annotations

import numpy as np
import pytest

from lssviewer import Cosmology, HaloCatalog, stats
from lssviewer.errors import CatalogError, ParameterError
from lssviewer.stats.pairs import analytic_rr, iter_pairs, pair_counts


def _uniform(n: int, box: float, seed: int, z: float = 0.5) -> HaloCatalog:
    rng = np.random.default_rng(seed)
    return HaloCatalog(rng.uniform(0, box, (n, 3)), rng.normal(0, 300, (n, 3)), np.full(n, 1e13), box, z,
                       Cosmology(0.3, 0.8), name=f"uniform-{seed}")


def _brute_separations(pos: np.ndarray, box: float) -> np.ndarray:
    """All ordered i != j minimum-image separation vectors x_j - x_i, written independently."""
    d = pos[None, :, :] - pos[:, None, :]
    d = np.where(d > box / 2, d - box, d)
    d = np.where(d < -box / 2, d + box, d)
    off = ~np.eye(len(pos), dtype=bool)
    return d[off]


def _brute_counts(pos: np.ndarray, box: float, edges: np.ndarray) -> np.ndarray:
    r = np.linalg.norm(_brute_separations(pos, box), axis=1)
    # right-closed bins (e_i, e_i+1], the same convention as cKDTree.count_neighbors
    return np.array([np.count_nonzero((r > lo) & (r <= hi)) for lo, hi in zip(edges[:-1], edges[1:], strict=True)])


@pytest.mark.parametrize("seed", [0, 1])
def test_pair_counts_equal_brute_force_with_periodic_wrap(seed):
    # 400 points in a 10 Mpc/h box with separations up to L/2: most pairs wrap around.
    rng = np.random.default_rng(seed)
    box = 10.0
    pos = rng.uniform(0, box, (400, 3))
    pos[:20, 0] = rng.uniform(0, 0.3, 20)  # crowd both faces so that wrapped pairs are many
    pos[20:40, 0] = rng.uniform(box - 0.3, box, 20)
    edges = np.array([0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0])
    fast = pair_counts(pos, box, edges)
    np.testing.assert_array_equal(fast, _brute_counts(pos, box, edges))
    # and the pair list (used for multipoles and pairwise velocities) agrees as well, chunked or not
    for chunk in (10**9, 500):
        n = np.zeros(len(edges) - 1)
        for _i, _j, _dx, r in iter_pairs(pos, box, edges[-1], chunk=chunk):
            n += np.histogram(r, bins=edges)[0]
        assert n.sum() * 2 == fast.sum()


def test_xi_of_uniform_points_is_zero_within_poisson_errors():
    # For uniform points in a periodic box the ordered pair counts have mean RR and Poisson
    # variance (pairs sharing a point are uncorrelated there), so xi / sigma ~ N(0, 1) per bin and
    # bins are nearly independent (they share the fixed total of pairs only). Three catalogs x 25
    # bins: chi^2 within 4.5 sigma of its law.
    cats = [_uniform(3000, 300.0, seed) for seed in (10, 11, 12)]
    res = stats.compute("xi", cats)
    assert res.values[""].shape == (3, 25)
    z = res.values[""] / res.errors[""]
    dof = z.size
    assert abs(np.sum(z**2) - dof) < 4.5 * np.sqrt(2 * dof)
    assert np.max(np.abs(z)) < 4.5
    # the set summary: mean of three catalogs, scatter across them
    np.testing.assert_allclose(res.mean(), res.values[""].mean(axis=0))
    np.testing.assert_allclose(res.scatter(), res.values[""].std(axis=0, ddof=1))


def test_analytic_rr_counts_ordered_pairs():
    # RR = N(N-1) V_shell / L^3: the expected ordered pair count of uniform points
    edges = np.array([0.0, 1.0, 2.0])
    rr = analytic_rr(100, 10.0, edges)
    assert rr[0] == pytest.approx(100 * 99 * 4 / 3 * np.pi / 1000)
    assert rr[1] == pytest.approx(100 * 99 * 4 / 3 * np.pi * 7 / 1000)


def test_xi_rejects_separations_beyond_half_the_box():
    cat = _uniform(100, 100.0, 0)
    with pytest.raises(ParameterError, match="half the box"):
        stats.compute("xi", cat, edges=[0, 10, 60])
    with pytest.raises(CatalogError, match="at least 2"):
        stats.compute("xi", cat.subset(np.array([0])), edges=[0, 10])


def test_rsd_multipoles_equal_brute_force():
    # Independent O(N^2) evaluation: redshift-space positions written out (s = x + v / (a H)),
    # all ordered pairs, mu = |s_los| / s, xi_l = (2l+1) sum L_l(mu) / RR - delta_l0.
    from numpy.polynomial.legendre import legval

    cat = _uniform(500, 40.0, seed=3, z=1.0)
    edges = np.linspace(0.0, 20.0, 9)
    for los, axis in (("z", 2), ("y", 1)):
        res = stats.compute("xi-rsd", cat, edges=edges, los=los)
        a_hubble = 100.0 * np.sqrt(0.3 * 2.0**3 + 0.7) / 2.0  # z = 1
        s = cat.positions.copy()
        s[:, axis] = np.mod(s[:, axis] + cat.velocities[:, axis] / a_hubble, 40.0)
        d = _brute_separations(s, 40.0)
        r = np.linalg.norm(d, axis=1)
        mu = np.abs(d[:, axis]) / r
        rr = analytic_rr(500, 40.0, edges)
        b = np.searchsorted(edges, r, side="left") - 1
        ok = (b >= 0) & (b < len(edges) - 1)
        for ell in (0, 2, 4):
            expect = (2 * ell + 1) * np.bincount(b[ok], legval(mu[ok], np.eye(5)[ell]), len(edges) - 1) / rr
            expect -= 1.0 if ell == 0 else 0.0
            np.testing.assert_allclose(res.values[str(ell)][0], expect, rtol=1e-10, atol=1e-12)


def test_rsd_multipoles_of_pairs_at_a_known_angle():
    # N_c random centres, each with a companion at the same real-space position offset by a = 3
    # Mpc/h across the line of sight (x) plus a line-of-sight velocity that moves it by b = 4
    # Mpc/h in redshift space: every companion pair has s = 5, mu = 0.8. In the bin (4.5, 5.5] the
    # expected xi_l = (2l+1) L_l(0.8) 2 N_c / RR (+ 0 from the random pairs, whose Poisson noise the
    # reported errors measure). Tolerance: 4 of those errors.
    rng = np.random.default_rng(5)
    n_c, box, z = 600, 100.0, 0.5
    cosmo = Cosmology(0.3, 0.8)
    a_hubble = cosmo.rsd_factor(z)
    centres = rng.uniform(0, box, (n_c, 3))
    comp = centres.copy()
    comp[:, 1] += 3.0  # across the line of sight
    vel = np.zeros((2 * n_c, 3))
    vel[n_c:, 0] = 4.0 * a_hubble  # line of sight x
    cat = HaloCatalog(np.vstack([centres, comp]), vel, np.full(2 * n_c, 1e13), box, z, cosmo, wrap=True)
    edges = np.array([0.0, 2.0, 4.5, 5.5, 8.0])
    res = stats.compute("xi-rsd", cat, edges=edges, los="x")
    rr = analytic_rr(2 * n_c, box, edges)[2]
    legendre = {0: 1.0, 2: 0.5 * (3 * 0.64 - 1), 4: (35 * 0.8**4 - 30 * 0.64 + 3) / 8}
    for ell in (0, 2, 4):
        expect = (2 * ell + 1) * legendre[ell] * 2 * n_c / rr
        got, err = res.values[str(ell)][0][2], res.errors[str(ell)][0][2]
        assert got == pytest.approx(expect, abs=4 * err), (ell, got, expect, err)
    # other bins hold random pairs only
    for ell in ("2", "4"):
        others = np.delete(res.values[ell][0] / res.errors[ell][0], 2)
        assert np.all(np.abs(others) < 4.5)
    # seen along z there is no velocity shift: the pairs sit at s = 3 across the line of sight,
    # mu = 0, so xi_2 = 5 L_2(0) 2 N_c / RR = -2.5 (2 N_c / RR) in the bin (2, 4.5]
    res_z = stats.compute("xi-rsd", cat, edges=edges, los="z")
    rr1 = analytic_rr(2 * n_c, box, edges)[1]
    assert res_z.values["2"][0][1] == pytest.approx(-2.5 * 2 * n_c / rr1, abs=4 * res_z.errors["2"][0][1])


def test_xi_rsd_needs_cosmology():
    cat = _uniform(50, 100.0, 0).replace(cosmology=None, name="bare")
    with pytest.raises(CatalogError, match="cosmology"):
        stats.compute("xi-rsd", cat, edges=[0, 10])
    with pytest.raises(ParameterError, match="line of sight"):
        stats.compute("xi-rsd", _uniform(50, 100.0, 0), edges=[0, 10], los="w")
