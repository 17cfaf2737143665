"""Velocity PDFs and the mean radial pairwise velocity, against analytic laws and brute force."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from lssviewer import Cosmology, HaloCatalog, stats


def _catalog(pos: np.ndarray, vel: np.ndarray, box: float) -> HaloCatalog:
    return HaloCatalog(pos, vel, np.full(len(pos), 1e13), box, 0.5, Cosmology(0.3, 0.8))


def test_velocity_pdfs_follow_gaussian_and_maxwell_laws():
    # Isotropic Gaussian velocities, sigma = 300 km/s per component: v_los is Gaussian and |v|
    # follows the Maxwell law. Expected bin probabilities from the exact CDFs; chi^2 with the
    # reported Poisson errors over bins expecting >= 10 halos, within 4.5 sigma of its law.
    rng = np.random.default_rng(2)
    n, sigma = 50_000, 300.0
    cat = _catalog(rng.uniform(0, 100, (n, 3)), rng.normal(0, sigma, (n, 3)), 100.0)
    res = stats.compute("vpdf", cat, los="y")
    edges = res.edges
    width = np.diff(edges)
    gauss_cdf = 0.5 * (1 + special.erf(edges / (np.sqrt(2) * sigma)))
    x = np.clip(edges, 0, None) / sigma
    maxwell_cdf = special.erf(x / np.sqrt(2)) - np.sqrt(2 / np.pi) * x * np.exp(-x**2 / 2)
    for comp, cdf in (("los", gauss_cdf), ("speed", maxwell_cdf)):
        expect = np.diff(cdf) / width
        ok = np.diff(cdf) * n >= 10
        z = (res.values[comp][0][ok] - expect[ok]) / res.errors[comp][0][ok]
        assert abs(np.sum(z**2) - ok.sum()) < 4.5 * np.sqrt(2 * ok.sum()), comp
        # normalised: integrates to the fraction inside [-2000, 2000] km/s (all of them here)
        assert np.sum(res.values[comp][0] * width) == pytest.approx(1.0, abs=1e-12)
    assert np.all(res.values["speed"][0][res.centers < 0] == 0)


def _brute_v12(pos, vel, box, edges):
    """O(N^2): mean over unordered pairs of (v_j - v_i) . r_ij / |r_ij|, r_ij = x_j - x_i (min image)."""
    i, j = np.triu_indices(len(pos), k=1)
    d = pos[j] - pos[i]
    d = np.where(d > box / 2, d - box, np.where(d < -box / 2, d + box, d))
    r = np.linalg.norm(d, axis=1)
    u = np.sum((vel[j] - vel[i]) * d, axis=1) / r
    b = np.searchsorted(edges, r, side="left") - 1
    out = np.full(len(edges) - 1, np.nan)
    for k in range(len(edges) - 1):
        if np.any(b == k):
            out[k] = u[b == k].mean()
    return out


def test_pairwise_velocity_equals_brute_force():
    rng = np.random.default_rng(4)
    box = 20.0
    pos = rng.uniform(0, box, (300, 3))
    # a coherent flow towards the box centre so that v12 is not zero
    vel = rng.normal(0, 50, (300, 3)) - 30.0 * (pos - box / 2)
    edges = np.array([0.0, 1.0, 2.5, 5.0, 7.5, 10.0])
    res = stats.compute("pairwise", _catalog(pos, vel, box), edges=edges)
    np.testing.assert_allclose(res.values[""][0], _brute_v12(pos, vel, box, edges), rtol=1e-10)


def test_pairwise_sign_is_negative_for_infall_across_the_boundary():
    # two halos 1 Mpc/h apart through the periodic face x = 0, moving towards each other
    box = 50.0
    pos = np.array([[0.5, 10.0, 10.0], [box - 0.5, 10.0, 10.0]])
    vel = np.array([[-100.0, 0.0, 0.0], [+150.0, 0.0, 0.0]])
    res = stats.compute("pairwise", _catalog(pos, vel, box), edges=[0.0, 2.0, 4.0])
    assert res.values[""][0][0] == pytest.approx(-250.0)
    assert np.isnan(res.values[""][0][1])  # no pairs there
    # moving apart: positive
    res = stats.compute("pairwise", _catalog(pos, -vel, box), edges=[0.0, 2.0])
    assert res.values[""][0][0] == pytest.approx(250.0)


def test_pairwise_velocity_of_uncorrelated_halos_is_zero():
    # Positions uniform, velocities independent of them: v12 has mean 0, and the standard error
    # of the pair mean is exact (pairs sharing a halo are uncorrelated: E[r_ij . r_ik] = 0 for
    # independent isotropic directions). chi^2 of 2 catalogs x 25 bins within 4.5 sigma.
    rng = np.random.default_rng(8)
    cats = [_catalog(rng.uniform(0, 300, (3000, 3)), rng.normal(0, 300, (3000, 3)), 300.0) for _ in range(2)]
    res = stats.compute("pairwise", cats)
    z = res.values[""] / res.errors[""]
    assert abs(np.sum(z**2) - z.size) < 4.5 * np.sqrt(2 * z.size)
